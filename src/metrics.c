/* Prometheus metrics: fixed arrays of relaxed atomics (see ts_metrics.h). */
#include "ts_metrics.h"

#include "ts_blockcache.h"
#include "ts_cache.h"
#include "ts_reader.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Status codes the server answers with; anything else is counted as "other". */
static const int statuses[] = {200, 204, 304, 400, 401, 403, 404, 405, 408, 413,
                               414, 422, 429, 431, 500, 503, 504};
#define NSTATUS (sizeof statuses / sizeof statuses[0])

/* Seconds; the usual Prometheus buckets stretched down to 0.5 ms because a
 * cache HIT takes well under a millisecond. */
static const double bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                0.1,    0.25,  0.5,    1,     2.5,  5,     10};
#define NBUCKET (sizeof bounds / sizeof bounds[0] + 1) /* + Inf */

typedef struct hist {
    unsigned long long bucket[NBUCKET]; /* not cumulative; summed at render time */
    unsigned long long count;
    unsigned long long sum_ns;
} hist;

struct ts_metrics {
    size_t nroutes;
    const char *route[TS_METRICS_MAX_ROUTES];
    unsigned long long requests[TS_METRICS_MAX_ROUTES + 1][NSTATUS + 1];
    hist route_latency[TS_METRICS_MAX_ROUTES + 1];
    hist h[TS_HIST_COUNT];
    long gauge[TS_GAUGE_COUNT];
    unsigned long long rejected[TS_REJECT_COUNT];
    double started;
};

double ts_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

ts_metrics *ts_metrics_create(const char *const *route_names, size_t n)
{
    if (n > TS_METRICS_MAX_ROUTES)
        return NULL;
    ts_metrics *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->nroutes = n;
    for (size_t i = 0; i < n; i++)
        m->route[i] = route_names[i];
    m->started = ts_now_s();
    return m;
}

void ts_metrics_destroy(ts_metrics *m)
{
    free(m);
}

int ts_metrics_route_index(const ts_metrics *m, const char *name)
{
    for (size_t i = 0; name && i < m->nroutes; i++)
        if (strcmp(m->route[i], name) == 0)
            return (int)i;
    return (int)m->nroutes;
}

static void observe(hist *h, double seconds)
{
    if (!(seconds >= 0))
        seconds = 0;
    size_t b = 0;
    while (b < NBUCKET - 1 && seconds > bounds[b])
        b++;
    __atomic_add_fetch(&h->bucket[b], 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&h->count, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&h->sum_ns, (unsigned long long)(seconds * 1e9), __ATOMIC_RELAXED);
}

void ts_metrics_request(ts_metrics *m, int route, int status, double seconds)
{
    if (!m)
        return;
    if (route < 0 || (size_t)route > m->nroutes)
        route = (int)m->nroutes;
    size_t s = 0;
    while (s < NSTATUS && statuses[s] != status)
        s++;
    __atomic_add_fetch(&m->requests[route][s], 1, __ATOMIC_RELAXED);
    observe(&m->route_latency[route], seconds);
}

void ts_metrics_observe(ts_metrics *m, ts_hist_id h, double seconds)
{
    if (m && (unsigned)h < TS_HIST_COUNT)
        observe(&m->h[h], seconds);
}

void ts_metrics_gauge_add(ts_metrics *m, int which, long delta)
{
    if (m && which >= 0 && which < TS_GAUGE_COUNT)
        __atomic_add_fetch(&m->gauge[which], delta, __ATOMIC_RELAXED);
}

void ts_metrics_reject(ts_metrics *m, int which)
{
    if (m && which >= 0 && which < TS_REJECT_COUNT)
        __atomic_add_fetch(&m->rejected[which], 1, __ATOMIC_RELAXED);
}

static unsigned long long load(const unsigned long long *p)
{
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static int render_hist(ts_buf *out, const char *name, const char *labels, const hist *h)
{
    int rc = 0;
    unsigned long long cum = 0;
    const char *sep = labels[0] ? "," : "";
    for (size_t b = 0; b < NBUCKET; b++) {
        cum += load(&h->bucket[b]);
        if (b < NBUCKET - 1)
            rc |= ts_buf_appendf(out, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep,
                                 bounds[b], cum);
        else
            rc |= ts_buf_appendf(out, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep, cum);
    }
    const char *open = labels[0] ? "{" : "", *close = labels[0] ? "}" : "";
    rc |= ts_buf_appendf(out, "%s_sum%s%s%s %.9f\n", name, open, labels, close,
                         load(&h->sum_ns) * 1e-9);
    rc |= ts_buf_appendf(out, "%s_count%s%s%s %llu\n", name, open, labels, close, load(&h->count));
    return rc;
}

int ts_metrics_render(const ts_metrics *m, const ts_cache_stats *cs, ts_buf *out)
{
    int rc = 0;
    char labels[96];
    rc |= ts_buf_appendf(out, "# HELP tessera_requests_total HTTP requests by route and status.\n"
                              "# TYPE tessera_requests_total counter\n");
    for (size_t r = 0; r <= m->nroutes; r++)
        for (size_t s = 0; s <= NSTATUS; s++) {
            unsigned long long v = load(&m->requests[r][s]);
            if (!v)
                continue;
            char code[8];
            if (s < NSTATUS)
                snprintf(code, sizeof code, "%d", statuses[s]);
            else
                strcpy(code, "other");
            rc |= ts_buf_appendf(out, "tessera_requests_total{route=\"%s\",status=\"%s\"} %llu\n",
                                 r < m->nroutes ? m->route[r] : "unmatched", code, v);
        }
    rc |= ts_buf_appendf(out, "# HELP tessera_request_duration_seconds Time to answer a request, by route.\n"
                              "# TYPE tessera_request_duration_seconds histogram\n");
    for (size_t r = 0; r <= m->nroutes; r++) {
        if (!load(&m->route_latency[r].count))
            continue;
        snprintf(labels, sizeof labels, "route=\"%s\"", r < m->nroutes ? m->route[r] : "unmatched");
        rc |= render_hist(out, "tessera_request_duration_seconds", labels, &m->route_latency[r]);
    }
    static const char *const hname[TS_HIST_COUNT] = {
        [TS_HIST_RENDER] = "tessera_render_duration_seconds",
        [TS_HIST_READ] = "tessera_read_duration_seconds",
        [TS_HIST_ENCODE] = "tessera_encode_duration_seconds",
    };
    static const char *const hhelp[TS_HIST_COUNT] = {
        [TS_HIST_RENDER] = "Time to render a response on a cache miss (read, colour, encode).",
        [TS_HIST_READ] = "Time to read and warp one tile with GDAL.",
        [TS_HIST_ENCODE] = "Time to encode one image.",
    };
    for (int h = 0; h < TS_HIST_COUNT; h++) {
        rc |= ts_buf_appendf(out, "# HELP %s %s\n# TYPE %s histogram\n", hname[h], hhelp[h], hname[h]);
        rc |= render_hist(out, hname[h], "", &m->h[h]);
    }
    rc |= ts_buf_appendf(out,
                         "# HELP tessera_renders_active Renders running now.\n"
                         "# TYPE tessera_renders_active gauge\ntessera_renders_active %ld\n"
                         "# HELP tessera_renders_waiting Renders queued for a render slot.\n"
                         "# TYPE tessera_renders_waiting gauge\ntessera_renders_waiting %ld\n",
                         __atomic_load_n(&m->gauge[TS_GAUGE_RENDERS_ACTIVE], __ATOMIC_RELAXED),
                         __atomic_load_n(&m->gauge[TS_GAUGE_RENDERS_WAITING], __ATOMIC_RELAXED));
    rc |= ts_buf_appendf(out,
                         "# HELP tessera_rejected_total Requests refused to protect the server.\n"
                         "# TYPE tessera_rejected_total counter\n"
                         "tessera_rejected_total{reason=\"overload\"} %llu\n"
                         "tessera_rejected_total{reason=\"rate_limit\"} %llu\n"
                         "tessera_rejected_total{reason=\"timeout\"} %llu\n",
                         load(&m->rejected[TS_REJECT_OVERLOAD]), load(&m->rejected[TS_REJECT_RATE_LIMIT]),
                         load(&m->rejected[TS_REJECT_TIMEOUT]));
    if (cs) {
        rc |= ts_buf_appendf(out,
                             "# HELP tessera_cache_requests_total Cache lookups by outcome.\n"
                             "# TYPE tessera_cache_requests_total counter\n"
                             "tessera_cache_requests_total{outcome=\"hit\"} %lld\n"
                             "tessera_cache_requests_total{outcome=\"miss\"} %lld\n"
                             "tessera_cache_requests_total{outcome=\"bypass\"} %lld\n"
                             "# HELP tessera_cache_coalesced_total Requests served by another request's render.\n"
                             "# TYPE tessera_cache_coalesced_total counter\ntessera_cache_coalesced_total %lld\n"
                             "# HELP tessera_cache_errors_total Cache backend failures (served uncached).\n"
                             "# TYPE tessera_cache_errors_total counter\ntessera_cache_errors_total %lld\n"
                             "# HELP tessera_cache_stores_total Responses written to the cache.\n"
                             "# TYPE tessera_cache_stores_total counter\ntessera_cache_stores_total %lld\n"
                             "# HELP tessera_cache_evictions_total Entries evicted for space.\n"
                             "# TYPE tessera_cache_evictions_total counter\ntessera_cache_evictions_total %lld\n"
                             "# HELP tessera_cache_entries Entries in the cache (local backends).\n"
                             "# TYPE tessera_cache_entries gauge\ntessera_cache_entries %lld\n"
                             "# HELP tessera_cache_bytes Bytes in the cache (local backends).\n"
                             "# TYPE tessera_cache_bytes gauge\ntessera_cache_bytes %lld\n"
                             "# HELP tessera_cache_async_gets_total Lookups sent to a networked backend without blocking an I/O thread.\n"
                             "# TYPE tessera_cache_async_gets_total counter\ntessera_cache_async_gets_total %lld\n"
                             "# HELP tessera_cache_async_batches_total Pipelined round trips that carried them.\n"
                             "# TYPE tessera_cache_async_batches_total counter\ntessera_cache_async_batches_total %lld\n",
                             cs->hits, cs->misses, cs->bypasses, cs->coalesced, cs->errors,
                             cs->stores, cs->evictions, cs->entries, cs->bytes, cs->async_gets,
                             cs->async_batches);
    }
    ts_blockcache_stats bs;
    ts_blockcache_get_stats(&bs);
    rc |= ts_buf_appendf(out,
                         "# HELP tessera_block_cache_requests_total Decoded source blocks looked up in "
                         "the store shared by all worker threads, by outcome (a miss decodes).\n"
                         "# TYPE tessera_block_cache_requests_total counter\n"
                         "tessera_block_cache_requests_total{outcome=\"hit\"} %lld\n"
                         "tessera_block_cache_requests_total{outcome=\"miss\"} %lld\n"
                         "# HELP tessera_block_cache_evictions_total Decoded blocks evicted for space.\n"
                         "# TYPE tessera_block_cache_evictions_total counter\n"
                         "tessera_block_cache_evictions_total %lld\n"
                         "# HELP tessera_block_cache_bytes Bytes of decoded blocks held (budget: "
                         "--gdal-cache-mb).\n"
                         "# TYPE tessera_block_cache_bytes gauge\ntessera_block_cache_bytes %lld\n",
                         bs.hits, bs.misses, bs.evictions, bs.bytes);
    ts_dataset_stats ds;
    ts_dataset_get_stats(&ds);
    rc |= ts_buf_appendf(out,
                         "# HELP tessera_dataset_stats_total stat() calls checking a local dataset's "
                         "identity (none on a cache HIT while its directory is watched and quiet).\n"
                         "# TYPE tessera_dataset_stats_total counter\ntessera_dataset_stats_total %lld\n"
                         "# HELP tessera_dataset_change_events_total Reads of the data directories' "
                         "change watch that returned events (each makes the next requests stat() again).\n"
                         "# TYPE tessera_dataset_change_events_total counter\n"
                         "tessera_dataset_change_events_total %lld\n",
                         ds.stats, ds.change_events);
    rc |= ts_buf_appendf(out, "# HELP tessera_uptime_seconds Seconds since start.\n"
                              "# TYPE tessera_uptime_seconds gauge\ntessera_uptime_seconds %.3f\n",
                         ts_now_s() - m->started);
    return rc ? -1 : 0;
}
