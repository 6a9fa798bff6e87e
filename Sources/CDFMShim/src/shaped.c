/*
 * shaped.c - shaped callbacks: parse a shape string once, then call the
 * host's own C function with the token's fields (see cdfm_shaped.h and
 * API.md, section 5).
 *
 * The file has three parts:
 *
 *  - the parser, which turns "void(site, data.int, user)" into one getter
 *    opcode per C argument and an ffi_cif, and explains a bad shape by
 *    column;
 *  - the getters, which convert a token into an array of argument slots
 *    and refuse a token whose data or node does not fit the shape;
 *  - the two ways to call: libffi, which works for every shape, and a set
 *    of precompiled stubs for the common non-variadic shapes, which cost a
 *    few nanoseconds where ffi_call costs about a hundred.
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
 *  - Columns in messages count characters from 1, not bytes.
 */
#include "cdfm_shaped.h"

#include <ffi.h>
#include <stdarg.h>
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

#if defined(__GNUC__) || defined(__clang__)
#  define CDFM_COLD __attribute__((cold, noinline))
#  define CDFM_UNLIKELY(condition) __builtin_expect(!!(condition), 0)
#else
#  define CDFM_COLD
#  define CDFM_UNLIKELY(condition) (condition)
#endif

/* libffi has no bool type; the ABIs we run on pass bool as one unsigned
 * byte, which is what ffi_type_uint8 describes.  Fail the build anywhere
 * that is not true rather than pass a wrong value. */
typedef char cdfm_bool_is_one_byte[sizeof(bool) == 1 ? 1 : -1];

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

/* How a C argument travels in a call, which decides the stub. */
enum {
    CLASS_WORD,     /* a pointer, int64_t or size_t: one integer register */
    CLASS_DOUBLE,   /* a double: one floating-point register */
    CLASS_OTHER     /* bool or promoted int: libffi only */
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

static int op_class(unsigned op) {
    switch (op) {
    case OP_DATA_DOUBLE:
        return CLASS_DOUBLE;
    case OP_DATA_BOOL:
    case OP_DATA_BOOL_PROMOTED:
        return CLASS_OTHER;
    default:
        return CLASS_WORD;
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

/* One C argument, written by a getter and read by a stub or by libffi.
 * Each getter writes the member of the argument's own C type; libffi then
 * reads that member's bytes, and a stub reads `word` (only on targets
 * where pointers and size_t are 64 bits, so every byte is written). */
typedef union cdfm_slot {
    uint64_t word;
    const void *pointer;
    int64_t integer;
    size_t size;
    double real;
    bool boolean;
    int promoted;
} cdfm_slot;

/* ---- The prepared call ------------------------------------------------ */

typedef int (*cdfm_stub)(void (*function)(void), const cdfm_slot *slots);

struct cdfm_shape {
    void (*function)(void);
    cdfm_stub stub;                     /* NULL: always libffi */
    unsigned char ops[CDFM_SHAPE_MAX_ARGS];
    unsigned arg_count;                 /* C arguments */
    unsigned fixed_count;               /* C arguments before "..." */
    bool variadic;
    bool returns_int;

    /* libffi keeps pointers into `arg_types`, so both live here, in one
     * allocation that never moves or changes after create. */
    ffi_cif cif;
    ffi_type *arg_types[CDFM_SHAPE_MAX_ARGS];
};

/* ---- Messages --------------------------------------------------------- */

/* vsnprintf, then, if the text was cut, drop a UTF-8 sequence left
 * incomplete at the end, so a message never ends in a broken character. */
static void message_vformat(char *message, size_t capacity,
                            const char *format, va_list arguments) {
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

static void message_format(char *message, size_t capacity,
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

/* The 1-based column of `position` in characters: UTF-8 continuation
 * bytes do not start a new column. */
static unsigned column_of(const shape_parser *parser, const char *position) {
    const char *cursor;
    unsigned column = 1;

    for (cursor = parser->text; cursor < position; cursor++) {
        if (((unsigned char)*cursor & 0xC0) != 0x80)
            column++;
    }
    return column;
}

static CDFM_COLD int parse_fail(shape_parser *parser, const char *position,
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

/* Describes the character at `position` for a message: 'x' when it is
 * printable ASCII, its byte value otherwise. */
static void describe_char(const char *position, char *out, size_t size) {
    unsigned char c = (unsigned char)*position;

    if (c == '\0')
        message_format(out, size, "the end of the shape");
    else if (c >= 0x20 && c < 0x7F)
        message_format(out, size, "'%c'", c);
    else
        message_format(out, size, "the byte 0x%02X", c);
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

static CDFM_COLD int fail_unknown_argument(shape_parser *parser,
                                           const char *word, size_t length) {
    char names[256];
    char hint[64] = "";
    size_t used = 0;
    size_t best_distance = 3;
    const char *best = NULL;
    size_t index;

    /* The list comes from the table, so it cannot drift from the parser. */
    for (index = 0; index < SHAPE_ARGUMENT_COUNT; index++) {
        const char *name = shape_arguments[index].name;
        size_t distance = edit_distance(word, length, name);

        message_format(names + used, sizeof names - used, "%s%s",
                       index == 0 ? "" : ", ", name);
        used += strlen(names + used);
        if (distance < best_distance) {
            best_distance = distance;
            best = name;
        }
    }
    if (best != NULL)
        message_format(hint, sizeof hint, " (did you mean '%s'?)", best);

    return parse_fail(parser, word,
                      "unknown argument '%.*s'%s; expected one of %s",
                      (int)(length > CDFM_ECHO_MAX ? CDFM_ECHO_MAX : length),
                      word, hint, names);
}

static int parse_return(shape_parser *parser, cdfm_shape *shape) {
    const char *word;
    size_t length;

    skip_space(parser);
    if (*parser->at == '\0')
        return parse_fail(parser, parser->at,
                          "the shape is empty; write the return type and "
                          "the arguments, e.g. 'void(site, data.int, "
                          "user)'");

    if (!read_word(parser, &word, &length))
        return parse_fail(parser, word,
                          "the return type must be 'void' or 'int'");
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

#define W(index) slots[index].word
#define D(index) slots[index].real

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

#define CDFM_DEFINE_STUB(name, count, double_at, parameters, arguments) \
    static int name##_void(void (*function)(void),                      \
                           const cdfm_slot *slots) {                    \
        (void)slots;                                                    \
        ((void (*) parameters)function) arguments;                      \
        return 0;                                                       \
    }                                                                   \
    static int name##_int(void (*function)(void),                       \
                          const cdfm_slot *slots) {                     \
        (void)slots;                                                    \
        return ((int (*) parameters)function) arguments;                \
    }

CDFM_STUBS(CDFM_DEFINE_STUB)

typedef struct stub_entry {
    unsigned count;
    int double_at;
    cdfm_stub returns_void;
    cdfm_stub returns_int;
} stub_entry;

#define CDFM_STUB_ENTRY(name, count, double_at, parameters, arguments) \
    { count, double_at, name##_void, name##_int },

static const stub_entry stub_entries[] = {
    CDFM_STUBS(CDFM_STUB_ENTRY)
};

#undef W
#undef D

/* The stub for a prepared shape, or NULL when libffi must make the call. */
static cdfm_stub find_stub(const cdfm_shape *shape) {
    int double_at = -1;
    unsigned index;

    if (shape->variadic)
        return NULL;
    for (index = 0; index < shape->arg_count; index++) {
        int call_class = op_class(shape->ops[index]);

        if (call_class == CLASS_OTHER)
            return NULL;
        if (call_class == CLASS_DOUBLE) {
            if (double_at >= 0)
                return NULL;
            double_at = (int)index;
        }
    }

    for (index = 0; index < sizeof stub_entries / sizeof stub_entries[0];
         index++) {
        const stub_entry *entry = &stub_entries[index];

        if (entry->count == shape->arg_count
            && entry->double_at == double_at)
            return shape->returns_int ? entry->returns_int
                                      : entry->returns_void;
    }
    return NULL;
}

#else /* !CDFM_SHAPE_STUBS */

static cdfm_stub find_stub(const cdfm_shape *shape) {
    (void)shape;
    return NULL;
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

    shape->stub = find_stub(shape);
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

/* ---- Converting a token ----------------------------------------------- */

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

/* What a getter accepts, for the message when a token does not fit. */
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
        return "BYTES, STRING, JSON or ERROR data";
    case OP_DATA_OBJECT:
        return "OBJECT data";
    default:
        return "any token";
    }
}

static CDFM_COLD int report_mismatch(const cdfm_shape *shape,
                                     unsigned failed,
                                     const dfm_token *token, char *message,
                                     size_t capacity) {
    unsigned op = shape->ops[failed];
    bool is_node = op == OP_NODE_INT || op == OP_NODE_NAME;
    int kind = is_node ? (int)token->source_node.kind
                       : (int)token->data.kind;
    const char *kind_name = is_node ? node_kind_name(kind)
                                    : value_kind_name(kind);
    const char *place = token->target_place != NULL ? token->target_place
                                                    : "(null)";
    char found[32];
    unsigned position = 1;
    unsigned index;
    bool cut;
    int place_length = echo_length(place, &cut);

    /* The argument's position as the host wrote it: data.bytes is one
     * argument of the shape even though it is two C arguments. */
    for (index = 0; index < failed; index++) {
        if (shape->ops[index] != OP_DATA_BYTES_LENGTH)
            position++;
    }
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

/* Fills one slot per C argument from the token.  This is the hot path of
 * every shaped delivery: one switch per argument, no allocation, and the
 * type checks folded into the getters that need them. */
static inline int fill_slots(const cdfm_shape *shape, const dfm_token *token,
                             void *user_data, cdfm_slot *slots,
                             char *message, size_t capacity) {
    const dfm_value *data = &token->data;
    unsigned count = shape->arg_count;
    unsigned index;

    for (index = 0; index < count; index++) {
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
            if (CDFM_UNLIKELY(token->source_node.kind != DFM_NODE_INT))
                goto mismatch;
            slot->integer = token->source_node.id;
            break;
        case OP_NODE_NAME:
            if (CDFM_UNLIKELY(token->source_node.kind != DFM_NODE_NAME))
                goto mismatch;
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
            if (CDFM_UNLIKELY(data->kind != DFM_VALUE_BOOL))
                goto mismatch;
            slot->boolean = data->as.boolean;
            break;
        case OP_DATA_BOOL_PROMOTED:
            if (CDFM_UNLIKELY(data->kind != DFM_VALUE_BOOL))
                goto mismatch;
            slot->promoted = data->as.boolean ? 1 : 0;
            break;
        case OP_DATA_INT:
            if (CDFM_UNLIKELY(data->kind != DFM_VALUE_INT))
                goto mismatch;
            slot->integer = data->as.integer;
            break;
        case OP_DATA_DOUBLE:
            if (data->kind == DFM_VALUE_DOUBLE)
                slot->real = data->as.real;
            else if (data->kind == DFM_VALUE_INT)
                slot->real = (double)data->as.integer;
            else
                goto mismatch;
            break;
        case OP_DATA_STRING:
            if (CDFM_UNLIKELY(data->kind != DFM_VALUE_STRING
                              && data->kind != DFM_VALUE_JSON
                              && data->kind != DFM_VALUE_ERROR))
                goto mismatch;
            slot->pointer = data->as.text.data != NULL ? data->as.text.data
                                                       : "";
            break;
        case OP_DATA_BYTES:
            /* The text kinds share the layout of as.bytes, so one read
             * serves all four; OP_DATA_BYTES_LENGTH always follows. */
            if (data->kind == DFM_VALUE_BYTES) {
                slot[0].pointer = data->as.bytes.data;
                slot[1].size = data->as.bytes.length;
            } else if (data->kind == DFM_VALUE_STRING
                       || data->kind == DFM_VALUE_JSON
                       || data->kind == DFM_VALUE_ERROR) {
                slot[0].pointer = data->as.text.data;
                slot[1].size = data->as.text.length;
            } else {
                goto mismatch;
            }
            index++;
            break;
        case OP_DATA_BYTES_LENGTH:
            /* Written with its pointer above; never reached on its own. */
            break;
        case OP_DATA_OBJECT:
            if (CDFM_UNLIKELY(data->kind != DFM_VALUE_OBJECT))
                goto mismatch;
            slot->pointer = data->as.object.pointer;
            break;
        case OP_TOKEN:
            slot->pointer = token;
            break;
        case OP_USER:
            slot->pointer = user_data;
            break;
        }
    }
    return DFM_OK;

mismatch:
    return report_mismatch(shape, index, token, message, capacity);
}

/* ---- Calls ------------------------------------------------------------ */

static int call_ffi(const cdfm_shape *shape, cdfm_slot *slots) {
    void *values[CDFM_SHAPE_MAX_ARGS];
    ffi_arg returned = 0;
    unsigned index;

    for (index = 0; index < shape->arg_count; index++)
        values[index] = &slots[index];

    /* ffi_call takes a non-const cif but only reads it, which is what
     * lets one prepared shape serve several threads at once. */
    ffi_call((ffi_cif *)&shape->cif, shape->function, &returned, values);

    /* libffi widens an int return to a full ffi_arg register. */
    return shape->returns_int ? (int)(ffi_sarg)returned : 0;
}

int cdfm_shape_call(const cdfm_shape *shape, const dfm_token *token,
                    void *user_data, int *result, char *message,
                    size_t capacity) {
    cdfm_slot slots[CDFM_SHAPE_MAX_ARGS];
    int status;

    status = fill_slots(shape, token, user_data, slots, message, capacity);
    if (CDFM_UNLIKELY(status != DFM_OK))
        return status;

    if (shape->stub != NULL)
        *result = shape->stub(shape->function, slots);
    else
        *result = call_ffi(shape, slots);
    return DFM_OK;
}

int cdfm_shape_call_ffi(const cdfm_shape *shape, const dfm_token *token,
                        void *user_data, int *result, char *message,
                        size_t capacity) {
    cdfm_slot slots[CDFM_SHAPE_MAX_ARGS];
    int status;

    status = fill_slots(shape, token, user_data, slots, message, capacity);
    if (status != DFM_OK)
        return status;

    *result = call_ffi(shape, slots);
    return DFM_OK;
}
