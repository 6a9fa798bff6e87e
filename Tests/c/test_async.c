/*
 * test_async.c - async callbacks: one token in flight per runner,
 * dfm_complete from any thread, failed and repeated completions, payload
 * release, and executor runners driven by a hand-run test executor.
 */
#include "check.h"
#include "fixtures.h"

/* ---- An async callback that holds its completions -------------------- */

#define HELD_CAPACITY 1024

typedef struct held_call {
    const dfm_token *token;
    dfm_completion *completion;
    int64_t key;
} held_call;

typedef struct async_state {
    size_t started;
    held_call calls[HELD_CAPACITY];
    bool complete_inline;
    int inline_status;
    int active;            /* callbacks on the stack now */
    int most_active;       /* the most ever on the stack at once */
    int releases_at_start; /* payload releases seen when callbacks began */
} async_state;

static void holding_callback(const dfm_token *token,
                             dfm_completion *completion, void *user_data)
{
    async_state *state = (async_state *)user_data;
    held_call *call = &state->calls[state->started % HELD_CAPACITY];

    state->active++;
    if (state->active > state->most_active)
        state->most_active = state->active;
    if (token->data.kind == DFM_VALUE_OBJECT) {
        state->releases_at_start += tracked_releases(
            (tracked_object *)token->data.as.object.pointer);
    }
    call->token = token;
    call->completion = completion;
    call->key = token_key(token);
    state->started++;
    if (state->complete_inline)
        dfm_complete(completion, state->inline_status);
    state->active--;
}

static void async_state_reset(async_state *state)
{
    memset(state, 0, sizeof *state);
}

static dfm_callbacks *holding_set(async_state *state, error_record *errors)
{
    dfm_callbacks *set = dfm_callbacks_create();

    async_state_reset(state);
    CHECK_STATUS(dfm_callbacks_set_default_async(set, holding_callback,
                                                 state),
                 DFM_OK);
    if (errors != NULL) {
        error_record_reset(errors);
        CHECK_STATUS(dfm_callbacks_set_error_handler(set, error_recorder,
                                                     errors),
                     DFM_OK);
    }
    return set;
}

static dfm_runner *async_manual(async_state *state, error_record *errors)
{
    dfm_callbacks *set = holding_set(state, errors);
    dfm_runner *runner = manual_runner(set);

    dfm_callbacks_destroy(set);
    return runner;
}

/* ---- A test executor: posted work waits until the test runs it ------- */

typedef struct work_item {
    void (*work)(void *);
    void *arg;
} work_item;

typedef struct test_executor {
    pthread_mutex_t lock;
    work_item *items;
    size_t head;
    size_t tail;
    size_t capacity;
    size_t posted;
    pthread_t last_post_thread;
    bool keep;             /* false: posted work is thrown away */
} test_executor;

static void test_post(void *context, void (*work)(void *), void *arg)
{
    test_executor *executor = (test_executor *)context;

    pthread_mutex_lock(&executor->lock);
    executor->posted++;
    executor->last_post_thread = pthread_self();
    if (executor->keep) {
        if (executor->tail == executor->capacity) {
            executor->capacity = executor->capacity * 2 + 16;
            executor->items = (work_item *)realloc(
                executor->items, executor->capacity * sizeof(work_item));
        }
        executor->items[executor->tail].work = work;
        executor->items[executor->tail].arg = arg;
        executor->tail++;
    }
    pthread_mutex_unlock(&executor->lock);
}

static void executor_init(test_executor *executor, bool keep)
{
    memset(executor, 0, sizeof *executor);
    pthread_mutex_init(&executor->lock, NULL);
    executor->keep = keep;
}

static void executor_free(test_executor *executor)
{
    pthread_mutex_destroy(&executor->lock);
    free(executor->items);
}

static size_t executor_posted(test_executor *executor)
{
    size_t posted;

    pthread_mutex_lock(&executor->lock);
    posted = executor->posted;
    pthread_mutex_unlock(&executor->lock);
    return posted;
}

/* Runs the oldest waiting work item; false when there is none. */
static bool executor_run_one(test_executor *executor)
{
    work_item item;

    pthread_mutex_lock(&executor->lock);
    if (executor->head == executor->tail) {
        pthread_mutex_unlock(&executor->lock);
        return false;
    }
    item = executor->items[executor->head++];
    pthread_mutex_unlock(&executor->lock);

    item.work(item.arg);
    return true;
}

/* Runs work items, those they post included, until none is left. */
static size_t executor_run_all(test_executor *executor)
{
    size_t ran = 0;

    while (ran < 1000000 && executor_run_one(executor))
        ran++;
    return ran;
}

static dfm_runner *async_executor(test_executor *executor,
                                  async_state *state, error_record *errors)
{
    dfm_callbacks *set = holding_set(state, errors);
    dfm_executor host;
    dfm_runner *runner;

    host.post = test_post;
    host.context = executor;
    runner = runner_from(dfm_executor_dispatcher_create(host), set);
    dfm_callbacks_destroy(set);
    return runner;
}

typedef struct completer {
    dfm_completion *completion;
    int status;
    pthread_t thread;
} completer;

static void *complete_elsewhere(void *argument)
{
    completer *state = (completer *)argument;

    state->thread = pthread_self();
    dfm_complete(state->completion, state->status);
    return NULL;
}

/* ---- Manual async runners -------------------------------------------- */

static void test_one_token_is_in_flight_at_a_time(void)
{
    async_state state;
    dfm_runner *runner = async_manual(&state, NULL);
    dfm_token tokens[2];
    dfm_stats stats;

    tokens[0] = token_int("p", 0);
    tokens[1] = token_int("p", 1);
    CHECK_STATUS(dfm_runner_dispatch(runner, tokens, 2), DFM_OK);

    CHECK_STATUS(dfm_process_pending_async(runner), DFM_OK);
    CHECK_EQ(state.started, 1);
    CHECK_EQ(state.calls[0].key, 0);
    CHECK_STATUS(dfm_process_pending_async(runner), DFM_OK);
    CHECK_EQ(state.started, 1);

    /* The token in flight is counted somewhere, once. */
    stats = stats_of(runner);
    CHECK_EQ(stats.dispatched, 2);
    CHECK(stats_balance(&stats));

    /* Completing never starts the next callback by itself. */
    dfm_complete(state.calls[0].completion, 0);
    CHECK_EQ(state.started, 1);

    CHECK_STATUS(dfm_process_pending_async(runner), DFM_OK);
    CHECK_EQ(state.started, 2);
    CHECK_EQ(state.calls[1].key, 1);
    dfm_complete(state.calls[1].completion, 0);
    CHECK_STATUS(dfm_process_pending_async(runner), DFM_OK);

    stats = stats_of(runner);
    CHECK_EQ(stats.delivered, 2);
    CHECK_EQ(stats.failed, 0);
    CHECK_EQ(stats.pending, 0);
    CHECK(stats_balance(&stats));
    CHECK(!dfm_has_pending(runner));
    dfm_runner_destroy(runner);
}

static void test_inline_completions_never_nest_callbacks(void)
{
    async_state state;
    dfm_runner *runner = async_manual(&state, NULL);
    dfm_token tokens[5];
    int64_t i;
    int pumps = 0;

    state.complete_inline = true;
    for (i = 0; i < 5; i++)
        tokens[i] = token_int("p", i);
    CHECK_STATUS(dfm_runner_dispatch(runner, tokens, 5), DFM_OK);

    while (state.started < 5 && pumps < 20) {
        CHECK_STATUS(dfm_process_pending_async(runner), DFM_OK);
        pumps++;
    }
    CHECK_STATUS(dfm_process_pending_async(runner), DFM_OK);
    CHECK_EQ(state.started, 5);
    CHECK_EQ(state.most_active, 1);
    for (i = 0; i < 5; i++)
        CHECK_EQ(state.calls[i].key, i);
    CHECK_EQ(stats_of(runner).delivered, 5);
    dfm_runner_destroy(runner);
}

static void test_a_completion_may_come_from_another_thread(void)
{
    async_state state;
    dfm_runner *runner = async_manual(&state, NULL);
    tracked_object object;
    dfm_token token;
    completer other;
    pthread_t thread;

    tracked_reset(&object, 1);
    token = token_object("p", &object);
    CHECK_STATUS(dfm_runner_dispatch(runner, &token, 1), DFM_OK);
    CHECK_STATUS(dfm_process_pending_async(runner), DFM_OK);
    CHECK_EQ(state.started, 1);
    CHECK_EQ(tracked_releases(&object), 0);

    other.completion = state.calls[0].completion;
    other.status = 0;
    if (!CHECK(pthread_create(&thread, NULL, complete_elsewhere, &other)
               == 0))
        return;
    pthread_join(thread, NULL);

    /* The release runs on the runner's thread, at its next pump. */
    CHECK_EQ(tracked_releases(&object), 0);
    CHECK_STATUS(dfm_process_pending_async(runner), DFM_OK);
    CHECK_EQ(tracked_releases(&object), 1);
    CHECK_EQ(state.releases_at_start, 0);
    CHECK_EQ(stats_of(runner).delivered, 1);
    dfm_runner_destroy(runner);
    CHECK_EQ(tracked_releases(&object), 1);
}

static void test_a_failed_completion_reaches_the_error_handler(void)
{
    async_state state;
    error_record errors;
    dfm_runner *runner = async_manual(&state, &errors);
    tracked_object object;
    dfm_token token;
    dfm_stats stats;

    tracked_reset(&object, 1);
    object.id = 77;
    token = token_object("p", &object);
    CHECK_STATUS(dfm_runner_dispatch(runner, &token, 1), DFM_OK);
    CHECK_STATUS(dfm_process_pending_async(runner), DFM_OK);

    dfm_complete(state.calls[0].completion, 5);
    CHECK_EQ(errors.count, 0);
    (void)dfm_process_pending_async(runner);

    CHECK_EQ(errors.count, 1);
    CHECK_STATUS(errors.status, DFM_ERR_CALLBACK_FAILED);
    CHECK(errors.had_token);
    CHECK_EQ(errors.key, 77);
    if (!CHECK(strstr(errors.message, "5") != NULL))
        fprintf(stderr, "    message: \"%s\"\n", errors.message);
    stats = stats_of(runner);
    CHECK_EQ(stats.failed, 1);
    CHECK_EQ(stats.delivered, 0);
    CHECK(stats_balance(&stats));
    CHECK_EQ(tracked_releases(&object), 1);
    dfm_runner_destroy(runner);
    CHECK_EQ(tracked_releases(&object), 1);
}

static void test_a_second_completion_is_ignored_and_counted(void)
{
    async_state state;
    error_record errors;
    dfm_runner *runner = async_manual(&state, &errors);
    tracked_object objects[2];
    dfm_token tokens[2];
    dfm_completion *first;
    dfm_stats stats;

    tracked_reset(objects, 2);
    tokens[0] = token_object("p", &objects[0]);
    tokens[1] = token_object("p", &objects[1]);
    CHECK_STATUS(dfm_runner_dispatch(runner, tokens, 2), DFM_OK);
    CHECK_STATUS(dfm_process_pending_async(runner), DFM_OK);
    first = state.calls[0].completion;

    dfm_complete(first, 0);
    dfm_complete(first, 0);
    CHECK(dfm_last_error()[0] != '\0');

    CHECK_STATUS(dfm_process_pending_async(runner), DFM_OK);
    CHECK_EQ(state.started, 2);
    dfm_complete(state.calls[1].completion, 0);
    CHECK_STATUS(dfm_process_pending_async(runner), DFM_OK);

    stats = stats_of(runner);
    CHECK_EQ(stats.delivered, 2);
    CHECK_EQ(stats.failed, 1);
    CHECK_EQ(errors.count, 1);
    CHECK(!errors.had_token);
    CHECK_STATUS(errors.status, DFM_ERR_INVALID_ARGUMENT);
    CHECK_EQ(tracked_count_released(objects, 2, 1), 2);

    /* Stale completions never crash, not even after destroy. */
    dfm_complete(first, 0);
    dfm_runner_destroy(runner);
    dfm_complete(first, 1);
    dfm_complete(state.calls[1].completion, 0);
    CHECK_EQ(tracked_count_released(objects, 2, 1), 2);
}

static void test_complete_with_a_bad_handle_never_crashes(void)
{
    /* A handle is not a pointer the library dereferences: NULL and a
     * made-up value are refused quietly. */
    dfm_complete(NULL, 0);
    dfm_complete((dfm_completion *)(uintptr_t)0xDEADBEEFu, 0);
    dfm_complete((dfm_completion *)(uintptr_t)1, 3);
    CHECK(true);
}

static void test_the_token_stays_valid_until_complete(void)
{
    static const int64_t levels[] = { 1, 2, 3 };
    async_state state;
    dfm_runner *runner = async_manual(&state, NULL);
    dfm_value text = value_none();
    dfm_token token;
    const dfm_token *held;
    char place[16];

    text.kind = DFM_VALUE_STRING;
    text.as.text.data = "still here";
    text.as.text.length = 10;
    strcpy(place, "place");
    token = token_make(place, text);
    token.frame.levels = levels;
    token.frame.depth = 3;
    CHECK_STATUS(dfm_runner_dispatch(runner, &token, 1), DFM_OK);
    strcpy(place, "XXXXX");
    CHECK_STATUS(dfm_process_pending_async(runner), DFM_OK);
    CHECK_STATUS(dfm_process_pending_async(runner), DFM_OK);

    held = state.calls[0].token;
    if (CHECK(state.started == 1 && held != NULL)) {
        CHECK(strcmp(held->target_place, "place") == 0);
        CHECK(held->data.kind == DFM_VALUE_STRING);
        CHECK(held->data.as.text.length == 10
              && strcmp(held->data.as.text.data, "still here") == 0);
        CHECK(held->frame.depth == 3 && held->frame.levels != NULL
              && held->frame.levels[2] == 3);
    }
    dfm_complete(state.calls[0].completion, 0);
    CHECK_STATUS(dfm_process_pending_async(runner), DFM_OK);
    dfm_runner_destroy(runner);
}

static void test_destroy_with_a_manual_callback_in_flight(void)
{
    async_state state;
    dfm_runner *runner = async_manual(&state, NULL);
    tracked_object objects[3];
    dfm_token tokens[3];
    size_t i;

    tracked_reset(objects, 3);
    for (i = 0; i < 3; i++)
        tokens[i] = token_object("p", &objects[i]);
    CHECK_STATUS(dfm_runner_dispatch(runner, tokens, 3), DFM_OK);
    CHECK_STATUS(dfm_process_pending_async(runner), DFM_OK);
    CHECK_EQ(state.started, 1);

    dfm_runner_destroy(runner);
    CHECK_EQ(tracked_releases(&objects[0]), 0);
    CHECK_EQ(tracked_releases(&objects[1]), 1);
    CHECK_EQ(tracked_releases(&objects[2]), 1);

    /* The in-flight token outlives the runner until it completes. */
    CHECK(state.calls[0].token->data.as.object.pointer == &objects[0]);
    dfm_complete(state.calls[0].completion, 0);
    CHECK_EQ(tracked_count_released(objects, 3, 1), 3);
    CHECK_EQ(state.started, 1);
}

/* An async callback that acts on its own runner at one key, then
 * completes inline. */
typedef enum async_action {
    ASYNC_DESTROY,
    ASYNC_STOP_DISCARD
} async_action;

typedef struct self_acting {
    dfm_runner *runner;
    async_action action;
    int64_t trigger_key;
    size_t started;
    int status;
} self_acting;

static void self_acting_callback(const dfm_token *token,
                                 dfm_completion *completion, void *user_data)
{
    self_acting *state = (self_acting *)user_data;

    state->started++;
    if (token_key(token) == state->trigger_key) {
        if (state->action == ASYNC_DESTROY)
            dfm_runner_destroy(state->runner);
        else
            state->status = dfm_runner_stop(state->runner, DFM_STOP_DISCARD);
    }
    dfm_complete(completion, 0);
}

static dfm_callbacks *self_acting_set(self_acting *state,
                                      async_action action)
{
    dfm_callbacks *set = dfm_callbacks_create();

    memset(state, 0, sizeof *state);
    state->action = action;
    state->trigger_key = 0;
    state->status = -1;
    CHECK_STATUS(dfm_callbacks_set_default_async(set, self_acting_callback,
                                                 state),
                 DFM_OK);
    return set;
}

static void dispatch_tracked(dfm_runner *runner, tracked_object *objects,
                             size_t count)
{
    dfm_token tokens[8];
    size_t i;

    for (i = 0; i < count && i < 8; i++)
        tokens[i] = token_object("p", &objects[i]);
    CHECK_STATUS(dfm_runner_dispatch(runner, tokens, count), DFM_OK);
}

static void test_destroy_inside_a_manual_async_callback_is_deferred(void)
{
    self_acting state;
    dfm_callbacks *set = self_acting_set(&state, ASYNC_DESTROY);
    tracked_object objects[4];

    state.runner = manual_runner(set);
    dfm_callbacks_destroy(set);
    tracked_reset(objects, 4);
    dispatch_tracked(state.runner, objects, 4);

    /* The runner is gone once the pump returns; whether the rest of the
     * snapshot ran before it went is the library's choice, but every
     * payload is released exactly once. */
    (void)dfm_process_pending_async(state.runner);
    CHECK(state.started >= 1);
    CHECK_EQ(tracked_count_released(objects, 4, 1), 4);
}

static void test_stop_discard_inside_an_async_callback(void)
{
    self_acting state;
    dfm_callbacks *set = self_acting_set(&state, ASYNC_STOP_DISCARD);
    tracked_object objects[4];
    dfm_stats stats;
    int pumps;

    state.runner = manual_runner(set);
    dfm_callbacks_destroy(set);
    tracked_reset(objects, 4);
    dispatch_tracked(state.runner, objects, 4);

    for (pumps = 0; pumps < 5; pumps++)
        CHECK_STATUS(dfm_process_pending_async(state.runner), DFM_OK);
    CHECK_STATUS(state.status, DFM_OK);
    CHECK_EQ(state.started, 1);
    CHECK_EQ(tracked_count_released(objects, 4, 1), 4);
    stats = stats_of(state.runner);
    CHECK_EQ(stats.delivered, 1);
    CHECK_EQ(stats.discarded, 3);
    CHECK(stats_balance(&stats));
    dfm_runner_destroy(state.runner);
    CHECK_EQ(tracked_count_released(objects, 4, 1), 4);
}

static void test_stop_discard_with_a_callback_in_flight(void)
{
    async_state state;
    dfm_runner *runner = async_manual(&state, NULL);
    tracked_object objects[3];
    dfm_stats stats;

    tracked_reset(objects, 3);
    dispatch_tracked(runner, objects, 3);
    CHECK_STATUS(dfm_process_pending_async(runner), DFM_OK);
    CHECK_EQ(state.started, 1);

    CHECK_STATUS(dfm_runner_stop(runner, DFM_STOP_DISCARD), DFM_OK);
    CHECK_EQ(tracked_releases(&objects[0]), 0);
    CHECK_EQ(tracked_releases(&objects[1]), 1);
    CHECK_EQ(tracked_releases(&objects[2]), 1);

    dfm_complete(state.calls[0].completion, 0);
    CHECK_STATUS(dfm_process_pending_async(runner), DFM_OK);
    CHECK_EQ(tracked_count_released(objects, 3, 1), 3);
    CHECK_EQ(state.started, 1);
    stats = stats_of(runner);
    CHECK_EQ(stats.delivered, 1);
    CHECK_EQ(stats.discarded, 2);
    CHECK(stats_balance(&stats));
    dfm_runner_destroy(runner);
}

/* ---- Executor runners ------------------------------------------------ */

static void test_an_executor_runner_delivers_in_order(void)
{
    test_executor executor;
    async_state state;
    dfm_runner *runner;
    dfm_token batch[8];
    int64_t next = 0;
    size_t i;
    bool in_order = true;

    executor_init(&executor, true);
    runner = async_executor(&executor, &state, NULL);
    state.complete_inline = true;

    while (next < 200) {
        size_t count = 0;

        while (count < 8 && next < 200)
            batch[count++] = token_int("p", next++);
        CHECK_STATUS(dfm_runner_dispatch(runner, batch, count), DFM_OK);
    }

    /* post never runs work inline: nothing has been delivered yet. */
    CHECK_EQ(state.started, 0);
    CHECK(executor_posted(&executor) >= 1);
    CHECK(pthread_equal(executor.last_post_thread, pthread_self()));

    executor_run_all(&executor);
    CHECK_EQ(state.started, 200);
    for (i = 0; i < 200 && i < state.started; i++)
        in_order &= state.calls[i].key == (int64_t)i;
    CHECK(in_order);
    CHECK_EQ(state.most_active, 1);
    CHECK_EQ(stats_of(runner).delivered, 200);
    dfm_runner_destroy(runner);
    executor_free(&executor);
}

static void test_a_work_item_delivers_at_most_64_tokens(void)
{
    test_executor executor;
    async_state state;
    dfm_runner *runner;
    dfm_token batch[200];
    int64_t i;

    executor_init(&executor, true);
    runner = async_executor(&executor, &state, NULL);
    state.complete_inline = true;
    for (i = 0; i < 200; i++)
        batch[i] = token_int("p", i);
    CHECK_STATUS(dfm_runner_dispatch(runner, batch, 200), DFM_OK);

    CHECK(executor_run_one(&executor));
    CHECK(state.started >= 1);
    CHECK(state.started <= 64);
    executor_run_all(&executor);
    CHECK_EQ(state.started, 200);
    dfm_runner_destroy(runner);
    executor_free(&executor);
}

static void test_an_executor_runner_keeps_one_token_in_flight(void)
{
    test_executor executor;
    async_state state;
    dfm_runner *runner;
    dfm_token tokens[3];
    completer other;
    pthread_t thread;
    size_t posted;
    int64_t i;

    executor_init(&executor, true);
    runner = async_executor(&executor, &state, NULL);
    for (i = 0; i < 3; i++)
        tokens[i] = token_int("p", i);
    CHECK_STATUS(dfm_runner_dispatch(runner, tokens, 3), DFM_OK);

    executor_run_all(&executor);
    CHECK_EQ(state.started, 1);

    /* Complete from another thread: the next callback is posted from
     * there, and starts only when the loop runs it. */
    posted = executor_posted(&executor);
    other.completion = state.calls[0].completion;
    other.status = 0;
    if (!CHECK(pthread_create(&thread, NULL, complete_elsewhere, &other)
               == 0))
        return;
    pthread_join(thread, NULL);
    CHECK_EQ(state.started, 1);
    CHECK(executor_posted(&executor) > posted);
    CHECK(pthread_equal(executor.last_post_thread, other.thread));

    executor_run_all(&executor);
    CHECK_EQ(state.started, 2);
    CHECK_EQ(state.calls[1].key, 1);
    dfm_complete(state.calls[1].completion, 0);
    CHECK_EQ(state.started, 2);
    executor_run_all(&executor);
    CHECK_EQ(state.started, 3);
    dfm_complete(state.calls[2].completion, 0);
    executor_run_all(&executor);

    CHECK_EQ(stats_of(runner).delivered, 3);
    CHECK_EQ(state.most_active, 1);
    dfm_runner_destroy(runner);
    executor_free(&executor);
}

static void test_an_executor_failed_completion_reaches_the_error_handler(
    void)
{
    test_executor executor;
    async_state state;
    error_record errors;
    dfm_runner *runner;
    tracked_object object;
    dfm_token token;

    executor_init(&executor, true);
    runner = async_executor(&executor, &state, &errors);
    tracked_reset(&object, 1);
    object.id = 31;
    token = token_object("p", &object);
    CHECK_STATUS(dfm_runner_dispatch(runner, &token, 1), DFM_OK);
    executor_run_all(&executor);
    CHECK_EQ(state.started, 1);

    dfm_complete(state.calls[0].completion, 5);
    CHECK_EQ(errors.count, 0);
    executor_run_all(&executor);
    CHECK_EQ(errors.count, 1);
    CHECK_STATUS(errors.status, DFM_ERR_CALLBACK_FAILED);
    CHECK_EQ(errors.key, 31);
    CHECK_EQ(stats_of(runner).failed, 1);
    CHECK_EQ(tracked_releases(&object), 1);
    dfm_runner_destroy(runner);
    executor_free(&executor);
}

static void test_pumps_on_an_executor_runner_are_wrong_kind(void)
{
    test_executor executor;
    async_state state;
    dfm_runner *runner;

    executor_init(&executor, true);
    runner = async_executor(&executor, &state, NULL);
    CHECK_STATUS(dfm_process_pending(runner), DFM_ERR_WRONG_KIND);
    CHECK_STATUS(dfm_process_pending_async(runner), DFM_ERR_WRONG_KIND);
    CHECK_STATUS(dfm_process_pending_budget(runner, 0, 0, NULL),
                 DFM_ERR_WRONG_KIND);
    CHECK_EQ(dfm_runner_wake_fd(runner), -1);
    dfm_runner_destroy(runner);
    executor_free(&executor);
}

static void test_work_items_run_after_destroy_do_nothing(void)
{
    test_executor executor;
    async_state state;
    dfm_runner *runner;
    tracked_object objects[3];
    dfm_token tokens[3];
    size_t i;

    executor_init(&executor, true);
    runner = async_executor(&executor, &state, NULL);
    state.complete_inline = true;
    tracked_reset(objects, 3);
    for (i = 0; i < 3; i++)
        tokens[i] = token_object("p", &objects[i]);
    CHECK_STATUS(dfm_runner_dispatch(runner, tokens, 3), DFM_OK);
    CHECK(executor_posted(&executor) >= 1);

    dfm_runner_destroy(runner);
    CHECK_EQ(tracked_count_released(objects, 3, 1), 3);
    executor_run_all(&executor);
    CHECK_EQ(state.started, 0);
    CHECK_EQ(tracked_count_released(objects, 3, 1), 3);
    executor_free(&executor);
}

static void test_destroy_with_an_executor_callback_in_flight(void)
{
    test_executor executor;
    async_state state;
    dfm_runner *runner;
    tracked_object objects[3];
    dfm_token tokens[3];
    size_t i;

    executor_init(&executor, true);
    runner = async_executor(&executor, &state, NULL);
    tracked_reset(objects, 3);
    for (i = 0; i < 3; i++)
        tokens[i] = token_object("p", &objects[i]);
    CHECK_STATUS(dfm_runner_dispatch(runner, tokens, 3), DFM_OK);
    executor_run_all(&executor);
    CHECK_EQ(state.started, 1);

    dfm_runner_destroy(runner);
    CHECK_EQ(tracked_releases(&objects[0]), 0);
    CHECK_EQ(tracked_releases(&objects[1]), 1);
    CHECK_EQ(tracked_releases(&objects[2]), 1);

    dfm_complete(state.calls[0].completion, 0);
    executor_run_all(&executor);
    CHECK_EQ(tracked_count_released(objects, 3, 1), 3);
    CHECK_EQ(state.started, 1);
    executor_free(&executor);
}

static void test_destroy_inside_an_executor_callback_is_deferred(void)
{
    test_executor executor;
    self_acting state;
    dfm_callbacks *set = self_acting_set(&state, ASYNC_DESTROY);
    dfm_executor host;
    tracked_object objects[4];

    executor_init(&executor, true);
    host.post = test_post;
    host.context = &executor;
    state.runner = runner_from(dfm_executor_dispatcher_create(host), set);
    dfm_callbacks_destroy(set);
    tracked_reset(objects, 4);
    dispatch_tracked(state.runner, objects, 4);

    executor_run_all(&executor);
    CHECK(state.started >= 1);
    CHECK_EQ(tracked_count_released(objects, 4, 1), 4);
    executor_free(&executor);
}

static void test_an_executor_that_never_runs_still_releases_on_destroy(void)
{
    test_executor executor;
    async_state state;
    dfm_runner *runner;
    tracked_object objects[5];
    dfm_token tokens[5];
    size_t i;

    executor_init(&executor, false);
    runner = async_executor(&executor, &state, NULL);
    tracked_reset(objects, 5);
    for (i = 0; i < 5; i++)
        tokens[i] = token_object("p", &objects[i]);
    CHECK_STATUS(dfm_runner_dispatch(runner, tokens, 5), DFM_OK);
    CHECK(executor_posted(&executor) >= 1);
    CHECK_EQ(tracked_count_released(objects, 5, 0), 5);

    dfm_runner_destroy(runner);
    CHECK_EQ(tracked_count_released(objects, 5, 1), 5);
    CHECK_EQ(state.started, 0);
    executor_free(&executor);
}

static void test_an_executor_runner_stops_like_the_others(void)
{
    test_executor executor;
    async_state state;
    dfm_runner *runner;
    tracked_object objects[4];
    dfm_token late;

    executor_init(&executor, true);
    runner = async_executor(&executor, &state, NULL);
    state.complete_inline = true;
    tracked_reset(objects, 4);
    late = token_object("p", &objects[3]);

    CHECK_STATUS(dfm_runner_dispatch(runner, &late, 0), DFM_OK);
    late = token_object("p", &objects[0]);
    CHECK_STATUS(dfm_runner_dispatch(runner, &late, 1), DFM_OK);
    late = token_object("p", &objects[1]);
    CHECK_STATUS(dfm_runner_dispatch(runner, &late, 1), DFM_OK);
    CHECK_STATUS(dfm_runner_stop(runner, DFM_STOP_DRAIN), DFM_OK);
    late = token_object("p", &objects[2]);
    CHECK_STATUS(dfm_runner_dispatch(runner, &late, 1), DFM_ERR_CLOSED);

    executor_run_all(&executor);
    CHECK_EQ(state.started, 2);
    CHECK_EQ(tracked_count_released(objects, 2, 1), 2);
    CHECK_EQ(tracked_releases(&objects[2]), 0);
    dfm_runner_destroy(runner);
    executor_free(&executor);
}

static void test_an_executor_runner_without_callbacks_drops(void)
{
    test_executor executor;
    dfm_executor host;
    dfm_runner *runner;
    tracked_object object;
    dfm_token token;

    executor_init(&executor, true);
    host.post = test_post;
    host.context = &executor;
    runner = runner_from(dfm_executor_dispatcher_create(host), NULL);
    tracked_reset(&object, 1);
    token = token_object("p", &object);
    CHECK_STATUS(dfm_runner_dispatch(runner, &token, 1), DFM_OK);
    executor_run_all(&executor);

    CHECK_EQ(tracked_releases(&object), 1);
    CHECK_EQ(stats_of(runner).dropped, 1);
    dfm_runner_destroy(runner);
    executor_free(&executor);
}

int main(void)
{
    RUN_TEST(test_one_token_is_in_flight_at_a_time);
    RUN_TEST(test_inline_completions_never_nest_callbacks);
    RUN_TEST(test_a_completion_may_come_from_another_thread);
    RUN_TEST(test_a_failed_completion_reaches_the_error_handler);
    RUN_TEST(test_a_second_completion_is_ignored_and_counted);
    RUN_TEST(test_complete_with_a_bad_handle_never_crashes);
    RUN_TEST(test_the_token_stays_valid_until_complete);
    RUN_TEST(test_destroy_with_a_manual_callback_in_flight);
    RUN_TEST(test_destroy_inside_a_manual_async_callback_is_deferred);
    RUN_TEST(test_stop_discard_inside_an_async_callback);
    RUN_TEST(test_stop_discard_with_a_callback_in_flight);
    RUN_TEST(test_an_executor_runner_delivers_in_order);
    RUN_TEST(test_a_work_item_delivers_at_most_64_tokens);
    RUN_TEST(test_an_executor_runner_keeps_one_token_in_flight);
    RUN_TEST(test_an_executor_failed_completion_reaches_the_error_handler);
    RUN_TEST(test_pumps_on_an_executor_runner_are_wrong_kind);
    RUN_TEST(test_work_items_run_after_destroy_do_nothing);
    RUN_TEST(test_destroy_with_an_executor_callback_in_flight);
    RUN_TEST(test_destroy_inside_an_executor_callback_is_deferred);
    RUN_TEST(test_an_executor_that_never_runs_still_releases_on_destroy);
    RUN_TEST(test_an_executor_runner_stops_like_the_others);
    RUN_TEST(test_an_executor_runner_without_callbacks_drops);
    return check_summary();
}
