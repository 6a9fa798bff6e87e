/*
 * dfmdispatch.h - deliver pipeline results from worker threads to the
 * host's own thread.
 *
 * This header is the whole public C interface of libdfmdispatch.  Anything
 * that is not declared here is not part of the API.
 *
 * DOCS-PLACEHOLDER: the manual (introduction, object model, life-cycle,
 * threading and ownership rules) is written around these declarations.
 */
#ifndef DFMDISPATCH_H
#define DFMDISPATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#  if defined(DFM_BUILDING_LIBRARY)
#    define DFM_API __declspec(dllexport)
#  else
#    define DFM_API __declspec(dllimport)
#  endif
#elif defined(__GNUC__) || defined(__clang__)
#  define DFM_API __attribute__((visibility("default")))
#else
#  define DFM_API
#endif

/* ---- Versions --------------------------------------------------------- */

#define DFM_VERSION_MAJOR 0
#define DFM_VERSION_MINOR 1
#define DFM_VERSION_PATCH 0
#define DFM_VERSION_NUMBER \
    (DFM_VERSION_MAJOR * 10000 + DFM_VERSION_MINOR * 100 + DFM_VERSION_PATCH)
#define DFM_VERSION_STRING "0.1.0"

DFM_API unsigned dfm_version(void);
DFM_API const char *dfm_version_string(void);

/* ---- Status codes ----------------------------------------------------- */

typedef enum dfm_status {
    DFM_OK = 0,
    DFM_ERR_INVALID_ARGUMENT = 1,
    DFM_ERR_MIXED_CALLBACKS = 2,
    DFM_ERR_WRONG_KIND = 3,
    DFM_ERR_CLOSED = 4,
    DFM_ERR_QUEUE_FULL = 5,
    DFM_ERR_NO_MEMORY = 6,
    DFM_ERR_BAD_SHAPE = 7,
    DFM_ERR_TYPE_MISMATCH = 8,
    DFM_ERR_CALLBACK_FAILED = 9,
    DFM_ERR_WRONG_THREAD = 10,
    DFM_ERR_BUSY = 11,
    DFM_ERR_TIMED_OUT = 12
} dfm_status;

DFM_API const char *dfm_status_name(int status);
DFM_API const char *dfm_strerror(int status);
DFM_API const char *dfm_last_error(void);

/* ---- The token -------------------------------------------------------- */

typedef enum dfm_node_kind {
    DFM_NODE_NONE = 0,
    DFM_NODE_INT = 1,
    DFM_NODE_NAME = 2
} dfm_node_kind;

typedef struct dfm_node {
    dfm_node_kind kind;
    int64_t id;
    const char *name;
} dfm_node;

typedef struct dfm_frame {
    const int64_t *levels;
    size_t depth;
    bool is_stop;
} dfm_frame;

typedef enum dfm_value_kind {
    DFM_VALUE_NONE = 0,
    DFM_VALUE_BOOL = 1,
    DFM_VALUE_INT = 2,
    DFM_VALUE_DOUBLE = 3,
    DFM_VALUE_STRING = 4,
    DFM_VALUE_BYTES = 5,
    DFM_VALUE_JSON = 6,
    DFM_VALUE_OBJECT = 7,
    DFM_VALUE_STOP = 8,
    DFM_VALUE_ERROR = 9
} dfm_value_kind;

typedef struct dfm_value {
    dfm_value_kind kind;
    union {
        bool boolean;
        int64_t integer;
        double real;
        struct {
            const char *data;
            size_t length;
        } text;
        struct {
            const void *data;
            size_t length;
        } bytes;
        struct {
            void *pointer;
            void (*release)(void *pointer);
        } object;
    } as;
} dfm_value;

typedef struct dfm_token {
    const char *source_site;
    dfm_node source_node;
    dfm_frame frame;
    const char *target_place;
    dfm_value data;
} dfm_token;

/* ---- Callbacks -------------------------------------------------------- */

typedef struct dfm_callbacks dfm_callbacks;
typedef struct dfm_completion dfm_completion;

typedef int (*dfm_callback)(const dfm_token *token, void *user_data);
typedef void (*dfm_async_callback)(const dfm_token *token,
                                   dfm_completion *completion,
                                   void *user_data);
typedef void (*dfm_error_handler)(const dfm_token *token, int status,
                                  const char *message, void *context);

typedef enum dfm_kind {
    DFM_CALLBACKS_NONE = 0,
    DFM_CALLBACKS_SYNC = 1,
    DFM_CALLBACKS_ASYNC = 2
} dfm_kind;

DFM_API void dfm_complete(dfm_completion *completion, int status);

DFM_API dfm_callbacks *dfm_callbacks_create(void);
DFM_API void dfm_callbacks_destroy(dfm_callbacks *set);
DFM_API dfm_status dfm_callbacks_set_default(dfm_callbacks *set,
                                             dfm_callback callback,
                                             void *user_data);
DFM_API dfm_status dfm_callbacks_set_default_async(
    dfm_callbacks *set, dfm_async_callback callback, void *user_data);
DFM_API dfm_status dfm_callbacks_add_place(dfm_callbacks *set,
                                           const char *place,
                                           dfm_callback callback,
                                           void *user_data);
DFM_API dfm_status dfm_callbacks_add_place_async(dfm_callbacks *set,
                                                 const char *place,
                                                 dfm_async_callback callback,
                                                 void *user_data);
DFM_API dfm_status dfm_callbacks_add_shaped(dfm_callbacks *set,
                                            const char *place,
                                            void (*function)(void),
                                            const char *shape,
                                            void *user_data);
DFM_API dfm_status dfm_callbacks_set_error_handler(dfm_callbacks *set,
                                                   dfm_error_handler handler,
                                                   void *context);
DFM_API dfm_status dfm_callbacks_kind(const dfm_callbacks *set,
                                      dfm_kind *out);

/* ---- Dispatchers ------------------------------------------------------ */

typedef struct dfm_dispatcher dfm_dispatcher;
typedef struct dfm_runner dfm_runner;

typedef struct dfm_executor {
    void (*post)(void *context, void (*work)(void *arg), void *arg);
    void *context;
} dfm_executor;

typedef enum dfm_overflow {
    DFM_OVERFLOW_FAIL = 0,
    DFM_OVERFLOW_BLOCK = 1,
    DFM_OVERFLOW_DROP_OLDEST = 2
} dfm_overflow;

typedef struct dfm_manual_options {
    size_t struct_size;
    size_t capacity;
    dfm_overflow overflow;
    uint64_t block_timeout_ns;
    void (*notify)(void *context);
    void *notify_context;
    bool use_wake_fd;
} dfm_manual_options;

DFM_API void dfm_manual_options_init(dfm_manual_options *options);

DFM_API dfm_dispatcher *dfm_direct_dispatcher_create(void);
DFM_API dfm_dispatcher *dfm_manual_dispatcher_create(
    const dfm_manual_options *options);
DFM_API dfm_dispatcher *dfm_executor_dispatcher_create(dfm_executor executor);
DFM_API void dfm_dispatcher_destroy(dfm_dispatcher *dispatcher);
DFM_API dfm_status dfm_dispatcher_create_runner(dfm_dispatcher *dispatcher,
                                                const dfm_callbacks *set,
                                                dfm_runner **out);

/* ---- Runners ---------------------------------------------------------- */

typedef enum dfm_stop_mode {
    DFM_STOP_DRAIN = 0,
    DFM_STOP_DISCARD = 1
} dfm_stop_mode;

typedef struct dfm_pump_result {
    size_t delivered;
    size_t failed;
    size_t pending;
} dfm_pump_result;

typedef struct dfm_stats {
    uint64_t dispatched;
    uint64_t delivered;
    uint64_t failed;
    uint64_t dropped;
    uint64_t discarded;
    uint64_t rejected;
    uint64_t pending;
    uint64_t pending_high_water;
} dfm_stats;

DFM_API dfm_status dfm_runner_start(dfm_runner *runner);
DFM_API dfm_status dfm_runner_stop(dfm_runner *runner, dfm_stop_mode mode);
DFM_API dfm_status dfm_runner_dispatch(dfm_runner *runner,
                                       const dfm_token *tokens,
                                       size_t count);
DFM_API dfm_status dfm_process_pending(dfm_runner *runner);
DFM_API dfm_status dfm_process_pending_async(dfm_runner *runner);
DFM_API dfm_status dfm_process_pending_budget(dfm_runner *runner,
                                              size_t max_tokens,
                                              uint64_t max_ns,
                                              dfm_pump_result *out);
DFM_API bool dfm_has_pending(const dfm_runner *runner);
DFM_API int dfm_runner_wake_fd(const dfm_runner *runner);
DFM_API dfm_status dfm_runner_stats(const dfm_runner *runner,
                                    dfm_stats *out);
DFM_API void dfm_runner_destroy(dfm_runner *runner);

#ifdef __cplusplus
}
#endif

#endif /* DFMDISPATCH_H */
