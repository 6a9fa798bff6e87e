/*
 * shaped.c - shaped callbacks: the host registers functions it already
 * has, of their own signatures, and a shape string says which fields of
 * the token to pass them.
 *
 * Three places, three functions that know nothing about dfm_token:
 * printf itself for "pulses", a plain set_temperature(place, value) for
 * "temperature", and an int-returning store_humidity for "humidity".  The
 * example also shows a shape the library rejects (and where), a token that
 * does not fit its shape reaching the error handler instead of the
 * function, and an int function reporting failure by its return value.
 * A manual runner is used: a worker thread dispatches, the main thread
 * pumps, and every function, printf included, runs on the main thread.
 *
 * printf writes its lines to stdout in both modes, since printing is what
 * it was registered to do; the checks never read stdout.
 *
 * Run: build/examples/shaped [--check]
 */
#include "common.h"

#include <pthread.h>

/* user_data for printf.  data.int is an int64_t, and PRId64 is the
 * conversion that matches it on every platform ("%lld" only happens to
 * have the same size on LP64 Linux).  The format reaches printf as data,
 * so -Wformat cannot check it: this comment has to. */
#define PULSE_FORMAT "%s=%" PRId64 "\n"

#define BAD_SHAPE "void(site, dat.int)"
#define BAD_SHAPE_COLUMN "column 12"   /* where "dat.int" starts */

#define HUMIDITY_MAX 100.0
#define HUMIDITY_REJECTED 42    /* store_humidity's failure value, which
                                   the error handler's message must show */

#define TEMPERATURES_MAX 8

static pthread_t main_thread;

/* What set_temperature saw.  It has no user_data argument, so it keeps
 * its state in statics, as a function written before the library would.
 * Only the main thread touches them: it runs inside the pump. */
static double temperatures[TEMPERATURES_MAX];
static int temperature_count = 0;
static bool temperature_off_main = false;

struct host {
    int humidity_calls;
    int mismatches;             /* DFM_ERR_TYPE_MISMATCH reports */
    int callback_failures;      /* DFM_ERR_CALLBACK_FAILED reports */
    int other_reports;
    char mismatch_place[32];
    dfm_value_kind mismatch_kind;
    char mismatch_message[256];
    char failure_message[256];
};

/* A host function from before the library: shape "void(place,
 * data.double)". */
static void set_temperature(const char *place, double value)
{
    if (!pthread_equal(pthread_self(), main_thread))
        temperature_off_main = true;
    if (temperature_count < TEMPERATURES_MAX)
        temperatures[temperature_count] = value;
    temperature_count++;
    say("  set_temperature(\"%s\", %.1f)\n", place, value);
}

/* Shape "int(user, place, data.double)": a non-zero return is a failure,
 * as it is for a dfm_callback. */
static int store_humidity(void *user, const char *place, double percent)
{
    struct host *host = user;

    host->humidity_calls++;
    if (percent > HUMIDITY_MAX) {
        say("  store_humidity(\"%s\", %.1f): out of range, returns %d\n",
            place, percent, HUMIDITY_REJECTED);
        return HUMIDITY_REJECTED;
    }
    say("  store_humidity(\"%s\", %.1f)\n", place, percent);
    return 0;
}

static void on_error(const dfm_token *token, int status, const char *message,
                     void *context)
{
    struct host *host = context;
    const char *place = token != NULL ? token->target_place : "(none)";

    say("  error handler: %s for place \"%s\": %s\n",
        dfm_status_name(status), place, message);
    if (status == DFM_ERR_TYPE_MISMATCH && token != NULL) {
        host->mismatches++;
        snprintf(host->mismatch_place, sizeof host->mismatch_place, "%s",
                 place);
        host->mismatch_kind = token->data.kind;
        snprintf(host->mismatch_message, sizeof host->mismatch_message,
                 "%s", message);
    } else if (status == DFM_ERR_CALLBACK_FAILED) {
        host->callback_failures++;
        snprintf(host->failure_message, sizeof host->failure_message, "%s",
                 message);
    } else {
        host->other_reports++;
    }
}

static dfm_token reading(const char *place, const int64_t *frame,
                         dfm_value data)
{
    return make_token("site-a", node_int(1), frame_of(frame), place, data);
}

/* The pipeline's side: one poll's worth of results, from a worker thread.
 * With a manual runner, dispatch only queues them. */
static void *dispatch_readings(void *argument)
{
    dfm_runner *runner = argument;
    static const int64_t frame = 0;
    dfm_token batch[5];

    batch[0] = reading("pulses", &frame, value_int(17));
    batch[1] = reading("temperature", &frame, value_double(21.5));
    /* data.double also takes an INT, converted to double. */
    batch[2] = reading("temperature", &frame, value_int(22));
    /* A STRING fits no data.double: set_temperature must not see it. */
    batch[3] = reading("temperature", &frame,
                       value_text(DFM_VALUE_STRING, "warm"));
    batch[4] = reading("pulses", &frame, value_int(18));
    check_ok_or_die(dfm_runner_dispatch(runner, batch, 5),
                    "dfm_runner_dispatch (worker)");
    return NULL;
}

/* Step 1: the shape is parsed when the function is registered, so a typo
 * fails here, with the column, rather than at the first token. */
static void show_rejected_shape(dfm_callbacks *callbacks)
{
    dfm_status status;
    const char *message;

    say("1. a shape with a typo is refused at registration\n");
    status = dfm_callbacks_add_shaped(callbacks, "pressure",
                                      (void (*)(void))set_temperature,
                                      BAD_SHAPE, NULL);
    message = dfm_last_error();
    say("  \"%s\": %s\n  %s\n", BAD_SHAPE, dfm_status_name(status),
        message);
    expect(status == DFM_ERR_BAD_SHAPE, "the bad shape got %s",
           dfm_status_name(status));
    expect(strstr(message, BAD_SHAPE_COLUMN) != NULL,
           "the message does not say %s: %s", BAD_SHAPE_COLUMN, message);
    expect(strstr(message, "dat.int") != NULL,
           "the message does not name the bad word: %s", message);
}

static void register_shaped_or_die(dfm_callbacks *callbacks,
                                   const char *place,
                                   void (*function)(void),
                                   const char *shape, void *user_data)
{
    say("  \"%s\" <- %s\n", place, shape);
    check_ok_or_die(dfm_callbacks_add_shaped(callbacks, place, function,
                                             shape, user_data),
                    "dfm_callbacks_add_shaped");
}

int main(int argc, char **argv)
{
    static const int64_t frame = 1;
    struct host host;
    dfm_dispatcher *dispatcher;
    dfm_callbacks *callbacks;
    dfm_runner *runner;
    dfm_token batch[2];
    dfm_stats stats;
    pthread_t worker;
    dfm_status status;
    char returned[16];

    parse_args_or_die(argc, argv);
    main_thread = pthread_self();
    memset(&host, 0, sizeof host);
    say("shaped: the host's own C functions as callbacks\n\n");

    callbacks = not_null_or_die(dfm_callbacks_create(),
                                "dfm_callbacks_create");
    show_rejected_shape(callbacks);

    /* printf is variadic: the format is its one fixed argument, and what
     * follows "..." gets C's default promotions, as in any printf call.
     * The library only hands user_data back, so dropping const is safe. */
    say("2. three functions registered by shape\n");
    register_shaped_or_die(callbacks, "pulses", (void (*)(void))printf,
                           "void(user, ..., place, data.int)",
                           (void *)PULSE_FORMAT);
    register_shaped_or_die(callbacks, "temperature",
                           (void (*)(void))set_temperature,
                           "void(place, data.double)", NULL);
    register_shaped_or_die(callbacks, "humidity",
                           (void (*)(void))store_humidity,
                           "int(user, place, data.double)", &host);
    check_ok_or_die(dfm_callbacks_set_error_handler(callbacks, on_error,
                                                    &host),
                    "set_error_handler");

    dispatcher = not_null_or_die(dfm_manual_dispatcher_create(NULL),
                                 "dfm_manual_dispatcher_create");
    check_ok_or_die(dfm_dispatcher_create_runner(dispatcher, callbacks,
                                                 &runner), "create_runner");
    dfm_callbacks_destroy(callbacks);

    say("3. a worker dispatches five readings; the main thread pumps\n"
        "  (printf's own lines are the unindented ones)\n");
    posix_ok_or_die(pthread_create(&worker, NULL, dispatch_readings,
                                   runner), "pthread_create");
    posix_ok_or_die(pthread_join(worker, NULL), "pthread_join");
    status = dfm_process_pending(runner);
    say("  dfm_process_pending: %s\n", dfm_status_name(status));
    expect(status == DFM_ERR_CALLBACK_FAILED,
           "the pump with a mismatched token returned %s",
           dfm_status_name(status));
    expect(host.mismatches == 1, "%d type mismatches reported, not 1",
           host.mismatches);
    expect(strcmp(host.mismatch_place, "temperature") == 0 &&
               host.mismatch_kind == DFM_VALUE_STRING,
           "the mismatch was for \"%s\", data kind %d, not the STRING for "
           "\"temperature\"", host.mismatch_place, (int)host.mismatch_kind);
    expect(strstr(host.mismatch_message, "data.double") != NULL,
           "the mismatch message does not name data.double: %s",
           host.mismatch_message);
    expect(host.callback_failures == 0 && host.other_reports == 0,
           "the error handler got %d other report(s)",
           host.callback_failures + host.other_reports);
    expect(temperature_count == 2, "set_temperature ran %d times, not 2",
           temperature_count);
    expect(temperature_count < 1 || temperatures[0] == 21.5,
           "set_temperature got %g first, not 21.5", temperatures[0]);
    expect(temperature_count < 2 || temperatures[1] == 22.0,
           "set_temperature got %g for the INT 22", temperatures[1]);
    expect(!temperature_off_main, "set_temperature ran off the main "
           "thread");

    /* The mismatch cost one token, not the batch: printf's two and
     * set_temperature's two were delivered around it. */
    check_ok_or_die(dfm_runner_stats(runner, &stats), "dfm_runner_stats");
    expect(stats.delivered == 4 && stats.failed == 1,
           "after the batch: %" PRIu64 " delivered, %" PRIu64 " failed; "
           "expected 4 and 1", stats.delivered, stats.failed);

    say("4. an int function returns non-zero for a bad reading\n");
    batch[0] = reading("humidity", &frame, value_double(45.0));
    batch[1] = reading("humidity", &frame, value_double(130.0));
    check_ok_or_die(dfm_runner_dispatch(runner, batch, 2),
                    "dfm_runner_dispatch");
    status = dfm_process_pending(runner);
    say("  dfm_process_pending: %s\n", dfm_status_name(status));
    expect(status == DFM_ERR_CALLBACK_FAILED,
           "the pump with a failing function returned %s",
           dfm_status_name(status));
    expect(host.humidity_calls == 2, "store_humidity ran %d times, not 2",
           host.humidity_calls);
    expect(host.callback_failures == 1, "%d callback failures reported, "
           "not 1", host.callback_failures);
    snprintf(returned, sizeof returned, "%d", HUMIDITY_REJECTED);
    expect(strstr(host.failure_message, returned) != NULL,
           "the message does not hold the returned %s: %s", returned,
           host.failure_message);
    expect(host.mismatches == 1, "a second type mismatch was reported");

    /* Drain what is left (nothing), then read the stats before destroy,
     * which would count anything still queued as discarded. */
    say("5. stop and account for every token\n");
    check_ok_or_die(dfm_runner_stop(runner, DFM_STOP_DRAIN),
                    "dfm_runner_stop");
    check_ok_or_die(dfm_process_pending(runner), "dfm_process_pending");
    check_ok_or_die(dfm_runner_stats(runner, &stats), "dfm_runner_stats");
    print_stats("runner", &stats);
    expect_stats_balanced(&stats);
    expect(stats.dispatched == 7 && stats.delivered == 5 &&
               stats.failed == 2 && stats.dropped == 0,
           "expected 7 dispatched, 5 delivered, 2 failed, 0 dropped");

    dfm_runner_destroy(runner);
    dfm_dispatcher_destroy(dispatcher);
    return finish("shaped");
}
