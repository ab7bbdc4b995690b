/*
 * drv_util.c - the waiting every driver does (connection retries, lock
 * polls): short enough slices that SIGTERM is noticed within 50 ms.
 */
#include "drv_util.h"

#include <time.h>

#define SLICE_MS 50

int64_t cmig_drv_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int cmig_drv_nap(const volatile int *interrupted, int64_t ms)
{
    int64_t end = cmig_drv_now_ms() + ms;
    for (;;) {
        if (interrupted && *interrupted)
            return 1;
        int64_t left = end - cmig_drv_now_ms();
        if (left <= 0)
            return 0;
        if (left > SLICE_MS)
            left = SLICE_MS;
        struct timespec ts = {0, (long)left * 1000000L};
        nanosleep(&ts, NULL);
    }
}
