/*
 * test_dispatchers.c - creating dispatchers (direct, manual, executor),
 * manual options, and which callback kinds each dispatcher accepts.
 */
#include "check.h"
#include "fixtures.h"

static void async_complete_at_once(const dfm_token *token,
                                   dfm_completion *completion,
                                   void *user_data)
{
    (void)token;
    (void)user_data;
    dfm_complete(completion, 0);
}

static void shaped_target(void)
{
}

/* An executor that keeps nothing: work items posted to it are dropped,
 * which the library allows (their arg is a number, not memory). */
static void post_nowhere(void *context, void (*work)(void *), void *arg)
{
    (void)context;
    (void)work;
    (void)arg;
}

static dfm_executor an_executor(void)
{
    dfm_executor executor;

    executor.post = post_nowhere;
    executor.context = NULL;
    return executor;
}

static dfm_callbacks *sync_set(void)
{
    dfm_callbacks *set = dfm_callbacks_create();

    CHECK_STATUS(dfm_callbacks_set_default(set, recorder_callback, NULL),
                 DFM_OK);
    return set;
}

static dfm_callbacks *async_set(void)
{
    dfm_callbacks *set = dfm_callbacks_create();

    CHECK_STATUS(dfm_callbacks_set_default_async(set, async_complete_at_once,
                                                 NULL),
                 DFM_OK);
    return set;
}

static dfm_callbacks *mixed_set(void)
{
    dfm_callbacks *set = dfm_callbacks_create();

    CHECK_STATUS(dfm_callbacks_set_default(set, recorder_callback, NULL),
                 DFM_OK);
    CHECK_STATUS(dfm_callbacks_add_place_async(set, "a",
                                               async_complete_at_once, NULL),
                 DFM_OK);
    return set;
}

static dfm_callbacks *shaped_set(void)
{
    dfm_callbacks *set = dfm_callbacks_create();

    CHECK_STATUS(dfm_callbacks_add_shaped(set, NULL, shaped_target, "void()",
                                          NULL),
                 DFM_OK);
    return set;
}

/* Tries create_runner and destroys what it made; returns the status. */
static int try_runner(dfm_dispatcher *dispatcher, const dfm_callbacks *set)
{
    dfm_runner *runner = NULL;
    int status = dfm_dispatcher_create_runner(dispatcher, set, &runner);

    if (status == DFM_OK)
        CHECK(runner != NULL);
    dfm_runner_destroy(status == DFM_OK ? runner : NULL);
    return status;
}

static void test_each_dispatcher_can_be_created_and_destroyed(void)
{
    dfm_dispatcher *direct = dfm_direct_dispatcher_create();
    dfm_dispatcher *manual_default = dfm_manual_dispatcher_create(NULL);
    dfm_dispatcher *executor = dfm_executor_dispatcher_create(an_executor());
    dfm_manual_options options;
    dfm_dispatcher *manual_options;

    dfm_manual_options_init(&options);
    manual_options = dfm_manual_dispatcher_create(&options);

    CHECK(direct != NULL);
    CHECK(manual_default != NULL);
    CHECK(manual_options != NULL);
    CHECK(executor != NULL);

    dfm_dispatcher_destroy(direct);
    dfm_dispatcher_destroy(manual_default);
    dfm_dispatcher_destroy(manual_options);
    dfm_dispatcher_destroy(executor);
    dfm_dispatcher_destroy(NULL);
    dfm_runner_destroy(NULL);
}

static void *executor_without_post_on_a_fresh_thread(void *unused)
{
    dfm_executor executor = { NULL, NULL };

    (void)unused;
    CHECK(dfm_last_error()[0] == '\0');
    CHECK(dfm_executor_dispatcher_create(executor) == NULL);
    CHECK(dfm_last_error()[0] != '\0');
    return NULL;
}

static void test_an_executor_without_post_is_refused(void)
{
    run_on_new_thread(executor_without_post_on_a_fresh_thread, NULL);
}

static void *bad_options_on_a_fresh_thread(void *argument)
{
    const dfm_manual_options *options =
        (const dfm_manual_options *)argument;

    CHECK(dfm_last_error()[0] == '\0');
    CHECK(dfm_manual_dispatcher_create(options) == NULL);
    CHECK(dfm_last_error()[0] != '\0');
    return NULL;
}

static void test_manual_options_with_an_unknown_struct_size_are_refused(void)
{
    static const size_t wrong_sizes[] = { 0, 1, 8,
                                          sizeof(dfm_manual_options) - 1,
                                          sizeof(dfm_manual_options) + 8,
                                          4096 };
    size_t i;

    for (i = 0; i < sizeof wrong_sizes / sizeof wrong_sizes[0]; i++) {
        dfm_manual_options options;

        dfm_manual_options_init(&options);
        options.struct_size = wrong_sizes[i];
        run_on_new_thread(bad_options_on_a_fresh_thread, &options);
    }
}

static void test_manual_options_with_an_unknown_overflow_are_refused(void)
{
    static const int wrong_overflows[] = { 3, 99, -1 };
    size_t i;

    for (i = 0; i < sizeof wrong_overflows / sizeof wrong_overflows[0];
         i++) {
        dfm_manual_options options;

        dfm_manual_options_init(&options);
        options.capacity = 8;
        options.overflow = (dfm_overflow)wrong_overflows[i];
        run_on_new_thread(bad_options_on_a_fresh_thread, &options);
    }
}

static void test_manual_options_init_fills_the_defaults(void)
{
    dfm_manual_options options;

    memset(&options, 0xAB, sizeof options);
    dfm_manual_options_init(&options);

    CHECK_EQ(options.struct_size, sizeof(dfm_manual_options));
    CHECK_EQ(options.capacity, 0);
    CHECK_EQ(options.overflow, DFM_OVERFLOW_FAIL);
    CHECK_EQ(options.block_timeout_ns, 0);
    CHECK(options.notify == NULL);
    CHECK(options.notify_context == NULL);
    CHECK(options.use_wake_fd == false);

    /* No function crashes on bad input. */
    dfm_manual_options_init(NULL);
}

static void test_every_manual_overflow_is_accepted(void)
{
    dfm_manual_options options;
    dfm_dispatcher *dispatcher;
    int overflow;

    for (overflow = DFM_OVERFLOW_FAIL; overflow <= DFM_OVERFLOW_DROP_OLDEST;
         overflow++) {
        dfm_manual_options_init(&options);
        options.capacity = 4;
        options.overflow = (dfm_overflow)overflow;
        options.block_timeout_ns = 1000000;
        options.use_wake_fd = true;
        dispatcher = dfm_manual_dispatcher_create(&options);
        CHECK(dispatcher != NULL);
        dfm_dispatcher_destroy(dispatcher);
    }
}

static void test_direct_accepts_sync_and_refuses_async(void)
{
    dfm_dispatcher *direct = dfm_direct_dispatcher_create();
    dfm_callbacks *sync = sync_set();
    dfm_callbacks *async = async_set();
    dfm_callbacks *shaped = shaped_set();
    dfm_callbacks *empty = dfm_callbacks_create();

    CHECK_STATUS(try_runner(direct, sync), DFM_OK);
    CHECK_STATUS(try_runner(direct, shaped), DFM_OK);
    CHECK_STATUS(try_runner(direct, empty), DFM_OK);
    CHECK_STATUS(try_runner(direct, NULL), DFM_OK);
    CHECK_STATUS(try_runner(direct, async), DFM_ERR_WRONG_KIND);
    CHECK(dfm_last_error()[0] != '\0');

    dfm_callbacks_destroy(sync);
    dfm_callbacks_destroy(async);
    dfm_callbacks_destroy(shaped);
    dfm_callbacks_destroy(empty);
    dfm_dispatcher_destroy(direct);
}

static void test_executor_accepts_async_and_refuses_sync(void)
{
    dfm_dispatcher *executor = dfm_executor_dispatcher_create(an_executor());
    dfm_callbacks *sync = sync_set();
    dfm_callbacks *async = async_set();
    dfm_callbacks *shaped = shaped_set();
    dfm_callbacks *empty = dfm_callbacks_create();

    CHECK_STATUS(try_runner(executor, async), DFM_OK);
    CHECK_STATUS(try_runner(executor, empty), DFM_OK);
    CHECK_STATUS(try_runner(executor, NULL), DFM_OK);
    CHECK_STATUS(try_runner(executor, sync), DFM_ERR_WRONG_KIND);
    CHECK_STATUS(try_runner(executor, shaped), DFM_ERR_WRONG_KIND);

    dfm_callbacks_destroy(sync);
    dfm_callbacks_destroy(async);
    dfm_callbacks_destroy(shaped);
    dfm_callbacks_destroy(empty);
    dfm_dispatcher_destroy(executor);
}

static void test_manual_accepts_both_kinds(void)
{
    dfm_dispatcher *manual = dfm_manual_dispatcher_create(NULL);
    dfm_callbacks *sync = sync_set();
    dfm_callbacks *async = async_set();
    dfm_callbacks *shaped = shaped_set();
    dfm_callbacks *empty = dfm_callbacks_create();

    CHECK_STATUS(try_runner(manual, sync), DFM_OK);
    CHECK_STATUS(try_runner(manual, async), DFM_OK);
    CHECK_STATUS(try_runner(manual, shaped), DFM_OK);
    CHECK_STATUS(try_runner(manual, empty), DFM_OK);
    CHECK_STATUS(try_runner(manual, NULL), DFM_OK);

    dfm_callbacks_destroy(sync);
    dfm_callbacks_destroy(async);
    dfm_callbacks_destroy(shaped);
    dfm_callbacks_destroy(empty);
    dfm_dispatcher_destroy(manual);
}

static void test_a_mixed_set_is_refused_by_every_dispatcher(void)
{
    dfm_dispatcher *dispatchers[3];
    dfm_callbacks *mixed = mixed_set();
    size_t i;

    dispatchers[0] = dfm_direct_dispatcher_create();
    dispatchers[1] = dfm_manual_dispatcher_create(NULL);
    dispatchers[2] = dfm_executor_dispatcher_create(an_executor());
    for (i = 0; i < 3; i++) {
        if (!CHECK_STATUS(try_runner(dispatchers[i], mixed),
                          DFM_ERR_MIXED_CALLBACKS))
            fprintf(stderr, "    dispatcher #%zu\n", i);
        dfm_dispatcher_destroy(dispatchers[i]);
    }
    dfm_callbacks_destroy(mixed);
}

static void test_create_runner_needs_a_dispatcher_and_an_out_pointer(void)
{
    dfm_dispatcher *dispatchers[3];
    dfm_callbacks *sync = sync_set();
    dfm_runner *runner = NULL;
    size_t i;

    dispatchers[0] = dfm_direct_dispatcher_create();
    dispatchers[1] = dfm_manual_dispatcher_create(NULL);
    dispatchers[2] = dfm_executor_dispatcher_create(an_executor());
    for (i = 0; i < 3; i++) {
        CHECK_STATUS(dfm_dispatcher_create_runner(dispatchers[i], NULL,
                                                  NULL),
                     DFM_ERR_INVALID_ARGUMENT);
        dfm_dispatcher_destroy(dispatchers[i]);
    }
    CHECK_STATUS(dfm_dispatcher_create_runner(NULL, sync, &runner),
                 DFM_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(dfm_dispatcher_create_runner(NULL, NULL, &runner),
                 DFM_ERR_INVALID_ARGUMENT);
    dfm_callbacks_destroy(sync);
}

static void test_a_runner_without_callbacks_drops_every_token(void)
{
    tracked_object objects[2];
    dfm_token tokens[2];
    dfm_runner *runner = manual_runner(NULL);
    dfm_stats stats;

    tracked_reset(objects, 2);
    tokens[0] = token_object("p", &objects[0]);
    tokens[1] = token_object("q", &objects[1]);

    CHECK_STATUS(dfm_runner_dispatch(runner, tokens, 2), DFM_OK);
    CHECK_STATUS(dfm_process_pending(runner), DFM_OK);
    stats = stats_of(runner);
    CHECK_EQ(stats.dropped, 2);
    CHECK_EQ(stats.delivered, 0);
    CHECK_EQ(tracked_count_released(objects, 2, 1), 2);

    dfm_runner_destroy(runner);
    CHECK_EQ(tracked_count_released(objects, 2, 1), 2);
}

static void test_a_manual_runner_outlives_its_dispatcher(void)
{
    dfm_dispatcher *dispatcher = dfm_manual_dispatcher_create(NULL);
    recorder record;
    dfm_callbacks *set;
    dfm_runner *runner = NULL;
    dfm_token token = token_int("p", 11);

    recorder_reset(&record);
    set = callbacks_default(recorder_callback, &record, NULL);
    CHECK_STATUS(dfm_dispatcher_create_runner(dispatcher, set, &runner),
                 DFM_OK);
    dfm_dispatcher_destroy(dispatcher);
    dfm_callbacks_destroy(set);

    CHECK_STATUS(dfm_runner_dispatch(runner, &token, 1), DFM_OK);
    CHECK(dfm_has_pending(runner));
    CHECK_STATUS(dfm_process_pending(runner), DFM_OK);
    CHECK_EQ(record.count, 1);
    CHECK_EQ(record.keys[0], 11);
    CHECK_EQ(stats_of(runner).delivered, 1);
    dfm_runner_destroy(runner);
}

static void test_a_direct_runner_outlives_its_dispatcher(void)
{
    dfm_dispatcher *dispatcher = dfm_direct_dispatcher_create();
    recorder record;
    dfm_callbacks *set;
    dfm_runner *first = NULL;
    dfm_runner *second = NULL;
    dfm_token token = token_int("p", 12);

    recorder_reset(&record);
    set = callbacks_default(recorder_callback, &record, NULL);
    CHECK_STATUS(dfm_dispatcher_create_runner(dispatcher, set, &first),
                 DFM_OK);
    CHECK_STATUS(dfm_dispatcher_create_runner(dispatcher, set, &second),
                 DFM_OK);
    CHECK(first != second);
    dfm_dispatcher_destroy(dispatcher);
    dfm_callbacks_destroy(set);

    CHECK_STATUS(dfm_runner_dispatch(first, &token, 1), DFM_OK);
    CHECK_STATUS(dfm_runner_dispatch(second, &token, 1), DFM_OK);
    CHECK_EQ(record.count, 2);
    CHECK_EQ(stats_of(first).delivered, 1);
    CHECK_EQ(stats_of(second).delivered, 1);
    dfm_runner_destroy(first);
    dfm_runner_destroy(second);
}

/* A queue of posted work items that the test runs by hand. */
typedef struct held_work {
    size_t count;
    void (*work[64])(void *);
    void *arg[64];
} held_work;

static void post_and_hold(void *context, void (*work)(void *), void *arg)
{
    held_work *held = (held_work *)context;

    if (held->count < 64) {
        held->work[held->count] = work;
        held->arg[held->count] = arg;
    }
    held->count++;
}

static void run_held(held_work *held)
{
    size_t i;

    for (i = 0; i < held->count && i < 64; i++)
        held->work[i](held->arg[i]);
}

static int async_calls;

static void async_count(const dfm_token *token, dfm_completion *completion,
                        void *user_data)
{
    (void)token;
    (void)user_data;
    async_calls++;
    dfm_complete(completion, 0);
}

static void test_an_executor_runner_outlives_its_dispatcher(void)
{
    held_work held;
    dfm_executor executor;
    dfm_dispatcher *dispatcher;
    dfm_callbacks *set = dfm_callbacks_create();
    dfm_runner *runner = NULL;
    dfm_token token = token_int("p", 13);

    memset(&held, 0, sizeof held);
    executor.post = post_and_hold;
    executor.context = &held;
    dispatcher = dfm_executor_dispatcher_create(executor);
    CHECK_STATUS(dfm_callbacks_set_default_async(set, async_count, NULL),
                 DFM_OK);
    CHECK_STATUS(dfm_dispatcher_create_runner(dispatcher, set, &runner),
                 DFM_OK);
    dfm_dispatcher_destroy(dispatcher);
    dfm_callbacks_destroy(set);

    async_calls = 0;
    CHECK_STATUS(dfm_runner_dispatch(runner, &token, 1), DFM_OK);
    CHECK(held.count >= 1);
    run_held(&held);
    CHECK_EQ(async_calls, 1);
    dfm_runner_destroy(runner);
}

int main(void)
{
    RUN_TEST(test_each_dispatcher_can_be_created_and_destroyed);
    RUN_TEST(test_an_executor_without_post_is_refused);
    RUN_TEST(test_manual_options_with_an_unknown_struct_size_are_refused);
    RUN_TEST(test_manual_options_with_an_unknown_overflow_are_refused);
    RUN_TEST(test_manual_options_init_fills_the_defaults);
    RUN_TEST(test_every_manual_overflow_is_accepted);
    RUN_TEST(test_direct_accepts_sync_and_refuses_async);
    RUN_TEST(test_executor_accepts_async_and_refuses_sync);
    RUN_TEST(test_manual_accepts_both_kinds);
    RUN_TEST(test_a_mixed_set_is_refused_by_every_dispatcher);
    RUN_TEST(test_create_runner_needs_a_dispatcher_and_an_out_pointer);
    RUN_TEST(test_a_runner_without_callbacks_drops_every_token);
    RUN_TEST(test_a_manual_runner_outlives_its_dispatcher);
    RUN_TEST(test_a_direct_runner_outlives_its_dispatcher);
    RUN_TEST(test_an_executor_runner_outlives_its_dispatcher);
    return check_summary();
}
