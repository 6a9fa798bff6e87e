/*
 * faults.c - fault injection against the library: completions from
 * foreign threads that race the pump, each other and destroy; late and
 * stale completions; stop and destroy from inside callbacks and error
 * handlers; executors that stop running their work; producers racing
 * stop on every kind of runner; blocking dispatches on the owner thread;
 * failing callbacks under load.
 *
 * Tests/c covers each of these rules once, on one thread and a few
 * tokens (test_async.c, test_manual.c, test_concurrency.c).  The tests
 * here push the same rules through threads and many tokens, where the
 * timing is not the test's to choose.  Every OBJECT payload is counted:
 * each must be released exactly once, by the runner when it accepted the
 * token, or by the test when the runner refused it.
 *
 *   faults [--quick]      --quick: a tenth of the iterations (valgrind)
 *
 * The last line is "N passed, M failed"; the exit status is non-zero on
 * any failure.
 */
#include "check.h"
#include "fixtures.h"

#include <errno.h>
#include <inttypes.h>
#include <sched.h>

/* Iterations are multiplied by this; --quick makes it small. */
static unsigned scale = 10;

static size_t scaled(size_t count)
{
    size_t result = count * scale / 10;

    return result > 0 ? result : 1;
}

/* Injected faults, reported in the summary (docs/RELIABILITY.md). */
static uint64_t faults_injected;

static void injected(uint64_t count)
{
    __atomic_add_fetch(&faults_injected, count, __ATOMIC_RELAXED);
}

/* ---- Objects ---------------------------------------------------------- */

static tracked_object *objects_new(size_t count)
{
    tracked_object *objects =
        (tracked_object *)calloc(count, sizeof(tracked_object));

    if (objects == NULL) {
        fprintf(stderr, "faults: out of memory\n");
        exit(EXIT_FAILURE);
    }
    tracked_reset(objects, count);
    return objects;
}

/* Checks that each object was released exactly once, then frees them. */
static void objects_check_free(tracked_object *objects, size_t count)
{
    size_t once = tracked_count_released(objects, count, 1);

    if (!CHECK_EQ(once, count)) {
        size_t i;
        int shown = 0;

        for (i = 0; i < count && shown < 5; i++) {
            if (tracked_releases(&objects[i]) != 1) {
                fprintf(stderr, "    object %zu released %d times\n", i,
                        tracked_releases(&objects[i]));
                shown++;
            }
        }
    }
    free(objects);
}

/* The counters of a runner without a check per call: loops that wait
 * on them would add a pass to the summary each time round. */
static dfm_stats quiet_stats(const dfm_runner *runner)
{
    dfm_stats stats;

    memset(&stats, 0, sizeof stats);
    (void)dfm_runner_stats(runner, &stats);
    return stats;
}

/* ---- Mailboxes: foreign threads that complete what they are handed --- */

#define MAILBOX_CAPACITY 256

typedef struct mail {
    dfm_completion *completion;
    int status;
    unsigned delay_us;
} mail;

typedef struct mailbox {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_cond_t space;
    mail items[MAILBOX_CAPACITY];
    size_t head;
    size_t tail;
    bool busy;
    bool quit;
    uint64_t completed;
    pthread_t thread;
} mailbox;

static void *mailbox_run(void *argument)
{
    mailbox *box = (mailbox *)argument;

    pthread_mutex_lock(&box->lock);
    for (;;) {
        mail item;

        while (box->head == box->tail && !box->quit)
            pthread_cond_wait(&box->wake, &box->lock);
        if (box->head == box->tail)
            break;
        item = box->items[box->head % MAILBOX_CAPACITY];
        box->head++;
        box->busy = true;
        pthread_cond_broadcast(&box->space);
        pthread_mutex_unlock(&box->lock);

        if (item.delay_us > 0) {
            struct timespec delay;

            delay.tv_sec = 0;
            delay.tv_nsec = (long)item.delay_us * 1000L;
            nanosleep(&delay, NULL);
        }
        dfm_complete(item.completion, item.status);

        pthread_mutex_lock(&box->lock);
        box->busy = false;
        box->completed++;
        pthread_cond_broadcast(&box->space);
    }
    pthread_mutex_unlock(&box->lock);
    return NULL;
}

static void mailbox_start(mailbox *box)
{
    memset(box, 0, sizeof *box);
    pthread_mutex_init(&box->lock, NULL);
    pthread_cond_init(&box->wake, NULL);
    pthread_cond_init(&box->space, NULL);
    if (pthread_create(&box->thread, NULL, mailbox_run, box) != 0) {
        fprintf(stderr, "faults: pthread_create failed\n");
        exit(EXIT_FAILURE);
    }
}

static void mailbox_post(mailbox *box, dfm_completion *completion,
                         int status, unsigned delay_us)
{
    pthread_mutex_lock(&box->lock);
    while (box->tail - box->head == MAILBOX_CAPACITY)
        pthread_cond_wait(&box->space, &box->lock);
    box->items[box->tail % MAILBOX_CAPACITY].completion = completion;
    box->items[box->tail % MAILBOX_CAPACITY].status = status;
    box->items[box->tail % MAILBOX_CAPACITY].delay_us = delay_us;
    box->tail++;
    pthread_cond_signal(&box->wake);
    pthread_mutex_unlock(&box->lock);
}

/* Waits until everything posted so far has been completed. */
static void mailbox_drain(mailbox *box)
{
    pthread_mutex_lock(&box->lock);
    while (box->head != box->tail || box->busy)
        pthread_cond_wait(&box->space, &box->lock);
    pthread_mutex_unlock(&box->lock);
}

static void mailbox_stop(mailbox *box)
{
    pthread_mutex_lock(&box->lock);
    box->quit = true;
    pthread_cond_signal(&box->wake);
    pthread_mutex_unlock(&box->lock);
    pthread_join(box->thread, NULL);
    pthread_mutex_destroy(&box->lock);
    pthread_cond_destroy(&box->wake);
    pthread_cond_destroy(&box->space);
}

/* ---- A host loop on its own thread ----------------------------------- */

/* An executor whose loop runs on a thread of its own.  It can be told to
 * run only the first `run_limit` work items and drop the rest (a loop
 * that died), or to drop every other one (a lossy loop). */
typedef struct loop {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_cond_t idle;
    void (**work)(void *);
    void **arg;
    size_t head;
    size_t tail;
    size_t capacity;
    uint64_t posted;
    uint64_t ran;
    uint64_t dropped;
    uint64_t run_limit;        /* 0: no limit */
    bool drop_every_other;
    bool busy;
    bool quit;
    pthread_t thread;
} loop;

static void loop_post(void *context, void (*work)(void *), void *arg)
{
    loop *host = (loop *)context;

    pthread_mutex_lock(&host->lock);
    host->posted++;
    if ((host->run_limit > 0 && host->posted > host->run_limit)
        || (host->drop_every_other && host->posted % 2 == 0)) {
        host->dropped++;
        pthread_mutex_unlock(&host->lock);
        return;
    }
    if (host->tail == host->capacity) {
        size_t live = host->tail - host->head;

        if (live > 0 && host->head > 0) {
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
        host->busy = true;
        pthread_mutex_unlock(&host->lock);

        work(arg);

        pthread_mutex_lock(&host->lock);
        host->busy = false;
        host->ran++;
        pthread_cond_broadcast(&host->idle);
    }
    pthread_mutex_unlock(&host->lock);
    return NULL;
}

static void loop_start(loop *host)
{
    memset(host, 0, sizeof *host);
    pthread_mutex_init(&host->lock, NULL);
    pthread_cond_init(&host->wake, NULL);
    pthread_cond_init(&host->idle, NULL);
    if (pthread_create(&host->thread, NULL, loop_run, host) != 0) {
        fprintf(stderr, "faults: pthread_create failed\n");
        exit(EXIT_FAILURE);
    }
}

/* Waits until the loop has nothing queued and nothing running. */
static void loop_settle(loop *host)
{
    pthread_mutex_lock(&host->lock);
    while (host->head != host->tail || host->busy)
        pthread_cond_wait(&host->idle, &host->lock);
    pthread_mutex_unlock(&host->lock);
}

static void loop_stop(loop *host)
{
    pthread_mutex_lock(&host->lock);
    host->quit = true;
    pthread_cond_signal(&host->wake);
    pthread_mutex_unlock(&host->lock);
    pthread_join(host->thread, NULL);
    pthread_mutex_destroy(&host->lock);
    pthread_cond_destroy(&host->wake);
    pthread_cond_destroy(&host->idle);
    free(host->work);
    free(host->arg);
}

/* Runs function(argument) on the loop thread and waits for it: an
 * executor runner is destroyed where a host would destroy it, on its
 * loop, so that destroy never races a work item. */
typedef struct loop_call {
    void (*function)(void *);
    void *argument;
    int done;
} loop_call;

static void loop_call_work(void *arg)
{
    loop_call *call = (loop_call *)arg;

    call->function(call->argument);
    __atomic_store_n(&call->done, 1, __ATOMIC_SEQ_CST);
}

static void loop_call_now(loop *host, void (*function)(void *),
                          void *argument)
{
    loop_call call;
    uint64_t limit;
    bool every_other;

    call.function = function;
    call.argument = argument;
    call.done = 0;

    /* The call itself must never be dropped. */
    pthread_mutex_lock(&host->lock);
    limit = host->run_limit;
    every_other = host->drop_every_other;
    host->run_limit = 0;
    host->drop_every_other = false;
    pthread_mutex_unlock(&host->lock);
    loop_post(host, loop_call_work, &call);
    pthread_mutex_lock(&host->lock);
    host->run_limit = limit;
    host->drop_every_other = every_other;
    pthread_mutex_unlock(&host->lock);

    while (!__atomic_load_n(&call.done, __ATOMIC_SEQ_CST))
        sleep_ms(1);
}

static void destroy_runner_work(void *argument)
{
    dfm_runner_destroy((dfm_runner *)argument);
}

/* ---- Async callbacks that hand their completions away ---------------- */

/* What an async test callback does with each token.  The key of a token
 * is its object's id (node id), as in fixtures.h. */
typedef struct async_plan {
    mailbox *boxes;            /* hand completions to these threads */
    size_t box_count;
    unsigned max_delay_us;     /* completers wait up to this long */
    int64_t fail_every;        /* keys divisible by it complete with 3 */
    bool twice;                /* two threads complete each token */
    bool inline_some;          /* complete some keys inline */
    bool inline_all;           /* complete every key inline */
    uint64_t random;

    /* What the callback saw. */
    uint64_t started;
    int64_t last_key;
    uint64_t order_errors;
    uint64_t overlaps;
    uint64_t released_early;
    int in_flight;

    /* What the error handler saw. */
    uint64_t failures_reported;
    uint64_t doubles_reported;
    uint64_t other_reports;
} async_plan;

static uint64_t plan_random(async_plan *plan)
{
    plan->random ^= plan->random << 13;
    plan->random ^= plan->random >> 7;
    plan->random ^= plan->random << 17;
    return plan->random;
}

static void async_plan_init(async_plan *plan, mailbox *boxes,
                            size_t box_count)
{
    memset(plan, 0, sizeof *plan);
    plan->boxes = boxes;
    plan->box_count = box_count;
    plan->last_key = -1;
    plan->random = 0x9e3779b97f4a7c15ULL;
}

static void planned_callback(const dfm_token *token,
                             dfm_completion *completion, void *user_data)
{
    async_plan *plan = (async_plan *)user_data;
    int64_t key = token_key(token);
    int status;
    uint64_t r;

    if (__atomic_exchange_n(&plan->in_flight, 1, __ATOMIC_SEQ_CST) != 0)
        plan->overlaps++;
    if (key <= plan->last_key)
        plan->order_errors++;
    plan->last_key = key;
    if (token->data.kind == DFM_VALUE_OBJECT
        && tracked_releases((tracked_object *)
                                token->data.as.object.pointer) != 0)
        plan->released_early++;
    plan->started++;

    status = plan->fail_every > 0 && key % plan->fail_every == 0 ? 3 : 0;
    if (status != 0)
        injected(1);
    r = plan_random(plan);
    __atomic_store_n(&plan->in_flight, 0, __ATOMIC_SEQ_CST);

    if (plan->inline_all || (plan->inline_some && r % 4 == 0)) {
        dfm_complete(completion, status);
        return;
    }
    if (plan->box_count == 0) {
        dfm_complete(completion, status);
        return;
    }
    if (plan->twice) {
        injected(1);
        mailbox_post(&plan->boxes[0], completion, status, 0);
        mailbox_post(&plan->boxes[1], completion, status, 0);
        return;
    }
    mailbox_post(&plan->boxes[(r >> 8) % plan->box_count], completion,
                 status,
                 plan->max_delay_us > 0
                     ? (unsigned)((r >> 16) % plan->max_delay_us) : 0);
}

/* Error handler of the planned callbacks: a failure carries its token,
 * a refused second completion carries none. */
static void planned_error(const dfm_token *token, int status,
                          const char *message, void *context)
{
    async_plan *plan = (async_plan *)context;

    (void)message;
    if (token != NULL && status == DFM_ERR_CALLBACK_FAILED)
        plan->failures_reported++;
    else if (token == NULL && status == DFM_ERR_INVALID_ARGUMENT)
        plan->doubles_reported++;
    else
        plan->other_reports++;
}

static dfm_callbacks *planned_set(async_plan *plan)
{
    dfm_callbacks *set = dfm_callbacks_create();

    CHECK_STATUS(dfm_callbacks_set_default_async(set, planned_callback,
                                                 plan),
                 DFM_OK);
    CHECK_STATUS(dfm_callbacks_set_error_handler(set, planned_error, plan),
                 DFM_OK);
    return set;
}

typedef enum async_host {
    HOST_MANUAL,               /* pumped by the test thread */
    HOST_EXECUTOR              /* run by a loop thread */
} async_host;

static dfm_runner *planned_runner(async_host kind, async_plan *plan,
                                  loop *host)
{
    dfm_callbacks *set = planned_set(plan);
    dfm_runner *runner;

    if (kind == HOST_MANUAL) {
        runner = manual_runner(set);
    } else {
        dfm_executor executor;

        executor.post = loop_post;
        executor.context = host;
        runner = runner_from(dfm_executor_dispatcher_create(executor), set);
    }
    dfm_callbacks_destroy(set);
    return runner;
}

/* Moves an async runner on until its counters account for `count`
 * tokens, or ten seconds pass.  For an executor runner it then waits
 * until the loop is idle, so that what the callbacks and the error
 * handler wrote on the loop thread is visible here (through the loop's
 * lock, not only through the library's counters). */
static bool settle_async(async_host kind, dfm_runner *runner,
                         uint64_t count, loop *host)
{
    uint64_t deadline = now_ns() + 10000000000u;

    while (now_ns() < deadline) {
        dfm_stats stats = quiet_stats(runner);

        if (stats.delivered + stats.failed + stats.discarded >= count
            && stats.pending == 0) {
            if (kind == HOST_EXECUTOR)
                loop_settle(host);
            return true;
        }
        if (kind == HOST_MANUAL) {
            int status = dfm_process_pending_async(runner);

            if (status != DFM_OK && status != DFM_ERR_CALLBACK_FAILED)
                CHECK_STATUS(status, DFM_OK);
        }
        sched_yield();
    }
    if (kind == HOST_EXECUTOR)
        loop_settle(host);
    return false;
}

/* ---- Completions from foreign threads, racing ------------------------ */

typedef struct feeder {
    dfm_runner *runner;
    tracked_object *objects;
    size_t first;
    size_t count;
    bool until_closed;         /* then INT tokens until DFM_ERR_CLOSED */
    size_t offered;            /* tokens handed to dispatch */
    size_t accepted;
    size_t closed;             /* tokens refused with DFM_ERR_CLOSED */
    uint64_t unexpected;
    int last_unexpected;
} feeder;

/* Dispatches objects[first .. first+count) in batches of 1 to 4.  A
 * batch refused with DFM_ERR_CLOSED is still ours: release it here.  A
 * feeder that must see the runner close goes on with payload-free
 * tokens until it does. */
static void *feed_objects(void *argument)
{
    feeder *self = (feeder *)argument;
    size_t next = self->first;
    size_t end = self->first + self->count;

    while (next < end) {
        dfm_token batch[4];
        size_t count = 1 + next % 4;
        size_t i;
        int status;

        if (count > end - next)
            count = end - next;
        for (i = 0; i < count; i++)
            batch[i] = token_object("p", &self->objects[next + i]);
        status = dfm_runner_dispatch(self->runner, batch, count);
        self->offered += count;
        if (status == DFM_OK || status == DFM_ERR_CALLBACK_FAILED) {
            self->accepted += count;
        } else {
            for (i = 0; i < count; i++)
                tracked_release(&self->objects[next + i]);
            if (status == DFM_ERR_CLOSED) {
                self->closed += count;
            } else {
                self->unexpected++;
                self->last_unexpected = status;
            }
        }
        next += count;
    }
    /* Slowly: the point is to be there when the runner closes, not to
     * fill its queue while the test thread waits for a turn. */
    while (self->until_closed && self->closed == 0) {
        dfm_token token = token_int("p", -1);
        struct timespec pause;
        int status = dfm_runner_dispatch(self->runner, &token, 1);

        self->offered++;
        if (status == DFM_OK) {
            self->accepted++;
        } else if (status == DFM_ERR_CLOSED) {
            self->closed++;
        } else {
            self->unexpected++;
            self->last_unexpected = status;
            break;
        }
        pause.tv_sec = 0;
        pause.tv_nsec = 100000;
        nanosleep(&pause, NULL);
    }
    return NULL;
}

static void feeders_start(feeder *feeders, pthread_t *threads, size_t n,
                          dfm_runner *runner, tracked_object *objects,
                          size_t per_feeder, bool until_closed)
{
    size_t i;

    for (i = 0; i < n; i++) {
        memset(&feeders[i], 0, sizeof feeders[i]);
        feeders[i].runner = runner;
        feeders[i].until_closed = until_closed;
        feeders[i].objects = objects;
        feeders[i].first = i * per_feeder;
        feeders[i].count = per_feeder;
        if (!CHECK(pthread_create(&threads[i], NULL, feed_objects,
                                  &feeders[i])
                   == 0))
            exit(EXIT_FAILURE);
    }
}

/* Joins the feeders and adds up what they saw. */
static void feeders_join(feeder *feeders, pthread_t *threads, size_t n,
                         feeder *sum)
{
    size_t i;

    memset(sum, 0, sizeof *sum);
    for (i = 0; i < n; i++) {
        pthread_join(threads[i], NULL);
        sum->offered += feeders[i].offered;
        sum->accepted += feeders[i].accepted;
        sum->closed += feeders[i].closed;
        sum->unexpected += feeders[i].unexpected;
        if (feeders[i].unexpected > 0) {
            sum->last_unexpected = feeders[i].last_unexpected;
            fprintf(stderr, "    a feeder got %s\n",
                    dfm_status_name(feeders[i].last_unexpected));
        }
    }
}

/* Four runners, each fed by a producer thread; every async callback
 * hands its completion to one of four completer threads, which complete
 * it after a random delay, some with a failure; the runners run on the
 * test thread (manual) or a loop thread (executor) meanwhile. */
static void foreign_completions_race(async_host kind)
{
    enum { RUNNERS = 4, BOXES = 4 };
    size_t per_runner = scaled(5000);
    mailbox boxes[BOXES];
    async_plan plans[RUNNERS];
    dfm_runner *runners[RUNNERS];
    feeder feeders[RUNNERS];
    pthread_t threads[RUNNERS];
    tracked_object *objects = objects_new(RUNNERS * per_runner);
    loop host;
    size_t r;
    size_t i;

    for (i = 0; i < BOXES; i++)
        mailbox_start(&boxes[i]);
    if (kind == HOST_EXECUTOR)
        loop_start(&host);
    for (r = 0; r < RUNNERS; r++) {
        async_plan_init(&plans[r], boxes, BOXES);
        plans[r].max_delay_us = 50;
        plans[r].fail_every = 37;
        plans[r].inline_some = true;
        runners[r] = planned_runner(kind, &plans[r], &host);
        if (kind == HOST_MANUAL)
            CHECK_STATUS(dfm_process_pending_async(runners[r]), DFM_OK);
        memset(&feeders[r], 0, sizeof feeders[r]);
        feeders[r].runner = runners[r];
        feeders[r].objects = objects;
        feeders[r].first = r * per_runner;
        feeders[r].count = per_runner;
        if (!CHECK(pthread_create(&threads[r], NULL, feed_objects,
                                  &feeders[r])
                   == 0))
            exit(EXIT_FAILURE);
    }
    for (r = 0; r < RUNNERS; r++)
        injected(per_runner);

    for (r = 0; r < RUNNERS; r++)
        pthread_join(threads[r], NULL);
    for (r = 0; r < RUNNERS; r++) {
        dfm_stats stats;

        CHECK_EQ(feeders[r].unexpected, 0);
        CHECK(settle_async(kind, runners[r], per_runner, &host));
        stats = stats_of(runners[r]);
        CHECK_EQ(stats.dispatched, per_runner);
        CHECK_EQ(stats.delivered + stats.failed, per_runner);
        CHECK_EQ(stats.failed, plans[r].failures_reported);
        CHECK(stats.failed > 0);
        CHECK(stats_balance(&stats));
        CHECK_EQ(plans[r].started, per_runner);
        CHECK_EQ(plans[r].order_errors, 0);
        CHECK_EQ(plans[r].overlaps, 0);
        CHECK_EQ(plans[r].released_early, 0);
        CHECK_EQ(plans[r].other_reports, 0);
        CHECK_EQ(plans[r].doubles_reported, 0);
        if (kind == HOST_MANUAL)
            dfm_runner_destroy(runners[r]);
        else
            loop_call_now(&host, destroy_runner_work, runners[r]);
    }

    for (i = 0; i < BOXES; i++)
        mailbox_stop(&boxes[i]);
    if (kind == HOST_EXECUTOR)
        loop_stop(&host);
    objects_check_free(objects, RUNNERS * per_runner);
}

static void test_foreign_completions_race_a_manual_pump(void)
{
    foreign_completions_race(HOST_MANUAL);
}

static void test_foreign_completions_race_an_executor_loop(void)
{
    foreign_completions_race(HOST_EXECUTOR);
}

/* ---- Two threads complete each token at once ------------------------- */

/* Completes one token from two mailboxes at once: exactly one of the two
 * dfm_complete calls must win.  The loser is refused, counted as failed,
 * reported with a NULL token, and leaves a message in its own thread's
 * dfm_last_error(), which each thread checks against a marker it set. */
static char refused_marker[512];

static void set_refused_marker(void)
{
    (void)dfm_runner_stats(NULL, NULL);
}

static void double_completions_race(async_host kind)
{
    size_t count = scaled(2000);
    mailbox boxes[2];
    async_plan plan;
    tracked_object *objects = objects_new(count);
    dfm_runner *runner;
    loop host;
    feeder feed;
    dfm_stats stats;
    size_t i;

    /* The marker: the message of a failing call that is not
     * dfm_complete. */
    set_refused_marker();
    snprintf(refused_marker, sizeof refused_marker, "%s", dfm_last_error());

    for (i = 0; i < 2; i++)
        mailbox_start(&boxes[i]);
    if (kind == HOST_EXECUTOR)
        loop_start(&host);
    async_plan_init(&plan, boxes, 2);
    plan.twice = true;
    runner = planned_runner(kind, &plan, &host);
    if (kind == HOST_MANUAL)
        CHECK_STATUS(dfm_process_pending_async(runner), DFM_OK);

    memset(&feed, 0, sizeof feed);
    feed.runner = runner;
    feed.objects = objects;
    feed.count = count;
    feed_objects(&feed);
    CHECK_EQ(feed.accepted, count);

    CHECK(settle_async(kind, runner, count, &host));
    for (i = 0; i < 2; i++)
        mailbox_drain(&boxes[i]);
    if (kind == HOST_MANUAL) {
        /* The refusals are reported on the runner's thread. */
        CHECK_STATUS(dfm_process_pending_async(runner), DFM_OK);
    } else {
        loop_settle(&host);
    }

    stats = stats_of(runner);
    CHECK_EQ(plan.started, count);
    CHECK_EQ(plan.order_errors, 0);
    CHECK_EQ(plan.overlaps, 0);
    CHECK_EQ(stats.delivered, count);
    CHECK_EQ(stats.failed, count);
    CHECK_EQ(plan.doubles_reported, count);
    CHECK_EQ(plan.failures_reported, 0);
    CHECK_EQ(plan.other_reports, 0);
    if (kind == HOST_MANUAL)
        dfm_runner_destroy(runner);
    else
        loop_call_now(&host, destroy_runner_work, runner);

    for (i = 0; i < 2; i++)
        mailbox_stop(&boxes[i]);
    if (kind == HOST_EXECUTOR)
        loop_stop(&host);
    objects_check_free(objects, count);
}

static void test_racing_double_completions_manual(void)
{
    double_completions_race(HOST_MANUAL);
}

static void test_racing_double_completions_executor(void)
{
    double_completions_race(HOST_EXECUTOR);
}

/* Each thread's own message tells it whether its call was refused. */
typedef struct racer {
    dfm_completion *completion;
    int *gate;
    bool refused;
} racer;

static void *race_to_complete(void *argument)
{
    racer *self = (racer *)argument;

    set_refused_marker();
    __atomic_add_fetch(self->gate, 1, __ATOMIC_SEQ_CST);
    while (__atomic_load_n(self->gate, __ATOMIC_SEQ_CST) < 2) {
    }
    dfm_complete(self->completion, 0);
    self->refused = strcmp(dfm_last_error(), refused_marker) != 0;
    return NULL;
}

/* A holding async callback: keeps the completion for the test. */
typedef struct holder {
    dfm_completion *completion;
    int64_t key;
    uint64_t started;
} holder;

static void holding_callback(const dfm_token *token,
                             dfm_completion *completion, void *user_data)
{
    holder *self = (holder *)user_data;

    self->completion = completion;
    self->key = token_key(token);
    self->started++;
}

static dfm_runner *holding_runner(holder *self, error_record *errors)
{
    dfm_callbacks *set = dfm_callbacks_create();
    dfm_runner *runner;

    memset(self, 0, sizeof *self);
    CHECK_STATUS(dfm_callbacks_set_default_async(set, holding_callback,
                                                 self),
                 DFM_OK);
    if (errors != NULL) {
        error_record_reset(errors);
        CHECK_STATUS(dfm_callbacks_set_error_handler(set, error_recorder,
                                                     errors),
                     DFM_OK);
    }
    runner = manual_runner(set);
    dfm_callbacks_destroy(set);
    return runner;
}

static void test_exactly_one_of_two_racing_completions_is_refused(void)
{
    size_t rounds = scaled(500);
    size_t refused_total = 0;
    size_t wrong = 0;
    size_t round;

    set_refused_marker();
    snprintf(refused_marker, sizeof refused_marker, "%s", dfm_last_error());
    for (round = 0; round < rounds; round++) {
        holder hold;
        error_record errors;
        dfm_runner *runner = holding_runner(&hold, &errors);
        tracked_object object;
        dfm_token token;
        racer racers[2];
        pthread_t threads[2];
        int gate = 0;
        size_t i;
        dfm_stats stats;

        tracked_reset(&object, 1);
        token = token_object("p", &object);
        CHECK_STATUS(dfm_runner_dispatch(runner, &token, 1), DFM_OK);
        CHECK_STATUS(dfm_process_pending_async(runner), DFM_OK);
        for (i = 0; i < 2; i++) {
            racers[i].completion = hold.completion;
            racers[i].gate = &gate;
            racers[i].refused = false;
            if (!CHECK(pthread_create(&threads[i], NULL, race_to_complete,
                                      &racers[i])
                       == 0))
                exit(EXIT_FAILURE);
        }
        for (i = 0; i < 2; i++)
            pthread_join(threads[i], NULL);
        injected(1);
        CHECK_STATUS(dfm_process_pending_async(runner), DFM_OK);

        stats = stats_of(runner);
        if ((racers[0].refused ? 1 : 0) + (racers[1].refused ? 1 : 0) != 1
            || stats.delivered != 1 || stats.failed != 1
            || errors.count != 1 || errors.had_token
            || tracked_releases(&object) != 1)
            wrong++;
        refused_total += racers[0].refused + racers[1].refused;
        dfm_runner_destroy(runner);
        if (tracked_releases(&object) != 1)
            wrong++;
    }
    CHECK_EQ(wrong, 0);
    CHECK_EQ(refused_total, rounds);
}

/* A hand-run executor: posted work waits until the test runs it. */
typedef struct hand_loop {
    void (*work[64])(void *);
    void *arg[64];
    size_t count;
    size_t posted;
} hand_loop;

static void hand_post(void *context, void (*work)(void *), void *arg)
{
    hand_loop *host = (hand_loop *)context;

    host->posted++;
    if (host->count < 64) {
        host->work[host->count] = work;
        host->arg[host->count] = arg;
        host->count++;
    }
}

static void hand_run(hand_loop *host)
{
    while (host->count > 0) {
        void (*work)(void *) = host->work[0];
        void *arg = host->arg[0];

        host->count--;
        memmove(host->work, host->work + 1, host->count * sizeof(void *));
        memmove(host->arg, host->arg + 1, host->count * sizeof(void *));
        work(arg);
    }
}

/* The second completion reaches an executor runner that is idle: the
 * report must still reach the error handler, on the loop, without
 * waiting for more tokens. */
static void test_a_second_completion_on_an_idle_executor_is_reported(void)
{
    hand_loop host;
    holder hold;
    error_record errors;
    dfm_callbacks *set = dfm_callbacks_create();
    dfm_executor executor;
    dfm_runner *runner;
    tracked_object object;
    dfm_token token;
    dfm_stats stats;

    memset(&host, 0, sizeof host);
    memset(&hold, 0, sizeof hold);
    error_record_reset(&errors);
    tracked_reset(&object, 1);
    CHECK_STATUS(dfm_callbacks_set_default_async(set, holding_callback,
                                                 &hold),
                 DFM_OK);
    CHECK_STATUS(dfm_callbacks_set_error_handler(set, error_recorder,
                                                 &errors),
                 DFM_OK);
    executor.post = hand_post;
    executor.context = &host;
    runner = runner_from(dfm_executor_dispatcher_create(executor), set);
    dfm_callbacks_destroy(set);

    token = token_object("p", &object);
    CHECK_STATUS(dfm_runner_dispatch(runner, &token, 1), DFM_OK);
    hand_run(&host);
    dfm_complete(hold.completion, 0);
    hand_run(&host);
    CHECK_EQ(tracked_releases(&object), 1);

    /* The runner is idle now; the second completion is refused. */
    injected(1);
    dfm_complete(hold.completion, 0);
    CHECK(dfm_last_error()[0] != '\0');
    hand_run(&host);

    stats = stats_of(runner);
    CHECK_EQ(stats.delivered, 1);
    CHECK_EQ(stats.failed, 1);
    if (!CHECK_EQ(errors.count, 1))
        fprintf(stderr, "    the refusal was counted but never reported: "
                "no work item was posted for it\n");
    CHECK(!errors.had_token);
    CHECK_STATUS(errors.status, DFM_ERR_INVALID_ARGUMENT);
    dfm_runner_destroy(runner);
    CHECK_EQ(tracked_releases(&object), 1);
}

/* ---- Late and stale completions -------------------------------------- */

/* A completion kept from the first token is used again thousands of
 * tokens later, while another token is in flight: it must not complete
 * that token, and it counts as one more failure. */
static void test_a_stale_completion_never_completes_a_later_token(void)
{
    size_t count = scaled(5000);
    holder hold;
    error_record errors;
    dfm_runner *runner = holding_runner(&hold, &errors);
    tracked_object *objects = objects_new(count + 2);
    dfm_completion *stale;
    dfm_token token;
    dfm_stats stats;
    size_t i;
    int pumps;

    for (i = 0; i < count + 2; i++) {
        token = token_object("p", &objects[i]);
        CHECK_STATUS(dfm_runner_dispatch(runner, &token, 1), DFM_OK);
    }

    /* Token 0 goes through; its completion is kept. */
    CHECK_STATUS(dfm_process_pending_async(runner), DFM_OK);
    stale = hold.completion;
    hold.completion = NULL;
    dfm_complete(stale, 0);

    /* Tokens 1 .. count go through, completed at once. */
    while (hold.started <= count) {
        CHECK_STATUS(dfm_process_pending_async(runner), DFM_OK);
        if (hold.completion != NULL && hold.key < (int64_t)count) {
            dfm_completion *current = hold.completion;

            hold.completion = NULL;
            dfm_complete(current, 0);
        }
        if (hold.key >= (int64_t)count)
            break;
    }
    CHECK_EQ(hold.key, (int64_t)count);
    CHECK(hold.completion != NULL);

    /* Token `count` is in flight: the stale handle must not finish it. */
    injected(1);
    dfm_complete(stale, 0);
    for (pumps = 0; pumps < 10; pumps++)
        (void)dfm_process_pending_async(runner);
    CHECK_EQ(hold.started, count + 1);
    CHECK_EQ(tracked_releases(&objects[count]), 0);
    stats = stats_of(runner);
    CHECK_EQ(stats.delivered, count);
    CHECK_EQ(stats.failed, 1);
    CHECK_EQ(errors.count, 1);
    CHECK(!errors.had_token);

    /* The real completion still works. */
    dfm_complete(hold.completion, 0);
    CHECK_STATUS(dfm_process_pending_async(runner), DFM_OK);
    CHECK_EQ(hold.started, count + 2);
    CHECK_EQ(hold.key, (int64_t)count + 1);
    dfm_complete(hold.completion, 0);
    CHECK_STATUS(dfm_process_pending_async(runner), DFM_OK);
    CHECK_EQ(stats_of(runner).delivered, count + 2);
    dfm_runner_destroy(runner);
    objects_check_free(objects, count + 2);
}

/* Runners come and go: a completion of a destroyed runner, used again
 * while a new runner (perhaps at the same address) has a token in
 * flight, must not touch the new runner. */
static void test_a_stale_completion_never_touches_a_new_runner(void)
{
    size_t rounds = scaled(500);
    size_t wrong = 0;
    size_t round;

    for (round = 0; round < rounds; round++) {
        holder first;
        holder second;
        tracked_object objects[3];
        dfm_runner *runner;
        dfm_completion *stale;
        dfm_token token;
        dfm_stats stats;

        tracked_reset(objects, 3);
        runner = holding_runner(&first, NULL);
        token = token_object("p", &objects[0]);
        CHECK_STATUS(dfm_runner_dispatch(runner, &token, 1), DFM_OK);
        CHECK_STATUS(dfm_process_pending_async(runner), DFM_OK);
        stale = first.completion;
        dfm_complete(stale, 0);
        CHECK_STATUS(dfm_process_pending_async(runner), DFM_OK);
        dfm_runner_destroy(runner);

        runner = holding_runner(&second, NULL);
        token = token_object("p", &objects[1]);
        CHECK_STATUS(dfm_runner_dispatch(runner, &token, 1), DFM_OK);
        token = token_object("p", &objects[2]);
        CHECK_STATUS(dfm_runner_dispatch(runner, &token, 1), DFM_OK);
        CHECK_STATUS(dfm_process_pending_async(runner), DFM_OK);

        injected(1);
        dfm_complete(stale, 0);
        (void)dfm_process_pending_async(runner);
        (void)dfm_process_pending_async(runner);
        stats = stats_of(runner);
        if (second.started != 1 || tracked_releases(&objects[1]) != 0
            || stats.failed != 0 || stats.delivered != 0)
            wrong++;

        dfm_complete(second.completion, 0);
        CHECK_STATUS(dfm_process_pending_async(runner), DFM_OK);
        if (second.started != 2)
            wrong++;
        else
            dfm_complete(second.completion, 0);
        CHECK_STATUS(dfm_process_pending_async(runner), DFM_OK);
        if (stats_of(runner).delivered != 2)
            wrong++;
        dfm_runner_destroy(runner);
        if (tracked_count_released(objects, 3, 1) != 3)
            wrong++;
    }
    CHECK_EQ(wrong, 0);
}

/* One completion arrives late, from a foreign thread, after producers
 * have queued thousands of tokens and the test has pumped many times;
 * nothing starts before it, everything flows after it. */
static void test_a_late_foreign_completion_holds_back_the_rest(void)
{
    size_t count = scaled(10000);
    holder hold;
    dfm_runner *runner = holding_runner(&hold, NULL);
    tracked_object *objects = objects_new(count);
    feeder feeders[2];
    pthread_t threads[2];
    mailbox box;
    size_t i;
    int pumps;
    dfm_stats stats;

    CHECK_STATUS(dfm_process_pending_async(runner), DFM_OK);
    for (i = 0; i < 2; i++) {
        memset(&feeders[i], 0, sizeof feeders[i]);
        feeders[i].runner = runner;
        feeders[i].objects = objects;
        feeders[i].first = i * (count / 2);
        feeders[i].count = count / 2;
        if (!CHECK(pthread_create(&threads[i], NULL, feed_objects,
                                  &feeders[i])
                   == 0))
            exit(EXIT_FAILURE);
    }
    while (hold.started == 0)
        CHECK_STATUS(dfm_process_pending_async(runner), DFM_OK);
    for (i = 0; i < 2; i++)
        pthread_join(threads[i], NULL);

    /* Many pumps, one token in flight, nothing else moves. */
    for (pumps = 0; pumps < 1000; pumps++)
        CHECK_STATUS(dfm_process_pending_async(runner), DFM_OK);
    stats = stats_of(runner);
    CHECK_EQ(hold.started, 1);
    CHECK_EQ(stats.dispatched, count - count % 2);
    CHECK_EQ(stats.delivered, 0);
    CHECK_EQ(tracked_count_released(objects, count, 0), count);

    /* The late completion comes from a foreign thread, 20 ms later. */
    mailbox_start(&box);
    injected(1);
    mailbox_post(&box, hold.completion, 0, 20000);
    mailbox_drain(&box);
    while (hold.started < count - count % 2) {
        uint64_t before = hold.started;

        CHECK_STATUS(dfm_process_pending_async(runner), DFM_OK);
        if (hold.started != before)
            dfm_complete(hold.completion, 0);
    }
    CHECK_STATUS(dfm_process_pending_async(runner), DFM_OK);
    stats = stats_of(runner);
    CHECK_EQ(stats.delivered, count - count % 2);
    CHECK_EQ(stats.pending, 0);
    mailbox_stop(&box);
    dfm_runner_destroy(runner);
    for (i = count - count % 2; i < count; i++)
        tracked_release(&objects[i]);
    objects_check_free(objects, count);
}

/* A late completion, from a foreign thread, after stop(DRAIN): what was
 * queued before the stop is still delivered, in order. */
static void test_a_late_completion_after_stop_drain(void)
{
    holder hold;
    dfm_runner *runner = holding_runner(&hold, NULL);
    tracked_object objects[6];
    dfm_token token;
    mailbox box;
    size_t i;

    tracked_reset(objects, 6);
    for (i = 0; i < 5; i++) {
        token = token_object("p", &objects[i]);
        CHECK_STATUS(dfm_runner_dispatch(runner, &token, 1), DFM_OK);
    }
    CHECK_STATUS(dfm_process_pending_async(runner), DFM_OK);
    CHECK_STATUS(dfm_runner_stop(runner, DFM_STOP_DRAIN), DFM_OK);
    token = token_object("p", &objects[5]);
    CHECK_STATUS(dfm_runner_dispatch(runner, &token, 1), DFM_ERR_CLOSED);

    mailbox_start(&box);
    injected(1);
    mailbox_post(&box, hold.completion, 0, 10000);
    mailbox_drain(&box);
    mailbox_stop(&box);
    while (hold.started < 5) {
        size_t before = hold.started;

        CHECK_STATUS(dfm_process_pending_async(runner), DFM_OK);
        if (!CHECK(hold.started == before + 1))
            break;
        dfm_complete(hold.completion, 0);
    }
    CHECK_STATUS(dfm_process_pending_async(runner), DFM_OK);
    CHECK_EQ(hold.started, 5);
    CHECK_EQ(hold.key, 4);
    CHECK_EQ(stats_of(runner).delivered, 5);
    dfm_runner_destroy(runner);
    CHECK_EQ(tracked_count_released(objects, 5, 1), 5);
    CHECK_EQ(tracked_releases(&objects[5]), 0);
}

/* ---- Stop and destroy from inside callbacks ------------------------- */

/* An async callback that stops its own runner (DRAIN) at key 2, tries a
 * dispatch after that, and completes from a foreign thread. */
typedef struct stopping_async {
    dfm_runner *runner;
    mailbox *box;
    tracked_object *late;
    uint64_t started;
    int stop_status;
    int dispatch_status;
} stopping_async;

static void stop_drain_callback(const dfm_token *token,
                                dfm_completion *completion, void *user_data)
{
    stopping_async *state = (stopping_async *)user_data;

    state->started++;
    if (token_key(token) == 2) {
        dfm_token extra = token_object("p", state->late);

        injected(1);
        state->stop_status = dfm_runner_stop(state->runner, DFM_STOP_DRAIN);
        state->dispatch_status = dfm_runner_dispatch(state->runner, &extra,
                                                     1);
        if (state->dispatch_status != DFM_OK)
            tracked_release(state->late);
    }
    mailbox_post(state->box, completion, 0, 100);
}

static void test_stop_drain_inside_an_async_callback(void)
{
    stopping_async state;
    tracked_object objects[7];
    dfm_callbacks *set = dfm_callbacks_create();
    mailbox box;
    dfm_token token;
    dfm_stats stats;
    size_t i;
    int pumps;

    tracked_reset(objects, 7);
    mailbox_start(&box);
    memset(&state, 0, sizeof state);
    state.box = &box;
    state.late = &objects[6];
    state.stop_status = -1;
    state.dispatch_status = -1;
    CHECK_STATUS(dfm_callbacks_set_default_async(set, stop_drain_callback,
                                                 &state),
                 DFM_OK);
    state.runner = manual_runner(set);
    dfm_callbacks_destroy(set);
    for (i = 0; i < 6; i++) {
        token = token_object("p", &objects[i]);
        CHECK_STATUS(dfm_runner_dispatch(state.runner, &token, 1), DFM_OK);
    }

    for (pumps = 0; pumps < 10000 && quiet_stats(state.runner).delivered < 6;
         pumps++) {
        CHECK_STATUS(dfm_process_pending_async(state.runner), DFM_OK);
        sched_yield();
    }
    mailbox_drain(&box);
    CHECK_STATUS(dfm_process_pending_async(state.runner), DFM_OK);
    CHECK_STATUS(state.stop_status, DFM_OK);
    CHECK_STATUS(state.dispatch_status, DFM_ERR_CLOSED);
    CHECK_EQ(state.started, 6);
    stats = stats_of(state.runner);
    CHECK_EQ(stats.delivered, 6);
    CHECK_EQ(stats.rejected, 1);
    CHECK(stats_balance(&stats));
    dfm_runner_destroy(state.runner);
    mailbox_stop(&box);
    CHECK_EQ(tracked_count_released(objects, 7, 1), 7);
}

/* An executor callback stops its runner with DISCARD at the 500th token
 * while four producers keep dispatching: what was queued is released,
 * later dispatches are refused (and released by their producers). */
typedef struct executor_stopper {
    dfm_runner *runner;
    uint64_t started;
    uint64_t trigger;
    int stop_status;
} executor_stopper;

static void stop_discard_callback(const dfm_token *token,
                                  dfm_completion *completion,
                                  void *user_data)
{
    executor_stopper *state = (executor_stopper *)user_data;

    (void)token;
    if (++state->started == state->trigger) {
        injected(1);
        state->stop_status = dfm_runner_stop(state->runner,
                                             DFM_STOP_DISCARD);
    }
    dfm_complete(completion, 0);
}

static void test_stop_discard_inside_an_executor_callback_under_load(void)
{
    enum { FEEDERS = 4 };
    size_t per_feeder = scaled(5000);
    size_t total = FEEDERS * per_feeder;
    tracked_object *objects = objects_new(total);
    executor_stopper state;
    feeder feeders[FEEDERS];
    pthread_t threads[FEEDERS];
    feeder sum;
    dfm_callbacks *set = dfm_callbacks_create();
    dfm_executor executor;
    dfm_stats stats;
    loop host;

    loop_start(&host);
    memset(&state, 0, sizeof state);
    state.trigger = 500;
    state.stop_status = -1;
    CHECK_STATUS(dfm_callbacks_set_default_async(set, stop_discard_callback,
                                                 &state),
                 DFM_OK);
    executor.post = loop_post;
    executor.context = &host;
    state.runner = runner_from(dfm_executor_dispatcher_create(executor),
                               set);
    dfm_callbacks_destroy(set);

    feeders_start(feeders, threads, FEEDERS, state.runner, objects,
                  per_feeder, false);
    feeders_join(feeders, threads, FEEDERS, &sum);
    loop_settle(&host);

    stats = stats_of(state.runner);
    CHECK_EQ(sum.unexpected, 0);
    CHECK_EQ(sum.accepted + sum.closed, total);
    CHECK_EQ(stats.dispatched, sum.accepted);
    CHECK_EQ(stats.rejected, sum.closed);
    CHECK_EQ(stats.pending, 0);
    CHECK(stats_balance(&stats));
    if (state.started >= state.trigger) {
        CHECK_STATUS(state.stop_status, DFM_OK);
        CHECK_EQ(stats.delivered, state.trigger);
        CHECK(sum.closed > 0 || stats.discarded > 0);
    }
    loop_call_now(&host, destroy_runner_work, state.runner);
    loop_stop(&host);
    objects_check_free(objects, total);
}

/* A sync callback fails at key 2; the error handler destroys the runner
 * that is delivering.  The destroy waits for the pump (or the direct
 * dispatch) to unwind; every payload is released once. */
typedef struct handler_destroyer {
    dfm_runner *runner;
    uint64_t calls;
    uint64_t reports;
} handler_destroyer;

static int fail_at_two(const dfm_token *token, void *user_data)
{
    handler_destroyer *state = (handler_destroyer *)user_data;

    state->calls++;
    return token_key(token) == 2 ? 5 : 0;
}

static void destroy_in_handler(const dfm_token *token, int status,
                               const char *message, void *context)
{
    handler_destroyer *state = (handler_destroyer *)context;

    (void)token;
    (void)status;
    (void)message;
    state->reports++;
    injected(1);
    dfm_runner_destroy(state->runner);
}

static void error_handler_destroys(bool direct)
{
    handler_destroyer state;
    tracked_object objects[6];
    dfm_token tokens[6];
    dfm_callbacks *set = dfm_callbacks_create();
    size_t i;
    int status;

    memset(&state, 0, sizeof state);
    tracked_reset(objects, 6);
    CHECK_STATUS(dfm_callbacks_set_default(set, fail_at_two, &state),
                 DFM_OK);
    CHECK_STATUS(dfm_callbacks_set_error_handler(set, destroy_in_handler,
                                                 &state),
                 DFM_OK);
    state.runner = direct ? direct_runner(set) : manual_runner(set);
    dfm_callbacks_destroy(set);
    for (i = 0; i < 6; i++)
        tokens[i] = token_object("p", &objects[i]);

    status = dfm_runner_dispatch(state.runner, tokens, 6);
    if (direct) {
        CHECK(status == DFM_OK || status == DFM_ERR_CALLBACK_FAILED);
    } else {
        CHECK_STATUS(status, DFM_OK);
        status = dfm_process_pending(state.runner);
        CHECK(status == DFM_OK || status == DFM_ERR_CALLBACK_FAILED);
    }

    /* The runner is gone; whether the rest of the batch ran first is the
     * library's choice. */
    CHECK_EQ(state.reports, 1);
    CHECK(state.calls >= 3);
    CHECK_EQ(tracked_count_released(objects, 6, 1), 6);
}

static void test_an_error_handler_destroys_a_manual_runner(void)
{
    error_handler_destroys(false);
}

static void test_an_error_handler_destroys_a_direct_runner(void)
{
    error_handler_destroys(true);
}

/* The error handler of an async runner runs at the next pump, after a
 * failed completion from a foreign thread; it destroys the runner while
 * tokens are still queued. */
typedef struct async_handler_destroyer {
    dfm_runner *runner;
    mailbox *box;
    uint64_t started;
    uint64_t reports;
} async_handler_destroyer;

static void fail_from_afar(const dfm_token *token, dfm_completion *completion,
                           void *user_data)
{
    async_handler_destroyer *state = (async_handler_destroyer *)user_data;

    state->started++;
    mailbox_post(state->box, completion, token_key(token) == 1 ? 4 : 0, 0);
}

static void async_destroy_in_handler(const dfm_token *token, int status,
                                     const char *message, void *context)
{
    async_handler_destroyer *state = (async_handler_destroyer *)context;

    (void)token;
    (void)status;
    (void)message;
    state->reports++;
    injected(1);
    dfm_runner_destroy(state->runner);
}

static void test_an_async_error_handler_destroys_its_runner(void)
{
    async_handler_destroyer state;
    tracked_object objects[5];
    dfm_token tokens[5];
    dfm_callbacks *set = dfm_callbacks_create();
    mailbox box;
    size_t i;
    int pumps;

    mailbox_start(&box);
    memset(&state, 0, sizeof state);
    state.box = &box;
    tracked_reset(objects, 5);
    CHECK_STATUS(dfm_callbacks_set_default_async(set, fail_from_afar,
                                                 &state),
                 DFM_OK);
    CHECK_STATUS(dfm_callbacks_set_error_handler(
                     set, async_destroy_in_handler, &state),
                 DFM_OK);
    state.runner = manual_runner(set);
    dfm_callbacks_destroy(set);
    for (i = 0; i < 5; i++)
        tokens[i] = token_object("p", &objects[i]);
    CHECK_STATUS(dfm_runner_dispatch(state.runner, tokens, 5), DFM_OK);

    /* Pump until the handler has destroyed the runner; never after. */
    for (pumps = 0; pumps < 100000 && state.reports == 0; pumps++) {
        (void)dfm_process_pending_async(state.runner);
        mailbox_drain(&box);
    }
    CHECK_EQ(state.reports, 1);
    CHECK_EQ(state.started, 2);
    mailbox_drain(&box);
    mailbox_stop(&box);
    CHECK_EQ(tracked_count_released(objects, 5, 1), 5);
}

/* A budget pump of 3 tokens out of 10; the second callback destroys the
 * runner. */
typedef struct budget_destroyer {
    dfm_runner *runner;
    uint64_t calls;
} budget_destroyer;

static int destroy_at_one(const dfm_token *token, void *user_data)
{
    budget_destroyer *state = (budget_destroyer *)user_data;

    state->calls++;
    if (token_key(token) == 1) {
        injected(1);
        dfm_runner_destroy(state->runner);
    }
    return 0;
}

static void test_destroy_inside_a_budget_pump(void)
{
    budget_destroyer state;
    tracked_object objects[10];
    dfm_token tokens[10];
    dfm_callbacks *set;
    dfm_pump_result result;
    size_t i;

    memset(&state, 0, sizeof state);
    tracked_reset(objects, 10);
    set = callbacks_default(destroy_at_one, &state, NULL);
    state.runner = manual_runner(set);
    dfm_callbacks_destroy(set);
    for (i = 0; i < 10; i++)
        tokens[i] = token_object("p", &objects[i]);
    CHECK_STATUS(dfm_runner_dispatch(state.runner, tokens, 10), DFM_OK);

    memset(&result, 0, sizeof result);
    (void)dfm_process_pending_budget(state.runner, 3, 0, &result);
    CHECK(state.calls >= 2 && state.calls <= 3);
    CHECK_EQ(tracked_count_released(objects, 10, 1), 10);
}

/* A callback of runner A destroys runner B, whose async callback is in
 * flight (its completion on its way from a foreign thread) and which
 * still has tokens queued. */
typedef struct cross_destroyer {
    dfm_runner *victim;
    bool done;
} cross_destroyer;

static int destroy_the_other(const dfm_token *token, void *user_data)
{
    cross_destroyer *state = (cross_destroyer *)user_data;

    (void)token;
    if (!state->done) {
        injected(1);
        dfm_runner_destroy(state->victim);
        state->done = true;
    }
    return 0;
}

static void test_a_callback_destroys_another_runner_in_flight(void)
{
    size_t rounds = scaled(200);
    size_t wrong = 0;
    size_t round;
    mailbox box;

    mailbox_start(&box);
    for (round = 0; round < rounds; round++) {
        cross_destroyer state;
        async_plan plan;
        tracked_object objects[5];
        dfm_token tokens[4];
        dfm_callbacks *set;
        dfm_runner *killer;
        dfm_token trigger;
        size_t i;

        tracked_reset(objects, 5);
        async_plan_init(&plan, &box, 1);
        plan.max_delay_us = (unsigned)(round % 7) * 30 + 1;
        state.victim = planned_runner(HOST_MANUAL, &plan, NULL);
        state.done = false;
        for (i = 0; i < 4; i++)
            tokens[i] = token_object("p", &objects[i]);
        CHECK_STATUS(dfm_runner_dispatch(state.victim, tokens, 4), DFM_OK);
        CHECK_STATUS(dfm_process_pending_async(state.victim), DFM_OK);

        set = callbacks_default(destroy_the_other, &state, NULL);
        killer = manual_runner(set);
        dfm_callbacks_destroy(set);
        trigger = token_object("p", &objects[4]);
        CHECK_STATUS(dfm_runner_dispatch(killer, &trigger, 1), DFM_OK);
        CHECK_STATUS(dfm_process_pending(killer), DFM_OK);
        dfm_runner_destroy(killer);

        /* A completion that arrives while the first pump is still
         * running lets that pump start the next callbacks too. */
        mailbox_drain(&box);
        if (plan.started < 1 || plan.started > 4
            || tracked_count_released(objects, 5, 1) != 5) {
            if (wrong < 3)
                fprintf(stderr, "    round %zu: %" PRIu64 " started, "
                        "releases %d %d %d %d %d\n", round, plan.started,
                        tracked_releases(&objects[0]),
                        tracked_releases(&objects[1]),
                        tracked_releases(&objects[2]),
                        tracked_releases(&objects[3]),
                        tracked_releases(&objects[4]));
            wrong++;
        }
    }
    mailbox_stop(&box);
    CHECK_EQ(wrong, 0);
}

/* An async callback hands its completion to a foreign thread, then
 * destroys its own runner before returning: the destroy waits for the
 * pump to unwind, and the late completion frees what is left. */
typedef struct self_destroyer {
    dfm_runner *runner;
    mailbox *box;
    uint64_t started;
} self_destroyer;

static void hand_off_then_destroy(const dfm_token *token,
                                  dfm_completion *completion,
                                  void *user_data)
{
    self_destroyer *state = (self_destroyer *)user_data;

    (void)token;
    state->started++;
    mailbox_post(state->box, completion, 0, 2000);
    injected(1);
    dfm_runner_destroy(state->runner);
}

static void destroy_after_hand_off(async_host kind)
{
    size_t rounds = scaled(100);
    size_t wrong = 0;
    size_t round;
    mailbox box;
    loop host;

    mailbox_start(&box);
    if (kind == HOST_EXECUTOR)
        loop_start(&host);
    for (round = 0; round < rounds; round++) {
        self_destroyer state;
        tracked_object objects[4];
        dfm_token tokens[4];
        dfm_callbacks *set = dfm_callbacks_create();
        size_t i;

        memset(&state, 0, sizeof state);
        state.box = &box;
        tracked_reset(objects, 4);
        CHECK_STATUS(dfm_callbacks_set_default_async(
                         set, hand_off_then_destroy, &state),
                     DFM_OK);
        if (kind == HOST_MANUAL) {
            state.runner = manual_runner(set);
        } else {
            dfm_executor executor;

            executor.post = loop_post;
            executor.context = &host;
            state.runner = runner_from(
                dfm_executor_dispatcher_create(executor), set);
        }
        dfm_callbacks_destroy(set);
        for (i = 0; i < 4; i++)
            tokens[i] = token_object("p", &objects[i]);
        CHECK_STATUS(dfm_runner_dispatch(state.runner, tokens, 4), DFM_OK);

        if (kind == HOST_MANUAL)
            (void)dfm_process_pending_async(state.runner);
        else
            loop_settle(&host);
        mailbox_drain(&box);
        if (kind == HOST_EXECUTOR)
            loop_settle(&host);
        if (state.started != 1
            || tracked_count_released(objects, 4, 1) != 4)
            wrong++;
    }
    mailbox_stop(&box);
    if (kind == HOST_EXECUTOR)
        loop_stop(&host);
    CHECK_EQ(wrong, 0);
}

static void test_destroy_after_handing_off_a_manual_completion(void)
{
    destroy_after_hand_off(HOST_MANUAL);
}

static void test_destroy_after_handing_off_an_executor_completion(void)
{
    destroy_after_hand_off(HOST_EXECUTOR);
}

/* Direct callbacks on eight producer threads; one of them stops the
 * runner with DISCARD halfway. */
typedef struct direct_stopper {
    dfm_runner *runner;
    uint64_t calls;
    uint64_t trigger;
    int stop_status;
} direct_stopper;

static int stop_when_counted(const dfm_token *token, void *user_data)
{
    direct_stopper *state = (direct_stopper *)user_data;

    (void)token;
    if (__atomic_add_fetch(&state->calls, 1, __ATOMIC_SEQ_CST)
        == state->trigger) {
        injected(1);
        state->stop_status = dfm_runner_stop(state->runner,
                                             DFM_STOP_DISCARD);
    }
    return 0;
}

static void test_a_direct_callback_stops_its_runner_under_load(void)
{
    enum { FEEDERS = 8 };
    size_t per_feeder = scaled(5000);
    size_t total = FEEDERS * per_feeder;
    tracked_object *objects = objects_new(total);
    direct_stopper state;
    feeder feeders[FEEDERS];
    pthread_t threads[FEEDERS];
    feeder sum;
    dfm_callbacks *set;
    dfm_stats stats;

    memset(&state, 0, sizeof state);
    state.trigger = total / 2;
    state.stop_status = -1;
    set = callbacks_default(stop_when_counted, &state, NULL);
    state.runner = direct_runner(set);
    dfm_callbacks_destroy(set);

    feeders_start(feeders, threads, FEEDERS, state.runner, objects,
                  per_feeder, false);
    feeders_join(feeders, threads, FEEDERS, &sum);

    stats = stats_of(state.runner);
    CHECK_STATUS(state.stop_status, DFM_OK);
    CHECK_EQ(sum.unexpected, 0);
    CHECK(sum.closed > 0);
    CHECK_EQ(sum.accepted + sum.closed, total);
    CHECK_EQ(stats.dispatched, sum.accepted);
    CHECK_EQ(stats.rejected, sum.closed);
    CHECK_EQ(stats.delivered, state.calls);
    CHECK(stats_balance(&stats));
    dfm_runner_destroy(state.runner);
    objects_check_free(objects, total);
}

/* ---- Destroy racing completions from foreign threads ------------------ */

/* Sixteen runners at a time, each with a callback in flight whose
 * completion four foreign threads deliver after random delays, while the
 * test destroys the runners: the destroy and the completions race. */
static void destroy_races_completions(async_host kind)
{
    enum { RUNNERS = 16, BOXES = 4, TOKENS = 4 };
    size_t rounds = scaled(100);
    size_t wrong = 0;
    size_t round;
    mailbox boxes[BOXES];
    loop host;
    size_t i;

    for (i = 0; i < BOXES; i++)
        mailbox_start(&boxes[i]);
    if (kind == HOST_EXECUTOR)
        loop_start(&host);
    for (round = 0; round < rounds; round++) {
        async_plan plans[RUNNERS];
        dfm_runner *runners[RUNNERS];
        tracked_object objects[RUNNERS * TOKENS];
        size_t r;

        tracked_reset(objects, RUNNERS * TOKENS);
        for (r = 0; r < RUNNERS; r++) {
            dfm_token tokens[TOKENS];
            size_t t;

            async_plan_init(&plans[r], boxes, BOXES);
            plans[r].random += round * RUNNERS + r;
            plans[r].max_delay_us = 200;
            plans[r].inline_some = true;
            runners[r] = planned_runner(kind, &plans[r], &host);
            for (t = 0; t < TOKENS; t++)
                tokens[t] = token_object("p", &objects[r * TOKENS + t]);
            CHECK_STATUS(dfm_runner_dispatch(runners[r], tokens, TOKENS),
                         DFM_OK);
            if (kind == HOST_MANUAL)
                CHECK_STATUS(dfm_process_pending_async(runners[r]), DFM_OK);
        }
        injected(RUNNERS);

        /* Destroy at once, or after the completions have had a moment. */
        if (round % 3 == 1)
            sleep_ms(1);
        for (r = 0; r < RUNNERS; r++) {
            if (kind == HOST_MANUAL)
                dfm_runner_destroy(runners[r]);
            else
                loop_call_now(&host, destroy_runner_work, runners[r]);
        }

        for (i = 0; i < BOXES; i++)
            mailbox_drain(&boxes[i]);
        if (kind == HOST_EXECUTOR)
            loop_settle(&host);
        if (tracked_count_released(objects, RUNNERS * TOKENS, 1)
            != RUNNERS * TOKENS) {
            if (wrong == 0) {
                for (i = 0; i < RUNNERS * TOKENS; i++) {
                    if (tracked_releases(&objects[i]) != 1)
                        fprintf(stderr, "    round %zu: object %zu "
                                "released %d times\n", round, i,
                                tracked_releases(&objects[i]));
                }
            }
            wrong++;
        }
    }
    for (i = 0; i < BOXES; i++)
        mailbox_stop(&boxes[i]);
    if (kind == HOST_EXECUTOR)
        loop_stop(&host);
    CHECK_EQ(wrong, 0);
}

static void test_destroy_races_foreign_completions_manual(void)
{
    destroy_races_completions(HOST_MANUAL);
}

static void test_destroy_races_foreign_completions_executor(void)
{
    destroy_races_completions(HOST_EXECUTOR);
}

/* ---- Executors that stop running their work --------------------------- */

/* A loop that runs only its first few work items (it died), or drops
 * every other one (it is lossy), fed by four producers: the runner may
 * stall, but destroy releases every payload exactly once. */
static void executor_loses_work(uint64_t run_limit, bool every_other)
{
    enum { FEEDERS = 4 };
    size_t per_feeder = scaled(2000);
    size_t total = FEEDERS * per_feeder;
    tracked_object *objects = objects_new(total);
    feeder feeders[FEEDERS];
    pthread_t threads[FEEDERS];
    feeder sum;
    async_plan plan;
    dfm_runner *runner;
    dfm_stats stats;
    loop host;

    loop_start(&host);
    host.run_limit = run_limit;
    host.drop_every_other = every_other;
    async_plan_init(&plan, NULL, 0);
    plan.inline_all = true;
    runner = planned_runner(HOST_EXECUTOR, &plan, &host);

    feeders_start(feeders, threads, FEEDERS, runner, objects, per_feeder,
                  false);
    feeders_join(feeders, threads, FEEDERS, &sum);
    loop_settle(&host);

    stats = stats_of(runner);
    CHECK_EQ(sum.unexpected, 0);
    CHECK_EQ(sum.accepted, total);
    CHECK_EQ(stats.dispatched, total);
    CHECK(stats_balance(&stats));
    CHECK_EQ(plan.overlaps, 0);
    CHECK(host.dropped > 0 || stats.delivered == total);
    injected(host.dropped);

    /* Nothing runs on the loop any more: destroy from here. */
    dfm_runner_destroy(runner);
    loop_settle(&host);
    loop_stop(&host);
    objects_check_free(objects, total);
}

static void test_an_executor_that_dies_early_leaks_nothing(void)
{
    executor_loses_work(3, false);
}

static void test_an_executor_that_drops_every_other_item_leaks_nothing(void)
{
    executor_loses_work(0, true);
}

/* The loop dies while a callback is in flight; its completion comes from
 * a foreign thread after the runner was destroyed. */
static void test_a_completion_after_the_executor_died_and_destroy(void)
{
    size_t rounds = scaled(100);
    size_t wrong = 0;
    size_t round;
    mailbox box;

    mailbox_start(&box);
    for (round = 0; round < rounds; round++) {
        holder hold;
        tracked_object objects[6];
        dfm_token tokens[6];
        dfm_callbacks *set = dfm_callbacks_create();
        dfm_executor executor;
        dfm_runner *runner;
        loop host;
        size_t i;

        loop_start(&host);
        memset(&hold, 0, sizeof hold);
        tracked_reset(objects, 6);
        CHECK_STATUS(dfm_callbacks_set_default_async(set, holding_callback,
                                                     &hold),
                     DFM_OK);
        executor.post = loop_post;
        executor.context = &host;
        runner = runner_from(dfm_executor_dispatcher_create(executor), set);
        dfm_callbacks_destroy(set);
        for (i = 0; i < 6; i++)
            tokens[i] = token_object("p", &objects[i]);
        CHECK_STATUS(dfm_runner_dispatch(runner, tokens, 6), DFM_OK);
        loop_settle(&host);

        /* From now on the loop runs nothing. */
        pthread_mutex_lock(&host.lock);
        host.run_limit = host.posted;
        pthread_mutex_unlock(&host.lock);
        injected(1);

        if (hold.started != 1)
            wrong++;
        mailbox_post(&box, hold.completion, 0, (unsigned)(round % 5) * 100);
        if (round % 2 == 0)
            dfm_runner_destroy(runner);
        mailbox_drain(&box);
        if (round % 2 == 1)
            dfm_runner_destroy(runner);
        loop_settle(&host);
        loop_stop(&host);
        if (tracked_count_released(objects, 6, 1) != 6)
            wrong++;
    }
    mailbox_stop(&box);
    CHECK_EQ(wrong, 0);
}

/* ---- Producers racing stop ------------------------------------------- */

typedef enum race_runner {
    RACE_BLOCK,                /* manual, capacity 4, blocking */
    RACE_DROP_OLDEST,          /* manual, capacity 8, drop-oldest */
    RACE_ASYNC,                /* manual, async, foreign completions */
    RACE_EXECUTOR              /* executor, foreign completions */
} race_runner;

static int count_sync(const dfm_token *token, void *user_data)
{
    (void)token;
    __atomic_add_fetch((uint64_t *)user_data, 1, __ATOMIC_RELAXED);
    return 0;
}

/* Eight producers against one runner; the test stops it under them once
 * a quarter of the tokens are in.  Every object ends released once: by
 * the runner (delivered or discarded) or by its producer (refused). */
static void producers_race_stop(race_runner kind, dfm_stop_mode mode)
{
    enum { FEEDERS = 8, BOXES = 2 };
    size_t per_feeder = scaled(3000);
    size_t total = FEEDERS * per_feeder;
    tracked_object *objects = objects_new(total);
    feeder feeders[FEEDERS];
    pthread_t threads[FEEDERS];
    feeder sum;
    mailbox boxes[BOXES];
    async_plan plan;
    uint64_t delivered = 0;
    dfm_runner *runner;
    dfm_stats stats;
    uint64_t deadline;
    loop host;
    size_t i;
    bool async = kind == RACE_ASYNC || kind == RACE_EXECUTOR;
    bool manual = kind != RACE_EXECUTOR;

    for (i = 0; i < BOXES; i++)
        mailbox_start(&boxes[i]);
    async_plan_init(&plan, boxes, BOXES);
    plan.inline_some = true;
    plan.max_delay_us = 20;
    if (kind == RACE_EXECUTOR) {
        loop_start(&host);
        runner = planned_runner(HOST_EXECUTOR, &plan, &host);
    } else if (kind == RACE_ASYNC) {
        runner = planned_runner(HOST_MANUAL, &plan, NULL);
    } else {
        dfm_manual_options options;
        dfm_callbacks *set = callbacks_default(count_sync, &delivered, NULL);

        dfm_manual_options_init(&options);
        options.capacity = kind == RACE_BLOCK ? 4 : 8;
        options.overflow = kind == RACE_BLOCK ? DFM_OVERFLOW_BLOCK
                                              : DFM_OVERFLOW_DROP_OLDEST;
        runner = manual_runner_with(&options, set);
        dfm_callbacks_destroy(set);
    }
    if (kind == RACE_ASYNC)
        CHECK_STATUS(dfm_process_pending_async(runner), DFM_OK);
    else if (manual)
        CHECK_STATUS(dfm_process_pending(runner), DFM_OK);

    feeders_start(feeders, threads, FEEDERS, runner, objects, per_feeder,
                  true);
    deadline = now_ns() + 10000000000u;
    while (now_ns() < deadline && quiet_stats(runner).dispatched < total / 4) {
        if (kind == RACE_ASYNC)
            (void)dfm_process_pending_async(runner);
        else if (manual)
            (void)dfm_process_pending_budget(runner, 2, 0, NULL);
        sched_yield();
    }
    injected(1);
    CHECK_STATUS(dfm_runner_stop(runner, mode), DFM_OK);

    /* Blocked producers wake with DFM_ERR_CLOSED; the rest see it next. */
    feeders_join(feeders, threads, FEEDERS, &sum);
    if (async) {
        CHECK(settle_async(kind == RACE_ASYNC ? HOST_MANUAL : HOST_EXECUTOR,
                           runner, sum.accepted, &host));
    } else {
        CHECK(dfm_process_pending(runner) == DFM_OK);
    }
    for (i = 0; i < BOXES; i++)
        mailbox_drain(&boxes[i]);
    if (kind == RACE_EXECUTOR)
        loop_settle(&host);
    else if (kind == RACE_ASYNC)
        CHECK_STATUS(dfm_process_pending_async(runner), DFM_OK);

    stats = stats_of(runner);
    if (stats.pending != 0)
        fprintf(stderr, "    stop(%s): dispatched %" PRIu64 ", delivered %"
                PRIu64 ", failed %" PRIu64 ", discarded %" PRIu64
                ", pending %" PRIu64 "; callbacks started %" PRIu64 "\n",
                mode == DFM_STOP_DRAIN ? "DRAIN" : "DISCARD",
                stats.dispatched, stats.delivered, stats.failed,
                stats.discarded, stats.pending, plan.started);
    CHECK_EQ(sum.unexpected, 0);
    CHECK(sum.closed > 0);
    CHECK(sum.offered >= total);
    CHECK_EQ(sum.accepted + sum.closed, sum.offered);
    CHECK_EQ(stats.dispatched, sum.accepted);
    CHECK_EQ(stats.rejected, sum.closed);
    CHECK_EQ(stats.pending, 0);
    CHECK(stats_balance(&stats));
    if (mode == DFM_STOP_DRAIN && kind != RACE_DROP_OLDEST)
        CHECK_EQ(stats.discarded, 0);
    if (!async)
        CHECK_EQ(stats.delivered, delivered);
    else
        CHECK_EQ(plan.overlaps, 0);

    if (kind == RACE_EXECUTOR) {
        loop_call_now(&host, destroy_runner_work, runner);
        loop_stop(&host);
    } else {
        dfm_runner_destroy(runner);
    }
    for (i = 0; i < BOXES; i++)
        mailbox_stop(&boxes[i]);
    objects_check_free(objects, total);
}

static void test_producers_blocked_on_a_full_queue_race_stop_drain(void)
{
    producers_race_stop(RACE_BLOCK, DFM_STOP_DRAIN);
}

static void test_producers_blocked_on_a_full_queue_race_stop_discard(void)
{
    producers_race_stop(RACE_BLOCK, DFM_STOP_DISCARD);
}

static void test_producers_into_drop_oldest_race_stop_discard(void)
{
    producers_race_stop(RACE_DROP_OLDEST, DFM_STOP_DISCARD);
}

static void test_producers_into_a_manual_async_runner_race_stop(void)
{
    producers_race_stop(RACE_ASYNC, DFM_STOP_DRAIN);
    producers_race_stop(RACE_ASYNC, DFM_STOP_DISCARD);
}

static void test_producers_into_an_executor_runner_race_stop(void)
{
    producers_race_stop(RACE_EXECUTOR, DFM_STOP_DRAIN);
    producers_race_stop(RACE_EXECUTOR, DFM_STOP_DISCARD);
}

/* ---- Blocking dispatches on the owner thread --------------------------- */

static dfm_runner *block_runner(size_t capacity, uint64_t timeout_ns,
                                const dfm_callbacks *set)
{
    dfm_manual_options options;

    dfm_manual_options_init(&options);
    options.capacity = capacity;
    options.overflow = DFM_OVERFLOW_BLOCK;
    options.block_timeout_ns = timeout_ns;
    return manual_runner_with(&options, set);
}

/* With a timeout of two seconds the owner is still refused at once, not
 * after the timeout. */
static void test_the_owner_is_refused_at_once_despite_a_timeout(void)
{
    dfm_runner *runner = block_runner(2, 2000000000u, NULL);
    tracked_object objects[3];
    dfm_token tokens[3];
    uint64_t started;
    size_t i;

    tracked_reset(objects, 3);
    for (i = 0; i < 3; i++)
        tokens[i] = token_object("p", &objects[i]);
    CHECK_STATUS(dfm_process_pending(runner), DFM_OK);
    CHECK_STATUS(dfm_runner_dispatch(runner, tokens, 2), DFM_OK);

    injected(1);
    started = now_ns();
    CHECK_STATUS(dfm_runner_dispatch(runner, &tokens[2], 1),
                 DFM_ERR_WRONG_THREAD);
    CHECK(now_ns() - started < 200000000u);
    CHECK(dfm_last_error()[0] != '\0');
    CHECK_EQ(tracked_releases(&objects[2]), 0);
    CHECK_EQ(stats_of(runner).pending, 2);
    dfm_runner_destroy(runner);
    CHECK_EQ(tracked_count_released(objects, 2, 1), 2);
    CHECK_EQ(tracked_releases(&objects[2]), 0);
}

/* Inside an async callback, on the owner thread, a dispatch that would
 * wait for room in the runner's own queue is refused at once. */
typedef struct async_self_block {
    dfm_runner *runner;
    int status;
    uint64_t elapsed_ns;
} async_self_block;

static void dispatch_into_own_full_queue(const dfm_token *token,
                                         dfm_completion *completion,
                                         void *user_data)
{
    async_self_block *state = (async_self_block *)user_data;
    dfm_token extra = token_int("p", 99);
    uint64_t started = now_ns();
    int attempts;

    (void)token;
    for (attempts = 0; attempts < 4 && state->status == -1; attempts++) {
        int status = dfm_runner_dispatch(state->runner, &extra, 1);

        if (status != DFM_OK)
            state->status = status;
    }
    state->elapsed_ns = now_ns() - started;
    dfm_complete(completion, 0);
}

static void test_the_owner_is_refused_inside_an_async_callback(void)
{
    async_self_block state;
    dfm_callbacks *set = dfm_callbacks_create();
    dfm_token token = token_int("p", 1);
    int pumps;

    state.status = -1;
    state.elapsed_ns = 0;
    CHECK_STATUS(dfm_callbacks_set_default_async(
                     set, dispatch_into_own_full_queue, &state),
                 DFM_OK);
    state.runner = block_runner(1, 0, set);
    dfm_callbacks_destroy(set);

    CHECK_STATUS(dfm_runner_dispatch(state.runner, &token, 1), DFM_OK);
    injected(1);
    CHECK_STATUS(dfm_process_pending_async(state.runner), DFM_OK);
    CHECK_STATUS(state.status, DFM_ERR_WRONG_THREAD);
    CHECK(state.elapsed_ns < 200000000u);

    /* The runner still works: drain the extra tokens. */
    for (pumps = 0; pumps < 20 && dfm_has_pending(state.runner); pumps++)
        CHECK_STATUS(dfm_process_pending_async(state.runner), DFM_OK);
    CHECK(!dfm_has_pending(state.runner));
    dfm_runner_destroy(state.runner);
}

/* The owner of one runner is not the owner of another: blocking on a
 * full queue that another thread owns is allowed, and times out. */
static void *pump_once(void *argument)
{
    CHECK_STATUS(dfm_process_pending((dfm_runner *)argument), DFM_OK);
    return NULL;
}

static void test_the_owner_of_one_runner_may_block_on_another(void)
{
    dfm_runner *mine = manual_runner(NULL);
    dfm_runner *theirs = block_runner(1, 50000000u, NULL);
    tracked_object objects[2];
    dfm_token token;
    uint64_t started;
    uint64_t elapsed;

    tracked_reset(objects, 2);
    CHECK_STATUS(dfm_process_pending(mine), DFM_OK);
    run_on_new_thread(pump_once, theirs);
    token = token_object("p", &objects[0]);
    CHECK_STATUS(dfm_runner_dispatch(theirs, &token, 1), DFM_OK);

    started = now_ns();
    token = token_object("p", &objects[1]);
    CHECK_STATUS(dfm_runner_dispatch(theirs, &token, 1), DFM_ERR_TIMED_OUT);
    elapsed = now_ns() - started;
    CHECK(elapsed >= 45000000u);
    CHECK(elapsed < 5000000000u);
    CHECK_EQ(tracked_releases(&objects[1]), 0);

    /* The owner of `theirs` is now a thread that has ended: its queue
     * can still be discarded. */
    CHECK_STATUS(dfm_runner_stop(theirs, DFM_STOP_DISCARD), DFM_OK);
    CHECK_EQ(tracked_releases(&objects[0]), 1);
    dfm_runner_destroy(theirs);
    dfm_runner_destroy(mine);
    CHECK_EQ(tracked_releases(&objects[1]), 0);
}

/* A foreign producer blocks on the full queue; the owner's own attempt
 * is refused at once and does not disturb it; the owner's pump then lets
 * the foreign producer in. */
typedef struct blocked_producer {
    dfm_runner *runner;
    tracked_object *object;
    int status;
    int done;
} blocked_producer;

static void *produce_blocking(void *argument)
{
    blocked_producer *self = (blocked_producer *)argument;
    dfm_token token = token_object("p", self->object);

    self->status = dfm_runner_dispatch(self->runner, &token, 1);
    __atomic_store_n(&self->done, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

static void test_the_owner_is_refused_while_a_producer_waits(void)
{
    dfm_runner *runner = block_runner(1, 0, NULL);
    tracked_object objects[3];
    blocked_producer other;
    pthread_t thread;
    dfm_token token;
    int waited;

    tracked_reset(objects, 3);
    CHECK_STATUS(dfm_process_pending(runner), DFM_OK);
    token = token_object("p", &objects[0]);
    CHECK_STATUS(dfm_runner_dispatch(runner, &token, 1), DFM_OK);
    other.runner = runner;
    other.object = &objects[1];
    other.status = -1;
    other.done = 0;
    if (!CHECK(pthread_create(&thread, NULL, produce_blocking, &other) == 0))
        return;
    sleep_ms(30);
    CHECK(!__atomic_load_n(&other.done, __ATOMIC_SEQ_CST));

    injected(1);
    token = token_object("p", &objects[2]);
    CHECK_STATUS(dfm_runner_dispatch(runner, &token, 1),
                 DFM_ERR_WRONG_THREAD);
    CHECK(!__atomic_load_n(&other.done, __ATOMIC_SEQ_CST));

    for (waited = 0; waited < 500 && !__atomic_load_n(&other.done,
                                                      __ATOMIC_SEQ_CST);
         waited++) {
        CHECK_STATUS(dfm_process_pending(runner), DFM_OK);
        sleep_ms(2);
    }
    pthread_join(thread, NULL);
    CHECK_STATUS(other.status, DFM_OK);
    CHECK_STATUS(dfm_process_pending(runner), DFM_OK);
    CHECK_EQ(stats_of(runner).delivered, 0);
    CHECK_EQ(stats_of(runner).dropped, 2);
    dfm_runner_destroy(runner);
    CHECK_EQ(tracked_count_released(objects, 2, 1), 2);
    CHECK_EQ(tracked_releases(&objects[2]), 0);
}

/* ---- Exhaustion ------------------------------------------------------- */

/* An unbounded queue stops at its hard limit of pending tokens
 * (BEHAVIOUR.md, Queues): the dispatch past it is refused with
 * DFM_ERR_NO_MEMORY, enqueues nothing and leaves its payload with the
 * caller; a pump makes room again. */
static void test_the_hard_limit_of_an_unbounded_queue_is_no_memory(void)
{
    dfm_runner *runner = manual_runner(NULL);
    tracked_object objects[2];
    dfm_token token = token_int("p", 0);
    uint64_t accepted = 0;
    int status;

    if (scale < 10) {
        CHECK(true);
        dfm_runner_destroy(runner);
        return;
    }
    tracked_reset(objects, 2);
    token = token_object("p", &objects[0]);
    CHECK_STATUS(dfm_runner_dispatch(runner, &token, 1), DFM_OK);
    token = token_int("p", 0);
    while ((status = dfm_runner_dispatch(runner, &token, 1)) == DFM_OK
           && accepted < 100000000u)
        accepted++;
    injected(1);
    CHECK_STATUS(status, DFM_ERR_NO_MEMORY);
    CHECK_EQ(accepted + 1, 4190208);
    CHECK_EQ(quiet_stats(runner).pending, accepted + 1);

    token = token_object("p", &objects[1]);
    CHECK(dfm_runner_dispatch(runner, &token, 1) != DFM_OK);
    CHECK_EQ(tracked_releases(&objects[1]), 0);

    CHECK_STATUS(dfm_process_pending(runner), DFM_OK);
    CHECK_EQ(tracked_releases(&objects[0]), 1);
    CHECK_STATUS(dfm_runner_dispatch(runner, &token, 1), DFM_OK);
    dfm_runner_destroy(runner);
    CHECK_EQ(tracked_count_released(objects, 2, 1), 2);
}

/* ---- Failing callbacks under load ------------------------------------- */

/* Eight producers into a direct runner.  Place "shaped" has a shaped
 * callback, int(node.int, data.int, user), that fails on multiples of 11
 * and does not fit OBJECT or STRING tokens (type mismatch); every other
 * place has a plain callback that fails on multiples of 13.  The error
 * handler counts by status and dispatches a note of each failure into a
 * second (manual) runner. */
typedef struct failure_counts {
    uint64_t shaped_calls;
    uint64_t plain_calls;
    uint64_t reported_failed;
    uint64_t reported_mismatch;
    uint64_t reported_other;
    uint64_t notes_refused;
    dfm_runner *notes;
} failure_counts;

static int shaped_int(int64_t node, int64_t value, void *user)
{
    failure_counts *counts = (failure_counts *)user;

    (void)node;
    __atomic_add_fetch(&counts->shaped_calls, 1, __ATOMIC_RELAXED);
    return value % 11 == 0 ? 1 : 0;
}

static int plain_failing(const dfm_token *token, void *user_data)
{
    failure_counts *counts = (failure_counts *)user_data;

    __atomic_add_fetch(&counts->plain_calls, 1, __ATOMIC_RELAXED);
    return token->source_node.id % 13 == 0 ? 2 : 0;
}

static void count_and_note(const dfm_token *token, int status,
                           const char *message, void *context)
{
    failure_counts *counts = (failure_counts *)context;
    dfm_token note = token_int("failure", token != NULL
                                              ? token->source_node.id : -1);

    (void)message;
    if (status == DFM_ERR_CALLBACK_FAILED)
        __atomic_add_fetch(&counts->reported_failed, 1, __ATOMIC_RELAXED);
    else if (status == DFM_ERR_TYPE_MISMATCH)
        __atomic_add_fetch(&counts->reported_mismatch, 1, __ATOMIC_RELAXED);
    else
        __atomic_add_fetch(&counts->reported_other, 1, __ATOMIC_RELAXED);
    if (dfm_runner_dispatch(counts->notes, &note, 1) != DFM_OK)
        __atomic_add_fetch(&counts->notes_refused, 1, __ATOMIC_RELAXED);
}

typedef struct failing_producer {
    dfm_runner *runner;
    tracked_object *objects;   /* one per key; used by OBJECT tokens */
    int64_t first;
    int64_t count;
    uint64_t statuses[16];
} failing_producer;

/* Key k: place "shaped" when k is odd; INT (value k) when k % 3 == 0,
 * OBJECT when k % 3 == 1, STRING otherwise.  The node id is k too. */
static dfm_token failing_token(failing_producer *self, int64_t key)
{
    dfm_token token;
    dfm_value value = value_none();

    if (key % 3 == 0) {
        value = value_int(key);
    } else if (key % 3 == 1) {
        value = value_object(&self->objects[key - self->first]);
    } else {
        value.kind = DFM_VALUE_STRING;
        value.as.text.data = "text";
        value.as.text.length = 4;
    }
    token = token_make(key % 2 != 0 ? "shaped" : "plain", value);
    token.source_node.kind = DFM_NODE_INT;
    token.source_node.id = key;
    return token;
}

static void *produce_failing(void *argument)
{
    failing_producer *self = (failing_producer *)argument;
    int64_t key = self->first;
    int64_t end = self->first + self->count;

    while (key < end) {
        dfm_token batch[8];
        size_t count = 1 + (size_t)(key % 8);
        size_t i;
        int status;

        if ((int64_t)count > end - key)
            count = (size_t)(end - key);
        for (i = 0; i < count; i++)
            batch[i] = failing_token(self, key + (int64_t)i);
        status = dfm_runner_dispatch(self->runner, batch, count);
        self->statuses[status >= 0 && status < 16 ? status : 15]++;
        key += (int64_t)count;
    }
    return NULL;
}

static void test_failing_and_mismatched_callbacks_under_load(void)
{
    enum { PRODUCERS = 8 };
    int64_t per_producer = (int64_t)scaled(20000);
    int64_t total = PRODUCERS * per_producer;
    tracked_object *objects = objects_new((size_t)total);
    failing_producer producers[PRODUCERS];
    pthread_t threads[PRODUCERS];
    failure_counts counts;
    dfm_callbacks *set = dfm_callbacks_create();
    dfm_runner *runner;
    dfm_stats stats;
    uint64_t expect_mismatch = 0;
    uint64_t expect_failed = 0;
    uint64_t expect_shaped_calls = 0;
    uint64_t ok_batches = 0;
    uint64_t failed_batches = 0;
    uint64_t other_batches = 0;
    int64_t key;
    size_t i;

    memset(&counts, 0, sizeof counts);
    counts.notes = manual_runner(NULL);
    CHECK_STATUS(dfm_callbacks_set_default(set, plain_failing, &counts),
                 DFM_OK);
    CHECK_STATUS(dfm_callbacks_add_shaped(set, "shaped",
                                          (void (*)(void))shaped_int,
                                          "int(node.int, data.int, user)",
                                          &counts),
                 DFM_OK);
    CHECK_STATUS(dfm_callbacks_set_error_handler(set, count_and_note,
                                                 &counts),
                 DFM_OK);
    runner = direct_runner(set);
    dfm_callbacks_destroy(set);

    for (key = 0; key < total; key++) {
        if (key % 2 != 0) {
            if (key % 3 != 0) {
                expect_mismatch++;
            } else {
                expect_shaped_calls++;
                expect_failed += key % 11 == 0;
            }
        } else {
            expect_failed += key % 13 == 0;
        }
    }
    injected(expect_mismatch + expect_failed);

    for (i = 0; i < PRODUCERS; i++) {
        memset(&producers[i], 0, sizeof producers[i]);
        producers[i].runner = runner;
        producers[i].first = (int64_t)i * per_producer;
        producers[i].count = per_producer;
        producers[i].objects = &objects[i * (size_t)per_producer];
        if (!CHECK(pthread_create(&threads[i], NULL, produce_failing,
                                  &producers[i])
                   == 0))
            exit(EXIT_FAILURE);
    }
    for (i = 0; i < PRODUCERS; i++) {
        size_t s;

        pthread_join(threads[i], NULL);
        ok_batches += producers[i].statuses[DFM_OK];
        failed_batches += producers[i].statuses[DFM_ERR_CALLBACK_FAILED];
        for (s = 0; s < 16; s++) {
            if (s != DFM_OK && s != DFM_ERR_CALLBACK_FAILED)
                other_batches += producers[i].statuses[s];
        }
    }

    stats = stats_of(runner);
    CHECK_EQ(other_batches, 0);
    CHECK(failed_batches > 0);
    CHECK_EQ(stats.dispatched, (uint64_t)total);
    CHECK_EQ(stats.failed, expect_mismatch + expect_failed);
    CHECK_EQ(stats.delivered, (uint64_t)total - stats.failed);
    CHECK(stats_balance(&stats));
    CHECK_EQ(counts.shaped_calls, expect_shaped_calls);
    CHECK_EQ(counts.reported_mismatch, expect_mismatch);
    CHECK_EQ(counts.reported_failed, expect_failed);
    CHECK_EQ(counts.reported_other, 0);
    CHECK_EQ(counts.notes_refused, 0);
    CHECK_EQ(stats_of(counts.notes).pending, stats.failed);
    dfm_runner_destroy(runner);
    dfm_runner_destroy(counts.notes);

    /* OBJECT tokens never fit the shape, and still are released once;
     * keys with no OBJECT token were never handed over. */
    for (key = 0; key < total; key++) {
        if (key % 3 != 1)
            tracked_release(&objects[key]);
    }
    objects_check_free(objects, (size_t)total);
}

/* ---- Main ------------------------------------------------------------ */

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--quick") == 0) {
        scale = 1;
    } else if (argc > 1) {
        fprintf(stderr, "usage: %s [--quick]\n", argv[0]);
        return 2;
    }

    RUN_TEST(test_foreign_completions_race_a_manual_pump);
    RUN_TEST(test_foreign_completions_race_an_executor_loop);
    RUN_TEST(test_racing_double_completions_manual);
    RUN_TEST(test_racing_double_completions_executor);
    RUN_TEST(test_exactly_one_of_two_racing_completions_is_refused);
    RUN_TEST(test_a_second_completion_on_an_idle_executor_is_reported);
    RUN_TEST(test_a_stale_completion_never_completes_a_later_token);
    RUN_TEST(test_a_stale_completion_never_touches_a_new_runner);
    RUN_TEST(test_a_late_foreign_completion_holds_back_the_rest);
    RUN_TEST(test_a_late_completion_after_stop_drain);
    RUN_TEST(test_stop_drain_inside_an_async_callback);
    RUN_TEST(test_stop_discard_inside_an_executor_callback_under_load);
    RUN_TEST(test_an_error_handler_destroys_a_manual_runner);
    RUN_TEST(test_an_error_handler_destroys_a_direct_runner);
    RUN_TEST(test_an_async_error_handler_destroys_its_runner);
    RUN_TEST(test_destroy_inside_a_budget_pump);
    RUN_TEST(test_a_callback_destroys_another_runner_in_flight);
    RUN_TEST(test_destroy_after_handing_off_a_manual_completion);
    RUN_TEST(test_destroy_after_handing_off_an_executor_completion);
    RUN_TEST(test_a_direct_callback_stops_its_runner_under_load);
    RUN_TEST(test_destroy_races_foreign_completions_manual);
    RUN_TEST(test_destroy_races_foreign_completions_executor);
    RUN_TEST(test_an_executor_that_dies_early_leaks_nothing);
    RUN_TEST(test_an_executor_that_drops_every_other_item_leaks_nothing);
    RUN_TEST(test_a_completion_after_the_executor_died_and_destroy);
    RUN_TEST(test_producers_blocked_on_a_full_queue_race_stop_drain);
    RUN_TEST(test_producers_blocked_on_a_full_queue_race_stop_discard);
    RUN_TEST(test_producers_into_drop_oldest_race_stop_discard);
    RUN_TEST(test_producers_into_a_manual_async_runner_race_stop);
    RUN_TEST(test_producers_into_an_executor_runner_race_stop);
    RUN_TEST(test_the_owner_is_refused_at_once_despite_a_timeout);
    RUN_TEST(test_the_owner_is_refused_inside_an_async_callback);
    RUN_TEST(test_the_owner_of_one_runner_may_block_on_another);
    RUN_TEST(test_the_owner_is_refused_while_a_producer_waits);
    RUN_TEST(test_the_hard_limit_of_an_unbounded_queue_is_no_memory);
    RUN_TEST(test_failing_and_mismatched_callbacks_under_load);

    printf("faults injected: %" PRIu64 "\n",
           __atomic_load_n(&faults_injected, __ATOMIC_SEQ_CST));
    return check_summary();
}
