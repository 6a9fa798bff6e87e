/*
 * executor.c - async callbacks on the host's own event loop.
 *
 * The host has an event loop: a queue of work items that its main thread
 * runs one after another, a stand-in for libuv, GLib or a Kit update
 * stream.  It lends the loop to the library as a dfm_executor: the runner
 * posts work items from any thread, the loop runs them, and the runner
 * never blocks the loop or runs it itself.
 *
 * The callbacks are async: each starts some work and reports its end with
 * dfm_complete.  Even-numbered tokens complete at once, inside the callback;
 * odd ones go to a slow device whose own thread completes them a few ms
 * later, and the device fails token #5.  The example checks that tokens
 * start in dispatch order, one at a time, on the loop and never inside
 * dfm_complete; that the failure reaches the error handler; and that an
 * OBJECT payload is released on the loop once its token has completed.
 *
 * Run: build/examples/executor [--check]
 */
#include "common.h"

#include <errno.h>
#include <pthread.h>

#define READINGS 8               /* then one StopToken ends the stream */
#define TOKENS (READINGS + 1)
#define BATCH 3                  /* readings per dispatch */
#define OBJECT_TOKEN 3           /* carries an OBJECT payload */
#define FAILING_TOKEN 5          /* the device fails this one... */
#define DEVICE_STATUS 7          /* ...with a status of its own */
#define DEVICE_MS 5
#define GIVE_UP_S 10             /* a lost work item must not hang us */

struct work_item {
    void (*work)(void *arg);
    void *arg;
    struct work_item *next;
};

/* Everything here is guarded by `lock`: the loop's queue, the device's
 * request slot, and what the checks count. */
struct host {
    pthread_mutex_t lock;
    pthread_cond_t loop_wake;
    pthread_cond_t device_wake;
    pthread_t loop_thread;
    struct work_item *head, *tail;

    dfm_completion *device_request;   /* NULL while the device is idle */
    int64_t device_token;
    bool device_quit;

    dfm_runner *runner;
    int64_t next_token;
    bool in_flight;
    bool inside_complete;             /* the loop is in its dfm_complete */
    int completions;                  /* dfm_complete calls returned */
    int failures_reported;
    int64_t failed_token;
    int releases;
    bool released_off_loop;
};

/* The OBJECT payload; release() gets only this pointer. */
struct payload {
    struct host *host;
};

static bool on_loop(const struct host *host)
{
    return pthread_equal(pthread_self(), host->loop_thread);
}

/* ---- The host's event loop --------------------------------------------- */

/* dfm_executor.post: the runner calls it from any thread. */
static void loop_post(void *context, void (*work)(void *), void *arg)
{
    struct host *host = context;
    struct work_item *item = alloc_or_die(sizeof *item);

    item->work = work;
    item->arg = arg;
    item->next = NULL;

    pthread_mutex_lock(&host->lock);
    if (host->tail != NULL)
        host->tail->next = item;
    else
        host->head = item;
    host->tail = item;
    pthread_cond_signal(&host->loop_wake);
    pthread_mutex_unlock(&host->lock);
}

/* Runs work items on the main thread until `completions` tokens have
 * completed and nothing is left to run. */
static void loop_run(struct host *host, int completions)
{
    struct work_item *item;
    struct timespec give_up;

    clock_gettime(CLOCK_REALTIME, &give_up);
    give_up.tv_sec += GIVE_UP_S;

    pthread_mutex_lock(&host->lock);
    for (;;) {
        while (host->head == NULL && host->completions < completions)
            if (pthread_cond_timedwait(&host->loop_wake, &host->lock,
                                       &give_up) == ETIMEDOUT)
                die("the loop had no work for %d s", GIVE_UP_S);
        item = host->head;
        if (item == NULL)
            break;
        host->head = item->next;
        if (host->head == NULL)
            host->tail = NULL;

        /* Unlocked: the runner's work calls back into the host. */
        pthread_mutex_unlock(&host->lock);
        item->work(item->arg);
        free(item);
        pthread_mutex_lock(&host->lock);
    }
    pthread_mutex_unlock(&host->lock);
}

/* ---- The slow device ---------------------------------------------------- */

/* Answers each request DEVICE_MS later on its own thread: dfm_complete may
 * be called from any thread. */
static void *device_thread(void *argument)
{
    struct host *host = argument;
    dfm_completion *request;
    int64_t token;
    int status;

    pthread_mutex_lock(&host->lock);
    for (;;) {
        while (host->device_request == NULL && !host->device_quit)
            pthread_cond_wait(&host->device_wake, &host->lock);
        if (host->device_request == NULL)
            break;
        request = host->device_request;
        token = host->device_token;
        host->device_request = NULL;
        pthread_mutex_unlock(&host->lock);

        sleep_ms(DEVICE_MS);
        status = token == FAILING_TOKEN ? DEVICE_STATUS : 0;
        say("  #%" PRId64 " completed by the device thread%s\n", token,
            status != 0 ? ", with a failure" : "");

        pthread_mutex_lock(&host->lock);
        host->in_flight = false;
        pthread_mutex_unlock(&host->lock);
        dfm_complete(request, status);

        /* Counted after dfm_complete returns, when the runner has posted
         * what follows; the loop may then stop once it is idle. */
        pthread_mutex_lock(&host->lock);
        host->completions++;
        pthread_cond_signal(&host->loop_wake);
    }
    pthread_mutex_unlock(&host->lock);
    return NULL;
}

/* ---- The host's async callbacks ---------------------------------------- */

/* The checks every callback makes as it starts. */
static void start_token(struct host *host, int64_t token)
{
    expect(on_loop(host), "token #%" PRId64 " started off the loop", token);

    pthread_mutex_lock(&host->lock);
    expect(!host->in_flight, "token #%" PRId64 " started while another "
           "was in flight", token);
    expect(!host->inside_complete, "token #%" PRId64 " started inside "
           "dfm_complete", token);
    expect(token == host->next_token, "token #%" PRId64 " started, #%"
           PRId64 " was next", token, host->next_token);
    host->next_token = token + 1;
    host->in_flight = true;
    pthread_mutex_unlock(&host->lock);
}

static void complete_at_once(struct host *host, dfm_completion *completion)
{
    pthread_mutex_lock(&host->lock);
    host->in_flight = false;
    host->inside_complete = true;
    pthread_mutex_unlock(&host->lock);

    dfm_complete(completion, 0);

    pthread_mutex_lock(&host->lock);
    host->inside_complete = false;
    host->completions++;
    pthread_mutex_unlock(&host->lock);
}

static void on_reading(const dfm_token *token, dfm_completion *completion,
                       void *user_data)
{
    struct host *host = user_data;
    int64_t number = token->frame.levels[0];

    start_token(host, number);
    if (number % 2 == 0) {
        say("  #%" PRId64 " started on the loop, completed at once\n",
            number);
        complete_at_once(host, completion);
        return;
    }

    say("  #%" PRId64 " started on the loop, handed to the device%s\n",
        number, token->data.kind == DFM_VALUE_OBJECT ? " (an OBJECT)" : "");
    pthread_mutex_lock(&host->lock);
    host->device_request = completion;
    host->device_token = number;
    pthread_cond_signal(&host->device_wake);
    pthread_mutex_unlock(&host->lock);
}

/* The default callback: here only the StopToken of the stream reaches it. */
static void on_other_place(const dfm_token *token, dfm_completion *completion,
                           void *user_data)
{
    struct host *host = user_data;

    start_token(host, READINGS);
    expect(token->frame.is_stop && token->data.kind == DFM_VALUE_STOP,
           "the default callback got something other than the StopToken");
    say("  the StopToken on \"%s\": the stream has ended\n",
        token->target_place);
    complete_at_once(host, completion);
}

static void on_error(const dfm_token *token, int status, const char *message,
                     void *context)
{
    struct host *host = context;
    int64_t number = token != NULL ? token->frame.levels[0] : -1;

    expect(on_loop(host), "the error handler ran off the loop");
    expect(status == DFM_ERR_CALLBACK_FAILED, "the error handler got %s",
           dfm_status_name(status));
    say("  error handler, on the loop: #%" PRId64 " %s: %s\n", number,
        dfm_status_name(status), message);

    pthread_mutex_lock(&host->lock);
    host->failures_reported++;
    host->failed_token = number;
    pthread_mutex_unlock(&host->lock);
}

static void release_payload(void *pointer)
{
    struct payload *payload = pointer;
    struct host *host = payload->host;

    pthread_mutex_lock(&host->lock);
    host->releases++;
    host->released_off_loop |= !on_loop(host);
    pthread_mutex_unlock(&host->lock);
    free(payload);
}

/* ---- The pipeline ------------------------------------------------------- */

/* A job's receive thread: readings in batches, then the stream's end. */
static void *producer_thread(void *argument)
{
    static const int64_t numbers[READINGS] = { 0, 1, 2, 3, 4, 5, 6, 7 };
    struct host *host = argument;
    struct payload *payload;
    dfm_token batch[BATCH];
    size_t count = 0;
    int i;

    for (i = 0; i < READINGS; i++) {
        batch[count] = make_token("site-a", node_int(3),
                                  frame_of(&numbers[i]), "yield",
                                  value_int(10 * i));
        if (i == OBJECT_TOKEN) {
            payload = alloc_or_die(sizeof *payload);
            payload->host = host;
            batch[count].data = value_object(payload, release_payload);
        }
        if (++count == BATCH || i == READINGS - 1) {
            check_ok_or_die(dfm_runner_dispatch(host->runner, batch, count),
                            "dfm_runner_dispatch");
            count = 0;
            sleep_ms(2);
        }
    }

    batch[0] = make_token("site-a", node_none(), stop_frame(),
                          "_dfm_status_", value_stop());
    check_ok_or_die(dfm_runner_dispatch(host->runner, batch, 1),
                    "dfm_runner_dispatch");
    return NULL;
}

int main(int argc, char **argv)
{
    struct host host;
    dfm_executor executor;
    dfm_dispatcher *dispatcher;
    dfm_callbacks *callbacks;
    dfm_stats stats;
    pthread_t device, producer;

    parse_args_or_die(argc, argv);
    memset(&host, 0, sizeof host);
    posix_ok_or_die(pthread_mutex_init(&host.lock, NULL), "mutex_init");
    posix_ok_or_die(pthread_cond_init(&host.loop_wake, NULL), "cond_init");
    posix_ok_or_die(pthread_cond_init(&host.device_wake, NULL),
                    "cond_init");
    host.loop_thread = pthread_self();

    executor.post = loop_post;
    executor.context = &host;
    dispatcher = not_null_or_die(dfm_executor_dispatcher_create(executor),
                                 "dfm_executor_dispatcher_create");
    callbacks = not_null_or_die(dfm_callbacks_create(),
                                "dfm_callbacks_create");
    check_ok_or_die(dfm_callbacks_add_place_async(callbacks, "yield",
                                                  on_reading, &host),
                    "add_place_async");
    check_ok_or_die(dfm_callbacks_set_default_async(callbacks,
                                                    on_other_place, &host),
                    "set_default_async");
    check_ok_or_die(dfm_callbacks_set_error_handler(callbacks, on_error,
                                                    &host),
                    "set_error_handler");
    check_ok_or_die(dfm_dispatcher_create_runner(dispatcher, callbacks,
                                                 &host.runner),
                    "create_runner");

    say("executor: %d readings and a StopToken, run on the host's loop\n",
        READINGS);
    posix_ok_or_die(pthread_create(&device, NULL, device_thread, &host),
                    "pthread_create");
    posix_ok_or_die(pthread_create(&producer, NULL, producer_thread, &host),
                    "pthread_create");
    loop_run(&host, TOKENS);
    posix_ok_or_die(pthread_join(producer, NULL), "pthread_join");

    /* Shutdown: refuse new tokens, let the loop finish what the runner
     * posted, read the stats, then free. */
    say("stop the runner and drain the loop\n");
    check_ok_or_die(dfm_runner_stop(host.runner, DFM_STOP_DRAIN),
                    "dfm_runner_stop");
    loop_run(&host, TOKENS);
    check_ok_or_die(dfm_runner_stats(host.runner, &stats),
                    "dfm_runner_stats");
    print_stats("runner", &stats);
    expect_stats_balanced(&stats);
    expect(stats.dispatched == TOKENS && stats.delivered == TOKENS - 1 &&
               stats.failed == 1,
           "expected %d dispatched, %d delivered and 1 failed", TOKENS,
           TOKENS - 1);
    dfm_runner_destroy(host.runner);
    dfm_dispatcher_destroy(dispatcher);
    dfm_callbacks_destroy(callbacks);

    pthread_mutex_lock(&host.lock);
    host.device_quit = true;
    pthread_cond_signal(&host.device_wake);
    pthread_mutex_unlock(&host.lock);
    posix_ok_or_die(pthread_join(device, NULL), "pthread_join");

    /* A work item that outlives its runner does nothing; run any left. */
    loop_run(&host, TOKENS);

    expect(host.next_token == TOKENS, "%" PRId64 " of %d tokens started",
           host.next_token, TOKENS);
    expect(host.failures_reported == 1 &&
               host.failed_token == FAILING_TOKEN,
           "the error handler heard of %d failures, last #%" PRId64,
           host.failures_reported, host.failed_token);
    expect(host.releases == 1 && !host.released_off_loop,
           "the OBJECT was released %d times%s", host.releases,
           host.released_off_loop ? ", off the loop" : "");
    say("OBJECT payloads: 1 sent, %d released on the loop\n",
        host.releases);
    pthread_cond_destroy(&host.device_wake);
    pthread_cond_destroy(&host.loop_wake);
    pthread_mutex_destroy(&host.lock);
    return finish("executor");
}
