/*
 * fuzz_tokens.c - libFuzzer target: token batches built from arbitrary
 * bytes, dispatched to a manual runner and a direct runner.
 *
 * The bytes choose everything a host can get wrong: NULL site, place,
 * node name, frame levels and text pointers; lengths; depths; stop
 * frames with levels; node and value kinds out of range; strings that
 * are not UTF-8 (overlong forms, surrogates, code points past U+10FFFF,
 * cut sequences); the manual queue's capacity and overflow policy (also
 * out of range) and the stop mode (also out of range).
 *
 * An oracle written from API.md and docs/BEHAVIOUR.md decides for each
 * batch whether it is well formed and which statuses the call may
 * return; the program aborts (a libFuzzer crash) when the library
 * answers otherwise, when a callback receives anything but an exact copy
 * of an accepted token, or when an OBJECT payload is released other than
 * exactly once for an accepted token and never for a refused one.
 *
 * Input layout (a byte reader that yields zeros past the end):
 *   byte 0     manual queue: capacity (low 4 bits), overflow (high bits,
 *              as a signed value minus 1, so -1 and 3..6 are out of
 *              range)
 *   byte 1     the stop mode, as a signed byte (only 0 and 1 are valid)
 *   byte 2     token count (0..8)
 *   then per token: flags, node kind, value kind, depth, and the fields
 *   those call for (see read_token).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dfmdispatch.h"

#define FUZZ_ASSERT(cond, ...)                                        \
    do {                                                              \
        if (!(cond)) {                                                \
            fprintf(stderr, "fuzz_tokens: %s:%d: %s\n    ", __FILE__, \
                    __LINE__, #cond);                                 \
            fprintf(stderr, __VA_ARGS__);                             \
            fprintf(stderr, "\n");                                    \
            abort();                                                  \
        }                                                             \
    } while (0)

#define MAX_TOKENS 8
#define MAX_STRING 64
#define MAX_TEXT 512
#define MAX_DEPTH 32

/* ---- Reading the input ------------------------------------------------ */

typedef struct reader {
    const uint8_t *data;
    size_t size;
    size_t at;
} reader;

static uint8_t read_byte(reader *in)
{
    return in->at < in->size ? in->data[in->at++] : 0;
}

/* Up to `limit` bytes into out; returns how many. */
static size_t read_bytes(reader *in, void *out, size_t count)
{
    size_t available = in->at < in->size ? in->size - in->at : 0;

    if (count > available)
        count = available;
    memcpy(out, in->data + in->at, count);
    in->at += count;
    return count;
}

static uint64_t read_u64(reader *in)
{
    uint64_t value = 0;
    int i;

    for (i = 0; i < 8; i++)
        value = value << 8 | read_byte(in);
    return value;
}

/* ---- The oracle ------------------------------------------------------- */

/* Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing
 * past U+10FFFF, no cut sequences.  NUL bytes are allowed. */
static bool utf8_valid(const unsigned char *s, size_t length)
{
    size_t i = 0;

    while (i < length) {
        unsigned char c = s[i];
        size_t need;
        uint32_t point;
        size_t k;

        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) {
            need = 1;
            point = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            point = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            point = c & 0x07;
        } else {
            return false;
        }
        if (length - i <= need)
            return false;
        for (k = 1; k <= need; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
            point = point << 6 | (s[i + k] & 0x3F);
        }
        if ((need == 2 && point < 0x800) || (need == 3 && point < 0x10000)
            || (point >= 0xD800 && point <= 0xDFFF) || point > 0x10FFFF)
            return false;
        i += need + 1;
    }
    return true;
}

static bool cstring_valid(const char *s)
{
    return s != NULL && utf8_valid((const unsigned char *)s, strlen(s));
}

/* Well formed, per API.md section 1 and BEHAVIOUR.md "Tokens". */
static bool token_valid(const dfm_token *token)
{
    const dfm_value *data = &token->data;

    if (!cstring_valid(token->source_site)
        || !cstring_valid(token->target_place))
        return false;
    switch ((int)token->source_node.kind) {
    case DFM_NODE_NONE:
    case DFM_NODE_INT:
        break;
    case DFM_NODE_NAME:
        if (!cstring_valid(token->source_node.name))
            return false;
        break;
    default:
        return false;
    }
    if (token->frame.depth > 0
        && (token->frame.levels == NULL || token->frame.is_stop))
        return false;

    switch ((int)data->kind) {
    case DFM_VALUE_NONE:
    case DFM_VALUE_BOOL:
    case DFM_VALUE_INT:
    case DFM_VALUE_DOUBLE:
    case DFM_VALUE_OBJECT:
    case DFM_VALUE_STOP:
        return true;
    case DFM_VALUE_STRING:
    case DFM_VALUE_JSON:
    case DFM_VALUE_ERROR:
        if (data->as.text.data == NULL)
            return data->as.text.length == 0;
        return utf8_valid((const unsigned char *)data->as.text.data,
                          data->as.text.length);
    case DFM_VALUE_BYTES:
        return data->as.bytes.data != NULL || data->as.bytes.length == 0;
    default:
        return false;
    }
}

/* ---- Building a batch -------------------------------------------------- */

/* Storage of one token's strings and arrays; a token points into it. */
typedef struct token_storage {
    char site[MAX_STRING + 1];
    char place[MAX_STRING + 1];
    char name[MAX_STRING + 1];
    char text[MAX_TEXT + 1];
    int64_t levels[MAX_DEPTH];
    bool fail;                 /* its callback reports failure */
} token_storage;

typedef struct batch {
    size_t count;
    dfm_token tokens[MAX_TOKENS];
    token_storage storage[MAX_TOKENS];
    int releases[2][MAX_TOKENS];   /* per dispatch round, per token */
} batch;

static void count_release(void *pointer)
{
    (*(int *)pointer)++;
}

/* A short string: its length byte, then its bytes.  A NUL among them
 * ends the C string early, which is fine: the library sees strlen. */
static void read_string(reader *in, char *out)
{
    size_t length = read_byte(in) % (MAX_STRING + 1);

    length = read_bytes(in, out, length);
    out[length] = '\0';
}

/* Flags of a token: which pointers are NULL, and a few choices. */
enum {
    NULL_SITE = 1 << 0,
    NULL_PLACE = 1 << 1,
    NULL_NAME = 1 << 2,
    NULL_LEVELS = 1 << 3,
    NULL_DATA = 1 << 4,
    STOP_FRAME = 1 << 5,
    NULL_RELEASE = 1 << 6,
    FAILS = 1 << 7
};

static void read_token(reader *in, dfm_token *token, token_storage *store,
                       int *release_counter)
{
    uint8_t flags = read_byte(in);
    int node_kind = (int8_t)read_byte(in);
    int value_kind = (int8_t)read_byte(in);
    size_t depth = read_byte(in) % (MAX_DEPTH + 1);
    size_t length;
    size_t i;

    memset(token, 0, sizeof *token);
    read_string(in, store->site);
    read_string(in, store->place);
    token->source_site = flags & NULL_SITE ? NULL : store->site;
    token->target_place = flags & NULL_PLACE ? NULL : store->place;

    token->source_node.kind = (dfm_node_kind)node_kind;
    token->source_node.id = (int64_t)read_u64(in);
    if (node_kind == DFM_NODE_NAME) {
        read_string(in, store->name);
        token->source_node.name = flags & NULL_NAME ? NULL : store->name;
    }

    for (i = 0; i < depth; i++)
        store->levels[i] = (int64_t)read_u64(in);
    token->frame.depth = depth;
    token->frame.levels = flags & NULL_LEVELS ? NULL : store->levels;
    token->frame.is_stop = (flags & STOP_FRAME) != 0;

    token->data.kind = (dfm_value_kind)value_kind;
    switch (value_kind) {
    case DFM_VALUE_BOOL:
        token->data.as.boolean = (read_byte(in) & 1) != 0;
        break;
    case DFM_VALUE_INT:
        token->data.as.integer = (int64_t)read_u64(in);
        break;
    case DFM_VALUE_DOUBLE: {
        uint64_t bits = read_u64(in);

        memcpy(&token->data.as.real, &bits, sizeof bits);
        break;
    }
    case DFM_VALUE_STRING:
    case DFM_VALUE_JSON:
    case DFM_VALUE_ERROR:
    case DFM_VALUE_BYTES:
        length = (size_t)read_byte(in) << 8;
        length = (length | read_byte(in)) % (MAX_TEXT + 1);
        length = read_bytes(in, store->text, length);
        store->text[length] = '\0';
        /* With NULL_DATA the pointer is NULL but the length stays: the
         * library must refuse that unless the length is 0. */
        if (value_kind == DFM_VALUE_BYTES) {
            token->data.as.bytes.data = flags & NULL_DATA ? NULL
                                                          : store->text;
            token->data.as.bytes.length = length;
        } else {
            token->data.as.text.data = flags & NULL_DATA ? NULL
                                                         : store->text;
            token->data.as.text.length = length;
        }
        break;
    case DFM_VALUE_OBJECT:
        token->data.as.object.pointer = release_counter;
        token->data.as.object.release =
            flags & NULL_RELEASE ? NULL : count_release;
        break;
    default:
        break;
    }
    store->fail = (flags & FAILS) != 0;
}

/* Points round's OBJECT payloads at that round's release counters. */
static void aim_objects(batch *b, int round)
{
    size_t i;

    for (i = 0; i < b->count; i++) {
        if ((int)b->tokens[i].data.kind == DFM_VALUE_OBJECT)
            b->tokens[i].data.as.object.pointer = &b->releases[round][i];
    }
}

/* ---- What the callbacks receive ---------------------------------------- */

/* The tokens a runner accepted, in order, and how far delivery got. */
typedef struct expectation {
    const batch *b;
    size_t accepted[2 * MAX_TOKENS];   /* token index of each accepted */
    int round[2 * MAX_TOKENS];
    size_t count;
    size_t next;                       /* the next one a callback may see */
    size_t delivered;
} expectation;

static bool same_cstring(const char *got, const char *sent)
{
    return got != NULL && sent != NULL && strcmp(got, sent) == 0;
}

/* True when got is an exact copy of sent (round's payload pointer). */
static bool same_token(const dfm_token *got, const dfm_token *sent,
                       const batch *b, size_t index, int round)
{
    const dfm_value *g = &got->data;
    const dfm_value *s = &sent->data;

    if (!same_cstring(got->source_site, sent->source_site)
        || !same_cstring(got->target_place, sent->target_place)
        || got->source_node.kind != sent->source_node.kind
        || got->frame.depth != sent->frame.depth
        || got->frame.is_stop != sent->frame.is_stop || g->kind != s->kind)
        return false;
    if (sent->source_node.kind == DFM_NODE_INT
        && got->source_node.id != sent->source_node.id)
        return false;
    if (sent->source_node.kind == DFM_NODE_NAME
        && !same_cstring(got->source_node.name, sent->source_node.name))
        return false;
    if (sent->frame.depth == 0 && got->frame.levels != NULL)
        return false;
    if (sent->frame.depth > 0
        && (got->frame.levels == NULL
            || memcmp(got->frame.levels, sent->frame.levels,
                      sent->frame.depth * sizeof(int64_t)) != 0))
        return false;

    switch ((int)s->kind) {
    case DFM_VALUE_BOOL:
        return g->as.boolean == s->as.boolean;
    case DFM_VALUE_INT:
        return g->as.integer == s->as.integer;
    case DFM_VALUE_DOUBLE:
        return memcmp(&g->as.real, &s->as.real, sizeof(double)) == 0;
    case DFM_VALUE_STRING:
    case DFM_VALUE_JSON:
    case DFM_VALUE_ERROR:
        /* Received text is NUL-terminated past its length. */
        return g->as.text.length == s->as.text.length
               && g->as.text.data != NULL
               && (s->as.text.length == 0
                   || memcmp(g->as.text.data, s->as.text.data,
                             s->as.text.length) == 0)
               && g->as.text.data[g->as.text.length] == '\0';
    case DFM_VALUE_BYTES:
        return g->as.bytes.length == s->as.bytes.length
               && (s->as.bytes.length == 0
                   || (g->as.bytes.data != NULL
                       && memcmp(g->as.bytes.data, s->as.bytes.data,
                                 s->as.bytes.length) == 0));
    case DFM_VALUE_OBJECT:
        return g->as.object.pointer == &b->releases[round][index]
               && g->as.object.release == s->as.object.release
               && b->releases[round][index] == 0;
    default:
        return true;
    }
}

/* Checks a delivered token against the accepted ones: it must be the
 * next one, or a later one when older ones were discarded (drop-oldest).
 * Returns whether its callback fails on purpose. */
static int expect_callback(const dfm_token *token, void *user_data)
{
    expectation *e = (expectation *)user_data;

    while (e->next < e->count) {
        size_t index = e->accepted[e->next];
        int round = e->round[e->next];

        e->next++;
        if (same_token(token, &e->b->tokens[index], e->b, index, round)) {
            e->delivered++;
            return e->b->storage[index].fail ? 1 : 0;
        }
    }
    FUZZ_ASSERT(false, "a callback received a token that was not "
                "accepted, or not an exact copy of it");
    return 0;
}

static void accept_batch(expectation *e, const batch *b, int round)
{
    size_t i;

    for (i = 0; i < b->count; i++) {
        e->accepted[e->count] = i;
        e->round[e->count] = round;
        e->count++;
    }
}

/* ---- The runners ----------------------------------------------------- */

static dfm_runner *runner_of(dfm_dispatcher *dispatcher, expectation *e)
{
    dfm_callbacks *set = dfm_callbacks_create();
    dfm_runner *runner = NULL;
    int status;

    FUZZ_ASSERT(set != NULL && dispatcher != NULL, "%s", dfm_last_error());
    FUZZ_ASSERT(dfm_callbacks_set_default(set, expect_callback, e) == DFM_OK,
                "set_default");
    status = dfm_dispatcher_create_runner(dispatcher, set, &runner);
    FUZZ_ASSERT(status == DFM_OK, "create_runner: %s",
                dfm_status_name(status));
    dfm_callbacks_destroy(set);
    dfm_dispatcher_destroy(dispatcher);
    return runner;
}

static bool any_fails(const batch *b)
{
    size_t i;

    for (i = 0; i < b->count; i++) {
        if (b->storage[i].fail)
            return true;
    }
    return false;
}

/* Each accepted round's OBJECT payloads released once, others never. */
static void check_releases(const batch *b, const bool accepted[2])
{
    int round;
    size_t i;

    for (round = 0; round < 2; round++) {
        for (i = 0; i < b->count; i++) {
            const dfm_token *token = &b->tokens[i];
            int want = accepted[round]
                       && (int)token->data.kind == DFM_VALUE_OBJECT
                       && token->data.as.object.release != NULL;

            FUZZ_ASSERT(b->releases[round][i] == want,
                        "round %d token %zu: released %d times, expected "
                        "%d", round, i, b->releases[round][i], want);
        }
    }
}

static void check_refusal(int status)
{
    FUZZ_ASSERT(dfm_last_error()[0] != '\0', "%s without a message",
                dfm_status_name(status));
}

/* The direct runner: the batch once.  Well formed: its callbacks run
 * inside the call, OK or CALLBACK_FAILED; else INVALID_ARGUMENT and no
 * callback. */
static void run_direct(batch *b, bool valid)
{
    expectation e;
    dfm_runner *runner;
    bool accepted[2] = { false, false };
    int status;

    memset(&e, 0, sizeof e);
    e.b = b;
    memset(b->releases, 0, sizeof b->releases);
    runner = runner_of(dfm_direct_dispatcher_create(), &e);
    aim_objects(b, 0);
    if (valid)
        accept_batch(&e, b, 0);

    status = dfm_runner_dispatch(runner, b->tokens, b->count);
    if (!valid || b->count == 0) {
        FUZZ_ASSERT(status == (b->count == 0 ? DFM_OK
                                             : DFM_ERR_INVALID_ARGUMENT),
                    "direct: %s for a batch the oracle refuses",
                    dfm_status_name(status));
        if (status != DFM_OK)
            check_refusal(status);
    } else {
        int want = any_fails(b) ? DFM_ERR_CALLBACK_FAILED : DFM_OK;

        FUZZ_ASSERT(status == want, "direct: %s, expected %s (%s)",
                    dfm_status_name(status), dfm_status_name(want),
                    dfm_last_error());
        FUZZ_ASSERT(e.delivered == b->count, "direct: %zu of %zu "
                    "delivered", e.delivered, b->count);
        accepted[0] = true;
    }
    dfm_runner_destroy(runner);
    check_releases(b, accepted);
}

/* The statuses a manual runner (owned by this thread) may give a batch
 * of n tokens with `pending` already queued. */
static bool manual_status_ok(int status, bool valid, size_t n,
                             uint64_t pending, size_t capacity,
                             int overflow)
{
    if (n == 0)
        return status == DFM_OK;
    if (!valid)
        return status == DFM_ERR_INVALID_ARGUMENT;
    if (capacity == 0 || pending + n <= capacity)
        return status == DFM_OK;
    switch (overflow) {
    case DFM_OVERFLOW_FAIL:
        return status == DFM_ERR_QUEUE_FULL;
    case DFM_OVERFLOW_DROP_OLDEST:
        return status == (n <= capacity ? DFM_OK : DFM_ERR_QUEUE_FULL);
    case DFM_OVERFLOW_BLOCK:
        /* The owner may not wait; a batch that can never fit is refused
         * either way. */
        if (n > capacity)
            return status == DFM_ERR_QUEUE_FULL
                   || status == DFM_ERR_WRONG_THREAD;
        return status == DFM_ERR_WRONG_THREAD;
    default:
        return false;
    }
}

/* The manual runner: the batch twice (fresh payloads each time), then
 * a pump, a stop with the fuzzed mode, and destroy. */
static void run_manual(batch *b, bool valid, size_t capacity, int overflow,
                       int stop_mode)
{
    dfm_manual_options options;
    dfm_dispatcher *dispatcher;
    expectation e;
    dfm_runner *runner;
    bool accepted[2] = { false, false };
    uint64_t discarded = 0;
    dfm_stats stats;
    int round;
    int status;

    dfm_manual_options_init(&options);
    options.capacity = capacity;
    options.overflow = (dfm_overflow)overflow;
    dispatcher = dfm_manual_dispatcher_create(&options);
    if (overflow < DFM_OVERFLOW_FAIL || overflow > DFM_OVERFLOW_DROP_OLDEST) {
        FUZZ_ASSERT(dispatcher == NULL, "overflow %d was accepted",
                    overflow);
        FUZZ_ASSERT(dfm_last_error()[0] != '\0', "no message");
        options.overflow = DFM_OVERFLOW_FAIL;
        overflow = DFM_OVERFLOW_FAIL;
        dispatcher = dfm_manual_dispatcher_create(&options);
    }

    memset(&e, 0, sizeof e);
    e.b = b;
    memset(b->releases, 0, sizeof b->releases);
    runner = runner_of(dispatcher, &e);

    /* Own the runner first, so a blocking dispatch is refused at once
     * instead of waiting for a pump that would never come. */
    status = dfm_process_pending(runner);
    FUZZ_ASSERT(status == DFM_OK, "first pump: %s", dfm_status_name(status));

    for (round = 0; round < 2; round++) {
        uint64_t pending;

        FUZZ_ASSERT(dfm_runner_stats(runner, &stats) == DFM_OK, "stats");
        pending = stats.pending;
        aim_objects(b, round);
        status = dfm_runner_dispatch(runner, b->tokens, b->count);
        FUZZ_ASSERT(manual_status_ok(status, valid, b->count, pending,
                                     capacity, overflow),
                    "manual round %d: %s for %zu tokens (%s), %llu "
                    "pending, capacity %zu, overflow %d: %s", round,
                    dfm_status_name(status), b->count,
                    valid ? "well formed" : "malformed",
                    (unsigned long long)pending, capacity, overflow,
                    dfm_last_error());
        if (status == DFM_OK) {
            accepted[round] = b->count > 0;
            accept_batch(&e, b, round);
        } else {
            check_refusal(status);
        }
    }

    status = dfm_process_pending(runner);
    FUZZ_ASSERT(status == DFM_OK || status == DFM_ERR_CALLBACK_FAILED,
                "pump: %s", dfm_status_name(status));
    FUZZ_ASSERT(dfm_runner_stats(runner, &stats) == DFM_OK, "stats");
    discarded = stats.discarded;
    FUZZ_ASSERT(stats.pending == 0 && e.delivered + discarded == e.count
                    && stats.delivered + stats.failed == e.delivered
                    && stats.dispatched == e.count,
                "manual: accepted %zu, delivered %zu, discarded %llu, "
                "pending %llu", e.count, e.delivered,
                (unsigned long long)discarded,
                (unsigned long long)stats.pending);
    FUZZ_ASSERT((status == DFM_ERR_CALLBACK_FAILED) == (stats.failed > 0),
                "pump %s with %llu failed", dfm_status_name(status),
                (unsigned long long)stats.failed);

    status = dfm_runner_stop(runner, (dfm_stop_mode)stop_mode);
    FUZZ_ASSERT(status == (stop_mode == DFM_STOP_DRAIN
                                   || stop_mode == DFM_STOP_DISCARD
                               ? DFM_OK : DFM_ERR_INVALID_ARGUMENT),
                "stop(%d): %s", stop_mode, dfm_status_name(status));
    dfm_runner_destroy(runner);
    check_releases(b, accepted);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    reader in;
    batch *b = (batch *)calloc(1, sizeof *b);
    uint8_t queue;
    int stop_mode;
    bool valid = true;
    size_t i;

    if (b == NULL)
        return 0;
    in.data = data;
    in.size = size;
    in.at = 0;
    queue = read_byte(&in);
    stop_mode = (int8_t)read_byte(&in);
    b->count = read_byte(&in) % (MAX_TOKENS + 1);
    for (i = 0; i < b->count; i++) {
        read_token(&in, &b->tokens[i], &b->storage[i], &b->releases[0][i]);
        valid = valid && token_valid(&b->tokens[i]);
    }

    run_direct(b, valid);
    run_manual(b, valid, queue & 0x0F, (int)(queue >> 4) - 1, stop_mode);
    free(b);
    return 0;
}
