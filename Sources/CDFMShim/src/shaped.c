/*
 * shaped.c - shaped callbacks: parse a shape string once, then call the
 * host's own C function with the token's fields (see cdfm_shaped.h and
 * API.md, section 5).
 *
 * The file has four parts:
 *
 *  - the parser, which turns "void(site, data.int, user)" into one getter
 *    opcode per C argument and explains a bad shape by its column;
 *  - create, which prepares an ffi_cif for every shape and picks a
 *    precompiled stub for the common non-variadic ones;
 *  - the stubs, which read their arguments straight from the token into
 *    the call (a few nanoseconds, where ffi_call costs about a hundred);
 *  - the general path, which converts a token into argument slots,
 *    refuses a token that does not fit, and calls through libffi.
 *
 * Decisions the contract leaves open:
 *
 *  - data.bytes takes BYTES and also the text kinds (STRING, JSON, ERROR):
 *    a function that wants (pointer, length) gets the text and its length
 *    in bytes, without the terminating NUL.
 *  - data.string with an empty text whose pointer is NULL passes "", so the
 *    function always receives a real C string.
 *  - A shape passes at most CDFM_SHAPE_MAX_ARGS C arguments (data.bytes
 *    counts as two).
 */
#include "cdfm_shaped.h"

#include <ffi.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Sixteen C arguments is more than any callback signature we have seen,
 * and small enough for the per-call slot array to live on the stack. */
#define CDFM_SHAPE_MAX_ARGS 16

/* The longest echo of the host's own text (a place, an unknown word) in a
 * message, so the useful part of the message is never pushed out. */
#define CDFM_ECHO_MAX 48

/* The same for a word of the shape itself, which the message must leave
 * room for the list of argument names beside. */
#define CDFM_WORD_ECHO_MAX 32

#if defined(__GNUC__) || defined(__clang__)
#  define CDFM_COLD __attribute__((cold, noinline))
#  define CDFM_NOINLINE __attribute__((noinline))
#  define CDFM_PRINTF(format_index, first_index) \
    __attribute__((format(printf, format_index, first_index)))
#else
#  define CDFM_COLD
#  define CDFM_NOINLINE
#  define CDFM_PRINTF(format_index, first_index)
#endif

/* Compile-time checks, as array sizes that turn negative when false. */
#define CDFM_STATIC_ASSERT(name, condition) \
    typedef char cdfm_static_assert_##name[(condition) ? 1 : -1]

/* libffi has no bool type; the ABIs we run on pass bool as one unsigned
 * byte, which is what ffi_type_uint8 describes.  Fail the build anywhere
 * that is not true rather than pass a wrong value. */
CDFM_STATIC_ASSERT(bool_is_one_byte, sizeof(bool) == 1);

/* data.bytes reads text and bytes alike, which relies on as.text and
 * as.bytes having the same layout. */
CDFM_STATIC_ASSERT(text_data_is_bytes_data,
                   offsetof(dfm_value, as.text.data)
                   == offsetof(dfm_value, as.bytes.data));
CDFM_STATIC_ASSERT(text_length_is_bytes_length,
                   offsetof(dfm_value, as.text.length)
                   == offsetof(dfm_value, as.bytes.length));

#if SIZE_MAX == UINT64_MAX
#  define CDFM_FFI_SIZE_T ffi_type_uint64
#elif SIZE_MAX == UINT32_MAX
#  define CDFM_FFI_SIZE_T ffi_type_uint32
#else
#  error "size_t is neither 32 nor 64 bits wide"
#endif

/* ---- Argument kinds and getters --------------------------------------- */

/* One getter per C argument.  data.bytes becomes two getters (pointer,
 * then length), and data.bool after "..." becomes the promoted-int one. */
enum {
    OP_SITE,
    OP_PLACE,
    OP_NODE,
    OP_NODE_INT,
    OP_NODE_NAME,
    OP_FRAME,
    OP_FRAME_LEVELS,
    OP_FRAME_DEPTH,
    OP_DATA,
    OP_DATA_BOOL,
    OP_DATA_BOOL_PROMOTED,
    OP_DATA_INT,
    OP_DATA_DOUBLE,
    OP_DATA_STRING,
    OP_DATA_BYTES,
    OP_DATA_BYTES_LENGTH,
    OP_DATA_OBJECT,
    OP_TOKEN,
    OP_USER
};

typedef struct shape_argument {
    const char *name;
    unsigned char op;       /* the getter of its first C argument */
    unsigned char width;    /* C arguments it becomes */
} shape_argument;

/* The grammar's argument names, in the order the messages list them. */
static const shape_argument shape_arguments[] = {
    { "site", OP_SITE, 1 },
    { "place", OP_PLACE, 1 },
    { "node", OP_NODE, 1 },
    { "node.int", OP_NODE_INT, 1 },
    { "node.name", OP_NODE_NAME, 1 },
    { "frame", OP_FRAME, 1 },
    { "frame.levels", OP_FRAME_LEVELS, 1 },
    { "frame.depth", OP_FRAME_DEPTH, 1 },
    { "data", OP_DATA, 1 },
    { "data.bool", OP_DATA_BOOL, 1 },
    { "data.int", OP_DATA_INT, 1 },
    { "data.double", OP_DATA_DOUBLE, 1 },
    { "data.string", OP_DATA_STRING, 1 },
    { "data.bytes", OP_DATA_BYTES, 2 },
    { "data.object", OP_DATA_OBJECT, 1 },
    { "token", OP_TOKEN, 1 },
    { "user", OP_USER, 1 }
};

#define SHAPE_ARGUMENT_COUNT \
    (sizeof shape_arguments / sizeof shape_arguments[0])

static ffi_type *op_ffi_type(unsigned op) {
    switch (op) {
    case OP_NODE_INT:
    case OP_DATA_INT:
        return &ffi_type_sint64;
    case OP_FRAME_DEPTH:
    case OP_DATA_BYTES_LENGTH:
        return &CDFM_FFI_SIZE_T;
    case OP_DATA_DOUBLE:
        return &ffi_type_double;
    case OP_DATA_BOOL:
        return &ffi_type_uint8;
    case OP_DATA_BOOL_PROMOTED:
        return &ffi_type_sint;
    default:
        return &ffi_type_pointer;
    }
}

static const char *op_name(unsigned op) {
    size_t index;

    if (op == OP_DATA_BOOL_PROMOTED)
        op = OP_DATA_BOOL;
    if (op == OP_DATA_BYTES_LENGTH)
        op = OP_DATA_BYTES;
    for (index = 0; index < SHAPE_ARGUMENT_COUNT; index++) {
        if (shape_arguments[index].op == op)
            return shape_arguments[index].name;
    }
    return "?";
}

/* ---- What a token must hold ------------------------------------------- */

/* A set of kinds, one bit per dfm_value_kind or dfm_node_kind value. */
#define KINDS_ANY UINT32_MAX
#define KIND(kind) ((uint32_t)1 << (kind))
#define TEXT_KINDS \
    (KIND(DFM_VALUE_STRING) | KIND(DFM_VALUE_JSON) | KIND(DFM_VALUE_ERROR))

/* The data kinds a getter accepts.  This table is the one statement of
 * the type rules: the stubs and the general path both test against it. */
static uint32_t op_data_kinds(unsigned op) {
    switch (op) {
    case OP_DATA_BOOL:
    case OP_DATA_BOOL_PROMOTED:
        return KIND(DFM_VALUE_BOOL);
    case OP_DATA_INT:
        return KIND(DFM_VALUE_INT);
    case OP_DATA_DOUBLE:
        return KIND(DFM_VALUE_DOUBLE) | KIND(DFM_VALUE_INT);
    case OP_DATA_STRING:
        return TEXT_KINDS;
    case OP_DATA_BYTES:
    case OP_DATA_BYTES_LENGTH:
        return KIND(DFM_VALUE_BYTES) | TEXT_KINDS;
    case OP_DATA_OBJECT:
        return KIND(DFM_VALUE_OBJECT);
    default:
        return KINDS_ANY;
    }
}

static uint32_t op_node_kinds(unsigned op) {
    switch (op) {
    case OP_NODE_INT:
        return KIND(DFM_NODE_INT);
    case OP_NODE_NAME:
        return KIND(DFM_NODE_NAME);
    default:
        return KINDS_ANY;
    }
}

/* A kind outside 0..31 fits only a getter that takes any kind. */
static bool kind_fits(uint32_t kinds, int kind) {
    if (kinds == KINDS_ANY)
        return true;
    return (unsigned)kind < 32 && ((kinds >> kind) & 1) != 0;
}

/* ---- The prepared call ------------------------------------------------ */


/* A stub makes the whole call and returns cdfm_shape_invoke's packed word:
 * DFM_OK (0) in the high half, the function's int result (0 for a void
 * function) in the low half.  Nothing goes through memory, so a stub keeps
 * no register across its call but the ones the call needs, and
 * cdfm_shape_invoke ends in a tail call to it. */
typedef int64_t (*cdfm_stub)(const cdfm_shape *shape,
                             const dfm_token *token, void *user_data);

/* Where a stub finds a word argument: the 8 bytes at an offset in the
 * token, the address of that offset, or user_data. */
enum {
    SOURCE_FIELD,
    SOURCE_ADDRESS,
    SOURCE_USER
};

#define NO_SPECIAL 0xFF

struct cdfm_shape {
    void (*function)(void);
    unsigned arg_count;                 /* C arguments */
    unsigned fixed_count;               /* C arguments before "..." */
    bool variadic;
    bool returns_int;
    unsigned char ops[CDFM_SHAPE_MAX_ARGS];

    /* The union of what the getters demand, tested once per call. */
    uint32_t data_kinds;
    uint32_t node_kinds;

    /* The stub, or NULL when every call goes through libffi; and where
     * it reads each argument.  A stub hands a token whose string pointer
     * is NULL to the general path, which passes "" instead. */
    cdfm_stub stub;
    bool stub_needs_text;
    unsigned char stub_offsets[CDFM_SHAPE_MAX_ARGS];
    unsigned char stub_sources[CDFM_SHAPE_MAX_ARGS];

    /* For the stubs of shapes with at most one argument that is not a
     * token field: its index (NO_SPECIAL when none), source and offset. */
    unsigned char stub_special_index;
    unsigned char stub_special_source;
    unsigned char stub_special_offset;

    /* libffi keeps pointers into `arg_types`, so both live here, in one
     * allocation that never moves or changes after create. */
    ffi_cif cif;
    ffi_type *arg_types[CDFM_SHAPE_MAX_ARGS];
};

/* ---- Messages --------------------------------------------------------- */

/* vsnprintf, then, if the text was cut, drop a UTF-8 sequence left
 * incomplete at the end, so a message never ends in a broken character. */
static CDFM_PRINTF(3, 0) void message_vformat(char *message,
                                              size_t capacity,
                                              const char *format,
                                              va_list arguments) {
    int length;
    size_t end, start;
    unsigned char lead;
    size_t needed;

    if (message == NULL || capacity == 0)
        return;

    length = vsnprintf(message, capacity, format, arguments);
    if (length < 0) {
        message[0] = '\0';
        return;
    }
    if ((size_t)length < capacity)
        return;

    /* Find the lead byte of the last character before the NUL and keep
     * that character only if all of its bytes made it. */
    end = capacity - 1;
    start = end;
    while (start > 0 && ((unsigned char)message[start - 1] & 0xC0) == 0x80)
        start--;
    if (start == 0)
        return;
    lead = (unsigned char)message[start - 1];
    if (lead < 0xC0)
        return;
    needed = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
    if (end - (start - 1) < needed)
        message[start - 1] = '\0';
}

static CDFM_PRINTF(3, 4) void message_format(char *message,
                                             size_t capacity,
                                             const char *format, ...) {
    va_list arguments;

    va_start(arguments, format);
    message_vformat(message, capacity, format, arguments);
    va_end(arguments);
}

/* How many bytes of `text` to echo: at most CDFM_ECHO_MAX, never ending
 * inside a UTF-8 character.  *cut tells whether "..." should follow. */
static int echo_length(const char *text, bool *cut) {
    size_t length = strlen(text);

    *cut = false;
    if (length <= CDFM_ECHO_MAX)
        return (int)length;

    *cut = true;
    length = CDFM_ECHO_MAX;
    while (length > 0 && ((unsigned char)text[length] & 0xC0) == 0x80)
        length--;
    return (int)length;
}

/* ---- Parser ----------------------------------------------------------- */

typedef struct shape_parser {
    const char *text;
    const char *at;
    char *message;
    size_t capacity;
} shape_parser;

static bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v'
        || c == '\f';
}

static bool is_word_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
        || (c >= '0' && c <= '9') || c == '_' || c == '.';
}

static void skip_space(shape_parser *parser) {
    while (is_space(*parser->at))
        parser->at++;
}

/* Reads a name made of letters, digits, '_' and '.'; false when there is
 * none at the cursor. */
static bool read_word(shape_parser *parser, const char **word,
                      size_t *length) {
    const char *start = parser->at;

    while (is_word_char(*parser->at))
        parser->at++;
    *word = start;
    *length = (size_t)(parser->at - start);
    return *length > 0;
}

static bool word_is(const char *word, size_t length, const char *name) {
    return strlen(name) == length && memcmp(word, name, length) == 0;
}

/* The 1-based column of `position`.  Bytes and characters agree here: the
 * first byte outside ASCII is itself an error, so every byte before the
 * reported position is ASCII. */
static unsigned column_of(const shape_parser *parser, const char *position) {
    return (unsigned)(position - parser->text) + 1;
}

static CDFM_COLD CDFM_PRINTF(3, 4) int parse_fail(shape_parser *parser,
                                                  const char *position,
                                                  const char *format, ...) {
    char detail[400];
    va_list arguments;

    va_start(arguments, format);
    message_vformat(detail, sizeof detail, format, arguments);
    va_end(arguments);

    message_format(parser->message, parser->capacity, "shape column %u: %s",
                   column_of(parser, position), detail);
    return DFM_ERR_BAD_SHAPE;
}

/* A name runs into a byte outside ASCII: report that byte rather than an
 * unknown name cut short in front of it. */
static int check_word_end(shape_parser *parser) {
    unsigned char next = (unsigned char)*parser->at;

    if (next < 0x80)
        return DFM_OK;
    return parse_fail(parser, parser->at,
                      "unexpected byte 0x%02X in a name; names use the "
                      "ASCII letters, digits, '_' and '.'", next);
}

/* Describes the character at `position` for a message: 'x' when it is
 * printable ASCII, its byte value otherwise. */
static void describe_char(const char *position, char *out, size_t size) {
    unsigned char c = (unsigned char)*position;

    if (c == '\0')
        message_format(out, size, "the end of the shape");
    else if (c >= 0x20 && c < 0x7F)
        message_format(out, size, "'%c'", c);
    else
        message_format(out, size, "byte 0x%02X", c);
}

static char lower(char c) {
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* Edit distance (ignoring case) between a word and a name, both short;
 * words longer than 32 characters are not worth a suggestion. */
static size_t edit_distance(const char *word, size_t length,
                            const char *name) {
    size_t name_length = strlen(name);
    size_t row[33];
    size_t i, j;

    if (length > 32 || name_length > 32)
        return SIZE_MAX;

    for (j = 0; j <= name_length; j++)
        row[j] = j;
    for (i = 1; i <= length; i++) {
        size_t diagonal = row[0];

        row[0] = i;
        for (j = 1; j <= name_length; j++) {
            size_t above = row[j];
            size_t best = diagonal
                + (lower(word[i - 1]) == name[j - 1] ? 0 : 1);

            if (above + 1 < best)
                best = above + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            diagonal = above;
            row[j] = best;
        }
    }
    return row[name_length];
}

/* Writes the argument names grouped by their base, e.g. "site, place,
 * node[.int|.name], ..., token or user", so the list fits a message. */
static void list_arguments(char *out, size_t size) {
    size_t used = 0;
    size_t index = 0;

    out[0] = '\0';
    while (index < SHAPE_ARGUMENT_COUNT) {
        const char *base = shape_arguments[index].name;
        size_t base_length = strlen(base);
        size_t end = index + 1;
        size_t member;

        while (end < SHAPE_ARGUMENT_COUNT
               && strncmp(shape_arguments[end].name, base, base_length) == 0
               && shape_arguments[end].name[base_length] == '.')
            end++;

        message_format(out + used, size - used, "%s%s",
                       index == 0 ? ""
                       : end == SHAPE_ARGUMENT_COUNT ? " or " : ", ",
                       base);
        used += strlen(out + used);
        for (member = index + 1; member < end; member++) {
            message_format(out + used, size - used, "%s%s",
                           member == index + 1 ? "[" : "|",
                           shape_arguments[member].name + base_length);
            used += strlen(out + used);
        }
        if (end > index + 1) {
            message_format(out + used, size - used, "]");
            used += strlen(out + used);
        }
        index = end;
    }
}

static CDFM_COLD int fail_unknown_argument(shape_parser *parser,
                                           const char *word, size_t length) {
    char names[160];
    char hint[64] = "";
    size_t best_distance = 3;
    const char *best = NULL;
    size_t index;

    for (index = 0; index < SHAPE_ARGUMENT_COUNT; index++) {
        const char *name = shape_arguments[index].name;
        size_t distance = edit_distance(word, length, name);

        if (distance < best_distance) {
            best_distance = distance;
            best = name;
        }
    }
    if (best != NULL)
        message_format(hint, sizeof hint, " (did you mean '%s'?)", best);
    list_arguments(names, sizeof names);

    return parse_fail(parser, word,
                      "unknown argument '%.*s%s'%s; expected %s",
                      (int)(length > CDFM_WORD_ECHO_MAX ? CDFM_WORD_ECHO_MAX
                                                        : length),
                      word, length > CDFM_WORD_ECHO_MAX ? "..." : "", hint,
                      names);
}

static int parse_return(shape_parser *parser, cdfm_shape *shape) {
    const char *word;
    size_t length;
    int status;

    skip_space(parser);
    if (*parser->at == '\0')
        return parse_fail(parser, parser->at,
                          "the shape is empty; write the return type and "
                          "the arguments, e.g. 'void(site, data.int, "
                          "user)'");

    if (!read_word(parser, &word, &length))
        return parse_fail(parser, word,
                          "the return type must be 'void' or 'int'");
    status = check_word_end(parser);
    if (status != DFM_OK)
        return status;
    if (word_is(word, length, "void"))
        shape->returns_int = false;
    else if (word_is(word, length, "int"))
        shape->returns_int = true;
    else
        return parse_fail(parser, word,
                          "the return type must be 'void' or 'int', "
                          "not '%.*s'",
                          (int)(length > CDFM_ECHO_MAX ? CDFM_ECHO_MAX
                                                       : length),
                          word);

    skip_space(parser);
    if (*parser->at != '(') {
        char found[32];

        describe_char(parser->at, found, sizeof found);
        return parse_fail(parser, parser->at,
                          "expected '(' after the return type '%s', "
                          "found %s",
                          shape->returns_int ? "int" : "void", found);
    }
    parser->at++;
    return DFM_OK;
}

/* Appends one named argument's getters; `variadic` says it comes after
 * "...", where C's default promotions apply. */
static int append_argument(shape_parser *parser, cdfm_shape *shape,
                           const char *word, size_t length, bool variadic) {
    const shape_argument *argument = NULL;
    unsigned index;

    for (index = 0; index < SHAPE_ARGUMENT_COUNT; index++) {
        if (word_is(word, length, shape_arguments[index].name)) {
            argument = &shape_arguments[index];
            break;
        }
    }
    if (argument == NULL)
        return fail_unknown_argument(parser, word, length);

    if (shape->arg_count + argument->width > CDFM_SHAPE_MAX_ARGS)
        return parse_fail(parser, word,
                          "too many arguments: '%s' would be C argument "
                          "%u, and a shape passes at most %d (data.bytes "
                          "counts as two)",
                          argument->name,
                          shape->arg_count + argument->width,
                          CDFM_SHAPE_MAX_ARGS);

    /* A variadic bool arrives as an int (C's default promotions), and
     * ffi_prep_cif_var refuses types narrower than int after "...". */
    for (index = 0; index < argument->width; index++) {
        unsigned op = argument->op + index;

        if (variadic && op == OP_DATA_BOOL)
            op = OP_DATA_BOOL_PROMOTED;
        shape->ops[shape->arg_count++] = (unsigned char)op;
    }
    return DFM_OK;
}

static int parse_arguments(shape_parser *parser, cdfm_shape *shape) {
    const char *before = "'('";
    int status;

    skip_space(parser);
    if (*parser->at == ')') {
        parser->at++;
        return DFM_OK;
    }

    for (;;) {
        const char *start;
        const char *word;
        size_t length;
        char found[32];

        skip_space(parser);
        start = parser->at;
        if (strncmp(start, "...", 3) == 0) {
            if (shape->variadic)
                return parse_fail(parser, start,
                                  "'...' may appear only once");
            if (shape->arg_count == 0)
                return parse_fail(parser, start,
                                  "'...' needs at least one argument "
                                  "before it: a variadic C function has "
                                  "at least one named parameter");
            shape->variadic = true;
            shape->fixed_count = shape->arg_count;
            parser->at += 3;
            word = start;
            length = 3;
        } else if (read_word(parser, &word, &length)) {
            status = check_word_end(parser);
            if (status != DFM_OK)
                return status;
            status = append_argument(parser, shape, word, length,
                                     shape->variadic);
            if (status != DFM_OK)
                return status;
        } else if (*start == ',' || *start == ')' || *start == '\0') {
            describe_char(start, found, sizeof found);
            return parse_fail(parser, start,
                              "expected an argument after %s, found %s",
                              before, found);
        } else {
            describe_char(start, found, sizeof found);
            return parse_fail(parser, start,
                              "unexpected %s; an argument is a name such "
                              "as 'site' or 'data.int', or '...'",
                              found);
        }

        skip_space(parser);
        if (*parser->at == ',') {
            parser->at++;
            before = "','";
            continue;
        }
        if (*parser->at == ')') {
            parser->at++;
            return DFM_OK;
        }
        if (*parser->at == '\0')
            return parse_fail(parser, parser->at,
                              "the shape ends before its closing ')'");
        describe_char(parser->at, found, sizeof found);
        return parse_fail(parser, parser->at,
                          "expected ',' or ')' after the argument '%.*s', "
                          "found %s",
                          (int)(length > CDFM_ECHO_MAX ? CDFM_ECHO_MAX
                                                       : length),
                          word, found);
    }
}

static int parse_shape(shape_parser *parser, cdfm_shape *shape) {
    int status;

    status = parse_return(parser, shape);
    if (status != DFM_OK)
        return status;

    status = parse_arguments(parser, shape);
    if (status != DFM_OK)
        return status;

    skip_space(parser);
    if (*parser->at != '\0') {
        bool cut;
        int length = echo_length(parser->at, &cut);

        return parse_fail(parser, parser->at,
                          "unexpected text after the closing ')': "
                          "'%.*s%s'",
                          length, parser->at, cut ? "..." : "");
    }
    return DFM_OK;
}

/* ---- Stubs ------------------------------------------------------------ */

/*
 * Why a stub passes exactly what libffi passes.  On the targets below,
 * every C argument of pointer type, int64_t or size_t travels the same
 * way: the same 64 bits, in the next integer register, or in one 8-byte
 * stack slot once those run out.  A double travels in a floating-point
 * register (or, on Win64, in the register of its position).  So calling
 * the function through a prototype that spells each such parameter as
 * uint64_t, and each double as a double in its own position, loads the
 * very registers and stack slots that a call through the function's own
 * prototype loads, and the int or void return comes back the same way.
 *
 * ISO C calls a call through a non-compatible function type undefined, so
 * the stubs are compiled only for the ABIs named here (and only where
 * pointers and size_t are 64 bits).  Everything whose passing depends on
 * the exact type goes through libffi, which implements the ABI: bool,
 * promoted ints, variadic calls, more than one double, more than six
 * arguments.  Build with CDFM_SHAPE_NO_STUBS to use libffi for all.
 *
 * A stub reads its arguments straight from the token into the call, by a
 * table of token offsets made at create.  Filling a slot array first, with
 * a switch per argument, cost about 11 ns over a direct call for the
 * six-argument benchmark shape; reading the token in the stub costs about
 * 3 ns (x86-64, gcc 12 and clang 21, -O2).
 */
#if !defined(CDFM_SHAPE_NO_STUBS) \
    && (defined(__x86_64__) || defined(_M_X64) \
        || defined(__aarch64__) || defined(_M_ARM64)) \
    && UINTPTR_MAX == UINT64_MAX && SIZE_MAX == UINT64_MAX
#  define CDFM_SHAPE_STUBS 1
#else
#  define CDFM_SHAPE_STUBS 0
#endif

#if CDFM_SHAPE_STUBS

/* The offsets a stub reads must fit its unsigned char table. */
CDFM_STATIC_ASSERT(token_fits_offsets, sizeof(dfm_token) <= 255);

/*
 * Four families of stubs share one list.  Most shapes name token fields and
 * at most one other argument (user_data, or the address of the node, the
 * frame, the data or the token).  With none, the "none" stubs read every
 * word as a field.  With one, computed once per call: the "last" stubs,
 * for the usual C convention of user_data (or the token) last, know its
 * position when compiled; the "one" stubs compare each position with it.
 * Shapes with more such arguments, e.g. "int(token, user)", get "any"
 * stubs, which choose the source of every word.
 */
static inline uint64_t word_field(const cdfm_shape *shape,
                                  const dfm_token *token, unsigned index) {
    uint64_t word;

    memcpy(&word,
           (const unsigned char *)token + shape->stub_offsets[index],
           sizeof word);
    return word;
}

static inline uint64_t word_last(const cdfm_shape *shape,
                                 const dfm_token *token, uint64_t special,
                                 unsigned index, unsigned last) {
    return index == last ? special : word_field(shape, token, index);
}

static inline uint64_t special_value(const cdfm_shape *shape,
                                     const dfm_token *token,
                                     void *user_data) {
    if (shape->stub_special_source == SOURCE_USER)
        return (uint64_t)(uintptr_t)user_data;
    return (uint64_t)(uintptr_t)((const unsigned char *)token
                                 + shape->stub_special_offset);
}

static inline uint64_t word_one(const cdfm_shape *shape,
                                const dfm_token *token, uint64_t special,
                                unsigned index) {
    uint64_t word;

    /* The special argument's offset is 0, so this load stays in the
     * token even where its value is not used. */
    memcpy(&word,
           (const unsigned char *)token + shape->stub_offsets[index],
           sizeof word);
    return index == shape->stub_special_index ? special : word;
}

static inline uint64_t word_any(const cdfm_shape *shape,
                                const dfm_token *token, void *user_data,
                                unsigned index) {
    const unsigned char *field =
        (const unsigned char *)token + shape->stub_offsets[index];
    unsigned source = shape->stub_sources[index];
    uint64_t other = source == SOURCE_USER ? (uint64_t)(uintptr_t)user_data
                                           : (uint64_t)(uintptr_t)field;
    uint64_t word;

    memcpy(&word, field, sizeof word);
    return source == SOURCE_FIELD ? word : other;
}

/* The one double a stub passes is data.double, which takes INT too. */
static inline double stub_real(const dfm_token *token) {
    if (token->data.kind == DFM_VALUE_INT)
        return (double)token->data.as.integer;
    return token->data.as.real;
}

#define D(index) stub_real(token)

/* Every stub: its name, its C argument count, the position of its double
 * (-1: none), its parameter list and the matching argument list.  Up to
 * six word arguments, and up to five with one double anywhere. */
#define CDFM_STUBS(X) \
    X(stub_0, 0, -1, (void), ()) \
    X(stub_w, 1, -1, (uint64_t), (W(0))) \
    X(stub_ww, 2, -1, (uint64_t, uint64_t), (W(0), W(1))) \
    X(stub_www, 3, -1, (uint64_t, uint64_t, uint64_t), \
      (W(0), W(1), W(2))) \
    X(stub_wwww, 4, -1, (uint64_t, uint64_t, uint64_t, uint64_t), \
      (W(0), W(1), W(2), W(3))) \
    X(stub_wwwww, 5, -1, \
      (uint64_t, uint64_t, uint64_t, uint64_t, uint64_t), \
      (W(0), W(1), W(2), W(3), W(4))) \
    X(stub_wwwwww, 6, -1, \
      (uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, uint64_t), \
      (W(0), W(1), W(2), W(3), W(4), W(5))) \
    X(stub_d, 1, 0, (double), (D(0))) \
    X(stub_dw, 2, 0, (double, uint64_t), (D(0), W(1))) \
    X(stub_wd, 2, 1, (uint64_t, double), (W(0), D(1))) \
    X(stub_dww, 3, 0, (double, uint64_t, uint64_t), \
      (D(0), W(1), W(2))) \
    X(stub_wdw, 3, 1, (uint64_t, double, uint64_t), \
      (W(0), D(1), W(2))) \
    X(stub_wwd, 3, 2, (uint64_t, uint64_t, double), \
      (W(0), W(1), D(2))) \
    X(stub_dwww, 4, 0, (double, uint64_t, uint64_t, uint64_t), \
      (D(0), W(1), W(2), W(3))) \
    X(stub_wdww, 4, 1, (uint64_t, double, uint64_t, uint64_t), \
      (W(0), D(1), W(2), W(3))) \
    X(stub_wwdw, 4, 2, (uint64_t, uint64_t, double, uint64_t), \
      (W(0), W(1), D(2), W(3))) \
    X(stub_wwwd, 4, 3, (uint64_t, uint64_t, uint64_t, double), \
      (W(0), W(1), W(2), D(3))) \
    X(stub_dwwww, 5, 0, \
      (double, uint64_t, uint64_t, uint64_t, uint64_t), \
      (D(0), W(1), W(2), W(3), W(4))) \
    X(stub_wdwww, 5, 1, \
      (uint64_t, double, uint64_t, uint64_t, uint64_t), \
      (W(0), D(1), W(2), W(3), W(4))) \
    X(stub_wwdww, 5, 2, \
      (uint64_t, uint64_t, double, uint64_t, uint64_t), \
      (W(0), W(1), D(2), W(3), W(4))) \
    X(stub_wwwdw, 5, 3, \
      (uint64_t, uint64_t, uint64_t, double, uint64_t), \
      (W(0), W(1), W(2), D(3), W(4))) \
    X(stub_wwwwd, 5, 4, \
      (uint64_t, uint64_t, uint64_t, uint64_t, double), \
      (W(0), W(1), W(2), W(3), D(4))) \
    X(stub_dwwwww, 6, 0, \
      (double, uint64_t, uint64_t, uint64_t, uint64_t, uint64_t), \
      (D(0), W(1), W(2), W(3), W(4), W(5))) \
    X(stub_wdwwww, 6, 1, \
      (uint64_t, double, uint64_t, uint64_t, uint64_t, uint64_t), \
      (W(0), D(1), W(2), W(3), W(4), W(5))) \
    X(stub_wwdwww, 6, 2, \
      (uint64_t, uint64_t, double, uint64_t, uint64_t, uint64_t), \
      (W(0), W(1), D(2), W(3), W(4), W(5))) \
    X(stub_wwwdww, 6, 3, \
      (uint64_t, uint64_t, uint64_t, double, uint64_t, uint64_t), \
      (W(0), W(1), W(2), D(3), W(4), W(5))) \
    X(stub_wwwwdw, 6, 4, \
      (uint64_t, uint64_t, uint64_t, uint64_t, double, uint64_t), \
      (W(0), W(1), W(2), W(3), D(4), W(5))) \
    X(stub_wwwwwd, 6, 5, \
      (uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, double), \
      (W(0), W(1), W(2), W(3), W(4), D(5)))

/* clang's -fsanitize=function compares the C types of caller and callee,
 * which the stubs deliberately differ in (see above); the check is turned
 * off for the stubs alone, so the rest of the library keeps it. */
#if defined(__clang__)
#  define CDFM_STUB_ATTRIBUTES __attribute__((no_sanitize("function")))
#else
#  define CDFM_STUB_ATTRIBUTES
#endif

/* One stub in both return flavours.  STUB_SETUP and W(index) are defined
 * per family just before the list is expanded for it. */
#define CDFM_DEFINE_STUB(name, count, parameters, arguments)            \
    static CDFM_STUB_ATTRIBUTES int64_t name##_void(                    \
        const cdfm_shape *shape, const dfm_token *token,                \
        void *user_data) {                                              \
        enum { stub_last = (count) - 1 };                               \
        STUB_SETUP                                                      \
        ((void (*) parameters)shape->function) arguments;               \
        return 0;                                                       \
    }                                                                   \
    static CDFM_STUB_ATTRIBUTES int64_t name##_int(                     \
        const cdfm_shape *shape, const dfm_token *token,                \
        void *user_data) {                                              \
        enum { stub_last = (count) - 1 };                               \
        STUB_SETUP                                                      \
        return (int64_t)(uint32_t)                                      \
            ((int (*) parameters)shape->function) arguments;            \
    }

#define CDFM_DEFINE_STUB_NONE(name, count, double_at, parameters, arguments) \
    CDFM_DEFINE_STUB(name##_none, count, parameters, arguments)
#define CDFM_DEFINE_STUB_LAST(name, count, double_at, parameters, arguments) \
    CDFM_DEFINE_STUB(name##_last, count, parameters, arguments)
#define CDFM_DEFINE_STUB_ONE(name, count, double_at, parameters, arguments) \
    CDFM_DEFINE_STUB(name##_one, count, parameters, arguments)
#define CDFM_DEFINE_STUB_ANY(name, count, double_at, parameters, arguments) \
    CDFM_DEFINE_STUB(name##_any, count, parameters, arguments)

#define STUB_SETUP                                                      \
    (void)token;                                                        \
    (void)user_data;
#define W(index) word_field(shape, token, index)
CDFM_STUBS(CDFM_DEFINE_STUB_NONE)
#undef STUB_SETUP
#undef W

#define STUB_SETUP                                                      \
    uint64_t special = special_value(shape, token, user_data);          \
    (void)special;
#define W(index) word_last(shape, token, special, index, stub_last)
CDFM_STUBS(CDFM_DEFINE_STUB_LAST)
#undef W

#define W(index) word_one(shape, token, special, index)
CDFM_STUBS(CDFM_DEFINE_STUB_ONE)
#undef STUB_SETUP
#undef W

#define STUB_SETUP                                                      \
    (void)token;                                                        \
    (void)user_data;
#define W(index) word_any(shape, token, user_data, index)
CDFM_STUBS(CDFM_DEFINE_STUB_ANY)
#undef STUB_SETUP
#undef W
#undef D

typedef struct stub_entry {
    unsigned count;
    int double_at;
    cdfm_stub none_void;
    cdfm_stub none_int;
    cdfm_stub last_void;
    cdfm_stub last_int;
    cdfm_stub one_void;
    cdfm_stub one_int;
    cdfm_stub any_void;
    cdfm_stub any_int;
} stub_entry;

#define CDFM_STUB_ENTRY(name, count, double_at, parameters, arguments) \
    { count, double_at, name##_none_void, name##_none_int,             \
      name##_last_void, name##_last_int, name##_one_void,              \
      name##_one_int, name##_any_void, name##_any_int },

static const stub_entry stub_entries[] = {
    CDFM_STUBS(CDFM_STUB_ENTRY)
};

/* Where a stub finds the C argument of getter `op`; false for a getter
 * whose value is not one plain word of the token (bool, promoted bool). */
static bool stub_source(unsigned op, unsigned *offset, unsigned *source) {
    *source = SOURCE_FIELD;
    *offset = 0;
    switch (op) {
    case OP_SITE:
        *offset = offsetof(dfm_token, source_site);
        return true;
    case OP_PLACE:
        *offset = offsetof(dfm_token, target_place);
        return true;
    case OP_NODE:
        *offset = offsetof(dfm_token, source_node);
        *source = SOURCE_ADDRESS;
        return true;
    case OP_NODE_INT:
        *offset = offsetof(dfm_token, source_node.id);
        return true;
    case OP_NODE_NAME:
        *offset = offsetof(dfm_token, source_node.name);
        return true;
    case OP_FRAME:
        *offset = offsetof(dfm_token, frame);
        *source = SOURCE_ADDRESS;
        return true;
    case OP_FRAME_LEVELS:
        *offset = offsetof(dfm_token, frame.levels);
        return true;
    case OP_FRAME_DEPTH:
        *offset = offsetof(dfm_token, frame.depth);
        return true;
    case OP_DATA:
        *offset = offsetof(dfm_token, data);
        *source = SOURCE_ADDRESS;
        return true;
    case OP_DATA_INT:
        *offset = offsetof(dfm_token, data.as.integer);
        return true;
    case OP_DATA_DOUBLE:
        /* Read by stub_real, which needs no offset. */
        return true;
    case OP_DATA_STRING:
        *offset = offsetof(dfm_token, data.as.text.data);
        return true;
    case OP_DATA_BYTES:
        *offset = offsetof(dfm_token, data.as.bytes.data);
        return true;
    case OP_DATA_BYTES_LENGTH:
        *offset = offsetof(dfm_token, data.as.bytes.length);
        return true;
    case OP_DATA_OBJECT:
        *offset = offsetof(dfm_token, data.as.object.pointer);
        return true;
    case OP_TOKEN:
        *source = SOURCE_ADDRESS;
        return true;
    case OP_USER:
        *source = SOURCE_USER;
        return true;
    default:
        return false;
    }
}

/* Picks the stub for a parsed shape and writes where it reads each
 * argument; leaves shape->stub NULL when libffi must make the call. */
static void prepare_stub(cdfm_shape *shape) {
    unsigned specials = 0;
    int double_at = -1;
    unsigned index;

    if (shape->variadic)
        return;
    shape->stub_special_index = NO_SPECIAL;
    for (index = 0; index < shape->arg_count; index++) {
        unsigned op = shape->ops[index];
        unsigned offset, source;

        if (!stub_source(op, &offset, &source))
            return;
        if (op == OP_DATA_DOUBLE) {
            if (double_at >= 0)
                return;
            double_at = (int)index;
        }
        if (op == OP_DATA_STRING)
            shape->stub_needs_text = true;
        shape->stub_offsets[index] = (unsigned char)offset;
        shape->stub_sources[index] = (unsigned char)source;

        /* The "one" stubs load the special argument's word from offset 0
         * and replace it; the "any" stubs use the offset as written. */
        if (source != SOURCE_FIELD) {
            specials++;
            shape->stub_special_index = (unsigned char)index;
            shape->stub_special_source = (unsigned char)source;
            shape->stub_special_offset = (unsigned char)offset;
        }
    }
    if (specials == 1)
        shape->stub_offsets[shape->stub_special_index] = 0;

    for (index = 0; index < sizeof stub_entries / sizeof stub_entries[0];
         index++) {
        const stub_entry *entry = &stub_entries[index];

        if (entry->count != shape->arg_count
            || entry->double_at != double_at)
            continue;
        if (specials == 0)
            shape->stub = shape->returns_int ? entry->none_int
                                             : entry->none_void;
        else if (specials == 1
                 && shape->stub_special_index == shape->arg_count - 1)
            shape->stub = shape->returns_int ? entry->last_int
                                             : entry->last_void;
        else if (specials == 1)
            shape->stub = shape->returns_int ? entry->one_int
                                             : entry->one_void;
        else
            shape->stub = shape->returns_int ? entry->any_int
                                             : entry->any_void;
        return;
    }
}

#else /* !CDFM_SHAPE_STUBS */

static void prepare_stub(cdfm_shape *shape) {
    (void)shape;
}

#endif /* CDFM_SHAPE_STUBS */

/* ---- Create and destroy ----------------------------------------------- */

int cdfm_shape_create(const char *text, void (*function)(void),
                      cdfm_shape **out, char *message, size_t capacity) {
    shape_parser parser;
    cdfm_shape *shape;
    ffi_type *return_type;
    ffi_status prepared;
    unsigned index;
    int status;

    if (out == NULL || function == NULL) {
        message_format(message, capacity, "%s is NULL",
                       out == NULL ? "the result pointer" : "the function");
        return DFM_ERR_INVALID_ARGUMENT;
    }
    *out = NULL;
    if (text == NULL) {
        message_format(message, capacity,
                       "the shape is NULL; pass a string such as "
                       "'void(site, data.int, user)'");
        return DFM_ERR_BAD_SHAPE;
    }

    shape = calloc(1, sizeof *shape);
    if (shape == NULL) {
        message_format(message, capacity,
                       "out of memory while preparing shape '%s'", text);
        return DFM_ERR_NO_MEMORY;
    }
    shape->function = function;

    parser.text = text;
    parser.at = text;
    parser.message = message;
    parser.capacity = capacity;
    status = parse_shape(&parser, shape);
    if (status != DFM_OK) {
        free(shape);
        return status;
    }

    shape->data_kinds = KINDS_ANY;
    shape->node_kinds = KINDS_ANY;
    for (index = 0; index < shape->arg_count; index++) {
        shape->data_kinds &= op_data_kinds(shape->ops[index]);
        shape->node_kinds &= op_node_kinds(shape->ops[index]);
    }

    /* Prepare libffi for every shape, stub or not, so cdfm_shape_call_ffi
     * can always check a stub against it. */
    for (index = 0; index < shape->arg_count; index++)
        shape->arg_types[index] = op_ffi_type(shape->ops[index]);
    return_type = shape->returns_int ? &ffi_type_sint : &ffi_type_void;
    if (shape->variadic)
        prepared = ffi_prep_cif_var(&shape->cif, FFI_DEFAULT_ABI,
                                    shape->fixed_count, shape->arg_count,
                                    return_type, shape->arg_types);
    else
        prepared = ffi_prep_cif(&shape->cif, FFI_DEFAULT_ABI,
                                shape->arg_count, return_type,
                                shape->arg_types);
    if (prepared != FFI_OK) {
        message_format(message, capacity,
                       "libffi could not prepare the call for shape '%s' "
                       "(ffi_status %d)", text, (int)prepared);
        free(shape);
        return DFM_ERR_BAD_SHAPE;
    }

    prepare_stub(shape);
    *out = shape;
    return DFM_OK;
}

void cdfm_shape_destroy(cdfm_shape *shape) {
    free(shape);
}

bool cdfm_shape_has_stub(const cdfm_shape *shape) {
    return shape != NULL && shape->stub != NULL;
}

bool cdfm_shape_returns_int(const cdfm_shape *shape) {
    return shape != NULL && shape->returns_int;
}

/* ---- The general path ------------------------------------------------- */

/* One C argument, written by a getter and read by libffi.  Each getter
 * writes the member of the argument's own C type, and libffi reads the
 * bytes its ffi_type names, so the two always agree. */
typedef union cdfm_slot {
    const void *pointer;
    int64_t integer;
    size_t size;
    double real;
    bool boolean;
    int promoted;
} cdfm_slot;

static const char *value_kind_name(int kind) {
    static const char *const names[] = {
        "NONE", "BOOL", "INT", "DOUBLE", "STRING", "BYTES", "JSON",
        "OBJECT", "STOP", "ERROR"
    };

    if (kind < 0 || kind >= (int)(sizeof names / sizeof names[0]))
        return NULL;
    return names[kind];
}

static const char *node_kind_name(int kind) {
    static const char *const names[] = { "NONE", "INT", "NAME" };

    if (kind < 0 || kind >= (int)(sizeof names / sizeof names[0]))
        return NULL;
    return names[kind];
}

/* What a getter accepts, in words, for the message when a token does not
 * fit; it says in prose what op_data_kinds and op_node_kinds encode. */
static const char *op_accepts(unsigned op) {
    switch (op) {
    case OP_NODE_INT:
        return "an INT node";
    case OP_NODE_NAME:
        return "a NAME node";
    case OP_DATA_BOOL:
    case OP_DATA_BOOL_PROMOTED:
        return "BOOL data";
    case OP_DATA_INT:
        return "INT data";
    case OP_DATA_DOUBLE:
        return "DOUBLE or INT data";
    case OP_DATA_STRING:
        return "STRING, JSON or ERROR data";
    case OP_DATA_BYTES:
    case OP_DATA_BYTES_LENGTH:
        return "BYTES, STRING, JSON or ERROR data";
    case OP_DATA_OBJECT:
        return "OBJECT data";
    default:
        return "any token";
    }
}

/* Names the first argument of the shape that the token does not fit. */
static CDFM_COLD int report_mismatch(const cdfm_shape *shape,
                                     const dfm_token *token, char *message,
                                     size_t capacity) {
    const char *place = token->target_place != NULL ? token->target_place
                                                    : "(null)";
    unsigned failed = 0;
    unsigned position = 1;
    unsigned op = OP_DATA;
    const char *kind_name;
    bool is_node = false;
    char found[32];
    int kind;
    bool cut;
    int place_length = echo_length(place, &cut);

    /* The position is the argument's place in the shape as the host wrote
     * it: data.bytes is one argument there, though it is two C ones. */
    for (failed = 0; failed < shape->arg_count; failed++) {
        op = shape->ops[failed];
        if (!kind_fits(op_node_kinds(op), (int)token->source_node.kind)) {
            is_node = true;
            break;
        }
        if (!kind_fits(op_data_kinds(op), (int)token->data.kind))
            break;
        if (op != OP_DATA_BYTES_LENGTH)
            position++;
    }

    kind = is_node ? (int)token->source_node.kind : (int)token->data.kind;
    kind_name = is_node ? node_kind_name(kind) : value_kind_name(kind);
    if (kind_name != NULL)
        message_format(found, sizeof found, "%s", kind_name);
    else
        message_format(found, sizeof found, "of unknown kind %d", kind);

    message_format(message, capacity,
                   "place '%.*s%s': shape declares %s (argument %u), which "
                   "takes %s, but the token's %s is %s",
                   place_length, place, cut ? "..." : "", op_name(op),
                   position, op_accepts(op), is_node ? "node" : "data",
                   found);
    return DFM_ERR_TYPE_MISMATCH;
}

/* Fills one slot per C argument from a token already known to fit. */
static void fill_slots(const cdfm_shape *shape, const dfm_token *token,
                       void *user_data, cdfm_slot *slots) {
    const dfm_value *data = &token->data;
    unsigned index;

    for (index = 0; index < shape->arg_count; index++) {
        cdfm_slot *slot = &slots[index];

        switch (shape->ops[index]) {
        case OP_SITE:
            slot->pointer = token->source_site;
            break;
        case OP_PLACE:
            slot->pointer = token->target_place;
            break;
        case OP_NODE:
            slot->pointer = &token->source_node;
            break;
        case OP_NODE_INT:
            slot->integer = token->source_node.id;
            break;
        case OP_NODE_NAME:
            slot->pointer = token->source_node.name;
            break;
        case OP_FRAME:
            slot->pointer = &token->frame;
            break;
        case OP_FRAME_LEVELS:
            slot->pointer = token->frame.levels;
            break;
        case OP_FRAME_DEPTH:
            slot->size = token->frame.depth;
            break;
        case OP_DATA:
            slot->pointer = data;
            break;
        case OP_DATA_BOOL:
            slot->boolean = data->as.boolean;
            break;
        case OP_DATA_BOOL_PROMOTED:
            slot->promoted = data->as.boolean ? 1 : 0;
            break;
        case OP_DATA_INT:
            slot->integer = data->as.integer;
            break;
        case OP_DATA_DOUBLE:
            slot->real = data->kind == DFM_VALUE_INT
                             ? (double)data->as.integer
                             : data->as.real;
            break;
        case OP_DATA_STRING:
            slot->pointer = data->as.text.data != NULL ? data->as.text.data
                                                       : "";
            break;
        case OP_DATA_BYTES:
            /* Text and bytes share one layout (asserted at the top). */
            slot->pointer = data->as.bytes.data;
            break;
        case OP_DATA_BYTES_LENGTH:
            slot->size = data->as.bytes.length;
            break;
        case OP_DATA_OBJECT:
            slot->pointer = data->as.object.pointer;
            break;
        case OP_TOKEN:
            slot->pointer = token;
            break;
        case OP_USER:
            slot->pointer = user_data;
            break;
        default:
            /* The parser emits no other getter. */
            break;
        }
    }
}

/* Checks the token, converts it and calls through libffi: every shape
 * can take this path, and the ones without a stub always do. */
static CDFM_NOINLINE int call_general(const cdfm_shape *shape,
                                      const dfm_token *token,
                                      void *user_data, int *result,
                                      char *message, size_t capacity) {
    cdfm_slot slots[CDFM_SHAPE_MAX_ARGS];
    void *values[CDFM_SHAPE_MAX_ARGS];
    ffi_arg returned = 0;
    unsigned index;

    if (!kind_fits(shape->data_kinds, (int)token->data.kind)
        || !kind_fits(shape->node_kinds, (int)token->source_node.kind))
        return report_mismatch(shape, token, message, capacity);

    fill_slots(shape, token, user_data, slots);
    for (index = 0; index < shape->arg_count; index++)
        values[index] = &slots[index];

    /* ffi_call takes a non-const cif but only reads it, which is what
     * lets one prepared shape serve several threads at once. */
    ffi_call((ffi_cif *)&shape->cif, shape->function, &returned, values);

    /* libffi widens an int return to a full ffi_arg register. */
    *result = shape->returns_int ? (int)(ffi_sarg)returned : 0;
    return DFM_OK;
}

/* ---- Calls ------------------------------------------------------------ */

/* True when the stub may make this call: the token's kinds fit, and no
 * string pointer needs replacing.  Anything else, a mismatch included,
 * goes to the general path, which decides and explains. */
static inline bool stub_takes(const cdfm_shape *shape,
                              const dfm_token *token) {
    unsigned data_kind = (unsigned)token->data.kind;
    unsigned node_kind = (unsigned)token->source_node.kind;

    if ((data_kind | node_kind) > 31)
        return false;
    if (((shape->data_kinds >> data_kind) & 1) == 0
        || ((shape->node_kinds >> node_kind) & 1) == 0)
        return false;
    return !shape->stub_needs_text || token->data.as.text.data != NULL;
}

int cdfm_shape_call(const cdfm_shape *shape, const dfm_token *token,
                    void *user_data, int *result, char *message,
                    size_t capacity) {
    if (shape->stub != NULL && stub_takes(shape, token)) {
        int64_t packed = shape->stub(shape, token, user_data);

        *result = (int)(uint32_t)packed;
        return (int)(packed >> 32);
    }
    return call_general(shape, token, user_data, result, message,
                        capacity);
}

/* Out of line, so that cdfm_shape_invoke needs no frame of its own. */
static __attribute__((noinline)) int64_t invoke_general(
    const cdfm_shape *shape, const dfm_token *token, void *user_data) {
    int result = 0;
    int status = call_general(shape, token, user_data, &result, NULL, 0);

    return (int64_t)((uint64_t)(uint32_t)status << 32 | (uint32_t)result);
}

int64_t cdfm_shape_invoke(const cdfm_shape *shape, const dfm_token *token,
                          void *user_data) {
    /* Both are tail calls: the stub path costs one test and one jump over
     * calling the stub directly. */
    if (shape->stub != NULL && stub_takes(shape, token))
        return shape->stub(shape, token, user_data);
    return invoke_general(shape, token, user_data);
}

int cdfm_shape_call_ffi(const cdfm_shape *shape, const dfm_token *token,
                        void *user_data, int *result, char *message,
                        size_t capacity) {
    return call_general(shape, token, user_data, result, message,
                        capacity);
}
