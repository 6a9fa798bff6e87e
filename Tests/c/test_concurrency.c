/*
 * test_concurrency.c - many producer threads against one runner: every
 * token delivered once and in each producer's order, bounded queues under
 * pressure, and producers racing stop without losing or double-releasing
 * a payload.
 *
 * DFM_TEST_TOKENS (tokens per producer, default 100000) and
 * DFM_TEST_PRODUCERS (default 4, at most 8) shrink or grow the runs, e.g.
 * under valgrind.
 */
#include "check.h"
#include "fixtures.h"

#include <poll.h>
#include <sched.h>

#define MAX_PRODUCERS 8

static size_t tokens_per_producer = 100000;
static size_t producer_count = 4;

static void read_sizes(void)
{
    const char *tokens = getenv("DFM_TEST_TOKENS");
    const char *producers = getenv("DFM_TEST_PRODUCERS");

    if (tokens != NULL && atol(tokens) > 0)
        tokens_per_producer = (size_t)atol(tokens);
    if (producers != NULL && atol(producers) > 0)
        producer_count = (size_t)atol(producers);
    if (producer_count > MAX_PRODUCERS)
        producer_count = MAX_PRODUCERS;
}

static uint64_t token_checksum(size_t producer, int64_t sequence)
{
    return (uint64_t)(producer + 1) * 1000003u + (uint64_t)sequence * 7u;
}

static uint64_t expected_checksum(void)
{
    uint64_t sum = 0;
    size_t producer;
    size_t sequence;

    for (producer = 0; producer < producer_count; producer++) {
        for (sequence = 0; sequence < tokens_per_producer; sequence++)
            sum += token_checksum(producer, (int64_t)sequence);
    }
    return sum;
}

/* ---- What the consumer saw ------------------------------------------- */

/* Updated from whichever thread runs the callbacks: atomics throughout,
 * although per-producer slots are only ever touched by one thread at a
 * time (the owner thread, or for a direct runner that producer). */
typedef struct tally {
    uint64_t delivered;
    uint64_t checksum;
    uint64_t order_errors;
    int64_t last[MAX_PRODUCERS];
} tally;

static void tally_reset(tally *seen)
{
    size_t i;

    memset(seen, 0, sizeof *seen);
    for (i = 0; i < MAX_PRODUCERS; i++)
        seen->last[i] = -1;
}

static int tally_callback(const dfm_token *token, void *user_data)
{
    tally *seen = (tally *)user_data;
    size_t producer = (size_t)token->source_node.id;
    int64_t sequence = token->data.as.integer;

    if (producer >= MAX_PRODUCERS || sequence != seen->last[producer] + 1)
        __atomic_add_fetch(&seen->order_errors, 1, __ATOMIC_RELAXED);
    if (producer < MAX_PRODUCERS)
        seen->last[producer] = sequence;
    __atomic_add_fetch(&seen->delivered, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&seen->checksum, token_checksum(producer, sequence),
                       __ATOMIC_RELAXED);
    return 0;
}

/* ---- Producers ------------------------------------------------------- */

typedef struct producer {
    dfm_runner *runner;
    size_t index;
    bool retry_when_full;
    uint64_t rejected_tokens;  /* tokens refused with QUEUE_FULL */
    uint64_t unexpected;       /* any other failing status */
} producer;

static int finished_producers;

static void *produce_integers(void *argument)
{
    producer *self = (producer *)argument;
    dfm_token batch[8];
    size_t next = 0;
    size_t size = 1;

    while (next < tokens_per_producer) {
        size_t count = 0;
        int status;

        while (count < size && next + count < tokens_per_producer) {
            batch[count] = token_int("p", (int64_t)(next + count));
            batch[count].source_node.kind = DFM_NODE_INT;
            batch[count].source_node.id = (int64_t)self->index;
            count++;
        }
        status = dfm_runner_dispatch(self->runner, batch, count);
        if (status == DFM_OK) {
            next += count;
            size = size % 8 + 1;
        } else if (status == DFM_ERR_QUEUE_FULL && self->retry_when_full) {
            self->rejected_tokens += count;
            sched_yield();
        } else {
            self->unexpected++;
            next += count;
        }
    }
    __atomic_add_fetch(&finished_producers, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

static bool start_producers(pthread_t *threads, producer *producers,
                            dfm_runner *runner, bool retry_when_full,
                            void *(*body)(void *))
{
    size_t i;

    __atomic_store_n(&finished_producers, 0, __ATOMIC_SEQ_CST);
    for (i = 0; i < producer_count; i++) {
        memset(&producers[i], 0, sizeof producers[i]);
        producers[i].runner = runner;
        producers[i].index = i;
        producers[i].retry_when_full = retry_when_full;
        if (!CHECK(pthread_create(&threads[i], NULL, body, &producers[i])
                   == 0))
            return false;
    }
    return true;
}

static void join_producers(pthread_t *threads)
{
    size_t i;

    for (i = 0; i < producer_count; i++)
        pthread_join(threads[i], NULL);
}

static bool producers_finished(void)
{
    return (size_t)__atomic_load_n(&finished_producers, __ATOMIC_SEQ_CST)
           == producer_count;
}

/* Pumps on the calling thread until every producer has finished and the
 * queue is empty, waiting on the wake fd when there is one. */
static void pump_until_done(dfm_runner *runner)
{
    int fd = dfm_runner_wake_fd(runner);

    for (;;) {
        bool finished = producers_finished();
        int status = dfm_process_pending(runner);

        if (status != DFM_OK) {
            CHECK_STATUS(status, DFM_OK);
            return;
        }
        if (finished && !dfm_has_pending(runner))
            return;
        if (fd >= 0) {
            struct pollfd poller;

            poller.fd = fd;
            poller.events = POLLIN;
            poller.revents = 0;
            (void)poll(&poller, 1, 10);
        } else {
            sched_yield();
        }
    }
}

static void check_all_delivered(const tally *seen, const producer *producers,
                                dfm_runner *runner)
{
    uint64_t total = (uint64_t)producer_count * tokens_per_producer;
    dfm_stats stats = stats_of(runner);
    size_t i;

    CHECK_EQ(seen->delivered, total);
    CHECK_EQ(seen->order_errors, 0);
    CHECK(seen->checksum == expected_checksum());
    for (i = 0; i < producer_count; i++) {
        CHECK_EQ(producers[i].unexpected, 0);
        CHECK_EQ(seen->last[i], (int64_t)tokens_per_producer - 1);
    }
    CHECK_EQ(stats.dispatched, total);
    CHECK_EQ(stats.delivered, total);
    CHECK_EQ(stats.pending, 0);
    CHECK(stats_balance(&stats));
}

static dfm_runner *tally_runner(tally *seen, const dfm_manual_options *o)
{
    dfm_callbacks *set;
    dfm_runner *runner;

    tally_reset(seen);
    set = callbacks_default(tally_callback, seen, NULL);
    runner = o != NULL ? manual_runner_with(o, set) : direct_runner(set);
    dfm_callbacks_destroy(set);
    return runner;
}

/* ---- Tests ----------------------------------------------------------- */

static void test_producers_into_a_manual_runner_lose_nothing(void)
{
    dfm_manual_options options;
    tally seen;
    producer producers[MAX_PRODUCERS];
    pthread_t threads[MAX_PRODUCERS];
    dfm_runner *runner;

    dfm_manual_options_init(&options);
    options.use_wake_fd = true;
    runner = tally_runner(&seen, &options);
    CHECK_STATUS(dfm_process_pending(runner), DFM_OK);

    if (!start_producers(threads, producers, runner, false,
                         produce_integers))
        return;
    pump_until_done(runner);
    join_producers(threads);

    check_all_delivered(&seen, producers, runner);
    dfm_runner_destroy(runner);
}

static void test_producers_into_a_direct_runner_lose_nothing(void)
{
    tally seen;
    producer producers[MAX_PRODUCERS];
    pthread_t threads[MAX_PRODUCERS];
    dfm_runner *runner = tally_runner(&seen, NULL);

    if (!start_producers(threads, producers, runner, false,
                         produce_integers))
        return;
    join_producers(threads);

    check_all_delivered(&seen, producers, runner);
    dfm_runner_destroy(runner);
}

static void test_producers_retrying_a_full_queue_lose_nothing(void)
{
    dfm_manual_options options;
    tally seen;
    producer producers[MAX_PRODUCERS];
    pthread_t threads[MAX_PRODUCERS];
    dfm_runner *runner;
    uint64_t rejected = 0;
    dfm_stats stats;
    size_t i;

    dfm_manual_options_init(&options);
    options.capacity = 64;
    options.overflow = DFM_OVERFLOW_FAIL;
    runner = tally_runner(&seen, &options);
    CHECK_STATUS(dfm_process_pending(runner), DFM_OK);

    if (!start_producers(threads, producers, runner, true,
                         produce_integers))
        return;
    pump_until_done(runner);
    join_producers(threads);

    check_all_delivered(&seen, producers, runner);
    for (i = 0; i < producer_count; i++)
        rejected += producers[i].rejected_tokens;
    stats = stats_of(runner);
    CHECK_EQ(stats.rejected, rejected);
    CHECK(stats.pending_high_water <= 64);
    dfm_runner_destroy(runner);
}

static void test_producers_blocking_on_a_full_queue_lose_nothing(void)
{
    dfm_manual_options options;
    tally seen;
    producer producers[MAX_PRODUCERS];
    pthread_t threads[MAX_PRODUCERS];
    dfm_runner *runner;
    dfm_stats stats;

    dfm_manual_options_init(&options);
    options.capacity = 32;
    options.overflow = DFM_OVERFLOW_BLOCK;
    runner = tally_runner(&seen, &options);
    CHECK_STATUS(dfm_process_pending(runner), DFM_OK);

    if (!start_producers(threads, producers, runner, false,
                         produce_integers))
        return;
    pump_until_done(runner);
    join_producers(threads);

    check_all_delivered(&seen, producers, runner);
    stats = stats_of(runner);
    CHECK_EQ(stats.rejected, 0);
    CHECK(stats.pending_high_water <= 32);
    dfm_runner_destroy(runner);
}

/* ---- Drop-oldest under pressure -------------------------------------- */

typedef struct drop_producer {
    dfm_runner *runner;
    size_t index;
    tracked_object *objects;
    size_t count;
    uint64_t unexpected;
} drop_producer;

static void *produce_droppable(void *argument)
{
    drop_producer *self = (drop_producer *)argument;
    size_t next = 0;

    while (next < self->count) {
        dfm_token batch[3];
        size_t count = next % 2 == 0 ? 1 : 3;
        size_t i;

        if (next + count > self->count)
            count = self->count - next;
        for (i = 0; i < count; i++) {
            self->objects[next + i].id = (int64_t)(next + i);
            batch[i] = token_object("p", &self->objects[next + i]);
            batch[i].source_node.id = (int64_t)self->index;
        }
        if (dfm_runner_dispatch(self->runner, batch, count) != DFM_OK) {
            self->unexpected++;
            for (i = 0; i < count; i++)
                tracked_release(&self->objects[next + i]);
        }
        next += count;
    }
    __atomic_add_fetch(&finished_producers, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

/* Delivered objects of each producer must come in increasing order, gaps
 * (discarded tokens) allowed. */
static int check_rising(const dfm_token *token, void *user_data)
{
    tally *seen = (tally *)user_data;
    size_t producer = (size_t)token->source_node.id;
    const tracked_object *object =
        (const tracked_object *)token->data.as.object.pointer;

    if (producer >= MAX_PRODUCERS || object->id <= seen->last[producer]
        || object->releases != 0)
        seen->order_errors++;
    else
        seen->last[producer] = object->id;
    seen->delivered++;
    return 0;
}

static void test_producers_into_a_drop_oldest_queue_release_each_once(void)
{
    dfm_manual_options options;
    drop_producer producers[MAX_PRODUCERS];
    pthread_t threads[MAX_PRODUCERS];
    size_t per_producer = tokens_per_producer / 4 + 1;
    long releases_before = release_total();
    dfm_callbacks *set;
    dfm_runner *runner;
    dfm_stats stats;
    tally seen;
    size_t i;
    size_t released_once = 0;
    uint64_t unexpected = 0;

    tally_reset(&seen);
    set = callbacks_default(check_rising, &seen, NULL);
    dfm_manual_options_init(&options);
    options.capacity = 16;
    options.overflow = DFM_OVERFLOW_DROP_OLDEST;
    runner = manual_runner_with(&options, set);
    dfm_callbacks_destroy(set);
    CHECK_STATUS(dfm_process_pending(runner), DFM_OK);

    __atomic_store_n(&finished_producers, 0, __ATOMIC_SEQ_CST);
    for (i = 0; i < producer_count; i++) {
        producers[i].runner = runner;
        producers[i].index = i;
        producers[i].count = per_producer;
        producers[i].unexpected = 0;
        producers[i].objects = (tracked_object *)calloc(
            per_producer, sizeof(tracked_object));
        if (!CHECK(pthread_create(&threads[i], NULL, produce_droppable,
                                  &producers[i])
                   == 0))
            return;
    }
    while (!producers_finished()) {
        (void)dfm_process_pending_budget(runner, 8, 0, NULL);
        sched_yield();
    }
    join_producers(threads);
    CHECK_STATUS(dfm_process_pending(runner), DFM_OK);

    stats = stats_of(runner);
    CHECK_EQ(seen.order_errors, 0);
    CHECK_EQ(stats.delivered, seen.delivered);
    CHECK_EQ(stats.dispatched, (uint64_t)producer_count * per_producer);
    CHECK_EQ(stats.delivered + stats.discarded, stats.dispatched);
    CHECK(stats.pending_high_water <= 16);
    CHECK(stats_balance(&stats));
    dfm_runner_destroy(runner);

    for (i = 0; i < producer_count; i++) {
        unexpected += producers[i].unexpected;
        released_once += tracked_count_released(producers[i].objects,
                                                per_producer, 1);
        free(producers[i].objects);
    }
    CHECK_EQ(unexpected, 0);
    CHECK_EQ(released_once, producer_count * per_producer);
    CHECK_EQ(release_total() - releases_before,
             (long)(producer_count * per_producer));
}

/* ---- An executor runner fed by many producers ------------------------ */

/* A host loop on its own thread: posted work waits in a list until the
 * loop thread runs it. */
typedef struct loop {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    void (**work)(void *);
    void **arg;
    size_t head;
    size_t tail;
    size_t capacity;
    bool quit;
} loop;

static void loop_post(void *context, void (*work)(void *), void *arg)
{
    loop *host = (loop *)context;

    pthread_mutex_lock(&host->lock);
    if (host->tail == host->capacity) {
        size_t live = host->tail - host->head;

        /* Compact, then grow if still full. */
        if (live > 0) {
            memmove(host->work, host->work + host->head,
                    live * sizeof *host->work);
            memmove(host->arg, host->arg + host->head,
                    live * sizeof *host->arg);
        }
        host->head = 0;
        host->tail = live;
        if (host->tail == host->capacity) {
            host->capacity = host->capacity * 2 + 64;
            host->work = (void (**)(void *))realloc(
                host->work, host->capacity * sizeof *host->work);
            host->arg = (void **)realloc(host->arg,
                                         host->capacity * sizeof *host->arg);
        }
    }
    host->work[host->tail] = work;
    host->arg[host->tail] = arg;
    host->tail++;
    pthread_cond_signal(&host->wake);
    pthread_mutex_unlock(&host->lock);
}

static void *loop_run(void *argument)
{
    loop *host = (loop *)argument;

    pthread_mutex_lock(&host->lock);
    for (;;) {
        void (*work)(void *);
        void *arg;

        while (host->head == host->tail && !host->quit)
            pthread_cond_wait(&host->wake, &host->lock);
        if (host->head == host->tail)
            break;
        work = host->work[host->head];
        arg = host->arg[host->head];
        host->head++;
        pthread_mutex_unlock(&host->lock);

        work(arg);

        pthread_mutex_lock(&host->lock);
    }
    pthread_mutex_unlock(&host->lock);
    return NULL;
}

/* The async callback: checks order and that no other callback of the
 * runner is in flight, then completes inline or hands the completion to
 * the completer thread. */
typedef struct async_tally {
    tally seen;
    int in_flight;
    uint64_t overlaps;
    dfm_completion *handed;    /* for the completer thread */
    bool quit;
} async_tally;

static void async_tally_callback(const dfm_token *token,
                                 dfm_completion *completion, void *user_data)
{
    async_tally *state = (async_tally *)user_data;

    if (__atomic_exchange_n(&state->in_flight, 1, __ATOMIC_SEQ_CST) != 0)
        __atomic_add_fetch(&state->overlaps, 1, __ATOMIC_RELAXED);
    tally_callback(token, &state->seen);

    if (token->data.as.integer % 2 == 0) {
        __atomic_store_n(&state->in_flight, 0, __ATOMIC_SEQ_CST);
        dfm_complete(completion, 0);
    } else {
        __atomic_store_n(&state->handed, completion, __ATOMIC_SEQ_CST);
    }
}

static void *complete_handed(void *argument)
{
    async_tally *state = (async_tally *)argument;

    while (!__atomic_load_n(&state->quit, __ATOMIC_SEQ_CST)) {
        dfm_completion *completion = __atomic_exchange_n(
            &state->handed, NULL, __ATOMIC_SEQ_CST);

        if (completion == NULL) {
            sched_yield();
            continue;
        }
        __atomic_store_n(&state->in_flight, 0, __ATOMIC_SEQ_CST);
        dfm_complete(completion, 0);
    }
    return NULL;
}

static void test_producers_into_an_executor_runner_lose_nothing(void)
{
    size_t saved = tokens_per_producer;
    uint64_t total;
    loop host;
    dfm_executor executor;
    async_tally state;
    dfm_callbacks *set = dfm_callbacks_create();
    dfm_runner *runner;
    producer producers[MAX_PRODUCERS];
    pthread_t threads[MAX_PRODUCERS];
    pthread_t loop_thread;
    pthread_t completer;
    uint64_t deadline;
    dfm_stats stats;

    /* Every token goes through the loop one at a time: a quarter of the
     * usual count keeps the run short. */
    tokens_per_producer = saved / 4 + 1;
    total = (uint64_t)producer_count * tokens_per_producer;

    memset(&host, 0, sizeof host);
    pthread_mutex_init(&host.lock, NULL);
    pthread_cond_init(&host.wake, NULL);
    memset(&state, 0, sizeof state);
    tally_reset(&state.seen);
    executor.post = loop_post;
    executor.context = &host;
    CHECK_STATUS(dfm_callbacks_set_default_async(set, async_tally_callback,
                                                 &state),
                 DFM_OK);
    runner = runner_from(dfm_executor_dispatcher_create(executor), set);
    dfm_callbacks_destroy(set);

    if (!CHECK(pthread_create(&loop_thread, NULL, loop_run, &host) == 0))
        return;
    if (!CHECK(pthread_create(&completer, NULL, complete_handed, &state)
               == 0))
        return;
    if (!start_producers(threads, producers, runner, false,
                         produce_integers))
        return;
    join_producers(threads);

    deadline = now_ns() + 50000000000u;
    while (__atomic_load_n(&state.seen.delivered, __ATOMIC_SEQ_CST) < total
           && now_ns() < deadline)
        sleep_ms(1);

    /* The last completion may still be on its way through the loop. */
    sleep_ms(20);
    __atomic_store_n(&state.quit, true, __ATOMIC_SEQ_CST);
    pthread_join(completer, NULL);

    stats = stats_of(runner);
    CHECK_EQ(state.overlaps, 0);
    CHECK_EQ(state.seen.delivered, total);
    CHECK_EQ(state.seen.order_errors, 0);
    CHECK(state.seen.checksum == expected_checksum());
    CHECK_EQ(stats.dispatched, total);
    CHECK_EQ(stats.delivered, total);
    CHECK_EQ(stats.pending, 0);
    dfm_runner_destroy(runner);

    pthread_mutex_lock(&host.lock);
    host.quit = true;
    pthread_cond_signal(&host.wake);
    pthread_mutex_unlock(&host.lock);
    pthread_join(loop_thread, NULL);
    pthread_mutex_destroy(&host.lock);
    pthread_cond_destroy(&host.wake);
    free(host.work);
    free(host.arg);
    tokens_per_producer = saved;
}

/* ---- Producers racing stop ------------------------------------------- */

typedef struct object_producer {
    dfm_runner *runner;
    tracked_object *objects;
    size_t created;            /* objects handed to dispatch */
    size_t closed;             /* dispatches answered DFM_ERR_CLOSED */
    uint64_t unexpected;
} object_producer;

static int producers_started;

/* Dispatches objects one or two at a time until the runner is closed.
 * On DFM_ERR_CLOSED the payloads are still ours: release them here. */
static void *produce_objects(void *argument)
{
    object_producer *self = (object_producer *)argument;
    size_t next = 0;

    __atomic_add_fetch(&producers_started, 1, __ATOMIC_SEQ_CST);
    while (next + 2 <= tokens_per_producer) {
        size_t count = next % 3 == 0 ? 2 : 1;
        dfm_token batch[2];
        size_t i;
        int status;

        for (i = 0; i < count; i++) {
            self->objects[next + i].id = (int64_t)(next + i);
            batch[i] = token_object("p", &self->objects[next + i]);
        }
        self->created += count;
        status = dfm_runner_dispatch(self->runner, batch, count);
        next += count;
        if (status == DFM_OK)
            continue;

        for (i = 0; i < count; i++)
            tracked_release(&self->objects[next - count + i]);
        if (status == DFM_ERR_CLOSED) {
            self->closed++;
            break;
        }
        self->unexpected++;
    }
    return NULL;
}

static int count_callback(const dfm_token *token, void *user_data)
{
    (void)token;
    __atomic_add_fetch((uint64_t *)user_data, 1, __ATOMIC_RELAXED);
    return 0;
}

static void race_stop(bool direct, dfm_stop_mode mode)
{
    object_producer producers[MAX_PRODUCERS];
    pthread_t threads[MAX_PRODUCERS];
    uint64_t delivered = 0;
    long releases_before = release_total();
    size_t created = 0;
    size_t released_once = 0;
    size_t closed = 0;
    uint64_t quarter = (uint64_t)producer_count * tokens_per_producer / 4;
    dfm_callbacks *set = callbacks_default(count_callback, &delivered, NULL);
    dfm_runner *runner = direct ? direct_runner(set) : manual_runner(set);
    dfm_stats stats;
    uint64_t deadline;
    size_t i;

    dfm_callbacks_destroy(set);
    if (!direct)
        CHECK_STATUS(dfm_process_pending(runner), DFM_OK);
    __atomic_store_n(&producers_started, 0, __ATOMIC_SEQ_CST);
    for (i = 0; i < producer_count; i++) {
        memset(&producers[i], 0, sizeof producers[i]);
        producers[i].runner = runner;
        producers[i].objects = (tracked_object *)calloc(
            tokens_per_producer, sizeof(tracked_object));
        if (!CHECK(pthread_create(&threads[i], NULL, produce_objects,
                                  &producers[i])
                   == 0))
            return;
    }

    /* Stop the runner under the producers once a quarter of their
     * tokens are in (or after ten seconds, whichever comes first). */
    deadline = now_ns() + 10000000000u;
    while (now_ns() < deadline) {
        dfm_stats now;
        uint64_t accepted;

        if (!direct)
            (void)dfm_process_pending_budget(runner, 256, 0, NULL);
        memset(&now, 0, sizeof now);
        (void)dfm_runner_stats(runner, &now);
        accepted = direct ? __atomic_load_n(&delivered, __ATOMIC_RELAXED)
                          : now.dispatched;
        if ((size_t)__atomic_load_n(&producers_started, __ATOMIC_SEQ_CST)
                == producer_count
            && accepted >= quarter)
            break;
        sched_yield();
    }
    CHECK_STATUS(dfm_runner_stop(runner, mode), DFM_OK);
    if (!direct) {
        CHECK_STATUS(dfm_process_pending(runner), DFM_OK);
    }
    join_producers(threads);
    if (!direct)
        CHECK_STATUS(dfm_process_pending(runner), DFM_OK);

    stats = stats_of(runner);
    CHECK_EQ(stats.pending, 0);
    CHECK_EQ(stats.delivered, delivered);
    CHECK(stats_balance(&stats));
    dfm_runner_destroy(runner);

    for (i = 0; i < producer_count; i++) {
        CHECK_EQ(producers[i].unexpected, 0);
        created += producers[i].created;
        closed += producers[i].closed;
        released_once += tracked_count_released(producers[i].objects,
                                                producers[i].created, 1);
        free(producers[i].objects);
    }
    CHECK_EQ(released_once, created);
    CHECK(closed > 0);
    CHECK_EQ(release_total() - releases_before, (long)created);
    CHECK_EQ(stats.dispatched + stats.rejected, created);
}

static void test_producers_racing_stop_drain_release_each_object_once(void)
{
    race_stop(false, DFM_STOP_DRAIN);
}

static void test_producers_racing_stop_discard_release_each_object_once(void)
{
    race_stop(false, DFM_STOP_DISCARD);
}

static void test_producers_racing_a_direct_stop_release_each_object_once(
    void)
{
    race_stop(true, DFM_STOP_DRAIN);
}

int main(void)
{
    read_sizes();
    RUN_TEST(test_producers_into_a_manual_runner_lose_nothing);
    RUN_TEST(test_producers_into_a_direct_runner_lose_nothing);
    RUN_TEST(test_producers_retrying_a_full_queue_lose_nothing);
    RUN_TEST(test_producers_blocking_on_a_full_queue_lose_nothing);
    RUN_TEST(test_producers_into_a_drop_oldest_queue_release_each_once);
    RUN_TEST(test_producers_into_an_executor_runner_lose_nothing);
    RUN_TEST(test_producers_racing_stop_drain_release_each_object_once);
    RUN_TEST(test_producers_racing_stop_discard_release_each_object_once);
    RUN_TEST(test_producers_racing_a_direct_stop_release_each_object_once);
    return check_summary();
}
