/*
 * floor-http: the HTTP ceiling of this machine for tessera's front end. A
 * libmicrohttpd daemon with the server's threading model (src/http.c: an
 * internal polling thread per pool member, MHD_USE_AUTO poll/epoll,
 * MHD_OPTION_THREAD_POOL_SIZE = worker threads, 64 KiB connection memory
 * limit, the response queued on the second access-handler call so that
 * keep-alive is kept) answering every GET with the same bytes from memory,
 * without a copy (a persistent buffer shared by all responses).
 *
 *   floor_http --port N [--threads N] (--file PATH | --size BYTES | --bodies PATH)
 *
 * --bodies serves each request URI its own body (a file of records
 * [u32 uri length][uri][u32 body length][body], little-endian, written by
 * bench.py from the server's own tiles; unknown URIs get the first body):
 * the same distinct bytes a cache HIT run sends, so that copying 1560
 * different tiles instead of one cache-hot buffer is in the floor too. The
 * lookup is an open-addressing table keyed by the raw request URI, which
 * libmicrohttpd's URI log callback hands over before parsing.
 *
 * Prints "listening on PORT" and serves until SIGINT/SIGTERM.
 */
#include <microhttpd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *body;
static size_t body_len;
static const char *mime = "image/jpeg";

typedef struct entry {
    const char *uri;
    size_t urilen;
    const char *body;
    size_t len;
} entry;
static entry *table; /* power-of-two size, open addressing */
static size_t table_mask;
static char *bodies; /* the whole --bodies file */

static uint64_t fnv(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static const entry *find(const char *uri)
{
    size_t n = strlen(uri);
    for (size_t i = fnv(uri, n) & table_mask;; i = (i + 1) & table_mask) {
        if (!table[i].uri)
            return NULL;
        if (table[i].urilen == n && memcmp(table[i].uri, uri, n) == 0)
            return &table[i];
    }
}

static uint32_t rd32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int load_bodies(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return -1;
    }
    fseek(f, 0, SEEK_END);
    size_t size = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    bodies = malloc(size ? size : 1);
    if (!bodies || fread(bodies, 1, size, f) != size) {
        fclose(f);
        return -1;
    }
    fclose(f);
    size_t count = 0;
    for (size_t off = 0; off + 8 <= size;) {
        size_t ul = rd32((unsigned char *)bodies + off);
        size_t bl = rd32((unsigned char *)bodies + off + 4 + ul);
        off += 8 + ul + bl;
        count++;
    }
    size_t cap = 16;
    while (cap < count * 2)
        cap *= 2;
    table = calloc(cap, sizeof *table);
    table_mask = cap - 1;
    for (size_t off = 0; off + 8 <= size;) {
        size_t ul = rd32((unsigned char *)bodies + off);
        const char *uri = bodies + off + 4;
        size_t bl = rd32((unsigned char *)bodies + off + 4 + ul);
        const char *b = bodies + off + 8 + ul;
        size_t i = fnv(uri, ul) & table_mask;
        while (table[i].uri)
            i = (i + 1) & table_mask;
        table[i] = (entry){uri, ul, b, bl};
        if (!body) {
            body = (char *)b;
            body_len = bl;
        }
        off += 8 + ul + bl;
    }
    return count ? 0 : -1;
}

/* Called with the raw URI before parsing: its copy (NUL-terminated, in the
 * connection's pool) becomes the request's context. */
static void *uri_log(void *cls, const char *uri, struct MHD_Connection *conn)
{
    (void)cls;
    (void)conn;
    return (void *)uri;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)cls;
    (void)url;
    (void)method;
    (void)version;
    (void)upload_data;
    static int marker;
    static entry fallback; /* unknown URIs: the first body */
    if (table) {
        /* The URI log callback set *con_cls to the raw URI; the first call
         * replaces it with the URI's entry (a pointer into the table, or
         * &fallback), and the second answers with that entry's body. */
        entry *e = *con_cls;
        uintptr_t a = (uintptr_t)e, lo = (uintptr_t)table, hi = (uintptr_t)(table + table_mask);
        bool is_entry = e == &fallback || (a >= lo && a <= hi);
        if (!is_entry) {
            const entry *found = find(*con_cls);
            *con_cls = found ? (void *)found : (void *)&fallback;
            return MHD_YES;
        }
    } else if (*con_cls == NULL) {
        *con_cls = &marker; /* answer on the next call: keeps the connection alive */
        return MHD_YES;
    }
    if (*upload_data_size) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    const char *b = body;
    size_t blen = body_len;
    if (table && *con_cls != &fallback) {
        const entry *e = *con_cls;
        b = e->body;
        blen = e->len;
    }
    struct MHD_Response *r =
        MHD_create_response_from_buffer(blen, (void *)b, MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, mime);
    enum MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ret;
}

int main(int argc, char **argv)
{
    int port = 0, threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    const char *file = NULL, *bodies_path = NULL;
    size_t size = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--port") == 0 && i + 1 < argc)
            port = atoi(argv[++i]);
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--file") == 0 && i + 1 < argc)
            file = argv[++i];
        else if (strcmp(argv[i], "--bodies") == 0 && i + 1 < argc)
            bodies_path = argv[++i];
        else if (strcmp(argv[i], "--size") == 0 && i + 1 < argc)
            size = (size_t)atol(argv[++i]);
        else {
            fprintf(stderr,
                    "usage: floor_http --port N [--threads N] (--file PATH | --size BYTES | --bodies PATH)\n");
            return 2;
        }
    }
    if (threads < 1)
        threads = 1;
    if (bodies_path) {
        if (load_bodies(bodies_path) != 0) {
            fprintf(stderr, "floor_http: no bodies in %s\n", bodies_path);
            return 1;
        }
    } else if (file) {
        FILE *f = fopen(file, "rb");
        if (!f) {
            perror(file);
            return 1;
        }
        fseek(f, 0, SEEK_END);
        body_len = (size_t)ftell(f);
        fseek(f, 0, SEEK_SET);
        body = malloc(body_len ? body_len : 1);
        if (!body || fread(body, 1, body_len, f) != body_len) {
            fclose(f);
            return 1;
        }
        fclose(f);
        size_t l = strlen(file);
        if (l > 4 && strcmp(file + l - 4, ".png") == 0)
            mime = "image/png";
    } else {
        body_len = size;
        body = malloc(size ? size : 1);
        for (size_t i = 0; i < size; i++)
            body[i] = (char)(i * 2654435761u >> 24);
    }

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ITC | MHD_USE_ERROR_LOG,
        (uint16_t)port, NULL, NULL, on_request, NULL, MHD_OPTION_THREAD_POOL_SIZE,
        (unsigned)threads, MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_LISTENING_ADDRESS_REUSE,
        1u, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024), MHD_OPTION_URI_LOG_CALLBACK,
        table ? uri_log : NULL, NULL, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "floor_http: cannot listen on port %d\n", port);
        return 1;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    printf("listening on %d with %d threads, %zu bytes\n", di ? di->port : port, threads, body_len);
    fflush(stdout);
    int sig;
    sigwait(&set, &sig);
    MHD_stop_daemon(d);
    if (bodies)
        free(bodies);
    else
        free(body);
    free(table);
    return 0;
}
