/*
 * Protection against overload and abuse, independent of HTTP:
 *
 * - render slots: at most `max_active` renders at once, at most `max_waiting`
 *   more queued for a slot (each for at most a timeout). Past that, work is
 *   refused at once (503 + Retry-After) instead of piling up: a cold-cache
 *   stampede degrades to fast refusals, and cache HITs, which need no slot,
 *   keep flowing.
 * - a per-client token bucket (rate, burst), kept in a fixed-size sharded
 *   table so that memory stays bounded whatever the number of clients.
 */
#ifndef TS_LIMITS_H
#define TS_LIMITS_H

#include <stdbool.h>
#include <stdint.h>

typedef struct ts_slots ts_slots;

ts_slots *ts_slots_create(int max_active, int max_waiting);
void ts_slots_destroy(ts_slots *s); /* NULL-safe */
/* 0 = acquired (release it), -1 = queue full, -2 = waited timeout_ms in vain.
 * A NULL s always succeeds. */
int ts_slots_acquire(ts_slots *s, unsigned timeout_ms);
void ts_slots_release(ts_slots *s);
void ts_slots_counts(ts_slots *s, int *active, int *waiting);

typedef struct ts_ratelimit ts_ratelimit;

/* rate: tokens per second; burst: bucket size (>= 1). */
ts_ratelimit *ts_ratelimit_create(double rate, double burst);
void ts_ratelimit_destroy(ts_ratelimit *r); /* NULL-safe */
/* Takes one token for `client` at time now_ns. Returns true when allowed;
 * otherwise *retry_after_s (may be NULL) gets the wait for the next token. */
bool ts_ratelimit_take(ts_ratelimit *r, const char *client, uint64_t now_ns,
                       double *retry_after_s);

#endif
