/*
 * kit_loop.c - a host with a 60 Hz main loop takes pipeline results from
 * worker threads, as an Omniverse Kit extension would.
 *
 * Two worker threads play the sites of a pipeline.  For each input frame
 * [0], [1], ... each site yields temperature readings to the place "yield";
 * the last site to finish a frame sends its StopToken (or, if the frame
 * failed, an ErrorToken) to "_dfm_status_".  When both sites are done, the
 * main thread sends the StopToken of the stop frame: the stream has ended.
 *
 * The main thread never blocks on the workers.  In each 16.7 ms frame it
 * sleeps in poll() on the runner's wake fd and pumps with a budget of 64
 * tokens and 2 ms, so that a burst of results cannot cost the host a frame.
 * Also shown: an OBJECT payload whose release is counted, and a clean
 * shutdown checked against the runner's stats.
 *
 * Run: make run, or build/examples/kit_loop [--check]
 */
#include "common.h"

#include <poll.h>
#include <pthread.h>

#define FRAME_NS 16666667u         /* 60 Hz */
#define PUMP_MAX_TOKENS 64         /* per host frame */
#define PUMP_MAX_NS 2000000u       /* 2 ms per host frame */
#define INPUT_FRAMES 4
#define SITES 2
#define READINGS_PER_FRAME 2       /* per site and input frame */
#define BURST_FRAME 1              /* site-a uploads buffered readings here */
#define BURST_READINGS 100
#define FAILED_FRAME 2             /* site-b's sensor times out here */
#define SHOWN_READINGS 12          /* printed one a line, then only counted */
#define GIVE_UP_NS 20000000000ull  /* a broken wake fd must not hang us */

/* The OBJECT payload: the runner owns it once dispatch accepts it. */
struct calibration {
    char sensor[16];
    double offset;
};

/* release() gets only the pointer, so its count is global. */
static pthread_mutex_t release_lock = PTHREAD_MUTEX_INITIALIZER;
static int objects_released = 0;

/* What the sites share; guarded by `lock`. */
struct pipeline {
    pthread_mutex_t lock;
    dfm_runner *runner;
    int sites_done[INPUT_FRAMES];
    int readings_sent[INPUT_FRAMES];
    int sites_finished;
    uint64_t tokens_accepted;
    int objects_sent;
};

struct site {
    const char *name;
    int64_t node;
    unsigned step_ms;              /* how long one input frame takes */
    struct pipeline *pipeline;
    pthread_t thread;
};

/* What the callbacks see.  They all run on the main thread: no lock. */
struct host {
    struct pipeline *pipeline;
    int readings_received[INPUT_FRAMES];
    int readings_shown;
    int frames_done;
    int frames_failed;
    int summaries;
    uint64_t tokens_seen;
    bool pipeline_finished;
};

static void release_calibration(void *pointer)
{
    free(pointer);
    pthread_mutex_lock(&release_lock);
    objects_released++;
    pthread_mutex_unlock(&release_lock);
}

/* ---- The pipeline: two sites on worker threads ------------------------- */

/* Sends a batch and counts what the pipeline handed over, for the checks
 * at the end. */
static void dispatch_or_die(struct pipeline *pipeline, const dfm_token *tokens,
                            size_t count)
{
    size_t i;

    check_ok_or_die(dfm_runner_dispatch(pipeline->runner, tokens, count),
                    "dfm_runner_dispatch");

    pthread_mutex_lock(&pipeline->lock);
    pipeline->tokens_accepted += count;
    for (i = 0; i < count; i++) {
        if (tokens[i].data.kind == DFM_VALUE_DOUBLE)
            pipeline->readings_sent[tokens[i].frame.levels[0]]++;
        if (tokens[i].data.kind == DFM_VALUE_OBJECT)
            pipeline->objects_sent++;
    }
    pthread_mutex_unlock(&pipeline->lock);
}

/* One batch, as a job hands over each poll's worth of results. */
static void yield_readings(struct site *site, const int64_t *level, int count)
{
    dfm_token batch[BURST_READINGS];
    double celsius;
    int i;

    for (i = 0; i < count; i++) {
        celsius = 20.0 + (double)site->node + 0.5 * (double)*level + 0.01 * i;
        batch[i] = make_token(site->name, node_int(site->node),
                              frame_of(level), "yield",
                              value_double(celsius));
    }
    dispatch_or_die(site->pipeline, batch, (size_t)count);
}

static void yield_calibration(struct site *site, const int64_t *level)
{
    struct calibration *calibration = alloc_or_die(sizeof *calibration);
    dfm_token token;

    snprintf(calibration->sensor, sizeof calibration->sensor, "probe-%d",
             (int)site->node);
    calibration->offset = -0.25;
    token = make_token(site->name, node_int(site->node), frame_of(level),
                       "yield", value_object(calibration,
                                             release_calibration));
    dispatch_or_die(site->pipeline, &token, 1);
}

/* The last site to finish a frame (the stop leader) reports it on
 * "_dfm_status_": a StopToken, or an ErrorToken if the frame failed. */
static void finish_frame(struct site *site, const int64_t *level)
{
    static const char error[] =
        "{\"type\": \"TimeoutError\", \"site\": \"site-b\", "
        "\"message\": \"sensor did not answer\"}";
    struct pipeline *pipeline = site->pipeline;
    dfm_token status;

    status = make_token(site->name, node_none(), frame_of(level),
                        "_dfm_status_",
                        *level == FAILED_FRAME
                            ? value_text(DFM_VALUE_ERROR, error)
                            : value_stop());

    /* Dispatching under the lock keeps the frames' status tokens in
     * order; the queue is unbounded, so dispatch never blocks. */
    pthread_mutex_lock(&pipeline->lock);
    if (++pipeline->sites_done[*level] == SITES) {
        check_ok_or_die(dfm_runner_dispatch(pipeline->runner, &status, 1),
                        "dfm_runner_dispatch");
        pipeline->tokens_accepted++;
    }
    pthread_mutex_unlock(&pipeline->lock);
}

static void *run_site(void *argument)
{
    struct site *site = argument;
    bool is_site_a = strcmp(site->name, "site-a") == 0;
    int64_t level;
    char summary[96];
    dfm_token token;

    for (level = 0; level < INPUT_FRAMES; level++) {
        sleep_ms(site->step_ms);

        if (is_site_a || level != FAILED_FRAME)
            yield_readings(site, &level, READINGS_PER_FRAME);
        if (level == BURST_FRAME && is_site_a)
            yield_readings(site, &level, BURST_READINGS);
        if (level == BURST_FRAME && !is_site_a)
            yield_calibration(site, &level);
        finish_frame(site, &level);
    }

    /* A place with no callback of its own reaches the default callback.
     * The summary belongs to no input frame, so it carries the stop frame. */
    snprintf(summary, sizeof summary, "{\"site\": \"%s\", \"frames\": %d}",
             site->name, INPUT_FRAMES);
    token = make_token(site->name, node_none(), stop_frame(), "summary",
                       value_text(DFM_VALUE_JSON, summary));
    dispatch_or_die(site->pipeline, &token, 1);

    pthread_mutex_lock(&site->pipeline->lock);
    site->pipeline->sites_finished++;
    pthread_mutex_unlock(&site->pipeline->lock);
    return NULL;
}

/* ---- The host's callbacks ---------------------------------------------- */

static void note_token(struct host *host)
{
    expect(!host->pipeline_finished, "a token arrived after the stop frame");
    host->tokens_seen++;
}

static int on_yield(const dfm_token *token, void *user_data)
{
    struct host *host = user_data;
    const struct calibration *calibration;
    char frame[32];

    note_token(host);
    frame_text(&token->frame, frame, sizeof frame);
    if (token->data.kind == DFM_VALUE_OBJECT) {
        calibration = token->data.as.object.pointer;
        say("  %s %s: calibration of %s, offset %+.2f C (an OBJECT)\n",
            token->source_site, frame, calibration->sensor,
            calibration->offset);
        return 0;
    }
    if (token->data.kind != DFM_VALUE_DOUBLE || token->frame.depth != 1) {
        expect(false, "yield got value kind %d in frame %s",
               token->data.kind, frame);
        return 0;
    }
    host->readings_received[token->frame.levels[0] % INPUT_FRAMES]++;

    if (host->readings_shown++ < SHOWN_READINGS)
        say("  %s node %" PRId64 " %s: %.2f C\n", token->source_site,
            token->source_node.id, frame, token->data.as.real);
    if (host->readings_shown == SHOWN_READINGS)
        say("  (further readings are counted, not printed)\n");
    return 0;
}

static int on_status(const dfm_token *token, void *user_data)
{
    struct host *host = user_data;
    char frame[32];
    int64_t level;
    int sent;

    note_token(host);
    expect(token->source_node.kind == DFM_NODE_NONE,
           "a status token came from a node");
    if (token->frame.is_stop) {
        expect(token->data.kind == DFM_VALUE_STOP, "stop frame without stop");
        say("  pipeline finished: StopToken of the stop frame\n");
        host->pipeline_finished = true;
        return 0;
    }

    level = token->frame.levels[0] % INPUT_FRAMES;
    pthread_mutex_lock(&host->pipeline->lock);
    sent = host->pipeline->readings_sent[level];
    pthread_mutex_unlock(&host->pipeline->lock);
    expect(host->readings_received[level] == sent,
           "frame [%d] ended before its readings arrived (%d of %d)",
           (int)level, host->readings_received[level], sent);

    frame_text(&token->frame, frame, sizeof frame);
    if (token->data.kind == DFM_VALUE_ERROR) {
        say("  frame %s failed: %.*s\n", frame,
            (int)token->data.as.text.length, token->data.as.text.data);
        host->frames_failed++;
    } else {
        say("  frame %s done: %d readings\n", frame, sent);
        host->frames_done++;
    }
    return 0;
}

static int on_other_place(const dfm_token *token, void *user_data)
{
    struct host *host = user_data;

    note_token(host);
    say("  place \"%s\" (default callback): %.*s\n", token->target_place,
        (int)token->data.as.text.length, token->data.as.text.data);
    host->summaries++;
    return 0;
}

/* No callback here fails; if one did, this is where the host hears. */
static void on_error(const dfm_token *token, int status, const char *message,
                     void *context)
{
    (void)token;
    (void)context;
    expect(false, "error handler: %s: %s", dfm_status_name(status), message);
}

/* ---- The host's main loop ---------------------------------------------- */

/* True when the wake fd is readable (tokens are pending) before the
 * deadline; a zero timeout just looks. */
static bool wait_for_wake(int wake_fd, uint64_t deadline)
{
    struct pollfd watch = { 0, POLLIN, 0 };
    uint64_t now = now_ns();
    int timeout_ms = 0;

    /* Rounded up: a 0 ms timeout short of the deadline would spin. */
    if (deadline > now)
        timeout_ms = (int)((deadline - now + 999999u) / 1000000u);
    watch.fd = wake_fd;
    return poll(&watch, 1, timeout_ms) > 0 && (watch.revents & POLLIN);
}

/* One host frame: sleep until tokens arrive or the frame's time is up,
 * pump once within the budget, and spend the rest of the frame on the
 * host's own work (here: sleeping).  What the budget leaves pending keeps
 * the wake fd readable, so the next frame pumps it at once. */
static void run_host_frame(dfm_runner *runner, int wake_fd, uint64_t started,
                           uint64_t deadline, unsigned number)
{
    dfm_pump_result result;
    uint64_t now;

    if (wait_for_wake(wake_fd, deadline)) {
        check_ok_or_die(dfm_process_pending_budget(runner, PUMP_MAX_TOKENS,
                                                   PUMP_MAX_NS, &result),
                        "dfm_process_pending_budget");
        expect(result.delivered + result.failed <= PUMP_MAX_TOKENS,
               "one pump delivered %zu tokens",
               result.delivered + result.failed);
        if (result.delivered + result.failed > 0)
            say("host frame %3u (+%3u ms): pumped %zu, %zu still pending\n",
                number, (unsigned)((now_ns() - started) / 1000000u),
                result.delivered + result.failed, result.pending);
    }

    now = now_ns();
    if (now < deadline)
        sleep_ns(deadline - now);
}

/* The pipeline's controller: once both sites are done, end the stream
 * with the StopToken of the stop frame. */
static bool end_stream_when_done(struct pipeline *pipeline,
                                 struct site *sites)
{
    dfm_token stop;
    bool done;
    int i;

    pthread_mutex_lock(&pipeline->lock);
    done = pipeline->sites_finished == SITES;
    pthread_mutex_unlock(&pipeline->lock);
    if (!done)
        return false;

    /* Both have returned, so joining costs the frame nothing. */
    for (i = 0; i < SITES; i++)
        posix_ok_or_die(pthread_join(sites[i].thread, NULL), "pthread_join");
    stop = make_token("site-a", node_none(), stop_frame(), "_dfm_status_",
                      value_stop());
    dispatch_or_die(pipeline, &stop, 1);
    return true;
}

int main(int argc, char **argv)
{
    struct pipeline pipeline;
    struct host host;
    struct site sites[SITES] = {
        { .name = "site-a", .node = 3, .step_ms = 20, .pipeline = &pipeline },
        { .name = "site-b", .node = 7, .step_ms = 35, .pipeline = &pipeline },
    };
    dfm_manual_options options;
    dfm_dispatcher *dispatcher;
    dfm_callbacks *callbacks;
    dfm_runner *runner;
    dfm_stats stats;
    uint64_t started, deadline;
    unsigned frame;
    bool stream_ended = false;
    int wake_fd, i;

    parse_args_or_die(argc, argv);
    memset(&pipeline, 0, sizeof pipeline);
    memset(&host, 0, sizeof host);
    posix_ok_or_die(pthread_mutex_init(&pipeline.lock, NULL),
                    "pthread_mutex_init");
    host.pipeline = &pipeline;

    /* A manual runner queues tokens until the host pumps; the wake fd lets
     * the loop sleep in poll() until there is something to pump. */
    dfm_manual_options_init(&options);
    options.use_wake_fd = true;
    dispatcher = not_null_or_die(dfm_manual_dispatcher_create(&options),
                                 "dfm_manual_dispatcher_create");
    callbacks = not_null_or_die(dfm_callbacks_create(),
                                "dfm_callbacks_create");
    check_ok_or_die(dfm_callbacks_add_place(callbacks, "yield", on_yield,
                                            &host), "add_place yield");
    check_ok_or_die(dfm_callbacks_add_place(callbacks, "_dfm_status_",
                                            on_status, &host),
                    "add_place _dfm_status_");
    check_ok_or_die(dfm_callbacks_set_default(callbacks, on_other_place,
                                              &host), "set_default");
    check_ok_or_die(dfm_callbacks_set_error_handler(callbacks, on_error,
                                                    &host),
                    "set_error_handler");
    check_ok_or_die(dfm_dispatcher_create_runner(dispatcher, callbacks,
                                                 &runner), "create_runner");
    wake_fd = dfm_runner_wake_fd(runner);
    if (wake_fd < 0)
        die("no wake fd: %s", dfm_last_error());
    pipeline.runner = runner;

    say("kit_loop: a 60 Hz host takes results from two pipeline sites.\n"
        "  pump budget per 16.7 ms frame: %d tokens or %.1f ms\n"
        "  %d input frames; site-a uploads %d readings in frame [%d];\n"
        "  site-b fails frame [%d]\n\n", PUMP_MAX_TOKENS, PUMP_MAX_NS / 1e6,
        INPUT_FRAMES, BURST_READINGS, BURST_FRAME, FAILED_FRAME);
    check_ok_or_die(dfm_runner_start(runner), "dfm_runner_start");
    for (i = 0; i < SITES; i++)
        posix_ok_or_die(pthread_create(&sites[i].thread, NULL, run_site,
                                       &sites[i]), "pthread_create");

    /* The main loop.  A frame that overran is not made up for: the next
     * one starts from now, as a vsync-paced loop would. */
    started = now_ns();
    deadline = started;
    for (frame = 0; !host.pipeline_finished; frame++) {
        deadline += FRAME_NS;
        if (deadline < now_ns())
            deadline = now_ns() + FRAME_NS;
        run_host_frame(runner, wake_fd, started, deadline, frame);
        if (!stream_ended)
            stream_ended = end_stream_when_done(&pipeline, sites);
        if (now_ns() - started > GIVE_UP_NS)
            die("the stop frame never arrived (pending: %s, wake fd "
                "readable: %s)", dfm_has_pending(runner) ? "yes" : "no",
                wait_for_wake(wake_fd, 0) ? "yes" : "no");
    }
    say("\nthe stream ended after %u host frames\n", frame);

    /* Clean shutdown: refuse new tokens, deliver what was accepted, then
     * free.  The stats are read before destroy, which would discard. */
    check_ok_or_die(dfm_runner_stop(runner, DFM_STOP_DRAIN),
                    "dfm_runner_stop");
    check_ok_or_die(dfm_process_pending(runner), "dfm_process_pending");
    expect(!wait_for_wake(wake_fd, 0), "the wake fd is readable with "
           "nothing pending");
    check_ok_or_die(dfm_runner_stats(runner, &stats), "dfm_runner_stats");
    print_stats("runner", &stats);
    expect_stats_balanced(&stats);
    expect(stats.dispatched == pipeline.tokens_accepted,
           "dispatched %" PRIu64 ", but %" PRIu64 " tokens were accepted",
           stats.dispatched, pipeline.tokens_accepted);
    expect(stats.delivered == host.tokens_seen,
           "delivered %" PRIu64 ", but the callbacks saw %" PRIu64,
           stats.delivered, host.tokens_seen);
    expect(stats.failed + stats.dropped + stats.discarded + stats.rejected
               == 0, "a token failed, was dropped, discarded or rejected");
    expect(stats.pending_high_water >= BURST_READINGS,
           "pending high water %" PRIu64 " is below the burst of %d",
           stats.pending_high_water, BURST_READINGS);
    dfm_runner_destroy(runner);
    dfm_dispatcher_destroy(dispatcher);
    dfm_callbacks_destroy(callbacks);

    expect(host.frames_done == INPUT_FRAMES - 1 && host.frames_failed == 1,
           "%d frames done and %d failed", host.frames_done,
           host.frames_failed);
    expect(host.summaries == SITES, "%d summaries", host.summaries);
    expect(objects_released == pipeline.objects_sent,
           "%d OBJECT payloads sent, %d released", pipeline.objects_sent,
           objects_released);
    say("OBJECT payloads: %d sent, %d released\n", pipeline.objects_sent,
        objects_released);
    pthread_mutex_destroy(&pipeline.lock);
    return finish("kit_loop");
}
