/* Error map, blobs, buffers, request/response helpers. */
#include "ts_common.h"
#include "ts_request.h"
#include "ts_test.h"

static void error_map(void)
{
    CHECK_INT(ts_err_status(TS_ENOT_FOUND), 404);
    CHECK_INT(ts_err_status(-TS_EUNPROCESSABLE), 422);
    CHECK_INT(ts_err_status(9999), 500);
    CHECK_STR(ts_err_name(TS_EBAD_REQUEST), "bad request");
}

static void ctx_first_error_wins(void)
{
    ts_ctx ctx;
    ts_ctx_init(&ctx);
    CHECK(!ts_ctx_failed(&ctx));
    CHECK_INT(ts_ctx_error(&ctx, TS_EBAD_REQUEST, "rescale: expected 'min,max', got '%s'", "1;2"),
              -TS_EBAD_REQUEST);
    CHECK_INT(ts_ctx_error(&ctx, TS_EINTERNAL, "later"), -TS_EINTERNAL);
    CHECK_INT(ctx.status, 400);
    CHECK_STR(ctx.detail, "rescale: expected 'min,max', got '1;2'");
}

static void blob_refcount(void)
{
    ts_blob *b = ts_blob_from("abc", 3);
    CHECK(b != NULL);
    CHECK_INT(b->size, 3);
    CHECK_STR((char *)b->data, "abc");
    CHECK(ts_blob_ref(b) == b);
    CHECK_INT(b->refcount, 2);
    ts_blob_unref(b);
    CHECK_INT(b->refcount, 1);
    TS_BLOB_RELEASE(b);
    CHECK(b == NULL);
    ts_blob_unref(NULL);
}

static void buf_grows(void)
{
    ts_buf b = {0};
    for (int i = 0; i < 1000; i++)
        CHECK_INT(ts_buf_appendf(&b, "%d,", i), 0);
    CHECK(b.len > 3000);
    CHECK(strncmp((char *)b.data, "0,1,2,", 6) == 0);
    ts_blob *blob = ts_buf_to_blob(&b);
    CHECK(blob && blob->size > 3000 && b.data == NULL);
    ts_blob_unref(blob);
}

static void query_repeated_and_case(void)
{
    ts_request req;
    memset(&req, 0, sizeof req);
    ts_req_add_query(&req, "bidx", "3");
    ts_req_add_query(&req, "BIDX", "1");
    ts_req_add_query(&req, "rescale", "0,1");
    const char *v[4];
    CHECK_INT(ts_req_query_all(&req, "bidx", v, 4), 2);
    CHECK_STR(v[0], "3");
    CHECK_STR(v[1], "1");
    CHECK_STR(ts_req_query(&req, "Rescale"), "0,1");
    CHECK(ts_req_query(&req, "nodata") == NULL);
    for (int i = 0; i < TS_MAX_QUERY; i++)
        ts_req_add_query(&req, "x", "y");
    CHECK(req.query_truncated);
}

static void error_body_is_escaped_json(void)
{
    ts_response resp;
    ts_resp_init(&resp);
    ts_resp_set_header(&resp, "ETag", "\"abc\"");
    ts_resp_error(&resp, 400, "bad \"quote\"\n");
    CHECK_INT(resp.status, 400);
    CHECK_STR(resp.content_type, "application/json");
    CHECK_STR((char *)resp.body->data, "{\"detail\":\"bad \\\"quote\\\"\\n\"}");
    CHECK(ts_resp_header(&resp, "ETag") == NULL);
    ts_resp_clear(&resp);
}

/* Found by fuzz_request: a percent-decoded %FF echoed in a detail made the
 * error body invalid JSON (JSON text is UTF-8). */
static void json_escape_keeps_utf8_valid(void)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x97\xba", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x97\xba"},
        {"a\xff" "b", "a\\ufffd" "b"},
        {"\xc3", "\\ufffd"},                      /* cut at the end */
        {"\xe2\x82", "\\ufffd\\ufffd"},              /* cut, then a lone continuation */
        {"\xc0\xaf", "\\ufffd\\ufffd"},              /* overlong '/' */
        {"\xed\xa0\x80", "\\ufffd\\ufffd\\ufffd"},      /* surrogate */
        {"\xf4\x90\x80\x80", "\\ufffd\\ufffd\\ufffd\\ufffd"}, /* above U+10FFFF */
        {"\x01\"\\", "\\u0001\\\"\\\\"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ts_buf b = {0};
        CHECK_INT(ts_json_escape(&b, cases[i].in), 0);
        CHECK_INT(ts_buf_append(&b, "", 1), 0);
        CHECK_STR((char *)b.data, cases[i].out);
        ts_buf_free(&b);
    }
}

TS_TEST_MAIN(TEST(error_map), TEST(ctx_first_error_wins), TEST(blob_refcount), TEST(buf_grows),
             TEST(query_repeated_and_case), TEST(error_body_is_escaped_json),
             TEST(json_escape_keeps_utf8_valid))
