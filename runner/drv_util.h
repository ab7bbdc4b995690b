/*
 * drv_util.h - small helpers the driver plugins share (linked into each).
 */
#ifndef CMIG_RUNNER_DRV_UTIL_H
#define CMIG_RUNNER_DRV_UTIL_H

#include <stdint.h>

/* Milliseconds on the monotonic clock. */
int64_t cmig_drv_now_ms(void);

/* Sleeps ms in slices of at most 50 ms; returns 1 as soon as *interrupted
 * (may be NULL) becomes non-zero, 0 when the time is up. */
int cmig_drv_nap(const volatile int *interrupted, int64_t ms);

#endif
