/*
 * test_direct.c - the direct runner: callbacks run on the dispatching
 * thread, inside dfm_runner_dispatch, in batch order.
 */
#include "check.h"
#include "fixtures.h"

/* Set by the test around each dispatch, read by the callback. */
static int inside_dispatch;

typedef struct witness {
    recorder record;
    int calls_inside_dispatch;
    int releases_before_return;
} witness;

static int witnessing_callback(const dfm_token *token, void *user_data)
{
    witness *state = (witness *)user_data;

    if (inside_dispatch)
        state->calls_inside_dispatch++;
    if (token->data.kind == DFM_VALUE_OBJECT) {
        state->releases_before_return += tracked_releases(
            (tracked_object *)token->data.as.object.pointer);
    }
    return recorder_callback(token, &state->record);
}

static dfm_runner *witness_runner(witness *state, error_record *errors)
{
    dfm_callbacks *set;
    dfm_runner *runner;

    memset(state, 0, sizeof *state);
    recorder_reset(&state->record);
    set = callbacks_default(witnessing_callback, state, errors);
    runner = direct_runner(set);
    dfm_callbacks_destroy(set);
    return runner;
}

static void test_callbacks_run_inside_dispatch(void)
{
    witness state;
    dfm_runner *runner = witness_runner(&state, NULL);
    dfm_token token = token_int("p", 1);

    inside_dispatch = 1;
    CHECK_STATUS(dfm_runner_dispatch(runner, &token, 1), DFM_OK);
    inside_dispatch = 0;

    CHECK_EQ(state.record.count, 1);
    CHECK_EQ(state.calls_inside_dispatch, 1);
    CHECK(pthread_equal(state.record.thread, pthread_self()));
    CHECK(!dfm_has_pending(runner));
    CHECK_EQ(stats_of(runner).delivered, 1);
    dfm_runner_destroy(runner);
}

typedef struct elsewhere {
    dfm_runner *runner;
    pthread_t thread;
    int status;
} elsewhere;

static void *dispatch_from_here(void *argument)
{
    elsewhere *state = (elsewhere *)argument;
    dfm_token token = token_int("p", 2);

    state->thread = pthread_self();
    state->status = dfm_runner_dispatch(state->runner, &token, 1);
    return NULL;
}

static void test_callbacks_run_on_the_dispatching_thread(void)
{
    witness state;
    elsewhere other;
    pthread_t thread;

    other.runner = witness_runner(&state, NULL);
    if (!CHECK(pthread_create(&thread, NULL, dispatch_from_here, &other)
               == 0))
        return;
    pthread_join(thread, NULL);

    CHECK_STATUS(other.status, DFM_OK);
    CHECK_EQ(state.record.count, 1);
    CHECK(pthread_equal(state.record.thread, other.thread));
    dfm_runner_destroy(other.runner);
}

static void test_a_batch_runs_in_order(void)
{
    witness state;
    dfm_runner *runner = witness_runner(&state, NULL);
    dfm_token batch[50];
    int64_t i;
    bool in_order = true;

    for (i = 0; i < 50; i++)
        batch[i] = token_int("p", i);
    CHECK_STATUS(dfm_runner_dispatch(runner, batch, 50), DFM_OK);

    CHECK_EQ(state.record.count, 50);
    for (i = 0; i < 50; i++)
        in_order &= state.record.keys[i] == i;
    CHECK(in_order);
    dfm_runner_destroy(runner);
}

static void test_a_failure_is_reported_and_the_others_still_run(void)
{
    witness state;
    error_record errors;
    tracked_object objects[3];
    dfm_token batch[3];
    dfm_runner *runner;
    dfm_stats stats;
    size_t i;

    error_record_reset(&errors);
    tracked_reset(objects, 3);
    runner = witness_runner(&state, &errors);
    state.record.fail_key = 1;
    state.record.fail_value = -3;
    for (i = 0; i < 3; i++)
        batch[i] = token_object("p", &objects[i]);

    CHECK_STATUS(dfm_runner_dispatch(runner, batch, 3),
                 DFM_ERR_CALLBACK_FAILED);
    CHECK_EQ(state.record.count, 3);
    CHECK_EQ(errors.count, 1);
    CHECK_STATUS(errors.status, DFM_ERR_CALLBACK_FAILED);
    CHECK(errors.had_token);
    CHECK_EQ(errors.key, 1);
    if (!CHECK(strstr(errors.message, "-3") != NULL))
        fprintf(stderr, "    message: \"%s\"\n", errors.message);

    /* The callbacks ran, so the payloads moved to the runner. */
    CHECK_EQ(tracked_count_released(objects, 3, 1), 3);
    stats = stats_of(runner);
    CHECK_EQ(stats.dispatched, 3);
    CHECK_EQ(stats.delivered, 2);
    CHECK_EQ(stats.failed, 1);
    CHECK(stats_balance(&stats));
    dfm_runner_destroy(runner);
    CHECK_EQ(tracked_count_released(objects, 3, 1), 3);
}

static void test_an_object_is_released_after_its_callback(void)
{
    witness state;
    tracked_object object;
    dfm_token token;
    dfm_runner *runner = witness_runner(&state, NULL);

    tracked_reset(&object, 1);
    token = token_object("p", &object);
    CHECK_STATUS(dfm_runner_dispatch(runner, &token, 1), DFM_OK);
    CHECK_EQ(state.releases_before_return, 0);
    CHECK_EQ(tracked_releases(&object), 1);
    dfm_runner_destroy(runner);
    CHECK_EQ(tracked_releases(&object), 1);
}

static void test_a_token_without_a_route_is_dropped_and_released(void)
{
    dfm_callbacks *set = dfm_callbacks_create();
    recorder record;
    tracked_object objects[2];
    dfm_token batch[2];
    dfm_runner *runner;
    dfm_stats stats;

    recorder_reset(&record);
    tracked_reset(objects, 2);
    CHECK_STATUS(dfm_callbacks_add_place(set, "a", recorder_callback,
                                         &record),
                 DFM_OK);
    runner = direct_runner(set);
    dfm_callbacks_destroy(set);

    batch[0] = token_object("a", &objects[0]);
    batch[1] = token_object("nowhere", &objects[1]);
    CHECK_STATUS(dfm_runner_dispatch(runner, batch, 2), DFM_OK);
    CHECK_EQ(record.count, 1);
    CHECK_EQ(tracked_count_released(objects, 2, 1), 2);
    stats = stats_of(runner);
    CHECK_EQ(stats.delivered, 1);
    CHECK_EQ(stats.dropped, 1);
    dfm_runner_destroy(runner);
}

static void test_dispatch_after_stop_is_closed(void)
{
    witness state;
    tracked_object object;
    dfm_token token;
    dfm_runner *runner = witness_runner(&state, NULL);

    tracked_reset(&object, 1);
    token = token_object("p", &object);
    CHECK_STATUS(dfm_runner_start(runner), DFM_OK);
    CHECK_STATUS(dfm_runner_stop(runner, DFM_STOP_DRAIN), DFM_OK);
    CHECK_STATUS(dfm_runner_dispatch(runner, &token, 1), DFM_ERR_CLOSED);
    CHECK_STATUS(dfm_runner_stop(runner, DFM_STOP_DISCARD), DFM_OK);
    CHECK_STATUS(dfm_runner_start(runner), DFM_ERR_CLOSED);
    CHECK_EQ(state.record.count, 0);
    CHECK_EQ(tracked_releases(&object), 0);
    CHECK_EQ(stats_of(runner).rejected, 1);
    dfm_runner_destroy(runner);
    CHECK_EQ(tracked_releases(&object), 0);
}

static void test_pumps_on_a_direct_runner_are_wrong_kind(void)
{
    witness state;
    dfm_runner *runner = witness_runner(&state, NULL);
    dfm_pump_result result;

    CHECK_STATUS(dfm_process_pending(runner), DFM_ERR_WRONG_KIND);
    CHECK_STATUS(dfm_process_pending_async(runner), DFM_ERR_WRONG_KIND);
    CHECK_STATUS(dfm_process_pending_budget(runner, 1, 0, &result),
                 DFM_ERR_WRONG_KIND);
    CHECK(!dfm_has_pending(runner));
    CHECK_EQ(dfm_runner_wake_fd(runner), -1);
    dfm_runner_destroy(runner);
}

typedef struct self_acting {
    recorder record;
    dfm_runner *runner;
    int depth;
    int nested_status;
    bool destroy;
} self_acting;

static int act_on_own_runner(const dfm_token *token, void *user_data)
{
    self_acting *state = (self_acting *)user_data;

    recorder_callback(token, &state->record);
    if (token_key(token) != 1)
        return 0;

    if (state->destroy) {
        dfm_runner_destroy(state->runner);
    } else if (state->depth == 0) {
        dfm_token again = token_int("p", 1);

        /* Callbacks may dispatch to any runner, their own included. */
        state->depth++;
        state->nested_status = dfm_runner_dispatch(state->runner, &again, 1);
        state->depth--;
    }
    return 0;
}

static dfm_runner *self_acting_runner(self_acting *state, bool destroy)
{
    dfm_callbacks *set;

    memset(state, 0, sizeof *state);
    recorder_reset(&state->record);
    state->destroy = destroy;
    state->nested_status = -1;
    set = callbacks_default(act_on_own_runner, state, NULL);
    state->runner = direct_runner(set);
    dfm_callbacks_destroy(set);
    return state->runner;
}

static void test_a_callback_may_dispatch_to_its_own_runner(void)
{
    self_acting state;
    dfm_runner *runner = self_acting_runner(&state, false);
    dfm_token token = token_int("p", 1);

    CHECK_STATUS(dfm_runner_dispatch(runner, &token, 1), DFM_OK);
    CHECK_STATUS(state.nested_status, DFM_OK);
    CHECK_EQ(state.record.count, 2);
    CHECK_EQ(stats_of(runner).delivered, 2);
    dfm_runner_destroy(runner);
}

static void test_destroy_inside_its_own_callback_is_deferred(void)
{
    self_acting state;
    tracked_object objects[4];
    dfm_token batch[4];
    dfm_runner *runner = self_acting_runner(&state, true);
    size_t i;

    tracked_reset(objects, 4);
    for (i = 0; i < 4; i++)
        batch[i] = token_object("p", &objects[i]);

    /* Token 1's callback destroys the runner: dispatch must return
     * without touching freed memory, and release every payload once. */
    (void)dfm_runner_dispatch(runner, batch, 4);
    CHECK(state.record.count >= 2);
    CHECK_EQ(tracked_count_released(objects, 4, 1), 4);
}

int main(void)
{
    RUN_TEST(test_callbacks_run_inside_dispatch);
    RUN_TEST(test_callbacks_run_on_the_dispatching_thread);
    RUN_TEST(test_a_batch_runs_in_order);
    RUN_TEST(test_a_failure_is_reported_and_the_others_still_run);
    RUN_TEST(test_an_object_is_released_after_its_callback);
    RUN_TEST(test_a_token_without_a_route_is_dropped_and_released);
    RUN_TEST(test_dispatch_after_stop_is_closed);
    RUN_TEST(test_pumps_on_a_direct_runner_are_wrong_kind);
    RUN_TEST(test_a_callback_may_dispatch_to_its_own_runner);
    RUN_TEST(test_destroy_inside_its_own_callback_is_deferred);
    return check_summary();
}
