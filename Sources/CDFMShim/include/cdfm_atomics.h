/*
 * cdfm_atomics.h - atomic operations on plain words in raw memory.
 *
 * Why this exists: the queue keeps its shared words (slot sequence numbers,
 * the reservation counter, the directory of segments) in memory that the
 * Swift core allocates itself, and Swift's Synchronization module only
 * offers atomics as stored properties.  These static inline wrappers over
 * the GCC/Clang __atomic builtins are imported by Swift and inlined, so they
 * cost what the builtin costs.  Each call site in Swift names its ordering
 * and says why it is enough.
 *
 * It could go once Swift can perform atomic operations through an
 * UnsafeMutablePointer<UInt64> without a wrapper type.
 */
#ifndef CDFM_ATOMICS_H
#define CDFM_ATOMICS_H

#include <stdbool.h>
#include <stdint.h>

static inline uint64_t cdfm_load_relaxed(const uint64_t *word) {
    return __atomic_load_n(word, __ATOMIC_RELAXED);
}

static inline uint64_t cdfm_load_acquire(const uint64_t *word) {
    return __atomic_load_n(word, __ATOMIC_ACQUIRE);
}

static inline void cdfm_store_relaxed(uint64_t *word, uint64_t value) {
    __atomic_store_n(word, value, __ATOMIC_RELAXED);
}

static inline void cdfm_store_release(uint64_t *word, uint64_t value) {
    __atomic_store_n(word, value, __ATOMIC_RELEASE);
}

static inline void cdfm_store_seq_cst(uint64_t *word, uint64_t value) {
    __atomic_store_n(word, value, __ATOMIC_SEQ_CST);
}

static inline uint64_t cdfm_load_seq_cst(const uint64_t *word) {
    return __atomic_load_n(word, __ATOMIC_SEQ_CST);
}

/* Weak compare-and-swap, acquire-release on success, relaxed on failure.
 * On failure *expected receives the current value. */
static inline bool cdfm_cas_acq_rel(uint64_t *word, uint64_t *expected,
                                    uint64_t desired) {
    return __atomic_compare_exchange_n(word, expected, desired, true,
                                       __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
}

/* Compare-and-swap that returns the value it found (equal to `expected`
 * when it swapped): acquire-release on success, relaxed on failure.  The
 * expected value travels in a register, not through memory, so a caller's
 * hot path keeps no address-taken local (and no stack protector). */
static inline uint64_t cdfm_cas_value_acq_rel(uint64_t *word,
                                              uint64_t expected,
                                              uint64_t desired) {
    __atomic_compare_exchange_n(word, &expected, desired, false,
                                __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
    return expected;
}

/* Strong compare-and-swap, acquire-release on success, acquire on failure,
 * for one-shot decisions that must not fail spuriously. */
static inline bool cdfm_cas_strong(uint64_t *word, uint64_t *expected,
                                   uint64_t desired) {
    return __atomic_compare_exchange_n(word, expected, desired, false,
                                       __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}

static inline uint64_t cdfm_fetch_add_relaxed(uint64_t *word, uint64_t value) {
    return __atomic_fetch_add(word, value, __ATOMIC_RELAXED);
}

static inline uint64_t cdfm_fetch_add_acq_rel(uint64_t *word, uint64_t value) {
    return __atomic_fetch_add(word, value, __ATOMIC_ACQ_REL);
}

static inline uint64_t cdfm_fetch_add_seq_cst(uint64_t *word, uint64_t value) {
    return __atomic_fetch_add(word, value, __ATOMIC_SEQ_CST);
}

static inline uint64_t cdfm_fetch_sub_seq_cst(uint64_t *word, uint64_t value) {
    return __atomic_fetch_sub(word, value, __ATOMIC_SEQ_CST);
}

static inline uint64_t cdfm_fetch_or_seq_cst(uint64_t *word, uint64_t value) {
    return __atomic_fetch_or(word, value, __ATOMIC_SEQ_CST);
}

static inline uint64_t cdfm_exchange_seq_cst(uint64_t *word, uint64_t value) {
    return __atomic_exchange_n(word, value, __ATOMIC_SEQ_CST);
}

static inline bool cdfm_cas_seq_cst(uint64_t *word, uint64_t *expected,
                                    uint64_t desired) {
    return __atomic_compare_exchange_n(word, expected, desired, false,
                                       __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}

static inline uint64_t cdfm_fetch_or_acq_rel(uint64_t *word, uint64_t value) {
    return __atomic_fetch_or(word, value, __ATOMIC_ACQ_REL);
}

static inline uint64_t cdfm_exchange_acq_rel(uint64_t *word, uint64_t value) {
    return __atomic_exchange_n(word, value, __ATOMIC_ACQ_REL);
}

static inline void cdfm_fence_seq_cst(void) {
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
}

/* A spin-wait hint: lets the sibling hyper-thread run while we wait. */
static inline void cdfm_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* A cache hint with no effect on what a program computes: starts loading
 * the line that holds `address`, for a read soon. */
static inline void cdfm_prefetch_read(const void *address) {
    __builtin_prefetch(address, 0, 3);
}

#endif /* CDFM_ATOMICS_H */
