/*
 * dfm_bench.c - dfmdispatch measured with the peers' workloads.
 *
 * The workloads, timed sections and checks are those of
 * ../shared/bench/peers/README.md and common.hpp, so the JSON lines this
 * program prints can be folded by the peers' run.sh and aggregate.py beside
 * mutex-deque, libuv, moodycamel and the rest.
 *
 *   dfm-bench B1 <producers> <tokens> [payload_bytes]
 *   dfm-bench B2 <tokens>
 *   dfm-bench B3 <calls>
 *   dfm-bench BUDGET <max_ns> [tokens]
 *   dfm-bench COST direct|shaped|variadic|queued <tokens>
 *   dfm-bench SIDES <tokens>
 *
 * B1 with payload_bytes > 0 (not part of the peers' spec) sends the
 * sequence number in the first 8 bytes of a DFM_VALUE_BYTES payload of
 * that size, to show what copying a payload costs.  BUDGET measures how far
 * dfm_process_pending_budget overruns its time budget.  COST runs one
 * B3 variant, or B1's tokens through a manual runner on one thread, for
 * callgrind to count the instructions of each call.  SIDES times B1's two
 * sides on one thread, rounds of dispatches then a pump, so that B1's own
 * rate can be set beside what its instructions alone would allow.
 *
 * Any failed check prints "FAIL dfmdispatch: ..." to stderr and exits 1.
 */
#define _GNU_SOURCE /* RTLD_DEFAULT */
#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "dfmdispatch.h"

#define PEER "dfmdispatch"

/* One shared site string and four place strings, as in common.hpp. */
static const char SITE_A[] = "site-a";
static const char *const PLACES[4] = {"p0", "p1", "p2", "p3"};

/* The spec's token: site "site-a", an integer node, the frame
 * [i, node] (written into `levels`), place p0..p3 in turn, an integer
 * datum. */
static dfm_token spec_token(int64_t levels[2], int64_t i, int64_t node,
                            int64_t datum)
{
    dfm_token token;

    levels[0] = i;
    levels[1] = node;
    token.source_site = SITE_A;
    token.source_node.kind = DFM_NODE_INT;
    token.source_node.id = node;
    token.source_node.name = NULL;
    token.frame.levels = levels;
    token.frame.depth = 2;
    token.frame.is_stop = false;
    token.target_place = PLACES[i & 3];
    token.data.kind = DFM_VALUE_INT;
    token.data.as.integer = datum;
    return token;
}

typedef struct cb_stats {
    int64_t sum;
    int64_t count;
} cb_stats;

/* [0..2] belong to the p0..p2 callbacks, [3] to the default callback.
 * Callbacks run on the pumping (main) thread only, so plain fields do. */
static cb_stats g_stats[4];

/* B2: latency in ns indexed by iteration; -1 until the token arrives. */
static int64_t *g_lat;
static int64_t g_lat_n;
static int64_t g_lat_duplicates;
static int64_t g_lat_bad_frames;

/* Start protocol: producers count themselves ready, then spin on go. */
static int g_ready;
static int g_go;

/* ---- helpers ---------------------------------------------------------- */

static int64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* _exit, not exit: a producer thread may fail while the main thread is
 * inside the library, and exit's destructors must not race with it. */
static void fail(const char *what)
{
    fprintf(stderr, "FAIL " PEER ": %s\n", what);
    fflush(NULL);
    _exit(1);
}

static void check(dfm_status status, const char *call)
{
    char message[768];

    if (status == DFM_OK)
        return;
    snprintf(message, sizeof message, "%s returned %s: %s", call,
             dfm_status_name(status), dfm_last_error());
    fail(message);
}

static void *check_ptr(void *pointer, const char *call)
{
    char message[768];

    if (pointer != NULL)
        return pointer;
    snprintf(message, sizeof message, "%s returned NULL: %s", call,
             dfm_last_error());
    fail(message);
    return NULL;
}

typedef unsigned long long (*alloc_count_fn)(void);

/* Non-NULL only under LD_PRELOAD=allocshim.so.  ISO C has no conversion
 * from an object pointer to a function pointer, so the bits are copied. */
static alloc_count_fn alloc_counter(void)
{
    void *symbol = dlsym(RTLD_DEFAULT, "allocshim_count");
    alloc_count_fn fn;

    memcpy(&fn, &symbol, sizeof fn);
    return fn;
}

static long peak_rss_kb(void)
{
    struct rusage usage;

    getrusage(RUSAGE_SELF, &usage);
    return usage.ru_maxrss;
}

static void fmt_num(char *buf, double value, bool present)
{
    if (present)
        snprintf(buf, 32, "%.3f", value);
    else
        strcpy(buf, "null");
}

/* The peers' line, field for field (common.hpp emit()); `extra` is
 * appended before the closing brace and is empty for the spec workloads. */
static void emit(const char *workload, int64_t n, int producers,
                 double secs, const double *pct, double allocs,
                 const char *extra)
{
    char p50[32], p99[32], p999[32], al[32];

    fmt_num(p50, pct ? pct[0] : 0, pct != NULL);
    fmt_num(p99, pct ? pct[1] : 0, pct != NULL);
    fmt_num(p999, pct ? pct[2] : 0, pct != NULL);
    fmt_num(al, allocs, allocs >= 0);
    printf("{\"peer\":\"" PEER "\",\"workload\":\"%s\",\"tokens\":%" PRId64
           ",\"producers\":%d,\"seconds\":%.6f,\"tokens_per_s\":%.1f,"
           "\"p50_us\":%s,\"p99_us\":%s,\"p999_us\":%s,"
           "\"peak_rss_kb\":%ld,\"allocs_per_token\":%s%s}\n",
           workload, n, producers, secs, n / secs, p50, p99, p999,
           peak_rss_kb(), al, extra);
    fflush(stdout);
}

static int compare_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a;
    int64_t y = *(const int64_t *)b;

    return (x > y) - (x < y);
}

/* Nearest rank, sorted[ceil(q * n) - 1], with q = per_mille / 1000 kept
 * in integers so that no libm is needed and 0.999 * n cannot round up. */
static int64_t nearest_rank(const int64_t *sorted, int64_t n,
                            int64_t per_mille)
{
    int64_t rank = (per_mille * n + 999) / 1000;

    return sorted[rank > 0 ? rank - 1 : 0];
}

static int64_t delivered(void)
{
    return g_stats[0].count + g_stats[1].count + g_stats[2].count +
           g_stats[3].count;
}

/* Spins on the go flag like the peers' producers; the yield keeps a
 * 2-core machine usable while the other threads are being created. */
static void wait_for_go(void)
{
    while (!__atomic_load_n(&g_go, __ATOMIC_ACQUIRE))
        sched_yield();
}

/* A manual runner for `set`; the set is copied, so it is freed at once. */
static dfm_runner *manual_runner(const dfm_manual_options *options,
                                 dfm_callbacks *set,
                                 dfm_dispatcher **dispatcher)
{
    dfm_runner *runner = NULL;

    *dispatcher = check_ptr(dfm_manual_dispatcher_create(options),
                            "dfm_manual_dispatcher_create");
    check(dfm_dispatcher_create_runner(*dispatcher, set, &runner),
          "dfm_dispatcher_create_runner");
    dfm_callbacks_destroy(set);
    return runner;
}

/* Callbacks for p0..p2 and the default, one user_data each. */
static dfm_callbacks *four_place_set(dfm_callback place_fn,
                                     dfm_callback default_fn)
{
    dfm_callbacks *set = check_ptr(dfm_callbacks_create(),
                                   "dfm_callbacks_create");
    int k;

    for (k = 0; k < 3; k++)
        check(dfm_callbacks_add_place(set, PLACES[k], place_fn,
                                      &g_stats[k]),
              "dfm_callbacks_add_place");
    check(dfm_callbacks_set_default(set, default_fn, &g_stats[3]),
          "dfm_callbacks_set_default");
    return set;
}

/* ---- B1: pump throughput ---------------------------------------------- */

/* Two functions with one body, like common.hpp's on_place and on_default,
 * so that the default route is a distinct call target. */
static int on_place(const dfm_token *token, void *user_data)
{
    cb_stats *stats = user_data;

    stats->sum += token->data.as.integer;
    stats->count++;
    return 0;
}

static int on_default(const dfm_token *token, void *user_data)
{
    cb_stats *stats = user_data;

    stats->sum += token->data.as.integer;
    stats->count++;
    return 0;
}

/* Payload variant: the sequence number is the first 8 bytes.  memcpy
 * because the copy the library delivers need not be 8-byte aligned. */
static int on_place_bytes(const dfm_token *token, void *user_data)
{
    cb_stats *stats = user_data;
    int64_t seq;

    memcpy(&seq, token->data.as.bytes.data, sizeof seq);
    stats->sum += seq;
    stats->count++;
    return 0;
}

static int on_default_bytes(const dfm_token *token, void *user_data)
{
    cb_stats *stats = user_data;
    int64_t seq;

    memcpy(&seq, token->data.as.bytes.data, sizeof seq);
    stats->sum += seq;
    stats->count++;
    return 0;
}

typedef struct producer {
    pthread_t thread;
    dfm_runner *runner;
    int index;
    int64_t per;
    size_t payload_bytes;
} producer;

static void *b1_producer(void *arg)
{
    producer *self = arg;
    const int64_t p = self->index;
    const int64_t per = self->per;
    unsigned char *payload = NULL;
    int64_t levels[2];
    int64_t i;

    /* The payload buffer is this producer's state, made before it says
     * ready; the library copies it during each dispatch, so one will do. */
    if (self->payload_bytes > 0) {
        payload = calloc(1, self->payload_bytes);
        if (payload == NULL)
            fail("out of memory for the payload buffer");
    }
    __atomic_add_fetch(&g_ready, 1, __ATOMIC_ACQ_REL);
    wait_for_go();

    for (i = 0; i < per; i++) {
        int64_t seq = p * per + i;
        dfm_token token = spec_token(levels, i, p, seq);

        if (payload != NULL) {
            memcpy(payload, &seq, sizeof seq);
            token.data.kind = DFM_VALUE_BYTES;
            token.data.as.bytes.data = payload;
            token.data.as.bytes.length = self->payload_bytes;
        }
        check(dfm_runner_dispatch(self->runner, &token, 1),
              "dfm_runner_dispatch (B1 producer)");
    }

    free(payload);
    return NULL;
}

static void run_b1(int P, int64_t N, size_t payload_bytes)
{
    const int64_t per = N / P;
    int64_t want_sum[4] = {0, 0, 0, 0};
    alloc_count_fn counter;
    unsigned long long a0, a1;
    dfm_dispatcher *dispatcher;
    dfm_runner *runner;
    producer *producers;
    char workload[48], extra[48] = "";
    int64_t t0, t1, i;
    int p, k;

    if (P < 1 || N < 1 || N % (4 * P))
        fail("N must be a multiple of 4*P");
    if (payload_bytes > 0 && payload_bytes < sizeof(int64_t))
        fail("payload_bytes must be 0 or at least 8");

    runner = manual_runner(NULL,
                           payload_bytes ? four_place_set(on_place_bytes,
                                                          on_default_bytes)
                                         : four_place_set(on_place,
                                                          on_default),
                           &dispatcher);
    producers = calloc((size_t)P, sizeof *producers);
    if (producers == NULL)
        fail("out of memory for the producers");
    for (p = 0; p < P; p++) {
        producers[p].runner = runner;
        producers[p].index = p;
        producers[p].per = per;
        producers[p].payload_bytes = payload_bytes;
        if (pthread_create(&producers[p].thread, NULL, b1_producer,
                           &producers[p]) != 0)
            fail("pthread_create");
    }
    while (__atomic_load_n(&g_ready, __ATOMIC_ACQUIRE) < P)
        sched_yield();

    /* The timed section: only the pumping loop, as in common.hpp. */
    counter = alloc_counter();
    a0 = counter ? counter() : 0;
    t0 = now_ns();
    __atomic_store_n(&g_go, 1, __ATOMIC_RELEASE);
    while (delivered() < N)
        check(dfm_process_pending(runner), "dfm_process_pending");
    t1 = now_ns();
    a1 = counter ? counter() : 0;
    for (p = 0; p < P; p++)
        pthread_join(producers[p].thread, NULL);

    for (p = 0; p < P; p++)
        for (i = 0; i < per; i++)
            want_sum[i & 3] += p * per + i;
    if (delivered() != N)
        fail("token count mismatch");
    for (k = 0; k < 4; k++)
        if (g_stats[k].count != N / 4 || g_stats[k].sum != want_sum[k])
            fail("checksum/routing mismatch");

    if (payload_bytes > 0) {
        snprintf(workload, sizeof workload, "B1-P%d-%zuB", P,
                 payload_bytes);
        snprintf(extra, sizeof extra, ",\"payload_bytes\":%zu",
                 payload_bytes);
    } else {
        snprintf(workload, sizeof workload, "B1-P%d", P);
    }
    emit(workload, N, P, (t1 - t0) / 1e9, NULL,
         counter ? (double)(a1 - a0) / N : -1, extra);

    dfm_runner_destroy(runner);
    dfm_dispatcher_destroy(dispatcher);
    free(producers);
}

/* ---- B2: wake-up latency ---------------------------------------------- */

static int on_latency(const dfm_token *token, void *user_data)
{
    int64_t at = now_ns();
    int64_t iteration;

    if (token->frame.depth < 1 || token->frame.levels == NULL) {
        g_lat_bad_frames++;
        return 0;
    }
    iteration = token->frame.levels[0];
    if (iteration < 0 || iteration >= g_lat_n)
        g_lat_bad_frames++;
    else if (g_lat[iteration] != -1)
        g_lat_duplicates++;
    else
        g_lat[iteration] = at - token->data.as.integer;
    ((cb_stats *)user_data)->count++;
    return 0;
}

typedef struct b2_producer {
    dfm_runner *runner;
    int64_t n;
    int64_t spacing_ns;
} b2_producer;

static void *b2_producer_main(void *arg)
{
    const b2_producer *self = arg;
    int64_t levels[2];
    int64_t i;

    wait_for_go();
    for (i = 0; i < self->n; i++) {
        int64_t stamp = now_ns();
        dfm_token token = spec_token(levels, i, 0, stamp);

        check(dfm_runner_dispatch(self->runner, &token, 1),
              "dfm_runner_dispatch (B2 producer)");

        /* Spacing from this token's stamp, so a late wake-up is not
         * followed by a burst that catches up. */
        while (now_ns() - stamp < self->spacing_ns) {
        }
    }
    return NULL;
}

static void run_b2(int64_t N)
{
    dfm_manual_options options;
    dfm_dispatcher *dispatcher;
    dfm_runner *runner;
    b2_producer config;
    pthread_t thread;
    struct pollfd pfd;
    int64_t *sorted;
    int64_t t0, t1, i;
    double pct[3];
    int wake_fd;

    if (N < 1)
        fail("N must be positive");
    g_lat_n = N;
    g_lat = malloc((size_t)N * sizeof *g_lat);
    sorted = malloc((size_t)N * sizeof *sorted);
    if (g_lat == NULL || sorted == NULL)
        fail("out of memory for the latency samples");
    for (i = 0; i < N; i++)
        g_lat[i] = -1;

    dfm_manual_options_init(&options);
    options.use_wake_fd = true;
    runner = manual_runner(&options, four_place_set(on_latency, on_latency),
                           &dispatcher);
    wake_fd = dfm_runner_wake_fd(runner);
    if (wake_fd < 0)
        fail("dfm_runner_wake_fd returned -1 with use_wake_fd");

    config.runner = runner;
    config.n = N;
    config.spacing_ns = 20000;
    if (pthread_create(&thread, NULL, b2_producer_main, &config) != 0)
        fail("pthread_create");

    /* The wake fd is the natural wait: readable while tokens are pending,
     * reset by the pump, so it is polled but never read here. */
    pfd.fd = wake_fd;
    pfd.events = POLLIN;
    t0 = now_ns();
    __atomic_store_n(&g_go, 1, __ATOMIC_RELEASE);
    while (delivered() < N) {
        if (!dfm_has_pending(runner)) {
            pfd.revents = 0;
            if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
                fail("poll on the wake fd failed");
        }
        check(dfm_process_pending(runner), "dfm_process_pending");
    }
    t1 = now_ns();
    pthread_join(thread, NULL);

    if (delivered() != N)
        fail("token count mismatch");
    if (g_lat_bad_frames != 0)
        fail("token with a frame outside the run");
    if (g_lat_duplicates != 0)
        fail("token delivered twice");
    for (i = 0; i < N; i++)
        if (g_lat[i] < 0)
            fail("missing latency sample");

    memcpy(sorted, g_lat, (size_t)N * sizeof *sorted);
    qsort(sorted, (size_t)N, sizeof *sorted, compare_i64);
    pct[0] = nearest_rank(sorted, N, 500) / 1e3;
    pct[1] = nearest_rank(sorted, N, 990) / 1e3;
    pct[2] = nearest_rank(sorted, N, 999) / 1e3;
    emit("B2", N, 1, (t1 - t0) / 1e9, pct, -1, "");

    dfm_runner_destroy(runner);
    dfm_dispatcher_destroy(dispatcher);
    free(sorted);
    free(g_lat);
}

/* ---- B3: cost of one delivery on a direct runner ---------------------- */

typedef struct acc {
    int64_t sum;
    int64_t count;
} acc;

static int b3_plain(const dfm_token *token, void *user_data)
{
    acc *a = user_data;

    a->sum += token->data.as.integer;
    a->count++;
    return 0;
}

/* The host's own signature, as callcost's cb(). */
static void b3_shaped(const char *site, int64_t node, const int64_t *levels,
                      const char *place, int64_t data, void *user)
{
    acc *a = user;

    (void)site;
    (void)node;
    (void)levels;
    (void)place;
    a->sum += data;
    a->count++;
}

/* Registered with "void(user, ..., place, data.int)": everything after
 * the user pointer arrives as variadic arguments, as for printf. */
static void b3_variadic(void *user, ...)
{
    acc *a = user;
    const char *place;
    int64_t data;
    va_list args;

    va_start(args, user);
    place = va_arg(args, const char *);
    data = va_arg(args, int64_t);
    va_end(args);
    (void)place;
    a->sum += data;
    a->count++;
}

/* callcost.c's report(), with this peer's name. */
static void report(const char *workload, int64_t n, int64_t ns,
                   const acc *a)
{
    char message[96];
    double secs = ns / 1e9;

    if (a->count != n || a->sum != n * (n - 1) / 2) {
        snprintf(message, sizeof message, "%s: checksum", workload);
        fail(message);
    }
    printf("{\"peer\":\"" PEER "\",\"workload\":\"%s\",\"tokens\":%" PRId64
           ",\"producers\":null,\"seconds\":%.6f,\"tokens_per_s\":%.1f,"
           "\"p50_us\":null,\"p99_us\":null,\"p999_us\":null,"
           "\"peak_rss_kb\":null,\"allocs_per_token\":null,"
           "\"ns_per_call\":%.3f}\n",
           workload, n, secs, n / secs, (double)ns / n);
    fflush(stdout);
}

/* Times `n` single-token dispatches through a direct runner built on
 * `set`.  The token is built once; only its data is rewritten. */
static void time_direct(const char *workload, dfm_callbacks *set,
                        int64_t n, acc *a)
{
    char call[96];
    dfm_dispatcher *dispatcher;
    dfm_runner *runner = NULL;
    int64_t levels[2] = {0, 0};
    dfm_token token;
    int64_t t0, t1, i;

    dispatcher = check_ptr(dfm_direct_dispatcher_create(),
                           "dfm_direct_dispatcher_create");
    check(dfm_dispatcher_create_runner(dispatcher, set, &runner),
          "dfm_dispatcher_create_runner (direct)");
    dfm_callbacks_destroy(set);

    token = spec_token(levels, 0, 0, 0);

    snprintf(call, sizeof call, "dfm_runner_dispatch (%s)", workload);
    a->sum = a->count = 0;
    t0 = now_ns();
    for (i = 0; i < n; i++) {
        token.data.as.integer = i;
        check(dfm_runner_dispatch(runner, &token, 1), call);
    }
    t1 = now_ns();
    report(workload, n, t1 - t0, a);

    dfm_runner_destroy(runner);
    dfm_dispatcher_destroy(dispatcher);
}

/* The three B3 variants, by name: "direct", "shaped", "variadic". */
static bool run_b3_variant(const char *variant, int64_t n)
{
    dfm_callbacks *set;
    static acc a;

    set = check_ptr(dfm_callbacks_create(), "dfm_callbacks_create");
    if (strcmp(variant, "direct") == 0) {
        check(dfm_callbacks_set_default(set, b3_plain, &a),
              "dfm_callbacks_set_default (B3d)");
        time_direct("B3d-dfm-direct", set, n, &a);
    } else if (strcmp(variant, "shaped") == 0) {
        check(dfm_callbacks_add_shaped(set, NULL, (void (*)(void))b3_shaped,
                                       "void(site, node.int, frame.levels, "
                                       "place, data.int, user)",
                                       &a),
              "dfm_callbacks_add_shaped (B3e)");
        time_direct("B3e-dfm-shaped", set, n, &a);
    } else if (strcmp(variant, "variadic") == 0) {
        check(dfm_callbacks_add_shaped(set, NULL,
                                       (void (*)(void))b3_variadic,
                                       "void(user, ..., place, data.int)", &a),
              "dfm_callbacks_add_shaped (B3f)");
        time_direct("B3f-dfm-shaped-variadic", set, n, &a);
    } else {
        dfm_callbacks_destroy(set);
        return false;
    }
    return true;
}

static void run_b3(int64_t n)
{
    if (n < 1)
        fail("calls must be positive");
    run_b3_variant("direct", n);
    run_b3_variant("shaped", n);
    run_b3_variant("variadic", n);
}

/* ---- COST: one thread, for counting instructions ----------------------- */

/* B1's tokens dispatched one at a time from the main thread into a manual
 * runner, then delivered by one pump: run under callgrind, the inclusive
 * cost of dfm_runner_dispatch and of dfm_process_pending, divided by the
 * token count, is what each side of the queue costs per token, the same
 * on every run (scripts/bench.sh). */
static void run_queued_cost(int64_t n)
{
    dfm_dispatcher *dispatcher;
    dfm_runner *runner = manual_runner(NULL, four_place_set(on_place,
                                                            on_default),
                                       &dispatcher);
    int64_t levels[2];
    int64_t i;

    if (n < 4 || n % 4)
        fail("COST queued: tokens must be a positive multiple of 4");
    for (i = 0; i < n; i++) {
        dfm_token token = spec_token(levels, i, 0, i);

        check(dfm_runner_dispatch(runner, &token, 1),
              "dfm_runner_dispatch (COST)");
    }
    check(dfm_process_pending(runner), "dfm_process_pending (COST)");
    if (delivered() != n)
        fail("COST queued: token count mismatch");
    printf("{\"peer\":\"" PEER "\",\"workload\":\"COST-queued\","
           "\"tokens\":%" PRId64 "}\n", n);
    dfm_runner_destroy(runner);
    dfm_dispatcher_destroy(dispatcher);
}

/* ---- SIDES: each side of the queue timed on one thread ----------------- */

#define SIDES_ROUND 4096

/* Rounds of SIDES_ROUND dispatches and one pump, so that the slots stay
 * in this core's caches; the first rounds warm the segment pool and are
 * not timed.  What is left is the cost of each side's instructions. */
static void run_sides(int64_t n)
{
    dfm_dispatcher *dispatcher;
    dfm_runner *runner = manual_runner(NULL, four_place_set(on_place,
                                                            on_default),
                                       &dispatcher);
    const int64_t warm = 16, rounds = n / SIDES_ROUND;
    int64_t levels[2], dispatch_ns = 0, pump_ns = 0, timed, round, i;

    if (rounds <= warm)
        fail("SIDES: tokens must be more than 16 * 4096");
    for (round = 0; round < rounds; round++) {
        int64_t t0 = now_ns(), t1, t2;

        for (i = round * SIDES_ROUND; i < (round + 1) * SIDES_ROUND; i++) {
            dfm_token token = spec_token(levels, i, 0, i);

            check(dfm_runner_dispatch(runner, &token, 1),
                  "dfm_runner_dispatch (SIDES)");
        }
        t1 = now_ns();
        check(dfm_process_pending(runner), "dfm_process_pending (SIDES)");
        t2 = now_ns();
        if (round >= warm) {
            dispatch_ns += t1 - t0;
            pump_ns += t2 - t1;
        }
    }
    if (delivered() != rounds * SIDES_ROUND)
        fail("SIDES: token count mismatch");
    timed = (rounds - warm) * SIDES_ROUND;
    printf("{\"peer\":\"" PEER "\",\"workload\":\"SIDES\","
           "\"tokens\":%" PRId64 ",\"dispatch_ns\":%.2f,"
           "\"pump_ns\":%.2f}\n",
           timed, (double)dispatch_ns / timed, (double)pump_ns / timed);
    dfm_runner_destroy(runner);
    dfm_dispatcher_destroy(dispatcher);
}

/* ---- BUDGET: how far a budgeted pump overruns ------------------------- */

#define SPIN_NS 1000

/* Stands in for host work of about a microsecond per token. */
static int on_spin(const dfm_token *token, void *user_data)
{
    cb_stats *stats = user_data;
    int64_t start = now_ns();

    while (now_ns() - start < SPIN_NS) {
    }
    stats->sum += token->data.as.integer;
    stats->count++;
    return 0;
}

/* The pump's loop without the library: the same callbacks and a clock
 * check after each.  Its overshoot is what the machine adds (preemption,
 * interrupts), the floor under the pump's own figure. */
static int64_t control_overshoot(const dfm_token *token, int64_t max_ns,
                                 int64_t tokens, int64_t *overshoot)
{
    cb_stats scratch = {0, 0};
    int64_t remaining = tokens, samples = 0;

    while (remaining > 0) {
        int64_t t0 = now_ns(), elapsed;

        do {
            on_spin(token, &scratch);
            remaining--;
        } while (remaining > 0 && now_ns() - t0 < max_ns);
        elapsed = now_ns() - t0;
        if (remaining > 0)
            overshoot[samples++] = elapsed - max_ns;
    }
    qsort(overshoot, (size_t)samples, sizeof *overshoot, compare_i64);
    return samples;
}

static void run_budget(int64_t max_ns, int64_t tokens)
{
    dfm_dispatcher *dispatcher;
    dfm_runner *runner;
    dfm_callbacks *set;
    int64_t levels[2] = {0, 0};
    int64_t *overshoot, *control;
    int64_t calls = 0, samples = 0, control_samples, total = 0, i;
    dfm_token token;

    if (max_ns < 1)
        fail("max_ns must be positive (0 means no limit)");
    if (tokens < 1)
        fail("tokens must be positive");

    set = check_ptr(dfm_callbacks_create(), "dfm_callbacks_create");
    check(dfm_callbacks_set_default(set, on_spin, &g_stats[3]),
          "dfm_callbacks_set_default");
    runner = manual_runner(NULL, set, &dispatcher);
    overshoot = malloc((size_t)tokens * sizeof *overshoot);
    control = malloc((size_t)tokens * sizeof *control);
    if (overshoot == NULL || control == NULL)
        fail("out of memory for the samples");

    for (i = 0; i < tokens; i++) {
        token = spec_token(levels, i, 0, i);
        check(dfm_runner_dispatch(runner, &token, 1),
              "dfm_runner_dispatch (BUDGET fill)");
    }

    /* A pump that emptied the queue stopped early for want of work, not
     * because of the budget, so only pumps that left tokens count. */
    while (total < tokens) {
        dfm_pump_result result = {0, 0, 0};
        int64_t t0, elapsed;

        t0 = now_ns();
        check(dfm_process_pending_budget(runner, 0, (uint64_t)max_ns,
                                         &result),
              "dfm_process_pending_budget");
        elapsed = now_ns() - t0;
        calls++;

        if (result.delivered == 0 || result.failed != 0)
            fail("budgeted pump delivered nothing or failed");
        total += (int64_t)result.delivered;
        if ((int64_t)result.pending != tokens - total)
            fail("dfm_pump_result.pending disagrees with the count");
        if (result.pending > 0)
            overshoot[samples++] = elapsed - max_ns;
    }
    if (g_stats[3].count != tokens ||
        g_stats[3].sum != tokens * (tokens - 1) / 2)
        fail("BUDGET: checksum");
    if (samples == 0)
        fail("BUDGET: every pump emptied the queue; use more tokens");

    qsort(overshoot, (size_t)samples, sizeof *overshoot, compare_i64);
    control_samples = control_overshoot(&token, max_ns, tokens, control);
    if (control_samples == 0)
        fail("BUDGET: the control loop took no samples");

    printf("{\"peer\":\"" PEER "\",\"workload\":\"BUDGET-%" PRId64 "\","
           "\"budget_ns\":%" PRId64 ",\"tokens\":%" PRId64 ","
           "\"calls\":%" PRId64 ",\"samples\":%" PRId64 ","
           "\"callback_ns\":%d,\"tokens_per_call\":%.1f,"
           "\"p50_overshoot_ns\":%" PRId64 ",\"p99_overshoot_ns\":%" PRId64
           ",\"max_overshoot_ns\":%" PRId64 ",\"min_overshoot_ns\":%" PRId64
           ",\"control_p50_overshoot_ns\":%" PRId64
           ",\"control_p99_overshoot_ns\":%" PRId64
           ",\"control_max_overshoot_ns\":%" PRId64 "}\n",
           max_ns, max_ns, tokens, calls, samples, SPIN_NS,
           (double)tokens / calls, nearest_rank(overshoot, samples, 500),
           nearest_rank(overshoot, samples, 990), overshoot[samples - 1],
           overshoot[0], nearest_rank(control, control_samples, 500),
           nearest_rank(control, control_samples, 990),
           control[control_samples - 1]);
    fflush(stdout);

    dfm_runner_destroy(runner);
    dfm_dispatcher_destroy(dispatcher);
    free(overshoot);
    free(control);
}

/* ---- main ------------------------------------------------------------- */

int main(int argc, char **argv)
{
    if (argc >= 4 && strcmp(argv[1], "B1") == 0) {
        long long payload = argc >= 5 ? atoll(argv[4]) : 0;

        if (payload < 0)
            fail("payload_bytes must not be negative");
        run_b1(atoi(argv[2]), atoll(argv[3]), (size_t)payload);
    } else if (argc >= 3 && strcmp(argv[1], "B2") == 0) {
        run_b2(atoll(argv[2]));
    } else if (argc >= 3 && strcmp(argv[1], "B3") == 0) {
        run_b3(atoll(argv[2]));
    } else if (argc >= 4 && strcmp(argv[1], "COST") == 0) {
        if (strcmp(argv[2], "queued") == 0)
            run_queued_cost(atoll(argv[3]));
        else if (atoll(argv[3]) < 1 || !run_b3_variant(argv[2],
                                                       atoll(argv[3])))
            fail("COST: the variant is direct, shaped, variadic or queued, "
                 "with a positive count");
    } else if (argc >= 3 && strcmp(argv[1], "SIDES") == 0) {
        run_sides(atoll(argv[2]));
    } else if (argc >= 3 && strcmp(argv[1], "BUDGET") == 0) {
        int64_t max_ns = atoll(argv[2]);
        /* Enough 1 us tokens for about 50 budget-limited pumps. */
        int64_t tokens = argc >= 4 ? atoll(argv[3])
                                   : 50 * (max_ns / SPIN_NS + 1) + 1000;

        run_budget(max_ns, tokens);
    } else {
        fprintf(stderr,
                "usage: %s B1 <producers> <tokens> [payload_bytes]\n"
                "       %s B2 <tokens>\n"
                "       %s B3 <calls>\n"
                "       %s BUDGET <max_ns> [tokens]\n"
                "       %s COST direct|shaped|variadic|queued <tokens>\n"
                "       %s SIDES <tokens>\n",
                argv[0], argv[0], argv[0], argv[0], argv[0], argv[0]);
        return 2;
    }
    return 0;
}
