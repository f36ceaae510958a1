/*
 * A C host of the KSN Usage task plugin: loads libksn_plugin.so with dlopen, gives the
 * task its services from memory (storage, clock, events, a KSN transport that knows one
 * untrusted file), and plays the Private KSN story:
 *
 *   the administrator accepts the Private KSN statement by a locked policy while Private
 *   KSN is on; the task starts and answers a lookup through Private KSN; Private KSN is
 *   switched off under it, and it fails with license_violation; a lookup then fails open;
 *   the Global statement is accepted locally, the task starts again, and the lookup goes
 *   through the Administration Server's proxy.
 *
 * Usage: c-host PATH/TO/libksn_plugin.so. Exits 0 when the story holds.
 * Single-threaded, so the host's state needs no locks; a host that calls the task from
 * several threads gets its callbacks on those threads, concurrently.
 */
#define _POSIX_C_SOURCE 200809L

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ksn_usage_task.h"

/* ---- The library's functions, looked up by name. ---- */

static struct {
    PFN_ksn_plugin_info plugin_info;
    PFN_ksn_install_logger install_logger;
    PFN_ksn_error_kind_name error_kind_name;
    PFN_ksn_error_free error_free;
    PFN_ksn_task_new task_new;
    PFN_ksn_task_free task_free;
    PFN_ksn_task_push_policy push_policy;
    PFN_ksn_task_set_local set_local;
    PFN_ksn_task_set_private_ksn set_private_ksn;
    PFN_ksn_task_set_license set_license;
    PFN_ksn_task_start start;
    PFN_ksn_task_status status;
    PFN_ksn_task_check_file check_file;
} api;

static int load(void *library, const char *name, void *field, size_t size) {
    void *symbol = dlsym(library, name);
    if (symbol == NULL) {
        fprintf(stderr,
                "c-host: the library has no %s (built before the C API? rebuild it with "
                "cargo build --release -p ksn-plugin)\n",
                name);
        return 0;
    }
    /* memcpy: ISO C has no cast from an object pointer to a function pointer. */
    memcpy(field, &symbol, size);
    return 1;
}

#define LOAD(field, name) load(library, name, &api.field, sizeof api.field)

/* ---- The host's services, in memory. ---- */

#define MAX_RECORDS 4096

typedef struct {
    uint8_t *bytes;
    size_t len;
} Record;

/* One storage key is all the plugin uses; a real host keys by the key it is given. */
static struct {
    Record records[MAX_RECORDS];
    size_t count;
    uint64_t now_ms;
    int task_error_seen;
    char task_error_kind[64];
} host;

static const char EICAR[] = "44d88612fea8a8f36de82e1278abb02f";

static void print_text(const char *label, const char *text, size_t len) {
    printf("%s%.*s\n", label, (int)len, text);
}

static void fail_with(const KsnSink *error, const char *reason) {
    if (error != NULL && error->push != NULL) {
        error->push(error->state, (const uint8_t *)reason, strlen(reason));
    }
}

static void emit_event(void *context, const char *json, size_t len) {
    (void)context;
    print_text("  event: ", json, len);
    /* The text is not 0-terminated: copy it to search it. A real host parses the JSON;
     * this example only looks for the task error's kind. */
    char *text = malloc(len + 1);
    if (text == NULL) {
        return;
    }
    memcpy(text, json, len);
    text[len] = '\0';
    const char *kind = "\"kind\":\"";
    const char *at = strstr(text, kind);
    if (strstr(text, "\"type\":\"task_error\"") != NULL && at != NULL) {
        at += strlen(kind);
        size_t n = strcspn(at, "\"");
        if (n >= sizeof host.task_error_kind) {
            n = sizeof host.task_error_kind - 1;
        }
        memcpy(host.task_error_kind, at, n);
        host.task_error_kind[n] = '\0';
        host.task_error_seen = 1;
    }
    free(text);
}

static uint64_t now_ms(void *context) {
    (void)context;
    host.now_ms += 10; /* time moves on a little with every reading */
    return host.now_ms;
}

static int32_t storage_append(void *context, const char *key, size_t key_len,
                              const uint8_t *record, size_t record_len,
                              const KsnSink *error) {
    (void)context, (void)key, (void)key_len;
    if (host.count == MAX_RECORDS) {
        fail_with(error, "the example's storage is full");
        return 1;
    }
    uint8_t *copy = malloc(record_len > 0 ? record_len : 1);
    if (copy == NULL) {
        fail_with(error, "out of memory");
        return 1;
    }
    memcpy(copy, record, record_len);
    host.records[host.count].bytes = copy;
    host.records[host.count].len = record_len;
    host.count++;
    return 0;
}

static int32_t storage_records(void *context, const char *key, size_t key_len,
                               const KsnSink *records, const KsnSink *error) {
    (void)context, (void)key, (void)key_len, (void)error;
    for (size_t i = 0; i < host.count; i++) {
        records->push(records->state, host.records[i].bytes, host.records[i].len);
    }
    return 0;
}

static int32_t storage_replace(void *context, const char *key, size_t key_len,
                               const uint8_t *const *records, const size_t *lens,
                               size_t count, const KsnSink *error) {
    if (count > MAX_RECORDS) {
        fail_with(error, "too many records");
        return 1;
    }
    for (size_t i = 0; i < host.count; i++) {
        free(host.records[i].bytes);
    }
    host.count = 0;
    for (size_t i = 0; i < count; i++) {
        if (storage_append(context, key, key_len, records[i], lens[i], error) != 0) {
            return 1;
        }
    }
    return 0;
}

static KsnVerdict local_file_verdict(void *context, const KsnFileQuery *query) {
    (void)context, (void)query;
    return KSN_VERDICT_UNKNOWN; /* no local allow or deny rules */
}

static KsnVerdict local_url_verdict(void *context, const char *url, size_t len) {
    (void)context, (void)url, (void)len;
    return KSN_VERDICT_UNKNOWN;
}

static const char *service_name(KsnService service) {
    switch (service) {
    case KSN_SERVICE_GLOBAL: return "global";
    case KSN_SERVICE_PROXY: return "proxy";
    case KSN_SERVICE_PRIVATE: return "private";
    default: return "none";
    }
}

static void md5_hex(const uint8_t md5[16], char out[33]) {
    for (int i = 0; i < 16; i++) {
        snprintf(out + 2 * i, 3, "%02x", md5[i]);
    }
}

static KsnTransport ksn_file(void *context, KsnService service, const KsnFileQuery *query,
                             uint32_t timeout_ms, KsnReply *reply) {
    (void)context, (void)timeout_ms;
    char hex[33];
    md5_hex(query->md5, hex);
    printf("  %s KSN asked about %s\n", service_name(service), hex);
    /* Every service knows the test file as untrusted. Write only what struct_size holds. */
    if (reply->struct_size >= offsetof(KsnReply, ksn) + sizeof reply->ksn) {
        reply->ksn = strcmp(hex, EICAR) == 0 ? KSN_VERDICT_UNTRUSTED : KSN_VERDICT_UNKNOWN;
    }
    if (reply->struct_size >= offsetof(KsnReply, latency_ms) + sizeof reply->latency_ms) {
        reply->latency_ms = 5;
    }
    return KSN_TRANSPORT_DELIVERED;
}

static KsnTransport ksn_url(void *context, KsnService service, const char *url, size_t len,
                            uint32_t timeout_ms, KsnReply *reply) {
    (void)context, (void)service, (void)url, (void)len, (void)timeout_ms, (void)reply;
    return KSN_TRANSPORT_DELIVERED; /* unknown, as the plugin preset it */
}

static KsnTransport ksn_upload(void *context, KsnService service, KsnDataCategory category,
                               uint32_t items, uint32_t timeout_ms, uint32_t *latency_ms) {
    (void)context, (void)service, (void)category, (void)items, (void)timeout_ms;
    *latency_ms = 5;
    return KSN_TRANSPORT_DELIVERED;
}

static int32_t backup_and_delete(void *context, const KsnFileQuery *query,
                                 const KsnSink *error) {
    (void)context, (void)error;
    char hex[33];
    md5_hex(query->md5, hex);
    /* The object the lookup was about (1.3.0): delete that one, not whatever shares its
     * checksum. An older plugin's struct_size does not reach it. */
    if (query->struct_size >= offsetof(KsnFileQuery, path_len) + sizeof query->path_len) {
        printf("  host: backed up and deleted object %llu (%.*s, %s)\n",
               (unsigned long long)query->object, (int)query->path_len,
               query->path != NULL ? query->path : "", hex);
    } else {
        printf("  host: backed up and deleted %s\n", hex);
    }
    return 0;
}

static void log_record(void *context, KsnLogLevel level, const char *target, size_t target_len,
                       const char *message, size_t message_len) {
    (void)context;
    fprintf(stderr, "  log %u %.*s: %.*s\n", (unsigned)level, (int)target_len, target,
            (int)message_len, message);
}

/* ---- The story. ---- */

static int failures = 0;

static void expect(int holds, const char *what) {
    if (!holds) {
        printf("FAILED: %s\n", what);
        failures++;
    }
}

static KsnError error_slot(void) {
    KsnError error;
    memset(&error, 0, sizeof error);
    error.struct_size = sizeof error;
    return error;
}

/* Runs one call's outcome: prints an error and frees its message; answers the kind. */
static KsnErrorKind report(const char *what, KsnErrorKind kind, KsnError *error) {
    if (kind == KSN_OK) {
        printf("%s: ok\n", what);
    } else {
        printf("%s: %s: %.*s\n", what, api.error_kind_name(kind), (int)error->message_len,
               error->message);
        api.error_free(error);
    }
    return kind;
}

static KsnStatus status_of(const KsnTask *task) {
    KsnStatus status;
    KsnError error = error_slot();
    memset(&status, 0, sizeof status);
    status.struct_size = sizeof status;
    KsnErrorKind kind = api.status(task, &status, &error);
    if (kind != KSN_OK) {
        report("status", kind, &error);
    }
    printf("  state %s, error %s, network %s, Private KSN %s\n",
           status.state == KSN_STATE_RUNNING ? "running"
           : status.state == KSN_STATE_FAILED ? "failed" : "stopped",
           api.error_kind_name(status.error), service_name(status.network),
           status.private_ksn ? "on" : "off");
    return status;
}

static const char *verdict_name(KsnVerdict verdict) {
    switch (verdict) {
    case KSN_VERDICT_TRUSTED: return "trusted";
    case KSN_VERDICT_UNTRUSTED: return "untrusted";
    case KSN_VERDICT_UNAVAILABLE: return "unavailable";
    default: return "unknown";
    }
}

static KsnLookupAnswer look_up(const KsnTask *task, const char *hex) {
    KsnFileQuery query;
    KsnLookupAnswer answer;
    KsnError error = error_slot();
    memset(&query, 0, sizeof query);
    memset(&answer, 0, sizeof answer);
    query.struct_size = sizeof query;
    answer.struct_size = sizeof answer;
    for (int i = 0; i < 16; i++) {
        unsigned byte = 0;
        sscanf(hex + 2 * i, "%2x", &byte);
        query.md5[i] = (uint8_t)byte;
    }
    query.size_bytes = 68;
    query.object = 1; /* the host's handle of the file, handed back in the answer */
    query.path = "/srv/share/eicar.com";
    query.path_len = strlen(query.path);
    report("check_file", api.check_file(task, &query, &answer, &error), &error);
    printf("  %s: %s, action %s%s\n", hex, verdict_name(answer.verdict),
           answer.action == KSN_ACTION_DELETED ? "deleted"
           : answer.action == KSN_ACTION_LOGGED ? "logged"
           : answer.action == KSN_ACTION_DELETE_FAILED ? "delete_failed" : "none",
           answer.cached ? " (cached)" : "");
    return answer;
}

static KsnErrorKind document(const char *what, PFN_ksn_task_push_policy call,
                             const KsnTask *task, const char *json) {
    KsnError error = error_slot();
    return report(what, call(task, json, strlen(json), &error), &error);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s PATH/TO/libksn_plugin.so\n", argv[0]);
        return 2;
    }
    void *library = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (library == NULL) {
        fprintf(stderr, "c-host: %s\n", dlerror());
        return 2;
    }
    if (!(LOAD(plugin_info, "ksn_plugin_info") && LOAD(install_logger, "ksn_install_logger")
          && LOAD(error_kind_name, "ksn_error_kind_name") && LOAD(error_free, "ksn_error_free")
          && LOAD(task_new, "ksn_task_new") && LOAD(task_free, "ksn_task_free")
          && LOAD(push_policy, "ksn_task_push_policy") && LOAD(set_local, "ksn_task_set_local")
          && LOAD(set_private_ksn, "ksn_task_set_private_ksn")
          && LOAD(set_license, "ksn_task_set_license") && LOAD(start, "ksn_task_start")
          && LOAD(status, "ksn_task_status") && LOAD(check_file, "ksn_task_check_file"))) {
        return 2;
    }

    KsnError error = error_slot();
    KsnLogSink sink;
    memset(&sink, 0, sizeof sink);
    sink.struct_size = sizeof sink;
    sink.log = log_record;
    sink.max_level = KSN_LOG_WARN;
    report("install_logger", api.install_logger(&sink, &error), &error);

    KsnPluginInfo info;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    if (report("plugin_info", api.plugin_info(&info, &error), &error) != KSN_OK) {
        return 1;
    }
    printf("  %.*s %.*s, contract %.*s\n", (int)info.name_len, info.name,
           (int)info.version_len, info.version, (int)info.contract_version_len,
           info.contract_version);

    /* A table from this header: struct_size says which callbacks it has. */
    KsnHost table;
    memset(&table, 0, sizeof table);
    table.struct_size = sizeof table;
    table.context = NULL;
    table.emit_event = emit_event;
    table.now_ms = now_ms;
    table.storage_append = storage_append;
    table.storage_records = storage_records;
    table.local_file_verdict = local_file_verdict;
    table.local_url_verdict = local_url_verdict;
    table.ksn_file = ksn_file;
    table.ksn_url = ksn_url;
    table.ksn_upload = ksn_upload;
    table.backup_and_delete = backup_and_delete;
    table.storage_replace = storage_replace;
    table.log_retention = NULL; /* the contract's default retention */

    KsnTask *task = NULL;
    if (report("task_new", api.task_new(&table, &task, &error), &error) != KSN_OK) {
        return 1;
    }

    KsnErrorKind kind = api.set_license(task, KSN_LICENSE_VALID, &error);
    report("set_license valid", kind, &error);
    expect(kind == KSN_OK, "the licence is taken");
    kind = report("set_private_ksn on", api.set_private_ksn(task, true, &error), &error);
    expect(kind == KSN_OK, "Private KSN is switched on");
    /* tests/policies/accept-ksn-locked.json: in Private KSN mode the box accepts the
     * Private KSN statement. */
    kind = document("push_policy (statement accepted, locked)", api.push_policy, task,
                    "{\"settings\": {\"data_handling\": {\"ksn_statement_accepted\": "
                    "{\"value\": true, \"locked\": true, "
                    "\"versions\": {\"ksn\": 1, \"private_ksn\": 1}}}}}");
    expect(kind == KSN_OK, "the policy is accepted");
    kind = report("start", api.start(task, &error), &error);
    expect(kind == KSN_OK, "the task starts");
    KsnStatus status = status_of(task);
    expect(status.state == KSN_STATE_RUNNING && status.network == KSN_SERVICE_PRIVATE,
           "the task runs on Private KSN");

    KsnLookupAnswer answer = look_up(task, EICAR);
    expect(answer.verdict == KSN_VERDICT_UNTRUSTED && answer.action == KSN_ACTION_DELETED
               && answer.object == 1,
           "Private KSN finds the test file untrusted, and it is deleted");

    host.task_error_seen = 0;
    kind = report("set_private_ksn off", api.set_private_ksn(task, false, &error), &error);
    expect(kind == KSN_OK, "the host's report is taken");
    status = status_of(task);
    expect(status.state == KSN_STATE_FAILED && status.error == KSN_ERROR_LICENSE_VIOLATION,
           "the task fails with license_violation");
    expect(host.task_error_seen && strcmp(host.task_error_kind, "license_violation") == 0,
           "a task_error event says license_violation");
    if (status.error == KSN_ERROR_LICENSE_VIOLATION) {
        printf("the task stopped with %s\n", api.error_kind_name(status.error));
    }

    answer = look_up(task, EICAR);
    expect(answer.verdict == KSN_VERDICT_UNAVAILABLE, "a lookup fails open while failed");

    kind = report("start", api.start(task, &error), &error);
    expect(kind == KSN_ERROR_STATEMENT_NOT_ACCEPTED,
           "the Private KSN acceptance does not carry over to Global KSN");
    kind = document("set_local (Global statement accepted)", api.set_local, task,
                    "{\"data_handling\": {\"ksn_statement_accepted\": true}}");
    expect(kind == KSN_OK, "the Global statement is accepted locally");
    kind = report("start", api.start(task, &error), &error);
    expect(kind == KSN_OK, "the task starts again");
    answer = look_up(task, EICAR);
    expect(answer.verdict == KSN_VERDICT_UNTRUSTED && answer.action == KSN_ACTION_DELETED,
           "the proxy finds the test file untrusted, and it is deleted");
    status = status_of(task);
    expect(status.network == KSN_SERVICE_PROXY, "the task now goes through the proxy");

    api.task_free(task);
    for (size_t i = 0; i < host.count; i++) {
        free(host.records[i].bytes);
    }
    /* The library stays loaded: the logger installed in it lives as long as it does. */

    if (failures > 0) {
        printf("the story does not hold: %d failure(s)\n", failures);
        return 1;
    }
    printf("the story holds\n");
    return 0;
}
