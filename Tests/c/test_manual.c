/*
 * test_manual.c - the manual runner: routing, pumps and their snapshot,
 * failures, budgets, the owner thread, stop and destroy (also from inside
 * a callback), stats, bounded queues, the wake fd and notify.
 */
#include "check.h"
#include "fixtures.h"

#include <poll.h>

/* ---- Helpers --------------------------------------------------------- */

static dfm_runner *bounded_runner(size_t capacity, dfm_overflow overflow,
                                  uint64_t timeout_ns,
                                  const dfm_callbacks *set)
{
    dfm_manual_options options;

    dfm_manual_options_init(&options);
    options.capacity = capacity;
    options.overflow = overflow;
    options.block_timeout_ns = timeout_ns;
    return manual_runner_with(&options, set);
}

static void dispatch_objects(dfm_runner *runner, tracked_object *objects,
                             size_t first, size_t count)
{
    size_t i;

    for (i = first; i < first + count; i++) {
        dfm_token token = token_object("p", &objects[i]);

        CHECK_STATUS(dfm_runner_dispatch(runner, &token, 1), DFM_OK);
    }
}

static bool keys_are(const recorder *record, const int64_t *keys,
                     size_t count)
{
    size_t i;

    if (record->count != count)
        return false;
    for (i = 0; i < count; i++) {
        if (record->keys[i] != keys[i])
            return false;
    }
    return true;
}

static bool fd_readable(int fd)
{
    struct pollfd poller;

    poller.fd = fd;
    poller.events = POLLIN;
    poller.revents = 0;
    return poll(&poller, 1, 0) == 1 && (poller.revents & POLLIN) != 0;
}

/* A callback that acts on its own runner when it sees a given key. */
typedef enum reentry_action {
    REENTER_NOTHING,
    REENTER_DISPATCH,
    REENTER_PUMP,
    REENTER_STOP_DRAIN,
    REENTER_STOP_DISCARD,
    REENTER_DESTROY
} reentry_action;

typedef struct reentry {
    recorder record;
    dfm_runner *runner;
    int64_t trigger_key;
    reentry_action action;
    int status[3];
} reentry;

static int reentering_callback(const dfm_token *token, void *user_data)
{
    reentry *state = (reentry *)user_data;
    dfm_token extra = token_int("p", 100);

    recorder_callback(token, &state->record);
    if (token_key(token) != state->trigger_key)
        return 0;

    switch (state->action) {
    case REENTER_NOTHING:
        break;
    case REENTER_DISPATCH:
        state->status[0] = dfm_runner_dispatch(state->runner, &extra, 1);
        break;
    case REENTER_PUMP:
        state->status[0] = dfm_process_pending(state->runner);
        state->status[1] = dfm_process_pending_budget(state->runner, 1, 0,
                                                      NULL);
        state->status[2] = dfm_process_pending_async(state->runner);
        break;
    case REENTER_STOP_DRAIN:
        state->status[0] = dfm_runner_stop(state->runner, DFM_STOP_DRAIN);
        state->status[1] = dfm_runner_dispatch(state->runner, &extra, 1);
        break;
    case REENTER_STOP_DISCARD:
        state->status[0] = dfm_runner_stop(state->runner, DFM_STOP_DISCARD);
        break;
    case REENTER_DESTROY:
        dfm_runner_destroy(state->runner);
        break;
    }
    return 0;
}

static dfm_runner *reentry_runner(reentry *state, reentry_action action,
                                  int64_t trigger_key)
{
    dfm_callbacks *set;

    memset(state, 0, sizeof *state);
    recorder_reset(&state->record);
    state->action = action;
    state->trigger_key = trigger_key;
    state->status[0] = state->status[1] = state->status[2] = -1;
    set = callbacks_default(reentering_callback, state, NULL);
    state->runner = manual_runner(set);
    dfm_callbacks_destroy(set);
    return state->runner;
}

static void async_hold(const dfm_token *token, dfm_completion *completion,
                       void *user_data)
{
    (void)token;
    (void)user_data;
    dfm_complete(completion, 0);
}

static dfm_runner *async_manual_runner(void)
{
    dfm_callbacks *set = dfm_callbacks_create();
    dfm_runner *runner;

    CHECK_STATUS(dfm_callbacks_set_default_async(set, async_hold, NULL),
                 DFM_OK);
    runner = manual_runner(set);
    dfm_callbacks_destroy(set);
    return runner;
}

/* ---- Routing and order ----------------------------------------------- */

static void test_tokens_go_to_their_place_then_to_the_default(void)
{
    dfm_callbacks *set = dfm_callbacks_create();
    recorder on_a, on_status, on_default;
    dfm_token tokens[5];
    dfm_runner *runner;
    static const int64_t a_keys[] = { 1, 3 };
    static const int64_t status_keys[] = { 4 };
    static const int64_t default_keys[] = { 2, 5 };

    recorder_reset(&on_a);
    recorder_reset(&on_status);
    recorder_reset(&on_default);
    CHECK_STATUS(dfm_callbacks_add_place(set, "a", recorder_callback, &on_a),
                 DFM_OK);
    CHECK_STATUS(dfm_callbacks_add_place(set, "_dfm_status_",
                                         recorder_callback, &on_status),
                 DFM_OK);
    CHECK_STATUS(dfm_callbacks_set_default(set, recorder_callback,
                                           &on_default),
                 DFM_OK);
    runner = manual_runner(set);
    dfm_callbacks_destroy(set);

    tokens[0] = token_int("a", 1);
    tokens[1] = token_int("b", 2);
    tokens[2] = token_int("a", 3);
    tokens[3] = token_int("_dfm_status_", 4);
    tokens[4] = token_int("c", 5);
    CHECK_STATUS(dfm_runner_dispatch(runner, tokens, 5), DFM_OK);
    CHECK_EQ(on_a.count + on_status.count + on_default.count, 0);
    CHECK_STATUS(dfm_process_pending(runner), DFM_OK);

    CHECK(keys_are(&on_a, a_keys, 2));
    CHECK(keys_are(&on_status, status_keys, 1));
    CHECK(keys_are(&on_default, default_keys, 2));
    CHECK_EQ(stats_of(runner).delivered, 5);
    dfm_runner_destroy(runner);
}

static void test_a_token_without_a_route_is_dropped_and_released(void)
{
    dfm_callbacks *set = dfm_callbacks_create();
    recorder on_a;
    tracked_object objects[2];
    dfm_token tokens[2];
    dfm_runner *runner;
    dfm_stats stats;

    recorder_reset(&on_a);
    tracked_reset(objects, 2);
    CHECK_STATUS(dfm_callbacks_add_place(set, "a", recorder_callback, &on_a),
                 DFM_OK);
    runner = manual_runner(set);
    dfm_callbacks_destroy(set);

    tokens[0] = token_object("a", &objects[0]);
    tokens[1] = token_object("b", &objects[1]);
    CHECK_STATUS(dfm_runner_dispatch(runner, tokens, 2), DFM_OK);
    CHECK_STATUS(dfm_process_pending(runner), DFM_OK);

    CHECK_EQ(on_a.count, 1);
    stats = stats_of(runner);
    CHECK_EQ(stats.delivered, 1);
    CHECK_EQ(stats.dropped, 1);
    CHECK_EQ(stats.failed, 0);
    CHECK_EQ(tracked_releases(&objects[0]), 1);
    CHECK_EQ(tracked_releases(&objects[1]), 1);
    dfm_runner_destroy(runner);
    CHECK_EQ(tracked_count_released(objects, 2, 1), 2);
}

static void test_a_pump_delivers_only_what_was_pending_when_called(void)
{
    reentry state;
    dfm_runner *runner = reentry_runner(&state, REENTER_DISPATCH, 1);
    dfm_token tokens[2];
    static const int64_t first_pump[] = { 1, 2 };
    static const int64_t second_pump[] = { 1, 2, 100 };

    tokens[0] = token_int("p", 1);
    tokens[1] = token_int("p", 2);
    CHECK_STATUS(dfm_runner_dispatch(runner, tokens, 2), DFM_OK);

    CHECK_STATUS(dfm_process_pending(runner), DFM_OK);
    CHECK_STATUS(state.status[0], DFM_OK);
    CHECK(keys_are(&state.record, first_pump, 2));
    CHECK(dfm_has_pending(runner));
    CHECK_EQ(stats_of(runner).pending, 1);

    CHECK_STATUS(dfm_process_pending(runner), DFM_OK);
    CHECK(keys_are(&state.record, second_pump, 3));
    CHECK(!dfm_has_pending(runner));
    dfm_runner_destroy(runner);
}

static void test_tokens_are_delivered_in_dispatch_order(void)
{
    recorder record;
    dfm_callbacks *set;
    dfm_runner *runner;
    dfm_token batch[7];
    int64_t next = 0;
    size_t size = 1;
    size_t i;
    bool in_order = true;

    recorder_reset(&record);
    set = callbacks_default(recorder_callback, &record, NULL);
    runner = manual_runner(set);
    dfm_callbacks_destroy(set);

    while (next < 1000) {
        size_t count = 0;

        while (count < size && next < 1000)
            batch[count++] = token_int("p", next++);
        CHECK_STATUS(dfm_runner_dispatch(runner, batch, count), DFM_OK);
        size = size % 7 + 1;
    }
    CHECK_STATUS(dfm_process_pending(runner), DFM_OK);

    CHECK_EQ(record.count, 1000);
    for (i = 0; i < 1000 && i < record.count; i++)
        in_order &= record.keys[i] == (int64_t)i;
    CHECK(in_order);
    dfm_runner_destroy(runner);
}

static void test_has_pending_follows_the_queue(void)
{
    dfm_runner *runner = manual_runner(NULL);
    dfm_token token = token_int("p", 1);

    CHECK(!dfm_has_pending(NULL));
    CHECK(!dfm_has_pending(runner));
    CHECK_STATUS(dfm_runner_dispatch(runner, &token, 1), DFM_OK);
    CHECK(dfm_has_pending(runner));
    CHECK_STATUS(dfm_process_pending(runner), DFM_OK);
    CHECK(!dfm_has_pending(runner));
    dfm_runner_destroy(runner);
}

typedef struct forwarder {
    dfm_runner *targets[2];
    int status[2];
} forwarder;

static int forward_callback(const dfm_token *token, void *user_data)
{
    forwarder *state = (forwarder *)user_data;

    state->status[0] = dfm_runner_dispatch(state->targets[0], token, 1);
    state->status[1] = dfm_runner_dispatch(state->targets[1], token, 1);
    return 0;
}

static void test_a_callback_may_dispatch_to_other_runners(void)
{
    forwarder state;
    recorder on_manual;
    recorder on_direct;
    dfm_callbacks *set;
    dfm_runner *source;
    dfm_token token = token_int("p", 5);

    recorder_reset(&on_manual);
    recorder_reset(&on_direct);
    set = callbacks_default(recorder_callback, &on_manual, NULL);
    state.targets[0] = manual_runner(set);
    dfm_callbacks_destroy(set);
    set = callbacks_default(recorder_callback, &on_direct, NULL);
    state.targets[1] = direct_runner(set);
    dfm_callbacks_destroy(set);
    set = callbacks_default(forward_callback, &state, NULL);
    source = manual_runner(set);
    dfm_callbacks_destroy(set);

    CHECK_STATUS(dfm_runner_dispatch(source, &token, 1), DFM_OK);
    CHECK_STATUS(dfm_process_pending(source), DFM_OK);
    CHECK_STATUS(state.status[0], DFM_OK);
    CHECK_STATUS(state.status[1], DFM_OK);
    CHECK_EQ(on_direct.count, 1);
    CHECK_STATUS(dfm_process_pending(state.targets[0]), DFM_OK);
    CHECK_EQ(on_manual.count, 1);
    CHECK_EQ(on_manual.keys[0], 5);

    dfm_runner_destroy(source);
    dfm_runner_destroy(state.targets[0]);
    dfm_runner_destroy(state.targets[1]);
}

/* ---- Failures and kinds ---------------------------------------------- */

static void test_a_failing_callback_does_not_stop_the_others(void)
{
    recorder record;
    error_record errors;
    tracked_object objects[4];
    dfm_callbacks *set;
    dfm_runner *runner;
    dfm_stats stats;

    recorder_reset(&record);
    error_record_reset(&errors);
    tracked_reset(objects, 4);
    record.fail_key = 2;
    record.fail_value = 42;
    set = callbacks_default(recorder_callback, &record, &errors);
    runner = manual_runner(set);
    dfm_callbacks_destroy(set);

    dispatch_objects(runner, objects, 0, 4);
    CHECK_STATUS(dfm_process_pending(runner), DFM_ERR_CALLBACK_FAILED);

    CHECK_EQ(record.count, 4);
    CHECK_EQ(errors.count, 1);
    CHECK_STATUS(errors.status, DFM_ERR_CALLBACK_FAILED);
    CHECK(errors.had_token);
    CHECK_EQ(errors.key, 2);
    if (!CHECK(strstr(errors.message, "42") != NULL))
        fprintf(stderr, "    message: \"%s\"\n", errors.message);
    stats = stats_of(runner);
    CHECK_EQ(stats.delivered, 3);
    CHECK_EQ(stats.failed, 1);
    CHECK_EQ(tracked_count_released(objects, 4, 1), 4);

    /* A later pump without failures is OK again. */
    dispatch_objects(runner, objects, 0, 1);
    CHECK_STATUS(dfm_process_pending(runner), DFM_OK);
    dfm_runner_destroy(runner);
}

static void test_each_pump_refuses_the_other_kind(void)
{
    recorder record;
    dfm_callbacks *set;
    dfm_runner *sync_runner;
    dfm_runner *async_runner = async_manual_runner();
    dfm_token token = token_int("p", 1);

    recorder_reset(&record);
    set = callbacks_default(recorder_callback, &record, NULL);
    sync_runner = manual_runner(set);
    dfm_callbacks_destroy(set);

    CHECK_STATUS(dfm_runner_dispatch(sync_runner, &token, 1), DFM_OK);
    CHECK_STATUS(dfm_process_pending_async(sync_runner), DFM_ERR_WRONG_KIND);
    CHECK(dfm_has_pending(sync_runner));
    CHECK_EQ(record.count, 0);

    CHECK_STATUS(dfm_runner_dispatch(async_runner, &token, 1), DFM_OK);
    CHECK_STATUS(dfm_process_pending(async_runner), DFM_ERR_WRONG_KIND);
    CHECK(dfm_has_pending(async_runner));

    CHECK_STATUS(dfm_process_pending(sync_runner), DFM_OK);
    CHECK_EQ(record.count, 1);
    CHECK_STATUS(dfm_process_pending_async(async_runner), DFM_OK);
    CHECK_STATUS(dfm_process_pending_async(async_runner), DFM_OK);
    CHECK_EQ(stats_of(async_runner).delivered, 1);

    CHECK_STATUS(dfm_process_pending(NULL), DFM_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(dfm_process_pending_async(NULL), DFM_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(dfm_process_pending_budget(NULL, 0, 0, NULL),
                 DFM_ERR_INVALID_ARGUMENT);
    dfm_runner_destroy(sync_runner);
    dfm_runner_destroy(async_runner);
}

static void test_without_callbacks_both_pumps_drain(void)
{
    tracked_object objects[6];
    dfm_runner *first = manual_runner(NULL);
    dfm_runner *second = manual_runner(NULL);

    tracked_reset(objects, 6);
    dispatch_objects(first, objects, 0, 3);
    dispatch_objects(second, objects, 3, 3);

    CHECK_STATUS(dfm_process_pending(first), DFM_OK);
    CHECK(!dfm_has_pending(first));
    CHECK_EQ(stats_of(first).dropped, 3);

    CHECK_STATUS(dfm_process_pending_async(second), DFM_OK);
    CHECK(!dfm_has_pending(second));
    CHECK_EQ(stats_of(second).dropped, 3);

    CHECK_EQ(tracked_count_released(objects, 6, 1), 6);
    dfm_runner_destroy(first);
    dfm_runner_destroy(second);
}

/* ---- Budgets --------------------------------------------------------- */

static void test_the_budget_stops_after_max_tokens(void)
{
    recorder record;
    dfm_callbacks *set;
    dfm_runner *runner;
    dfm_pump_result result;
    int64_t i;

    recorder_reset(&record);
    set = callbacks_default(recorder_callback, &record, NULL);
    runner = manual_runner(set);
    dfm_callbacks_destroy(set);

    for (i = 0; i < 10; i++) {
        dfm_token token = token_int("p", i);

        CHECK_STATUS(dfm_runner_dispatch(runner, &token, 1), DFM_OK);
    }
    memset(&result, 0xFF, sizeof result);
    CHECK_STATUS(dfm_process_pending_budget(runner, 3, 0, &result), DFM_OK);
    CHECK_EQ(result.delivered, 3);
    CHECK_EQ(result.failed, 0);
    CHECK_EQ(result.pending, 7);
    CHECK_EQ(record.count, 3);
    CHECK(dfm_has_pending(runner));

    CHECK_STATUS(dfm_process_pending_budget(runner, 0, 0, &result), DFM_OK);
    CHECK_EQ(result.delivered, 7);
    CHECK_EQ(result.pending, 0);
    CHECK_EQ(record.count, 10);
    CHECK_EQ(record.keys[9], 9);

    /* The result may be NULL. */
    CHECK_STATUS(dfm_process_pending_budget(runner, 5, 0, NULL), DFM_OK);
    dfm_runner_destroy(runner);
}

static void test_the_budget_counts_failures(void)
{
    recorder record;
    error_record errors;
    dfm_callbacks *set;
    dfm_runner *runner;
    dfm_pump_result result;
    int64_t i;

    recorder_reset(&record);
    error_record_reset(&errors);
    record.fail_key = 1;
    record.fail_value = 7;
    set = callbacks_default(recorder_callback, &record, &errors);
    runner = manual_runner(set);
    dfm_callbacks_destroy(set);

    for (i = 0; i < 5; i++) {
        dfm_token token = token_int("p", i);

        CHECK_STATUS(dfm_runner_dispatch(runner, &token, 1), DFM_OK);
    }
    CHECK_STATUS(dfm_process_pending_budget(runner, 3, 0, &result),
                 DFM_ERR_CALLBACK_FAILED);
    CHECK_EQ(result.delivered, 2);
    CHECK_EQ(result.failed, 1);
    CHECK_EQ(result.pending, 2);
    CHECK_EQ(errors.count, 1);

    CHECK_STATUS(dfm_process_pending_budget(runner, 0, 0, &result), DFM_OK);
    CHECK_EQ(result.delivered, 2);
    CHECK_EQ(result.failed, 0);
    CHECK_EQ(result.pending, 0);
    dfm_runner_destroy(runner);
}

static int sleepy_callback(const dfm_token *token, void *user_data)
{
    recorder_callback(token, user_data);
    sleep_ms(5);
    return 0;
}

static void test_the_budget_stops_after_max_ns(void)
{
    recorder record;
    dfm_callbacks *set;
    dfm_runner *runner;
    dfm_pump_result result;
    uint64_t started;
    uint64_t elapsed;
    int64_t i;

    recorder_reset(&record);
    set = callbacks_default(sleepy_callback, &record, NULL);
    runner = manual_runner(set);
    dfm_callbacks_destroy(set);

    for (i = 0; i < 40; i++) {
        dfm_token token = token_int("p", i);

        CHECK_STATUS(dfm_runner_dispatch(runner, &token, 1), DFM_OK);
    }
    started = now_ns();
    CHECK_STATUS(dfm_process_pending_budget(runner, 0, 12000000, &result),
                 DFM_OK);
    elapsed = now_ns() - started;

    /* 12 ms of 5 ms callbacks: a few, never all 40 (200 ms). */
    CHECK(result.delivered >= 1);
    CHECK(result.delivered < 40);
    CHECK_EQ(result.delivered + result.pending, 40);
    CHECK_EQ(record.count, result.delivered);
    CHECK(elapsed < 150000000u);

    /* Both limits: the smaller one wins. */
    CHECK_STATUS(dfm_process_pending_budget(runner, 2, 1000000000u,
                                            &result),
                 DFM_OK);
    CHECK_EQ(result.delivered, 2);

    CHECK_STATUS(dfm_process_pending_budget(runner, 0, 0, &result), DFM_OK);
    CHECK_EQ(result.pending, 0);
    CHECK_EQ(record.count, 40);
    dfm_runner_destroy(runner);
}

/* ---- The owner thread ------------------------------------------------ */

typedef struct pump_attempt {
    dfm_runner *runner;
    int status[3];
} pump_attempt;

static void *pump_from_elsewhere(void *argument)
{
    pump_attempt *attempt = (pump_attempt *)argument;

    attempt->status[0] = dfm_process_pending(attempt->runner);
    attempt->status[1] = dfm_process_pending_budget(attempt->runner, 0, 0,
                                                    NULL);
    attempt->status[2] = dfm_process_pending_async(attempt->runner);
    return NULL;
}

static void test_a_pump_from_another_thread_is_wrong_thread(void)
{
    recorder record;
    dfm_callbacks *set;
    pump_attempt attempt;
    dfm_token token = token_int("p", 1);

    recorder_reset(&record);
    set = callbacks_default(recorder_callback, &record, NULL);
    attempt.runner = manual_runner(set);
    dfm_callbacks_destroy(set);

    CHECK_STATUS(dfm_process_pending(attempt.runner), DFM_OK);
    CHECK_STATUS(dfm_runner_dispatch(attempt.runner, &token, 1), DFM_OK);
    run_on_new_thread(pump_from_elsewhere, &attempt);
    CHECK_STATUS(attempt.status[0], DFM_ERR_WRONG_THREAD);
    CHECK_STATUS(attempt.status[1], DFM_ERR_WRONG_THREAD);
    CHECK(attempt.status[2] == DFM_ERR_WRONG_THREAD
          || attempt.status[2] == DFM_ERR_WRONG_KIND);
    CHECK_EQ(record.count, 0);
    CHECK(dfm_has_pending(attempt.runner));

    CHECK_STATUS(dfm_process_pending(attempt.runner), DFM_OK);
    CHECK_EQ(record.count, 1);
    dfm_runner_destroy(attempt.runner);

    /* The same for the async pump. */
    attempt.runner = async_manual_runner();
    CHECK_STATUS(dfm_process_pending_async(attempt.runner), DFM_OK);
    CHECK_STATUS(dfm_runner_dispatch(attempt.runner, &token, 1), DFM_OK);
    run_on_new_thread(pump_from_elsewhere, &attempt);
    CHECK_STATUS(attempt.status[2], DFM_ERR_WRONG_THREAD);
    CHECK(dfm_has_pending(attempt.runner));
    dfm_runner_destroy(attempt.runner);
}

static void *pump_once(void *argument)
{
    pump_attempt *attempt = (pump_attempt *)argument;

    attempt->status[0] = dfm_process_pending(attempt->runner);
    return NULL;
}

static void test_the_first_thread_that_pumps_owns_the_runner(void)
{
    recorder record;
    dfm_callbacks *set;
    pump_attempt attempt;
    dfm_token token = token_int("p", 1);
    pthread_t owner;

    recorder_reset(&record);
    set = callbacks_default(recorder_callback, &record, NULL);
    attempt.runner = manual_runner(set);
    dfm_callbacks_destroy(set);

    /* An empty pump claims the runner too. */
    if (!CHECK(pthread_create(&owner, NULL, pump_once, &attempt) == 0))
        return;
    pthread_join(owner, NULL);
    CHECK_STATUS(attempt.status[0], DFM_OK);

    CHECK_STATUS(dfm_runner_dispatch(attempt.runner, &token, 1), DFM_OK);
    CHECK_STATUS(dfm_process_pending(attempt.runner), DFM_ERR_WRONG_THREAD);
    CHECK_STATUS(dfm_process_pending_budget(attempt.runner, 1, 0, NULL),
                 DFM_ERR_WRONG_THREAD);
    CHECK(dfm_last_error()[0] != '\0');
    CHECK_EQ(record.count, 0);
    CHECK(dfm_has_pending(attempt.runner));
    dfm_runner_destroy(attempt.runner);
}

static void test_a_pump_inside_a_callback_is_busy(void)
{
    reentry state;
    dfm_runner *runner = reentry_runner(&state, REENTER_PUMP, 1);
    dfm_token tokens[2];

    tokens[0] = token_int("p", 1);
    tokens[1] = token_int("p", 2);
    CHECK_STATUS(dfm_runner_dispatch(runner, tokens, 2), DFM_OK);
    CHECK_STATUS(dfm_process_pending(runner), DFM_OK);

    CHECK_STATUS(state.status[0], DFM_ERR_BUSY);
    CHECK_STATUS(state.status[1], DFM_ERR_BUSY);
    CHECK(state.status[2] == DFM_ERR_BUSY
          || state.status[2] == DFM_ERR_WRONG_KIND);
    CHECK_EQ(state.record.count, 2);
    dfm_runner_destroy(runner);
}

typedef struct async_nested {
    dfm_runner *runner;
    int status;
    int calls;
} async_nested;

static void async_pump_inside(const dfm_token *token,
                              dfm_completion *completion, void *user_data)
{
    async_nested *state = (async_nested *)user_data;

    (void)token;
    state->calls++;
    state->status = dfm_process_pending_async(state->runner);
    dfm_complete(completion, 0);
}

static void test_an_async_pump_inside_a_callback_is_busy(void)
{
    async_nested state = { NULL, -1, 0 };
    dfm_callbacks *set = dfm_callbacks_create();
    dfm_token token = token_int("p", 1);

    CHECK_STATUS(dfm_callbacks_set_default_async(set, async_pump_inside,
                                                 &state),
                 DFM_OK);
    state.runner = manual_runner(set);
    dfm_callbacks_destroy(set);

    CHECK_STATUS(dfm_runner_dispatch(state.runner, &token, 1), DFM_OK);
    CHECK_STATUS(dfm_process_pending_async(state.runner), DFM_OK);
    CHECK_EQ(state.calls, 1);
    CHECK_STATUS(state.status, DFM_ERR_BUSY);
    dfm_runner_destroy(state.runner);
}

/* ---- Stop, start and destroy ----------------------------------------- */

static void test_stop_drain_closes_dispatch_and_keeps_pending(void)
{
    recorder record;
    tracked_object objects[3];
    dfm_callbacks *set;
    dfm_runner *runner;
    dfm_token late;
    dfm_stats stats;

    recorder_reset(&record);
    tracked_reset(objects, 3);
    set = callbacks_default(recorder_callback, &record, NULL);
    runner = manual_runner(set);
    dfm_callbacks_destroy(set);

    dispatch_objects(runner, objects, 0, 2);
    CHECK_STATUS(dfm_runner_stop(runner, DFM_STOP_DRAIN), DFM_OK);
    late = token_object("p", &objects[2]);
    CHECK_STATUS(dfm_runner_dispatch(runner, &late, 1), DFM_ERR_CLOSED);
    CHECK_EQ(tracked_releases(&objects[2]), 0);
    CHECK(dfm_has_pending(runner));
    CHECK_EQ(tracked_count_released(objects, 2, 0), 2);

    CHECK_STATUS(dfm_process_pending(runner), DFM_OK);
    CHECK_EQ(record.count, 2);
    CHECK_EQ(tracked_count_released(objects, 2, 1), 2);
    stats = stats_of(runner);
    CHECK_EQ(stats.dispatched, 2);
    CHECK_EQ(stats.delivered, 2);
    CHECK_EQ(stats.rejected, 1);
    CHECK_STATUS(dfm_runner_start(runner), DFM_ERR_CLOSED);
    dfm_runner_destroy(runner);
    CHECK_EQ(tracked_releases(&objects[2]), 0);
}

static void test_stop_discard_releases_pending_without_delivery(void)
{
    recorder record;
    tracked_object objects[4];
    dfm_callbacks *set;
    dfm_runner *runner;
    dfm_token late;
    dfm_stats stats;

    recorder_reset(&record);
    tracked_reset(objects, 4);
    set = callbacks_default(recorder_callback, &record, NULL);
    runner = manual_runner(set);
    dfm_callbacks_destroy(set);

    dispatch_objects(runner, objects, 0, 3);
    CHECK_STATUS(dfm_runner_stop(runner, DFM_STOP_DISCARD), DFM_OK);
    CHECK_EQ(tracked_count_released(objects, 3, 1), 3);
    CHECK(!dfm_has_pending(runner));

    late = token_object("p", &objects[3]);
    CHECK_STATUS(dfm_runner_dispatch(runner, &late, 1), DFM_ERR_CLOSED);
    CHECK_STATUS(dfm_process_pending(runner), DFM_OK);
    CHECK_EQ(record.count, 0);
    stats = stats_of(runner);
    CHECK_EQ(stats.discarded, 3);
    CHECK_EQ(stats.pending, 0);
    CHECK_EQ(stats.delivered, 0);
    CHECK(stats_balance(&stats));
    dfm_runner_destroy(runner);
    CHECK_EQ(tracked_count_released(objects, 3, 1), 3);
    CHECK_EQ(tracked_releases(&objects[3]), 0);
}

static void test_a_discard_after_a_drain_still_discards(void)
{
    tracked_object objects[2];
    dfm_runner *runner = manual_runner(NULL);

    tracked_reset(objects, 2);
    dispatch_objects(runner, objects, 0, 2);
    CHECK_STATUS(dfm_runner_stop(runner, DFM_STOP_DRAIN), DFM_OK);
    CHECK_EQ(tracked_count_released(objects, 2, 0), 2);
    CHECK_STATUS(dfm_runner_stop(runner, DFM_STOP_DISCARD), DFM_OK);
    CHECK_EQ(tracked_count_released(objects, 2, 1), 2);
    CHECK_EQ(stats_of(runner).discarded, 2);
    CHECK(!dfm_has_pending(runner));
    dfm_runner_destroy(runner);
    CHECK_EQ(tracked_count_released(objects, 2, 1), 2);
}

static void test_start_and_stop_are_idempotent(void)
{
    dfm_runner *runner = manual_runner(NULL);
    dfm_token token = token_int("p", 1);

    CHECK_STATUS(dfm_runner_start(runner), DFM_OK);
    CHECK_STATUS(dfm_runner_start(runner), DFM_OK);
    CHECK_STATUS(dfm_runner_dispatch(runner, &token, 1), DFM_OK);

    CHECK_STATUS(dfm_runner_stop(runner, (dfm_stop_mode)99),
                 DFM_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(dfm_runner_dispatch(runner, &token, 1), DFM_OK);

    CHECK_STATUS(dfm_runner_stop(runner, DFM_STOP_DRAIN), DFM_OK);
    CHECK_STATUS(dfm_runner_stop(runner, DFM_STOP_DRAIN), DFM_OK);
    CHECK_STATUS(dfm_runner_start(runner), DFM_ERR_CLOSED);
    CHECK_STATUS(dfm_runner_dispatch(runner, &token, 1), DFM_ERR_CLOSED);
    CHECK_STATUS(dfm_runner_stop(runner, DFM_STOP_DISCARD), DFM_OK);
    CHECK_STATUS(dfm_runner_start(runner), DFM_ERR_CLOSED);

    CHECK_STATUS(dfm_runner_start(NULL), DFM_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(dfm_runner_stop(NULL, DFM_STOP_DRAIN),
                 DFM_ERR_INVALID_ARGUMENT);
    dfm_runner_destroy(runner);
}

static void test_a_runner_accepts_dispatches_before_start(void)
{
    recorder record;
    dfm_callbacks *set;
    dfm_runner *runner;
    dfm_token token = token_int("p", 1);

    recorder_reset(&record);
    set = callbacks_default(recorder_callback, &record, NULL);
    runner = manual_runner(set);
    dfm_callbacks_destroy(set);

    CHECK_STATUS(dfm_runner_dispatch(runner, &token, 1), DFM_OK);
    CHECK_STATUS(dfm_process_pending(runner), DFM_OK);
    CHECK_EQ(record.count, 1);
    dfm_runner_destroy(runner);
}

static void test_destroy_releases_every_pending_object_once(void)
{
    enum { COUNT = 100 };
    recorder record;
    tracked_object objects[COUNT];
    dfm_token batch[10];
    dfm_callbacks *set;
    dfm_runner *runner;
    size_t i;
    size_t j;

    recorder_reset(&record);
    tracked_reset(objects, COUNT);
    set = callbacks_default(recorder_callback, &record, NULL);
    runner = manual_runner(set);
    dfm_callbacks_destroy(set);

    for (i = 0; i < COUNT; i += 10) {
        for (j = 0; j < 10; j++)
            batch[j] = token_object("p", &objects[i + j]);
        CHECK_STATUS(dfm_runner_dispatch(runner, batch, 10), DFM_OK);
    }
    CHECK_STATUS(dfm_process_pending_budget(runner, 10, 0, NULL), DFM_OK);
    CHECK_EQ(tracked_count_released(objects, COUNT, 1), 10);

    dfm_runner_destroy(runner);
    CHECK_EQ(record.count, 10);
    CHECK_EQ(tracked_count_released(objects, COUNT, 1), COUNT);
}

static void test_destroy_inside_a_callback_is_deferred(void)
{
    reentry state;
    tracked_object objects[5];
    dfm_runner *runner;

    tracked_reset(objects, 5);
    runner = reentry_runner(&state, REENTER_DESTROY, 1);
    dispatch_objects(runner, objects, 0, 5);

    /* The runner is gone once the pump returns: its status is all that is
     * left to look at, and every payload must be released exactly once. */
    (void)dfm_process_pending(runner);
    CHECK(state.record.count >= 2);
    CHECK_EQ(state.record.keys[0], 0);
    CHECK_EQ(state.record.keys[1], 1);
    CHECK_EQ(tracked_count_released(objects, 5, 1), 5);
}

static void test_stop_drain_inside_a_callback_does_not_deadlock(void)
{
    reentry state;
    tracked_object objects[3];
    dfm_runner *runner = reentry_runner(&state, REENTER_STOP_DRAIN, 0);
    dfm_token late = token_int("p", 5);

    tracked_reset(objects, 3);
    dispatch_objects(runner, objects, 0, 3);
    CHECK_STATUS(dfm_process_pending(runner), DFM_OK);

    CHECK_STATUS(state.status[0], DFM_OK);
    CHECK_STATUS(state.status[1], DFM_ERR_CLOSED);
    CHECK_EQ(state.record.count, 3);
    CHECK_EQ(tracked_count_released(objects, 3, 1), 3);
    CHECK_STATUS(dfm_runner_dispatch(runner, &late, 1), DFM_ERR_CLOSED);
    dfm_runner_destroy(runner);
}

static void test_stop_discard_inside_a_callback_does_not_deadlock(void)
{
    reentry state;
    tracked_object objects[4];
    dfm_runner *runner = reentry_runner(&state, REENTER_STOP_DISCARD, 0);
    dfm_stats stats;

    tracked_reset(objects, 4);
    dispatch_objects(runner, objects, 0, 4);
    (void)dfm_process_pending(runner);

    /* Tokens 1 to 3 were still pending when the first callback stopped
     * the runner: released, not delivered. */
    CHECK_STATUS(state.status[0], DFM_OK);
    CHECK_EQ(state.record.count, 1);
    stats = stats_of(runner);
    CHECK_EQ(stats.delivered, 1);
    CHECK_EQ(stats.discarded, 3);
    CHECK(stats_balance(&stats));
    CHECK_EQ(tracked_count_released(objects, 4, 1), 4);
    dfm_runner_destroy(runner);
    CHECK_EQ(tracked_count_released(objects, 4, 1), 4);
}

/* ---- Stats ----------------------------------------------------------- */

static void test_stats_count_each_token_once(void)
{
    dfm_callbacks *set = dfm_callbacks_create();
    recorder record;
    dfm_runner *runner;
    dfm_token tokens[10];
    dfm_stats stats;
    int64_t i;

    recorder_reset(&record);
    record.fail_key = 3;
    record.fail_value = 1;
    CHECK_STATUS(dfm_callbacks_add_place(set, "a", recorder_callback,
                                         &record),
                 DFM_OK);
    runner = manual_runner(set);
    dfm_callbacks_destroy(set);

    for (i = 0; i < 10; i++)
        tokens[i] = token_int(i == 6 || i == 7 ? "z" : "a", i);
    CHECK_STATUS(dfm_runner_dispatch(runner, tokens, 10), DFM_OK);
    stats = stats_of(runner);
    CHECK_EQ(stats.dispatched, 10);
    CHECK_EQ(stats.pending, 10);
    CHECK(stats_balance(&stats));

    CHECK_STATUS(dfm_process_pending_budget(runner, 5, 0, NULL),
                 DFM_ERR_CALLBACK_FAILED);
    stats = stats_of(runner);
    CHECK_EQ(stats.delivered, 4);
    CHECK_EQ(stats.failed, 1);
    CHECK_EQ(stats.pending, 5);
    CHECK(stats_balance(&stats));

    CHECK_STATUS(dfm_process_pending(runner), DFM_OK);
    CHECK_STATUS(dfm_runner_dispatch(runner, tokens, 3), DFM_OK);
    CHECK_STATUS(dfm_runner_stop(runner, DFM_STOP_DISCARD), DFM_OK);
    CHECK_STATUS(dfm_runner_dispatch(runner, tokens, 2), DFM_ERR_CLOSED);

    stats = stats_of(runner);
    CHECK_EQ(stats.dispatched, 13);
    CHECK_EQ(stats.delivered, 7);
    CHECK_EQ(stats.failed, 1);
    CHECK_EQ(stats.dropped, 2);
    CHECK_EQ(stats.discarded, 3);
    CHECK_EQ(stats.rejected, 2);
    CHECK_EQ(stats.pending, 0);
    CHECK_EQ(stats.pending_high_water, 10);
    CHECK(stats_balance(&stats));
    dfm_runner_destroy(runner);
}

static void test_pending_high_water_remembers_the_most_queued(void)
{
    dfm_runner *runner = manual_runner(NULL);
    dfm_token tokens[6];
    dfm_stats stats;
    int64_t i;

    for (i = 0; i < 6; i++)
        tokens[i] = token_int("p", i);
    CHECK_STATUS(dfm_runner_dispatch(runner, tokens, 5), DFM_OK);
    CHECK_STATUS(dfm_process_pending(runner), DFM_OK);
    CHECK_STATUS(dfm_runner_dispatch(runner, tokens, 2), DFM_OK);
    stats = stats_of(runner);
    CHECK_EQ(stats.pending, 2);
    CHECK_EQ(stats.pending_high_water, 5);

    CHECK_STATUS(dfm_runner_dispatch(runner, tokens, 6), DFM_OK);
    stats = stats_of(runner);
    CHECK_EQ(stats.pending, 8);
    CHECK_EQ(stats.pending_high_water, 8);
    dfm_runner_destroy(runner);
}

static void test_stats_need_a_runner_and_an_out_pointer(void)
{
    dfm_runner *runner = manual_runner(NULL);
    dfm_stats stats;

    CHECK_STATUS(dfm_runner_stats(NULL, &stats), DFM_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(dfm_runner_stats(runner, NULL), DFM_ERR_INVALID_ARGUMENT);
    dfm_runner_destroy(runner);
}

/* ---- Bounded queues -------------------------------------------------- */

static void test_a_full_fail_queue_refuses_with_queue_full(void)
{
    enum { COUNT = 13 };
    recorder record;
    tracked_object objects[COUNT];
    dfm_callbacks *set;
    dfm_runner *runner;
    dfm_token batch[5];
    dfm_stats stats;
    size_t i;

    recorder_reset(&record);
    tracked_reset(objects, COUNT);
    set = callbacks_default(recorder_callback, &record, NULL);
    runner = bounded_runner(4, DFM_OVERFLOW_FAIL, 0, set);
    dfm_callbacks_destroy(set);

    dispatch_objects(runner, objects, 0, 4);
    batch[0] = token_object("p", &objects[4]);
    CHECK_STATUS(dfm_runner_dispatch(runner, batch, 1), DFM_ERR_QUEUE_FULL);
    CHECK(dfm_last_error()[0] != '\0');
    CHECK_EQ(tracked_releases(&objects[4]), 0);
    stats = stats_of(runner);
    CHECK_EQ(stats.rejected, 1);
    CHECK_EQ(stats.pending, 4);

    /* Room for one, a batch of two: refused whole.  Rejections count
     * tokens, not calls. */
    CHECK_STATUS(dfm_process_pending_budget(runner, 1, 0, NULL), DFM_OK);
    batch[0] = token_object("p", &objects[5]);
    batch[1] = token_object("p", &objects[6]);
    CHECK_STATUS(dfm_runner_dispatch(runner, batch, 2), DFM_ERR_QUEUE_FULL);
    CHECK_EQ(stats_of(runner).pending, 3);
    CHECK_EQ(stats_of(runner).rejected, 3);
    CHECK_STATUS(dfm_runner_dispatch(runner, batch, 1), DFM_OK);
    CHECK_EQ(stats_of(runner).pending, 4);

    /* A batch larger than the capacity never fits. */
    CHECK_STATUS(dfm_process_pending(runner), DFM_OK);
    for (i = 0; i < 5; i++)
        batch[i] = token_object("p", &objects[7 + i]);
    CHECK_STATUS(dfm_runner_dispatch(runner, batch, 5), DFM_ERR_QUEUE_FULL);
    CHECK(!dfm_has_pending(runner));
    CHECK_EQ(stats_of(runner).rejected, 8);

    dfm_runner_destroy(runner);
    CHECK_EQ(record.count, 5);
    for (i = 0; i < COUNT; i++) {
        int expected = i <= 3 || i == 5 ? 1 : 0;

        if (!CHECK_EQ(tracked_releases(&objects[i]), expected))
            fprintf(stderr, "    object %zu\n", i);
    }
}

typedef struct producer {
    dfm_runner *runner;
    dfm_token token;
    int status;
    int done;
    uint64_t elapsed_ns;
} producer;

static void *produce_one(void *argument)
{
    producer *state = (producer *)argument;
    uint64_t started = now_ns();

    state->status = dfm_runner_dispatch(state->runner, &state->token, 1);
    state->elapsed_ns = now_ns() - started;
    __atomic_store_n(&state->done, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

static bool producer_done(producer *state)
{
    return __atomic_load_n(&state->done, __ATOMIC_SEQ_CST) != 0;
}

static void test_a_full_block_queue_waits_for_the_owner_to_pump(void)
{
    recorder record;
    tracked_object objects[3];
    dfm_callbacks *set;
    producer state;
    pthread_t thread;

    recorder_reset(&record);
    tracked_reset(objects, 3);
    set = callbacks_default(recorder_callback, &record, NULL);
    memset(&state, 0, sizeof state);
    state.runner = bounded_runner(2, DFM_OVERFLOW_BLOCK, 0, set);
    dfm_callbacks_destroy(set);

    CHECK_STATUS(dfm_process_pending(state.runner), DFM_OK);
    dispatch_objects(state.runner, objects, 0, 2);
    state.token = token_object("p", &objects[2]);
    if (!CHECK(pthread_create(&thread, NULL, produce_one, &state) == 0))
        return;

    sleep_ms(100);
    CHECK(!producer_done(&state));
    CHECK_STATUS(dfm_process_pending(state.runner), DFM_OK);
    pthread_join(thread, NULL);
    CHECK_STATUS(state.status, DFM_OK);

    CHECK_STATUS(dfm_process_pending(state.runner), DFM_OK);
    CHECK_EQ(record.count, 3);
    CHECK_EQ(record.keys[2], 2);
    CHECK_EQ(tracked_count_released(objects, 3, 1), 3);
    dfm_runner_destroy(state.runner);
}

static void test_a_full_block_queue_times_out(void)
{
    tracked_object objects[2];
    producer state;
    pthread_t thread;

    tracked_reset(objects, 2);
    memset(&state, 0, sizeof state);
    state.runner = bounded_runner(1, DFM_OVERFLOW_BLOCK, 50000000, NULL);

    CHECK_STATUS(dfm_process_pending(state.runner), DFM_OK);
    dispatch_objects(state.runner, objects, 0, 1);
    state.token = token_object("p", &objects[1]);
    if (!CHECK(pthread_create(&thread, NULL, produce_one, &state) == 0))
        return;
    pthread_join(thread, NULL);

    CHECK_STATUS(state.status, DFM_ERR_TIMED_OUT);
    CHECK(state.elapsed_ns >= 45000000u);
    CHECK(state.elapsed_ns < 5000000000u);
    CHECK_EQ(tracked_releases(&objects[1]), 0);
    CHECK_EQ(stats_of(state.runner).rejected, 1);
    CHECK_EQ(stats_of(state.runner).pending, 1);
    dfm_runner_destroy(state.runner);
    CHECK_EQ(tracked_releases(&objects[0]), 1);
    CHECK_EQ(tracked_releases(&objects[1]), 0);
}

typedef struct own_block {
    dfm_runner *runner;
    int status;
} own_block;

static int dispatch_to_own_full_runner(const dfm_token *token,
                                       void *user_data)
{
    own_block *state = (own_block *)user_data;
    dfm_token extra = token_int("p", 9);
    int attempts;

    /* Whether the token being delivered still takes its slot is the
     * library's choice: fill the queue, then one more must be refused. */
    (void)token;
    for (attempts = 0; attempts < 3 && state->status == -1; attempts++) {
        int status = dfm_runner_dispatch(state->runner, &extra, 1);

        if (status != DFM_OK)
            state->status = status;
    }
    return 0;
}

static void test_blocking_on_the_owner_thread_is_wrong_thread(void)
{
    tracked_object objects[2];
    dfm_runner *runner = bounded_runner(1, DFM_OVERFLOW_BLOCK, 0, NULL);
    own_block state = { NULL, -1 };
    dfm_callbacks *set;
    dfm_token token;
    uint64_t started;

    tracked_reset(objects, 2);
    CHECK_STATUS(dfm_process_pending(runner), DFM_OK);
    dispatch_objects(runner, objects, 0, 1);

    started = now_ns();
    token = token_object("p", &objects[1]);
    CHECK_STATUS(dfm_runner_dispatch(runner, &token, 1),
                 DFM_ERR_WRONG_THREAD);
    CHECK(now_ns() - started < 1000000000u);
    CHECK_EQ(tracked_releases(&objects[1]), 0);
    dfm_runner_destroy(runner);

    /* A callback runs on the owner thread: the same answer. */
    set = callbacks_default(dispatch_to_own_full_runner, &state, NULL);
    state.runner = bounded_runner(1, DFM_OVERFLOW_BLOCK, 0, set);
    dfm_callbacks_destroy(set);
    token = token_int("p", 1);
    CHECK_STATUS(dfm_runner_dispatch(state.runner, &token, 1), DFM_OK);
    CHECK_STATUS(dfm_process_pending(state.runner), DFM_OK);
    CHECK_STATUS(state.status, DFM_ERR_WRONG_THREAD);
    dfm_runner_destroy(state.runner);
}

static void test_stop_wakes_a_blocked_producer_with_closed(void)
{
    recorder record;
    tracked_object objects[2];
    dfm_callbacks *set;
    producer state;
    pthread_t thread;

    recorder_reset(&record);
    tracked_reset(objects, 2);
    set = callbacks_default(recorder_callback, &record, NULL);
    memset(&state, 0, sizeof state);
    state.runner = bounded_runner(1, DFM_OVERFLOW_BLOCK, 0, set);
    dfm_callbacks_destroy(set);

    CHECK_STATUS(dfm_process_pending(state.runner), DFM_OK);
    dispatch_objects(state.runner, objects, 0, 1);
    state.token = token_object("p", &objects[1]);
    if (!CHECK(pthread_create(&thread, NULL, produce_one, &state) == 0))
        return;
    sleep_ms(50);
    CHECK(!producer_done(&state));

    CHECK_STATUS(dfm_runner_stop(state.runner, DFM_STOP_DRAIN), DFM_OK);
    pthread_join(thread, NULL);
    CHECK_STATUS(state.status, DFM_ERR_CLOSED);
    CHECK_EQ(tracked_releases(&objects[1]), 0);

    CHECK_STATUS(dfm_process_pending(state.runner), DFM_OK);
    CHECK_EQ(record.count, 1);
    dfm_runner_destroy(state.runner);
    CHECK_EQ(tracked_releases(&objects[0]), 1);
    CHECK_EQ(tracked_releases(&objects[1]), 0);
}

typedef struct batch_producer {
    dfm_runner *runner;
    dfm_token tokens[3];
    int status;
    int done;
} batch_producer;

static void *produce_batch(void *argument)
{
    batch_producer *state = (batch_producer *)argument;

    state->status = dfm_runner_dispatch(state->runner, state->tokens, 3);
    __atomic_store_n(&state->done, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

static void test_a_block_queue_refuses_a_batch_that_can_never_fit(void)
{
    tracked_object objects[3];
    batch_producer state;
    pthread_t thread;
    size_t i;
    int waited;

    tracked_reset(objects, 3);
    memset(&state, 0, sizeof state);
    state.runner = bounded_runner(2, DFM_OVERFLOW_BLOCK, 0, NULL);
    CHECK_STATUS(dfm_process_pending(state.runner), DFM_OK);
    for (i = 0; i < 3; i++)
        state.tokens[i] = token_object("p", &objects[i]);

    /* Three tokens never fit in two places: waiting would be forever. */
    if (!CHECK(pthread_create(&thread, NULL, produce_batch, &state) == 0))
        return;
    for (waited = 0; waited < 2000; waited += 10) {
        if (__atomic_load_n(&state.done, __ATOMIC_SEQ_CST))
            break;
        sleep_ms(10);
    }
    CHECK(__atomic_load_n(&state.done, __ATOMIC_SEQ_CST));
    if (!__atomic_load_n(&state.done, __ATOMIC_SEQ_CST))
        (void)dfm_runner_stop(state.runner, DFM_STOP_DRAIN);
    pthread_join(thread, NULL);

    CHECK_STATUS(state.status, DFM_ERR_QUEUE_FULL);
    CHECK(!dfm_has_pending(state.runner));
    dfm_runner_destroy(state.runner);
    CHECK_EQ(tracked_count_released(objects, 3, 0), 3);
}

static void test_drop_oldest_discards_the_oldest_pending_tokens(void)
{
    enum { COUNT = 15 };
    recorder record;
    tracked_object objects[COUNT];
    dfm_callbacks *set;
    dfm_runner *runner;
    dfm_token batch[4];
    dfm_stats stats;
    size_t i;
    static const int64_t first_keys[] = { 2, 3, 4 };
    static const int64_t second_keys[] = { 2, 3, 4, 7, 8, 9 };

    recorder_reset(&record);
    tracked_reset(objects, COUNT);
    set = callbacks_default(recorder_callback, &record, NULL);
    runner = bounded_runner(3, DFM_OVERFLOW_DROP_OLDEST, 0, set);
    dfm_callbacks_destroy(set);

    dispatch_objects(runner, objects, 0, 5);
    CHECK_EQ(tracked_releases(&objects[0]), 1);
    CHECK_EQ(tracked_releases(&objects[1]), 1);
    CHECK_EQ(tracked_count_released(objects + 2, 3, 0), 3);
    stats = stats_of(runner);
    CHECK_EQ(stats.discarded, 2);
    CHECK_EQ(stats.pending, 3);
    CHECK(stats_balance(&stats));
    CHECK_STATUS(dfm_process_pending(runner), DFM_OK);
    CHECK(keys_are(&record, first_keys, 3));

    /* A batch makes room for all of itself. */
    dispatch_objects(runner, objects, 5, 3);
    batch[0] = token_object("p", &objects[8]);
    batch[1] = token_object("p", &objects[9]);
    CHECK_STATUS(dfm_runner_dispatch(runner, batch, 2), DFM_OK);
    CHECK_EQ(tracked_releases(&objects[5]), 1);
    CHECK_EQ(tracked_releases(&objects[6]), 1);
    CHECK_STATUS(dfm_process_pending(runner), DFM_OK);
    CHECK(keys_are(&record, second_keys, 6));
    CHECK_EQ(stats_of(runner).discarded, 4);

    /* Larger than the capacity: refused, nothing discarded. */
    dispatch_objects(runner, objects, 10, 1);
    for (i = 0; i < 4; i++)
        batch[i] = token_object("p", &objects[11 + i]);
    CHECK_STATUS(dfm_runner_dispatch(runner, batch, 4), DFM_ERR_QUEUE_FULL);
    CHECK_EQ(tracked_releases(&objects[10]), 0);
    CHECK_EQ(stats_of(runner).pending, 1);
    CHECK_EQ(stats_of(runner).discarded, 4);

    dfm_runner_destroy(runner);
    CHECK_EQ(tracked_count_released(objects, 11, 1), 11);
    CHECK_EQ(tracked_count_released(objects + 11, 4, 0), 4);
}

/* ---- Wake fd and notify ---------------------------------------------- */

static void test_the_wake_fd_is_minus_one_unless_enabled(void)
{
    dfm_runner *manual = manual_runner(NULL);
    dfm_runner *direct = direct_runner(NULL);

    CHECK_EQ(dfm_runner_wake_fd(manual), -1);
    CHECK_EQ(dfm_runner_wake_fd(direct), -1);
    CHECK_EQ(dfm_runner_wake_fd(NULL), -1);
    dfm_runner_destroy(manual);
    dfm_runner_destroy(direct);
}

static void test_the_wake_fd_is_readable_while_tokens_are_pending(void)
{
    dfm_manual_options options;
    dfm_runner *runner;
    dfm_token token = token_int("p", 1);
    int fd;
    int i;
    int refused = 0;

    dfm_manual_options_init(&options);
    options.use_wake_fd = true;
    runner = manual_runner_with(&options, NULL);
    fd = dfm_runner_wake_fd(runner);
    if (!CHECK(fd >= 0)) {
        dfm_runner_destroy(runner);
        return;
    }
    CHECK(!fd_readable(fd));

    CHECK_STATUS(dfm_runner_dispatch(runner, &token, 1), DFM_OK);
    CHECK(fd_readable(fd));

    /* Never read: many dispatches must neither block nor fail. */
    for (i = 0; i < 10000; i++) {
        if (dfm_runner_dispatch(runner, &token, 1) != DFM_OK)
            refused++;
    }
    CHECK_EQ(refused, 0);
    CHECK(fd_readable(fd));
    CHECK_EQ(dfm_runner_wake_fd(runner), fd);

    CHECK_STATUS(dfm_process_pending_budget(runner, 10, 0, NULL), DFM_OK);
    CHECK(fd_readable(fd));
    CHECK_STATUS(dfm_process_pending(runner), DFM_OK);
    CHECK(!fd_readable(fd));

    CHECK_STATUS(dfm_runner_dispatch(runner, &token, 1), DFM_OK);
    CHECK(fd_readable(fd));
    CHECK_STATUS(dfm_process_pending(runner), DFM_OK);
    CHECK(!fd_readable(fd));
    dfm_runner_destroy(runner);
}

static void test_the_wake_fd_covers_tokens_dispatched_during_a_pump(void)
{
    dfm_manual_options options;
    reentry state;
    dfm_callbacks *set;
    dfm_runner *runner;
    dfm_token token = token_int("p", 1);
    int fd;

    memset(&state, 0, sizeof state);
    recorder_reset(&state.record);
    state.action = REENTER_DISPATCH;
    state.trigger_key = 1;
    set = callbacks_default(reentering_callback, &state, NULL);
    dfm_manual_options_init(&options);
    options.use_wake_fd = true;
    runner = manual_runner_with(&options, set);
    state.runner = runner;
    dfm_callbacks_destroy(set);
    fd = dfm_runner_wake_fd(runner);

    CHECK_STATUS(dfm_runner_dispatch(runner, &token, 1), DFM_OK);
    CHECK_STATUS(dfm_process_pending(runner), DFM_OK);
    CHECK(dfm_has_pending(runner));
    CHECK(fd_readable(fd));
    CHECK_STATUS(dfm_process_pending(runner), DFM_OK);
    CHECK(!fd_readable(fd));
    dfm_runner_destroy(runner);
}

typedef struct notify_count {
    int calls;
    pthread_t thread;
} notify_count;

static void count_notify(void *context)
{
    notify_count *count = (notify_count *)context;

    __atomic_add_fetch(&count->calls, 1, __ATOMIC_SEQ_CST);
    count->thread = pthread_self();
}

static dfm_runner *notifying_runner(notify_count *count,
                                    const dfm_callbacks *set)
{
    dfm_manual_options options;

    memset(count, 0, sizeof *count);
    dfm_manual_options_init(&options);
    options.notify = count_notify;
    options.notify_context = count;
    return manual_runner_with(&options, set);
}

static void test_notify_runs_once_per_empty_to_pending_edge(void)
{
    notify_count count;
    dfm_runner *runner = notifying_runner(&count, NULL);
    dfm_token tokens[3];
    int i;

    for (i = 0; i < 3; i++)
        tokens[i] = token_int("p", i);
    CHECK_EQ(count.calls, 0);
    for (i = 0; i < 3; i++)
        CHECK_STATUS(dfm_runner_dispatch(runner, &tokens[i], 1), DFM_OK);
    CHECK_EQ(count.calls, 1);

    CHECK_STATUS(dfm_process_pending(runner), DFM_OK);
    CHECK_EQ(count.calls, 1);
    CHECK_STATUS(dfm_runner_dispatch(runner, &tokens[0], 1), DFM_OK);
    CHECK_EQ(count.calls, 2);

    CHECK_STATUS(dfm_process_pending(runner), DFM_OK);
    CHECK_STATUS(dfm_runner_dispatch(runner, tokens, 3), DFM_OK);
    CHECK_STATUS(dfm_runner_dispatch(runner, tokens, 3), DFM_OK);
    CHECK_EQ(count.calls, 3);
    dfm_runner_destroy(runner);
}

static void *dispatch_one_elsewhere(void *argument)
{
    dfm_token token = token_int("p", 1);

    CHECK_STATUS(dfm_runner_dispatch((dfm_runner *)argument, &token, 1),
                 DFM_OK);
    return NULL;
}

static void test_notify_runs_on_the_dispatching_thread(void)
{
    notify_count count;
    dfm_runner *runner = notifying_runner(&count, NULL);

    run_on_new_thread(dispatch_one_elsewhere, runner);
    CHECK_EQ(count.calls, 1);
    CHECK(!pthread_equal(count.thread, pthread_self()));
    dfm_runner_destroy(runner);
}

static void test_notify_covers_tokens_dispatched_during_a_pump(void)
{
    notify_count count;
    reentry state;
    dfm_callbacks *set;
    dfm_runner *runner;
    dfm_token token = token_int("p", 1);
    int calls;

    memset(&state, 0, sizeof state);
    recorder_reset(&state.record);
    state.action = REENTER_DISPATCH;
    state.trigger_key = 1;
    set = callbacks_default(reentering_callback, &state, NULL);
    runner = notifying_runner(&count, set);
    state.runner = runner;
    dfm_callbacks_destroy(set);

    CHECK_STATUS(dfm_runner_dispatch(runner, &token, 1), DFM_OK);
    CHECK_EQ(count.calls, 1);
    CHECK_STATUS(dfm_process_pending(runner), DFM_OK);
    CHECK(dfm_has_pending(runner));
    CHECK_EQ(count.calls, 2);
    calls = count.calls;
    CHECK_STATUS(dfm_process_pending(runner), DFM_OK);
    CHECK_EQ(count.calls, calls);
    dfm_runner_destroy(runner);
}

int main(void)
{
    RUN_TEST(test_tokens_go_to_their_place_then_to_the_default);
    RUN_TEST(test_a_token_without_a_route_is_dropped_and_released);
    RUN_TEST(test_a_pump_delivers_only_what_was_pending_when_called);
    RUN_TEST(test_tokens_are_delivered_in_dispatch_order);
    RUN_TEST(test_has_pending_follows_the_queue);
    RUN_TEST(test_a_callback_may_dispatch_to_other_runners);
    RUN_TEST(test_a_failing_callback_does_not_stop_the_others);
    RUN_TEST(test_each_pump_refuses_the_other_kind);
    RUN_TEST(test_without_callbacks_both_pumps_drain);
    RUN_TEST(test_the_budget_stops_after_max_tokens);
    RUN_TEST(test_the_budget_counts_failures);
    RUN_TEST(test_the_budget_stops_after_max_ns);
    RUN_TEST(test_a_pump_from_another_thread_is_wrong_thread);
    RUN_TEST(test_the_first_thread_that_pumps_owns_the_runner);
    RUN_TEST(test_a_pump_inside_a_callback_is_busy);
    RUN_TEST(test_an_async_pump_inside_a_callback_is_busy);
    RUN_TEST(test_stop_drain_closes_dispatch_and_keeps_pending);
    RUN_TEST(test_stop_discard_releases_pending_without_delivery);
    RUN_TEST(test_a_discard_after_a_drain_still_discards);
    RUN_TEST(test_start_and_stop_are_idempotent);
    RUN_TEST(test_a_runner_accepts_dispatches_before_start);
    RUN_TEST(test_destroy_releases_every_pending_object_once);
    RUN_TEST(test_destroy_inside_a_callback_is_deferred);
    RUN_TEST(test_stop_drain_inside_a_callback_does_not_deadlock);
    RUN_TEST(test_stop_discard_inside_a_callback_does_not_deadlock);
    RUN_TEST(test_stats_count_each_token_once);
    RUN_TEST(test_pending_high_water_remembers_the_most_queued);
    RUN_TEST(test_stats_need_a_runner_and_an_out_pointer);
    RUN_TEST(test_a_full_fail_queue_refuses_with_queue_full);
    RUN_TEST(test_a_full_block_queue_waits_for_the_owner_to_pump);
    RUN_TEST(test_a_full_block_queue_times_out);
    RUN_TEST(test_blocking_on_the_owner_thread_is_wrong_thread);
    RUN_TEST(test_stop_wakes_a_blocked_producer_with_closed);
    RUN_TEST(test_a_block_queue_refuses_a_batch_that_can_never_fit);
    RUN_TEST(test_drop_oldest_discards_the_oldest_pending_tokens);
    RUN_TEST(test_the_wake_fd_is_minus_one_unless_enabled);
    RUN_TEST(test_the_wake_fd_is_readable_while_tokens_are_pending);
    RUN_TEST(test_the_wake_fd_covers_tokens_dispatched_during_a_pump);
    RUN_TEST(test_notify_runs_once_per_empty_to_pending_edge);
    RUN_TEST(test_notify_runs_on_the_dispatching_thread);
    RUN_TEST(test_notify_covers_tokens_dispatched_during_a_pump);
    return check_summary();
}
