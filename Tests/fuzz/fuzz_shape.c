/*
 * fuzz_shape.c - libFuzzer target: arbitrary bytes as the shape string of
 * dfm_callbacks_add_shaped.
 *
 * The answer must be DFM_OK, or DFM_ERR_BAD_SHAPE with a message in
 * dfm_last_error() that names a column inside the shape ("shape column
 * N: ..."); never a crash, a hang or another status.  A shape that is
 * accepted is then used: a direct runner delivers one token of every
 * kind to it, and each must either reach the function or be refused as a
 * type mismatch, with every OBJECT payload released once.
 *
 * The function registered is a stand-in that takes nothing and returns
 * 0.  Calling it through a shape that declares arguments passes values
 * it ignores; on the x86-64 and AArch64 calling conventions the caller
 * places and removes them, so this is harmless there.
 *
 * The library is not built with coverage instrumentation.  So that
 * libFuzzer still sees which paths of the parser an input reaches, the
 * build may compile the parser's source into this program as well
 * (-DDFM_FUZZ_WITH_SHIM, see scripts/reliability.sh): each input then
 * also goes through that instrumented copy, whose answer must agree with
 * the library's.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dfmdispatch.h"

#ifdef DFM_FUZZ_WITH_SHIM
#include "cdfm_shaped.h"
#endif

#define FUZZ_ASSERT(cond, ...)                                       \
    do {                                                             \
        if (!(cond)) {                                               \
            fprintf(stderr, "fuzz_shape: %s:%d: %s\n    ", __FILE__, \
                    __LINE__, #cond);                                \
            fprintf(stderr, __VA_ARGS__);                            \
            fprintf(stderr, "\n");                                   \
            abort();                                                 \
        }                                                            \
    } while (0)

static int stand_in(void)
{
    return 0;
}

static int releases[2];

static void count_release(void *pointer)
{
    (*(int *)pointer)++;
}

typedef struct reports {
    int mismatches;
    int failures;
    int others;
} reports;

static void count_report(const dfm_token *token, int status,
                         const char *message, void *context)
{
    reports *seen = (reports *)context;

    (void)token;
    FUZZ_ASSERT(message != NULL && message[0] != '\0',
                "an error report without a message");
    if (status == DFM_ERR_TYPE_MISMATCH)
        seen->mismatches++;
    else if (status == DFM_ERR_CALLBACK_FAILED)
        seen->failures++;
    else
        seen->others++;
}

/* The column named by "shape column N:" in message, or 0. */
static unsigned long column_in(const char *message)
{
    const char *at = strstr(message, "column ");

    if (at == NULL)
        return 0;
    return strtoul(at + strlen("column "), NULL, 10);
}

/* One token of each value kind, with nodes of each kind. */
static size_t tokens_of_every_kind(dfm_token *tokens)
{
    static const int64_t levels[2] = { 3, 4 };
    static const unsigned char bytes[3] = { 1, 2, 3 };
    size_t count = 0;
    int kind;

    for (kind = DFM_VALUE_NONE; kind <= DFM_VALUE_ERROR; kind++) {
        dfm_token *token = &tokens[count++];

        memset(token, 0, sizeof *token);
        token->source_site = "site";
        token->target_place = "place";
        token->source_node.kind = (dfm_node_kind)(kind % 3);
        token->source_node.id = kind;
        token->source_node.name = "node";
        token->frame.levels = kind % 2 ? levels : NULL;
        token->frame.depth = kind % 2 ? 2 : 0;
        token->data.kind = (dfm_value_kind)kind;
        switch (kind) {
        case DFM_VALUE_BOOL:
            token->data.as.boolean = true;
            break;
        case DFM_VALUE_INT:
            token->data.as.integer = -7;
            break;
        case DFM_VALUE_DOUBLE:
            token->data.as.real = 0.5;
            break;
        case DFM_VALUE_STRING:
        case DFM_VALUE_JSON:
        case DFM_VALUE_ERROR:
            token->data.as.text.data = "text";
            token->data.as.text.length = 4;
            break;
        case DFM_VALUE_BYTES:
            token->data.as.bytes.data = bytes;
            token->data.as.bytes.length = sizeof bytes;
            break;
        case DFM_VALUE_OBJECT:
            token->data.as.object.pointer = &releases[1];
            token->data.as.object.release = count_release;
            break;
        default:
            break;
        }
    }
    return count;
}

/* Delivers one token of each kind through an accepted shape. */
static void use_shape(const dfm_callbacks *set)
{
    dfm_dispatcher *direct = dfm_direct_dispatcher_create();
    dfm_runner *runner = NULL;
    dfm_token tokens[DFM_VALUE_ERROR + 1];
    size_t count = tokens_of_every_kind(tokens);
    dfm_stats stats;
    int status;

    FUZZ_ASSERT(direct != NULL, "%s", dfm_last_error());
    status = dfm_dispatcher_create_runner(direct, set, &runner);
    FUZZ_ASSERT(status == DFM_OK, "create_runner: %s",
                dfm_status_name(status));
    dfm_dispatcher_destroy(direct);

    releases[1] = 0;
    status = dfm_runner_dispatch(runner, tokens, count);
    FUZZ_ASSERT(status == DFM_OK || status == DFM_ERR_CALLBACK_FAILED,
                "dispatch through an accepted shape: %s (%s)",
                dfm_status_name(status), dfm_last_error());
    FUZZ_ASSERT(dfm_runner_stats(runner, &stats) == DFM_OK, "stats");
    FUZZ_ASSERT(stats.dispatched == count
                    && stats.delivered + stats.failed == count,
                "dispatched %llu, delivered %llu, failed %llu of %zu",
                (unsigned long long)stats.dispatched,
                (unsigned long long)stats.delivered,
                (unsigned long long)stats.failed, count);
    FUZZ_ASSERT((stats.failed > 0) == (status == DFM_ERR_CALLBACK_FAILED),
                "status %s with %llu failed", dfm_status_name(status),
                (unsigned long long)stats.failed);
    FUZZ_ASSERT(releases[1] == 1, "the OBJECT payload was released %d "
                "times", releases[1]);
    dfm_runner_destroy(runner);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *shape = (char *)malloc(size + 1);
    dfm_callbacks *set;
    reports seen;
    int status;

    if (shape == NULL)
        return 0;
    memcpy(shape, data, size);
    shape[size] = '\0';
    set = dfm_callbacks_create();
    FUZZ_ASSERT(set != NULL, "%s", dfm_last_error());
    memset(&seen, 0, sizeof seen);
    FUZZ_ASSERT(dfm_callbacks_set_error_handler(set, count_report, &seen)
                    == DFM_OK, "set_error_handler");

    status = dfm_callbacks_add_shaped(set, NULL, (void (*)(void))stand_in,
                                      shape, NULL);
    if (status == DFM_ERR_BAD_SHAPE) {
        const char *message = dfm_last_error();
        unsigned long column = column_in(message);

        FUZZ_ASSERT(message[0] != '\0', "BAD_SHAPE without a message");
        FUZZ_ASSERT(column >= 1 && column <= strlen(shape) + 1,
                    "the message names no column inside the shape "
                    "(length %zu): \"%s\"", strlen(shape), message);
    } else {
        FUZZ_ASSERT(status == DFM_OK, "status %s for shape \"%s\": %s",
                    dfm_status_name(status), shape, dfm_last_error());
    }

#ifdef DFM_FUZZ_WITH_SHIM
    {
        cdfm_shape *prepared = NULL;
        char message[512];
        int copy = cdfm_shape_create(shape, (void (*)(void))stand_in,
                                     &prepared, message, sizeof message);

        FUZZ_ASSERT(copy == status, "the library says %s, the parser's "
                    "source says %s, for \"%s\"", dfm_status_name(status),
                    dfm_status_name(copy), shape);
        cdfm_shape_destroy(prepared);
    }
#endif

    if (status == DFM_OK)
        use_shape(set);
    FUZZ_ASSERT(seen.others == 0, "an error report with another status");
    dfm_callbacks_destroy(set);
    free(shape);
    return 0;
}
