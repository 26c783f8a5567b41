/*
 * A far-future wall clock for the test suite: LD_PRELOAD this library and set FAKECLOCK_OFFSET_S,
 * and every process (Python, anvil, serve's children) reads the wall clock that many seconds
 * ahead. Only the wall clock moves (CLOCK_REALTIME, gettimeofday, time): monotonic clocks, sleeps
 * and timed waits are the real ones, so timeouts behave. One offset for every process (the
 * Makefile computes it once), so their clocks agree, and they tick.
 *
 * Why not Debian's faketime: its libfaketime 0.9.10 makes Python's time.sleep and Event.wait fail
 * with EINVAL or hang (it rewrites clock_nanosleep and the pthread timed waits too).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>

static long long offset_s(void) {
    static int ready;
    static long long offset;
    if (!ready) {
        const char *value = getenv("FAKECLOCK_OFFSET_S");
        offset = value ? atoll(value) : 0;
        ready = 1;
    }
    return offset;
}

static int is_wall_clock(clockid_t id) {
    return id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE;
}

int clock_gettime(clockid_t id, struct timespec *when) {
    static int (*real)(clockid_t, struct timespec *);
    if (!real) real = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
    int result = real(id, when);
    if (result == 0 && is_wall_clock(id)) when->tv_sec += offset_s();
    return result;
}

int gettimeofday(struct timeval *restrict when, void *restrict zone) {
    static int (*real)(struct timeval *restrict, void *restrict);
    if (!real) real = (int (*)(struct timeval *restrict, void *restrict))dlsym(RTLD_NEXT, "gettimeofday");
    int result = real(when, zone);
    if (result == 0) when->tv_sec += offset_s();
    return result;
}

time_t time(time_t *out) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    if (out) *out = now.tv_sec;
    return now.tv_sec;
}
