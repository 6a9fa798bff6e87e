/*
 * cdfm_shaped.h - shaped callbacks: call an existing C function whose
 * parameters are described by a shape string (API.md, section 5).
 *
 * Internal to libdfmdispatch: every symbol here is cdfm_-prefixed and
 * hidden from the shared library's exports.
 *
 * A shape is parsed once, at registration, into an immutable prepared call
 * (cdfm_shape).  Delivery converts a token's fields to the declared C types
 * and calls the function either through a precompiled stub (the common
 * all-integer/pointer shapes and the common mixes with one double) or
 * through libffi (every other shape, and every variadic one).  Both paths
 * pass exactly the same arguments.
 *
 * libffi rules this code relies on:
 *  - the ffi_type descriptions handed to ffi_prep_cif / ffi_prep_cif_var
 *    must outlive the prepared ffi_cif: they are stored inside cdfm_shape;
 *  - a return value narrower than a register comes back widened to ffi_arg,
 *    so the return buffer is an ffi_arg and an int return is read from it
 *    as (int)(ffi_sarg);
 *  - a prepared ffi_cif is never modified after preparation, so one
 *    cdfm_shape may be called from several threads at once without locks.
 */
#ifndef CDFM_SHAPED_H
#define CDFM_SHAPED_H

#include <stdbool.h>
#include <stddef.h>

#include "dfmdispatch.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cdfm_shape cdfm_shape;

/* Parses `shape` and prepares the call of `function`.
 * Returns DFM_OK and the prepared call in *out, or DFM_ERR_BAD_SHAPE
 * (with a message naming the 1-based column, written into `message`,
 * NUL-terminated, at most `capacity` bytes) or DFM_ERR_NO_MEMORY.
 * `shape` and `function` must not be NULL (the caller checks). */
int cdfm_shape_create(const char *shape, void (*function)(void),
                      cdfm_shape **out, char *message, size_t capacity);

/* Frees a prepared call; NULL is a no-op. */
void cdfm_shape_destroy(cdfm_shape *shape);

/* Calls the function with the token's fields.
 * Returns DFM_OK and the function's int result in *result (0 for a void
 * function), or DFM_ERR_TYPE_MISMATCH with a message when the token does
 * not fit the shape (the function is then not called). */
int cdfm_shape_call(const cdfm_shape *shape, const dfm_token *token,
                    void *user_data, int *result, char *message,
                    size_t capacity);

/* The delivery path's form of cdfm_shape_call, without a message: the
 * status in the high 32 bits, the function's int result (0 for a void
 * function) in the low 32.  It returns both in a register so that the
 * Swift caller takes no local's address, which would cost it a stack
 * protector check on every call. */
int64_t cdfm_shape_invoke(const cdfm_shape *shape, const dfm_token *token,
                          void *user_data);

/* The same through libffi even when a precompiled stub exists: tests use
 * it to check that both paths pass identical arguments. */
int cdfm_shape_call_ffi(const cdfm_shape *shape, const dfm_token *token,
                        void *user_data, int *result, char *message,
                        size_t capacity);

/* True when cdfm_shape_call uses a precompiled stub for this shape. */
bool cdfm_shape_has_stub(const cdfm_shape *shape);

/* True when the shape declares an int return. */
bool cdfm_shape_returns_int(const cdfm_shape *shape);

#ifdef __cplusplus
}
#endif

#endif /* CDFM_SHAPED_H */
