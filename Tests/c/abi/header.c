/*
 * header.c - compiled, never run: include/dfmdispatch.h must compile as
 * C99 and as C++ with every warning an error, twice included, and keep
 * the numbers that API.md pins.  check_header.sh builds it both ways.
 */
#include "dfmdispatch.h"
#include "dfmdispatch.h"

/* A compile-time assertion for C99 and C++ alike. */
#define PINNED(name, condition) \
    typedef char pinned_##name[(condition) ? 1 : -1]

PINNED(ok, DFM_OK == 0);
PINNED(invalid_argument, DFM_ERR_INVALID_ARGUMENT == 1);
PINNED(mixed_callbacks, DFM_ERR_MIXED_CALLBACKS == 2);
PINNED(wrong_kind, DFM_ERR_WRONG_KIND == 3);
PINNED(closed, DFM_ERR_CLOSED == 4);
PINNED(queue_full, DFM_ERR_QUEUE_FULL == 5);
PINNED(no_memory, DFM_ERR_NO_MEMORY == 6);
PINNED(bad_shape, DFM_ERR_BAD_SHAPE == 7);
PINNED(type_mismatch, DFM_ERR_TYPE_MISMATCH == 8);
PINNED(callback_failed, DFM_ERR_CALLBACK_FAILED == 9);
PINNED(wrong_thread, DFM_ERR_WRONG_THREAD == 10);
PINNED(busy, DFM_ERR_BUSY == 11);
PINNED(timed_out, DFM_ERR_TIMED_OUT == 12);

PINNED(node_none, DFM_NODE_NONE == 0);
PINNED(node_int, DFM_NODE_INT == 1);
PINNED(node_name, DFM_NODE_NAME == 2);

PINNED(value_none, DFM_VALUE_NONE == 0);
PINNED(value_bool, DFM_VALUE_BOOL == 1);
PINNED(value_int, DFM_VALUE_INT == 2);
PINNED(value_double, DFM_VALUE_DOUBLE == 3);
PINNED(value_string, DFM_VALUE_STRING == 4);
PINNED(value_bytes, DFM_VALUE_BYTES == 5);
PINNED(value_json, DFM_VALUE_JSON == 6);
PINNED(value_object, DFM_VALUE_OBJECT == 7);
PINNED(value_stop, DFM_VALUE_STOP == 8);
PINNED(value_error, DFM_VALUE_ERROR == 9);

PINNED(kind_none, DFM_CALLBACKS_NONE == 0);
PINNED(kind_sync, DFM_CALLBACKS_SYNC == 1);
PINNED(kind_async, DFM_CALLBACKS_ASYNC == 2);

PINNED(overflow_fail, DFM_OVERFLOW_FAIL == 0);
PINNED(overflow_block, DFM_OVERFLOW_BLOCK == 1);
PINNED(overflow_drop_oldest, DFM_OVERFLOW_DROP_OLDEST == 2);

PINNED(stop_drain, DFM_STOP_DRAIN == 0);
PINNED(stop_discard, DFM_STOP_DISCARD == 1);

PINNED(version_number,
       DFM_VERSION_NUMBER == DFM_VERSION_MAJOR * 10000
                                 + DFM_VERSION_MINOR * 100
                                 + DFM_VERSION_PATCH);

/* Every entry point, taken by address with the type API.md gives it. */
void header_uses_every_declaration(void);

void header_uses_every_declaration(void)
{
    unsigned (*version)(void) = dfm_version;
    const char *(*version_string)(void) = dfm_version_string;
    const char *(*status_name)(int) = dfm_status_name;
    const char *(*strerror_)(int) = dfm_strerror;
    const char *(*last_error)(void) = dfm_last_error;
    void (*complete)(dfm_completion *, int) = dfm_complete;
    dfm_callbacks *(*callbacks_create)(void) = dfm_callbacks_create;
    void (*callbacks_destroy)(dfm_callbacks *) = dfm_callbacks_destroy;
    dfm_status (*set_default)(dfm_callbacks *, dfm_callback, void *) =
        dfm_callbacks_set_default;
    dfm_status (*set_default_async)(dfm_callbacks *, dfm_async_callback,
                                    void *) =
        dfm_callbacks_set_default_async;
    dfm_status (*add_place)(dfm_callbacks *, const char *, dfm_callback,
                            void *) = dfm_callbacks_add_place;
    dfm_status (*add_place_async)(dfm_callbacks *, const char *,
                                  dfm_async_callback, void *) =
        dfm_callbacks_add_place_async;
    dfm_status (*add_shaped)(dfm_callbacks *, const char *, void (*)(void),
                             const char *, void *) =
        dfm_callbacks_add_shaped;
    dfm_status (*set_error_handler)(dfm_callbacks *, dfm_error_handler,
                                    void *) =
        dfm_callbacks_set_error_handler;
    dfm_status (*callbacks_kind)(const dfm_callbacks *, dfm_kind *) =
        dfm_callbacks_kind;
    void (*options_init)(dfm_manual_options *) = dfm_manual_options_init;
    dfm_dispatcher *(*direct_create)(void) = dfm_direct_dispatcher_create;
    dfm_dispatcher *(*manual_create)(const dfm_manual_options *) =
        dfm_manual_dispatcher_create;
    dfm_dispatcher *(*executor_create)(dfm_executor) =
        dfm_executor_dispatcher_create;
    void (*dispatcher_destroy)(dfm_dispatcher *) = dfm_dispatcher_destroy;
    dfm_status (*create_runner)(dfm_dispatcher *, const dfm_callbacks *,
                                dfm_runner **) =
        dfm_dispatcher_create_runner;
    dfm_status (*runner_start)(dfm_runner *) = dfm_runner_start;
    dfm_status (*runner_stop)(dfm_runner *, dfm_stop_mode) =
        dfm_runner_stop;
    dfm_status (*dispatch)(dfm_runner *, const dfm_token *, size_t) =
        dfm_runner_dispatch;
    dfm_status (*pending)(dfm_runner *) = dfm_process_pending;
    dfm_status (*pending_async)(dfm_runner *) = dfm_process_pending_async;
    dfm_status (*pending_budget)(dfm_runner *, size_t, uint64_t,
                                 dfm_pump_result *) =
        dfm_process_pending_budget;
    bool (*has_pending)(const dfm_runner *) = dfm_has_pending;
    int (*wake_fd)(const dfm_runner *) = dfm_runner_wake_fd;
    dfm_status (*stats)(const dfm_runner *, dfm_stats *) = dfm_runner_stats;
    void (*runner_destroy)(dfm_runner *) = dfm_runner_destroy;

    dfm_token token;
    dfm_manual_options options;
    dfm_pump_result result;
    dfm_stats counts;
    dfm_executor executor;

    token.source_site = "site";
    token.source_node.kind = DFM_NODE_NAME;
    token.source_node.id = 0;
    token.source_node.name = "node";
    token.frame.levels = 0;
    token.frame.depth = 0;
    token.frame.is_stop = false;
    token.target_place = "yield";
    token.data.kind = DFM_VALUE_STRING;
    token.data.as.text.data = "text";
    token.data.as.text.length = 4;
    token.data.as.bytes.length = 0;
    token.data.as.object.pointer = 0;
    token.data.as.object.release = 0;
    token.data.as.boolean = true;
    token.data.as.integer = 1;
    token.data.as.real = 1.0;
    options.struct_size = sizeof options;
    options.capacity = 0;
    options.overflow = DFM_OVERFLOW_FAIL;
    options.block_timeout_ns = 0;
    options.notify = 0;
    options.notify_context = 0;
    options.use_wake_fd = false;
    result.delivered = result.failed = result.pending = 0;
    counts.dispatched = counts.delivered = counts.failed = 0;
    counts.dropped = counts.discarded = counts.rejected = 0;
    counts.pending = counts.pending_high_water = 0;
    executor.post = 0;
    executor.context = 0;

    (void)version; (void)version_string; (void)status_name;
    (void)strerror_; (void)last_error; (void)complete;
    (void)callbacks_create; (void)callbacks_destroy; (void)set_default;
    (void)set_default_async; (void)add_place; (void)add_place_async;
    (void)add_shaped; (void)set_error_handler; (void)callbacks_kind;
    (void)options_init; (void)direct_create; (void)manual_create;
    (void)executor_create; (void)dispatcher_destroy; (void)create_runner;
    (void)runner_start; (void)runner_stop; (void)dispatch; (void)pending;
    (void)pending_async; (void)pending_budget; (void)has_pending;
    (void)wake_fd; (void)stats; (void)runner_destroy;
    (void)token; (void)options; (void)result; (void)counts; (void)executor;
}
