/*
 * test_tokens.c - what dfm_runner_dispatch accepts and refuses, that a
 * refused batch is refused whole (and leaves its OBJECT payloads with the
 * caller), and that a callback sees exactly what was dispatched, copied.
 */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS */
#include "check.h"
#include "fixtures.h"

#include <math.h>
#include <sys/mman.h>

/* ---- Refused tokens -------------------------------------------------- */

/* Dispatches [good OBJECT, bad, good OBJECT] to a manual and to a direct
 * runner, and the bad token alone: each must be refused with nothing
 * queued, nothing delivered and no payload released. */
static void expect_refused(dfm_token bad, const char *what)
{
    tracked_object objects[2];
    dfm_token batch[3];
    recorder record;
    dfm_callbacks *set;
    dfm_runner *manual;
    dfm_runner *direct;
    bool ok = true;

    tracked_reset(objects, 2);
    recorder_reset(&record);
    batch[0] = token_object("p", &objects[0]);
    batch[1] = bad;
    batch[2] = token_object("p", &objects[1]);
    set = callbacks_default(recorder_callback, &record, NULL);
    manual = manual_runner(set);
    direct = direct_runner(set);
    dfm_callbacks_destroy(set);

    ok &= CHECK_STATUS(dfm_runner_dispatch(manual, batch, 3),
                       DFM_ERR_INVALID_ARGUMENT);
    ok &= CHECK(dfm_last_error()[0] != '\0');
    ok &= CHECK_STATUS(dfm_runner_dispatch(manual, &bad, 1),
                       DFM_ERR_INVALID_ARGUMENT);
    ok &= CHECK(!dfm_has_pending(manual));
    ok &= CHECK_EQ(stats_of(manual).dispatched, 0);
    ok &= CHECK_STATUS(dfm_process_pending(manual), DFM_OK);

    ok &= CHECK_STATUS(dfm_runner_dispatch(direct, batch, 3),
                       DFM_ERR_INVALID_ARGUMENT);
    ok &= CHECK_STATUS(dfm_runner_dispatch(direct, &bad, 1),
                       DFM_ERR_INVALID_ARGUMENT);
    ok &= CHECK_EQ(stats_of(direct).dispatched, 0);

    ok &= CHECK_EQ(record.count, 0);
    dfm_runner_destroy(manual);
    dfm_runner_destroy(direct);

    /* Ownership of the payloads never left the caller. */
    ok &= CHECK_EQ(tracked_count_released(objects, 2, 0), 2);
    if (!ok)
        fprintf(stderr, "    (the bad token: %s)\n", what);
}

/* The same, for a token that must be accepted: delivered once. */
static void expect_accepted(dfm_token good, const char *what)
{
    recorder record;
    dfm_callbacks *set;
    dfm_runner *runner;
    bool ok = true;

    recorder_reset(&record);
    set = callbacks_default(recorder_callback, &record, NULL);
    runner = manual_runner(set);
    dfm_callbacks_destroy(set);

    ok &= CHECK_STATUS(dfm_runner_dispatch(runner, &good, 1), DFM_OK);
    ok &= CHECK_STATUS(dfm_process_pending(runner), DFM_OK);
    ok &= CHECK_EQ(record.count, 1);
    dfm_runner_destroy(runner);
    if (!ok)
        fprintf(stderr, "    (the good token: %s)\n", what);
}

static dfm_token text_token(dfm_value_kind kind, const char *data,
                            size_t length)
{
    dfm_value value = value_none();

    value.kind = kind;
    value.as.text.data = data;
    value.as.text.length = length;
    return token_make("p", value);
}

static void test_a_null_runner_is_invalid(void)
{
    dfm_token token = token_int("p", 1);

    CHECK_STATUS(dfm_runner_dispatch(NULL, &token, 1),
                 DFM_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(dfm_runner_dispatch(NULL, NULL, 0),
                 DFM_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(dfm_runner_dispatch(NULL, &token, 0),
                 DFM_ERR_INVALID_ARGUMENT);
}

static void test_null_tokens_with_a_count_are_invalid(void)
{
    dfm_runner *runner = manual_runner(NULL);

    CHECK_STATUS(dfm_runner_dispatch(runner, NULL, 1),
                 DFM_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(dfm_runner_dispatch(runner, NULL, 1000),
                 DFM_ERR_INVALID_ARGUMENT);
    CHECK(!dfm_has_pending(runner));
    dfm_runner_destroy(runner);
}

static void test_an_empty_batch_is_a_no_op(void)
{
    tracked_object object;
    dfm_token token;
    dfm_runner *runner = manual_runner(NULL);
    dfm_stats stats;

    tracked_reset(&object, 1);
    token = token_object("p", &object);
    CHECK_STATUS(dfm_runner_dispatch(runner, NULL, 0), DFM_OK);
    CHECK_STATUS(dfm_runner_dispatch(runner, &token, 0), DFM_OK);
    CHECK(!dfm_has_pending(runner));
    stats = stats_of(runner);
    CHECK_EQ(stats.dispatched, 0);
    CHECK_EQ(stats.pending, 0);
    dfm_runner_destroy(runner);
    CHECK_EQ(tracked_releases(&object), 0);
}

static void test_null_site_and_place_are_refused(void)
{
    dfm_token token = token_int("p", 1);

    token.source_site = NULL;
    expect_refused(token, "NULL source_site");

    token = token_int(NULL, 1);
    expect_refused(token, "NULL target_place");
}

static void test_bad_utf8_anywhere_is_refused(void)
{
    static const char *const bad[] = {
        "\xff", "ok\x80", "caf\xc3", "\xc0\x80", "\xed\xa0\x80",
        "\xf4\x90\x80\x80", "\xf8\x88\x80\x80\x80",
    };
    size_t i;
    dfm_token token;

    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        token = token_int("p", 1);
        token.source_site = bad[i];
        expect_refused(token, "bad UTF-8 in source_site");

        token = token_int(bad[i], 1);
        expect_refused(token, "bad UTF-8 in target_place");
    }

    expect_refused(text_token(DFM_VALUE_STRING, "ab\xff", 3),
                   "bad UTF-8 in STRING");
    expect_refused(text_token(DFM_VALUE_JSON, "{\"\xc0\xaf\":1}", 8),
                   "bad UTF-8 in JSON");
    expect_refused(text_token(DFM_VALUE_ERROR, "boom \xed\xbf\xbf", 8),
                   "bad UTF-8 in ERROR");

    /* A bad byte after an embedded NUL still counts: the length rules. */
    expect_refused(text_token(DFM_VALUE_STRING, "a\0\xff", 3),
                   "bad UTF-8 after an embedded NUL");

    token = token_int("p", 1);
    token.source_node.kind = DFM_NODE_NAME;
    token.source_node.name = "node\xfe";
    expect_refused(token, "bad UTF-8 in a NAME node");
}

static void test_a_name_node_without_a_name_is_refused(void)
{
    dfm_token token = token_int("p", 1);

    token.source_node.kind = DFM_NODE_NAME;
    token.source_node.name = NULL;
    expect_refused(token, "NAME node with a NULL name");
}

static void test_unknown_kinds_are_refused(void)
{
    static const int node_kinds[] = { 3, 99, -1 };
    static const int value_kinds[] = { 10, 99, -1 };
    size_t i;
    dfm_token token;

    for (i = 0; i < sizeof node_kinds / sizeof node_kinds[0]; i++) {
        token = token_int("p", 1);
        token.source_node.kind = (dfm_node_kind)node_kinds[i];
        expect_refused(token, "unknown node kind");
    }
    for (i = 0; i < sizeof value_kinds / sizeof value_kinds[0]; i++) {
        token = token_int("p", 1);
        token.data.kind = (dfm_value_kind)value_kinds[i];
        expect_refused(token, "unknown value kind");
    }
}

static void test_malformed_frames_are_refused(void)
{
    static const int64_t levels[] = { 0, 1 };
    dfm_token token = token_int("p", 1);

    token.frame.depth = 2;
    token.frame.levels = NULL;
    expect_refused(token, "depth 2 with NULL levels");

    token = token_int("p", 1);
    token.frame.is_stop = true;
    token.frame.depth = 1;
    token.frame.levels = levels;
    expect_refused(token, "stop frame with depth 1");
}

static void test_null_data_with_a_length_is_refused(void)
{
    dfm_value bytes = value_none();

    expect_refused(text_token(DFM_VALUE_STRING, NULL, 3),
                   "STRING NULL with length 3");
    expect_refused(text_token(DFM_VALUE_JSON, NULL, 1),
                   "JSON NULL with length 1");
    expect_refused(text_token(DFM_VALUE_ERROR, NULL, 2),
                   "ERROR NULL with length 2");

    bytes.kind = DFM_VALUE_BYTES;
    bytes.as.bytes.data = NULL;
    bytes.as.bytes.length = 4;
    expect_refused(token_make("p", bytes), "BYTES NULL with length 4");
}

static void test_fields_that_a_kind_does_not_use_are_ignored(void)
{
    static const int64_t levels[] = { 4 };
    dfm_token token;
    dfm_value bytes = value_none();
    int payload = 0;
    dfm_value object = value_none();

    token = token_int("p", 1);
    token.source_node.kind = DFM_NODE_NONE;
    token.source_node.name = "\xff ignored";
    expect_accepted(token, "NONE node with a bad name");

    token = token_int("p", 1);
    token.source_node.kind = DFM_NODE_INT;
    token.source_node.id = 42;
    token.source_node.name = NULL;
    expect_accepted(token, "INT node with a NULL name");

    token = token_int("p", 1);
    token.frame.depth = 0;
    token.frame.levels = levels;
    expect_accepted(token, "depth 0 with levels");

    token = token_int("p", 1);
    token.frame.is_stop = true;
    expect_accepted(token, "stop frame");

    expect_accepted(text_token(DFM_VALUE_STRING, NULL, 0),
                    "STRING NULL with length 0");
    expect_accepted(text_token(DFM_VALUE_STRING, "a\0b", 3),
                    "STRING with an embedded NUL");
    expect_accepted(text_token(DFM_VALUE_STRING, "not checked \xff", 12),
                    "STRING whose length stops before a bad byte");

    bytes.kind = DFM_VALUE_BYTES;
    bytes.as.bytes.data = NULL;
    bytes.as.bytes.length = 0;
    expect_accepted(token_make("p", bytes), "BYTES NULL with length 0");

    object.kind = DFM_VALUE_OBJECT;
    object.as.object.pointer = &payload;
    object.as.object.release = NULL;
    expect_accepted(token_make("p", object), "OBJECT without release");

    token = token_int("_dfm_status_", 1);
    expect_accepted(token, "the status place");
}

/* ---- Delivered tokens ------------------------------------------------ */

#define SAMPLES 24

static const int64_t levels_one[] = { 0 };
static const int64_t levels_two[] = { 0, 2 };
static const int64_t levels_deep[] = {
    INT64_MIN, -1, 0, 1, INT64_MAX, 7, 7, 3000000000LL
};
static const unsigned char bytes_with_zeros[] = { 0, 1, 0, 255, 0, 0x7f };
static int plain_payload;

static tracked_object sample_objects[2];
static dfm_token samples[SAMPLES];
static size_t sample_count;

static dfm_token *add_sample(const char *place, dfm_value value)
{
    dfm_token *token = &samples[sample_count++];

    *token = token_make(place, value);
    return token;
}

/* One token of every value kind, node kind and frame shape. */
static void build_samples(void)
{
    dfm_value value;
    dfm_token *token;

    sample_count = 0;
    tracked_reset(sample_objects, 2);

    token = add_sample("p0", value_none());
    token->source_site = "site-\xc3\xa9";

    value = value_none();
    value.kind = DFM_VALUE_BOOL;
    value.as.boolean = true;
    token = add_sample("p1", value);
    token->source_node.kind = DFM_NODE_INT;
    token->source_node.id = -5;
    token->frame.levels = levels_one;
    token->frame.depth = 1;

    value.as.boolean = false;
    add_sample("p2", value);

    token = add_sample("p3", value_int(INT64_MIN));
    token->source_node.kind = DFM_NODE_NAME;
    token->source_node.name = "node-\xe5\x90\x8d";
    token->frame.levels = levels_two;
    token->frame.depth = 2;

    token = add_sample("p4", value_int(INT64_MAX));
    token->frame.levels = levels_deep;
    token->frame.depth = sizeof levels_deep / sizeof levels_deep[0];

    value = value_none();
    value.kind = DFM_VALUE_DOUBLE;
    value.as.real = -0.0;
    add_sample("p5", value);
    value.as.real = 3.5e300;
    add_sample("p6", value);
    value.as.real = -INFINITY;
    add_sample("p7", value);

    value = value_none();
    value.kind = DFM_VALUE_STRING;
    value.as.text.data = "h\xc3\xa9llo";
    value.as.text.length = 6;
    add_sample("p8", value);
    value.as.text.data = "a\0b";
    value.as.text.length = 3;
    add_sample("p9", value);
    value.as.text.data = "";
    value.as.text.length = 0;
    add_sample("p10", value);
    value.as.text.data = NULL;
    value.as.text.length = 0;
    add_sample("p11", value);

    value = value_none();
    value.kind = DFM_VALUE_BYTES;
    value.as.bytes.data = bytes_with_zeros;
    value.as.bytes.length = sizeof bytes_with_zeros;
    add_sample("p12", value);
    value.as.bytes.data = NULL;
    value.as.bytes.length = 0;
    add_sample("p13", value);

    value = value_none();
    value.kind = DFM_VALUE_JSON;
    value.as.text.data = "{\"k\": [1, 2, \"\xc3\xbc\"]}";
    value.as.text.length = strlen(value.as.text.data);
    add_sample("p14", value);

    token = add_sample("p15", value_object(&sample_objects[0]));
    token->source_node.kind = DFM_NODE_INT;
    token->source_node.id = 0;

    value = value_none();
    value.kind = DFM_VALUE_OBJECT;
    value.as.object.pointer = &plain_payload;
    value.as.object.release = NULL;
    add_sample("p16", value);

    value = value_none();
    value.kind = DFM_VALUE_STOP;
    token = add_sample("p17", value);
    token->frame.is_stop = true;

    value = value_none();
    value.kind = DFM_VALUE_STOP;
    token = add_sample("p18", value);
    token->frame.levels = levels_two;
    token->frame.depth = 2;

    value = value_none();
    value.kind = DFM_VALUE_ERROR;
    value.as.text.data = "boom: \xc3\xbcnic\xc3\xb6" "de";
    value.as.text.length = strlen(value.as.text.data);
    add_sample("_dfm_status_", value);

    token = add_sample("_dfm_discovery_", value_object(&sample_objects[1]));
    token->source_node.kind = DFM_NODE_NAME;
    token->source_node.name = "";
}

/* A deep copy of the samples in heap memory that the test scribbles over
 * and frees right after dispatch. */
typedef struct scratch {
    dfm_token tokens[SAMPLES];
    void *blocks[SAMPLES * 5];
    size_t block_count;
} scratch;

static void *scratch_copy(scratch *copy, const void *data, size_t length)
{
    void *block = malloc(length + 1);

    memcpy(block, data, length);
    ((char *)block)[length] = '\0';
    copy->blocks[copy->block_count++] = block;
    return block;
}

static void scratch_fill(scratch *copy)
{
    size_t i;

    copy->block_count = 0;
    for (i = 0; i < sample_count; i++) {
        dfm_token *token = &copy->tokens[i];
        dfm_value *data = &token->data;

        *token = samples[i];
        token->source_site = (const char *)scratch_copy(
            copy, samples[i].source_site, strlen(samples[i].source_site));
        token->target_place = (const char *)scratch_copy(
            copy, samples[i].target_place, strlen(samples[i].target_place));
        if (token->source_node.kind == DFM_NODE_NAME) {
            token->source_node.name = (const char *)scratch_copy(
                copy, samples[i].source_node.name,
                strlen(samples[i].source_node.name));
        }
        if (token->frame.depth > 0) {
            token->frame.levels = (const int64_t *)scratch_copy(
                copy, samples[i].frame.levels,
                token->frame.depth * sizeof(int64_t));
        }
        if ((data->kind == DFM_VALUE_STRING || data->kind == DFM_VALUE_JSON
             || data->kind == DFM_VALUE_ERROR)
            && data->as.text.data != NULL) {
            data->as.text.data = (const char *)scratch_copy(
                copy, data->as.text.data, data->as.text.length);
        }
        if (data->kind == DFM_VALUE_BYTES && data->as.bytes.data != NULL) {
            data->as.bytes.data = scratch_copy(copy, data->as.bytes.data,
                                               data->as.bytes.length);
        }
    }
}

/* Overwrites every byte the tokens point to, then frees it. */
static void scratch_spoil(scratch *copy)
{
    size_t i;

    for (i = 0; i < copy->block_count; i++) {
        memset(copy->blocks[i], 0xEE, 1);
        free(copy->blocks[i]);
    }
    memset(copy->tokens, 0xEE, sizeof copy->tokens);
}

static bool text_matches(const char *got, size_t got_length,
                         const char *want, size_t want_length)
{
    if (got_length != want_length || got == NULL)
        return false;
    if (want_length > 0 && memcmp(got, want, want_length) != 0)
        return false;
    return got[got_length] == '\0';
}

static bool value_matches(const dfm_value *got, const dfm_value *want)
{
    if (got->kind != want->kind)
        return false;

    switch (want->kind) {
    case DFM_VALUE_NONE:
    case DFM_VALUE_STOP:
        return true;
    case DFM_VALUE_BOOL:
        return got->as.boolean == want->as.boolean;
    case DFM_VALUE_INT:
        return got->as.integer == want->as.integer;
    case DFM_VALUE_DOUBLE:
        return memcmp(&got->as.real, &want->as.real, sizeof(double)) == 0;
    case DFM_VALUE_STRING:
    case DFM_VALUE_JSON:
    case DFM_VALUE_ERROR:
        return text_matches(got->as.text.data, got->as.text.length,
                            want->as.text.data, want->as.text.length);
    case DFM_VALUE_BYTES:
        return got->as.bytes.length == want->as.bytes.length
               && (want->as.bytes.length == 0
                   || memcmp(got->as.bytes.data, want->as.bytes.data,
                             want->as.bytes.length) == 0);
    case DFM_VALUE_OBJECT:
        return got->as.object.pointer == want->as.object.pointer;
    }
    return false;
}

static bool frame_matches(const dfm_frame *got, const dfm_frame *want)
{
    if (got->is_stop != want->is_stop || got->depth != want->depth)
        return false;
    if (want->depth == 0)
        return got->levels == NULL;
    return got->levels != NULL
           && memcmp(got->levels, want->levels,
                     want->depth * sizeof(int64_t)) == 0;
}

static bool node_matches(const dfm_node *got, const dfm_node *want)
{
    if (got->kind != want->kind)
        return false;
    if (want->kind == DFM_NODE_INT)
        return got->id == want->id;
    if (want->kind == DFM_NODE_NAME)
        return got->name != NULL && strcmp(got->name, want->name) == 0;
    return true;
}

typedef struct comparison {
    size_t index;
    int releases_seen_inside;
} comparison;

/* Compares each delivered token with the sample of the same index. */
static int compare_with_samples(const dfm_token *got, void *user_data)
{
    comparison *state = (comparison *)user_data;
    const dfm_token *want;
    bool ok = true;

    if (!CHECK(state->index < sample_count))
        return 0;
    want = &samples[state->index++];

    ok &= CHECK(got->source_site != NULL
                && strcmp(got->source_site, want->source_site) == 0);
    ok &= CHECK(got->target_place != NULL
                && strcmp(got->target_place, want->target_place) == 0);
    ok &= CHECK(node_matches(&got->source_node, &want->source_node));
    ok &= CHECK(frame_matches(&got->frame, &want->frame));
    ok &= CHECK(value_matches(&got->data, &want->data));
    if (got->data.kind == DFM_VALUE_OBJECT
        && got->data.as.object.pointer != &plain_payload) {
        state->releases_seen_inside +=
            tracked_releases((tracked_object *)got->data.as.object.pointer);
    }
    if (!ok)
        fprintf(stderr, "    (sample %zu, place %s)\n", state->index - 1,
                want->target_place);
    return 0;
}

static void deliver_samples(dfm_runner *runner, bool pump,
                            comparison *state)
{
    scratch *copy = (scratch *)calloc(1, sizeof *copy);

    build_samples();
    scratch_fill(copy);
    CHECK_STATUS(dfm_runner_dispatch(runner, copy->tokens, sample_count),
                 DFM_OK);
    scratch_spoil(copy);
    free(copy);

    if (pump)
        CHECK_STATUS(dfm_process_pending(runner), DFM_OK);
    CHECK_EQ(state->index, sample_count);
    CHECK_EQ(state->releases_seen_inside, 0);
    CHECK_EQ(tracked_count_released(sample_objects, 2, 1), 2);
}

static void test_a_manual_callback_sees_exactly_what_was_dispatched(void)
{
    comparison state = { 0, 0 };
    dfm_callbacks *set = callbacks_default(compare_with_samples, &state,
                                           NULL);
    dfm_runner *runner = manual_runner(set);

    dfm_callbacks_destroy(set);
    deliver_samples(runner, true, &state);
    CHECK_EQ(stats_of(runner).delivered, sample_count);
    dfm_runner_destroy(runner);
}

static void test_a_direct_callback_sees_exactly_what_was_dispatched(void)
{
    comparison state = { 0, 0 };
    dfm_callbacks *set = callbacks_default(compare_with_samples, &state,
                                           NULL);
    dfm_runner *runner = direct_runner(set);

    dfm_callbacks_destroy(set);
    deliver_samples(runner, false, &state);
    dfm_runner_destroy(runner);
}

/* Two batches pending at once, the first spoiled before the second is
 * dispatched: each token keeps its own copy. */
static void test_pending_tokens_keep_their_own_copies(void)
{
    comparison state = { 0, 0 };
    dfm_callbacks *set = callbacks_default(compare_with_samples, &state,
                                           NULL);
    dfm_runner *runner = manual_runner(set);
    scratch *copy = (scratch *)calloc(1, sizeof *copy);
    size_t half;

    dfm_callbacks_destroy(set);
    build_samples();
    half = sample_count / 2;

    scratch_fill(copy);
    CHECK_STATUS(dfm_runner_dispatch(runner, copy->tokens, half), DFM_OK);
    scratch_spoil(copy);
    scratch_fill(copy);
    CHECK_STATUS(dfm_runner_dispatch(runner, copy->tokens + half,
                                     sample_count - half),
                 DFM_OK);
    scratch_spoil(copy);
    free(copy);

    CHECK_EQ(stats_of(runner).pending, sample_count);
    CHECK_STATUS(dfm_process_pending(runner), DFM_OK);
    CHECK_EQ(state.index, sample_count);
    CHECK_EQ(tracked_count_released(sample_objects, 2, 1), 2);
    dfm_runner_destroy(runner);
}

/* ---- Large tokens --------------------------------------------------- */

static const size_t large_lengths[] = {
    0, 1, 7, 8, 15, 16, 31, 32, 55, 56, 63, 64, 65, 100, 127, 128, 200,
    255, 256, 1000, 4095, 4096, 4097, 65535, 65536, 1u << 20
};

#define LARGE_LENGTHS (sizeof large_lengths / sizeof large_lengths[0])
#define LARGE_TOKENS (2 * LARGE_LENGTHS)

static size_t min_size(size_t a, size_t b)
{
    return a < b ? a : b;
}

/* Printable ASCII (valid UTF-8) or any bytes, zeros included. */
static char pattern_byte(size_t offset, size_t seed, bool binary)
{
    if (binary)
        return (char)((offset * 31 + seed) & 0xFF);
    return (char)('a' + (offset * 7 + seed) % 26);
}

static char *pattern(size_t length, size_t seed, bool binary)
{
    char *text = (char *)malloc(length + 1);
    size_t i;

    for (i = 0; i < length; i++)
        text[i] = pattern_byte(i, seed, binary);
    text[length] = '\0';
    return text;
}

static bool matches_pattern(const char *data, size_t length, size_t seed,
                            bool binary)
{
    size_t i;

    if (length > 0 && data == NULL)
        return false;
    for (i = 0; i < length; i++) {
        if (data[i] != pattern_byte(i, seed, binary))
            return false;
    }
    return true;
}

/* Token i: data of large_lengths[i / 2] (STRING when i is even, BYTES
 * when odd), and site, place, node name and frame sized after it. */
static size_t large_site_length(size_t i)
{
    return min_size(large_lengths[i / 2] / 3, 5000) + 1;
}

static size_t large_place_length(size_t i)
{
    return min_size(large_lengths[i / 2], 700) + 1;
}

static size_t large_depth(size_t i)
{
    return min_size(large_lengths[i / 2], 3000) + 1;
}

static void make_large_token(dfm_token *token, size_t i, int64_t *levels)
{
    size_t length = large_lengths[i / 2];
    bool binary = i % 2 == 1;
    size_t k;
    dfm_value value = value_none();

    if (binary) {
        value.kind = DFM_VALUE_BYTES;
        value.as.bytes.data = pattern(length, i, binary);
        value.as.bytes.length = length;
    } else {
        value.kind = DFM_VALUE_STRING;
        value.as.text.data = pattern(length, i, binary);
        value.as.text.length = length;
    }
    *token = token_make(pattern(large_place_length(i), i + 2, false), value);
    token->source_site = pattern(large_site_length(i), i + 1, false);
    token->source_node.kind = DFM_NODE_NAME;
    token->source_node.name = pattern(large_place_length(i), i + 3, false);
    for (k = 0; k < large_depth(i); k++)
        levels[k] = k == 0 ? (int64_t)i : (int64_t)(i * 1000003u + k);
    token->frame.levels = levels;
    token->frame.depth = large_depth(i);
}

static void free_large_token(dfm_token *token, int64_t *levels)
{
    bool binary = token->data.kind == DFM_VALUE_BYTES;
    char *data = binary ? (char *)token->data.as.bytes.data
                        : (char *)token->data.as.text.data;
    size_t length = binary ? token->data.as.bytes.length
                           : token->data.as.text.length;

    memset(data, 0xEE, length);
    memset(levels, 0xEE, token->frame.depth * sizeof(int64_t));
    free(data);
    free((char *)token->target_place);
    free((char *)token->source_site);
    free((char *)token->source_node.name);
}

typedef struct large_check {
    size_t count;
    size_t mismatches;
} large_check;

static int check_large_token(const dfm_token *got, void *user_data)
{
    large_check *state = (large_check *)user_data;
    size_t i;
    size_t k;
    bool ok = true;
    bool binary;

    state->count++;
    if (got->frame.depth == 0 || got->frame.levels == NULL
        || got->frame.levels[0] < 0
        || (size_t)got->frame.levels[0] >= LARGE_TOKENS) {
        state->mismatches++;
        return 0;
    }
    i = (size_t)got->frame.levels[0];
    binary = i % 2 == 1;

    if (binary) {
        ok &= got->data.kind == DFM_VALUE_BYTES;
        ok &= got->data.as.bytes.length == large_lengths[i / 2];
        ok &= matches_pattern((const char *)got->data.as.bytes.data,
                              large_lengths[i / 2], i, binary);
    } else {
        ok &= got->data.kind == DFM_VALUE_STRING;
        ok &= got->data.as.text.length == large_lengths[i / 2];
        ok &= matches_pattern(got->data.as.text.data, large_lengths[i / 2],
                              i, binary);
        ok &= got->data.as.text.data != NULL
              && got->data.as.text.data[large_lengths[i / 2]] == '\0';
    }
    ok &= strlen(got->source_site) == large_site_length(i)
          && matches_pattern(got->source_site, large_site_length(i), i + 1,
                             false);
    ok &= strlen(got->target_place) == large_place_length(i)
          && matches_pattern(got->target_place, large_place_length(i),
                             i + 2, false);
    ok &= got->source_node.kind == DFM_NODE_NAME
          && strlen(got->source_node.name) == large_place_length(i)
          && matches_pattern(got->source_node.name, large_place_length(i),
                             i + 3, false);
    ok &= got->frame.depth == large_depth(i);
    for (k = 1; ok && k < got->frame.depth; k++)
        ok &= got->frame.levels[k] == (int64_t)(i * 1000003u + k);
    if (!ok) {
        state->mismatches++;
        fprintf(stderr, "    large token %zu (data length %zu) differs\n",
                i, large_lengths[i / 2]);
    }
    return 0;
}

static void dispatch_large_tokens(dfm_runner *runner, bool as_one_batch)
{
    dfm_token *tokens = (dfm_token *)calloc(LARGE_TOKENS, sizeof *tokens);
    int64_t *levels[LARGE_TOKENS];
    size_t i;

    for (i = 0; i < LARGE_TOKENS; i++) {
        levels[i] = (int64_t *)malloc(large_depth(i) * sizeof(int64_t));
        make_large_token(&tokens[i], i, levels[i]);
    }
    if (as_one_batch) {
        CHECK_STATUS(dfm_runner_dispatch(runner, tokens, LARGE_TOKENS),
                     DFM_OK);
    } else {
        for (i = 0; i < LARGE_TOKENS; i++)
            CHECK_STATUS(dfm_runner_dispatch(runner, &tokens[i], 1), DFM_OK);
    }
    for (i = 0; i < LARGE_TOKENS; i++) {
        free_large_token(&tokens[i], levels[i]);
        free(levels[i]);
    }
    free(tokens);
}

static void test_large_tokens_arrive_whole(void)
{
    large_check state = { 0, 0 };
    dfm_callbacks *set = callbacks_default(check_large_token, &state, NULL);
    dfm_runner *manual = manual_runner(set);
    dfm_runner *direct = direct_runner(set);

    dfm_callbacks_destroy(set);

    dispatch_large_tokens(manual, false);
    dispatch_large_tokens(manual, true);
    CHECK_EQ(state.count, 0);
    CHECK_EQ(stats_of(manual).pending, 2 * LARGE_TOKENS);
    CHECK_STATUS(dfm_process_pending(manual), DFM_OK);
    CHECK_EQ(state.count, 2 * LARGE_TOKENS);

    dispatch_large_tokens(direct, true);
    CHECK_EQ(state.count, 3 * LARGE_TOKENS);
    CHECK_EQ(state.mismatches, 0);

    /* Large tokens left pending are freed by destroy. */
    dispatch_large_tokens(manual, true);
    dfm_runner_destroy(manual);
    dfm_runner_destroy(direct);
}

/* ---- Single tokens of every short shape ------------------------------ */

/* One token at a time takes the dispatch fast path whenever its site and
 * place are short ASCII strings; these tests give it every alignment and
 * length around that limit (0 to 9 bytes at offsets 0 to 7, and strings
 * that end on the last byte of a page whose successor is unmapped), non-
 * ASCII and invalid bytes, every frame depth around the inline limit,
 * both node kinds it accepts, and callback sets that are scanned and
 * hashed.  Each delivered token must equal the dispatched one, on the
 * callback its place routes to. */

#define SHORT_SITES 120
#define SHORT_PLACES 16

static char *short_sites[SHORT_SITES];
static size_t short_site_count;
static char *short_places[SHORT_PLACES];
static size_t short_place_count;
static char short_arena[SHORT_SITES * 32];
static size_t short_arena_used;
static unsigned char *guarded_page;

/* A copy of `text` that starts `offset` bytes past an 8-byte boundary. */
static char *short_copy_at(const char *text, size_t offset)
{
    char *copy;

    short_arena_used = (short_arena_used + 7) & ~(size_t)7;
    copy = short_arena + short_arena_used + offset;
    strcpy(copy, text);
    short_arena_used += offset + strlen(text) + 1;
    return copy;
}

/* A copy of `text` whose terminator is the last byte of a readable page
 * followed by an inaccessible one: a read past it would crash.  Each copy
 * has a page of its own. */
#define GUARDED_PAGES 16

static size_t guarded_pages_used;

static char *short_copy_at_page_end(const char *text)
{
    size_t length = strlen(text);
    unsigned char *page = guarded_page + 8192 * guarded_pages_used++;
    char *copy = (char *)page + 4096 - length - 1;

    memcpy(copy, text, length + 1);
    return copy;
}

static const char *const short_texts[] = {
    "", "a", "ab", "abc", "abcd", "site-", "site-a", "site-ab",
    "site-abc", "site-abcd"
};

static void build_short_strings(void)
{
    size_t text, offset, i;

    short_site_count = 0;
    short_arena_used = 0;
    for (text = 0; text < 10; text++)
        for (offset = 0; offset < 8; offset++)
            short_sites[short_site_count++] =
                short_copy_at(short_texts[text], offset);
    for (text = 0; text < 10; text++)
        short_sites[short_site_count++] =
            short_copy_at_page_end(short_texts[text]);
    /* Valid UTF-8 beyond ASCII at each position of a short string. */
    for (i = 0; i < 6; i++) {
        char text_with_e[16] = "abcdef";

        memmove(text_with_e + i + 2, text_with_e + i, 6 - i + 1);
        text_with_e[i] = (char)0xc3;
        text_with_e[i + 1] = (char)0xa9;
        short_sites[short_site_count++] = short_copy_at(text_with_e, i);
    }

    short_place_count = 0;
    short_places[short_place_count++] = short_copy_at("p0", 1);
    short_places[short_place_count++] = short_copy_at("p2", 6);
    short_places[short_place_count++] = short_copy_at("p3", 7);
    short_places[short_place_count++] = short_copy_at("", 3);
    short_places[short_place_count++] = short_copy_at("p1234567", 0);
    short_places[short_place_count++] = short_copy_at("p123456", 5);
    short_places[short_place_count++] = short_copy_at("pl\xc3\xa4", 2);
    short_places[short_place_count++] = short_copy_at("p\xc3\xa4", 4);
    short_places[short_place_count++] = short_copy_at("place-eight", 0);
    short_places[short_place_count++] = short_copy_at_page_end("p1");
    short_places[short_place_count++] = short_copy_at_page_end("h8");
}

/* Registered places: scanned sets have up to 8, hashed sets more. */
static const char *const scanned_places[] = {
    "p0", "p1", "p2", "", "p123456", "pl\xc3\xa4", "place-eight"
};
static const char *const hashed_places[] = {
    "p0", "p1", "p2", "", "p123456", "pl\xc3\xa4", "place-eight", "h7",
    "h8", "h9"
};

typedef struct short_expectation {
    const dfm_token *token;   /* what was dispatched */
    const char *route;        /* the registered place it must reach, or
                                 NULL for the default callback */
    size_t seen;
    size_t wrong;
} short_expectation;

static short_expectation short_expected;

typedef struct short_route {
    const char *place;        /* NULL: the default callback */
} short_route;

static short_route short_routes[16];

static int short_token_callback(const dfm_token *got, void *user_data)
{
    const short_route *route = (const short_route *)user_data;
    const dfm_token *want = short_expected.token;
    bool ok = true;

    short_expected.seen++;
    if (want == NULL) {
        short_expected.wrong++;
        return 0;
    }
    ok &= (route->place == NULL) == (short_expected.route == NULL);
    ok &= route->place == NULL
          || strcmp(route->place, short_expected.route) == 0;
    ok &= got->source_site != NULL
          && strcmp(got->source_site, want->source_site) == 0;
    ok &= got->target_place != NULL
          && strcmp(got->target_place, want->target_place) == 0;
    ok &= node_matches(&got->source_node, &want->source_node);
    ok &= frame_matches(&got->frame, &want->frame);
    ok &= value_matches(&got->data, &want->data);
    if (!ok) {
        short_expected.wrong++;
        fprintf(stderr, "    site \"%s\", place \"%s\" arrived wrong\n",
                want->source_site, want->target_place);
    }
    return 0;
}

static dfm_callbacks *short_set(const char *const *places, size_t count)
{
    dfm_callbacks *set = dfm_callbacks_create();
    size_t i;

    CHECK(set != NULL);
    for (i = 0; i < count; i++) {
        short_routes[i].place = places[i];
        CHECK_STATUS(dfm_callbacks_add_place(set, places[i],
                                             short_token_callback,
                                             &short_routes[i]),
                     DFM_OK);
    }
    short_routes[count].place = NULL;
    CHECK_STATUS(dfm_callbacks_set_default(set, short_token_callback,
                                           &short_routes[count]),
                 DFM_OK);
    return set;
}

static const char *expected_route(const char *place,
                                  const char *const *places, size_t count)
{
    size_t i;

    for (i = 0; i < count; i++)
        if (strcmp(places[i], place) == 0)
            return places[i];
    return NULL;
}

/* Dispatches every site with every place, one token at a time, with
 * depths 0 to 10 and none, integer and object-free scalar data in turn,
 * and checks each delivery. */
static void dispatch_short_tokens(dfm_runner *runner, bool pump,
                                  const char *const *places, size_t count)
{
    static const int64_t levels[10] = { 9, -1, 0, 7, INT64_MAX, 3, 2, 1,
                                        INT64_MIN, 5 };
    size_t site, place, round = 0, delivered = 0;

    for (site = 0; site < short_site_count; site++) {
        for (place = 0; place < short_place_count; place++) {
            dfm_token token = token_make(short_places[place],
                                         value_int((int64_t)round));

            token.source_site = short_sites[site];
            token.frame.depth = round % 11;
            token.frame.levels = token.frame.depth ? levels : NULL;
            if (round % 3 == 0) {
                token.source_node.kind = DFM_NODE_INT;
                token.source_node.id = -(int64_t)round;
            }
            if (round % 5 == 0) {
                token.data.kind = DFM_VALUE_DOUBLE;
                token.data.as.real = (double)round / 4;
            }
            if (round % 7 == 0)
                token.frame.is_stop = token.frame.depth == 0;
            short_expected.token = &token;
            short_expected.route = expected_route(short_places[place],
                                                  places, count);
            CHECK_STATUS(dfm_runner_dispatch(runner, &token, 1), DFM_OK);
            if (pump)
                CHECK_STATUS(dfm_process_pending(runner), DFM_OK);
            short_expected.token = NULL;
            delivered++;
            round++;
        }
    }
    CHECK_EQ(short_expected.seen, delivered);
    CHECK_EQ(short_expected.wrong, 0);
    short_expected.seen = 0;
    short_expected.wrong = 0;
}

static void with_guarded_page(void (*body)(void))
{
    size_t size = 8192 * GUARDED_PAGES, page;

    guarded_page = (unsigned char *)mmap(NULL, size, PROT_READ | PROT_WRITE,
                                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (!CHECK(guarded_page != MAP_FAILED))
        return;
    for (page = 0; page < GUARDED_PAGES; page++)
        CHECK(mprotect(guarded_page + 8192 * page + 4096, 4096, PROT_NONE)
              == 0);
    guarded_pages_used = 0;
    build_short_strings();
    body();
    munmap(guarded_page, size);
}

static void short_tokens_through_every_runner(void)
{
    const char *const *sets[3] = { scanned_places, hashed_places, NULL };
    size_t counts[3] = {
        sizeof scanned_places / sizeof scanned_places[0],
        sizeof hashed_places / sizeof hashed_places[0], 0
    };
    size_t i;

    for (i = 0; i < 3; i++) {
        dfm_callbacks *set = short_set(sets[i], counts[i]);
        dfm_runner *manual = manual_runner(set);
        dfm_runner *direct = direct_runner(set);

        dfm_callbacks_destroy(set);
        dispatch_short_tokens(manual, true, sets[i], counts[i]);
        dispatch_short_tokens(direct, false, sets[i], counts[i]);
        CHECK_EQ(stats_of(manual).failed, 0);
        CHECK_EQ(stats_of(direct).failed, 0);
        dfm_runner_destroy(manual);
        dfm_runner_destroy(direct);
    }
}

static void test_single_short_tokens_arrive_exactly(void)
{
    with_guarded_page(short_tokens_through_every_runner);
}

/* A single token with an invalid byte in a short site or place is
 * refused, whatever its position. */
static void refuse_short_invalid(void)
{
    dfm_callbacks *set = short_set(scanned_places, 3);
    dfm_runner *manual = manual_runner(set);
    dfm_runner *direct = direct_runner(set);
    size_t i;

    dfm_callbacks_destroy(set);
    for (i = 0; i < 7; i++) {
        char text[8] = "abcdefg";
        dfm_token token = token_int("p0", 1);

        text[i] = (char)0xff;
        token.source_site = short_copy_at(text, i);
        CHECK_STATUS(dfm_runner_dispatch(manual, &token, 1),
                     DFM_ERR_INVALID_ARGUMENT);
        CHECK_STATUS(dfm_runner_dispatch(direct, &token, 1),
                     DFM_ERR_INVALID_ARGUMENT);
        token.source_site = "site";
        token.target_place = short_copy_at(text, 7 - i);
        CHECK_STATUS(dfm_runner_dispatch(manual, &token, 1),
                     DFM_ERR_INVALID_ARGUMENT);
        CHECK_STATUS(dfm_runner_dispatch(direct, &token, 1),
                     DFM_ERR_INVALID_ARGUMENT);
    }
    CHECK_EQ(stats_of(manual).dispatched, 0);
    CHECK_EQ(short_expected.seen, 0);
    dfm_runner_destroy(manual);
    dfm_runner_destroy(direct);
}

static void test_single_short_tokens_with_bad_bytes_are_refused(void)
{
    with_guarded_page(refuse_short_invalid);
}

int main(void)
{
    RUN_TEST(test_a_null_runner_is_invalid);
    RUN_TEST(test_null_tokens_with_a_count_are_invalid);
    RUN_TEST(test_an_empty_batch_is_a_no_op);
    RUN_TEST(test_null_site_and_place_are_refused);
    RUN_TEST(test_bad_utf8_anywhere_is_refused);
    RUN_TEST(test_a_name_node_without_a_name_is_refused);
    RUN_TEST(test_unknown_kinds_are_refused);
    RUN_TEST(test_malformed_frames_are_refused);
    RUN_TEST(test_null_data_with_a_length_is_refused);
    RUN_TEST(test_fields_that_a_kind_does_not_use_are_ignored);
    RUN_TEST(test_a_manual_callback_sees_exactly_what_was_dispatched);
    RUN_TEST(test_a_direct_callback_sees_exactly_what_was_dispatched);
    RUN_TEST(test_pending_tokens_keep_their_own_copies);
    RUN_TEST(test_large_tokens_arrive_whole);
    RUN_TEST(test_single_short_tokens_arrive_exactly);
    RUN_TEST(test_single_short_tokens_with_bad_bytes_are_refused);
    return check_summary();
}
