/*
 * dfmdispatch.h - deliver pipeline results from worker threads to the
 * host's own thread.
 *
 * A data pipeline produces its results on threads the host does not own:
 * a job's receive thread, a network poller, a compute pool.  dfmdispatch
 * carries each result from there to the callback the host registered for
 * it, on the thread and at the moment the host chooses: at once, once per
 * frame on the host's main thread, or on the host's event loop.  The
 * library is written in Swift and exported to C as libdfmdispatch.so.
 *
 * This header is the whole public C interface of libdfmdispatch, and its
 * manual.  Anything that is not declared here is not part of the API: it
 * may change or disappear in any release.
 *
 *
 * ==== Introduction ========================================================
 *
 * Objects
 *
 *   token          One result (dfm_token): the site that produced it, the
 *                  pipeline node, the loop frame, the place it was yielded
 *                  to and the value.  A plain struct, not a handle.
 *   callbacks set  The host's callbacks for a job (dfm_callbacks): one per
 *                  place, a default for every other place, and an error
 *                  handler.  A runner takes only an all-sync or an
 *                  all-async set.
 *   dispatcher     Decides where and when callbacks run (dfm_dispatcher):
 *                  direct, manual or executor.  One dispatcher usually
 *                  serves every job of a session.
 *   runner         One job's end of a dispatcher (dfm_runner).  Worker
 *                  threads hand it batches of tokens; it routes each token
 *                  to its callback and counts what happened.
 *   completion     The handle an async callback receives and hands to
 *                  dfm_complete when its work is done (dfm_completion).
 *
 * The three dispatchers
 *
 *   direct    The callback runs at once, on the thread that dispatches,
 *             before dfm_runner_dispatch returns.  Sync callbacks only.
 *   manual    Tokens are queued.  The host delivers them on a thread of
 *             its choosing, usually its main thread once per frame, by
 *             calling a pump: dfm_process_pending and its variants.  Sync
 *             or async callbacks.
 *   executor  Tokens are handed to the host's event loop (a libuv loop, a
 *             GLib context, a Kit update stream) through a post function
 *             and run there, in order.  Async callbacks only.
 *
 * Life-cycle
 *
 *   1. Create a callbacks set (dfm_callbacks_create) and register the
 *      callbacks: dfm_callbacks_add_place, dfm_callbacks_set_default, their
 *      _async variants, dfm_callbacks_add_shaped, and optionally
 *      dfm_callbacks_set_error_handler.
 *   2. Create a dispatcher: dfm_direct_dispatcher_create,
 *      dfm_manual_dispatcher_create or dfm_executor_dispatcher_create.
 *   3. Create a runner per job: dfm_dispatcher_create_runner.  The runner
 *      copies the set, which may then be changed or destroyed.
 *   4. Optionally start the runner: dfm_runner_start.  A runner accepts
 *      tokens from its creation; start is the job's hook.
 *   5. Dispatch from worker threads: dfm_runner_dispatch.
 *   6. Deliver.  A manual runner is pumped on the host thread, typically
 *      once per frame (dfm_process_pending, dfm_process_pending_async or
 *      dfm_process_pending_budget).  A direct runner has already delivered
 *      inside dfm_runner_dispatch; an executor runner delivers on the
 *      host's loop by itself.
 *   7. Stop: dfm_runner_stop with DFM_STOP_DRAIN (what is queued may still
 *      be delivered) or DFM_STOP_DISCARD (what is queued is released, not
 *      delivered).  Later dispatches get DFM_ERR_CLOSED.
 *   8. Destroy: dfm_runner_destroy, dfm_dispatcher_destroy and
 *      dfm_callbacks_destroy, in any order; a dispatcher may be destroyed
 *      while its runners live on.
 *
 * Example: a manual runner pumped once per frame
 *
 *     static int on_yield(const dfm_token *token, void *user_data)
 *     {
 *         (void)user_data;
 *         if (token->data.kind == DFM_VALUE_DOUBLE)
 *             plot_point(token->source_site, token->data.as.real);
 *         return 0;
 *     }
 *
 *     dfm_callbacks *set = dfm_callbacks_create();
 *     dfm_dispatcher *manual = dfm_manual_dispatcher_create(NULL);
 *     dfm_runner *runner = NULL;
 *
 *     if (dfm_callbacks_add_place(set, "yield", on_yield, NULL) != DFM_OK
 *         || dfm_dispatcher_create_runner(manual, set, &runner) != DFM_OK)
 *         fail(dfm_last_error());
 *     dfm_callbacks_destroy(set);
 *     submit_job(runner);
 *
 *     while (begin_frame()) {
 *         dfm_process_pending(runner);
 *         draw_frame();
 *     }
 *
 *     dfm_runner_stop(runner, DFM_STOP_DISCARD);
 *     join_job_threads();
 *     dfm_runner_destroy(runner);
 *     dfm_dispatcher_destroy(manual);
 *
 *   The job's worker threads call dfm_runner_dispatch(runner, tokens, n)
 *   for each batch they receive.  Each dfm_process_pending delivers what
 *   was queued when it was called, so it ends however fast the workers
 *   produce; dfm_process_pending_budget also bounds its time.
 *
 * Threads
 *
 *   Every function may be called from any thread, with these exceptions:
 *
 *   - The pumps (dfm_process_pending, dfm_process_pending_async and
 *     dfm_process_pending_budget) run on a manual runner's owner thread:
 *     the first thread that pumps it.  Any other thread gets
 *     DFM_ERR_WRONG_THREAD; a pump from inside one of the same runner's
 *     callbacks gets DFM_ERR_BUSY.
 *   - A destroy function must not race with other calls on the same
 *     object.  To retire a runner that workers still feed: stop it, let
 *     the workers see DFM_ERR_CLOSED (or join them), then destroy it.
 *   - A callbacks set is not meant to be shared: do not change one set
 *     from two threads at once, nor while a runner is being created from
 *     it.
 *
 *   dfm_runner_dispatch is safe from any number of threads at once.
 *   Where the callbacks run:
 *
 *   direct    On the dispatching thread, inside dfm_runner_dispatch.  When
 *             several threads dispatch at once, their callbacks run at
 *             once: direct callbacks must be thread-safe.
 *   manual    On the owner thread, inside a pump.  dfm_runner_dispatch
 *             never runs a callback of a manual runner.
 *   executor  On the host's loop, inside the work items the runner posts
 *             with dfm_executor.post.  The runner never blocks the loop
 *             and never pumps it.
 *
 *   A runner's error handler runs where its callbacks run.  A runner
 *   delivers tokens in the order it accepted them.  Async callbacks run
 *   one at a time per runner: the next starts only after the previous one
 *   called dfm_complete, and never inside dfm_complete.
 *
 *   A callback (or the error handler) may dispatch to any runner,
 *   including its own, and may stop or destroy its own runner without
 *   deadlock; a runner destroyed there is freed when the pump (or the
 *   direct dispatch) unwinds.  It may not pump its own runner.
 *
 * Queues, wake-ups and stopping
 *
 *   - A pump delivers a snapshot: the tokens that were pending when it was
 *     called.  Tokens dispatched meanwhile, also by its own callbacks,
 *     wait for the next pump, so a callback that dispatches cannot starve
 *     the frame.  dfm_process_pending_budget also bounds a pump by a token
 *     count and a time.
 *   - A manual runner's queue is unbounded by default: only memory and a hard
 *     limit bound it (see dfm_manual_options.capacity).  With a capacity it
 *     refuses, waits or drops the oldest tokens (dfm_overflow); a batch is
 *     accepted whole or not at all.  A dispatch that would wait on the
 *     runner's owner thread is refused at once with DFM_ERR_WRONG_THREAD,
 *     never a deadlock.
 *   - A wake-up is not a token.  notify runs once each time a manual runner's
 *     queue goes from empty to non-empty, and the wake fd is readable while
 *     tokens are pending; the pumps reset it.  Neither floods, and a missed or
 *     unread wake-up loses nothing: the tokens stay queued until a pump takes
 *     them.  For an async runner, they also say when a completion makes
 *     dfm_process_pending_async worth calling.
 *   - A stopped runner, of any kind, stays stopped: every later dispatch
 *     gets DFM_ERR_CLOSED and leaves its payloads with the caller.
 *
 * Ownership
 *
 *   - dfm_runner_dispatch copies everything a token points to (strings,
 *     bytes, frame levels) before it returns; the caller may reuse its
 *     buffers at once.
 *   - An OBJECT payload is not copied.  Its ownership moves to the runner
 *     when, and only when, the call accepts the batch: it returns DFM_OK,
 *     or DFM_ERR_CALLBACK_FAILED from a direct runner whose callbacks have
 *     run.  A call that fails in any other way enqueues nothing and leaves
 *     every payload with the caller.
 *   - The runner calls release(pointer) exactly once for each OBJECT token
 *     it accepted: after the token's callback has returned (async: after
 *     dfm_complete), or when the token is discarded (drop-oldest,
 *     DFM_STOP_DISCARD, destroy) or dropped because no callback matches.
 *     release may run on any thread that calls into the runner: make it
 *     thread-safe.
 *   - The token a callback receives, and all it points to, is valid only
 *     during that call (async: until the callback calls dfm_complete).
 *     Copy what you keep.  Its OBJECT payload still belongs to the runner:
 *     use it, do not release it.
 *   - Strings the library returns belong to the library; never free them.
 *   - The library never frees the host's user_data and context pointers.
 *     Those a runner may pass back (its set's, notify_context, the
 *     executor's context) must stay valid until the runner is destroyed
 *     and its last async callback has completed.
 *   - Every create has a destroy, and every destroy accepts NULL.
 *
 * Errors
 *
 *   A function that can fail returns a dfm_status: DFM_OK (0), or a code
 *   saying why.  A create function that returns a handle returns NULL on
 *   failure.  dfm_last_error() then gives the detail (which function,
 *   argument, place, token index or shape column) from the calling thread's
 *   own storage.  Successful calls leave it untouched, so read it right
 *   after the failure; the text stays valid until the thread's next failing
 *   call.  No function aborts, asserts or prints on bad input.
 *
 *   A failing callback does not stop delivery: the error handler receives
 *   the token and the reason, the runner counts it as failed, delivers
 *   the other tokens, and the pump (or the direct dispatch) then returns
 *   DFM_ERR_CALLBACK_FAILED.
 *
 * Versions
 *
 *   DFM_VERSION_* describe this header; dfm_version() and
 *   dfm_version_string() describe the library loaded at run time.
 *   Releases with the same major version are ABI compatible: a program
 *   built against version X.Y runs with library X.Z for any Z >= Y.  The
 *   numbers of status codes and enum values are pinned forever.  New
 *   status codes may be added in later releases, so treat any status you
 *   do not know as a failure.  To check at start-up:
 *
 *     if (dfm_version() / 10000 != DFM_VERSION_MAJOR
 *         || dfm_version() / 100 % 100 < DFM_VERSION_MINOR)
 *         fail("libdfmdispatch does not match this program");
 */
#ifndef DFMDISPATCH_H
#define DFMDISPATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * DFM_API marks the functions the library exports: default visibility on
 * GCC and Clang; on Windows, dllexport when DFM_BUILDING_LIBRARY is
 * defined (building the library) and dllimport otherwise.
 */
#if defined(_WIN32)
#  if defined(DFM_BUILDING_LIBRARY)
#    define DFM_API __declspec(dllexport)
#  else
#    define DFM_API __declspec(dllimport)
#  endif
#elif defined(__GNUC__) || defined(__clang__)
#  define DFM_API __attribute__((visibility("default")))
#else
#  define DFM_API
#endif

/* ---- Versions --------------------------------------------------------- */

/*
 * The version of this header.  DFM_VERSION_NUMBER is
 * MAJOR * 10000 + MINOR * 100 + PATCH (100 for 0.1.0), so versions compare
 * as integers; DFM_VERSION_STRING is "MAJOR.MINOR.PATCH".  Same major
 * version, same ABI (see "Versions" above).
 *
 * Since 0.1.0.
 */
#define DFM_VERSION_MAJOR 0
#define DFM_VERSION_MINOR 1
#define DFM_VERSION_PATCH 0
#define DFM_VERSION_NUMBER \
    (DFM_VERSION_MAJOR * 10000 + DFM_VERSION_MINOR * 100 + DFM_VERSION_PATCH)
#define DFM_VERSION_STRING "0.1.0"

/*
 * dfm_version - the version of the library loaded at run time.
 *
 * Returns   The library's DFM_VERSION_NUMBER, e.g. 100 for 0.1.0.  Compare
 *           it with the header's to catch a program that runs with
 *           another library than it was built against.  Never fails.
 * Threads   Any thread.
 * Since     0.1.0
 */
DFM_API unsigned dfm_version(void);

/*
 * dfm_version_string - the library's version as text, e.g. "0.1.0".
 *
 * Returns   "MAJOR.MINOR.PATCH" of the library loaded at run time: static
 *           storage, never NULL, never to be freed.  Never fails.
 * Threads   Any thread.
 * Since     0.1.0
 */
DFM_API const char *dfm_version_string(void);

/* ---- Status codes ----------------------------------------------------- */

/*
 * dfm_status - what a call did.
 *
 * DFM_OK is 0 and every other code is a failure.  The numbers are pinned
 * forever: a code is never renumbered, reused or removed.  Later releases
 * may add codes, so treat any code you do not know as a failure.  The
 * codes reach the host as the result of the calls and as the int status
 * of dfm_error_handler.  Each entry below lists the codes it returns and
 * when; dfm_last_error() has the detail of the last failure.
 *
 * Since 0.1.0.
 */
typedef enum dfm_status {
    /* Success. */
    DFM_OK = 0,
    /* A NULL handle, bad UTF-8, a malformed token or a bad option. */
    DFM_ERR_INVALID_ARGUMENT = 1,
    /* Sync and async callbacks in one set. */
    DFM_ERR_MIXED_CALLBACKS = 2,
    /* The dispatcher or the pump does not accept this callback kind. */
    DFM_ERR_WRONG_KIND = 3,
    /* The runner is stopped; nothing was enqueued. */
    DFM_ERR_CLOSED = 4,
    /* A bounded queue is full; nothing was enqueued. */
    DFM_ERR_QUEUE_FULL = 5,
    /* Allocation failed; nothing was enqueued. */
    DFM_ERR_NO_MEMORY = 6,
    /* A callback shape string was rejected. */
    DFM_ERR_BAD_SHAPE = 7,
    /* A token does not fit the shape its callback declared. */
    DFM_ERR_TYPE_MISMATCH = 8,
    /* One or more callbacks reported failure; the others still ran. */
    DFM_ERR_CALLBACK_FAILED = 9,
    /* A pump off the runner's owner thread, or a blocking dispatch on it. */
    DFM_ERR_WRONG_THREAD = 10,
    /* A pump called from inside one of the same runner's callbacks. */
    DFM_ERR_BUSY = 11,
    /* A blocking dispatch waited past its timeout; nothing was enqueued. */
    DFM_ERR_TIMED_OUT = 12
} dfm_status;

/*
 * dfm_status_name - the name of a status code, e.g. "DFM_ERR_QUEUE_FULL".
 *
 * status    Any int.  A code this library does not know gets one fixed
 *           text that says the status is unknown.
 *
 * Returns   Static storage: never NULL, never to be freed.  Never fails
 *           and leaves dfm_last_error() as it was.
 * Threads   Any thread.
 * Since     0.1.0
 */
DFM_API const char *dfm_status_name(int status);

/*
 * dfm_strerror - a sentence that explains a status code.
 *
 * status    Any int.  A code this library does not know gets one fixed
 *           text that says the status is unknown.
 *
 * Returns   Static storage: never NULL, never to be freed.  Never fails
 *           and leaves dfm_last_error() as it was.  For the detail of a
 *           particular failure, use dfm_last_error().
 * Threads   Any thread.
 * Since     0.1.0
 */
DFM_API const char *dfm_strerror(int status);

/*
 * dfm_last_error - the detail of the calling thread's last failing call.
 *
 * Returns   The message of the most recent failing dfm_ call on this
 *           thread, naming the function, the argument, the place, the
 *           token index and the numbers involved, e.g.
 *           "dfm_runner_dispatch: token 3: target_place is not valid
 *           UTF-8 (byte 0xff at offset 2)".  "" on a thread that has had
 *           no failure.  Never NULL.
 *
 *           Successful calls leave the message untouched, so read it
 *           right after the call that failed; a stale message says
 *           nothing about the last call.  The text is at most 511 bytes,
 *           belongs to the library and stays valid until this thread's
 *           next failing dfm_ call: copy it to keep it.
 * Threads   Any thread; each thread has its own message.
 * Since     0.1.0
 */
DFM_API const char *dfm_last_error(void);

/* ---- The token -------------------------------------------------------- */

/*
 * A token is one result of a pipeline, as a worker thread hands it to
 * dfm_runner_dispatch and as a callback receives it.  It is a plain
 * struct that the host fills in (dispatching) or reads (receiving); see
 * dfm_token for what makes one well formed.
 *
 * The library gives no place a special meaning: "_dfm_status_" and
 * "_dfm_discovery_" are ordinary places, routed like any other.  The
 * pipeline uses them this way:
 *
 *   - A value the pipeline yields goes to the Yield's place ("yield" by
 *     default) with the node that produced it (DFM_NODE_NONE for a
 *     literal) and the frame of its loop iteration.
 *   - When input frame [i] has completed, a STOP token with frame [i] and
 *     no node goes to "_dfm_status_".  When the whole stream has ended, a
 *     last STOP token goes there with the stop frame.
 *   - When an operation fails, an ERROR token (the report in as.text)
 *     goes to the user's place for that frame, and "_dfm_status_" gets an
 *     ERROR token instead of the STOP token for that frame.  A failure of
 *     the whole run reaches "_dfm_status_" as an ERROR token with the stop
 *     frame.
 *   - "_dfm_discovery_" receives the results of discovery-mode pipelines.
 *
 * So a callback tells control from data by data.kind (DFM_VALUE_STOP,
 * DFM_VALUE_ERROR) and frame.is_stop, not by an exception or a status.
 */

/*
 * dfm_node_kind - how a token names the pipeline node that produced it.
 *
 * Since 0.1.0.
 */
typedef enum dfm_node_kind {
    /* No node: a literal value, a stop or error token, and the like. */
    DFM_NODE_NONE = 0,
    /* A node numbered by the pipeline compiler: dfm_node.id. */
    DFM_NODE_INT = 1,
    /* A node with a well-known, user-chosen name: dfm_node.name. */
    DFM_NODE_NAME = 2
} dfm_node_kind;

/*
 * dfm_node - the pipeline node whose value a token carries.
 *
 * Since 0.1.0.
 */
typedef struct dfm_node {
    /* Which of id and name is meaningful; an unknown kind is refused. */
    dfm_node_kind kind;
    /* The node's number, for DFM_NODE_INT; ignored otherwise. */
    int64_t id;
    /* The node's name, for DFM_NODE_NAME: non-NULL, NUL-terminated UTF-8.
     * Ignored (and may be NULL) for the other kinds. */
    const char *name;
} dfm_node;

/*
 * dfm_frame - the loop-iteration stack a token belongs to.
 *
 * [i] is input parameter set i; [i, j] is iteration j of a loop inside
 * it, and so on, outermost first.  The stop frame marks the end of the
 * whole stream: is_stop is true and it has no levels.  Two frames are
 * equal when both are stop frames or when their levels are equal; frames
 * have no order.
 *
 * Since 0.1.0.
 */
typedef struct dfm_frame {
    /* The depth loop counters, outermost first.  Must be non-NULL when
     * depth > 0; in a token a callback receives, NULL when depth is 0. */
    const int64_t *levels;
    /* The number of levels; 0 for the stop frame. */
    size_t depth;
    /* True for the stop frame, which must have depth 0. */
    bool is_stop;
} dfm_frame;

/*
 * dfm_value_kind - what a token's data holds, and in which member of
 * dfm_value.as.
 *
 * Since 0.1.0.
 */
typedef enum dfm_value_kind {
    /* No value; as is unused. */
    DFM_VALUE_NONE = 0,
    /* as.boolean. */
    DFM_VALUE_BOOL = 1,
    /* as.integer, a 64-bit signed integer. */
    DFM_VALUE_INT = 2,
    /* as.real, a double. */
    DFM_VALUE_DOUBLE = 3,
    /* as.text: UTF-8 text. */
    DFM_VALUE_STRING = 4,
    /* as.bytes: a byte string. */
    DFM_VALUE_BYTES = 5,
    /* as.text: JSON text (UTF-8). */
    DFM_VALUE_JSON = 6,
    /* as.object: a host object, moved, not copied (see "Ownership"). */
    DFM_VALUE_OBJECT = 7,
    /* A stop token: a frame, or with the stop frame the whole stream, has
     * ended; as is unused. */
    DFM_VALUE_STOP = 8,
    /* An error report; as.text holds it (UTF-8). */
    DFM_VALUE_ERROR = 9
} dfm_value_kind;

/*
 * dfm_value - the value a token carries: a kind and the member of as that
 * the kind names (see dfm_value_kind).
 *
 * Since 0.1.0.
 */
typedef struct dfm_value {
    /* Which member of as holds the value; an unknown kind is refused. */
    dfm_value_kind kind;
    union {
        /* DFM_VALUE_BOOL. */
        bool boolean;
        /* DFM_VALUE_INT. */
        int64_t integer;
        /* DFM_VALUE_DOUBLE. */
        double real;
        /* DFM_VALUE_STRING, DFM_VALUE_JSON and DFM_VALUE_ERROR: valid UTF-8
         * of length bytes, which may contain NUL bytes.  data may be NULL
         * only when length is 0.  In a token a callback receives, data is
         * NUL-terminated too (the terminator is not counted in length). */
        struct {
            /* The first byte of the text. */
            const char *data;
            /* The number of bytes, without a terminator. */
            size_t length;
        } text;
        /* DFM_VALUE_BYTES: length bytes of any value.  data may be NULL
         * only when length is 0. */
        struct {
            /* The first byte. */
            const void *data;
            /* The number of bytes. */
            size_t length;
        } bytes;
        /* DFM_VALUE_OBJECT: a host object that is passed on, not copied.
         * The runner owns it once it accepts the token and then calls
         * release(pointer) exactly once (see "Ownership"). */
        struct {
            /* The object, given to the callback as it is. */
            void *pointer;
            /* Frees the object; may run on any thread that calls into the
             * runner.  NULL: nothing to release. */
            void (*release)(void *pointer);
        } object;
    } as;
} dfm_value;

/*
 * dfm_token - one result of a pipeline.
 *
 * A well-formed token has non-NULL, NUL-terminated, valid UTF-8
 * source_site and target_place; a well-formed source_node, frame and data
 * (see their types); and known kinds.  dfm_runner_dispatch refuses a
 * batch that holds any other token with DFM_ERR_INVALID_ARGUMENT, and
 * dfm_last_error() names the token's index and the field.
 *
 * A token a callback receives is well formed, its strings are
 * NUL-terminated, and it is valid only during the call (async: until
 * dfm_complete).
 *
 * Since 0.1.0.
 */
typedef struct dfm_token {
    /* The site that produced the value, e.g. "site1" (UTF-8). */
    const char *source_site;
    /* The pipeline node whose value this is; DFM_NODE_NONE when none. */
    dfm_node source_node;
    /* The loop iteration the value belongs to, or the stop frame. */
    dfm_frame frame;
    /* The place the value was yielded to, e.g. "yield" (UTF-8).  It picks
     * the callback. */
    const char *target_place;
    /* The value itself. */
    dfm_value data;
} dfm_token;

/* ---- Callbacks -------------------------------------------------------- */

/*
 * A callbacks set (dfm_callbacks) holds a job's callbacks: one per place,
 * an optional default for every other place, and an optional error
 * handler.  For each token, a runner calls the callback of the token's
 * target_place if one is registered, else the default callback, else it
 * drops the token (counted as dropped; an OBJECT payload is released).
 *
 * There are three ways to write a callback:
 *
 *   sync    dfm_callback: does the work and returns 0, or non-zero for a
 *           failure.  Direct and manual runners.
 *   shaped  an existing C function of the host's own signature, called
 *           through libffi (dfm_callbacks_add_shaped).  Counts as sync.
 *   async   dfm_async_callback: starts the work and returns; the work ends
 *           with dfm_complete.  Executor and manual runners.
 *
 * A set that mixes sync and async callbacks may be built, but no
 * dispatcher accepts it (DFM_ERR_MIXED_CALLBACKS).  A runner copies the
 * set when it is created; changing or destroying the set later does not
 * affect that runner.
 */
typedef struct dfm_callbacks dfm_callbacks;

/*
 * dfm_completion - the handle an async callback receives, to be passed
 * to dfm_complete exactly once.  It is not a pointer the library
 * dereferences: a stale or reused handle never crashes.
 *
 * Since 0.1.0.
 */
typedef struct dfm_completion dfm_completion;

/*
 * dfm_callback - a sync callback.
 *
 * token      The token, valid only during the call (see dfm_token).
 * user_data  The pointer given at registration, as it was given.
 *
 * Returns 0 for success.  Any other value is a failure: the runner's
 * error handler receives the token and DFM_ERR_CALLBACK_FAILED (the
 * returned value is in the message), the runner counts it as failed and
 * goes on with the other tokens, and the pump (or, for a direct runner,
 * dfm_runner_dispatch) returns DFM_ERR_CALLBACK_FAILED.
 *
 * Runs on the dispatching thread (direct) or on the owner thread inside a
 * pump (manual).  It may dispatch to any runner, and stop or destroy its
 * own runner; it may not pump its own runner (DFM_ERR_BUSY).
 *
 * Since 0.1.0.
 */
typedef int (*dfm_callback)(const dfm_token *token, void *user_data);

/*
 * dfm_async_callback - an async callback.
 *
 * token       The token.  It and everything it points to, the OBJECT
 *             payload included, stay valid until dfm_complete is called.
 * completion  The handle to pass to dfm_complete, exactly once, when the
 *             work is done: from any thread, even before the callback
 *             returns.
 * user_data   The pointer given at registration, as it was given.
 *
 * The runner starts the callback for its next token only after this one
 * has completed.  A non-zero status given to dfm_complete is a failure,
 * reported through the error handler and counted as failed.
 *
 * Runs on the executor's loop, inside a work item (executor), or on the
 * owner thread inside dfm_process_pending_async (manual).  It should
 * start the work and return: while it runs, that loop or thread waits.
 *
 * Since 0.1.0.
 */
typedef void (*dfm_async_callback)(const dfm_token *token,
                                   dfm_completion *completion,
                                   void *user_data);

/*
 * dfm_error_handler - receives each failure of a runner's callbacks.
 *
 * token    The token whose callback failed, valid only during the call;
 *          NULL when the failure has no token (a second dfm_complete).
 * status   DFM_ERR_CALLBACK_FAILED (a callback returned non-zero or
 *          completed with a non-zero status), DFM_ERR_TYPE_MISMATCH (the
 *          token did not fit a shaped callback, which was not called), or
 *          DFM_ERR_INVALID_ARGUMENT (a second dfm_complete for one
 *          completion).  Later releases may add codes.
 * message  A sentence with the detail, e.g. the value the callback
 *          returned; valid only during the call.
 * context  The pointer given to dfm_callbacks_set_error_handler.
 *
 * Runs where the runner's callbacks run, never inside dfm_complete.  It
 * may call what a callback may call.  Without an error handler, failures
 * are only counted and returned.
 *
 * Since 0.1.0.
 */
typedef void (*dfm_error_handler)(const dfm_token *token, int status,
                                  const char *message, void *context);

/*
 * dfm_kind - the kind of a callbacks set, as dfm_callbacks_kind reports
 * it.
 *
 * Since 0.1.0.
 */
typedef enum dfm_kind {
    /* No callbacks at all: every token is dropped.  Any dispatcher. */
    DFM_CALLBACKS_NONE = 0,
    /* Sync and shaped callbacks only.  Direct and manual dispatchers. */
    DFM_CALLBACKS_SYNC = 1,
    /* Async callbacks only.  Executor and manual dispatchers. */
    DFM_CALLBACKS_ASYNC = 2
} dfm_kind;

/*
 * dfm_complete - end the work of an async callback.
 * Method of dfm_completion.
 *
 * completion  The handle the callback received.  NULL is ignored.
 * status      0 for success; any other value is a failure, reported to
 *             the error handler and counted as failed.
 *
 * Call it exactly once per async callback.  Until then the token and its
 * payload stay valid; after it, the runner releases the payload and
 * moves to the next token.  None of that happens inside dfm_complete: a
 * manual runner does it at the next dfm_process_pending_async on its
 * owner thread (notify and the wake fd say when that is worth calling),
 * an executor runner in a work item it posts now (so post may be called
 * from this thread).  One exception: if the runner was destroyed while
 * the callback was in flight, dfm_complete releases the payload itself
 * and frees what is left of the runner.
 *
 * A second dfm_complete for the same completion is ignored, counted as
 * failed, reported to the error handler with a NULL token and
 * DFM_ERR_INVALID_ARGUMENT, and leaves a message in the calling thread's
 * dfm_last_error().  It never crashes.
 *
 * Threads   Any thread, including from inside the callback itself.
 * Since     0.1.0
 */
DFM_API void dfm_complete(dfm_completion *completion, int status);

/*
 * dfm_callbacks_create - create an empty callbacks set.
 * Constructor of dfm_callbacks.
 *
 * Returns   A new set with no callbacks and no error handler (kind
 *           DFM_CALLBACKS_NONE), or NULL when out of memory, with the
 *           reason in dfm_last_error().  Free it with
 *           dfm_callbacks_destroy.
 * Threads   Any thread.
 * Since     0.1.0
 */
DFM_API dfm_callbacks *dfm_callbacks_create(void);

/*
 * dfm_callbacks_destroy - free a callbacks set.
 * Destructor of dfm_callbacks.
 *
 * set       The set; NULL does nothing.
 *
 * Runners created from the set keep their own copies and are not
 * affected.  user_data and context pointers are not freed.
 *
 * Threads   Any thread, but not while another call uses the set.
 * Since     0.1.0
 */
DFM_API void dfm_callbacks_destroy(dfm_callbacks *set);

/*
 * dfm_callbacks_set_default - set the sync callback for places that
 * have no callback of their own.
 * Method of dfm_callbacks.
 *
 * set        The set.  NULL: DFM_ERR_INVALID_ARGUMENT.
 * callback   The callback.  NULL: DFM_ERR_INVALID_ARGUMENT.
 * user_data  Passed to every call of callback; may be NULL.  Never freed.
 *
 * Replaces any earlier default of any kind.  Only runners created after
 * this call see it.
 *
 * Returns   DFM_OK                    the default is set
 *           DFM_ERR_INVALID_ARGUMENT  set or callback is NULL
 *           DFM_ERR_NO_MEMORY         allocation failed; set unchanged
 * Threads   Any thread, one at a time per set.
 * Since     0.1.0
 */
DFM_API dfm_status dfm_callbacks_set_default(dfm_callbacks *set,
                                             dfm_callback callback,
                                             void *user_data);

/*
 * dfm_callbacks_set_default_async - set the async callback for places
 * that have no callback of their own.
 * Method of dfm_callbacks.
 *
 * set        The set.  NULL: DFM_ERR_INVALID_ARGUMENT.
 * callback   The async callback.  NULL: DFM_ERR_INVALID_ARGUMENT.
 * user_data  Passed to every call of callback; may be NULL.  Never freed.
 *
 * Replaces any earlier default of any kind.  A set that holds both sync
 * and async callbacks when a runner is created from it is refused then,
 * by dfm_dispatcher_create_runner.
 *
 * Returns   DFM_OK                    the default is set
 *           DFM_ERR_INVALID_ARGUMENT  set or callback is NULL
 *           DFM_ERR_NO_MEMORY         allocation failed; set unchanged
 * Threads   Any thread, one at a time per set.
 * Since     0.1.0
 */
DFM_API dfm_status dfm_callbacks_set_default_async(
    dfm_callbacks *set, dfm_async_callback callback, void *user_data);

/*
 * dfm_callbacks_add_place - register the sync callback for one place.
 * Method of dfm_callbacks.
 *
 * set        The set.  NULL: DFM_ERR_INVALID_ARGUMENT.
 * place      The place name, NUL-terminated UTF-8, e.g. "yield" or
 *            "_dfm_status_"; copied.  NULL or bad UTF-8:
 *            DFM_ERR_INVALID_ARGUMENT.
 * callback   The callback.  NULL: DFM_ERR_INVALID_ARGUMENT.
 * user_data  Passed to every call of callback; may be NULL.  Never freed.
 *
 * Registering a place again replaces its earlier callback, of any kind.
 *
 * Returns   DFM_OK                    the callback is registered
 *           DFM_ERR_INVALID_ARGUMENT  set, place or callback is NULL, or
 *                                     place is not valid UTF-8
 *           DFM_ERR_NO_MEMORY         allocation failed; set unchanged
 * Threads   Any thread, one at a time per set.
 * Since     0.1.0
 */
DFM_API dfm_status dfm_callbacks_add_place(dfm_callbacks *set,
                                           const char *place,
                                           dfm_callback callback,
                                           void *user_data);

/*
 * dfm_callbacks_add_place_async - register the async callback for one
 * place.
 * Method of dfm_callbacks.
 *
 * set        The set.  NULL: DFM_ERR_INVALID_ARGUMENT.
 * place      The place name, NUL-terminated UTF-8; copied.  NULL or bad
 *            UTF-8: DFM_ERR_INVALID_ARGUMENT.
 * callback   The async callback.  NULL: DFM_ERR_INVALID_ARGUMENT.
 * user_data  Passed to every call of callback; may be NULL.  Never freed.
 *
 * Registering a place again replaces its earlier callback, of any kind.
 *
 * Returns   DFM_OK                    the callback is registered
 *           DFM_ERR_INVALID_ARGUMENT  set, place or callback is NULL, or
 *                                     place is not valid UTF-8
 *           DFM_ERR_NO_MEMORY         allocation failed; set unchanged
 * Threads   Any thread, one at a time per set.
 * Since     0.1.0
 */
DFM_API dfm_status dfm_callbacks_add_place_async(dfm_callbacks *set,
                                                 const char *place,
                                                 dfm_async_callback callback,
                                                 void *user_data);

/*
 * dfm_callbacks_add_shaped - register an existing C function, of the
 * host's own signature, as a place's callback or as the default.
 * Method of dfm_callbacks.
 *
 * set        The set.  NULL: DFM_ERR_INVALID_ARGUMENT.
 * place      The place name, NUL-terminated UTF-8, copied; or NULL to make
 *            the function the default callback.
 * function   The function, cast to void (*)(void).  NULL:
 *            DFM_ERR_INVALID_ARGUMENT.  Its real signature must match
 *            shape; the library cannot check that.
 * shape      What the function returns and takes, in order (below).
 *            NULL: DFM_ERR_INVALID_ARGUMENT.
 * user_data  Passed where the shape says "user"; may be NULL.
 *
 * The shape grammar (white space between tokens is allowed):
 *
 *     shape  = ret "(" [ args ] ")"
 *     ret    = "void" | "int"
 *     args   = arg { "," arg } [ "," "..." { "," arg } ]
 *
 *     arg            C type passed
 *     site, place    const char *
 *     node           const dfm_node *
 *     node.int       int64_t                 (an INT node)
 *     node.name      const char *            (a NAME node)
 *     frame          const dfm_frame *
 *     frame.levels   const int64_t *
 *     frame.depth    size_t
 *     data           const dfm_value *
 *     data.bool      bool                    (BOOL)
 *     data.int       int64_t                 (INT)
 *     data.double    double                  (DOUBLE or INT)
 *     data.string    const char *            (STRING, JSON or ERROR;
 *                                             NUL-terminated)
 *     data.bytes     const void *, size_t    (two arguments)
 *     data.object    void *
 *     token          const dfm_token *
 *     user           void *                  (user_data)
 *
 * Arguments after "..." are passed as the variadic arguments of a
 * variadic function, so printf itself can be registered:
 *
 *     dfm_callbacks_add_shaped(set, NULL, (void (*)(void))printf,
 *                              "void(user, ..., place, data.int)",
 *                              "%s=%lld\n");
 *
 * The shape is parsed and the call prepared once, here.  A shaped callback
 * counts as sync.  An "int" function reports failure by returning non-zero,
 * as a dfm_callback does; a "void" one succeeds whenever it is called.  A
 * token whose node or data does not fit the shape (data.double but a STRING
 * value, node.name but no node) is not passed to the function: the error
 * handler receives DFM_ERR_TYPE_MISMATCH, the token is counted as failed,
 * and the pump (or the direct dispatch) returns DFM_ERR_CALLBACK_FAILED.
 * Pointers passed to the function, data.object's included, are valid only
 * during the call; the runner still releases the object afterwards.
 *
 * Registering a place (or the default) again replaces its earlier
 * callback, of any kind.
 *
 * Returns   DFM_OK                    the function is registered
 *           DFM_ERR_INVALID_ARGUMENT  set, function or shape is NULL, or
 *                                     place is not valid UTF-8
 *           DFM_ERR_BAD_SHAPE         shape was rejected; the column is
 *                                     in dfm_last_error()
 *           DFM_ERR_NO_MEMORY         allocation failed; set unchanged
 * Threads   Any thread, one at a time per set.
 * Since     0.1.0
 */
DFM_API dfm_status dfm_callbacks_add_shaped(dfm_callbacks *set,
                                            const char *place,
                                            void (*function)(void),
                                            const char *shape,
                                            void *user_data);

/*
 * dfm_callbacks_set_error_handler - set the function that receives the
 * failures of the callbacks.
 * Method of dfm_callbacks.
 *
 * set       The set.  NULL: DFM_ERR_INVALID_ARGUMENT.
 * handler   The error handler (see dfm_error_handler); replaces any
 *           earlier one.  NULL removes the handler.
 * context   Passed to every call of handler; may be NULL.  Never freed.
 *
 * Returns   DFM_OK                    the handler is set or removed
 *           DFM_ERR_INVALID_ARGUMENT  set is NULL
 *           DFM_ERR_NO_MEMORY         allocation failed; set unchanged
 * Threads   Any thread, one at a time per set.
 * Since     0.1.0
 */
DFM_API dfm_status dfm_callbacks_set_error_handler(dfm_callbacks *set,
                                                   dfm_error_handler handler,
                                                   void *context);

/*
 * dfm_callbacks_kind - tell whether a set is empty, sync or async.
 * Method of dfm_callbacks.
 *
 * set       The set.  NULL: DFM_ERR_INVALID_ARGUMENT.
 * out       Receives the kind on DFM_OK.  NULL: DFM_ERR_INVALID_ARGUMENT.
 *
 * Shaped callbacks count as sync.
 *
 * Returns   DFM_OK                    *out is DFM_CALLBACKS_NONE, _SYNC or
 *                                     _ASYNC
 *           DFM_ERR_MIXED_CALLBACKS   the set holds both sync and async
 *                                     callbacks
 *           DFM_ERR_INVALID_ARGUMENT  set or out is NULL
 * Threads   Any thread, one at a time per set.
 * Since     0.1.0
 */
DFM_API dfm_status dfm_callbacks_kind(const dfm_callbacks *set,
                                      dfm_kind *out);

/* ---- Dispatchers ------------------------------------------------------ */

/*
 * A dispatcher (dfm_dispatcher) decides where and when callbacks run, and
 * creates a runner (dfm_runner) per job.  Which callback kinds each
 * accepts:
 *
 *   direct    sync or none      async: DFM_ERR_WRONG_KIND
 *   manual    sync, async or none
 *   executor  async or none     sync: DFM_ERR_WRONG_KIND
 *
 * A mixed set gets DFM_ERR_MIXED_CALLBACKS from every dispatcher.  A
 * dispatcher may be destroyed while its runners live on.
 */
typedef struct dfm_dispatcher dfm_dispatcher;
typedef struct dfm_runner dfm_runner;

/*
 * dfm_executor - the host's event loop, as an executor dispatcher sees
 * it.  Copied by dfm_executor_dispatcher_create.
 *
 * Since 0.1.0.
 */
typedef struct dfm_executor {
    /* Schedules work(arg) to run once, later, on the host's loop, and
     * returns.  Called with context: on the thread whose dispatch gave
     * an idle runner work, on a thread that calls dfm_complete, or on the
     * loop itself by a work item that leaves tokens pending.  So it must
     * be thread-safe.  Required.
     *
     * Each work item delivers at most 64 tokens and posts a new one if
     * more are pending, so the loop stays fair.  arg is a number, not a
     * pointer to memory: a work item that is never run leaks nothing, and
     * one that runs after dfm_runner_destroy does nothing. */
    void (*post)(void *context, void (*work)(void *arg), void *arg);
    /* Passed to post as it is; may be NULL.  Never freed. */
    void *context;
} dfm_executor;

/*
 * dfm_overflow - what a dispatch does when it finds a bounded manual
 * queue too full for its batch.  Capacity counts tokens, and a batch is
 * accepted whole or not at all.
 *
 * Since 0.1.0.
 */
typedef enum dfm_overflow {
    /* Refuse the batch at once with DFM_ERR_QUEUE_FULL (the default). */
    DFM_OVERFLOW_FAIL = 0,
    /* Wait for room, up to block_timeout_ns (DFM_ERR_TIMED_OUT), or until
     * the runner is stopped (DFM_ERR_CLOSED).  On the runner's owner
     * thread, the dispatch is refused at once with DFM_ERR_WRONG_THREAD
     * instead of waiting: a pump cannot run there while it waits. */
    DFM_OVERFLOW_BLOCK = 1,
    /* Make room by discarding the oldest pending tokens (released, and
     * counted as discarded).  A batch larger than the capacity is refused
     * with DFM_ERR_QUEUE_FULL. */
    DFM_OVERFLOW_DROP_OLDEST = 2
} dfm_overflow;

/*
 * dfm_manual_options - how a manual dispatcher's runners queue tokens and
 * signal them.  Fill it with dfm_manual_options_init, then change what
 * you need.  Every runner of the dispatcher gets these settings and its
 * own queue.
 *
 * Since 0.1.0.
 */
typedef struct dfm_manual_options {
    /* sizeof(dfm_manual_options), set by dfm_manual_options_init, so that
     * later releases can add fields.  An unknown size is refused. */
    size_t struct_size;
    /* The most tokens a runner may hold pending; 0 (the default) means
     * unbounded: bounded only by memory and by a hard limit of 4,190,208
     * pending tokens, past which dispatch returns DFM_ERR_NO_MEMORY. */
    size_t capacity;
    /* What a dispatch does when the queue is too full; default
     * DFM_OVERFLOW_FAIL.  An unknown value is refused. */
    dfm_overflow overflow;
    /* For DFM_OVERFLOW_BLOCK only: the longest a dispatch waits for room,
     * in nanoseconds; 0 (the default) waits as long as it takes. */
    uint64_t block_timeout_ns;
    /* Called with notify_context once each time a runner's queue goes
     * from empty to non-empty.  It runs on the thread whose dispatch made
     * the queue non-empty, or, when tokens arrived while a pump was
     * emptying the queue, on the pumping thread at the end of that pump.
     * For an async runner it also says when a completion makes
     * dfm_process_pending_async worth calling.  It must be thread-safe,
     * is never called with a lock held, should only wake the host (e.g.
     * post to its loop) and must not destroy the runner.  It does not
     * say which runner: pump all of the dispatcher's runners, or use a
     * dispatcher per job.  NULL (the default): no call. */
    void (*notify)(void *context);
    /* Passed to notify as it is; may be NULL.  Never freed. */
    void *notify_context;
    /* True: each runner has a wake fd (dfm_runner_wake_fd).  Default
     * false. */
    bool use_wake_fd;
} dfm_manual_options;

/*
 * dfm_manual_options_init - fill options with the defaults.
 *
 * options   The struct to fill; NULL does nothing.
 *
 * The defaults: struct_size = sizeof(dfm_manual_options), capacity 0
 * (unbounded), overflow DFM_OVERFLOW_FAIL, block_timeout_ns 0, notify and
 * notify_context NULL, use_wake_fd false.
 *
 * Threads   Any thread.
 * Since     0.1.0
 */
DFM_API void dfm_manual_options_init(dfm_manual_options *options);

/*
 * dfm_direct_dispatcher_create - create a dispatcher whose runners call
 * the callbacks at once, on the dispatching thread.
 * Constructor of dfm_dispatcher.
 *
 * Its runners accept sync or no callbacks.  A callback runs inside
 * dfm_runner_dispatch, on whichever thread calls it, several at once if
 * several threads dispatch at once: direct callbacks must be thread-safe.
 *
 * Returns   A new dispatcher, or NULL when out of memory, with the reason
 *           in dfm_last_error().  Free it with dfm_dispatcher_destroy.
 * Threads   Any thread.
 * Since     0.1.0
 */
DFM_API dfm_dispatcher *dfm_direct_dispatcher_create(void);

/*
 * dfm_manual_dispatcher_create - create a dispatcher whose runners queue
 * tokens until the host pumps them.
 * Constructor of dfm_dispatcher.
 *
 * options   The queue settings, read during the call only; NULL uses the
 *           defaults of dfm_manual_options_init.
 *
 * Its runners accept sync, async or no callbacks, and deliver only inside
 * a pump on their owner thread.
 *
 * Returns   A new dispatcher, or NULL on failure, with the reason in
 *           dfm_last_error(): options with an unknown struct_size or
 *           overflow, or no memory.  Free it with dfm_dispatcher_destroy.
 * Threads   Any thread.
 * Since     0.1.0
 */
DFM_API dfm_dispatcher *dfm_manual_dispatcher_create(
    const dfm_manual_options *options);

/*
 * dfm_executor_dispatcher_create - create a dispatcher whose runners
 * deliver on the host's event loop.
 * Constructor of dfm_dispatcher.
 *
 * executor  The loop's post function and its context, copied.  post must
 *           not be NULL.
 *
 * Its runners accept async or no callbacks.  A runner posts work items
 * through executor.post; the host runs each one on its loop, where the
 * callbacks run one token at a time, in order.  The runner never blocks
 * the loop and never pumps it.
 *
 * Returns   A new dispatcher, or NULL on failure, with the reason in
 *           dfm_last_error(): post is NULL, or no memory.  Free it with
 *           dfm_dispatcher_destroy.
 * Threads   Any thread.
 * Since     0.1.0
 */
DFM_API dfm_dispatcher *dfm_executor_dispatcher_create(dfm_executor executor);

/*
 * dfm_dispatcher_destroy - free a dispatcher.
 * Destructor of dfm_dispatcher.
 *
 * dispatcher  The dispatcher; NULL does nothing.
 *
 * Runners already created from it live on and work as before; destroy
 * each with dfm_runner_destroy.
 *
 * Threads   Any thread, but not while another call uses the dispatcher.
 * Since     0.1.0
 */
DFM_API void dfm_dispatcher_destroy(dfm_dispatcher *dispatcher);

/*
 * dfm_dispatcher_create_runner - create the runner for one job.
 * Method of dfm_dispatcher; constructor of dfm_runner.
 *
 * dispatcher  The dispatcher.  NULL: DFM_ERR_INVALID_ARGUMENT.
 * set         The job's callbacks, copied now; NULL means no callbacks
 *             (every token is dropped, counted and released).
 * out         Receives the new runner on DFM_OK.  NULL:
 *             DFM_ERR_INVALID_ARGUMENT.
 *
 * The runner accepts dispatches at once; dfm_runner_start is optional.
 * Free it with dfm_runner_destroy.
 *
 * Returns   DFM_OK                    *out is the new runner
 *           DFM_ERR_MIXED_CALLBACKS   set holds sync and async callbacks
 *           DFM_ERR_WRONG_KIND        the dispatcher does not accept the
 *                                     set's kind (async on direct, sync
 *                                     on executor)
 *           DFM_ERR_INVALID_ARGUMENT  dispatcher or out is NULL
 *           DFM_ERR_NO_MEMORY         allocation failed
 * Threads   Any thread.
 * Since     0.1.0
 */
DFM_API dfm_status dfm_dispatcher_create_runner(dfm_dispatcher *dispatcher,
                                                const dfm_callbacks *set,
                                                dfm_runner **out);

/* ---- Runners ---------------------------------------------------------- */

/*
 * dfm_stop_mode - what dfm_runner_stop does with the tokens still queued.
 *
 * Since 0.1.0.
 */
typedef enum dfm_stop_mode {
    /* Keep them: they can still be pumped (manual) or are still delivered
     * by the executor. */
    DFM_STOP_DRAIN = 0,
    /* Release them now, undelivered, and count them as discarded. */
    DFM_STOP_DISCARD = 1
} dfm_stop_mode;

/*
 * dfm_pump_result - what one dfm_process_pending_budget call did.  The
 * counts are disjoint and count tokens.
 *
 * Since 0.1.0.
 */
typedef struct dfm_pump_result {
    /* Tokens whose callback succeeded. */
    size_t delivered;
    /* Tokens whose callback failed, or that did not fit their shape. */
    size_t failed;
    /* Tokens still queued when the call returned. */
    size_t pending;
} dfm_pump_result;

/*
 * dfm_stats - a runner's counters since its creation.  The counts are
 * disjoint and count tokens.
 *
 * Since 0.1.0.
 */
typedef struct dfm_stats {
    /* Tokens accepted by dfm_runner_dispatch. */
    uint64_t dispatched;
    /* Tokens whose callback succeeded. */
    uint64_t delivered;
    /* Tokens whose callback failed or did not fit its shape, and second
     * dfm_complete calls. */
    uint64_t failed;
    /* Tokens with no callback to route them to (released). */
    uint64_t dropped;
    /* Tokens released undelivered: drop-oldest, DFM_STOP_DISCARD,
     * destroy. */
    uint64_t discarded;
    /* Tokens refused by dispatch: queue full, runner stopped, timed
     * out.  Not part of dispatched. */
    uint64_t rejected;
    /* Tokens queued now. */
    uint64_t pending;
    /* The most tokens ever queued at once. */
    uint64_t pending_high_water;
} dfm_stats;

/*
 * dfm_runner_start - mark the start of the runner's job.
 * Method of dfm_runner.
 *
 * runner    The runner.  NULL: DFM_ERR_INVALID_ARGUMENT.
 *
 * Optional: a runner accepts dispatches from its creation, and start is
 * the job's hook.  Starting a started runner does nothing.  A stopped
 * runner cannot be started again.
 *
 * Returns   DFM_OK                    the runner is started
 *           DFM_ERR_CLOSED            the runner has been stopped
 *           DFM_ERR_INVALID_ARGUMENT  runner is NULL
 * Threads   Any thread, also from the runner's own callbacks.
 * Since     0.1.0
 */
DFM_API dfm_status dfm_runner_start(dfm_runner *runner);

/*
 * dfm_runner_stop - close the runner to new tokens, keeping or
 * discarding the queued ones.
 * Method of dfm_runner.
 *
 * runner    The runner.  NULL: DFM_ERR_INVALID_ARGUMENT.
 * mode      DFM_STOP_DRAIN or DFM_STOP_DISCARD; another value:
 *           DFM_ERR_INVALID_ARGUMENT.
 *
 * From now on every dispatch gets DFM_ERR_CLOSED, including dispatches
 * waiting for room in a DFM_OVERFLOW_BLOCK queue, and the payloads of a
 * refused batch stay with their caller.  With DFM_STOP_DRAIN what is
 * queued can still be pumped (manual) or is still delivered (executor).
 * With DFM_STOP_DISCARD what is queued is released now, on this thread,
 * and not delivered.  An async callback already in flight still
 * completes normally.
 *
 * Stopping is idempotent and final: a stopped runner stays stopped.  A
 * DFM_STOP_DISCARD after a DFM_STOP_DRAIN still discards what is queued.
 *
 * Returns   DFM_OK                    the runner is stopped
 *           DFM_ERR_INVALID_ARGUMENT  runner is NULL or mode unknown
 * Threads   Any thread.  From one of the runner's own callbacks it does
 *           not deadlock.
 * Since     0.1.0
 */
DFM_API dfm_status dfm_runner_stop(dfm_runner *runner, dfm_stop_mode mode);

/*
 * dfm_runner_dispatch - hand a batch of tokens to a runner.
 * Method of dfm_runner.
 *
 * runner    The runner.  NULL: always DFM_ERR_INVALID_ARGUMENT.
 * tokens    An array of count well-formed tokens (see dfm_token).  May be
 *           NULL when count is 0.
 * count     The number of tokens.  0 does nothing and returns DFM_OK.
 *
 * The batch is accepted whole or refused whole.  A direct runner calls
 * the callbacks now, in order, on this thread, and returns when they
 * have run.  A manual runner queues the tokens for its pumps (and may
 * call notify); an executor runner queues them and, if it was idle,
 * posts a work item (so post may be called from this thread).
 *
 * Returns   DFM_OK                    the batch was accepted (direct: and
 *                                     every callback succeeded)
 *           DFM_ERR_CALLBACK_FAILED   direct only: the batch was accepted
 *                                     and delivered, and one or more
 *                                     callbacks failed
 *           DFM_ERR_INVALID_ARGUMENT  runner is NULL, tokens is NULL with
 *                                     count > 0, or a token is malformed
 *                                     (dfm_last_error() names it)
 *           DFM_ERR_CLOSED            the runner is stopped
 *           DFM_ERR_QUEUE_FULL        manual: the batch does not fit
 *                                     (DFM_OVERFLOW_FAIL), or is larger
 *                                     than the capacity
 *                                     (DFM_OVERFLOW_DROP_OLDEST)
 *           DFM_ERR_TIMED_OUT         manual, DFM_OVERFLOW_BLOCK: no room
 *                                     within block_timeout_ns
 *           DFM_ERR_WRONG_THREAD      manual, DFM_OVERFLOW_BLOCK: the
 *                                     batch does not fit and this is the
 *                                     runner's owner thread, where it may
 *                                     not wait
 *           DFM_ERR_NO_MEMORY         allocation failed, or the hard limit
 *                                     of pending tokens was reached
 *           Every code but DFM_OK and DFM_ERR_CALLBACK_FAILED means that
 *           nothing was enqueued or delivered.
 * Ownership Strings, bytes and frame levels are copied before the call
 *           returns.  OBJECT payloads move to the runner only with DFM_OK
 *           or DFM_ERR_CALLBACK_FAILED; after any other code they are
 *           still the caller's, to release or dispatch again.
 * Threads   Any thread, any number at once, including from any runner's
 *           callbacks.  A DFM_OVERFLOW_BLOCK dispatch may wait here.
 * Since     0.1.0
 */
DFM_API dfm_status dfm_runner_dispatch(dfm_runner *runner,
                                       const dfm_token *tokens,
                                       size_t count);

/*
 * dfm_process_pending - deliver the tokens a manual runner holds, with
 * sync callbacks, on this thread.
 * Method of dfm_runner (a pump).
 *
 * runner    A manual runner.  NULL: DFM_ERR_INVALID_ARGUMENT.
 *
 * Delivers the tokens that were pending when it was called, in dispatch
 * order, and releases their payloads.  Tokens dispatched meanwhile, also
 * by its own callbacks, wait for the next call, so a callback that
 * dispatches cannot starve the frame.  A failing callback does not stop
 * the others.  With no callbacks it just drains (drops) the tokens.  The
 * first thread that pumps a runner becomes its owner; notify may be
 * called at the end of the pump.
 *
 * Returns   DFM_OK                    no callback failed
 *           DFM_ERR_CALLBACK_FAILED   one or more callbacks failed or did
 *                                     not fit their shape; the others ran
 *           DFM_ERR_WRONG_KIND        the runner has async callbacks, or
 *                                     is a direct or executor runner
 *           DFM_ERR_WRONG_THREAD      this is not the runner's owner
 *                                     thread
 *           DFM_ERR_BUSY              called from inside one of this
 *                                     runner's callbacks
 *           DFM_ERR_INVALID_ARGUMENT  runner is NULL
 * Threads   The owner thread only.  Callbacks run on it, inside this
 *           call.
 * Since     0.1.0
 */
DFM_API dfm_status dfm_process_pending(dfm_runner *runner);

/*
 * dfm_process_pending_async - move a manual runner with async callbacks
 * forward, on this thread.
 * Method of dfm_runner (a pump).
 *
 * runner    A manual runner.  NULL: DFM_ERR_INVALID_ARGUMENT.
 *
 * The async mirror of dfm_process_pending.  One token is in flight at a
 * time: each call finishes a token whose callback has called
 * dfm_complete (its error report and payload release) and, when no
 * callback is then in flight, starts the callback of the next pending
 * token, in dispatch order.  It does not wait for completions: call it
 * again, once per frame or when notify or the wake fd says it is worth
 * it.  With no callbacks it just drains (drops) the tokens.  The first
 * thread that pumps a runner becomes its owner.
 *
 * Returns   DFM_OK                    nothing failed
 *           DFM_ERR_CALLBACK_FAILED   one or more callbacks reported
 *                                     failure; the others still ran
 *           DFM_ERR_WRONG_KIND        the runner has sync callbacks, or is
 *                                     a direct or executor runner
 *           DFM_ERR_WRONG_THREAD      this is not the runner's owner
 *                                     thread
 *           DFM_ERR_BUSY              called from inside one of this
 *                                     runner's callbacks
 *           DFM_ERR_INVALID_ARGUMENT  runner is NULL
 * Threads   The owner thread only.  Callbacks, the error handler and
 *           payload releases run on it, inside this call.
 * Since     0.1.0
 */
DFM_API dfm_status dfm_process_pending_async(dfm_runner *runner);

/*
 * dfm_process_pending_budget - dfm_process_pending within a token and
 * time budget.
 * Method of dfm_runner (a pump).
 *
 * runner      A manual runner with sync or no callbacks.  NULL:
 *             DFM_ERR_INVALID_ARGUMENT.
 * max_tokens  Stop after this many tokens; 0 is no limit.
 * max_ns      Stop once this many nanoseconds have passed; 0 is no limit.
 *             The time is checked after each callback, so one long
 *             callback can overrun it.
 * out         Receives the tokens delivered, failed and still pending; may
 *             be NULL.
 *
 * Like dfm_process_pending, it delivers from the tokens that were pending
 * when it was called, in dispatch order, and stops at whichever limit
 * comes first.  Tokens it did not reach stay queued for the next pump.
 *
 * Returns   DFM_OK, DFM_ERR_CALLBACK_FAILED, DFM_ERR_WRONG_KIND,
 *           DFM_ERR_WRONG_THREAD, DFM_ERR_BUSY and
 *           DFM_ERR_INVALID_ARGUMENT, as dfm_process_pending.
 * Threads   The owner thread only.  Callbacks run on it, inside this
 *           call.
 * Since     0.1.0
 */
DFM_API dfm_status dfm_process_pending_budget(dfm_runner *runner,
                                              size_t max_tokens,
                                              uint64_t max_ns,
                                              dfm_pump_result *out);

/*
 * dfm_has_pending - tell whether a runner has tokens queued.
 * Method of dfm_runner.
 *
 * runner    The runner; NULL gives false.
 *
 * Returns   True when tokens are queued (a manual runner's, or an executor
 *           runner's not yet handed to its callbacks).  Always false for a
 *           direct runner, which queues nothing.  Another thread may change
 *           the answer at any moment; it is a hint for the pumping thread.
 * Threads   Any thread.
 * Since     0.1.0
 */
DFM_API bool dfm_has_pending(const dfm_runner *runner);

/*
 * dfm_runner_wake_fd - a file descriptor that is readable while a manual
 * runner has tokens pending.
 * Method of dfm_runner.
 *
 * runner    The runner; NULL gives -1.
 *
 * Add it to the host's poll, epoll or select set to learn when a pump is
 * worth calling.  The pumps reset it; reading it is never required for
 * correctness, and it never floods.  For an async runner it also becomes
 * readable when a completion makes dfm_process_pending_async worth
 * calling.  The fd belongs to the runner: do not close it, and remove it
 * from your poll set before dfm_runner_destroy.
 *
 * Returns   The fd, or -1 when the dispatcher was created without
 *           use_wake_fd, or for a direct or an executor runner.
 * Threads   Any thread.
 * Since     0.1.0
 */
DFM_API int dfm_runner_wake_fd(const dfm_runner *runner);

/*
 * dfm_runner_stats - read a runner's counters.
 * Method of dfm_runner.
 *
 * runner    The runner.  NULL: DFM_ERR_INVALID_ARGUMENT.
 * out       Receives the counters (see dfm_stats).  NULL:
 *           DFM_ERR_INVALID_ARGUMENT.
 *
 * Returns   DFM_OK                    *out holds the counters
 *           DFM_ERR_INVALID_ARGUMENT  runner or out is NULL
 * Threads   Any thread.
 * Since     0.1.0
 */
DFM_API dfm_status dfm_runner_stats(const dfm_runner *runner,
                                    dfm_stats *out);

/*
 * dfm_runner_destroy - free a runner, discarding the tokens it still
 * holds.
 * Destructor of dfm_runner.
 *
 * runner    The runner; NULL does nothing.
 *
 * The queued tokens are released, not delivered, and no callback of the
 * runner starts afterwards.  The wake fd, if any, goes with the runner.
 *
 * From inside one of the runner's own callbacks it does not deadlock:
 * the runner is freed when the pump (or the direct dispatch) unwinds.
 * With an async callback in flight, the queued tokens are released at
 * once; the in-flight token stays valid until its dfm_complete, which
 * then releases its payload and frees what is left of the runner.
 *
 * Threads   Any thread, but it must not race with other calls on the
 *           same runner: stop it, let the producers see DFM_ERR_CLOSED
 *           (or join them), then destroy it.  The handle is invalid once
 *           this is called.
 * Since     0.1.0
 */
DFM_API void dfm_runner_destroy(dfm_runner *runner);

#ifdef __cplusplus
}
#endif

#endif /* DFMDISPATCH_H */
