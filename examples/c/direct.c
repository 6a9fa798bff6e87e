/*
 * direct.c - a direct runner: each callback runs at once, inside
 * dfm_runner_dispatch, on the thread that dispatches.
 *
 * This is the reference's default dispatcher.  Nothing is queued and there
 * is nothing to pump, so the host's callbacks must be safe to run on the
 * job's receive thread.  The example shows which thread runs a callback,
 * a batch of three tokens delivered in order, a callback that fails without
 * stopping the rest of its batch, and what a dispatch after stop returns.
 *
 * Run: build/examples/direct [--check]
 */
#include "common.h"

#include <pthread.h>

#define REJECT_ABOVE 100.0      /* the callback refuses readings above... */
#define REJECTED 42             /* ...by returning this, which the error
                                   handler's message must show */

/* The payload of the OBJECT tokens; released by the runner. */
struct snapshot {
    int64_t frame;
};

static pthread_t main_thread;
static int objects_released = 0;  /* no lock: the steps never overlap */

struct host {
    int64_t next_frame;           /* tokens must come in dispatch order */
    int on_main;
    int on_worker;
    int failures_reported;
    char last_failure[256];
    dfm_runner *runner;
};

static const char *thread_name(void)
{
    return pthread_equal(pthread_self(), main_thread) ? "main thread"
                                                      : "worker thread";
}

static void release_snapshot(void *pointer)
{
    free(pointer);
    objects_released++;
}

static int on_reading(const dfm_token *token, void *user_data)
{
    struct host *host = user_data;
    int64_t frame = token->frame.levels[0];

    expect(frame == host->next_frame, "frame [%" PRId64 "] arrived when [%"
           PRId64 "] was next", frame, host->next_frame);
    host->next_frame = frame + 1;
    if (pthread_equal(pthread_self(), main_thread))
        host->on_main++;
    else
        host->on_worker++;

    if (token->data.kind == DFM_VALUE_OBJECT) {
        say("  [%" PRId64 "] a snapshot (OBJECT), on the %s\n", frame,
            thread_name());
        return 0;
    }
    if (token->data.as.real > REJECT_ABOVE) {
        say("  [%" PRId64 "] %.1f C is out of range: the callback returns "
            "%d\n", frame, token->data.as.real, REJECTED);
        return REJECTED;
    }
    say("  [%" PRId64 "] %.1f C, on the %s\n", frame, token->data.as.real,
        thread_name());
    return 0;
}

static void on_error(const dfm_token *token, int status, const char *message,
                     void *context)
{
    struct host *host = context;

    say("  error handler, on the %s: %s for frame [%" PRId64 "]: %s\n",
        thread_name(), dfm_status_name(status),
        token != NULL ? token->frame.levels[0] : -1, message);
    expect(status == DFM_ERR_CALLBACK_FAILED, "the error handler got %s",
           dfm_status_name(status));
    host->failures_reported++;
    snprintf(host->last_failure, sizeof host->last_failure, "%s", message);
}

static dfm_token reading(const int64_t *frame, double celsius)
{
    return make_token("site-a", node_int(3), frame_of(frame), "yield",
                      value_double(celsius));
}

/* Step 2 runs here: the job's receive thread hands over one poll's worth
 * of results, and the callbacks run before dispatch returns. */
static void *receive_thread(void *argument)
{
    struct host *host = argument;
    static const int64_t frames[3] = { 1, 2, 3 };
    dfm_token batch[3];
    int i;

    for (i = 0; i < 3; i++)
        batch[i] = reading(&frames[i], 21.0 + i);
    check_ok_or_die(dfm_runner_dispatch(host->runner, batch, 3),
                    "dfm_runner_dispatch (worker)");
    expect(host->next_frame == 4,
           "dispatch returned before the batch was delivered");
    return NULL;
}

int main(int argc, char **argv)
{
    static const int64_t frames[8] = { 0, 1, 2, 3, 4, 5, 6, 7 };
    struct host host;
    dfm_dispatcher *dispatcher;
    dfm_callbacks *callbacks;
    struct snapshot *snapshot;
    dfm_token batch[3];
    dfm_stats stats;
    pthread_t worker;
    dfm_status status;

    parse_args_or_die(argc, argv);
    main_thread = pthread_self();
    memset(&host, 0, sizeof host);

    dispatcher = not_null_or_die(dfm_direct_dispatcher_create(),
                                 "dfm_direct_dispatcher_create");
    callbacks = not_null_or_die(dfm_callbacks_create(),
                                "dfm_callbacks_create");
    check_ok_or_die(dfm_callbacks_add_place(callbacks, "yield", on_reading,
                                            &host), "add_place");
    check_ok_or_die(dfm_callbacks_set_error_handler(callbacks, on_error,
                                                    &host),
                    "set_error_handler");
    check_ok_or_die(dfm_dispatcher_create_runner(dispatcher, callbacks,
                                                 &host.runner),
                    "create_runner");

    /* The runner copied the set; the host may let go of it now. */
    dfm_callbacks_destroy(callbacks);

    say("direct: callbacks run inside dfm_runner_dispatch, on the thread "
        "that dispatches\n\n1. one token dispatched from the main thread\n");
    batch[0] = reading(&frames[0], 20.5);
    check_ok_or_die(dfm_runner_dispatch(host.runner, batch, 1),
                    "dfm_runner_dispatch");
    expect(host.on_main == 1, "the callback did not run on the main thread");

    say("2. a batch of three from a worker thread\n");
    posix_ok_or_die(pthread_create(&worker, NULL, receive_thread, &host),
                    "pthread_create");
    posix_ok_or_die(pthread_join(worker, NULL), "pthread_join");
    expect(host.on_worker == 3, "%d of 3 callbacks ran on the worker",
           host.on_worker);

    say("3. a batch whose second token the callback rejects\n");
    snapshot = alloc_or_die(sizeof *snapshot);
    snapshot->frame = 6;
    batch[0] = reading(&frames[4], 22.5);
    batch[1] = reading(&frames[5], 999.0);
    batch[2] = make_token("site-a", node_int(3), frame_of(&frames[6]),
                          "yield", value_object(snapshot, release_snapshot));
    status = dfm_runner_dispatch(host.runner, batch, 3);
    say("  dispatch returned %s: %s\n", dfm_status_name(status),
        dfm_last_error());
    expect(status == DFM_ERR_CALLBACK_FAILED, "dispatch returned %s",
           dfm_status_name(status));
    expect(host.next_frame == 7, "the token after the failure was not "
           "delivered");
    expect(host.failures_reported == 1, "the error handler ran %d times",
           host.failures_reported);
    expect(strstr(host.last_failure, "42") != NULL,
           "the message does not hold the callback's value %d", REJECTED);

    /* The callbacks ran, so the runner owned the OBJECT and released it,
     * failure or not. */
    expect(objects_released == 1, "the snapshot was released %d times",
           objects_released);

    say("4. a direct runner has no queue to pump\n");
    status = dfm_process_pending(host.runner);
    say("  dfm_process_pending: %s\n", dfm_status_name(status));
    expect(status == DFM_ERR_WRONG_KIND, "pumping returned %s",
           dfm_status_name(status));

    say("5. stop, then dispatch once more\n");
    check_ok_or_die(dfm_runner_stop(host.runner, DFM_STOP_DRAIN),
                    "dfm_runner_stop");
    snapshot = alloc_or_die(sizeof *snapshot);
    snapshot->frame = 7;
    batch[0] = make_token("site-a", node_int(3), frame_of(&frames[7]),
                          "yield", value_object(snapshot, release_snapshot));
    status = dfm_runner_dispatch(host.runner, batch, 1);
    say("  dispatch returned %s: %s\n", dfm_status_name(status),
        dfm_last_error());
    expect(status == DFM_ERR_CLOSED, "dispatch after stop returned %s",
           dfm_status_name(status));

    /* A refused call leaves the OBJECT with the caller. */
    expect(objects_released == 1, "the runner released a refused OBJECT");
    if (objects_released == 1)
        release_snapshot(snapshot);

    check_ok_or_die(dfm_runner_stats(host.runner, &stats),
                    "dfm_runner_stats");
    print_stats("runner", &stats);
    expect_stats_balanced(&stats);
    expect(stats.dispatched == 7 && stats.delivered == 6 &&
               stats.failed == 1 && stats.rejected == 1,
           "expected 7 dispatched, 6 delivered, 1 failed, 1 rejected");
    dfm_runner_destroy(host.runner);
    dfm_dispatcher_destroy(dispatcher);
    return finish("direct");
}
