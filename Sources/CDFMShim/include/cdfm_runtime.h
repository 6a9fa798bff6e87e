/*
 * cdfm_runtime.h - the pieces of the runtime that Swift cannot express
 * directly: thread-local state, a monotonic clock in nanoseconds, the wake
 * eventfd and a condition variable that waits on CLOCK_MONOTONIC.
 *
 * Internal to libdfmdispatch: every symbol is cdfm_-prefixed and hidden.
 */
#ifndef CDFM_RUNTIME_H
#define CDFM_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Thread-local state ---------------------------------------------- */

/* The calling thread's last error message (dfm_last_error); "" when this
 * thread has had no failing call.  Messages longer than the buffer are cut
 * at a UTF-8 character boundary. */
const char *cdfm_last_error(void);
void cdfm_set_last_error(const char *message);

/* The runner whose callbacks this thread is running now, or NULL.  A pump
 * sets it around each callback so that a nested pump of the same runner is
 * answered with DFM_ERR_BUSY and a destroy from a callback is deferred. */
extern __thread void *cdfm_current_runner
    __attribute__((tls_model("initial-exec")));

static inline void *cdfm_get_current_runner(void) {
    return cdfm_current_runner;
}

static inline void cdfm_set_current_runner(void *runner) {
    cdfm_current_runner = runner;
}

/* A per-thread scratch buffer for messages built on a failure path (the
 * shaped-call mismatch text), so the hot path never allocates. */
#define CDFM_MESSAGE_CAPACITY 256
char *cdfm_message_buffer(void);

/* A small integer that names the calling thread for the life of the
 * process (never reused, never 0).  Inline: the pumps check it on every
 * call. */
extern __thread uint64_t cdfm_this_thread_id
    __attribute__((tls_model("initial-exec")));
uint64_t cdfm_assign_thread_id(void);

static inline uint64_t cdfm_thread_id(void) {
    uint64_t id = cdfm_this_thread_id;
    return id != 0 ? id : cdfm_assign_thread_id();
}

/* ---- Time ------------------------------------------------------------- */

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t cdfm_now_ns(void);

/* ---- Wake fd ---------------------------------------------------------- */

/* A non-blocking, close-on-exec eventfd, or -1 with errno set. */
int cdfm_wake_fd_create(void);
/* Makes the fd readable; never blocks. */
void cdfm_wake_fd_signal(int fd);
/* Makes the fd unreadable again; never blocks. */
void cdfm_wake_fd_reset(int fd);
void cdfm_wake_fd_close(int fd);

/* ---- Waiting ---------------------------------------------------------- */

/* A mutex and a condition variable on CLOCK_MONOTONIC, for producers that
 * wait for room in a bounded queue.  Heap-allocated so that its address is
 * stable for Swift. */
typedef struct cdfm_waiter cdfm_waiter;

cdfm_waiter *cdfm_waiter_create(void);
void cdfm_waiter_destroy(cdfm_waiter *waiter);
void cdfm_waiter_lock(cdfm_waiter *waiter);
void cdfm_waiter_unlock(cdfm_waiter *waiter);
/* Waits (the lock held) until signalled or until the absolute monotonic
 * deadline (0 = no deadline).  Returns false when the deadline passed. */
bool cdfm_waiter_wait(cdfm_waiter *waiter, uint64_t deadline_ns);
void cdfm_waiter_broadcast(cdfm_waiter *waiter);

#ifdef __cplusplus
}
#endif

#endif /* CDFM_RUNTIME_H */
