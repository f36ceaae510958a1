// A C++17 host of the KSN Usage task plugin, over ksn_usage_task.hpp: the C host's Private
// KSN story (examples/c-host), and what a management server needs besides:
//
//   the document schemas from the plugin; a policy accepting the Private KSN statement,
//   locked, with a scheduled start, in the documented boot order; two files that share a
//   checksum, of which the plugin deletes the one asked about and reports that the other
//   could not be deleted; Private KSN switched off, the failure in the answer of that very
//   call; bad input refused with invalid_argument; lookups from two threads; a restart over
//   the same storage and events in boot order; and a new device whose host forgets to
//   report the licence before application_started.
//
// Then the rules of consent a C++ host meets (`consent`): a host that keeps no events (the
// wrapper's default) after a withdrawal storage never took (the task fails closed, and a
// task over storage that refuses its first record is not created); an emit_event that is
// slow on one thread while another withdraws, and one that throws (logged, with the
// count); a moved-from Task; a path that is not UTF-8.
//
// Usage: cpp-host PATH/TO/libksn_plugin.so. Exits 0 when the story holds.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <future>
#include <iostream>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "ksn_usage_task.hpp"

namespace {

const char EICAR[] = "44d88612fea8a8f36de82e1278abb02f";
const char CLEAN[] = "0123456789abcdef0123456789abcdef";

// Accepts the statement of either mode, locked, and starts the task with the application.
const char POLICY[] = R"({"settings": {
    "data_handling": {"ksn_statement_accepted":
        {"value": true, "locked": true, "versions": {"ksn": 1, "private_ksn": 1}}},
    "task": {"schedule": "at_application_start"}}})";

int failures = 0;
const ksn::Library *names = nullptr; // for the error kinds' names

void expect(bool holds, const std::string &what) {
    if (!holds) {
        std::cout << "FAILED: " << what << "\n";
        failures++;
    }
}

const char *state_name(KsnTaskState state) {
    switch (state) {
    case KSN_STATE_RUNNING: return "running";
    case KSN_STATE_FAILED: return "failed";
    default: return "stopped";
    }
}

const char *service_name(KsnService service) {
    switch (service) {
    case KSN_SERVICE_GLOBAL: return "global";
    case KSN_SERVICE_PROXY: return "proxy";
    case KSN_SERVICE_PRIVATE: return "private";
    default: return "none";
    }
}

const char *verdict_name(KsnVerdict verdict) {
    switch (verdict) {
    case KSN_VERDICT_TRUSTED: return "trusted";
    case KSN_VERDICT_UNTRUSTED: return "untrusted";
    case KSN_VERDICT_UNAVAILABLE: return "unavailable";
    default: return "unknown";
    }
}

const char *action_name(KsnAction action) {
    switch (action) {
    case KSN_ACTION_DELETED: return "deleted";
    case KSN_ACTION_LOGGED: return "logged";
    case KSN_ACTION_DELETE_FAILED: return "delete_failed";
    default: return "none";
    }
}

// The device's disk, storage and the server's copy of its events, in memory. Callbacks
// come from every thread that calls into the task, so everything is under one lock.
class MemoryHost : public ksn::Host {
public:
    void emit_event(std::string_view json) override {
        if (on_event) on_event(std::string(json));
        if (throw_events) throw std::runtime_error("the event store is down");
        std::lock_guard<std::mutex> lock(mutex_);
        events_.emplace_back(json);
    }

    /// Called with every event before it is kept (a test's hook); set before the task.
    std::function<void(const std::string &)> on_event;
    /// emit_event throws, as a server whose event store is down.
    std::atomic<bool> throw_events{false};
    /// events_since throws: the server cannot read the events it keeps.
    std::atomic<bool> events_unreadable{false};

    uint64_t now_ms() override {
        std::lock_guard<std::mutex> lock(mutex_);
        return now_ms_ += 10;
    }

    void storage_append(std::string_view key, std::string_view record) override {
        std::lock_guard<std::mutex> lock(mutex_);
        if (refuse_writes_) throw std::runtime_error("disk full");
        records_[std::string(key)].emplace_back(record);
    }

    void storage_records(std::string_view key, const ksn::Sink &records) override {
        std::lock_guard<std::mutex> lock(mutex_);
        for (const auto &record : records_[std::string(key)]) records.push(record);
    }

    bool replaces_records() const override { return true; }

    void storage_replace(std::string_view key, const std::vector<std::string_view> &all) override {
        std::lock_guard<std::mutex> lock(mutex_);
        if (refuse_writes_) throw std::runtime_error("disk full");
        auto &kept = records_[std::string(key)];
        kept.assign(all.begin(), all.end());
    }

    /// Whether this server keeps the task's events; when not, the wrapper's default.
    bool keeps_events() const override { return keeps_events_ || ksn::Host::keeps_events(); }

    void keep_events(bool keeps) { keeps_events_ = keeps; }

    void refuse_writes(bool refuse) {
        std::lock_guard<std::mutex> lock(mutex_);
        refuse_writes_ = refuse;
    }

    void events_since(uint64_t from_seq, const ksn::Sink &events) override {
        if (events_unreadable) throw std::runtime_error("the event database is unreachable");
        std::lock_guard<std::mutex> lock(mutex_);
        for (const auto &event : events_) {
            if (seq_of(event) >= from_seq) events.push(event);
        }
    }

    KsnTransport ksn_file(KsnService service, const ksn::FileView &query, uint32_t,
                          ksn::Reply &reply) override {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            requests_[service]++;
        }
        reply.set_ksn(query.md5_hex() == EICAR ? KSN_VERDICT_UNTRUSTED : KSN_VERDICT_UNKNOWN);
        reply.set_latency_ms(5);
        return KSN_TRANSPORT_DELIVERED;
    }

    KsnTransport ksn_url(KsnService, std::string_view, uint32_t, ksn::Reply &reply) override {
        reply.set_latency_ms(5);
        return KSN_TRANSPORT_DELIVERED;
    }

    KsnTransport ksn_upload(KsnService, KsnDataCategory, uint32_t, uint32_t,
                            uint32_t &latency_ms) override {
        latency_ms = 5;
        return KSN_TRANSPORT_DELIVERED;
    }

    void backup_and_delete(const ksn::FileView &query) override {
        std::lock_guard<std::mutex> lock(mutex_);
        auto file = disk_.find(query.object());
        if (file == disk_.end()) throw std::runtime_error("no such object");
        if (in_use_.count(query.object()) != 0) {
            throw std::runtime_error(file->second + " is in use by another process");
        }
        std::cout << "  host: backed up and deleted " << file->second << " (object "
                  << query.object() << ", path in the query: " << query.path() << ")\n";
        deleted_path_ = std::string(query.path());
        disk_.erase(file);
    }

    std::string deleted_path() {
        std::lock_guard<std::mutex> lock(mutex_);
        return deleted_path_;
    }

    /// Every event's `seq`, in the order received.
    std::vector<uint64_t> seqs() {
        std::lock_guard<std::mutex> lock(mutex_);
        std::vector<uint64_t> all;
        for (const auto &event : events_) all.push_back(seq_of(event));
        return all;
    }

    void put_file(uint64_t object, const std::string &path, bool in_use) {
        std::lock_guard<std::mutex> lock(mutex_);
        disk_[object] = path;
        if (in_use) in_use_.insert(object);
    }

    bool on_disk(uint64_t object) {
        std::lock_guard<std::mutex> lock(mutex_);
        return disk_.count(object) != 0;
    }

    std::string last_event(const std::string &type) {
        std::lock_guard<std::mutex> lock(mutex_);
        std::string tag = "\"type\":\"" + type + "\"";
        for (auto event = events_.rbegin(); event != events_.rend(); ++event) {
            if (event->find(tag) != std::string::npos) return *event;
        }
        return {};
    }

    size_t events() {
        std::lock_guard<std::mutex> lock(mutex_);
        return events_.size();
    }

private:
    // A real server parses the JSON; the `seq` field is all this one needs.
    static uint64_t seq_of(const std::string &event) {
        auto at = event.find("\"seq\":");
        return at == std::string::npos ? 0 : std::strtoull(event.c_str() + at + 6, nullptr, 10);
    }

    std::mutex mutex_;
    uint64_t now_ms_ = 1000;
    bool refuse_writes_ = false;
    bool keeps_events_ = true;
    std::string deleted_path_;
    std::map<std::string, std::vector<std::string>> records_;
    std::vector<std::string> events_;
    std::map<uint64_t, std::string> disk_;
    std::set<uint64_t> in_use_;
    std::map<KsnService, uint64_t> requests_;
};

class StderrLogger : public ksn::Logger {
public:
    void log(KsnLogLevel level, std::string_view target, std::string_view message) noexcept override {
        std::fprintf(stderr, "  log %u %.*s: %.*s\n", static_cast<unsigned>(level),
                     static_cast<int>(target.size()), target.data(),
                     static_cast<int>(message.size()), message.data());
        try {
            std::lock_guard<std::mutex> lock(mutex_);
            lines_.emplace_back(message);
        } catch (...) {
        }
    }

    bool logged(const std::string &part) {
        std::lock_guard<std::mutex> lock(mutex_);
        for (const auto &line : lines_) {
            if (line.find(part) != std::string::npos) return true;
        }
        return false;
    }

private:
    std::mutex mutex_;
    std::vector<std::string> lines_;
};

StderrLogger logger; // lives as long as the process, as the library requires

void print(const std::string &what, const ksn::Status &status) {
    std::cout << what << ": " << state_name(status.state);
    if (status.failed()) std::cout << " (" << names->kind_name(status.error) << ")";
    std::cout << ", network " << service_name(status.network) << ", Private KSN "
              << (status.private_ksn ? "on" : "off") << "\n";
}

ksn::Answer look_up(ksn::Task &task, const char *md5, uint64_t object, std::string_view path) {
    ksn::Answer answer = task.check_file(ksn::FileQuery::from_hex(md5, 68, object, path));
    std::cout << "check_file " << md5 << " object " << object << ": " << verdict_name(answer.verdict)
              << ", action " << action_name(answer.action) << (answer.cached ? " (cached)" : "")
              << "\n";
    return answer;
}

// Runs `call`, which must throw a ksn::Error of `kind`; answers it.
template <typename F>
std::optional<ksn::Error> refused(const std::string &what, KsnErrorKind kind, F call) {
    try {
        call();
    } catch (const ksn::Error &e) {
        std::cout << what << ": " << e.what() << "\n";
        expect(e.kind() == kind, what + " is refused with kind " + std::to_string(kind));
        return e;
    }
    expect(false, what + " is refused");
    return std::nullopt;
}

void story(const std::shared_ptr<ksn::Library> &library) {
    names = library.get();
    ksn::PluginInfo info = library->info();
    std::cout << info.name << " " << info.version << ", contract " << info.contract_version << "\n";

    // The documents' schemas, from the plugin itself.
    for (const char *name : {"policy", "local_change", "settings", "event", "log", "log_page",
                             "ledger", "ledger_page", "counters", "description"}) {
        std::string schema = library->document_schema(name);
        expect(schema.find("json-schema.org") != std::string::npos, std::string(name) + " has a schema");
    }
    refused("document_schema nope", KSN_ERROR_INVALID_ARGUMENT,
            [&] { library->document_schema("nope"); });

    MemoryHost host;
    host.put_file(1, "/srv/share/eicar.com", false);
    host.put_file(2, "/srv/in-use/eicar.com", true);
    {
        // Boot order: licence, mode, the stored policy, application_started.
        ksn::Task task(library, host);
        print("set_license valid", task.set_license(KSN_LICENSE_VALID));
        print("set_private_ksn on", task.set_private_ksn(true));
        print("push_policy", task.push_policy(POLICY));
        ksn::Status after = task.application_started();
        print("application_started", after);
        expect(after.running() && after.network == KSN_SERVICE_PRIVATE,
               "the scheduled start runs the task on Private KSN");

        // Two files with one checksum: the plugin acts on the object it was asked about.
        ksn::Answer first = look_up(task, EICAR, 1, "/srv/share/eicar.com");
        expect(first.verdict == KSN_VERDICT_UNTRUSTED && first.action == KSN_ACTION_DELETED &&
                   first.object == 1,
               "object 1 is found untrusted and deleted");
        expect(!host.on_disk(1) && host.on_disk(2), "object 1 is gone, object 2 is not");
        ksn::Answer second = look_up(task, EICAR, 2, "/srv/in-use/eicar.com");
        expect(second.cached && second.action == KSN_ACTION_DELETE_FAILED && second.object == 2,
               "object 2, from the cache, could not be deleted and the answer says so");
        std::string detection = host.last_event("object_untrusted");
        std::cout << "  event: " << detection << "\n";
        expect(detection.find("\"object\":2") != std::string::npos &&
                   detection.find("in use by another process") != std::string::npos,
               "the event names object 2 and the host's reason");
        ksn::Answer clean = look_up(task, CLEAN, 3, "/srv/share/readme.txt");
        expect(clean.verdict == KSN_VERDICT_UNKNOWN && clean.action == KSN_ACTION_NONE,
               "an unknown file is left alone");

        // The consequence comes back from the call that caused it.
        after = task.set_private_ksn(false);
        print("set_private_ksn off", after);
        expect(after.failed() && after.error == KSN_ERROR_LICENSE_VIOLATION,
               "switching Private KSN off answers failed, license_violation");
        expect(look_up(task, CLEAN, 3, "").verdict == KSN_VERDICT_UNAVAILABLE,
               "a lookup fails open while the task is failed");

        // The host's mistakes and the administrator's.
        refused("check_url \"\"", KSN_ERROR_INVALID_ARGUMENT, [&] { task.check_url(""); });
        refused("check_url no scheme", KSN_ERROR_INVALID_ARGUMENT,
                [&] { task.check_url("example.com/x"); });
        auto licence = refused("set_license 99", KSN_ERROR_INVALID_ARGUMENT,
                               [&] { task.set_license(99); });
        expect(licence && !licence->after(), "a refused argument answers no status");
        auto policy = refused("push_policy \"{\"", KSN_ERROR_INVALID_SETTINGS,
                              [&] { task.push_policy("{"); });
        expect(policy && policy->after() && policy->after()->failed(),
               "a refused policy answers the status, unchanged");

        // The mode change ended the Private KSN acceptance. The server sends the stored
        // policy again, whose box names the Global statement's version too; the task
        // starts again, through the Administration Server's proxy.
        refused("start before the policy is sent again", KSN_ERROR_STATEMENT_NOT_ACCEPTED,
                [&] { task.start(); });
        print("push_policy (stored, unchanged)", task.push_policy(POLICY));
        after = task.start();
        print("start", after);
        expect(after.running() && after.network == KSN_SERVICE_PROXY, "the task runs via the proxy");

        // Lookups from two threads while the main thread ticks and purges the cache.
        std::vector<std::thread> threads;
        std::atomic<int> odd{0};
        for (int t = 0; t < 2; t++) {
            threads.emplace_back([&task, &odd, t] {
                for (int i = 0; i < 2000; i++) {
                    auto answer = task.check_file(
                        ksn::FileQuery::from_hex(CLEAN, 68, static_cast<uint64_t>(100 + t)));
                    if (answer.verdict != KSN_VERDICT_UNKNOWN) odd++;
                }
            });
        }
        for (int i = 0; i < 50; i++) {
            task.tick();
            task.purge_cache();
        }
        for (auto &thread : threads) thread.join();
        expect(odd == 0, "4,000 concurrent lookups answer unknown");
    } // the task is freed: its storage and the server's events stay

    {
        // A restart over the same storage, in boot order.
        ksn::Task task(library, host);
        print("restored", task.status());
        print("set_license valid", task.set_license(KSN_LICENSE_VALID));
        print("set_private_ksn off", task.set_private_ksn(false));
        print("push_policy (stored, unchanged)", task.push_policy(POLICY));
        ksn::Status after = task.application_started();
        print("application_started", after);
        expect(after.running() && after.network == KSN_SERVICE_PROXY,
               "the restored task starts by its schedule, via the proxy");
        std::string page = task.log_page(0, 3);
        expect(page.find("\"entries\"") != std::string::npos, "the log survived the restart");
    }

    {
        // A new device whose host calls application_started before reporting the licence.
        MemoryHost fresh;
        ksn::Task task(library, fresh);
        task.push_policy(POLICY);
        auto early = refused("application_started before set_license", KSN_ERROR_INVALID_STATE,
                             [&] { task.application_started(); });
        expect(early && early->after() && !early->after()->running(), "nothing started");
        task.set_license(KSN_LICENSE_VALID);
        print("application_started after set_license", task.application_started());
        expect(task.status().running(), "in the documented order it starts");
    }
}

const char ACCEPT[] = R"({"data_handling": {"ksn_statement_accepted": true}})";
const char WITHDRAW[] = R"({"data_handling": {"ksn_statement_accepted": false}})";

bool accepted(ksn::Task &task) {
    return task.settings_json().find(R"("ksn_statement_accepted":true)") != std::string::npos;
}

void consent(const std::shared_ptr<ksn::Library> &library) {
    std::cout << "-- consent with a host that keeps no events (the wrapper's default)\n";
    MemoryHost forgetful;
    forgetful.keep_events(false);
    {
        ksn::Task task(library, forgetful);
        ksn::Answer stopped = task.check_file(ksn::FileQuery::from_hex(CLEAN, 68));
        expect(stopped.verdict == KSN_VERDICT_UNAVAILABLE && stopped.source == KSN_SOURCE_NOT_RUNNING,
               "a lookup on a stopped task says it is not running, not a KSN outage");
        task.set_license(KSN_LICENSE_VALID);
        task.set_local(ACCEPT);
        task.start();
        forgetful.refuse_writes(true);
        auto withdrawn = refused("withdrawal while storage refuses writes", KSN_ERROR_STORAGE_ERROR,
                                 [&] { task.set_local(WITHDRAW); });
        expect(withdrawn && withdrawn->after() && !withdrawn->after()->running(),
               "the withdrawal took effect at once");
    } // destroyed while storage still refuses: the withdrawal was never recorded
    refused("a Task whose first record storage refuses", KSN_ERROR_STORAGE_ERROR,
            [&] { ksn::Task nothing(library, forgetful); });
    forgetful.refuse_writes(false);
    {
        ksn::Task task(library, forgetful);
        task.set_license(KSN_LICENSE_VALID);
        expect(!accepted(task), "the withdrawal is not undone by the restart");
        expect(task.log_json().find("unverified_restart") != std::string::npos,
               "the acceptance ended at creation, recorded");
        auto again = refused("start after the unverified restart", KSN_ERROR_STATEMENT_NOT_ACCEPTED,
                             [&] { task.start(); });
        expect(again && std::string(again->what()).find("confirm it again") != std::string::npos,
               "start says the acceptance must be confirmed again");
        task.set_local(ACCEPT);
        expect(task.start().running(), "confirmed again, it starts");
    } // destroyed cleanly
    {
        ksn::Task task(library, forgetful);
        expect(accepted(task), "after a clean close the journal is trusted");
    }

    std::cout << "-- an events_since that throws\n";
    MemoryHost unreadable; // keeps events, but cannot read them at the next start
    {
        ksn::Task task(library, unreadable);
        task.set_license(KSN_LICENSE_VALID);
        task.set_local(ACCEPT);
        unreadable.refuse_writes(true);
        refused("withdrawal while storage refuses writes", KSN_ERROR_STORAGE_ERROR,
                [&] { task.set_local(WITHDRAW); });
    }
    unreadable.refuse_writes(false);
    unreadable.events_unreadable = true;
    {
        ksn::Task task(library, unreadable);
        expect(!accepted(task), "an events_since that throws is never taken for nothing waiting");
    }

    std::cout << "-- a slow emit_event on one thread, a withdrawal on another\n";
    MemoryHost slow;
    std::promise<void> reached, release;
    std::shared_future<void> released = release.get_future().share();
    std::atomic<bool> held{false};
    slow.on_event = [&](const std::string &json) {
        if (json.find("lookup_timeout_ms") != std::string::npos && !held.exchange(true)) {
            reached.set_value();
            released.wait();
        }
    };
    {
        ksn::Task task(library, slow);
        task.set_license(KSN_LICENSE_VALID);
        task.set_local(ACCEPT);
        task.start();
        std::thread changer([&] { task.set_local(R"({"task": {"lookup_timeout_ms": 500}})"); });
        reached.get_future().wait();
        auto withdrawal = std::async(std::launch::async, [&] { return task.set_local(WITHDRAW); });
        bool returned = withdrawal.wait_for(std::chrono::seconds(10)) == std::future_status::ready;
        release.set_value();
        changer.join();
        expect(returned, "the withdrawal returned while the other thread's emit_event was held");
        expect(!withdrawal.get().running(), "and the task stopped");
        std::vector<uint64_t> seqs = slow.seqs();
        bool ordered = !seqs.empty();
        for (size_t i = 1; i < seqs.size(); i++) ordered = ordered && seqs[i] == seqs[i - 1] + 1;
        expect(ordered, "every event reached the host, in order");

        std::cout << "-- an emit_event that throws\n";
        slow.throw_events = true;
        task.set_local(R"({"task": {"lookup_timeout_ms": 700}})");
        slow.throw_events = false;
        expect(logger.logged("emit_event failed for"), "the plugin logged what the host failed to take");
        expect(task.settings_json().find(R"("lookup_timeout_ms":700)") != std::string::npos,
               "the change took effect all the same");

        std::cout << "-- a moved-from Task\n";
        ksn::Task moved(std::move(task));
        expect(task.raw() == nullptr && moved.raw() != nullptr, "the handle moved with the task");
        refused("status of a moved-from Task", KSN_ERROR_INVALID_STATE, [&] { task.status(); });
        refused("check_file on a moved-from Task", KSN_ERROR_INVALID_STATE,
                [&] { task.check_file(ksn::FileQuery::from_hex(CLEAN, 68)); });
        expect(!moved.status().running(), "the task itself is where it moved");
    }

    std::cout << "-- a path that is not UTF-8\n";
    MemoryHost disk;
    const std::string latin1 = "/srv/caf\xe9/eicar.com";
    disk.put_file(7, latin1, false);
    ksn::Task task(library, disk);
    task.set_license(KSN_LICENSE_VALID);
    task.set_local(ACCEPT);
    task.start();
    ksn::Answer answer = look_up(task, EICAR, 7, latin1);
    expect(answer.verdict == KSN_VERDICT_UNTRUSTED && answer.action == KSN_ACTION_DELETED,
           "a file whose path is not UTF-8 gets its verdict and its action");
    expect(disk.deleted_path() == latin1, "the host got its own bytes back");
    expect(disk.last_event("object_untrusted").find(R"(caf\\xe9)") != std::string::npos,
           "the event shows the path escaped");
}

} // namespace

int main(int argc, char **argv) {
    if (argc != 2) {
        std::cerr << "usage: " << argv[0] << " PATH/TO/libksn_plugin.so\n";
        return 2;
    }
    try {
        auto library = ksn::Library::open(argv[1]);
        library->install_logger(logger, KSN_LOG_WARN);
        story(library);
        consent(library);
    } catch (const ksn::LoadError &e) {
        std::cerr << "cpp-host: " << e.what() << "\n";
        return 2;
    } catch (const std::exception &e) {
        std::cout << "FAILED: unexpected " << e.what() << "\n";
        return 1;
    }
    if (failures > 0) {
        std::cout << "the story does not hold: " << failures << " failure(s)\n";
        return 1;
    }
    std::cout << "the story holds\n";
    return 0;
}
