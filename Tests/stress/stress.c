/*
 * stress.c - many producer threads against every runner configuration,
 * checking that each token is delivered, failed or discarded exactly once.
 *
 *   stress [--short | --soak SECONDS] [--producers N] [--tokens N]
 *          [--only TEXT] [--seed N]
 *
 * Each configuration (manual unbounded; manual bounded with each overflow
 * policy; manual with async callbacks; direct; executor) gets N producer
 * threads (8) that each push a sequence of tokens (1,000,000; --short:
 * 50,000) in batches of random sizes.  The tokens mix every value kind,
 * a quarter of them OBJECT payloads whose releases are counted one by one,
 * and some callbacks fail on purpose.  A callback recomputes what each
 * token must hold from its producer and sequence number, so a token that
 * arrives corrupted, twice, out of its producer's order or too early
 * (payload already released) is caught where it happens.  At the end of
 * each configuration the program compares what the consumer saw, what the
 * producers pushed and what the runner's counters say.
 *
 * --soak runs the configurations in rounds until SECONDS have passed, and
 * prints a summary of all rounds.  The last line is "N passed, M failed"
 * (the checks of check.h); the exit status is non-zero on any failure.
 *
 * Build (see scripts/reliability.sh):
 *   cc -std=c99 -O2 -g -Iinclude -ITests/c Tests/stress/stress.c \
 *      -Lbuild/lib -ldfmdispatch -Wl,-rpath,$PWD/build/lib -pthread
 */
#include "check.h"
#include "fixtures.h"

#include <inttypes.h>
#include <poll.h>
#include <sched.h>

#define MAX_PRODUCERS 64
#define MAX_BATCH 256
#define BOUNDED_CAPACITY 1024

/* Reports of single bad tokens: enough to diagnose, not a flood. */
#define MAX_REPORTS 10

/* A run that makes no progress for this long is stuck. */
#define STALL_NS 60000000000u

/* ---- Sizes and options ----------------------------------------------- */

static size_t producer_count = 8;
static uint64_t tokens_per_producer = 1000000;
static double soak_seconds = 0;
static const char *only_configuration = NULL;
static uint64_t run_seed = 0x5eed;

/* ---- What each token holds ------------------------------------------- */

/* Every field of a token is a function of (producer, sequence): the
 * producer builds it from there, and the callback rebuilds the same
 * values to compare.  No table of sent tokens is needed, so a run of
 * millions costs only the release counters. */

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

static uint64_t token_hash(size_t producer, uint64_t sequence)
{
    return mix64(run_seed ^ ((uint64_t)producer << 44) ^ sequence);
}

/* Objects are a quarter of the mix: they are the payloads whose
 * ownership can go wrong. */
static const dfm_value_kind kind_mix[12] = {
    DFM_VALUE_NONE,   DFM_VALUE_BOOL,   DFM_VALUE_INT,    DFM_VALUE_DOUBLE,
    DFM_VALUE_STRING, DFM_VALUE_BYTES,  DFM_VALUE_JSON,   DFM_VALUE_OBJECT,
    DFM_VALUE_OBJECT, DFM_VALUE_OBJECT, DFM_VALUE_STOP,   DFM_VALUE_ERROR
};

static dfm_value_kind kind_of(uint64_t hash)
{
    return kind_mix[(hash >> 16) % 12];
}

/* Places: two with their own callback, two that go to the default. */
enum { ROUTE_DEFAULT = 0, ROUTE_YIELD = 1, ROUTE_STATUS = 2 };

static const char *const places[4] = {
    "yield", "_dfm_status_", "other", "plac\xc3\xa9"
};

static const char *place_of(uint64_t hash)
{
    return places[(hash >> 12) % 4];
}

static int route_of(const char *place)
{
    if (strcmp(place, "yield") == 0)
        return ROUTE_YIELD;
    if (strcmp(place, "_dfm_status_") == 0)
        return ROUTE_STATUS;
    return ROUTE_DEFAULT;
}

/* About one callback in 53 fails on purpose. */
static bool fails(uint64_t hash)
{
    return (hash >> 24) % 53 == 0;
}

/* About one async completion in 16 comes from the completer thread. */
static bool completes_elsewhere(uint64_t hash)
{
    return (hash >> 32) % 16 == 0;
}

static size_t depth_of(uint64_t hash)
{
    return 1 + (size_t)((hash >> 8) % 3);
}

/* STRING, JSON and ERROR text.  A STRING sometimes carries a NUL byte
 * inside, which the contract allows, and always a two-byte character. */
static size_t text_of(size_t producer, uint64_t sequence, uint64_t hash,
                      dfm_value_kind kind, char *out, size_t size)
{
    int written;

    if (kind == DFM_VALUE_JSON)
        written = snprintf(out, size, "{\"p\":%zu,\"s\":%" PRIu64 "}",
                           producer, sequence);
    else if (kind == DFM_VALUE_ERROR)
        written = snprintf(out, size, "error %" PRIu64 " of %zu", sequence,
                           producer);
    else
        written = snprintf(out, size, "token %" PRIu64 " of %zu \xc3\xa9%.*s",
                           sequence, producer, (int)(hash % 9), "xxxxxxxxx");
    if (written < 0)
        return 0;
    if (kind == DFM_VALUE_STRING && (hash >> 40) % 4 == 0)
        out[5] = '\0';
    return (size_t)written;
}

static size_t bytes_of(uint64_t hash, unsigned char *out)
{
    size_t length = (size_t)((hash >> 20) % 41);
    size_t i;

    for (i = 0; i < length; i++)
        out[i] = (unsigned char)((hash >> (i % 8 * 8)) ^ i);
    return length;
}

/* ---- OBJECT payloads ------------------------------------------------- */

/* One counter per token of each producer: the payload pointer is the
 * address of its counter, and release adds one.  After a run each OBJECT
 * token's counter must be 1 and every other token's 0. */
static uint8_t *release_counters[MAX_PRODUCERS];
static uint64_t object_releases;

static void counted_release(void *pointer)
{
    __atomic_add_fetch((uint8_t *)pointer, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&object_releases, 1, __ATOMIC_RELAXED);
}

static uint8_t releases_of(size_t producer, uint64_t sequence)
{
    return __atomic_load_n(&release_counters[producer][sequence],
                           __ATOMIC_RELAXED);
}

/* ---- Building a token ------------------------------------------------ */

typedef struct token_storage {
    int64_t levels[3];
    char text[64];
    unsigned char bytes[48];
} token_storage;

static void token_build(dfm_token *token, token_storage *storage,
                        const char *site, size_t producer,
                        uint64_t sequence)
{
    uint64_t hash = token_hash(producer, sequence);
    dfm_value_kind kind = kind_of(hash);
    size_t length;

    memset(token, 0, sizeof *token);
    token->source_site = site;
    token->source_node.kind = DFM_NODE_INT;
    token->source_node.id = (int64_t)producer;
    storage->levels[0] = (int64_t)sequence;
    storage->levels[1] = (int64_t)(hash & 0xffff);
    storage->levels[2] = -(int64_t)producer;
    token->frame.levels = storage->levels;
    token->frame.depth = depth_of(hash);
    token->target_place = place_of(hash);
    token->data.kind = kind;

    switch (kind) {
    case DFM_VALUE_BOOL:
        token->data.as.boolean = (hash & 1) != 0;
        break;
    case DFM_VALUE_INT:
        token->data.as.integer = (int64_t)hash;
        break;
    case DFM_VALUE_DOUBLE:
        token->data.as.real = (double)(int64_t)(hash >> 11) * 0.25;
        break;
    case DFM_VALUE_STRING:
    case DFM_VALUE_JSON:
    case DFM_VALUE_ERROR:
        length = text_of(producer, sequence, hash, kind, storage->text,
                         sizeof storage->text);
        token->data.as.text.data = storage->text;
        token->data.as.text.length = length;
        break;
    case DFM_VALUE_BYTES:
        length = bytes_of(hash, storage->bytes);
        /* An empty byte string may come without a pointer. */
        token->data.as.bytes.data =
            length == 0 && (hash & 1) ? NULL : storage->bytes;
        token->data.as.bytes.length = length;
        break;
    case DFM_VALUE_OBJECT:
        token->data.as.object.pointer =
            &release_counters[producer][sequence];
        token->data.as.object.release = counted_release;
        break;
    default:
        break;
    }
}

/* ---- What the consumer saw ------------------------------------------- */

/* Counters are atomic because a direct runner's callbacks run on every
 * producer thread at once.  last[] is per producer, and only one thread
 * at a time delivers a given producer's tokens. */
typedef struct tally {
    uint64_t seen;             /* callbacks run (succeeded or failed) */
    uint64_t succeeded;
    uint64_t failed;           /* callbacks that failed on purpose */
    uint64_t checksum;
    uint64_t order_errors;
    uint64_t corrupt;
    uint64_t route_errors;
    uint64_t released_early;   /* OBJECT payload released before delivery */
    uint64_t overlaps;         /* two async callbacks in flight at once */
    uint64_t errors_reported;  /* error handler calls, as expected */
    uint64_t errors_unexpected;
    int in_flight;
    bool gaps_allowed;         /* drop-oldest: rising, not consecutive */
    int64_t last[MAX_PRODUCERS];
} tally;

static int reports;

static void report(const char *configuration, const char *what,
                   const dfm_token *token)
{
    if (__atomic_add_fetch(&reports, 1, __ATOMIC_RELAXED) > MAX_REPORTS)
        return;
    fprintf(stderr, "%s: %s (producer %" PRId64 ", sequence %" PRId64
            ")\n", configuration, what,
            token != NULL ? token->source_node.id : -1,
            token != NULL && token->frame.depth > 0
                && token->frame.levels != NULL
                ? token->frame.levels[0] : -1);
}

static const char *current_name = "";

static uint64_t token_checksum(size_t producer, uint64_t sequence)
{
    return mix64(token_hash(producer, sequence) + 1);
}

/* Compares a delivered token with what its producer built; false and a
 * report when any field differs. */
static bool token_matches(const dfm_token *token, size_t producer,
                          uint64_t sequence, uint64_t hash)
{
    dfm_value_kind kind = kind_of(hash);
    char site[32];
    char text[64];
    unsigned char bytes[48];
    size_t length;
    const dfm_value *data = &token->data;

    snprintf(site, sizeof site, "producer-%zu", producer);
    if (token->source_site == NULL || strcmp(token->source_site, site) != 0
        || token->target_place == NULL
        || strcmp(token->target_place, place_of(hash)) != 0
        || token->frame.is_stop || token->frame.depth != depth_of(hash)
        || (token->frame.depth > 1
            && token->frame.levels[1] != (int64_t)(hash & 0xffff))
        || (token->frame.depth > 2
            && token->frame.levels[2] != -(int64_t)producer)
        || data->kind != kind)
        return false;

    switch (kind) {
    case DFM_VALUE_BOOL:
        return data->as.boolean == ((hash & 1) != 0);
    case DFM_VALUE_INT:
        return data->as.integer == (int64_t)hash;
    case DFM_VALUE_DOUBLE:
        return data->as.real == (double)(int64_t)(hash >> 11) * 0.25;
    case DFM_VALUE_STRING:
    case DFM_VALUE_JSON:
    case DFM_VALUE_ERROR:
        length = text_of(producer, sequence, hash, kind, text, sizeof text);
        /* Received text is NUL-terminated past its length. */
        return data->as.text.length == length
               && data->as.text.data != NULL
               && memcmp(data->as.text.data, text, length) == 0
               && data->as.text.data[length] == '\0';
    case DFM_VALUE_BYTES:
        length = bytes_of(hash, bytes);
        return data->as.bytes.length == length
               && (length == 0
                   || (data->as.bytes.data != NULL
                       && memcmp(data->as.bytes.data, bytes, length) == 0));
    case DFM_VALUE_OBJECT:
        return data->as.object.pointer
                   == &release_counters[producer][sequence]
               && data->as.object.release == counted_release;
    default:
        return true;
    }
}

/* Checks one delivered token and counts it.  Returns the status the
 * callback should report: non-zero for the tokens that fail on purpose. */
static int tally_token(tally *seen, const dfm_token *token, int route)
{
    size_t producer;
    uint64_t sequence;
    uint64_t hash;

    if (token->source_node.kind != DFM_NODE_INT
        || token->source_node.id < 0
        || (size_t)token->source_node.id >= producer_count
        || token->frame.depth == 0 || token->frame.levels == NULL
        || token->frame.levels[0] < 0
        || (uint64_t)token->frame.levels[0] >= tokens_per_producer) {
        __atomic_add_fetch(&seen->corrupt, 1, __ATOMIC_RELAXED);
        report(current_name, "a token from nowhere", token);
        return 0;
    }
    producer = (size_t)token->source_node.id;
    sequence = (uint64_t)token->frame.levels[0];
    hash = token_hash(producer, sequence);

    if (!token_matches(token, producer, sequence, hash)) {
        __atomic_add_fetch(&seen->corrupt, 1, __ATOMIC_RELAXED);
        report(current_name, "a token that differs from what was sent",
               token);
    }
    if (route_of(token->target_place) != route) {
        __atomic_add_fetch(&seen->route_errors, 1, __ATOMIC_RELAXED);
        report(current_name, "a token at the wrong callback", token);
    }
    if (seen->gaps_allowed ? (int64_t)sequence <= seen->last[producer]
                           : (int64_t)sequence != seen->last[producer] + 1) {
        __atomic_add_fetch(&seen->order_errors, 1, __ATOMIC_RELAXED);
        report(current_name, "a token out of its producer's order", token);
    }
    seen->last[producer] = (int64_t)sequence;
    if (kind_of(hash) == DFM_VALUE_OBJECT
        && releases_of(producer, sequence) != 0) {
        __atomic_add_fetch(&seen->released_early, 1, __ATOMIC_RELAXED);
        report(current_name, "a payload released before its callback",
               token);
    }

    __atomic_add_fetch(&seen->seen, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&seen->checksum, token_checksum(producer, sequence),
                       __ATOMIC_RELAXED);
    if (fails(hash)) {
        __atomic_add_fetch(&seen->failed, 1, __ATOMIC_RELAXED);
        return 7;
    }
    __atomic_add_fetch(&seen->succeeded, 1, __ATOMIC_RELAXED);
    return 0;
}

/* The error handler: every report must be a token that fails on purpose,
 * with DFM_ERR_CALLBACK_FAILED. */
static void tally_error(const dfm_token *token, int status,
                        const char *message, void *context)
{
    tally *seen = (tally *)context;

    (void)message;
    if (token != NULL && status == DFM_ERR_CALLBACK_FAILED
        && token->frame.depth > 0 && token->frame.levels != NULL
        && token->source_node.id >= 0
        && (size_t)token->source_node.id < producer_count
        && fails(token_hash((size_t)token->source_node.id,
                            (uint64_t)token->frame.levels[0]))) {
        __atomic_add_fetch(&seen->errors_reported, 1, __ATOMIC_RELAXED);
        return;
    }
    __atomic_add_fetch(&seen->errors_unexpected, 1, __ATOMIC_RELAXED);
    report(current_name, "an unexpected error report", token);
}

static int on_default(const dfm_token *token, void *user_data)
{
    return tally_token((tally *)user_data, token, ROUTE_DEFAULT);
}

static int on_yield(const dfm_token *token, void *user_data)
{
    return tally_token((tally *)user_data, token, ROUTE_YIELD);
}

static int on_status(const dfm_token *token, void *user_data)
{
    return tally_token((tally *)user_data, token, ROUTE_STATUS);
}

/* ---- Async callbacks and the completer thread ------------------------ */

/* The thread that completes the callbacks an async callback hands over:
 * a foreign thread, as a host's worker pool would be. */
typedef struct completer {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    dfm_completion *completion;
    int status;
    bool quit;
    uint64_t completed;
    pthread_t thread;
} completer;

typedef struct async_context {
    tally *seen;
    completer *helper;
    int route;
} async_context;

static void *completer_run(void *argument)
{
    completer *self = (completer *)argument;

    pthread_mutex_lock(&self->lock);
    for (;;) {
        dfm_completion *completion;
        int status;

        while (self->completion == NULL && !self->quit)
            pthread_cond_wait(&self->wake, &self->lock);
        if (self->completion == NULL)
            break;
        completion = self->completion;
        status = self->status;
        self->completion = NULL;
        pthread_mutex_unlock(&self->lock);

        dfm_complete(completion, status);

        pthread_mutex_lock(&self->lock);
        self->completed++;
    }
    pthread_mutex_unlock(&self->lock);
    return NULL;
}

static void completer_hand(completer *self, dfm_completion *completion,
                           int status)
{
    pthread_mutex_lock(&self->lock);
    self->completion = completion;
    self->status = status;
    pthread_cond_signal(&self->wake);
    pthread_mutex_unlock(&self->lock);
}

static bool completer_start(completer *self)
{
    memset(self, 0, sizeof *self);
    pthread_mutex_init(&self->lock, NULL);
    pthread_cond_init(&self->wake, NULL);
    return CHECK(pthread_create(&self->thread, NULL, completer_run, self)
                 == 0);
}

static void completer_stop(completer *self)
{
    pthread_mutex_lock(&self->lock);
    self->quit = true;
    pthread_cond_signal(&self->wake);
    pthread_mutex_unlock(&self->lock);
    pthread_join(self->thread, NULL);
    pthread_mutex_destroy(&self->lock);
    pthread_cond_destroy(&self->wake);
}

static void on_async(const dfm_token *token, dfm_completion *completion,
                     void *user_data)
{
    async_context *context = (async_context *)user_data;
    tally *seen = context->seen;
    int status;
    bool elsewhere;

    if (__atomic_exchange_n(&seen->in_flight, 1, __ATOMIC_SEQ_CST) != 0) {
        __atomic_add_fetch(&seen->overlaps, 1, __ATOMIC_RELAXED);
        report(current_name, "two async callbacks in flight", token);
    }
    status = tally_token(seen, token, context->route);
    elsewhere = token->frame.depth > 0 && token->frame.levels != NULL
                && completes_elsewhere(token_hash(
                       (size_t)token->source_node.id,
                       (uint64_t)token->frame.levels[0]));

    /* in_flight drops before dfm_complete: once complete is called the
     * next callback may start on another thread at any moment. */
    __atomic_store_n(&seen->in_flight, 0, __ATOMIC_SEQ_CST);
    if (elsewhere)
        completer_hand(context->helper, completion, status);
    else
        dfm_complete(completion, status);
}

/* ---- A host loop for executor runners -------------------------------- */

typedef struct loop {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    void (**work)(void *);
    void **arg;
    size_t head;
    size_t tail;
    size_t capacity;
    uint64_t ran;
    bool quit;
    pthread_t thread;
} loop;

static void loop_post(void *context, void (*work)(void *), void *arg)
{
    loop *host = (loop *)context;

    pthread_mutex_lock(&host->lock);
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
        host->ran++;
        pthread_mutex_unlock(&host->lock);

        work(arg);

        pthread_mutex_lock(&host->lock);
    }
    pthread_mutex_unlock(&host->lock);
    return NULL;
}

static bool loop_start(loop *host)
{
    memset(host, 0, sizeof *host);
    pthread_mutex_init(&host->lock, NULL);
    pthread_cond_init(&host->wake, NULL);
    return CHECK(pthread_create(&host->thread, NULL, loop_run, host) == 0);
}

/* Runs what is still posted, then ends the loop thread.  Work items that
 * run after dfm_runner_destroy must do nothing. */
static void loop_stop(loop *host)
{
    pthread_mutex_lock(&host->lock);
    host->quit = true;
    pthread_cond_signal(&host->wake);
    pthread_mutex_unlock(&host->lock);
    pthread_join(host->thread, NULL);
    pthread_mutex_destroy(&host->lock);
    pthread_cond_destroy(&host->wake);
    free(host->work);
    free(host->arg);
}

/* ---- Configurations -------------------------------------------------- */

typedef enum runner_kind {
    KIND_MANUAL,
    KIND_MANUAL_ASYNC,
    KIND_DIRECT,
    KIND_EXECUTOR
} runner_kind;

typedef enum wake_style {
    WAKE_YIELD,    /* poll the queue, yielding in between */
    WAKE_FD,       /* wait on the runner's wake fd */
    WAKE_NOTIFY    /* wait for the notify callback */
} wake_style;

typedef struct configuration {
    const char *name;
    runner_kind kind;
    size_t capacity;
    dfm_overflow overflow;
    uint64_t block_timeout_ns;
    wake_style wake;
} configuration;

static const configuration configurations[] = {
    { "manual unbounded", KIND_MANUAL, 0, DFM_OVERFLOW_FAIL, 0, WAKE_FD },
    { "manual fail/1024", KIND_MANUAL, BOUNDED_CAPACITY, DFM_OVERFLOW_FAIL,
      0, WAKE_NOTIFY },
    { "manual block/1024", KIND_MANUAL, BOUNDED_CAPACITY,
      DFM_OVERFLOW_BLOCK, 0, WAKE_FD },
    { "manual block/1024 2ms", KIND_MANUAL, BOUNDED_CAPACITY,
      DFM_OVERFLOW_BLOCK, 2000000, WAKE_YIELD },
    { "manual drop-oldest/1024", KIND_MANUAL, BOUNDED_CAPACITY,
      DFM_OVERFLOW_DROP_OLDEST, 0, WAKE_NOTIFY },
    { "manual async unbounded", KIND_MANUAL_ASYNC, 0, DFM_OVERFLOW_FAIL, 0,
      WAKE_FD },
    { "direct", KIND_DIRECT, 0, DFM_OVERFLOW_FAIL, 0, WAKE_YIELD },
    { "executor", KIND_EXECUTOR, 0, DFM_OVERFLOW_FAIL, 0, WAKE_YIELD }
};

#define CONFIGURATION_COUNT \
    (sizeof configurations / sizeof configurations[0])

/* ---- Producers ------------------------------------------------------- */

typedef struct producer {
    dfm_runner *runner;
    const configuration *config;
    size_t index;
    char site[32];
    uint64_t random;
    uint64_t accepted;          /* tokens the runner took */
    uint64_t accepted_objects;
    uint64_t checksum;          /* of the accepted tokens */
    uint64_t batches;
    uint64_t refused_full;      /* tokens refused with QUEUE_FULL */
    uint64_t refused_timed_out; /* tokens refused with TIMED_OUT */
    uint64_t refused_no_memory; /* tokens refused at the hard limit */
    uint64_t unexpected;        /* any other status */
    int last_unexpected;
    uint64_t wrong_refusals;    /* a refusal this runner must not give */
    int last_wrong_refusal;
    token_storage storage[MAX_BATCH];
    dfm_token batch[MAX_BATCH];
} producer;

static int finished_producers;

static uint64_t next_random(uint64_t *state)
{
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return *state;
}

/* Mostly 1 to 64 tokens, now and then up to MAX_BATCH (still well under
 * the bounded capacity, so a batch always fits eventually). */
static size_t batch_size(producer *self)
{
    uint64_t r = next_random(&self->random);

    if (r % 50 == 0)
        return 1 + (size_t)((r >> 8) % MAX_BATCH);
    return 1 + (size_t)((r >> 8) % 64);
}

/* The refusals a configuration may give.  A producer offers a refused
 * batch again; a refusal that does not belong to the configuration (a
 * full queue that has no capacity, a timeout that was never set) is
 * counted as wrong, and still retried so that the run can end. */
static bool refusal_allowed(const configuration *config, int status)
{
    switch (status) {
    case DFM_ERR_QUEUE_FULL:
        return config->capacity > 0
               && config->overflow == DFM_OVERFLOW_FAIL;
    case DFM_ERR_TIMED_OUT:
        return config->capacity > 0
               && config->overflow == DFM_OVERFLOW_BLOCK
               && config->block_timeout_ns > 0;
    case DFM_ERR_NO_MEMORY:
        /* The hard limit of pending tokens of an unbounded queue. */
        return config->capacity == 0;
    default:
        return false;
    }
}

static void *produce(void *argument)
{
    producer *self = (producer *)argument;
    uint64_t next = 0;

    while (next < tokens_per_producer) {
        size_t count = batch_size(self);
        size_t i;
        int status;

        if (count > tokens_per_producer - next)
            count = (size_t)(tokens_per_producer - next);
        for (i = 0; i < count; i++)
            token_build(&self->batch[i], &self->storage[i], self->site,
                        self->index, next + i);

        /* A refused batch is still ours: offer the same one again. */
        for (;;) {
            status = dfm_runner_dispatch(self->runner, self->batch, count);
            if ((status == DFM_ERR_QUEUE_FULL || status == DFM_ERR_TIMED_OUT
                 || status == DFM_ERR_NO_MEMORY)
                && !refusal_allowed(self->config, status)) {
                self->wrong_refusals++;
                self->last_wrong_refusal = status;
            }
            if (status == DFM_ERR_QUEUE_FULL) {
                self->refused_full += count;
                sched_yield();
            } else if (status == DFM_ERR_TIMED_OUT) {
                self->refused_timed_out += count;
            } else if (status == DFM_ERR_NO_MEMORY) {
                self->refused_no_memory += count;
                sleep_ms(1);
            } else {
                break;
            }
        }

        if (status == DFM_OK || status == DFM_ERR_CALLBACK_FAILED) {
            for (i = 0; i < count; i++) {
                uint64_t hash = token_hash(self->index, next + i);

                self->checksum += token_checksum(self->index, next + i);
                if (kind_of(hash) == DFM_VALUE_OBJECT)
                    self->accepted_objects++;
            }
            self->accepted += count;
        } else {
            self->unexpected++;
            self->last_unexpected = status;
        }
        self->batches++;
        next += count;
    }
    __atomic_add_fetch(&finished_producers, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

static bool producers_finished(void)
{
    return (size_t)__atomic_load_n(&finished_producers, __ATOMIC_SEQ_CST)
           == producer_count;
}

/* ---- Consumers ------------------------------------------------------- */

typedef struct notifier {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    uint64_t calls;
    bool signalled;
} notifier;

static void notify_consumer(void *context)
{
    notifier *self = (notifier *)context;

    pthread_mutex_lock(&self->lock);
    self->calls++;
    self->signalled = true;
    pthread_cond_signal(&self->wake);
    pthread_mutex_unlock(&self->lock);
}

/* Waits up to 10 ms for a reason to pump. */
static void consumer_wait(dfm_runner *runner, wake_style wake,
                          notifier *notes)
{
    if (wake == WAKE_FD && dfm_runner_wake_fd(runner) >= 0) {
        struct pollfd poller;

        poller.fd = dfm_runner_wake_fd(runner);
        poller.events = POLLIN;
        poller.revents = 0;
        (void)poll(&poller, 1, 10);
    } else if (wake == WAKE_NOTIFY) {
        struct timespec until;

        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 10000000;
        if (until.tv_nsec >= 1000000000) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000;
        }
        pthread_mutex_lock(&notes->lock);
        while (!notes->signalled) {
            if (pthread_cond_timedwait(&notes->wake, &notes->lock, &until)
                != 0)
                break;
        }
        notes->signalled = false;
        pthread_mutex_unlock(&notes->lock);
    } else {
        sched_yield();
    }
}

typedef struct pump_counts {
    uint64_t pumps;
    uint64_t unexpected;       /* a pump status other than OK/FAILED */
    int last_unexpected;
    bool stalled;
} pump_counts;

static void pump_status(pump_counts *counts, int status)
{
    counts->pumps++;
    if (status != DFM_OK && status != DFM_ERR_CALLBACK_FAILED) {
        counts->unexpected++;
        counts->last_unexpected = status;
    }
}

/* Pumps a sync manual runner on this thread, with whole pumps and budget
 * pumps of random sizes, until the producers are done and the queue is
 * empty. */
static void consume_sync(dfm_runner *runner, const configuration *config,
                         notifier *notes, tally *seen, pump_counts *counts)
{
    uint64_t random = run_seed | 1;
    uint64_t last_seen = 0;
    uint64_t progress_at = now_ns();

    for (;;) {
        bool finished = producers_finished();
        uint64_t r = next_random(&random);
        uint64_t current;

        if (r % 4 == 0) {
            pump_status(counts, dfm_process_pending(runner));
        } else {
            dfm_pump_result result;

            memset(&result, 0, sizeof result);
            pump_status(counts, dfm_process_pending_budget(
                                    runner, 1 + (size_t)(r >> 8) % 4096,
                                    r % 3 == 0 ? 200000 : 0, &result));
        }
        if (finished && !dfm_has_pending(runner))
            return;

        current = __atomic_load_n(&seen->seen, __ATOMIC_RELAXED);
        if (current != last_seen || !finished) {
            last_seen = current;
            progress_at = now_ns();
        } else if (now_ns() - progress_at > STALL_NS) {
            counts->stalled = true;
            return;
        }
        if (!dfm_has_pending(runner))
            consumer_wait(runner, config->wake, notes);
    }
}

static uint64_t total_accepted(const producer *producers)
{
    uint64_t total = 0;
    size_t i;

    for (i = 0; i < producer_count; i++)
        total += producers[i].accepted;
    return total;
}

/* Waits until the callbacks have seen every accepted token: pumping an
 * async manual runner on this thread, or watching an executor's loop. */
static void consume_async(dfm_runner *runner, const configuration *config,
                          producer *producers, tally *seen,
                          pump_counts *counts)
{
    uint64_t last_seen = 0;
    uint64_t progress_at = now_ns();

    for (;;) {
        bool finished = producers_finished();
        uint64_t current;

        if (config->kind == KIND_MANUAL_ASYNC)
            pump_status(counts, dfm_process_pending_async(runner));

        current = __atomic_load_n(&seen->seen, __ATOMIC_SEQ_CST);
        if (finished && current == total_accepted(producers)) {
            dfm_stats stats;

            /* The last completion may still be on its way: wait until
             * the runner has counted it too. */
            memset(&stats, 0, sizeof stats);
            (void)dfm_runner_stats(runner, &stats);
            if (stats.delivered + stats.failed == current)
                return;
        }
        if (current != last_seen || !finished) {
            last_seen = current;
            progress_at = now_ns();
        } else if (now_ns() - progress_at > STALL_NS) {
            counts->stalled = true;
            return;
        }
        if (config->kind == KIND_MANUAL_ASYNC)
            consumer_wait(runner, config->wake, NULL);
        else
            sleep_ms(1);
    }
}

/* ---- One run of one configuration ------------------------------------ */

typedef struct run_totals {
    uint64_t runs;
    uint64_t pushed;
    uint64_t delivered;
    uint64_t failed;
    uint64_t discarded;
    uint64_t refused;
    uint64_t objects;
    uint64_t objects_released_once;
    uint64_t leaked;
    uint64_t released_twice;
    uint64_t bad_tokens;
    double seconds;
} run_totals;

static run_totals grand_totals;
static run_totals configuration_totals[CONFIGURATION_COUNT];

static dfm_runner *make_runner(const configuration *config, tally *seen,
                               async_context contexts[3], notifier *notes,
                               loop *host)
{
    dfm_callbacks *set = dfm_callbacks_create();
    dfm_dispatcher *dispatcher = NULL;
    dfm_runner *runner = NULL;
    dfm_manual_options options;
    dfm_executor executor;
    bool async = config->kind == KIND_MANUAL_ASYNC
                 || config->kind == KIND_EXECUTOR;

    if (!CHECK(set != NULL))
        return NULL;
    if (async) {
        CHECK_STATUS(dfm_callbacks_set_default_async(set, on_async,
                                                     &contexts[0]),
                     DFM_OK);
        CHECK_STATUS(dfm_callbacks_add_place_async(set, "yield", on_async,
                                                   &contexts[1]),
                     DFM_OK);
        CHECK_STATUS(dfm_callbacks_add_place_async(set, "_dfm_status_",
                                                   on_async, &contexts[2]),
                     DFM_OK);
    } else {
        CHECK_STATUS(dfm_callbacks_set_default(set, on_default, seen),
                     DFM_OK);
        CHECK_STATUS(dfm_callbacks_add_place(set, "yield", on_yield, seen),
                     DFM_OK);
        CHECK_STATUS(dfm_callbacks_add_place(set, "_dfm_status_", on_status,
                                             seen),
                     DFM_OK);
    }
    CHECK_STATUS(dfm_callbacks_set_error_handler(set, tally_error, seen),
                 DFM_OK);

    switch (config->kind) {
    case KIND_MANUAL:
    case KIND_MANUAL_ASYNC:
        dfm_manual_options_init(&options);
        options.capacity = config->capacity;
        options.overflow = config->overflow;
        options.block_timeout_ns = config->block_timeout_ns;
        options.use_wake_fd = config->wake == WAKE_FD;
        if (config->wake == WAKE_NOTIFY) {
            options.notify = notify_consumer;
            options.notify_context = notes;
        }
        dispatcher = dfm_manual_dispatcher_create(&options);
        break;
    case KIND_DIRECT:
        dispatcher = dfm_direct_dispatcher_create();
        break;
    case KIND_EXECUTOR:
        executor.post = loop_post;
        executor.context = host;
        dispatcher = dfm_executor_dispatcher_create(executor);
        break;
    }
    if (CHECK(dispatcher != NULL))
        CHECK_STATUS(dfm_dispatcher_create_runner(dispatcher, set, &runner),
                     DFM_OK);
    dfm_dispatcher_destroy(dispatcher);
    dfm_callbacks_destroy(set);
    return runner;
}

/* Counts each OBJECT payload's releases: exactly one for every accepted
 * token, none for any other. */
static void count_releases(const producer *producers, run_totals *totals)
{
    size_t p;
    uint64_t s;

    for (p = 0; p < producer_count; p++) {
        for (s = 0; s < tokens_per_producer; s++) {
            bool object = kind_of(token_hash(p, s)) == DFM_VALUE_OBJECT;
            uint8_t count = releases_of(p, s);

            if (!object) {
                if (count != 0)
                    totals->released_twice++;
                continue;
            }
            totals->objects++;
            if (count == 1)
                totals->objects_released_once++;
            else if (count == 0)
                totals->leaked++;
            else
                totals->released_twice++;
        }
    }
    (void)producers;
}

static void run_configuration(size_t which, unsigned round)
{
    const configuration *config = &configurations[which];
    producer *producers;
    pthread_t threads[MAX_PRODUCERS];
    tally *seen;
    async_context contexts[3];
    completer helper;
    notifier notes;
    loop host;
    pump_counts counts;
    dfm_runner *runner;
    dfm_stats stats;
    run_totals totals;
    uint64_t started;
    uint64_t accepted = 0;
    uint64_t accepted_objects = 0;
    uint64_t expected_checksum = 0;
    uint64_t refused_full = 0;
    uint64_t refused_timed_out = 0;
    uint64_t refused_no_memory = 0;
    uint64_t unexpected = 0;
    uint64_t wrong_refusals = 0;
    uint64_t releases_before;
    double seconds;
    size_t i;
    bool async = config->kind == KIND_MANUAL_ASYNC
                 || config->kind == KIND_EXECUTOR;

    check_test_name = config->name;
    current_name = config->name;
    memset(&totals, 0, sizeof totals);
    memset(&counts, 0, sizeof counts);
    memset(&notes, 0, sizeof notes);
    pthread_mutex_init(&notes.lock, NULL);
    pthread_cond_init(&notes.wake, NULL);
    producers = (producer *)calloc(producer_count, sizeof *producers);
    seen = (tally *)calloc(1, sizeof *seen);
    if (!CHECK(producers != NULL && seen != NULL))
        exit(EXIT_FAILURE);
    for (i = 0; i < MAX_PRODUCERS; i++)
        seen->last[i] = -1;
    seen->gaps_allowed = config->overflow == DFM_OVERFLOW_DROP_OLDEST;
    for (i = 0; i < producer_count; i++) {
        memset(release_counters[i], 0, (size_t)tokens_per_producer);
        producers[i].index = i;
        producers[i].random = mix64(run_seed + i + 1000 * (uint64_t)round)
                              | 1;
        snprintf(producers[i].site, sizeof producers[i].site,
                 "producer-%zu", i);
    }
    releases_before = __atomic_load_n(&object_releases, __ATOMIC_SEQ_CST);

    if (async && !completer_start(&helper))
        exit(EXIT_FAILURE);
    if (config->kind == KIND_EXECUTOR && !loop_start(&host))
        exit(EXIT_FAILURE);
    for (i = 0; i < 3; i++) {
        contexts[i].seen = seen;
        contexts[i].helper = &helper;
        contexts[i].route = (int)i;
    }
    runner = make_runner(config, seen, contexts, &notes, &host);
    if (runner == NULL)
        exit(EXIT_FAILURE);

    /* The consumer (this thread) owns a manual runner from the start. */
    if (config->kind == KIND_MANUAL)
        CHECK_STATUS(dfm_process_pending(runner), DFM_OK);
    else if (config->kind == KIND_MANUAL_ASYNC)
        CHECK_STATUS(dfm_process_pending_async(runner), DFM_OK);

    started = now_ns();
    __atomic_store_n(&finished_producers, 0, __ATOMIC_SEQ_CST);
    for (i = 0; i < producer_count; i++) {
        producers[i].runner = runner;
        producers[i].config = config;
        if (!CHECK(pthread_create(&threads[i], NULL, produce, &producers[i])
                   == 0))
            exit(EXIT_FAILURE);
    }
    if (config->kind == KIND_MANUAL)
        consume_sync(runner, config, &notes, seen, &counts);
    else if (async)
        consume_async(runner, config, producers, seen, &counts);

    /* A stuck run still has to end: stopping wakes blocked producers. */
    if (counts.stalled)
        (void)dfm_runner_stop(runner, DFM_STOP_DRAIN);
    for (i = 0; i < producer_count; i++)
        pthread_join(threads[i], NULL);
    seconds = (double)(now_ns() - started) / 1e9;

    memset(&stats, 0, sizeof stats);
    CHECK_STATUS(dfm_runner_stats(runner, &stats), DFM_OK);
    CHECK_STATUS(dfm_runner_stop(runner, DFM_STOP_DRAIN), DFM_OK);
    dfm_runner_destroy(runner);
    if (config->kind == KIND_EXECUTOR)
        loop_stop(&host);
    if (async)
        completer_stop(&helper);

    for (i = 0; i < producer_count; i++) {
        accepted += producers[i].accepted;
        accepted_objects += producers[i].accepted_objects;
        expected_checksum += producers[i].checksum;
        refused_full += producers[i].refused_full;
        refused_timed_out += producers[i].refused_timed_out;
        refused_no_memory += producers[i].refused_no_memory;
        unexpected += producers[i].unexpected;
        wrong_refusals += producers[i].wrong_refusals;
        if (producers[i].wrong_refusals > 0)
            fprintf(stderr, "%s: producer %zu: %" PRIu64
                    " batches refused with %s, which this runner must not"
                    " answer (\"%s\")\n", config->name, i,
                    producers[i].wrong_refusals,
                    dfm_status_name(producers[i].last_wrong_refusal),
                    dfm_strerror(producers[i].last_wrong_refusal));
        if (producers[i].unexpected > 0)
            fprintf(stderr, "%s: producer %zu: %" PRIu64
                    " batches refused with %s\n", config->name, i,
                    producers[i].unexpected,
                    dfm_status_name(producers[i].last_unexpected));
    }
    count_releases(producers, &totals);

    /* Every token: pushed, accepted, then seen by a callback or (drop
     * oldest only) discarded. */
    CHECK(!counts.stalled);
    CHECK_EQ(unexpected, 0);
    CHECK_EQ(wrong_refusals, 0);
    CHECK_EQ(counts.unexpected, 0);
    if (counts.unexpected > 0)
        fprintf(stderr, "%s: pumps returned %s\n", config->name,
                dfm_status_name(counts.last_unexpected));
    CHECK_EQ(accepted, (uint64_t)producer_count * tokens_per_producer);
    CHECK_EQ(stats.dispatched, accepted);
    CHECK_EQ(stats.delivered, seen->succeeded);
    CHECK_EQ(stats.failed, seen->failed);
    CHECK_EQ(stats.dropped, 0);
    CHECK_EQ(stats.pending, 0);
    CHECK(stats_balance(&stats));
    if (config->overflow == DFM_OVERFLOW_DROP_OLDEST) {
        CHECK_EQ(seen->seen + stats.discarded, accepted);
    } else {
        CHECK_EQ(seen->seen, accepted);
        CHECK_EQ(stats.discarded, 0);
        CHECK(seen->checksum == expected_checksum);
    }
    if (refused_no_memory == 0)
        CHECK_EQ(stats.rejected, refused_full + refused_timed_out);
    else
        CHECK(stats.rejected >= refused_full + refused_timed_out);
    if (config->capacity > 0)
        CHECK(stats.pending_high_water <= config->capacity);
    if (config->overflow == DFM_OVERFLOW_BLOCK
        && config->block_timeout_ns == 0)
        CHECK_EQ(refused_timed_out + refused_full, 0);

    /* What the callbacks saw of each token. */
    CHECK_EQ(seen->corrupt, 0);
    CHECK_EQ(seen->order_errors, 0);
    CHECK_EQ(seen->route_errors, 0);
    CHECK_EQ(seen->released_early, 0);
    CHECK_EQ(seen->overlaps, 0);
    CHECK_EQ(seen->errors_reported, seen->failed);
    CHECK_EQ(seen->errors_unexpected, 0);

    /* Every accepted OBJECT payload released once, after its callback or
     * when discarded; nothing else released at all. */
    CHECK_EQ(totals.objects, accepted_objects);
    CHECK_EQ(totals.objects_released_once, accepted_objects);
    CHECK_EQ(totals.leaked, 0);
    CHECK_EQ(totals.released_twice, 0);
    CHECK_EQ(__atomic_load_n(&object_releases, __ATOMIC_SEQ_CST)
                 - releases_before,
             accepted_objects);

    totals.runs = 1;
    totals.pushed = accepted;
    totals.delivered = seen->succeeded;
    totals.failed = seen->failed;
    totals.discarded = stats.discarded;
    totals.refused = refused_full + refused_timed_out + refused_no_memory;
    totals.bad_tokens = seen->corrupt + seen->order_errors
                        + seen->route_errors + seen->released_early;
    totals.seconds = seconds;

    printf("%-24s %2zu x %-8" PRIu64 " %6.2f s %5.2f M/s  delivered %"
           PRIu64 ", failed %" PRIu64 ", discarded %" PRIu64
           ", retried (full %" PRIu64 ", timed out %" PRIu64
           ", at limit %" PRIu64 "), objects %" PRIu64
           " released once: %s\n",
           config->name, producer_count, tokens_per_producer, seconds,
           (double)accepted / seconds / 1e6, totals.delivered,
           totals.failed, totals.discarded, refused_full, refused_timed_out,
           refused_no_memory, totals.objects,
           totals.leaked == 0 && totals.released_twice == 0
               && totals.objects_released_once == accepted_objects
               ? "yes" : "NO");
    fflush(stdout);

    configuration_totals[which].runs++;
    configuration_totals[which].pushed += totals.pushed;
    configuration_totals[which].delivered += totals.delivered;
    configuration_totals[which].failed += totals.failed;
    configuration_totals[which].discarded += totals.discarded;
    configuration_totals[which].refused += totals.refused;
    configuration_totals[which].objects += totals.objects;
    configuration_totals[which].objects_released_once +=
        totals.objects_released_once;
    configuration_totals[which].leaked += totals.leaked;
    configuration_totals[which].released_twice += totals.released_twice;
    configuration_totals[which].bad_tokens += totals.bad_tokens;
    configuration_totals[which].seconds += totals.seconds;

    pthread_mutex_destroy(&notes.lock);
    pthread_cond_destroy(&notes.wake);
    free(producers);
    free(seen);
    check_test_name = "";
}

/* ---- Main ------------------------------------------------------------ */

static void usage(const char *program)
{
    fprintf(stderr,
            "usage: %s [--short | --soak SECONDS] [--producers N] "
            "[--tokens N] [--only TEXT] [--seed N]\n"
            "  --short        %zu x 50000 tokens per configuration\n"
            "  --soak S       repeat every configuration for S seconds\n"
            "  --producers N  producer threads (1 to %d; default 8)\n"
            "  --tokens N     tokens per producer (default 1000000)\n"
            "  --only TEXT    only configurations whose name has TEXT\n"
            "  --seed N       the seed of batch sizes and token contents\n",
            program, producer_count, MAX_PRODUCERS);
}

static bool parse_arguments(int argc, char **argv)
{
    bool tokens_given = false;
    bool short_mode = false;
    int i;

    for (i = 1; i < argc; i++) {
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;

        if (strcmp(argv[i], "--short") == 0) {
            short_mode = true;
            continue;
        }
        if (value == NULL)
            return false;
        if (strcmp(argv[i], "--soak") == 0)
            soak_seconds = atof(value);
        else if (strcmp(argv[i], "--producers") == 0)
            producer_count = (size_t)strtoul(value, NULL, 10);
        else if (strcmp(argv[i], "--tokens") == 0) {
            tokens_per_producer = strtoull(value, NULL, 10);
            tokens_given = true;
        } else if (strcmp(argv[i], "--only") == 0)
            only_configuration = value;
        else if (strcmp(argv[i], "--seed") == 0)
            run_seed = strtoull(value, NULL, 0);
        else
            return false;
        i++;
    }

    /* A soak round is shorter than a full run, so that rounds turn over
     * (each round starts fresh runners and new random batches). */
    if (!tokens_given && short_mode)
        tokens_per_producer = 50000;
    else if (!tokens_given && soak_seconds > 0)
        tokens_per_producer = 200000;
    return producer_count >= 1 && producer_count <= MAX_PRODUCERS
           && tokens_per_producer >= 1 && tokens_per_producer <= INT64_MAX
           && soak_seconds >= 0;
}

static bool selected(size_t which)
{
    return only_configuration == NULL
           || strstr(configurations[which].name, only_configuration)
                  != NULL;
}

static void print_soak_summary(double elapsed, unsigned rounds)
{
    run_totals all;
    size_t i;

    memset(&all, 0, sizeof all);
    printf("\nsoak summary: %u rounds in %.0f s, %zu producers x %" PRIu64
           " tokens per run, seed %#" PRIx64 "\n", rounds, elapsed,
           producer_count, tokens_per_producer, run_seed);
    printf("%-24s %5s %12s %12s %10s %10s %10s %11s %7s %7s\n",
           "configuration", "runs", "pushed", "delivered", "failed",
           "discarded", "refused", "objects", "leaked", "twice");
    for (i = 0; i < CONFIGURATION_COUNT; i++) {
        const run_totals *t = &configuration_totals[i];

        if (t->runs == 0)
            continue;
        printf("%-24s %5" PRIu64 " %12" PRIu64 " %12" PRIu64 " %10" PRIu64
               " %10" PRIu64 " %10" PRIu64 " %11" PRIu64 " %7" PRIu64
               " %7" PRIu64 "\n", configurations[i].name, t->runs,
               t->pushed, t->delivered, t->failed, t->discarded, t->refused,
               t->objects, t->leaked, t->released_twice);
        all.runs += t->runs;
        all.pushed += t->pushed;
        all.delivered += t->delivered;
        all.failed += t->failed;
        all.discarded += t->discarded;
        all.refused += t->refused;
        all.objects += t->objects;
        all.leaked += t->leaked;
        all.released_twice += t->released_twice;
        all.bad_tokens += t->bad_tokens;
    }
    printf("%-24s %5" PRIu64 " %12" PRIu64 " %12" PRIu64 " %10" PRIu64
           " %10" PRIu64 " %10" PRIu64 " %11" PRIu64 " %7" PRIu64 " %7"
           PRIu64 "\n", "total", all.runs, all.pushed, all.delivered,
           all.failed, all.discarded, all.refused, all.objects, all.leaked,
           all.released_twice);
    printf("bad tokens (corrupt, out of order, misrouted, released "
           "early): %" PRIu64 "\n", all.bad_tokens);
    grand_totals = all;
}

int main(int argc, char **argv)
{
    uint64_t started = now_ns();
    unsigned round = 0;
    size_t i;

    if (!parse_arguments(argc, argv)) {
        usage(argv[0]);
        return 2;
    }
    for (i = 0; i < producer_count; i++) {
        release_counters[i] = (uint8_t *)malloc((size_t)tokens_per_producer);
        if (release_counters[i] == NULL) {
            fprintf(stderr, "stress: out of memory\n");
            return 2;
        }
    }
    printf("stress: %zu producers x %" PRIu64 " tokens per configuration%s,"
           " seed %#" PRIx64 ", library %s\n", producer_count,
           tokens_per_producer, soak_seconds > 0 ? " per round" : "",
           run_seed, dfm_version_string());
    fflush(stdout);

    do {
        round++;
        if (soak_seconds > 0)
            printf("-- round %u\n", round);
        for (i = 0; i < CONFIGURATION_COUNT; i++) {
            if (selected(i))
                run_configuration(i, round);
        }
    } while (soak_seconds > 0
             && (double)(now_ns() - started) / 1e9 < soak_seconds
             && check_fail_count == 0);

    if (soak_seconds > 0)
        print_soak_summary((double)(now_ns() - started) / 1e9, round);
    for (i = 0; i < producer_count; i++)
        free(release_counters[i]);
    return check_summary();
}
