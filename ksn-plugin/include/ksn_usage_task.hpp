// The KSN Usage task plugin's C API for C++17 hosts: header-only, over ksn_usage_task.h.
//
//   auto library = ksn::Library::open("libksn_plugin.so");
//   MyHost host;                                  // implements ksn::Host
//   ksn::Task task(library, host);                // restored from the host's storage
//   task.set_license(KSN_LICENSE_VALID);
//   ksn::Status after = task.set_private_ksn(false);
//   if (after.failed()) { /* after.error == KSN_ERROR_LICENSE_VIOLATION */ }
//
// - The library, a task and the plugin's texts are RAII values; a task shares the library.
// - Texts go in as std::string_view and come out as std::string.
// - Errors are exceptions: ksn::Error carries the plugin's kind (KSN_ERROR_*) and, for a
//   control call, the task's status after it; ksn::LoadError is a library that cannot be
//   used. A host's callback fails by throwing (any std::exception; its what() is the
//   reason the plugin records); no exception ever crosses into the plugin.
// - Every method may be called from any thread, concurrently, on the same task, except
//   destruction and moves; the host's callbacks run on those threads (docs/loading-from-c.md).
//   Events reach Host::emit_event outside the task's lock, in order: a slow one delays no
//   other thread's call, and one that throws is logged by the plugin with the count.
// - A moved-from Task holds no task: every call on it throws ksn::Error
//   (KSN_ERROR_INVALID_STATE). raw() is the C handle, for the C functions this header
//   does not wrap.
// - By default a Host keeps no events (keeps_events() false): the task then trusts its
//   journal only if the last Task was destroyed with nothing waiting for storage (a clean
//   close); after a crash, or a withdrawal storage never took, the statement's acceptance
//   ends at creation and must be confirmed again, and a Task over storage that refuses its
//   first record is not created (storage_error). A server that keeps the task's events
//   overrides keeps_events() and events_since() (docs/loading-from-c.md).
//
// POSIX (dlopen). Compiles with -std=c++17 -Wall -Wextra -Werror.
#ifndef KSN_USAGE_TASK_HPP
#define KSN_USAGE_TASK_HPP

#include <dlfcn.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ksn_usage_task.h"

namespace ksn {

/// The task's status: the state, why it failed, the service it uses, licence and mode.
struct Status {
    KsnTaskState state = KSN_STATE_STOPPED;
    KsnErrorKind error = KSN_OK;
    KsnService network = KSN_SERVICE_NONE;
    KsnLicense license = KSN_LICENSE_UNKNOWN;
    bool private_ksn = false;

    bool running() const noexcept { return state == KSN_STATE_RUNNING; }
    bool failed() const noexcept { return state == KSN_STATE_FAILED; }
};

/// An error the plugin answered: its kind (`KSN_ERROR_*`), its message, and for a control
/// call the task's status as the call ended (absent when the arguments were refused).
class Error : public std::runtime_error {
public:
    Error(KsnErrorKind kind, const std::string &message, std::optional<Status> after = {})
        : std::runtime_error(message), kind_(kind), after_(after) {}

    KsnErrorKind kind() const noexcept { return kind_; }
    const std::optional<Status> &after() const noexcept { return after_; }

private:
    KsnErrorKind kind_;
    std::optional<Status> after_;
};

/// The library cannot be used: not found, not this plugin's C API, or another major
/// contract version.
class LoadError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// Who the plugin is.
struct PluginInfo {
    std::string name;
    std::string version;
    std::string contract_version;
    uint32_t contract_minor = 0;
};

/// The answer to a reputation question.
struct Answer {
    KsnVerdict verdict = KSN_VERDICT_UNKNOWN;
    KsnAction action = KSN_ACTION_NONE;
    /// Which layer decided; for an answer none could give, why (KSN_SOURCE_NOT_RUNNING,
    /// KSN_SOURCE_NOT_CONSENTED, KSN_SOURCE_SERVICE_DOWN; 1.4.0).
    KsnAnswerSource source = KSN_SOURCE_NONE;
    bool cached = false;
    /// The query's object, handed back (0 from a plugin older than 1.3.0).
    uint64_t object = 0;
};

/// A file reputation question about one object on the device.
struct FileQuery {
    std::array<uint8_t, 16> md5{};
    uint64_t size_bytes = 0;
    /// The host's handle of the object (opaque to the plugin). 0 is no object: the lookup
    /// is about the checksum, and backup_and_delete gets no handle (as a query without one).
    uint64_t object = 0;
    /// The object's path, for the log: any bytes (a Linux path need not be UTF-8; the log
    /// shows such a path escaped, and backup_and_delete gets these bytes back); borrowed
    /// for the call.
    std::string_view path;

    /// From 32 hexadecimal digits; throws `Error` (`KSN_ERROR_INVALID_ARGUMENT`) otherwise.
    static FileQuery from_hex(std::string_view md5_hex, uint64_t size_bytes, uint64_t object = 0,
                              std::string_view path = {}) {
        FileQuery query;
        if (md5_hex.size() != 32) {
            throw Error(KSN_ERROR_INVALID_ARGUMENT, "an MD5 is 32 hexadecimal digits");
        }
        for (size_t i = 0; i < 16; i++) {
            int high = digit(md5_hex[2 * i]);
            int low = digit(md5_hex[2 * i + 1]);
            if (high < 0 || low < 0) {
                throw Error(KSN_ERROR_INVALID_ARGUMENT, "an MD5 is 32 hexadecimal digits");
            }
            query.md5[i] = static_cast<uint8_t>(high << 4 | low);
        }
        query.size_bytes = size_bytes;
        query.object = object;
        query.path = path;
        return query;
    }

private:
    static int digit(char c) noexcept {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    }
};

/// Whether a struct the other side filled or passed covers `field` (its `struct_size`).
#define KSN_COVERS(pointer, type, field) \
    ((pointer)->struct_size >= offsetof(type, field) + sizeof((pointer)->field))

/// The file a callback is asked about: the plugin's `KsnFileQuery`, valid during the
/// callback. Fields an older plugin does not pass read as absent.
class FileView {
public:
    explicit FileView(const KsnFileQuery *raw) noexcept : raw_(raw) {}

    const uint8_t *md5() const noexcept { return raw_->md5; }
    uint64_t size_bytes() const noexcept { return raw_->size_bytes; }
    uint64_t object() const noexcept {
        return KSN_COVERS(raw_, KsnFileQuery, object) ? raw_->object : 0;
    }
    std::string_view path() const noexcept {
        if (!KSN_COVERS(raw_, KsnFileQuery, path_len) || raw_->path == nullptr) return {};
        return {raw_->path, raw_->path_len};
    }
    std::string md5_hex() const {
        static const char digits[] = "0123456789abcdef";
        std::string hex(32, '0');
        for (size_t i = 0; i < 16; i++) {
            hex[2 * i] = digits[raw_->md5[i] >> 4];
            hex[2 * i + 1] = digits[raw_->md5[i] & 15];
        }
        return hex;
    }
    const KsnFileQuery &raw() const noexcept { return *raw_; }

private:
    const KsnFileQuery *raw_;
};

/// What a KSN service answered: the transport writes only what the plugin's `struct_size`
/// covers (the plugin preset unknown verdicts and 0 ms).
class Reply {
public:
    explicit Reply(KsnReply *raw) noexcept : raw_(raw) {}

    void set_ksn(KsnVerdict verdict) noexcept {
        if (KSN_COVERS(raw_, KsnReply, ksn)) raw_->ksn = verdict;
    }
    void set_private_database(KsnVerdict verdict) noexcept {
        if (KSN_COVERS(raw_, KsnReply, private_database)) raw_->private_database = verdict;
    }
    void set_latency_ms(uint32_t ms) noexcept {
        if (KSN_COVERS(raw_, KsnReply, latency_ms)) raw_->latency_ms = ms;
    }

private:
    KsnReply *raw_;
};

/// Where a callback hands the plugin bytes (a stored record, an event), during the callback.
class Sink {
public:
    explicit Sink(const KsnSink *raw) noexcept : raw_(raw) {}

    void push(std::string_view bytes) const noexcept {
        if (raw_ != nullptr && raw_->push != nullptr) {
            raw_->push(raw_->state, reinterpret_cast<const uint8_t *>(bytes.data()), bytes.size());
        }
    }

private:
    const KsnSink *raw_;
};

/// How much of the task log the plugin keeps; 0 is no limit of that kind.
struct Retention {
    uint64_t max_entries = 10000;
    uint64_t max_age_ms = 90ull * 24 * 60 * 60 * 1000;
};

/// The host's services to one task. Callbacks run on the threads that call into the task,
/// concurrently when the host calls in concurrently; they must not call back into the
/// task. A callback that answers fails by throwing.
class Host {
public:
    virtual ~Host() = default;

    /// One event (a JSON object with a `type`), in order, outside the task's lock. Throwing
    /// says the host could not take it: the plugin logs it (the task log keeps the entry).
    virtual void emit_event(std::string_view json) = 0;
    /// The host's clock, in milliseconds.
    virtual uint64_t now_ms() = 0;
    /// Appends one record under `key`, atomically.
    virtual void storage_append(std::string_view key, std::string_view record) = 0;
    /// Pushes every record under `key`, oldest first.
    virtual void storage_records(std::string_view key, const Sink &records) = 0;
    /// The device's local lists (on the hot path of every lookup: keep them fast).
    virtual KsnVerdict local_file_verdict(const FileView &) { return KSN_VERDICT_UNKNOWN; }
    virtual KsnVerdict local_url_verdict(std::string_view) { return KSN_VERDICT_UNKNOWN; }
    /// The transport: answers delivered (filling `reply`) or why not; must honour
    /// `timeout_ms`. An exception is taken as unreachable.
    virtual KsnTransport ksn_file(KsnService service, const FileView &query, uint32_t timeout_ms,
                                  Reply &reply) = 0;
    virtual KsnTransport ksn_url(KsnService service, std::string_view url, uint32_t timeout_ms,
                                 Reply &reply) = 0;
    virtual KsnTransport ksn_upload(KsnService service, KsnDataCategory category, uint32_t items,
                                    uint32_t timeout_ms, uint32_t &latency_ms) = 0;
    /// Removes the object `query.object()`, keeping a backup copy; throw if it cannot.
    virtual void backup_and_delete(const FileView &query) = 0;

    /// Optional: replacing every record of a key atomically, which compaction needs.
    /// Return true from `replaces_records` to offer it.
    virtual bool replaces_records() const { return false; }
    virtual void storage_replace(std::string_view, const std::vector<std::string_view> &) {
        throw std::runtime_error("this host cannot replace records");
    }
    /// Optional: the log retention (absent: the contract's default).
    virtual std::optional<Retention> log_retention() { return std::nullopt; }
    /// Optional: the events of this task the host keeps apart from its storage, for
    /// reconciliation at creation. Return true from `keeps_events` to offer it; push every
    /// event held from `from_seq` on, or throw when they cannot be read (taken as keeping
    /// none). Without it (the default) the task relies on its journal, and fails closed
    /// where that cannot show that no withdrawal was lost (see the top of this header).
    virtual bool keeps_events() const { return false; }
    virtual void events_since(uint64_t, const Sink &) {
        throw std::runtime_error("this host keeps no events");
    }
};

/// The host's logger for the whole library; it must live as long as the process.
class Logger {
public:
    virtual ~Logger() = default;
    virtual void log(KsnLogLevel level, std::string_view target, std::string_view message) noexcept = 0;
};

namespace detail {

template <typename T>
T sized() noexcept {
    T value;
    std::memset(&value, 0, sizeof value);
    value.struct_size = sizeof value;
    return value;
}

/// The library's functions, looked up once. The optional ones are NULL in an older plugin.
struct Api {
    PFN_ksn_plugin_info plugin_info = nullptr;
    PFN_ksn_describe describe = nullptr;
    PFN_ksn_install_logger install_logger = nullptr;
    PFN_ksn_error_kind_name error_kind_name = nullptr;
    PFN_ksn_string_free string_free = nullptr;
    PFN_ksn_error_free error_free = nullptr;
    PFN_ksn_task_new task_new = nullptr;
    PFN_ksn_task_free task_free = nullptr;
    PFN_ksn_task_push_policy push_policy = nullptr;
    PFN_ksn_task_set_local set_local = nullptr;
    PFN_ksn_task_set_private_ksn set_private_ksn = nullptr;
    PFN_ksn_task_set_license set_license = nullptr;
    PFN_ksn_task_application_started application_started = nullptr;
    PFN_ksn_task_start start = nullptr;
    PFN_ksn_task_stop stop = nullptr;
    PFN_ksn_task_tick tick = nullptr;
    PFN_ksn_task_purge_cache purge_cache = nullptr;
    PFN_ksn_task_status status = nullptr;
    PFN_ksn_task_check_file check_file = nullptr;
    PFN_ksn_task_check_url check_url = nullptr;
    PFN_ksn_task_settings_json settings_json = nullptr;
    PFN_ksn_task_log_json log_json = nullptr;
    PFN_ksn_task_log_page log_page = nullptr;
    PFN_ksn_task_ledger_json ledger_json = nullptr;
    PFN_ksn_task_ledger_page ledger_page = nullptr;
    PFN_ksn_task_counters_json counters_json = nullptr;
    // 1.3.0
    PFN_ksn_task_control control = nullptr;
    PFN_ksn_document_schema document_schema = nullptr;
};

/// A `KsnError` slot that frees its message.
class ErrorSlot {
public:
    explicit ErrorSlot(const Api &api) noexcept : api_(api), raw_(sized<KsnError>()) {}
    ~ErrorSlot() { api_.error_free(&raw_); }
    ErrorSlot(const ErrorSlot &) = delete;
    ErrorSlot &operator=(const ErrorSlot &) = delete;

    KsnError *get() noexcept { return &raw_; }

    /// Throws `Error` unless `kind` is `KSN_OK`.
    void check(KsnErrorKind kind, std::optional<Status> after = {}) {
        if (kind == KSN_OK) return;
        std::string message = api_.error_kind_name(kind);
        if (raw_.message != nullptr && raw_.message_len > 0) {
            message += ": ";
            message.append(raw_.message, raw_.message_len);
        }
        throw Error(kind, message, after);
    }

private:
    const Api &api_;
    KsnError raw_;
};

/// A text the plugin allocated, freed with `ksn_string_free`.
class Text {
public:
    explicit Text(const Api &api) noexcept : api_(api), raw_(sized<KsnString>()) {}
    ~Text() { api_.string_free(&raw_); }
    Text(const Text &) = delete;
    Text &operator=(const Text &) = delete;

    KsnString *get() noexcept { return &raw_; }
    std::string str() const { return raw_.ptr == nullptr ? std::string() : std::string(raw_.ptr, raw_.len); }

private:
    const Api &api_;
    KsnString raw_;
};

inline Status status_of(const KsnStatus &raw) noexcept {
    Status status;
    status.state = raw.state;
    status.error = raw.error;
    status.network = raw.network;
    status.license = raw.license;
    status.private_ksn = raw.private_ksn;
    return status;
}

inline void fail(const KsnSink *error, const char *reason) noexcept {
    Sink(error).push(reason);
}

// The trampolines: the C table's callbacks, each forwarding to the `Host` in `context`
// and catching everything, so that no exception unwinds into the plugin.
inline Host &host(void *context) noexcept { return *static_cast<Host *>(context); }

// For a plugin older than 1.4.0, which has no emit_event_checked: a failure is dropped.
inline void emit_event(void *context, const char *json, size_t len) {
    try {
        host(context).emit_event(std::string_view(json, len));
    } catch (...) {
    }
}

inline uint64_t now_ms(void *context) {
    try {
        return host(context).now_ms();
    } catch (...) {
        return 0; // the task keeps its clock monotonic
    }
}

#define KSN_FAILABLE(error, body)                          \
    try {                                                  \
        body;                                              \
        return 0;                                          \
    } catch (const std::exception &e) {                    \
        fail(error, e.what());                             \
    } catch (...) {                                        \
        fail(error, "the host's callback threw");          \
    }                                                      \
    return 1;

inline int32_t storage_append(void *context, const char *key, size_t key_len,
                              const uint8_t *record, size_t record_len, const KsnSink *error) {
    KSN_FAILABLE(error, host(context).storage_append(
                            std::string_view(key, key_len),
                            std::string_view(reinterpret_cast<const char *>(record), record_len)))
}

inline int32_t storage_records(void *context, const char *key, size_t key_len,
                               const KsnSink *records, const KsnSink *error) {
    KSN_FAILABLE(error, host(context).storage_records(std::string_view(key, key_len), Sink(records)))
}

inline int32_t storage_replace(void *context, const char *key, size_t key_len,
                               const uint8_t *const *records, const size_t *lens, size_t count,
                               const KsnSink *error) {
    KSN_FAILABLE(error, {
        std::vector<std::string_view> all;
        all.reserve(count);
        for (size_t i = 0; i < count; i++) {
            all.emplace_back(reinterpret_cast<const char *>(records[i]), lens[i]);
        }
        host(context).storage_replace(std::string_view(key, key_len), all);
    })
}

inline int32_t emit_event_checked(void *context, const char *json, size_t len,
                                  const KsnSink *error) {
    KSN_FAILABLE(error, host(context).emit_event(std::string_view(json, len)))
}

inline int32_t events_since(void *context, uint64_t from_seq, const KsnSink *events,
                            const KsnSink *error) {
    KSN_FAILABLE(error, host(context).events_since(from_seq, Sink(events)))
}

inline int32_t backup_and_delete(void *context, const KsnFileQuery *query, const KsnSink *error) {
    KSN_FAILABLE(error, host(context).backup_and_delete(FileView(query)))
}

#undef KSN_FAILABLE

inline KsnVerdict local_file_verdict(void *context, const KsnFileQuery *query) {
    try {
        return host(context).local_file_verdict(FileView(query));
    } catch (...) {
        return KSN_VERDICT_UNKNOWN;
    }
}

inline KsnVerdict local_url_verdict(void *context, const char *url, size_t len) {
    try {
        return host(context).local_url_verdict(std::string_view(url, len));
    } catch (...) {
        return KSN_VERDICT_UNKNOWN;
    }
}

inline KsnTransport ksn_file(void *context, KsnService service, const KsnFileQuery *query,
                             uint32_t timeout_ms, KsnReply *reply) {
    try {
        Reply out(reply);
        return host(context).ksn_file(service, FileView(query), timeout_ms, out);
    } catch (...) {
        return KSN_TRANSPORT_UNREACHABLE;
    }
}

inline KsnTransport ksn_url(void *context, KsnService service, const char *url, size_t len,
                            uint32_t timeout_ms, KsnReply *reply) {
    try {
        Reply out(reply);
        return host(context).ksn_url(service, std::string_view(url, len), timeout_ms, out);
    } catch (...) {
        return KSN_TRANSPORT_UNREACHABLE;
    }
}

inline KsnTransport ksn_upload(void *context, KsnService service, KsnDataCategory category,
                               uint32_t items, uint32_t timeout_ms, uint32_t *latency_ms) {
    try {
        return host(context).ksn_upload(service, category, items, timeout_ms, *latency_ms);
    } catch (...) {
        return KSN_TRANSPORT_UNREACHABLE;
    }
}

inline void log_retention(void *context, KsnLogRetention *retention) {
    try {
        if (auto wanted = host(context).log_retention()) {
            if (KSN_COVERS(retention, KsnLogRetention, max_entries)) {
                retention->max_entries = wanted->max_entries;
            }
            if (KSN_COVERS(retention, KsnLogRetention, max_age_ms)) {
                retention->max_age_ms = wanted->max_age_ms;
            }
        }
    } catch (...) {
    }
}

inline void log_record(void *context, KsnLogLevel level, const char *target, size_t target_len,
                       const char *message, size_t message_len) {
    static_cast<Logger *>(context)->log(level, std::string_view(target, target_len),
                                        std::string_view(message, message_len));
}

} // namespace detail

/// The plugin's library, loaded once and shared by its tasks. Opened with RTLD_NODELETE:
/// dropping the last reference closes the handle but never unmaps the library, as the
/// contract requires (its logger and statics live as long as the process).
class Library {
public:
    static std::shared_ptr<Library> open(const std::string &path) {
        void *handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
        if (handle == nullptr) {
            const char *why = dlerror();
            throw LoadError(std::string("cannot load ") + path + ": " + (why ? why : "unknown"));
        }
        std::shared_ptr<Library> library(new Library(handle));
        library->resolve(path);
        return library;
    }

    ~Library() { dlclose(handle_); }
    Library(const Library &) = delete;
    Library &operator=(const Library &) = delete;

    PluginInfo info() const {
        KsnPluginInfo raw = detail::sized<KsnPluginInfo>();
        detail::ErrorSlot error(api_);
        error.check(api_.plugin_info(&raw, error.get()));
        PluginInfo info;
        info.name.assign(raw.name, raw.name_len);
        info.version.assign(raw.version, raw.version_len);
        info.contract_version.assign(raw.contract_version, raw.contract_version_len);
        info.contract_minor = raw.contract_minor;
        return info;
    }

    /// The plugin's description (JSON): settings, policy and local-change schemas, statements.
    std::string describe() const {
        detail::Text out(api_);
        detail::ErrorSlot error(api_);
        error.check(api_.describe(out.get(), error.get()));
        return out.str();
    }

    /// The JSON Schema of a document (`settings`, `event`, `log_page`, ...).
    std::string document_schema(std::string_view name) const {
        if (api_.document_schema == nullptr) {
            throw Error(KSN_ERROR_NOT_IMPLEMENTED,
                        "not_implemented: this plugin is older than contract 1.3.0 and has no "
                        "document schemas; see docs/schemas/");
        }
        detail::Text out(api_);
        detail::ErrorSlot error(api_);
        error.check(api_.document_schema(name.data(), name.size(), out.get(), error.get()));
        return out.str();
    }

    /// Installs the host's logger for the whole library (once; a second is refused).
    /// `logger` must live as long as the process.
    void install_logger(Logger &logger, KsnLogLevel max_level) const {
        KsnLogSink sink = detail::sized<KsnLogSink>();
        sink.context = &logger;
        sink.log = detail::log_record;
        sink.max_level = max_level;
        detail::ErrorSlot error(api_);
        error.check(api_.install_logger(&sink, error.get()));
    }

    /// `license_violation` and so on; `unrecognised` for a kind this plugin does not know.
    std::string_view kind_name(KsnErrorKind kind) const { return api_.error_kind_name(kind); }

    const detail::Api &api() const noexcept { return api_; }

private:
    explicit Library(void *handle) noexcept : handle_(handle) {}

    template <typename F>
    void load(F &function, const char *name, bool required, const std::string &path) {
        void *symbol = dlsym(handle_, name);
        if (symbol == nullptr && required) {
            throw LoadError(path + " has no " + name +
                            ": not the KSN Usage task plugin's C API (rebuild it with cargo "
                            "build --release -p ksn-plugin)");
        }
        static_assert(sizeof function == sizeof symbol, "function and object pointers differ");
        std::memcpy(&function, &symbol, sizeof symbol);
    }

    void resolve(const std::string &path) {
        load(api_.plugin_info, "ksn_plugin_info", true, path);
        load(api_.describe, "ksn_describe", true, path);
        load(api_.install_logger, "ksn_install_logger", true, path);
        load(api_.error_kind_name, "ksn_error_kind_name", true, path);
        load(api_.string_free, "ksn_string_free", true, path);
        load(api_.error_free, "ksn_error_free", true, path);
        load(api_.task_new, "ksn_task_new", true, path);
        load(api_.task_free, "ksn_task_free", true, path);
        load(api_.push_policy, "ksn_task_push_policy", true, path);
        load(api_.set_local, "ksn_task_set_local", true, path);
        load(api_.set_private_ksn, "ksn_task_set_private_ksn", true, path);
        load(api_.set_license, "ksn_task_set_license", true, path);
        load(api_.application_started, "ksn_task_application_started", true, path);
        load(api_.start, "ksn_task_start", true, path);
        load(api_.stop, "ksn_task_stop", true, path);
        load(api_.tick, "ksn_task_tick", true, path);
        load(api_.purge_cache, "ksn_task_purge_cache", true, path);
        load(api_.status, "ksn_task_status", true, path);
        load(api_.check_file, "ksn_task_check_file", true, path);
        load(api_.check_url, "ksn_task_check_url", true, path);
        load(api_.settings_json, "ksn_task_settings_json", true, path);
        load(api_.log_json, "ksn_task_log_json", true, path);
        load(api_.log_page, "ksn_task_log_page", true, path);
        load(api_.ledger_json, "ksn_task_ledger_json", true, path);
        load(api_.ledger_page, "ksn_task_ledger_page", true, path);
        load(api_.counters_json, "ksn_task_counters_json", true, path);
        load(api_.control, "ksn_task_control", false, path);
        load(api_.document_schema, "ksn_document_schema", false, path);
        std::string contract = info().contract_version;
        if (contract.rfind("1.", 0) != 0) {
            throw LoadError(path + " implements contract " + contract +
                            "; this header speaks contract 1.x");
        }
    }

    void *handle_;
    detail::Api api_;
};

/// One task over the host's services, restored from the host's storage. The host must
/// outlive it. Boot order: set_license, set_private_ksn, push_policy (the stored policy),
/// application_started.
class Task {
public:
    Task(std::shared_ptr<Library> library, Host &host) : library_(std::move(library)) {
        KsnHost table = detail::sized<KsnHost>();
        table.context = &host;
        table.emit_event = detail::emit_event;
        table.now_ms = detail::now_ms;
        table.storage_append = detail::storage_append;
        table.storage_records = detail::storage_records;
        table.local_file_verdict = detail::local_file_verdict;
        table.local_url_verdict = detail::local_url_verdict;
        table.ksn_file = detail::ksn_file;
        table.ksn_url = detail::ksn_url;
        table.ksn_upload = detail::ksn_upload;
        table.backup_and_delete = detail::backup_and_delete;
        table.storage_replace = host.replaces_records() ? detail::storage_replace : nullptr;
        table.log_retention = detail::log_retention;
        table.events_since = host.keeps_events() ? detail::events_since : nullptr;
        table.emit_event_checked = detail::emit_event_checked;
        const detail::Api &api = library_->api();
        detail::ErrorSlot error(api);
        error.check(api.task_new(&table, &task_, error.get()));
    }

    /// Frees the task: it writes what still waits for storage and closes its journal
    /// cleanly, if storage takes it.
    ~Task() {
        if (task_ != nullptr) library_->api().task_free(task_);
    }
    Task(const Task &) = delete;
    Task &operator=(const Task &) = delete;
    Task(Task &&other) noexcept
        : library_(std::move(other.library_)), task_(std::exchange(other.task_, nullptr)) {}
    Task &operator=(Task &&other) noexcept {
        if (this != &other) {
            if (task_ != nullptr) library_->api().task_free(task_);
            library_ = std::move(other.library_);
            task_ = std::exchange(other.task_, nullptr);
        }
        return *this;
    }

    // The control calls: each answers the task's status as it ended, so that a host sees
    // what the call caused (`set_private_ksn(false)` under a running task answers failed,
    // `license_violation`). A refused call throws `Error`, whose `after()` is that status.
    Status push_policy(std::string_view json) { return document(KSN_OPERATION_PUSH_POLICY, json); }
    Status set_local(std::string_view json) { return document(KSN_OPERATION_SET_LOCAL, json); }
    Status set_private_ksn(bool enabled) {
        KsnCall call = detail::sized<KsnCall>();
        call.operation = KSN_OPERATION_SET_PRIVATE_KSN;
        call.enabled = enabled ? 1 : 0;
        return control(call);
    }
    Status set_license(KsnLicense license) {
        KsnCall call = detail::sized<KsnCall>();
        call.operation = KSN_OPERATION_SET_LICENSE;
        call.license = license;
        return control(call);
    }
    Status application_started() { return operation(KSN_OPERATION_APPLICATION_STARTED); }
    Status start() { return operation(KSN_OPERATION_START); }
    Status stop() { return operation(KSN_OPERATION_STOP); }

    /// Periodic work and the clock by which cached verdicts expire: call it every second.
    void tick() {
        detail::ErrorSlot error(api());
        error.check(api().tick(task_, error.get()));
    }
    void purge_cache() {
        detail::ErrorSlot error(api());
        error.check(api().purge_cache(task_, error.get()));
    }

    Status status() const {
        KsnStatus raw = detail::sized<KsnStatus>();
        detail::ErrorSlot error(api());
        error.check(api().status(task_, &raw, error.get()));
        return detail::status_of(raw);
    }

    /// File reputation of one object; an untrusted one is acted on (`answer.action`) and
    /// recorded, so the call is not const.
    Answer check_file(const FileQuery &query) {
        KsnFileQuery raw = detail::sized<KsnFileQuery>();
        std::memcpy(raw.md5, query.md5.data(), 16);
        raw.size_bytes = query.size_bytes;
        raw.object = query.object;
        raw.path = query.path.empty() ? nullptr : query.path.data();
        raw.path_len = query.path.size();
        KsnLookupAnswer answer = detail::sized<KsnLookupAnswer>();
        detail::ErrorSlot error(api());
        error.check(api().check_file(task_, &raw, &answer, error.get()));
        return answer_of(answer);
    }

    /// URL reputation; an empty or malformed URL throws (`KSN_ERROR_INVALID_ARGUMENT`). An
    /// untrusted URL is recorded, so the call is not const.
    Answer check_url(std::string_view url) {
        KsnLookupAnswer answer = detail::sized<KsnLookupAnswer>();
        detail::ErrorSlot error(api());
        error.check(api().check_url(task_, url.data(), url.size(), &answer, error.get()));
        return answer_of(answer);
    }

    // The documents (JSON; their schemas: Library::document_schema).
    std::string settings_json() const { return text(api().settings_json); }
    std::string log_json() const { return text(api().log_json); }
    std::string ledger_json() const { return text(api().ledger_json); }
    std::string counters_json() const { return text(api().counters_json); }
    std::string log_page(uint64_t from_seq, uint32_t max) const {
        return page(api().log_page, from_seq, max);
    }
    std::string ledger_page(uint64_t from_seq, uint32_t max) const {
        return page(api().ledger_page, from_seq, max);
    }

    const std::shared_ptr<Library> &library() const noexcept { return library_; }

    /// The C handle, for the C functions this header does not wrap (NULL once moved from).
    /// It stays this Task's: do not free it.
    KsnTask *raw() const noexcept { return task_; }

private:
    /// The library's functions; a moved-from Task has no task, and says so.
    const detail::Api &api() const {
        if (task_ == nullptr || library_ == nullptr) {
            throw Error(KSN_ERROR_INVALID_STATE,
                        "invalid_state: this ksn::Task was moved from: it holds no task");
        }
        return library_->api();
    }

    Status document(KsnOperation operation, std::string_view json) {
        KsnCall call = detail::sized<KsnCall>();
        call.operation = operation;
        call.document = json.data();
        call.document_len = json.size();
        return control(call);
    }

    Status operation(KsnOperation operation) {
        KsnCall call = detail::sized<KsnCall>();
        call.operation = operation;
        return control(call);
    }

    Status control(const KsnCall &call) {
        detail::ErrorSlot error(api());
        if (api().control != nullptr) {
            KsnStatus after = detail::sized<KsnStatus>();
            after.state = UINT32_MAX; // stays so unless the plugin wrote the status
            KsnErrorKind kind = api().control(task_, &call, &after, error.get());
            std::optional<Status> written;
            if (after.state != UINT32_MAX) written = detail::status_of(after);
            error.check(kind, written);
            return written ? *written : status();
        }
        // A plugin older than 1.3.0: the call, then its status.
        KsnErrorKind kind = older(call, error.get());
        std::optional<Status> after;
        if (kind != KSN_ERROR_INVALID_ARGUMENT) after = status();
        error.check(kind, after);
        return after ? *after : status();
    }

    KsnErrorKind older(const KsnCall &call, KsnError *error) {
        switch (call.operation) {
        case KSN_OPERATION_PUSH_POLICY:
            return api().push_policy(task_, call.document, call.document_len, error);
        case KSN_OPERATION_SET_LOCAL:
            return api().set_local(task_, call.document, call.document_len, error);
        case KSN_OPERATION_SET_PRIVATE_KSN:
            return api().set_private_ksn(task_, call.enabled != 0, error);
        case KSN_OPERATION_SET_LICENSE:
            return api().set_license(task_, call.license, error);
        case KSN_OPERATION_APPLICATION_STARTED:
            return api().application_started(task_, error);
        case KSN_OPERATION_START:
            return api().start(task_, error);
        default:
            return api().stop(task_, error);
        }
    }

    std::string text(PFN_ksn_task_settings_json function) const {
        detail::Text out(api());
        detail::ErrorSlot error(api());
        error.check(function(task_, out.get(), error.get()));
        return out.str();
    }

    std::string page(PFN_ksn_task_log_page function, uint64_t from_seq, uint32_t max) const {
        detail::Text out(api());
        detail::ErrorSlot error(api());
        error.check(function(task_, from_seq, max, out.get(), error.get()));
        return out.str();
    }

    static Answer answer_of(const KsnLookupAnswer &raw) noexcept {
        Answer answer;
        answer.verdict = raw.verdict;
        answer.action = raw.action;
        answer.source = raw.source;
        answer.cached = raw.cached;
        answer.object = KSN_COVERS(&raw, KsnLookupAnswer, object) ? raw.object : 0;
        return answer;
    }

    std::shared_ptr<Library> library_;
    KsnTask *task_ = nullptr;
};

} // namespace ksn

#endif // KSN_USAGE_TASK_HPP
