/* The libmicrohttpd front end: the only module that knows libmicrohttpd. */
#ifndef TS_HTTP_H
#define TS_HTTP_H

#include "ts_app.h"

typedef struct ts_http ts_http;

/* Starts listening on cfg host:port with a thread pool of app->threads.
 * Returns NULL with a message in err on failure. */
ts_http *ts_http_start(ts_app *app, char *err, size_t errlen);
/* The port actually bound (useful with --port 0 in tests). */
int ts_http_port(const ts_http *h);
/* Stops accepting, lets in-flight requests finish (up to timeout_ms), frees. */
void ts_http_stop(ts_http *h, int timeout_ms);

#endif
