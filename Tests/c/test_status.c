/*
 * test_status.c - status names and sentences, versions, and the
 * per-thread last error.
 */
#include "check.h"
#include "fixtures.h"

#include <limits.h>

static const char *const expected_names[] = {
    "DFM_OK",
    "DFM_ERR_INVALID_ARGUMENT",
    "DFM_ERR_MIXED_CALLBACKS",
    "DFM_ERR_WRONG_KIND",
    "DFM_ERR_CLOSED",
    "DFM_ERR_QUEUE_FULL",
    "DFM_ERR_NO_MEMORY",
    "DFM_ERR_BAD_SHAPE",
    "DFM_ERR_TYPE_MISMATCH",
    "DFM_ERR_CALLBACK_FAILED",
    "DFM_ERR_WRONG_THREAD",
    "DFM_ERR_BUSY",
    "DFM_ERR_TIMED_OUT",
};

#define KNOWN_STATUSES \
    ((int)(sizeof expected_names / sizeof expected_names[0]))

static const int unknown_statuses[] = { -1, 13, 1000, INT_MIN, INT_MAX };

#define UNKNOWN_STATUSES \
    ((int)(sizeof unknown_statuses / sizeof unknown_statuses[0]))

static bool text_is_nonempty(const char *text)
{
    return text != NULL && text[0] != '\0';
}

/* A small UTF-8 validator: shortest forms, no surrogates, <= U+10FFFF. */
static bool is_valid_utf8(const char *text)
{
    const unsigned char *byte = (const unsigned char *)text;

    while (*byte != 0) {
        unsigned lead = *byte;
        unsigned need;
        unsigned long code;
        unsigned i;

        if (lead < 0x80) {
            byte++;
            continue;
        } else if (lead >= 0xC2 && lead <= 0xDF) {
            need = 1;
            code = lead & 0x1F;
        } else if (lead >= 0xE0 && lead <= 0xEF) {
            need = 2;
            code = lead & 0x0F;
        } else if (lead >= 0xF0 && lead <= 0xF4) {
            need = 3;
            code = lead & 0x07;
        } else {
            return false;
        }
        for (i = 1; i <= need; i++) {
            if ((byte[i] & 0xC0) != 0x80)
                return false;
            code = (code << 6) | (byte[i] & 0x3F);
        }
        if ((need == 2 && code < 0x800) || (need == 3 && code < 0x10000))
            return false;
        if ((code >= 0xD800 && code <= 0xDFFF) || code > 0x10FFFF)
            return false;
        byte += need + 1;
    }
    return true;
}

static void test_every_status_has_its_exact_name(void)
{
    int status;

    for (status = 0; status < KNOWN_STATUSES; status++) {
        const char *name = dfm_status_name(status);

        if (!CHECK(name != NULL))
            continue;
        if (!CHECK(strcmp(name, expected_names[status]) == 0))
            fprintf(stderr, "    status %d is named \"%s\", expected \"%s\"\n",
                    status, name, expected_names[status]);
    }
}

static void test_enum_values_are_pinned(void)
{
    CHECK_EQ(DFM_OK, 0);
    CHECK_EQ(DFM_ERR_INVALID_ARGUMENT, 1);
    CHECK_EQ(DFM_ERR_MIXED_CALLBACKS, 2);
    CHECK_EQ(DFM_ERR_WRONG_KIND, 3);
    CHECK_EQ(DFM_ERR_CLOSED, 4);
    CHECK_EQ(DFM_ERR_QUEUE_FULL, 5);
    CHECK_EQ(DFM_ERR_NO_MEMORY, 6);
    CHECK_EQ(DFM_ERR_BAD_SHAPE, 7);
    CHECK_EQ(DFM_ERR_TYPE_MISMATCH, 8);
    CHECK_EQ(DFM_ERR_CALLBACK_FAILED, 9);
    CHECK_EQ(DFM_ERR_WRONG_THREAD, 10);
    CHECK_EQ(DFM_ERR_BUSY, 11);
    CHECK_EQ(DFM_ERR_TIMED_OUT, 12);
}

static void test_every_status_has_a_distinct_sentence(void)
{
    int status;
    int other;

    for (status = 0; status < KNOWN_STATUSES; status++) {
        const char *sentence = dfm_strerror(status);

        if (!CHECK(text_is_nonempty(sentence)))
            continue;
        CHECK(strcmp(sentence, dfm_strerror(13)) != 0);
        for (other = 0; other < status; other++) {
            const char *earlier = dfm_strerror(other);

            if (earlier != NULL && !CHECK(strcmp(sentence, earlier) != 0))
                fprintf(stderr, "    statuses %d and %d share \"%s\"\n",
                        other, status, sentence);
        }
    }
}

static void test_names_and_sentences_are_static(void)
{
    int status;

    /* Static text: the same storage every time, whatever happens between
     * the calls. */
    for (status = 0; status < KNOWN_STATUSES; status++) {
        const char *name = dfm_status_name(status);
        const char *sentence = dfm_strerror(status);

        (void)dfm_status_name((status + 1) % KNOWN_STATUSES);
        (void)dfm_strerror((status + 1) % KNOWN_STATUSES);
        CHECK(name == dfm_status_name(status));
        CHECK(sentence == dfm_strerror(status));
    }
}

static void test_unknown_statuses_get_one_fixed_text(void)
{
    const char *name = dfm_status_name(unknown_statuses[0]);
    const char *sentence = dfm_strerror(unknown_statuses[0]);
    int i;
    int status;

    CHECK(text_is_nonempty(name));
    CHECK(text_is_nonempty(sentence));
    if (name == NULL || sentence == NULL)
        return;

    for (i = 1; i < UNKNOWN_STATUSES; i++) {
        const char *other_name = dfm_status_name(unknown_statuses[i]);
        const char *other_sentence = dfm_strerror(unknown_statuses[i]);

        CHECK(other_name != NULL && strcmp(other_name, name) == 0);
        CHECK(other_sentence != NULL
              && strcmp(other_sentence, sentence) == 0);
    }

    /* The unknown text is none of the known ones. */
    for (status = 0; status < KNOWN_STATUSES; status++) {
        CHECK(strcmp(name, expected_names[status]) != 0);
        CHECK(strcmp(sentence, dfm_strerror(status)) != 0);
    }
}

static void test_version_matches_the_macros(void)
{
    char expected[64];

    snprintf(expected, sizeof expected, "%d.%d.%d", DFM_VERSION_MAJOR,
             DFM_VERSION_MINOR, DFM_VERSION_PATCH);

    CHECK_EQ(DFM_VERSION_NUMBER, DFM_VERSION_MAJOR * 10000
                                     + DFM_VERSION_MINOR * 100
                                     + DFM_VERSION_PATCH);
    CHECK_EQ(dfm_version(), DFM_VERSION_NUMBER);
    CHECK(dfm_version_string() != NULL);
    if (dfm_version_string() == NULL)
        return;
    CHECK(strcmp(dfm_version_string(), expected) == 0);
    CHECK(strcmp(dfm_version_string(), DFM_VERSION_STRING) == 0);
}

/* Run on a new thread, so that the thread has had no failure yet. */
static void *last_error_life_on_a_fresh_thread(void *unused)
{
    dfm_kind kind;
    const char *error;

    (void)unused;
    error = dfm_last_error();
    CHECK(error != NULL && strcmp(error, "") == 0);

    CHECK_STATUS(dfm_callbacks_kind(NULL, &kind), DFM_ERR_INVALID_ARGUMENT);
    CHECK(text_is_nonempty(dfm_last_error()));

    /* A successful call leaves the message untouched. */
    CHECK_EQ(dfm_version(), DFM_VERSION_NUMBER);
    CHECK(text_is_nonempty(dfm_last_error()));
    return NULL;
}

static void test_last_error_is_empty_until_a_call_fails(void)
{
    run_on_new_thread(last_error_life_on_a_fresh_thread, NULL);
}

static void *expect_empty_last_error(void *unused)
{
    (void)unused;
    CHECK(dfm_last_error() != NULL && dfm_last_error()[0] == '\0');
    return NULL;
}

static void test_last_error_belongs_to_the_calling_thread(void)
{
    CHECK_STATUS(dfm_runner_dispatch(NULL, NULL, 1),
                 DFM_ERR_INVALID_ARGUMENT);
    CHECK(text_is_nonempty(dfm_last_error()));

    run_on_new_thread(expect_empty_last_error, NULL);
}

static void test_each_failing_call_leaves_a_message(void)
{
    dfm_callbacks *set = dfm_callbacks_create();
    dfm_runner *runner = NULL;
    dfm_executor no_post = { NULL, NULL };
    dfm_kind kind;

    CHECK_STATUS(dfm_callbacks_add_place(set, NULL, recorder_callback, NULL),
                 DFM_ERR_INVALID_ARGUMENT);
    CHECK(text_is_nonempty(dfm_last_error()));

    CHECK_STATUS(dfm_callbacks_kind(set, NULL), DFM_ERR_INVALID_ARGUMENT);
    CHECK(text_is_nonempty(dfm_last_error()));

    CHECK_STATUS(dfm_dispatcher_create_runner(NULL, set, &runner),
                 DFM_ERR_INVALID_ARGUMENT);
    CHECK(text_is_nonempty(dfm_last_error()));

    CHECK(dfm_executor_dispatcher_create(no_post) == NULL);
    CHECK(text_is_nonempty(dfm_last_error()));

    CHECK_STATUS(dfm_callbacks_kind(set, &kind), DFM_OK);
    dfm_callbacks_destroy(set);
}

static void test_long_messages_are_cut_to_valid_utf8(void)
{
    /* A place of 2,000 two-byte characters and one bad byte: if the
     * message quotes the place, it must be cut at a character boundary. */
    static char place[4096];
    dfm_callbacks *set = dfm_callbacks_create();
    size_t i;
    const char *error;

    for (i = 0; i < 4000; i += 2) {
        place[i] = (char)0xC3;
        place[i + 1] = (char)0xA9;
    }
    place[4000] = (char)0xFF;
    place[4001] = '\0';

    CHECK_STATUS(dfm_callbacks_add_place(set, place, recorder_callback, NULL),
                 DFM_ERR_INVALID_ARGUMENT);
    error = dfm_last_error();
    CHECK(text_is_nonempty(error));
    if (error != NULL) {
        CHECK(strlen(error) <= 511);
        CHECK(is_valid_utf8(error));
    }
    dfm_callbacks_destroy(set);
}

int main(void)
{
    RUN_TEST(test_every_status_has_its_exact_name);
    RUN_TEST(test_enum_values_are_pinned);
    RUN_TEST(test_every_status_has_a_distinct_sentence);
    RUN_TEST(test_names_and_sentences_are_static);
    RUN_TEST(test_unknown_statuses_get_one_fixed_text);
    RUN_TEST(test_version_matches_the_macros);
    RUN_TEST(test_last_error_is_empty_until_a_call_fails);
    RUN_TEST(test_last_error_belongs_to_the_calling_thread);
    RUN_TEST(test_each_failing_call_leaves_a_message);
    RUN_TEST(test_long_messages_are_cut_to_valid_utf8);
    return check_summary();
}
