/*
 * common.h - small helpers shared by the C examples.
 *
 * Each example is a single file that includes this header first, so the
 * helpers are static: there is nothing to link.  Functions that end in
 * _or_die print what went wrong (the status name and dfm_last_error()) and
 * exit with status 1; an example either runs to its end or says why not.
 */
#ifndef DFM_EXAMPLES_COMMON_H
#define DFM_EXAMPLES_COMMON_H

/* clock_gettime, nanosleep and poll are POSIX, not C99. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dfmdispatch.h"

/* ---- Narrative and checks --------------------------------------------- */

/* With --check an example prints only failures and one closing line, so
 * that `make test` output stays short. */
static bool example_verbose = true;
static int example_failures = 0;

static inline void parse_args_or_die(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--check") == 0) {
        example_verbose = false;
        return;
    }
    if (argc > 1) {
        fprintf(stderr, "usage: %s [--check]\n", argv[0]);
        exit(2);
    }
}

/* Prints the guided narrative; silent under --check. */
static inline void say(const char *format, ...)
{
    va_list args;

    if (!example_verbose)
        return;
    va_start(args, format);
    vprintf(format, args);
    va_end(args);
    fflush(stdout);
}

/* Records a failed check and goes on, so one run reports every problem. */
static inline void expect(bool condition, const char *format, ...)
{
    va_list args;

    if (condition)
        return;
    example_failures++;
    fprintf(stderr, "CHECK FAILED: ");
    va_start(args, format);
    vfprintf(stderr, format, args);
    va_end(args);
    fputc('\n', stderr);
}

/* The last line of every example, and its exit status. */
static inline int finish(const char *name)
{
    if (example_failures > 0) {
        fprintf(stderr, "%s: %d check(s) failed\n", name, example_failures);
        return 1;
    }
    printf("%s: all checks passed\n", name);
    return 0;
}

/* For what the example cannot go on from. */
static inline void die(const char *format, ...)
{
    va_list args;

    va_start(args, format);
    vfprintf(stderr, format, args);
    va_end(args);
    fputc('\n', stderr);
    exit(1);
}

static inline void check_ok_or_die(dfm_status status, const char *what)
{
    if (status == DFM_OK)
        return;
    fprintf(stderr, "%s failed: %s (%s)\n", what, dfm_status_name(status),
            dfm_last_error());
    exit(1);
}

/* For the create functions, which return NULL on failure. */
static inline void *not_null_or_die(void *pointer, const char *what)
{
    if (pointer != NULL)
        return pointer;
    fprintf(stderr, "%s failed: %s\n", what, dfm_last_error());
    exit(1);
}

static inline void *alloc_or_die(size_t size)
{
    void *pointer = malloc(size);

    if (pointer != NULL)
        return pointer;
    fprintf(stderr, "out of memory (%zu bytes)\n", size);
    exit(1);
}

/* For pthread and other POSIX calls that return an error number. */
static inline void posix_ok_or_die(int error, const char *what)
{
    if (error == 0)
        return;
    fprintf(stderr, "%s failed: %s\n", what, strerror(error));
    exit(1);
}

/* ---- Time -------------------------------------------------------------- */

/* Monotonic, so that frame deadlines ignore changes to the wall clock. */
static inline uint64_t now_ns(void)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

static inline void sleep_ns(uint64_t duration)
{
    struct timespec rest;

    rest.tv_sec = (time_t)(duration / 1000000000u);
    rest.tv_nsec = (long)(duration % 1000000000u);
    while (nanosleep(&rest, &rest) != 0)
        continue;
}

static inline void sleep_ms(unsigned milliseconds)
{
    sleep_ns((uint64_t)milliseconds * 1000000u);
}

/* ---- Token builders ---------------------------------------------------- */

static inline dfm_node node_none(void)
{
    dfm_node node = { DFM_NODE_NONE, 0, NULL };
    return node;
}

static inline dfm_node node_int(int64_t id)
{
    dfm_node node = { DFM_NODE_INT, id, NULL };
    return node;
}

/* One loop level, e.g. frame [2]; `level` must outlive the dispatch call
 * (the runner copies the levels before dispatch returns). */
static inline dfm_frame frame_of(const int64_t *level)
{
    dfm_frame frame = { level, 1, false };
    return frame;
}

static inline dfm_frame stop_frame(void)
{
    dfm_frame frame = { NULL, 0, true };
    return frame;
}

static inline dfm_value value_int(int64_t integer)
{
    dfm_value value;

    value.kind = DFM_VALUE_INT;
    value.as.integer = integer;
    return value;
}

static inline dfm_value value_double(double real)
{
    dfm_value value;

    value.kind = DFM_VALUE_DOUBLE;
    value.as.real = real;
    return value;
}

/* STRING, JSON and ERROR values all carry UTF-8 text. */
static inline dfm_value value_text(dfm_value_kind kind, const char *text)
{
    dfm_value value;

    value.kind = kind;
    value.as.text.data = text;
    value.as.text.length = strlen(text);
    return value;
}

static inline dfm_value value_stop(void)
{
    dfm_value value;

    memset(&value, 0, sizeof value);
    value.kind = DFM_VALUE_STOP;
    return value;
}

static inline dfm_value value_object(void *pointer,
                                     void (*release)(void *))
{
    dfm_value value;

    value.kind = DFM_VALUE_OBJECT;
    value.as.object.pointer = pointer;
    value.as.object.release = release;
    return value;
}

static inline dfm_token make_token(const char *site, dfm_node node,
                                   dfm_frame frame, const char *place,
                                   dfm_value data)
{
    dfm_token token;

    token.source_site = site;
    token.source_node = node;
    token.frame = frame;
    token.target_place = place;
    token.data = data;
    return token;
}

/* ---- Printing ---------------------------------------------------------- */

/* "[0]", "[0, 2]" or "stop", as the pipeline writes frames. */
static inline const char *frame_text(const dfm_frame *frame,
                                     char *buffer, size_t size)
{
    size_t used;
    size_t level;

    if (frame->is_stop) {
        snprintf(buffer, size, "stop");
        return buffer;
    }
    used = (size_t)snprintf(buffer, size, "[");
    for (level = 0; level < frame->depth && used < size; level++)
        used += (size_t)snprintf(buffer + used, size - used, "%s%" PRId64,
                                 level > 0 ? ", " : "",
                                 frame->levels[level]);
    if (used < size)
        snprintf(buffer + used, size - used, "]");
    return buffer;
}

static inline void print_stats(const char *who, const dfm_stats *stats)
{
    say("%s stats: dispatched %" PRIu64 ", delivered %" PRIu64
        ", failed %" PRIu64 ", dropped %" PRIu64 ",\n"
        "    discarded %" PRIu64 ", rejected %" PRIu64 ", pending %" PRIu64
        ", pending high water %" PRIu64 "\n",
        who, stats->dispatched, stats->delivered, stats->failed,
        stats->dropped, stats->discarded, stats->rejected, stats->pending,
        stats->pending_high_water);
}

/* Every accepted token ends in exactly one of the disjoint counts. */
static inline void expect_stats_balanced(const dfm_stats *stats)
{
    uint64_t accounted = stats->delivered + stats->failed + stats->dropped +
                         stats->discarded + stats->pending;

    expect(stats->dispatched == accounted,
           "dispatched %" PRIu64 " != delivered + failed + dropped + "
           "discarded + pending = %" PRIu64,
           stats->dispatched, accounted);
    expect(stats->pending == 0, "%" PRIu64 " token(s) still pending",
           stats->pending);
}

#endif /* DFM_EXAMPLES_COMMON_H */
