/*
 * fixtures.h - what several C test programs share: tokens made in one
 * line, OBJECT payloads that count their releases, a recording callback,
 * runners made without ceremony, and small time and thread helpers.
 *
 * Include after check.h.
 */
#ifndef DFM_TEST_FIXTURES_H
#define DFM_TEST_FIXTURES_H

#include <pthread.h>
#include <time.h>

/* ---- OBJECT payloads ------------------------------------------------- */

/* Every release the library (or a test) makes, over the whole program. */
static long fixture_release_total;

/* A payload whose releases are counted one by one. */
typedef struct tracked_object {
    int releases;
    int64_t id;
} tracked_object;

static inline void tracked_release(void *pointer)
{
    tracked_object *object = (tracked_object *)pointer;

    __atomic_add_fetch(&object->releases, 1, __ATOMIC_SEQ_CST);
    __atomic_add_fetch(&fixture_release_total, 1, __ATOMIC_SEQ_CST);
}

static inline int tracked_releases(tracked_object *object)
{
    return __atomic_load_n(&object->releases, __ATOMIC_SEQ_CST);
}

static inline long release_total(void)
{
    return __atomic_load_n(&fixture_release_total, __ATOMIC_SEQ_CST);
}

/* Objects in an array, each with releases 0 and id = its index. */
static inline void tracked_reset(tracked_object *objects, size_t count)
{
    size_t i;

    for (i = 0; i < count; i++) {
        objects[i].releases = 0;
        objects[i].id = (int64_t)i;
    }
}

/* How many of the objects were released exactly `times` times. */
static inline size_t tracked_count_released(tracked_object *objects,
                                            size_t count, int times)
{
    size_t i;
    size_t matching = 0;

    for (i = 0; i < count; i++) {
        if (tracked_releases(&objects[i]) == times)
            matching++;
    }
    return matching;
}

/* ---- Tokens ---------------------------------------------------------- */

static inline dfm_token token_make(const char *place, dfm_value data)
{
    dfm_token token;

    memset(&token, 0, sizeof token);
    token.source_site = "site";
    token.source_node.kind = DFM_NODE_NONE;
    token.frame.levels = NULL;
    token.frame.depth = 0;
    token.frame.is_stop = false;
    token.target_place = place;
    token.data = data;
    return token;
}

static inline dfm_value value_none(void)
{
    dfm_value value;

    memset(&value, 0, sizeof value);
    value.kind = DFM_VALUE_NONE;
    return value;
}

static inline dfm_value value_int(int64_t integer)
{
    dfm_value value = value_none();

    value.kind = DFM_VALUE_INT;
    value.as.integer = integer;
    return value;
}

static inline dfm_value value_object(tracked_object *object)
{
    dfm_value value = value_none();

    value.kind = DFM_VALUE_OBJECT;
    value.as.object.pointer = object;
    value.as.object.release = tracked_release;
    return value;
}

static inline dfm_token token_int(const char *place, int64_t integer)
{
    return token_make(place, value_int(integer));
}

/* An OBJECT token whose node id is the object's id, so a callback can
 * tell the tokens apart without touching the payload. */
static inline dfm_token token_object(const char *place,
                                     tracked_object *object)
{
    dfm_token token = token_make(place, value_object(object));

    token.source_node.kind = DFM_NODE_INT;
    token.source_node.id = object->id;
    return token;
}

/* ---- A recording callback -------------------------------------------- */

#define RECORDER_CAPACITY 4096

/* What a sync callback saw: the node id or INT value of each token (the
 * node id for OBJECT tokens), and the thread it ran on.  A token whose key
 * equals fail_key makes the callback return fail_value. */
typedef struct recorder {
    size_t count;
    int64_t keys[RECORDER_CAPACITY];
    pthread_t thread;
    int64_t fail_key;
    int fail_value;
} recorder;

static inline void recorder_reset(recorder *record)
{
    memset(record, 0, sizeof *record);
    record->fail_key = -1;
}

static inline int64_t token_key(const dfm_token *token)
{
    if (token->data.kind == DFM_VALUE_INT)
        return token->data.as.integer;
    return token->source_node.id;
}

static inline int recorder_callback(const dfm_token *token, void *user_data)
{
    recorder *record = (recorder *)user_data;
    int64_t key = token_key(token);

    if (record->count < RECORDER_CAPACITY)
        record->keys[record->count] = key;
    record->count++;
    record->thread = pthread_self();
    return key == record->fail_key ? record->fail_value : 0;
}

/* What the error handler saw, last call first. */
typedef struct error_record {
    size_t count;
    int status;
    bool had_token;
    int64_t key;
    char message[512];
} error_record;

static inline void error_record_reset(error_record *errors)
{
    memset(errors, 0, sizeof *errors);
}

static inline void error_recorder(const dfm_token *token, int status,
                                  const char *message, void *context)
{
    error_record *errors = (error_record *)context;

    errors->count++;
    errors->status = status;
    errors->had_token = token != NULL;
    errors->key = token != NULL ? token_key(token) : -1;
    snprintf(errors->message, sizeof errors->message, "%s",
             message != NULL ? message : "(null)");
}

/* ---- Runners --------------------------------------------------------- */

/* A set with one sync default callback (and an error handler when
 * errors is not NULL). */
static inline dfm_callbacks *callbacks_default(dfm_callback callback,
                                               void *user_data,
                                               error_record *errors)
{
    dfm_callbacks *set = dfm_callbacks_create();

    CHECK(set != NULL);
    if (set == NULL)
        return NULL;
    CHECK_STATUS(dfm_callbacks_set_default(set, callback, user_data),
                 DFM_OK);
    if (errors != NULL) {
        CHECK_STATUS(dfm_callbacks_set_error_handler(set, error_recorder,
                                                     errors),
                     DFM_OK);
    }
    return set;
}

/* A runner of a fresh dispatcher (the dispatcher is destroyed at once:
 * a runner outlives it). */
static inline dfm_runner *runner_from(dfm_dispatcher *dispatcher,
                                      const dfm_callbacks *set)
{
    dfm_runner *runner = NULL;

    CHECK(dispatcher != NULL);
    if (dispatcher == NULL)
        return NULL;
    CHECK_STATUS(dfm_dispatcher_create_runner(dispatcher, set, &runner),
                 DFM_OK);
    CHECK(runner != NULL);
    dfm_dispatcher_destroy(dispatcher);
    return runner;
}

static inline dfm_runner *manual_runner(const dfm_callbacks *set)
{
    return runner_from(dfm_manual_dispatcher_create(NULL), set);
}

static inline dfm_runner *manual_runner_with(const dfm_manual_options *o,
                                             const dfm_callbacks *set)
{
    return runner_from(dfm_manual_dispatcher_create(o), set);
}

static inline dfm_runner *direct_runner(const dfm_callbacks *set)
{
    return runner_from(dfm_direct_dispatcher_create(), set);
}

/* The stats of a runner; all zero if the call fails. */
static inline dfm_stats stats_of(const dfm_runner *runner)
{
    dfm_stats stats;

    memset(&stats, 0, sizeof stats);
    CHECK_STATUS(dfm_runner_stats(runner, &stats), DFM_OK);
    return stats;
}

/* dispatched = delivered + failed + dropped + discarded + pending. */
static inline bool stats_balance(const dfm_stats *stats)
{
    return stats->dispatched == stats->delivered + stats->failed
                                    + stats->dropped + stats->discarded
                                    + stats->pending;
}

/* ---- Time and threads ------------------------------------------------ */

static inline uint64_t now_ns(void)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

static inline void sleep_ms(unsigned milliseconds)
{
    struct timespec delay;

    delay.tv_sec = milliseconds / 1000;
    delay.tv_nsec = (long)(milliseconds % 1000) * 1000000L;
    while (nanosleep(&delay, &delay) != 0) {
    }
}

/* Runs function(argument) on a new thread and waits for it. */
static inline void run_on_new_thread(void *(*function)(void *),
                                     void *argument)
{
    pthread_t thread;

    if (!CHECK(pthread_create(&thread, NULL, function, argument) == 0))
        return;
    pthread_join(thread, NULL);
}

#endif /* DFM_TEST_FIXTURES_H */
