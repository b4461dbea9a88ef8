/*
 * clock.h - the two clocks the server reads: monotonic milliseconds for intervals and deadlines,
 * and the wall-clock instant pthread_cond_timedwait wants ("so long from now").
 */
#ifndef COFFER_CLOCK_H
#define COFFER_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Milliseconds on CLOCK_MONOTONIC. */
int64_t clock_mono_ms(void);

/* CLOCK_REALTIME now plus ms (ms >= 0): the deadline for pthread_cond_timedwait. */
struct timespec clock_realtime_after_ms(int64_t ms);

#endif
