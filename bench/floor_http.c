/*
 * floor-http: the HTTP ceiling of this machine for tessera's front end. A
 * libmicrohttpd daemon with the server's threading model (src/http.c: an
 * internal polling thread per pool member, MHD_USE_AUTO poll/epoll,
 * MHD_OPTION_THREAD_POOL_SIZE = worker threads, 64 KiB connection memory
 * limit, the response queued on the second access-handler call so that
 * keep-alive is kept) answering every GET with the same bytes from memory,
 * without a copy (a persistent buffer shared by all responses).
 *
 *   floor_http --port N [--threads N] (--file PATH | --size BYTES)
 *
 * Prints "listening on PORT" and serves until SIGINT/SIGTERM.
 */
#include <microhttpd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *body;
static size_t body_len;
static const char *mime = "image/jpeg";

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
    if (*con_cls == NULL) {
        *con_cls = &marker; /* answer on the next call: keeps the connection alive */
        return MHD_YES;
    }
    if (*upload_data_size) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    struct MHD_Response *r =
        MHD_create_response_from_buffer(body_len, body, MHD_RESPMEM_PERSISTENT);
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
    const char *file = NULL;
    size_t size = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--port") == 0 && i + 1 < argc)
            port = atoi(argv[++i]);
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--file") == 0 && i + 1 < argc)
            file = argv[++i];
        else if (strcmp(argv[i], "--size") == 0 && i + 1 < argc)
            size = (size_t)atol(argv[++i]);
        else {
            fprintf(stderr,
                    "usage: floor_http --port N [--threads N] (--file PATH | --size BYTES)\n");
            return 2;
        }
    }
    if (threads < 1)
        threads = 1;
    if (file) {
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
        1u, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024), MHD_OPTION_END);
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
    free(body);
    return 0;
}
