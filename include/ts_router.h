/*
 * Routing table: method + path pattern -> handler. A pattern is a '/'-separated
 * list of segments; inside a segment, literal text and `{name}` captures
 * alternate ("{y}@{scale}x.{format}"). A capture matches up to the next literal
 * character of its segment (or the segment's end) and never matches an empty
 * string. Routes are tried in table order, so list longer forms first.
 */
#ifndef TS_ROUTER_H
#define TS_ROUTER_H

#include "ts_request.h"

#define TS_MAX_CAPTURES 8

typedef struct ts_match {
    const struct ts_route *route;
    char names[TS_MAX_CAPTURES][24];
    char values[TS_MAX_CAPTURES][128];
    int n;
} ts_match;

struct ts_app;
typedef int (*ts_handler)(struct ts_app *app, const ts_request *req, const ts_match *m,
                          ts_response *resp, ts_ctx *ctx);

typedef struct ts_route {
    const char *method;  /* "GET" also answers HEAD */
    const char *pattern;
    ts_handler handler;
    const char *name;    /* used in metrics and logs, e.g. "tile" */
} ts_route;

/* Returns the capture's value or NULL. */
const char *ts_match_get(const ts_match *m, const char *name);

/* 1 when path matches pattern (captures filled), 0 otherwise. */
int ts_route_match_path(const char *pattern, const char *path, ts_match *m);

/* Finds the route for method+path. Returns 0 on a match; -TS_ENOT_FOUND when
 * no pattern matches; -TS_EMETHOD when a pattern matches with another method. */
int ts_router_find(const ts_route *routes, size_t n, const char *method, const char *path,
                   ts_match *m);

#endif
