/*
 * test_callbacks.c - building a callback set: registration, validation,
 * the set's kind, replacing a place, and the copy a runner takes.
 */
#include "check.h"
#include "fixtures.h"

static void async_ignore(const dfm_token *token, dfm_completion *completion,
                         void *user_data)
{
    (void)token;
    (void)user_data;
    dfm_complete(completion, 0);
}

static void shaped_target(void)
{
}

static void ignore_error(const dfm_token *token, int status,
                         const char *message, void *context)
{
    (void)token;
    (void)status;
    (void)message;
    (void)context;
}

/* Places that are not valid UTF-8: a stray continuation byte, a cut
 * sequence, an overlong NUL, an overlong '/', a surrogate, and a code
 * point past U+10FFFF. */
static const char *const bad_places[] = {
    "\xff",
    "place\x80",
    "caf\xc3",
    "\xc0\x80",
    "\xc0\xaf",
    "\xed\xa0\x80",
    "\xf4\x90\x80\x80",
};

#define BAD_PLACES ((int)(sizeof bad_places / sizeof bad_places[0]))

static dfm_kind kind_of(const dfm_callbacks *set)
{
    dfm_kind kind = (dfm_kind)99;

    CHECK_STATUS(dfm_callbacks_kind(set, &kind), DFM_OK);
    return kind;
}

static void test_create_and_destroy(void)
{
    dfm_callbacks *set = dfm_callbacks_create();

    CHECK(set != NULL);
    dfm_callbacks_destroy(set);
    dfm_callbacks_destroy(NULL);
}

static void test_registration_with_a_null_set_is_invalid(void)
{
    CHECK_STATUS(dfm_callbacks_set_default(NULL, recorder_callback, NULL),
                 DFM_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(dfm_callbacks_set_default_async(NULL, async_ignore, NULL),
                 DFM_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(dfm_callbacks_add_place(NULL, "p", recorder_callback, NULL),
                 DFM_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(dfm_callbacks_add_place_async(NULL, "p", async_ignore,
                                               NULL),
                 DFM_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(dfm_callbacks_add_shaped(NULL, "p", shaped_target,
                                          "void()", NULL),
                 DFM_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(dfm_callbacks_set_error_handler(NULL, ignore_error, NULL),
                 DFM_ERR_INVALID_ARGUMENT);
}

static void test_registration_with_a_null_callback_is_invalid(void)
{
    dfm_callbacks *set = dfm_callbacks_create();

    CHECK_STATUS(dfm_callbacks_set_default(set, NULL, NULL),
                 DFM_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(dfm_callbacks_set_default_async(set, NULL, NULL),
                 DFM_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(dfm_callbacks_add_place(set, "p", NULL, NULL),
                 DFM_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(dfm_callbacks_add_place_async(set, "p", NULL, NULL),
                 DFM_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(dfm_callbacks_add_shaped(set, "p", NULL, "void()", NULL),
                 DFM_ERR_INVALID_ARGUMENT);

    /* Nothing was registered by the refused calls. */
    CHECK_EQ(kind_of(set), DFM_CALLBACKS_NONE);
    dfm_callbacks_destroy(set);
}

static void test_registration_with_a_null_place_is_invalid(void)
{
    dfm_callbacks *set = dfm_callbacks_create();

    CHECK_STATUS(dfm_callbacks_add_place(set, NULL, recorder_callback, NULL),
                 DFM_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(dfm_callbacks_add_place_async(set, NULL, async_ignore,
                                               NULL),
                 DFM_ERR_INVALID_ARGUMENT);
    CHECK_EQ(kind_of(set), DFM_CALLBACKS_NONE);
    dfm_callbacks_destroy(set);
}

static void test_registration_with_a_bad_utf8_place_is_invalid(void)
{
    dfm_callbacks *set = dfm_callbacks_create();
    int i;

    for (i = 0; i < BAD_PLACES; i++) {
        if (!CHECK_STATUS(dfm_callbacks_add_place(set, bad_places[i],
                                                  recorder_callback, NULL),
                          DFM_ERR_INVALID_ARGUMENT))
            fprintf(stderr, "    bad place #%d accepted\n", i);
        CHECK_STATUS(dfm_callbacks_add_place_async(set, bad_places[i],
                                                   async_ignore, NULL),
                     DFM_ERR_INVALID_ARGUMENT);
        CHECK_STATUS(dfm_callbacks_add_shaped(set, bad_places[i],
                                              shaped_target, "void()",
                                              NULL),
                     DFM_ERR_INVALID_ARGUMENT);
    }
    CHECK_EQ(kind_of(set), DFM_CALLBACKS_NONE);
    dfm_callbacks_destroy(set);
}

static void test_utf8_places_are_accepted(void)
{
    dfm_callbacks *set = dfm_callbacks_create();

    CHECK_STATUS(dfm_callbacks_add_place(set, "", recorder_callback, NULL),
                 DFM_OK);
    CHECK_STATUS(dfm_callbacks_add_place(set, "caf\xc3\xa9 \xe2\x82\xac "
                                              "\xf0\x9f\x8d\xa9",
                                         recorder_callback, NULL),
                 DFM_OK);
    CHECK_STATUS(dfm_callbacks_add_place(set, "_dfm_status_",
                                         recorder_callback, NULL),
                 DFM_OK);
    CHECK_STATUS(dfm_callbacks_add_place(set, "_dfm_discovery_",
                                         recorder_callback, NULL),
                 DFM_OK);
    dfm_callbacks_destroy(set);
}

static void test_kind_of_an_empty_set_is_none(void)
{
    dfm_callbacks *set = dfm_callbacks_create();

    CHECK_EQ(kind_of(set), DFM_CALLBACKS_NONE);

    /* An error handler is not a callback. */
    CHECK_STATUS(dfm_callbacks_set_error_handler(set, ignore_error, NULL),
                 DFM_OK);
    CHECK_EQ(kind_of(set), DFM_CALLBACKS_NONE);
    dfm_callbacks_destroy(set);
}

static void test_kind_of_sync_sets_is_sync(void)
{
    dfm_callbacks *by_default = dfm_callbacks_create();
    dfm_callbacks *by_place = dfm_callbacks_create();
    dfm_callbacks *by_shape = dfm_callbacks_create();

    CHECK_STATUS(dfm_callbacks_set_default(by_default, recorder_callback,
                                           NULL),
                 DFM_OK);
    CHECK_EQ(kind_of(by_default), DFM_CALLBACKS_SYNC);

    CHECK_STATUS(dfm_callbacks_add_place(by_place, "a", recorder_callback,
                                         NULL),
                 DFM_OK);
    CHECK_STATUS(dfm_callbacks_add_place(by_place, "b", recorder_callback,
                                         NULL),
                 DFM_OK);
    CHECK_EQ(kind_of(by_place), DFM_CALLBACKS_SYNC);

    /* Shaped callbacks count as sync. */
    CHECK_STATUS(dfm_callbacks_add_shaped(by_shape, "a", shaped_target,
                                          "void()", NULL),
                 DFM_OK);
    CHECK_EQ(kind_of(by_shape), DFM_CALLBACKS_SYNC);
    CHECK_STATUS(dfm_callbacks_add_shaped(by_shape, NULL, shaped_target,
                                          "void(token, user)", NULL),
                 DFM_OK);
    CHECK_EQ(kind_of(by_shape), DFM_CALLBACKS_SYNC);

    dfm_callbacks_destroy(by_default);
    dfm_callbacks_destroy(by_place);
    dfm_callbacks_destroy(by_shape);
}

static void test_kind_of_async_sets_is_async(void)
{
    dfm_callbacks *by_default = dfm_callbacks_create();
    dfm_callbacks *by_place = dfm_callbacks_create();

    CHECK_STATUS(dfm_callbacks_set_default_async(by_default, async_ignore,
                                                 NULL),
                 DFM_OK);
    CHECK_EQ(kind_of(by_default), DFM_CALLBACKS_ASYNC);

    CHECK_STATUS(dfm_callbacks_add_place_async(by_place, "a", async_ignore,
                                               NULL),
                 DFM_OK);
    CHECK_EQ(kind_of(by_place), DFM_CALLBACKS_ASYNC);

    dfm_callbacks_destroy(by_default);
    dfm_callbacks_destroy(by_place);
}

static void test_kind_of_a_mixed_set_is_mixed_callbacks(void)
{
    dfm_callbacks *sync_default = dfm_callbacks_create();
    dfm_callbacks *async_default = dfm_callbacks_create();
    dfm_callbacks *shaped = dfm_callbacks_create();
    dfm_kind kind;

    /* Registering both kinds is allowed; asking for the kind says no. */
    CHECK_STATUS(dfm_callbacks_set_default(sync_default, recorder_callback,
                                           NULL),
                 DFM_OK);
    CHECK_STATUS(dfm_callbacks_add_place_async(sync_default, "a",
                                               async_ignore, NULL),
                 DFM_OK);
    CHECK_STATUS(dfm_callbacks_kind(sync_default, &kind),
                 DFM_ERR_MIXED_CALLBACKS);
    CHECK(dfm_last_error()[0] != '\0');

    CHECK_STATUS(dfm_callbacks_set_default_async(async_default, async_ignore,
                                                 NULL),
                 DFM_OK);
    CHECK_STATUS(dfm_callbacks_add_place(async_default, "a",
                                         recorder_callback, NULL),
                 DFM_OK);
    CHECK_STATUS(dfm_callbacks_kind(async_default, &kind),
                 DFM_ERR_MIXED_CALLBACKS);

    CHECK_STATUS(dfm_callbacks_add_shaped(shaped, "a", shaped_target,
                                          "void()", NULL),
                 DFM_OK);
    CHECK_STATUS(dfm_callbacks_add_place_async(shaped, "b", async_ignore,
                                               NULL),
                 DFM_OK);
    CHECK_STATUS(dfm_callbacks_kind(shaped, &kind),
                 DFM_ERR_MIXED_CALLBACKS);

    dfm_callbacks_destroy(sync_default);
    dfm_callbacks_destroy(async_default);
    dfm_callbacks_destroy(shaped);
}

static void test_kind_needs_a_set_and_an_out_pointer(void)
{
    dfm_callbacks *set = dfm_callbacks_create();
    dfm_kind kind;

    CHECK_STATUS(dfm_callbacks_kind(set, NULL), DFM_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(dfm_callbacks_kind(NULL, &kind), DFM_ERR_INVALID_ARGUMENT);
    dfm_callbacks_destroy(set);
}

static void test_a_place_registered_twice_keeps_the_second(void)
{
    dfm_callbacks *set = dfm_callbacks_create();
    recorder first;
    recorder second;
    dfm_runner *runner;
    dfm_token token = token_int("p", 7);

    recorder_reset(&first);
    recorder_reset(&second);
    CHECK_STATUS(dfm_callbacks_add_place(set, "p", recorder_callback,
                                         &first),
                 DFM_OK);
    CHECK_STATUS(dfm_callbacks_add_place(set, "p", recorder_callback,
                                         &second),
                 DFM_OK);
    runner = direct_runner(set);

    CHECK_STATUS(dfm_runner_dispatch(runner, &token, 1), DFM_OK);
    CHECK_EQ(first.count, 0);
    CHECK_EQ(second.count, 1);
    CHECK_EQ(second.keys[0], 7);

    dfm_runner_destroy(runner);
    dfm_callbacks_destroy(set);
}

static void test_replacing_a_sync_place_with_async_changes_the_kind(void)
{
    dfm_callbacks *set = dfm_callbacks_create();

    CHECK_STATUS(dfm_callbacks_add_place(set, "p", recorder_callback, NULL),
                 DFM_OK);
    CHECK_STATUS(dfm_callbacks_add_place_async(set, "p", async_ignore, NULL),
                 DFM_OK);
    CHECK_EQ(kind_of(set), DFM_CALLBACKS_ASYNC);

    CHECK_STATUS(dfm_callbacks_set_default(set, recorder_callback, NULL),
                 DFM_OK);
    CHECK_STATUS(dfm_callbacks_add_place(set, "p", recorder_callback, NULL),
                 DFM_OK);
    CHECK_EQ(kind_of(set), DFM_CALLBACKS_SYNC);
    dfm_callbacks_destroy(set);
}

static void test_the_default_registered_twice_keeps_the_second(void)
{
    dfm_callbacks *set = dfm_callbacks_create();
    recorder first;
    recorder second;
    dfm_runner *runner;
    dfm_token token = token_int("anywhere", 3);

    recorder_reset(&first);
    recorder_reset(&second);
    CHECK_STATUS(dfm_callbacks_set_default(set, recorder_callback, &first),
                 DFM_OK);
    CHECK_STATUS(dfm_callbacks_set_default(set, recorder_callback, &second),
                 DFM_OK);
    runner = direct_runner(set);

    CHECK_STATUS(dfm_runner_dispatch(runner, &token, 1), DFM_OK);
    CHECK_EQ(first.count, 0);
    CHECK_EQ(second.count, 1);

    dfm_runner_destroy(runner);
    dfm_callbacks_destroy(set);
}

static void test_user_data_reaches_the_callback(void)
{
    dfm_callbacks *set = dfm_callbacks_create();
    recorder on_place;
    recorder on_default;
    dfm_runner *runner;
    dfm_token tokens[2];

    recorder_reset(&on_place);
    recorder_reset(&on_default);
    tokens[0] = token_int("p", 1);
    tokens[1] = token_int("q", 2);
    CHECK_STATUS(dfm_callbacks_add_place(set, "p", recorder_callback,
                                         &on_place),
                 DFM_OK);
    CHECK_STATUS(dfm_callbacks_set_default(set, recorder_callback,
                                           &on_default),
                 DFM_OK);
    runner = direct_runner(set);

    CHECK_STATUS(dfm_runner_dispatch(runner, tokens, 2), DFM_OK);
    CHECK_EQ(on_place.count, 1);
    CHECK_EQ(on_place.keys[0], 1);
    CHECK_EQ(on_default.count, 1);
    CHECK_EQ(on_default.keys[0], 2);

    dfm_runner_destroy(runner);
    dfm_callbacks_destroy(set);
}

static void test_the_error_handler_can_be_removed(void)
{
    dfm_callbacks *set = dfm_callbacks_create();
    error_record errors;
    recorder record;
    dfm_runner *runner;
    dfm_token token = token_int("p", 5);

    error_record_reset(&errors);
    recorder_reset(&record);
    record.fail_key = 5;
    record.fail_value = 1;
    CHECK_STATUS(dfm_callbacks_set_default(set, recorder_callback, &record),
                 DFM_OK);
    CHECK_STATUS(dfm_callbacks_set_error_handler(set, error_recorder,
                                                 &errors),
                 DFM_OK);
    CHECK_STATUS(dfm_callbacks_set_error_handler(set, NULL, NULL), DFM_OK);
    runner = direct_runner(set);

    CHECK_STATUS(dfm_runner_dispatch(runner, &token, 1),
                 DFM_ERR_CALLBACK_FAILED);
    CHECK_EQ(record.count, 1);
    CHECK_EQ(errors.count, 0);

    dfm_runner_destroy(runner);
    dfm_callbacks_destroy(set);
}

static void test_a_runner_keeps_its_copy_when_the_set_changes(void)
{
    dfm_callbacks *set = dfm_callbacks_create();
    recorder original;
    recorder later;
    error_record errors;
    dfm_runner *runner;
    dfm_token tokens[3];
    dfm_stats stats;

    recorder_reset(&original);
    recorder_reset(&later);
    error_record_reset(&errors);
    original.fail_key = 3;
    original.fail_value = 1;
    CHECK_STATUS(dfm_callbacks_add_place(set, "p", recorder_callback,
                                         &original),
                 DFM_OK);
    CHECK_STATUS(dfm_callbacks_set_error_handler(set, error_recorder,
                                                 &errors),
                 DFM_OK);
    runner = manual_runner(set);

    /* Every change after the runner was made must pass it by. */
    CHECK_STATUS(dfm_callbacks_add_place(set, "p", recorder_callback, &later),
                 DFM_OK);
    CHECK_STATUS(dfm_callbacks_add_place(set, "q", recorder_callback, &later),
                 DFM_OK);
    CHECK_STATUS(dfm_callbacks_set_default(set, recorder_callback, &later),
                 DFM_OK);
    CHECK_STATUS(dfm_callbacks_set_error_handler(set, NULL, NULL), DFM_OK);

    tokens[0] = token_int("p", 1);
    tokens[1] = token_int("q", 2);
    tokens[2] = token_int("p", 3);
    CHECK_STATUS(dfm_runner_dispatch(runner, tokens, 3), DFM_OK);
    CHECK_STATUS(dfm_process_pending(runner), DFM_ERR_CALLBACK_FAILED);

    CHECK_EQ(original.count, 2);
    CHECK_EQ(later.count, 0);
    CHECK_EQ(errors.count, 1);
    stats = stats_of(runner);
    CHECK_EQ(stats.delivered, 1);
    CHECK_EQ(stats.failed, 1);
    CHECK_EQ(stats.dropped, 1);

    dfm_runner_destroy(runner);
    dfm_callbacks_destroy(set);
}

static void test_a_runner_keeps_its_copy_when_the_set_is_destroyed(void)
{
    dfm_callbacks *set = dfm_callbacks_create();
    recorder record;
    dfm_runner *manual;
    dfm_runner *direct;
    dfm_token token = token_int("p", 9);

    recorder_reset(&record);
    CHECK_STATUS(dfm_callbacks_add_place(set, "p", recorder_callback,
                                         &record),
                 DFM_OK);
    manual = manual_runner(set);
    direct = direct_runner(set);
    dfm_callbacks_destroy(set);

    CHECK_STATUS(dfm_runner_dispatch(direct, &token, 1), DFM_OK);
    CHECK_EQ(record.count, 1);
    CHECK_STATUS(dfm_runner_dispatch(manual, &token, 1), DFM_OK);
    CHECK_STATUS(dfm_process_pending(manual), DFM_OK);
    CHECK_EQ(record.count, 2);
    CHECK_EQ(record.keys[1], 9);

    dfm_runner_destroy(manual);
    dfm_runner_destroy(direct);
}

int main(void)
{
    RUN_TEST(test_create_and_destroy);
    RUN_TEST(test_registration_with_a_null_set_is_invalid);
    RUN_TEST(test_registration_with_a_null_callback_is_invalid);
    RUN_TEST(test_registration_with_a_null_place_is_invalid);
    RUN_TEST(test_registration_with_a_bad_utf8_place_is_invalid);
    RUN_TEST(test_utf8_places_are_accepted);
    RUN_TEST(test_kind_of_an_empty_set_is_none);
    RUN_TEST(test_kind_of_sync_sets_is_sync);
    RUN_TEST(test_kind_of_async_sets_is_async);
    RUN_TEST(test_kind_of_a_mixed_set_is_mixed_callbacks);
    RUN_TEST(test_kind_needs_a_set_and_an_out_pointer);
    RUN_TEST(test_a_place_registered_twice_keeps_the_second);
    RUN_TEST(test_replacing_a_sync_place_with_async_changes_the_kind);
    RUN_TEST(test_the_default_registered_twice_keeps_the_second);
    RUN_TEST(test_user_data_reaches_the_callback);
    RUN_TEST(test_the_error_handler_can_be_removed);
    RUN_TEST(test_a_runner_keeps_its_copy_when_the_set_changes);
    RUN_TEST(test_a_runner_keeps_its_copy_when_the_set_is_destroyed);
    return check_summary();
}
