/*
 * runtime.c - thread-local error text, thread ids, the monotonic clock, the
 * wake eventfd and the monotonic condition variable (see cdfm_runtime.h).
 */
#define _GNU_SOURCE
#include "cdfm_runtime.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define CDFM_ERROR_CAPACITY 512

static __thread char error_text[CDFM_ERROR_CAPACITY];
__thread void *cdfm_current_runner;

const char *cdfm_last_error(void) {
    return error_text;
}

void cdfm_set_last_error(const char *message) {
    size_t length;

    if (message == NULL) {
        error_text[0] = '\0';
        return;
    }
    length = strlen(message);
    if (length >= CDFM_ERROR_CAPACITY) {
        length = CDFM_ERROR_CAPACITY - 1;
        /* Do not cut a UTF-8 sequence in half: back up to a lead byte. */
        while (length > 0 && ((unsigned char)message[length] & 0xC0) == 0x80)
            length--;
    }
    memcpy(error_text, message, length);
    error_text[length] = '\0';
}

static __thread char message_buffer[CDFM_MESSAGE_CAPACITY];

char *cdfm_message_buffer(void) {
    return message_buffer;
}

static uint64_t next_thread_id = 1;
__thread uint64_t cdfm_this_thread_id;

uint64_t cdfm_assign_thread_id(void) {
    /* Relaxed: the counter only has to hand out distinct numbers. */
    cdfm_this_thread_id = __atomic_fetch_add(&next_thread_id, 1,
                                             __ATOMIC_RELAXED);
    return cdfm_this_thread_id;
}

uint64_t cdfm_now_ns(void) {
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

int cdfm_wake_fd_create(void) {
    return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
}

void cdfm_wake_fd_signal(int fd) {
    uint64_t one = 1;
    ssize_t written;

    /* EAGAIN only when the counter is at its maximum, which still leaves
     * the fd readable: nothing is lost.  EINTR is retried. */
    do {
        written = write(fd, &one, sizeof one);
    } while (written < 0 && errno == EINTR);
}

void cdfm_wake_fd_reset(int fd) {
    uint64_t count;
    ssize_t got;

    do {
        got = read(fd, &count, sizeof count);
    } while (got < 0 && errno == EINTR);
}

void cdfm_wake_fd_close(int fd) {
    if (fd >= 0)
        close(fd);
}

struct cdfm_waiter {
    pthread_mutex_t mutex;
    pthread_cond_t condition;
};

cdfm_waiter *cdfm_waiter_create(void) {
    cdfm_waiter *waiter = malloc(sizeof *waiter);
    pthread_condattr_t attributes;

    if (waiter == NULL)
        return NULL;
    pthread_mutex_init(&waiter->mutex, NULL);
    pthread_condattr_init(&attributes);
    pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC);
    pthread_cond_init(&waiter->condition, &attributes);
    pthread_condattr_destroy(&attributes);
    return waiter;
}

void cdfm_waiter_destroy(cdfm_waiter *waiter) {
    if (waiter == NULL)
        return;
    pthread_cond_destroy(&waiter->condition);
    pthread_mutex_destroy(&waiter->mutex);
    free(waiter);
}

void cdfm_waiter_lock(cdfm_waiter *waiter) {
    pthread_mutex_lock(&waiter->mutex);
}

void cdfm_waiter_unlock(cdfm_waiter *waiter) {
    pthread_mutex_unlock(&waiter->mutex);
}

bool cdfm_waiter_wait(cdfm_waiter *waiter, uint64_t deadline_ns) {
    struct timespec deadline;

    if (deadline_ns == 0) {
        pthread_cond_wait(&waiter->condition, &waiter->mutex);
        return true;
    }
    deadline.tv_sec = (time_t)(deadline_ns / 1000000000u);
    deadline.tv_nsec = (long)(deadline_ns % 1000000000u);
    return pthread_cond_timedwait(&waiter->condition, &waiter->mutex,
                                  &deadline) != ETIMEDOUT;
}

void cdfm_waiter_broadcast(cdfm_waiter *waiter) {
    pthread_cond_broadcast(&waiter->condition);
}
