/*
 * cdfm_shim.h - the C side of libdfmdispatch, as the Swift core sees it:
 * the public types of dfmdispatch.h (the Swift core uses these very types,
 * so the two cannot drift), atomics on raw memory, thread-local state and
 * the libffi-based shaped calls.
 */
#ifndef CDFM_SHIM_H
#define CDFM_SHIM_H

#include "dfmdispatch.h"
#include "cdfm_atomics.h"
#include "cdfm_runtime.h"
#include "cdfm_shaped.h"

#endif /* CDFM_SHIM_H */
