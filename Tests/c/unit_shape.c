/*
 * unit_shape.c - unit test of the shaped-callback layer (shaped.c): the
 * shape parser and its messages, the type checks at call time, and the two
 * ways to call (precompiled stubs and libffi), which must pass the callee
 * the very same bits.
 *
 * It compiles shaped*.c directly, so it needs neither Swift nor the built
 * library.  From the repository root:
 *
 *   cc -std=c99 -Wall -Wextra -pedantic -Werror -I include \
 *       -I Sources/CDFMShim/include Sources/CDFMShim/src/shaped*.c \
 *       Tests/c/unit_shape.c -lffi -o unit_shape && ./unit_shape
 *
 * Add -DCDFM_SHAPE_NO_STUBS to test the libffi-only build, and
 * -fsanitize=address,undefined or valgrind to check memory.  The last line
 * is "N passed, M failed"; the exit status is non-zero on any failure.
 */
#include "cdfm_shaped.h"

#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Mirrors the compile-time choice in shaped.c: where stubs exist, every
 * stub-eligible shape must get one. */
#if !defined(CDFM_SHAPE_NO_STUBS) \
    && (defined(__x86_64__) || defined(_M_X64) \
        || defined(__aarch64__) || defined(_M_ARM64)) \
    && UINTPTR_MAX == UINT64_MAX && SIZE_MAX == UINT64_MAX
#  define STUBS_EXPECTED true
#else
#  define STUBS_EXPECTED false
#endif

#define FN(function) ((void (*)(void))(function))

/* ---- Checks ----------------------------------------------------------- */

static int passed;
static int failed;

#define CHECK(condition, ...) \
    check((condition), __LINE__, #condition, __VA_ARGS__)

static void check(bool condition, int line, const char *expression,
                  const char *format, ...) {
    va_list arguments;

    if (condition) {
        passed++;
        return;
    }
    failed++;
    fprintf(stderr, "FAIL line %d: %s: ", line, expression);
    va_start(arguments, format);
    vfprintf(stderr, format, arguments);
    va_end(arguments);
    fputc('\n', stderr);
}

/* ---- What the callee received ----------------------------------------- */

/* Every test function records each argument it receives as a kind letter
 * and its 64 bits, so the two call paths can be compared bit for bit:
 * 'p' pointer, 'i' int64_t, 'z' size_t, 'd' double, 'b' bool, 'n' int. */
typedef struct record {
    int calls;
    size_t count;
    char kinds[32];
    uint64_t bits[32];
} record;

static record recorded;
static int next_result;

static void record_add(record *target, char kind, uint64_t bits) {
    if (target->count < 32) {
        target->kinds[target->count] = kind;
        target->bits[target->count] = bits;
    }
    target->count++;
}

static void rec_begin(void) {
    recorded.calls++;
    recorded.count = 0;
}

static void rec_p(const void *value) {
    record_add(&recorded, 'p', (uint64_t)(uintptr_t)value);
}

static void rec_i(int64_t value) {
    record_add(&recorded, 'i', (uint64_t)value);
}

static void rec_z(size_t value) {
    record_add(&recorded, 'z', (uint64_t)value);
}

static uint64_t double_bits(double value) {
    uint64_t bits;

    memcpy(&bits, &value, sizeof bits);
    return bits;
}

static void rec_d(double value) {
    record_add(&recorded, 'd', double_bits(value));
}

static void rec_b(bool value) {
    record_add(&recorded, 'b', (uint64_t)value);
}

static void rec_n(int value) {
    record_add(&recorded, 'n', (uint64_t)(int64_t)value);
}

static bool records_equal(const record *a, const record *b) {
    return a->count == b->count && a->count <= 32
        && memcmp(a->kinds, b->kinds, a->count) == 0
        && memcmp(a->bits, b->bits, a->count * sizeof a->bits[0]) == 0;
}

static void describe_record(const record *r, char *out, size_t size) {
    size_t used = 0;
    size_t index;

    out[0] = '\0';
    for (index = 0; index < r->count && index < 32; index++) {
        int written = snprintf(out + used, size - used, "%s%c:%" PRIx64,
                               index == 0 ? "" : " ", r->kinds[index],
                               r->bits[index]);

        if (written < 0 || (size_t)written >= size - used)
            break;
        used += (size_t)written;
    }
}

/* ---- The token -------------------------------------------------------- */

static const int64_t test_levels[] = { 0, 2 };
static unsigned char test_bytes[] = { 0xde, 0xad, 0x00, 0xbe, 0xef };
static int test_object;

static dfm_token make_token(void) {
    dfm_token token;

    memset(&token, 0, sizeof token);
    token.source_site = "site-a";
    token.source_node.kind = DFM_NODE_INT;
    token.source_node.id = 11;
    token.frame.levels = test_levels;
    token.frame.depth = 2;
    token.target_place = "temperature";
    token.data.kind = DFM_VALUE_INT;
    token.data.as.integer = 7;
    return token;
}

static void set_double(dfm_token *token, double value) {
    token->data.kind = DFM_VALUE_DOUBLE;
    token->data.as.real = value;
}

static void set_text(dfm_token *token, dfm_value_kind kind,
                     const char *text) {
    token->data.kind = kind;
    token->data.as.text.data = text;
    token->data.as.text.length = text != NULL ? strlen(text) : 0;
}

static void set_bytes(dfm_token *token) {
    token->data.kind = DFM_VALUE_BYTES;
    token->data.as.bytes.data = test_bytes;
    token->data.as.bytes.length = sizeof test_bytes;
}

static void set_bool(dfm_token *token, bool value) {
    token->data.kind = DFM_VALUE_BOOL;
    token->data.as.boolean = value;
}

static void set_object(dfm_token *token) {
    token->data.kind = DFM_VALUE_OBJECT;
    token->data.as.object.pointer = &test_object;
    token->data.as.object.release = NULL;
}

/* ---- What the callee should receive ----------------------------------- */

/* An independent model of the getters: what each argument name passes. */
static bool expect_argument(record *e, const char *name, bool variadic,
                            const dfm_token *token, void *user) {
    const dfm_value *data = &token->data;

    if (strcmp(name, "site") == 0)
        record_add(e, 'p', (uintptr_t)token->source_site);
    else if (strcmp(name, "place") == 0)
        record_add(e, 'p', (uintptr_t)token->target_place);
    else if (strcmp(name, "node") == 0)
        record_add(e, 'p', (uintptr_t)&token->source_node);
    else if (strcmp(name, "node.int") == 0)
        record_add(e, 'i', (uint64_t)token->source_node.id);
    else if (strcmp(name, "node.name") == 0)
        record_add(e, 'p', (uintptr_t)token->source_node.name);
    else if (strcmp(name, "frame") == 0)
        record_add(e, 'p', (uintptr_t)&token->frame);
    else if (strcmp(name, "frame.levels") == 0)
        record_add(e, 'p', (uintptr_t)token->frame.levels);
    else if (strcmp(name, "frame.depth") == 0)
        record_add(e, 'z', (uint64_t)token->frame.depth);
    else if (strcmp(name, "data") == 0)
        record_add(e, 'p', (uintptr_t)data);
    else if (strcmp(name, "data.bool") == 0)
        record_add(e, variadic ? 'n' : 'b', data->as.boolean ? 1 : 0);
    else if (strcmp(name, "data.int") == 0)
        record_add(e, 'i', (uint64_t)data->as.integer);
    else if (strcmp(name, "data.double") == 0)
        record_add(e, 'd', double_bits(data->kind == DFM_VALUE_INT
                                           ? (double)data->as.integer
                                           : data->as.real));
    else if (strcmp(name, "data.string") == 0)
        record_add(e, 'p', (uintptr_t)(data->as.text.data != NULL
                                           ? data->as.text.data
                                           : ""));
    else if (strcmp(name, "data.bytes") == 0) {
        if (data->kind == DFM_VALUE_BYTES) {
            record_add(e, 'p', (uintptr_t)data->as.bytes.data);
            record_add(e, 'z', (uint64_t)data->as.bytes.length);
        } else {
            record_add(e, 'p', (uintptr_t)data->as.text.data);
            record_add(e, 'z', (uint64_t)data->as.text.length);
        }
    } else if (strcmp(name, "data.object") == 0)
        record_add(e, 'p', (uintptr_t)data->as.object.pointer);
    else if (strcmp(name, "token") == 0)
        record_add(e, 'p', (uintptr_t)token);
    else if (strcmp(name, "user") == 0)
        record_add(e, 'p', (uintptr_t)user);
    else
        return false;
    return true;
}

/* Builds the expected record of a well-formed shape by splitting its
 * argument list on commas. */
static bool expect_shape(record *e, const char *shape,
                         const dfm_token *token, void *user) {
    const char *at = strchr(shape, '(');
    bool variadic = false;

    memset(e, 0, sizeof *e);
    if (at == NULL)
        return false;
    at++;
    for (;;) {
        char name[32];
        size_t length = 0;

        while (*at == ' ' || *at == '\t')
            at++;
        if (*at == ')')
            return true;
        while (*at != ',' && *at != ')' && *at != ' ' && *at != '\t'
               && *at != '\0' && length < sizeof name - 1)
            name[length++] = *at++;
        name[length] = '\0';
        while (*at == ' ' || *at == '\t')
            at++;

        if (strcmp(name, "...") == 0)
            variadic = true;
        else if (!expect_argument(e, name, variadic, token, user))
            return false;

        if (*at == ',')
            at++;
        else if (*at != ')')
            return false;
    }
}

/* ---- Calling both ways ------------------------------------------------ */

/* Creates the shape, calls it through cdfm_shape_call and through
 * cdfm_shape_call_ffi, and checks that both delivered exactly what the
 * model expects and returned the same value. */
static void check_call(const char *shape_text, void (*function)(void),
                       const dfm_token *token, void *user,
                       bool expect_stub, int expected_result) {
    cdfm_shape *shape = NULL;
    char message[512] = "";
    record expected, by_stub, by_ffi;
    char seen[600], wanted[600];
    int result = 12345;
    int status;

    status = cdfm_shape_create(shape_text, function, &shape, message,
                               sizeof message);
    CHECK(status == DFM_OK, "create '%s': %d %s", shape_text, status,
          message);
    if (status != DFM_OK)
        return;
    CHECK(cdfm_shape_has_stub(shape) == (expect_stub && STUBS_EXPECTED),
          "'%s': has_stub is %d", shape_text, cdfm_shape_has_stub(shape));
    CHECK(expect_shape(&expected, shape_text, token, user),
          "'%s': the test's own model cannot read it", shape_text);

    recorded.calls = 0;
    status = cdfm_shape_call(shape, token, user, &result, message,
                             sizeof message);
    by_stub = recorded;
    CHECK(status == DFM_OK, "call '%s': %d %s", shape_text, status,
          message);
    CHECK(by_stub.calls == 1, "'%s': called %d times", shape_text,
          by_stub.calls);
    CHECK(result == expected_result, "'%s': result %d, expected %d",
          shape_text, result, expected_result);

    result = 12345;
    recorded.calls = 0;
    status = cdfm_shape_call_ffi(shape, token, user, &result, message,
                                 sizeof message);
    by_ffi = recorded;
    CHECK(status == DFM_OK, "call_ffi '%s': %d %s", shape_text, status,
          message);
    CHECK(by_ffi.calls == 1, "'%s': ffi called %d times", shape_text,
          by_ffi.calls);
    CHECK(result == expected_result, "'%s': ffi result %d, expected %d",
          shape_text, result, expected_result);

    describe_record(&by_stub, seen, sizeof seen);
    describe_record(&by_ffi, wanted, sizeof wanted);
    CHECK(records_equal(&by_stub, &by_ffi),
          "'%s': paths differ: call [%s], call_ffi [%s]", shape_text, seen,
          wanted);
    describe_record(&expected, wanted, sizeof wanted);
    CHECK(records_equal(&by_stub, &expected),
          "'%s': received [%s], expected [%s]", shape_text, seen, wanted);

    cdfm_shape_destroy(shape);
}

/* Prefixes "void" and "int" to an argument list and checks both. */
static void check_pair(const char *arguments, void (*returns_void)(void),
                       void (*returns_int)(void), const dfm_token *token,
                       void *user, bool expect_stub) {
    char shape[256];

    snprintf(shape, sizeof shape, "void(%s)", arguments);
    check_call(shape, returns_void, token, user, expect_stub, 0);

    next_result = -1234567;
    snprintf(shape, sizeof shape, "int(%s)", arguments);
    check_call(shape, returns_int, token, user, expect_stub, next_result);

    next_result = INT_MIN;
    check_call(shape, returns_int, token, user, expect_stub, INT_MIN);
    next_result = 0;
}

/* ---- Test functions --------------------------------------------------- */

/* Each PAIR is one recording function in two versions, returning void and
 * returning int, with exactly the C prototype its shape describes. */
#define PAIR(name, parameters, body) \
    static void v_##name parameters { rec_begin(); body } \
    static int i_##name parameters { rec_begin(); body return next_result; }

/* One argument of each C type. */
PAIR(string, (const char *a0), rec_p(a0);)
PAIR(node, (const dfm_node *a0), rec_p(a0);)
PAIR(int64, (int64_t a0), rec_i(a0);)
PAIR(frame, (const dfm_frame *a0), rec_p(a0);)
PAIR(levels, (const int64_t *a0), rec_p(a0);)
PAIR(size, (size_t a0), rec_z(a0);)
PAIR(value, (const dfm_value *a0), rec_p(a0);)
PAIR(boolean, (bool a0), rec_b(a0);)
PAIR(real, (double a0), rec_d(a0);)
PAIR(bytes, (const void *a0, size_t a1), rec_p(a0); rec_z(a1);)
PAIR(pointer, (void *a0), rec_p(a0);)
PAIR(token, (const dfm_token *a0), rec_p(a0);)
PAIR(int64_pair, (int64_t a0, int64_t a1), rec_i(a0); rec_i(a1);)
PAIR(levels_depth, (const int64_t *a0, size_t a1), rec_p(a0); rec_z(a1);)

/* The prefixes of the benchmark shape
 * "void(site, node.int, frame.levels, place, data.int, user)": every
 * all-word stub from zero to six arguments. */
PAIR(w0, (void), )
PAIR(w1, (const char *a0), rec_p(a0);)
PAIR(w2, (const char *a0, int64_t a1), rec_p(a0); rec_i(a1);)
PAIR(w3, (const char *a0, int64_t a1, const int64_t *a2),
     rec_p(a0); rec_i(a1); rec_p(a2);)
PAIR(w4, (const char *a0, int64_t a1, const int64_t *a2, const char *a3),
     rec_p(a0); rec_i(a1); rec_p(a2); rec_p(a3);)
PAIR(w5, (const char *a0, int64_t a1, const int64_t *a2, const char *a3,
          int64_t a4),
     rec_p(a0); rec_i(a1); rec_p(a2); rec_p(a3); rec_i(a4);)
PAIR(w6, (const char *a0, int64_t a1, const int64_t *a2, const char *a3,
          int64_t a4, void *a5),
     rec_p(a0); rec_i(a1); rec_p(a2); rec_p(a3); rec_i(a4); rec_p(a5);)

/* Arguments that are not token fields: user_data, and the addresses of
 * the node, the frame, the data and the token.  Shapes with one of them
 * and shapes with several use different stubs in shaped.c. */
PAIR(user_first, (void *a0, const char *a1, int64_t a2),
     rec_p(a0); rec_p(a1); rec_i(a2);)
PAIR(value_int, (const dfm_value *a0, int64_t a1), rec_p(a0); rec_i(a1);)
PAIR(token_user, (const dfm_token *a0, void *a1), rec_p(a0); rec_p(a1);)
PAIR(addresses, (const dfm_node *a0, const dfm_frame *a1,
                 const dfm_value *a2, void *a3, double a4),
     rec_p(a0); rec_p(a1); rec_p(a2); rec_p(a3); rec_d(a4);)
PAIR(users, (void *a0, const char *a1, void *a2), rec_p(a0); rec_p(a1);
     rec_p(a2);)

/* One such argument last (the "last" stubs) at every arity, with and
 * without a double, and in the middle (the "one" stubs). */
PAIR(u1, (void *a0), rec_p(a0);)
PAIR(w1u, (const char *a0, void *a1), rec_p(a0); rec_p(a1);)
PAIR(w2u, (const char *a0, int64_t a1, void *a2),
     rec_p(a0); rec_i(a1); rec_p(a2);)
PAIR(w3u, (const char *a0, int64_t a1, const int64_t *a2, void *a3),
     rec_p(a0); rec_i(a1); rec_p(a2); rec_p(a3);)
PAIR(w4u, (const char *a0, int64_t a1, const int64_t *a2, const char *a3,
           void *a4),
     rec_p(a0); rec_i(a1); rec_p(a2); rec_p(a3); rec_p(a4);)
PAIR(site_value, (const char *a0, const dfm_value *a1),
     rec_p(a0); rec_p(a1);)
PAIR(site_node_token, (const char *a0, int64_t a1, const dfm_token *a2),
     rec_p(a0); rec_i(a1); rec_p(a2);)
PAIR(site_user_place, (const char *a0, void *a1, const char *a2),
     rec_p(a0); rec_p(a1); rec_p(a2);)
PAIR(site_node_data, (const char *a0, const dfm_node *a1, int64_t a2),
     rec_p(a0); rec_p(a1); rec_i(a2);)
PAIR(real_user, (double a0, void *a1), rec_d(a0); rec_p(a1);)
PAIR(site_real_token, (const char *a0, double a1, const dfm_token *a2),
     rec_p(a0); rec_d(a1); rec_p(a2);)
PAIR(real_user_site, (double a0, void *a1, const char *a2),
     rec_d(a0); rec_p(a1); rec_p(a2);)

typedef struct stub_case {
    const char *arguments;
    void (*returns_void)(void);
    void (*returns_int)(void);
} stub_case;

static const stub_case word_cases[] = {
    { "", FN(v_w0), FN(i_w0) },
    { "site", FN(v_w1), FN(i_w1) },
    { "site, node.int", FN(v_w2), FN(i_w2) },
    { "site, node.int, frame.levels", FN(v_w3), FN(i_w3) },
    { "site, node.int, frame.levels, place", FN(v_w4), FN(i_w4) },
    { "site, node.int, frame.levels, place, data.int",
      FN(v_w5), FN(i_w5) },
    { "site, node.int, frame.levels, place, data.int, user",
      FN(v_w6), FN(i_w6) },
};

/* One double at every position among up to five word arguments: every
 * double stub. */
PAIR(d1_0, (double a0),
     rec_d(a0);)
PAIR(d2_0, (double a0, const char *a1),
     rec_d(a0); rec_p(a1);)
PAIR(d2_1, (const char *a0, double a1),
     rec_p(a0); rec_d(a1);)
PAIR(d3_0, (double a0, const char *a1, int64_t a2),
     rec_d(a0); rec_p(a1); rec_i(a2);)
PAIR(d3_1, (const char *a0, double a1, int64_t a2),
     rec_p(a0); rec_d(a1); rec_i(a2);)
PAIR(d3_2, (const char *a0, int64_t a1, double a2),
     rec_p(a0); rec_i(a1); rec_d(a2);)
PAIR(d4_0, (double a0, const char *a1, int64_t a2, const int64_t *a3),
     rec_d(a0); rec_p(a1); rec_i(a2); rec_p(a3);)
PAIR(d4_1, (const char *a0, double a1, int64_t a2, const int64_t *a3),
     rec_p(a0); rec_d(a1); rec_i(a2); rec_p(a3);)
PAIR(d4_2, (const char *a0, int64_t a1, double a2, const int64_t *a3),
     rec_p(a0); rec_i(a1); rec_d(a2); rec_p(a3);)
PAIR(d4_3, (const char *a0, int64_t a1, const int64_t *a2, double a3),
     rec_p(a0); rec_i(a1); rec_p(a2); rec_d(a3);)
PAIR(d5_0, (double a0, const char *a1, int64_t a2, const int64_t *a3,
           const char *a4),
     rec_d(a0); rec_p(a1); rec_i(a2); rec_p(a3); rec_p(a4);)
PAIR(d5_1, (const char *a0, double a1, int64_t a2, const int64_t *a3,
           const char *a4),
     rec_p(a0); rec_d(a1); rec_i(a2); rec_p(a3); rec_p(a4);)
PAIR(d5_2, (const char *a0, int64_t a1, double a2, const int64_t *a3,
           const char *a4),
     rec_p(a0); rec_i(a1); rec_d(a2); rec_p(a3); rec_p(a4);)
PAIR(d5_3, (const char *a0, int64_t a1, const int64_t *a2, double a3,
           const char *a4),
     rec_p(a0); rec_i(a1); rec_p(a2); rec_d(a3); rec_p(a4);)
PAIR(d5_4, (const char *a0, int64_t a1, const int64_t *a2, const char *a3,
           double a4),
     rec_p(a0); rec_i(a1); rec_p(a2); rec_p(a3); rec_d(a4);)
PAIR(d6_0, (double a0, const char *a1, int64_t a2, const int64_t *a3,
           const char *a4, size_t a5),
     rec_d(a0); rec_p(a1); rec_i(a2); rec_p(a3); rec_p(a4); rec_z(a5);)
PAIR(d6_1, (const char *a0, double a1, int64_t a2, const int64_t *a3,
           const char *a4, size_t a5),
     rec_p(a0); rec_d(a1); rec_i(a2); rec_p(a3); rec_p(a4); rec_z(a5);)
PAIR(d6_2, (const char *a0, int64_t a1, double a2, const int64_t *a3,
           const char *a4, size_t a5),
     rec_p(a0); rec_i(a1); rec_d(a2); rec_p(a3); rec_p(a4); rec_z(a5);)
PAIR(d6_3, (const char *a0, int64_t a1, const int64_t *a2, double a3,
           const char *a4, size_t a5),
     rec_p(a0); rec_i(a1); rec_p(a2); rec_d(a3); rec_p(a4); rec_z(a5);)
PAIR(d6_4, (const char *a0, int64_t a1, const int64_t *a2, const char *a3,
           double a4, size_t a5),
     rec_p(a0); rec_i(a1); rec_p(a2); rec_p(a3); rec_d(a4); rec_z(a5);)
PAIR(d6_5, (const char *a0, int64_t a1, const int64_t *a2, const char *a3,
           size_t a4, double a5),
     rec_p(a0); rec_i(a1); rec_p(a2); rec_p(a3); rec_z(a4); rec_d(a5);)


static const stub_case double_cases[] = {
    { "data.double", FN(v_d1_0), FN(i_d1_0) },
    { "data.double, site", FN(v_d2_0), FN(i_d2_0) },
    { "site, data.double", FN(v_d2_1), FN(i_d2_1) },
    { "data.double, site, node.int", FN(v_d3_0), FN(i_d3_0) },
    { "site, data.double, node.int", FN(v_d3_1), FN(i_d3_1) },
    { "site, node.int, data.double", FN(v_d3_2), FN(i_d3_2) },
    { "data.double, site, node.int, "
      "frame.levels",
      FN(v_d4_0), FN(i_d4_0) },
    { "site, data.double, node.int, "
      "frame.levels",
      FN(v_d4_1), FN(i_d4_1) },
    { "site, node.int, data.double, "
      "frame.levels",
      FN(v_d4_2), FN(i_d4_2) },
    { "site, node.int, frame.levels, "
      "data.double",
      FN(v_d4_3), FN(i_d4_3) },
    { "data.double, site, node.int, "
      "frame.levels, place",
      FN(v_d5_0), FN(i_d5_0) },
    { "site, data.double, node.int, "
      "frame.levels, place",
      FN(v_d5_1), FN(i_d5_1) },
    { "site, node.int, data.double, "
      "frame.levels, place",
      FN(v_d5_2), FN(i_d5_2) },
    { "site, node.int, frame.levels, "
      "data.double, place",
      FN(v_d5_3), FN(i_d5_3) },
    { "site, node.int, frame.levels, place, "
      "data.double",
      FN(v_d5_4), FN(i_d5_4) },
    { "data.double, site, node.int, "
      "frame.levels, place, frame.depth",
      FN(v_d6_0), FN(i_d6_0) },
    { "site, data.double, node.int, "
      "frame.levels, place, frame.depth",
      FN(v_d6_1), FN(i_d6_1) },
    { "site, node.int, data.double, "
      "frame.levels, place, frame.depth",
      FN(v_d6_2), FN(i_d6_2) },
    { "site, node.int, frame.levels, "
      "data.double, place, frame.depth",
      FN(v_d6_3), FN(i_d6_3) },
    { "site, node.int, frame.levels, place, "
      "data.double, frame.depth",
      FN(v_d6_4), FN(i_d6_4) },
    { "site, node.int, frame.levels, place, "
      "frame.depth, data.double",
      FN(v_d6_5), FN(i_d6_5) },
};

/* Shapes that libffi must call: seven arguments, two doubles, a bool,
 * and the sixteen-argument limit. */
PAIR(seven, (const char *a0, const char *a1, const dfm_node *a2,
             const dfm_frame *a3, const dfm_value *a4, const dfm_token *a5,
             void *a6),
     rec_p(a0); rec_p(a1); rec_p(a2); rec_p(a3); rec_p(a4); rec_p(a5);
     rec_p(a6);)
PAIR(two_doubles, (double a0, int64_t a1, double a2),
     rec_d(a0); rec_i(a1); rec_d(a2);)
PAIR(with_bool, (const char *a0, bool a1, void *a2),
     rec_p(a0); rec_b(a1); rec_p(a2);)
PAIR(sixteen, (const void *a0, size_t a1, const void *a2, size_t a3,
               const void *a4, size_t a5, const void *a6, size_t a7,
               const void *a8, size_t a9, const void *a10, size_t a11,
               const void *a12, size_t a13, const void *a14, size_t a15),
     rec_p(a0); rec_z(a1); rec_p(a2); rec_z(a3); rec_p(a4); rec_z(a5);
     rec_p(a6); rec_z(a7); rec_p(a8); rec_z(a9); rec_p(a10); rec_z(a11);
     rec_p(a12); rec_z(a13); rec_p(a14); rec_z(a15);)

/* Variadic functions read what follows their named parameters as `spec`
 * says: 's' const char *, 'c' const void *, 'p' void *, 't' const
 * dfm_token *, 'i' int64_t, 'z' size_t, 'd' double, 'n' int (a promoted
 * bool). */
static void read_variadic(const char *spec, va_list *arguments) {
    for (; *spec != '\0'; spec++) {
        switch (*spec) {
        case 's':
            rec_p(va_arg(*arguments, const char *));
            break;
        case 'c':
            rec_p(va_arg(*arguments, const void *));
            break;
        case 'p':
            rec_p(va_arg(*arguments, void *));
            break;
        case 't':
            rec_p(va_arg(*arguments, const dfm_token *));
            break;
        case 'i':
            rec_i(va_arg(*arguments, int64_t));
            break;
        case 'z':
            rec_z(va_arg(*arguments, size_t));
            break;
        case 'd':
            rec_d(va_arg(*arguments, double));
            break;
        case 'n':
            rec_n(va_arg(*arguments, int));
            break;
        }
    }
}

/* user_data is the spec. */
static int variadic_user(void *user, ...) {
    va_list arguments;

    rec_begin();
    rec_p(user);
    va_start(arguments, user);
    read_variadic(user, &arguments);
    va_end(arguments);
    return next_result;
}

static const char *variadic_spec = "";

static void variadic_site_node(const char *site, int64_t node, ...) {
    va_list arguments;

    rec_begin();
    rec_p(site);
    rec_i(node);
    va_start(arguments, node);
    read_variadic(variadic_spec, &arguments);
    va_end(arguments);
}

/* ---- Tests: calls ----------------------------------------------------- */

static int is_empty_string(const char *text) {
    return text != NULL && text[0] == '\0';
}

/* An empty STRING may have a NULL pointer; the function still gets "". */
static void check_empty_string(void) {
    dfm_token token = make_token();
    cdfm_shape *shape = NULL;
    char message[256] = "";
    int by_stub = 0, by_ffi = 0;
    int status;

    set_text(&token, DFM_VALUE_STRING, NULL);
    status = cdfm_shape_create("int(data.string)", FN(is_empty_string),
                               &shape, message, sizeof message);
    CHECK(status == DFM_OK, "%s", message);
    if (status != DFM_OK)
        return;
    status = cdfm_shape_call(shape, &token, NULL, &by_stub, message,
                             sizeof message);
    CHECK(status == DFM_OK && by_stub == 1, "stub: %d %d", status, by_stub);
    status = cdfm_shape_call_ffi(shape, &token, NULL, &by_ffi, message,
                                 sizeof message);
    CHECK(status == DFM_OK && by_ffi == 1, "ffi: %d %d", status, by_ffi);
    cdfm_shape_destroy(shape);
}

static void test_every_kind(void) {
    dfm_token token = make_token();
    int user_value = 5;

    check_pair("site", FN(v_string), FN(i_string), &token, NULL, true);
    check_pair("place", FN(v_string), FN(i_string), &token, NULL, true);
    check_pair("node", FN(v_node), FN(i_node), &token, NULL, true);
    check_pair("node.int", FN(v_int64), FN(i_int64), &token, NULL, true);
    check_pair("frame", FN(v_frame), FN(i_frame), &token, NULL, true);
    check_pair("frame.levels", FN(v_levels), FN(i_levels), &token, NULL,
               true);
    check_pair("frame.depth", FN(v_size), FN(i_size), &token, NULL, true);
    check_pair("data", FN(v_value), FN(i_value), &token, NULL, true);
    check_pair("data.int", FN(v_int64), FN(i_int64), &token, NULL, true);
    check_pair("token", FN(v_token), FN(i_token), &token, NULL, true);
    check_pair("user", FN(v_pointer), FN(i_pointer), &token, &user_value,
               true);
    check_pair("user", FN(v_pointer), FN(i_pointer), &token, NULL, true);

    /* data.double takes INT too, converted. */
    check_pair("data.double", FN(v_real), FN(i_real), &token, NULL, true);
    set_double(&token, 2.5);
    check_pair("data.double", FN(v_real), FN(i_real), &token, NULL, true);
    set_double(&token, -0.0);
    check_pair("data.double", FN(v_real), FN(i_real), &token, NULL, true);
    set_double(&token, 1e308);
    check_pair("data.double", FN(v_real), FN(i_real), &token, NULL, true);

    token = make_token();
    token.source_node.id = INT64_MAX;
    token.data.as.integer = INT64_MIN;
    check_pair("node.int, data.int", FN(v_int64_pair), FN(i_int64_pair),
               &token, NULL, true);
    check_pair("site, data.int", FN(v_w2), FN(i_w2), &token, NULL, true);
    check_pair("site, node.int", FN(v_w2), FN(i_w2), &token, NULL, true);

    token = make_token();
    token.source_node.kind = DFM_NODE_NAME;
    token.source_node.name = "node-x";
    check_pair("node.name", FN(v_string), FN(i_string), &token, NULL,
               true);

    set_text(&token, DFM_VALUE_STRING, "21.5 C");
    check_pair("data.string", FN(v_string), FN(i_string), &token, NULL,
               true);
    check_pair("data.bytes", FN(v_bytes), FN(i_bytes), &token, NULL, true);
    set_text(&token, DFM_VALUE_JSON, "{\"t\": 21.5}");
    check_pair("data.string", FN(v_string), FN(i_string), &token, NULL,
               true);
    check_pair("data.bytes", FN(v_bytes), FN(i_bytes), &token, NULL, true);
    set_text(&token, DFM_VALUE_ERROR, "sensor offline");
    check_pair("data.string", FN(v_string), FN(i_string), &token, NULL,
               true);
    check_empty_string();

    set_bytes(&token);
    check_pair("data.bytes", FN(v_bytes), FN(i_bytes), &token, NULL, true);
    token.data.as.bytes.data = NULL;
    token.data.as.bytes.length = 0;
    check_pair("data.bytes", FN(v_bytes), FN(i_bytes), &token, NULL, true);

    set_object(&token);
    check_pair("data.object", FN(v_pointer), FN(i_pointer), &token, NULL,
               true);

    /* bool has no stub: its passing depends on the exact type. */
    set_bool(&token, true);
    check_pair("data.bool", FN(v_boolean), FN(i_boolean), &token, NULL,
               false);
    set_bool(&token, false);
    check_pair("data.bool", FN(v_boolean), FN(i_boolean), &token, NULL,
               false);

    /* The stop frame has no levels. */
    token = make_token();
    token.frame.levels = NULL;
    token.frame.depth = 0;
    token.frame.is_stop = true;
    check_pair("frame.levels, frame.depth", FN(v_levels_depth),
               FN(i_levels_depth), &token, NULL, true);
}

static void test_stubs(void) {
    dfm_token token = make_token();
    int user_value = 9;
    size_t index;

    for (index = 0; index < sizeof word_cases / sizeof word_cases[0];
         index++)
        check_pair(word_cases[index].arguments,
                   word_cases[index].returns_void,
                   word_cases[index].returns_int, &token, &user_value,
                   true);

    set_double(&token, 2.5);
    for (index = 0; index < sizeof double_cases / sizeof double_cases[0];
         index++)
        check_pair(double_cases[index].arguments,
                   double_cases[index].returns_void,
                   double_cases[index].returns_int, &token, NULL, true);

    token = make_token();
    check_pair("user, site, node.int", FN(v_user_first), FN(i_user_first),
               &token, &user_value, true);
    check_pair("data, data.int", FN(v_value_int), FN(i_value_int), &token,
               NULL, true);
    check_pair("token, user", FN(v_token_user), FN(i_token_user), &token,
               &user_value, true);
    check_pair("user, place, user", FN(v_users), FN(i_users), &token,
               &user_value, true);
    check_pair("node, frame, data, user, data.double", FN(v_addresses),
               FN(i_addresses), &token, &user_value, true);
    set_double(&token, -1.5);
    check_pair("node, frame, data, user, data.double", FN(v_addresses),
               FN(i_addresses), &token, &user_value, true);

    token = make_token();
    check_pair("user", FN(v_u1), FN(i_u1), &token, &user_value, true);
    check_pair("site, user", FN(v_w1u), FN(i_w1u), &token, &user_value,
               true);
    check_pair("site, node.int, user", FN(v_w2u), FN(i_w2u), &token,
               &user_value, true);
    check_pair("site, node.int, frame.levels, user", FN(v_w3u),
               FN(i_w3u), &token, &user_value, true);
    check_pair("site, node.int, frame.levels, place, user", FN(v_w4u),
               FN(i_w4u), &token, &user_value, true);
    check_pair("site, data", FN(v_site_value), FN(i_site_value), &token,
               NULL, true);
    check_pair("site, node.int, token", FN(v_site_node_token),
               FN(i_site_node_token), &token, NULL, true);
    check_pair("site, user, place", FN(v_site_user_place),
               FN(i_site_user_place), &token, &user_value, true);
    check_pair("site, node, data.int", FN(v_site_node_data),
               FN(i_site_node_data), &token, NULL, true);
    set_double(&token, 0.25);
    check_pair("data.double, user", FN(v_real_user), FN(i_real_user),
               &token, &user_value, true);
    check_pair("site, data.double, token", FN(v_site_real_token),
               FN(i_site_real_token), &token, NULL, true);
    check_pair("data.double, user, site", FN(v_real_user_site),
               FN(i_real_user_site), &token, &user_value, true);

    /* White space anywhere between tokens changes nothing. */
    token = make_token();
    check_call(" \tvoid ( site ,node.int,\tframe.levels , place,data.int ,"
               " user ) \t", FN(v_w6), &token, &user_value, true, 0);
}

/* A token built field by field leaves its padding undefined; the stubs
 * must not let those bytes reach the callee (valgrind checks this). */
static void test_token_with_padding(void) {
    dfm_token token;
    int user_value = 1;

    token.source_site = "site-b";
    token.source_node.kind = DFM_NODE_INT;
    token.source_node.id = 5;
    token.source_node.name = NULL;
    token.frame.levels = test_levels;
    token.frame.depth = 1;
    token.frame.is_stop = false;
    token.target_place = "pressure";
    token.data.kind = DFM_VALUE_INT;
    token.data.as.integer = 3;

    check_pair("site, node.int, frame.levels, place, data.int, user",
               FN(v_w6), FN(i_w6), &token, &user_value, true);
    check_pair("token, user", FN(v_token_user), FN(i_token_user), &token,
               &user_value, true);
    check_pair("node, frame, data, user, data.double", FN(v_addresses),
               FN(i_addresses), &token, &user_value, true);
}

static void test_benchmark_shape(void) {
    const char *text = "void(site, node.int, frame.levels, place, data.int, "
                       "user)";
    cdfm_shape *shape = NULL;
    char message[256] = "";
    int status;

    status = cdfm_shape_create(text, FN(v_w6), &shape, message,
                               sizeof message);
    CHECK(status == DFM_OK, "%s", message);
    CHECK(cdfm_shape_has_stub(shape) == STUBS_EXPECTED,
          "the benchmark shape must use a stub");
    CHECK(!cdfm_shape_returns_int(shape), "void shape returns int");
    cdfm_shape_destroy(shape);

    status = cdfm_shape_create("int(user)", FN(i_pointer), &shape, message,
                               sizeof message);
    CHECK(status == DFM_OK, "%s", message);
    CHECK(cdfm_shape_returns_int(shape), "int shape does not return int");
    cdfm_shape_destroy(shape);
}

static void test_libffi_only_shapes(void) {
    dfm_token token = make_token();
    int user_value = 3;

    check_pair("site, place, node, frame, data, token, user", FN(v_seven),
               FN(i_seven), &token, &user_value, false);
    check_pair("data.double, node.int, data.double", FN(v_two_doubles),
               FN(i_two_doubles), &token, NULL, false);

    set_bool(&token, true);
    check_pair("site, data.bool, user", FN(v_with_bool), FN(i_with_bool),
               &token, &user_value, false);

    set_bytes(&token);
    check_pair("data.bytes, data.bytes, data.bytes, data.bytes, "
               "data.bytes, data.bytes, data.bytes, data.bytes",
               FN(v_sixteen), FN(i_sixteen), &token, NULL, false);
}

static void test_variadic(void) {
    dfm_token token = make_token();
    char spec_none[] = "";
    char spec_place_int[] = "si";
    char spec_bool[] = "n";
    char spec_mixed[] = "dzs";
    char spec_text[] = "scz";
    char spec_many[] = "czczczczczczczs";
    char buffer[64];
    cdfm_shape *shape = NULL;
    char message[256] = "";
    int result = 0;
    int status;

    next_result = 77;
    check_call("int(user, ...)", FN(variadic_user), &token, spec_none,
               false, 77);
    check_call("int(user, ..., place, data.int)", FN(variadic_user),
               &token, spec_place_int, false, 77);
    check_call("int ( user , ... , place , data.int )", FN(variadic_user),
               &token, spec_place_int, false, 77);

    /* A variadic bool arrives promoted to int. */
    set_bool(&token, true);
    check_call("int(user, ..., data.bool)", FN(variadic_user), &token,
               spec_bool, false, 77);
    set_bool(&token, false);
    check_call("int(user, ..., data.bool)", FN(variadic_user), &token,
               spec_bool, false, 77);

    token = make_token();
    check_call("int(user, ..., data.double, frame.depth, site)",
               FN(variadic_user), &token, spec_mixed, false, 77);
    set_double(&token, -3.75);
    check_call("int(user, ..., data.double, frame.depth, site)",
               FN(variadic_user), &token, spec_mixed, false, 77);

    set_text(&token, DFM_VALUE_STRING, "warm");
    check_call("int(user, ..., data.string, data.bytes)",
               FN(variadic_user), &token, spec_text, false, 77);

    /* Fifteen variadic C arguments: most of them on the stack. */
    set_bytes(&token);
    check_call("int(user, ..., data.bytes, data.bytes, data.bytes, "
               "data.bytes, data.bytes, data.bytes, data.bytes, place)",
               FN(variadic_user), &token, spec_many, false, 77);

    variadic_spec = "czt";
    check_call("void(site, node.int, ..., data.bytes, token)",
               FN(variadic_site_node), &token, NULL, false, 0);
    next_result = 0;

    /* The C library's own variadic function, as API.md suggests with
     * printf; the token's site is the format here. */
    token = make_token();
    token.source_site = "%s=%" PRId64;
    status = cdfm_shape_create("int(user, site, ..., place, data.int)",
                               FN(sprintf), &shape, message,
                               sizeof message);
    CHECK(status == DFM_OK, "sprintf shape: %s", message);
    if (status == DFM_OK) {
        status = cdfm_shape_call(shape, &token, buffer, &result, message,
                                 sizeof message);
        CHECK(status == DFM_OK && result == 13
                  && strcmp(buffer, "temperature=7") == 0,
              "sprintf wrote '%s' and returned %d", buffer, result);
        cdfm_shape_destroy(shape);
    }
}

/* ---- Tests: bad shapes ------------------------------------------------ */

typedef struct bad_shape {
    const char *text;
    unsigned column;
    const char *says;
} bad_shape;

static const bad_shape bad_shapes[] = {
    { "", 1, "the shape is empty" },
    { "  \t", 4, "the shape is empty" },
    { "double(site)", 1,
      "the return type must be 'void' or 'int', not 'double'" },
    { "(site)", 1, "the return type must be 'void' or 'int'" },
    { "Void(site)", 1, "not 'Void'" },
    { "void", 5, "expected '(' after the return type 'void', found the "
                 "end of the shape" },
    { "int site", 5, "expected '(' after the return type 'int'" },
    { "void(", 6, "expected an argument after '('" },
    { "void(site", 10, "the shape ends before its closing ')'" },
    { "void(site,", 11, "expected an argument after ','" },
    { "void(site,)", 11, "expected an argument after ','" },
    { "void(,site)", 6, "expected an argument after '('" },
    { "void(site place)", 11,
      "expected ',' or ')' after the argument 'site', found 'p'" },
    { "int(site; place)", 9, "expected ',' or ')' after the argument" },
    { "void(data . int)", 11, "expected ',' or ')'" },
    { "void(site, dat.int)", 12,
      "unknown argument 'dat.int' (did you mean 'data.int'?); expected "
      "site, place, node[.int|.name], frame[.levels|.depth], "
      "data[.bool|.int|.double|.string|.bytes|.object], token or user" },
    { "void(site, frame.level)", 12, "(did you mean 'frame.levels'?)" },
    { "void(site, node.int, frame.levels, place, data.int, user, "
      "a_very_long_name_that_nobody_would_ever_mean)", 59,
      "unknown argument 'a_very_long_name_that_nobody_wou...'; expected "
      "site, place," },
    { "void(Site)", 6, "did you mean 'site'?" },
    { "void(temperature)", 6,
      "unknown argument 'temperature'; expected site" },
    { "void(site, #)", 12, "unexpected '#'" },
    { "void(sit\xc3\xa9)", 9, "unexpected byte 0xC3 in a name" },
    { "v\xc3\xb3id(site)", 2, "unexpected byte 0xC3 in a name" },
    { "void(site, \xc3\xa9)", 12,
      "unexpected byte 0xC3; an argument is a name" },
    { "void(...)", 6, "'...' needs at least one argument before it" },
    { "void(..., site)", 6, "'...' needs at least one argument" },
    { "void(site, ..., place, ...)", 24, "'...' may appear only once" },
    { "void(site, ...)x", 16, "after the closing ')': 'x'" },
    { "void(site) x", 12, "unexpected text after the closing ')'" },
    { "void(site))", 11, "unexpected text after the closing ')': ')'" },
    { "void(site, ....)", 15, "after the argument '...', found '.'" },
    { "void(site, data.float)", 12, "unknown argument 'data.float'" },
    { "void(data.bytes, data.bytes, data.bytes, data.bytes, data.bytes, "
      "data.bytes, data.bytes, data.bytes, user)", 102,
      "too many arguments: 'user' would be C argument 17, and a shape "
      "passes at most 16" },
    { "void(user, ..., data.bytes, data.bytes, data.bytes, data.bytes, "
      "data.bytes, data.bytes, data.bytes, data.bytes)", 101,
      "'data.bytes' would be C argument 17" },
};

static void test_bad_shapes(void) {
    size_t index;

    for (index = 0; index < sizeof bad_shapes / sizeof bad_shapes[0];
         index++) {
        const bad_shape *bad = &bad_shapes[index];
        cdfm_shape *shape = (cdfm_shape *)&passed;
        char message[512] = "";
        char column[32];
        int status;

        status = cdfm_shape_create(bad->text, FN(v_w0), &shape, message,
                                   sizeof message);
        snprintf(column, sizeof column, "shape column %u: ", bad->column);
        CHECK(status == DFM_ERR_BAD_SHAPE, "'%s': status %d", bad->text,
              status);
        CHECK(shape == NULL, "'%s': *out not cleared", bad->text);
        CHECK(strncmp(message, column, strlen(column)) == 0,
              "'%s': message '%s' does not start with '%s'", bad->text,
              message, column);
        CHECK(strstr(message, bad->says) != NULL,
              "'%s': message '%s' does not say '%s'", bad->text, message,
              bad->says);

        /* The library hands these to hosts through a 256-byte buffer. */
        CHECK(strlen(message) < 255, "'%s': message of %zu bytes",
              bad->text, strlen(message));
    }
}

static void test_create_arguments(void) {
    cdfm_shape *shape = (cdfm_shape *)&passed;
    char message[256] = "";
    char tiny[12];
    int status;

    status = cdfm_shape_create(NULL, FN(v_w0), &shape, message,
                               sizeof message);
    CHECK(status == DFM_ERR_BAD_SHAPE && shape == NULL,
          "NULL shape: %d", status);
    CHECK(strstr(message, "the shape is NULL") != NULL, "'%s'", message);

    status = cdfm_shape_create("void()", NULL, &shape, message,
                               sizeof message);
    CHECK(status == DFM_ERR_INVALID_ARGUMENT, "NULL function: %d", status);
    status = cdfm_shape_create("void()", FN(v_w0), NULL, message,
                               sizeof message);
    CHECK(status == DFM_ERR_INVALID_ARGUMENT, "NULL out: %d", status);

    /* A short buffer gets a cut message; no buffer gets none. */
    status = cdfm_shape_create("void(site, dat.int)", FN(v_w0), &shape,
                               tiny, sizeof tiny);
    CHECK(status == DFM_ERR_BAD_SHAPE && strcmp(tiny, "shape colum") == 0,
          "tiny buffer: %d '%s'", status, tiny);
    status = cdfm_shape_create("void(site, dat.int)", FN(v_w0), &shape,
                               NULL, 0);
    CHECK(status == DFM_ERR_BAD_SHAPE, "no buffer: %d", status);

    cdfm_shape_destroy(NULL);
    CHECK(!cdfm_shape_has_stub(NULL), "has_stub(NULL)");
    CHECK(!cdfm_shape_returns_int(NULL), "returns_int(NULL)");
}

/* ---- Tests: mismatches ------------------------------------------------ */

static void setup_int(dfm_token *token) { (void)token; }
static void setup_double(dfm_token *token) { set_double(token, 2.5); }
static void setup_bool(dfm_token *token) { set_bool(token, true); }
static void setup_bytes(dfm_token *token) { set_bytes(token); }
static void setup_object(dfm_token *token) { set_object(token); }

static void setup_string(dfm_token *token) {
    set_text(token, DFM_VALUE_STRING, "warm");
}

static void setup_none(dfm_token *token) {
    token->data.kind = DFM_VALUE_NONE;
}

static void setup_stop(dfm_token *token) {
    token->data.kind = DFM_VALUE_STOP;
}

static void setup_unknown_kind(dfm_token *token) {
    token->data.kind = (dfm_value_kind)42;
}

static void setup_node_name(dfm_token *token) {
    token->source_node.kind = DFM_NODE_NAME;
    token->source_node.name = "node-x";
}

static void setup_node_none(dfm_token *token) {
    token->source_node.kind = DFM_NODE_NONE;
}

typedef struct mismatch {
    const char *shape;
    void (*function)(void);
    void (*setup)(dfm_token *token);
    const char *declared;
    const char *found;
} mismatch;

static const mismatch mismatches[] = {
    { "void(data.int)", FN(v_int64), setup_double,
      "shape declares data.int (argument 1), which takes INT data",
      "the token's data is DOUBLE" },
    { "void(site, data.int)", FN(v_w2), setup_string,
      "data.int (argument 2)", "data is STRING" },
    { "void(data.int)", FN(v_int64), setup_bool, "data.int",
      "data is BOOL" },
    { "void(data.int)", FN(v_int64), setup_none, "data.int",
      "data is NONE" },
    { "void(data.int)", FN(v_int64), setup_stop, "data.int",
      "data is STOP" },
    { "void(data.int)", FN(v_int64), setup_unknown_kind, "data.int",
      "data is of unknown kind 42" },
    { "void(data.double)", FN(v_real), setup_string,
      "data.double (argument 1), which takes DOUBLE or INT data",
      "data is STRING" },
    { "void(data.double)", FN(v_real), setup_bool, "data.double",
      "data is BOOL" },
    { "void(data.double)", FN(v_real), setup_object, "data.double",
      "data is OBJECT" },
    { "void(data.bool)", FN(v_boolean), setup_int,
      "data.bool (argument 1), which takes BOOL data", "data is INT" },
    { "void(data.string)", FN(v_string), setup_bytes,
      "data.string (argument 1), which takes STRING, JSON or ERROR data",
      "data is BYTES" },
    { "void(data.string)", FN(v_string), setup_int, "data.string",
      "data is INT" },
    { "void(data.bytes)", FN(v_bytes), setup_int,
      "data.bytes (argument 1), which takes BYTES, STRING, JSON or ERROR "
      "data", "data is INT" },
    { "void(data.bytes)", FN(v_bytes), setup_object, "data.bytes",
      "data is OBJECT" },
    { "void(data.object)", FN(v_pointer), setup_string,
      "data.object (argument 1), which takes OBJECT data",
      "data is STRING" },
    { "void(node.int)", FN(v_int64), setup_node_name,
      "node.int (argument 1), which takes an INT node",
      "the token's node is NAME" },
    { "void(node.int)", FN(v_int64), setup_node_none, "node.int",
      "node is NONE" },
    { "void(node.name)", FN(v_string), setup_int,
      "node.name (argument 1), which takes a NAME node", "node is INT" },
    { "int(user, ..., data.bool)", FN(variadic_user), setup_int,
      "data.bool (argument 2)", "data is INT" },
    { "void(data.bytes, data.int)", FN(v_bytes), setup_bytes,
      "data.int (argument 2)", "data is BYTES" },
    { "void(site, data.bool, user)", FN(v_with_bool), setup_string,
      "data.bool (argument 2)", "data is STRING" },
};

static void test_mismatches(void) {
    size_t index;
    int path;

    for (index = 0; index < sizeof mismatches / sizeof mismatches[0];
         index++) {
        const mismatch *m = &mismatches[index];
        dfm_token token = make_token();
        cdfm_shape *shape = NULL;
        char message[512] = "";
        char spec[] = "";
        int status;

        m->setup(&token);
        status = cdfm_shape_create(m->shape, m->function, &shape, message,
                                   sizeof message);
        CHECK(status == DFM_OK, "'%s': %s", m->shape, message);
        if (status != DFM_OK)
            continue;

        for (path = 0; path < 2; path++) {
            int result = 0;

            message[0] = '\0';
            recorded.calls = 0;
            status = path == 0
                ? cdfm_shape_call(shape, &token, spec, &result, message,
                                  sizeof message)
                : cdfm_shape_call_ffi(shape, &token, spec, &result,
                                      message, sizeof message);
            CHECK(status == DFM_ERR_TYPE_MISMATCH, "'%s' path %d: %d",
                  m->shape, path, status);
            CHECK(recorded.calls == 0, "'%s' path %d: function called",
                  m->shape, path);
            CHECK(strncmp(message, "place 'temperature': ", 21) == 0,
                  "'%s': message '%s' does not name the place", m->shape,
                  message);
            CHECK(strstr(message, m->declared) != NULL,
                  "'%s': message '%s' does not say '%s'", m->shape,
                  message, m->declared);
            CHECK(strstr(message, m->found) != NULL,
                  "'%s': message '%s' does not say '%s'", m->shape,
                  message, m->found);
            CHECK(strlen(message) < 255, "'%s': message of %zu bytes",
                  m->shape, strlen(message));
        }
        cdfm_shape_destroy(shape);
    }
}

/* True when `text` is valid UTF-8 (enough for the cut messages: lead
 * bytes followed by the right number of continuation bytes). */
static bool is_utf8(const char *text) {
    const unsigned char *at = (const unsigned char *)text;

    while (*at != '\0') {
        size_t extra = *at < 0x80 ? 0 : *at >= 0xF0 ? 3 : *at >= 0xE0 ? 2
                     : *at >= 0xC0 ? 1 : 99;
        size_t index;

        if (extra == 99)
            return false;
        for (index = 1; index <= extra; index++) {
            if ((at[index] & 0xC0) != 0x80)
                return false;
        }
        at += extra + 1;
    }
    return true;
}

static void test_mismatch_messages(void) {
    dfm_token token = make_token();
    cdfm_shape *shape = NULL;
    char long_place[201];
    char message[512];
    size_t capacity;
    int result = 0;
    int status;

    status = cdfm_shape_create("void(data.double)", FN(v_real), &shape,
                               message, sizeof message);
    CHECK(status == DFM_OK, "%s", message);
    if (status != DFM_OK)
        return;
    setup_string(&token);

    /* A long place is shortened, so the reason still fits. */
    memset(long_place, 'x', sizeof long_place - 1);
    long_place[sizeof long_place - 1] = '\0';
    token.target_place = long_place;
    status = cdfm_shape_call(shape, &token, NULL, &result, message,
                             sizeof message);
    CHECK(status == DFM_ERR_TYPE_MISMATCH
              && strstr(message, "xxx...': shape declares") != NULL
              && strstr(message, "data is STRING") != NULL,
          "long place: '%s'", message);

    /* Cut at every length, a message never ends inside a character. */
    token.target_place = "temp\xc3\xa9rature \xe2\x84\x83";
    for (capacity = 1; capacity < 60; capacity++) {
        memset(message, 'Z', sizeof message);
        status = cdfm_shape_call(shape, &token, NULL, &result, message,
                                 capacity);
        CHECK(status == DFM_ERR_TYPE_MISMATCH
                  && strlen(message) < capacity && is_utf8(message),
              "capacity %zu: '%s'", capacity, message);
    }
    status = cdfm_shape_call(shape, &token, NULL, &result, NULL, 0);
    CHECK(status == DFM_ERR_TYPE_MISMATCH, "no buffer: %d", status);

    cdfm_shape_destroy(shape);
}

int main(void) {
    test_every_kind();
    test_stubs();
    test_token_with_padding();
    test_benchmark_shape();
    test_libffi_only_shapes();
    test_variadic();
    test_bad_shapes();
    test_create_arguments();
    test_mismatches();
    test_mismatch_messages();

    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
