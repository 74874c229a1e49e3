/* Cache administration: statistics and invalidation. */
#include "ts_api.h"
#include "ts_cache.h"
#include "ts_metrics.h"
#include "ts_reader.h"

#include <json-c/json.h>
#include <string.h>
#include <strings.h>

/* Constant-time comparison so the token cannot be guessed byte by byte from
 * response timings. */
static bool token_equal(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned char diff = (unsigned char)(la != lb);
    for (size_t i = 0; i < lb; i++)
        diff |= (unsigned char)(a[i < la ? i : 0] ^ b[i]);
    return diff == 0;
}

static int check_admin(const ts_app *app, const ts_request *req, ts_ctx *ctx)
{
    const char *token = app->cfg->cache_admin_token;
    if (!token || !token[0])
        return ts_ctx_error(ctx, TS_ENOT_FOUND, "Not Found");
    const char *auth = ts_req_header(req, "Authorization");
    if (!auth || strncasecmp(auth, "Bearer ", 7) != 0 || !token_equal(auth + 7, token))
        return ts_ctx_error(ctx, TS_EUNAUTHORIZED, "a valid 'Authorization: Bearer <token>' is required");
    return 0;
}

static int json_body(json_object *o, ts_response *resp, ts_ctx *ctx)
{
    size_t len = 0;
    const char *s = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN, &len);
    ts_blob *b = s ? ts_blob_from(s, len) : NULL;
    json_object_put(o);
    if (!b)
        return ts_ctx_error(ctx, TS_ENOMEM, "out of memory");
    ts_resp_set_body(resp, 200, "application/json", b);
    ts_resp_set_header(resp, "Cache-Control", "no-store");
    return 0;
}

int ts_api_cache_stats(ts_app *app, const ts_request *req, const ts_match *m, ts_response *resp,
                       ts_ctx *ctx)
{
    (void)req;
    (void)m;
    ts_cache_stats st;
    memset(&st, 0, sizeof st);
    ts_cache_get_stats(app->cache, &st);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "backend", json_object_new_string(st.backend ? st.backend : "none"));
    json_object_object_add(o, "namespace", json_object_new_string(ts_cache_namespace(app->cache)));
    json_object_object_add(o, "entries", json_object_new_int64(st.entries));
    json_object_object_add(o, "bytes", json_object_new_int64(st.bytes));
    json_object_object_add(o, "hits", json_object_new_int64(st.hits));
    json_object_object_add(o, "misses", json_object_new_int64(st.misses));
    json_object_object_add(o, "bypasses", json_object_new_int64(st.bypasses));
    json_object_object_add(o, "coalesced", json_object_new_int64(st.coalesced));
    json_object_object_add(o, "errors", json_object_new_int64(st.errors));
    json_object_object_add(o, "evictions", json_object_new_int64(st.evictions));
    json_object_object_add(o, "stores", json_object_new_int64(st.stores));
    json_object_object_add(o, "async_gets", json_object_new_int64(st.async_gets));
    json_object_object_add(o, "async_batches", json_object_new_int64(st.async_batches));
    long long lookups = st.hits + st.misses;
    json_object_object_add(o, "hit_ratio",
                           json_object_new_double(lookups ? (double)st.hits / (double)lookups : 0.0));
    return json_body(o, resp, ctx);
}

int ts_api_metrics(ts_app *app, const ts_request *req, const ts_match *m, ts_response *resp,
                   ts_ctx *ctx)
{
    (void)m;
    int rc;
    if (app->cfg->metrics_private && (rc = check_admin(app, req, ctx)) < 0)
        return rc;
    ts_cache_stats st;
    memset(&st, 0, sizeof st);
    ts_cache_get_stats(app->cache, &st);
    ts_buf b = {0};
    if (ts_metrics_render(app->metrics, &st, &b) < 0) {
        ts_buf_free(&b);
        return ts_ctx_error(ctx, TS_ENOMEM, "out of memory");
    }
    ts_blob *body = ts_buf_to_blob(&b);
    if (!body)
        return ts_ctx_error(ctx, TS_ENOMEM, "out of memory");
    ts_resp_set_body(resp, 200, "text/plain; version=0.0.4; charset=utf-8", body);
    ts_resp_set_header(resp, "Cache-Control", "no-store");
    return 0;
}

int ts_api_cache_delete(ts_app *app, const ts_request *req, const ts_match *m, ts_response *resp,
                        ts_ctx *ctx)
{
    (void)m;
    int rc = check_admin(app, req, ctx);
    if (rc < 0)
        return rc;
    const char *ns = ts_cache_namespace(app->cache);
    ts_cache_key prefix;
    const char *url = ts_req_query(req, "url");
    if (url) {
        ts_dataset ds;
        if ((rc = ts_dataset_resolve(app->data_root, url, &ds, ctx)) < 0)
            return rc;
        ts_cache_key_dataset_prefix(ns, ds.path, &prefix);
    } else {
        prefix.len = (size_t)snprintf(prefix.str, sizeof prefix.str, "%s:", ns);
    }
    long long deleted = 0;
    if (ts_cache_delete_prefix(app->cache, prefix.str, prefix.len, &deleted) < 0)
        return ts_ctx_error(ctx, TS_EUNAVAILABLE, "the cache backend did not answer");
    json_object *o = json_object_new_object();
    json_object_object_add(o, "deleted", json_object_new_int64(deleted));
    return json_body(o, resp, ctx);
}
