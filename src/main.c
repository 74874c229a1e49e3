/* Command line, start-up, signals and graceful drain. */
#include "ts_app.h"
#include "ts_common.h"
#include "ts_config.h"
#include "ts_http.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef TS_VERSION
#define TS_VERSION "0.0.0"
#endif

static int cmd_serve(const char *prog, int argc, char **argv)
{
    ts_config cfg;
    char err[1024];
    bool help;
    if (ts_config_load(&cfg, argc, argv, err, sizeof err, &help) < 0) {
        fprintf(stderr, "%s: %s\n", prog, err);
        ts_config_free(&cfg);
        return 2;
    }
    if (help) {
        ts_config_usage(stdout, prog);
        ts_config_free(&cfg);
        return 0;
    }
    ts_log_threshold = ts_log_level_parse(cfg.log_level);

    /* Block the shutdown signals before any thread starts so that only
     * sigwait() below sees them. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    ts_app app;
    if (ts_app_init(&app, &cfg, err, sizeof err) < 0) {
        fprintf(stderr, "%s: %s\n", prog, err);
        ts_app_destroy(&app);
        ts_config_free(&cfg);
        return 1;
    }
    ts_http *http = ts_http_start(&app, err, sizeof err);
    if (!http) {
        fprintf(stderr, "%s: %s\n", prog, err);
        ts_app_destroy(&app);
        ts_config_free(&cfg);
        return 1;
    }
    int port = ts_http_port(http);
    const char *shown = (strcmp(cfg.host, "0.0.0.0") == 0 || strcmp(cfg.host, "::") == 0)
                            ? "localhost"
                            : cfg.host;
    ts_log(TS_LOG_INFO, "tessera %s listening on %s:%d with %d threads, data root %s", TS_VERSION,
           cfg.host, port, app.threads, app.data_root);
    /* Printed on stdout so scripts (and people) can find the viewer. */
    printf("tessera listening on http://%s:%d/ (port %d)\nmap viewer: http://%s:%d/map\n", shown,
           port, port, shown, port);
    fflush(stdout);

    int sig = 0;
    sigwait(&set, &sig);
    ts_log(TS_LOG_INFO, "received %s, draining in-flight requests", sig == SIGINT ? "SIGINT" : "SIGTERM");
    app.draining = 1;
    ts_http_stop(http, 10000);
    ts_app_destroy(&app);
    ts_config_free(&cfg);
    ts_log(TS_LOG_INFO, "stopped");
    return 0;
}

int main(int argc, char **argv)
{
    const char *prog = "tessera";
    if (argc > 1 && (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0)) {
        printf("tessera %s\n", TS_VERSION);
        return 0;
    }
    int first = 1;
    if (argc > 1 && strcmp(argv[1], "serve") == 0)
        first = 2;
    else if (argc > 1 && argv[1][0] != '-') {
        fprintf(stderr, "%s: unknown command '%s' (commands: serve; see --help)\n", prog, argv[1]);
        return 2;
    }
    return cmd_serve(prog, argc - first, argv + first);
}
