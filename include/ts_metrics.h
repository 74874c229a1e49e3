/*
 * Process metrics in Prometheus' text exposition format (GET /metrics):
 * request counts by route and status, request/render/encode latency
 * histograms, and the cache's outcome counters. Everything is a relaxed
 * atomic add on fixed arrays, so recording costs a few nanoseconds on the
 * hot (cache HIT) path and never allocates.
 */
#ifndef TS_METRICS_H
#define TS_METRICS_H

#include "ts_common.h"

#include <stddef.h>

struct ts_cache_stats;

#define TS_METRICS_MAX_ROUTES 16

typedef enum ts_hist_id {
    TS_HIST_RENDER = 0, /* a cache miss's render: read + colour + encode */
    TS_HIST_READ,       /* GDAL read/warp of one tile */
    TS_HIST_ENCODE,     /* image encoding */
    TS_HIST_COUNT
} ts_hist_id;

typedef struct ts_metrics ts_metrics;

/* route_names: the distinct route labels (e.g. "tile", "tilejson"); index
 * n (one past the last) counts requests no route matched. */
ts_metrics *ts_metrics_create(const char *const *route_names, size_t n);
void ts_metrics_destroy(ts_metrics *m); /* NULL-safe */

/* Index of a route label, or the "unmatched" index. */
int ts_metrics_route_index(const ts_metrics *m, const char *name);
void ts_metrics_request(ts_metrics *m, int route, int status, double seconds);
void ts_metrics_observe(ts_metrics *m, ts_hist_id h, double seconds);
/* Gauges maintained by the caller (renders in flight, queue length). */
void ts_metrics_gauge_add(ts_metrics *m, int which, long delta);
enum { TS_GAUGE_RENDERS_ACTIVE = 0, TS_GAUGE_RENDERS_WAITING, TS_GAUGE_COUNT };
/* Counters of refused work. */
enum { TS_REJECT_OVERLOAD = 0, TS_REJECT_RATE_LIMIT, TS_REJECT_TIMEOUT, TS_REJECT_COUNT };
void ts_metrics_reject(ts_metrics *m, int which);

/* Appends the exposition text; cache may be NULL. */
int ts_metrics_render(const ts_metrics *m, const struct ts_cache_stats *cache, ts_buf *out);

/* Monotonic seconds, for the callers' timings. */
double ts_now_s(void);

#endif
