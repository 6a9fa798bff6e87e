/*
 * check.h - the assertion helper of the C test programs.
 *
 * CHECK(cond) and CHECK_STATUS(expr, expected) count passes and failures;
 * a failure prints file:line, the test, the expression and, for a status,
 * the names of both statuses and dfm_last_error() of the calling thread.
 * Neither aborts: a test goes on after a failed check, so one run shows
 * every broken rule.  Both may be used from any thread.
 *
 * main() runs each test with RUN_TEST(name) and ends with
 * `return check_summary();`, which prints the line "N passed, M failed"
 * that Tests/c/run.sh adds up, and returns non-zero on any failure.
 */
#ifndef DFM_TEST_CHECK_H
#define DFM_TEST_CHECK_H

#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dfmdispatch.h"

/* Counters shared by every thread of the program: GCC and Clang atomics,
 * because C99 has none of its own. */
static unsigned long check_pass_count;
static unsigned long check_fail_count;
static const char *check_test_name = "";

static inline bool check_record(bool ok, const char *file, int line,
                                const char *expression)
{
    if (ok) {
        __atomic_add_fetch(&check_pass_count, 1, __ATOMIC_RELAXED);
        return true;
    }

    __atomic_add_fetch(&check_fail_count, 1, __ATOMIC_RELAXED);
    fprintf(stderr, "%s:%d: %s: FAILED: %s\n", file, line, check_test_name,
            expression);
    fflush(stderr);
    return false;
}

static inline bool check_status_record(int got, int expected,
                                       const char *file, int line,
                                       const char *expression)
{
    if (got == expected) {
        __atomic_add_fetch(&check_pass_count, 1, __ATOMIC_RELAXED);
        return true;
    }

    __atomic_add_fetch(&check_fail_count, 1, __ATOMIC_RELAXED);
    fprintf(stderr,
            "%s:%d: %s: FAILED: %s\n"
            "    got      %s (%d)\n"
            "    expected %s (%d)\n"
            "    dfm_last_error(): \"%s\"\n",
            file, line, check_test_name, expression,
            dfm_status_name(got), got, dfm_status_name(expected), expected,
            dfm_last_error());
    fflush(stderr);
    return false;
}

static inline bool check_equal_record(long long got, long long expected,
                                      const char *file, int line,
                                      const char *expression)
{
    if (got == expected) {
        __atomic_add_fetch(&check_pass_count, 1, __ATOMIC_RELAXED);
        return true;
    }

    __atomic_add_fetch(&check_fail_count, 1, __ATOMIC_RELAXED);
    fprintf(stderr, "%s:%d: %s: FAILED: %s\n    got %lld, expected %lld\n",
            file, line, check_test_name, expression, got, expected);
    fflush(stderr);
    return false;
}

#define CHECK(cond) \
    check_record((cond) ? true : false, __FILE__, __LINE__, #cond)

#define CHECK_STATUS(expr, expected) \
    check_status_record((int)(expr), (int)(expected), __FILE__, __LINE__, \
                        #expr " == " #expected)

/* An integer comparison that prints both numbers when they differ. */
#define CHECK_EQ(expr, expected) \
    check_equal_record((long long)(expr), (long long)(expected), __FILE__, \
                       __LINE__, #expr " == " #expected)

#define RUN_TEST(test)              \
    do {                            \
        check_test_name = #test;    \
        test();                     \
        check_test_name = "";       \
    } while (0)

static inline int check_summary(void)
{
    unsigned long passed = __atomic_load_n(&check_pass_count,
                                           __ATOMIC_SEQ_CST);
    unsigned long failed = __atomic_load_n(&check_fail_count,
                                           __ATOMIC_SEQ_CST);

    fflush(stderr);
    printf("%lu passed, %lu failed\n", passed, failed);
    fflush(stdout);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

#endif /* DFM_TEST_CHECK_H */
