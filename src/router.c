/* Path pattern matching and the route lookup (see ts_router.h). */
#include "ts_router.h"

#include <string.h>

const char *ts_match_get(const ts_match *m, const char *name)
{
    for (int i = 0; i < m->n; i++)
        if (strcmp(m->names[i], name) == 0)
            return m->values[i];
    return NULL;
}

/* Match one segment (pattern [ps,pe) against text [ts,te)). */
static int match_segment(const char *ps, const char *pe, const char *ts, const char *te,
                         ts_match *m)
{
    while (ps < pe) {
        if (*ps == '{') {
            const char *close = memchr(ps, '}', (size_t)(pe - ps));
            if (!close)
                return 0;
            const char *lit = close + 1; /* next literal char, or pe */
            const char *end;
            if (lit == pe) {
                end = te;
            } else {
                end = memchr(ts, *lit, (size_t)(te - ts));
                if (!end)
                    return 0;
            }
            size_t nlen = (size_t)(close - ps - 1), vlen = (size_t)(end - ts);
            if (vlen == 0 || m->n >= TS_MAX_CAPTURES || nlen >= sizeof m->names[0] ||
                vlen >= sizeof m->values[0])
                return 0;
            memcpy(m->names[m->n], ps + 1, nlen);
            m->names[m->n][nlen] = '\0';
            memcpy(m->values[m->n], ts, vlen);
            m->values[m->n][vlen] = '\0';
            m->n++;
            ps = lit;
            ts = end;
        } else {
            if (ts >= te || *ps != *ts)
                return 0;
            ps++;
            ts++;
        }
    }
    return ts == te;
}

int ts_route_match_path(const char *pattern, const char *path, ts_match *m)
{
    m->n = 0;
    const char *p = pattern, *t = path;
    for (;;) {
        const char *pe = strchr(p, '/');
        const char *te = strchr(t, '/');
        if (!pe)
            pe = p + strlen(p);
        if (!te)
            te = t + strlen(t);
        if (!match_segment(p, pe, t, te, m))
            return 0;
        if (*pe == '\0' || *te == '\0')
            return *pe == '\0' && *te == '\0';
        p = pe + 1;
        t = te + 1;
    }
}

int ts_router_find(const ts_route *routes, size_t n, const char *method, const char *path,
                   ts_match *m)
{
    int path_matched = 0;
    for (size_t i = 0; i < n; i++) {
        if (!ts_route_match_path(routes[i].pattern, path, m))
            continue;
        if (strcmp(routes[i].method, method) == 0 ||
            (strcmp(method, "HEAD") == 0 && strcmp(routes[i].method, "GET") == 0)) {
            m->route = &routes[i];
            return 0;
        }
        path_matched = 1;
    }
    m->route = NULL;
    m->n = 0;
    return path_matched ? -TS_EMETHOD : -TS_ENOT_FOUND;
}
