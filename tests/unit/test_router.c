/* Path patterns and route lookup. */
#include "ts_router.h"
#include "ts_test.h"

static int dummy(struct ts_app *a, const ts_request *r, const ts_match *m, ts_response *s,
                 ts_ctx *c)
{
    (void)a; (void)r; (void)m; (void)s; (void)c;
    return 0;
}

static const ts_route routes[] = {
    {"GET", "/tiles/{tms}/{z}/{x}/{y}@{scale}x.{format}", dummy, "t1"},
    {"GET", "/tiles/{tms}/{z}/{x}/{y}.{format}", dummy, "t2"},
    {"GET", "/tiles/{tms}/{z}/{x}/{y}@{scale}x", dummy, "t3"},
    {"GET", "/tiles/{tms}/{z}/{x}/{y}", dummy, "t4"},
    {"GET", "/tiles/{z}/{x}/{y}@{scale}x.{format}", dummy, "t5"},
    {"GET", "/tiles/{z}/{x}/{y}.{format}", dummy, "t6"},
    {"GET", "/tiles/{z}/{x}/{y}", dummy, "t8"},
    {"DELETE", "/cache", dummy, "cache"},
    {"GET", "/healthz", dummy, "healthz"},
};
#define N (sizeof routes / sizeof routes[0])

static void full_tile_form(void)
{
    ts_match m;
    CHECK_INT(ts_router_find(routes, N, "GET", "/tiles/WebMercatorQuad/3/4/5@2x.png", &m), 0);
    CHECK_STR(m.route->name, "t1");
    CHECK_STR(ts_match_get(&m, "tms"), "WebMercatorQuad");
    CHECK_STR(ts_match_get(&m, "z"), "3");
    CHECK_STR(ts_match_get(&m, "y"), "5");
    CHECK_STR(ts_match_get(&m, "scale"), "2");
    CHECK_STR(ts_match_get(&m, "format"), "png");
}

static void shorter_forms(void)
{
    ts_match m;
    CHECK_INT(ts_router_find(routes, N, "GET", "/tiles/3/4/5", &m), 0);
    CHECK_STR(m.route->name, "t8");
    CHECK(ts_match_get(&m, "tms") == NULL);
    CHECK_INT(ts_router_find(routes, N, "GET", "/tiles/3/4/5.webp", &m), 0);
    CHECK_STR(m.route->name, "t6");
    CHECK_STR(ts_match_get(&m, "format"), "webp");
    CHECK_INT(ts_router_find(routes, N, "GET", "/tiles/WorldCRS84Quad/3/4/5@4x", &m), 0);
    CHECK_STR(m.route->name, "t3");
    CHECK_INT(ts_router_find(routes, N, "HEAD", "/tiles/WorldCRS84Quad/3/4/5", &m), 0);
    CHECK_STR(m.route->name, "t4");
}

static void misses(void)
{
    ts_match m;
    CHECK_INT(ts_router_find(routes, N, "GET", "/tiles/3/4", &m), -TS_ENOT_FOUND);
    CHECK_INT(ts_router_find(routes, N, "GET", "/tiles//4/5", &m), -TS_ENOT_FOUND);
    CHECK_INT(ts_router_find(routes, N, "GET", "/nope", &m), -TS_ENOT_FOUND);
    CHECK_INT(ts_router_find(routes, N, "GET", "/healthz/", &m), -TS_ENOT_FOUND);
    CHECK_INT(ts_router_find(routes, N, "POST", "/healthz", &m), -TS_EMETHOD);
    CHECK_INT(ts_router_find(routes, N, "GET", "/cache", &m), -TS_EMETHOD);
}

TS_TEST_MAIN(TEST(full_tile_form), TEST(shorter_forms), TEST(misses))
