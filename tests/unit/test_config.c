/* Settings precedence (flag > env > .env > default), validation and help. */
#include "ts_config.h"
#include "ts_test.h"

#include <stdlib.h>
#include <unistd.h>

static void defaults(void)
{
    unsetenv("TESSERA_PORT");
    setenv("TESSERA_ENV_FILE", "/nonexistent/.env", 1);
    ts_config cfg;
    char err[512];
    bool help;
    CHECK_INT(ts_config_load(&cfg, 0, NULL, err, sizeof err, &help), 0);
    CHECK_INT(cfg.port, 8080);
    CHECK_INT(cfg.cache_ttl, 3600);
    CHECK_STR(cfg.cache_endpoint, "memory://");
    CHECK(cfg.access_log);
    ts_config_free(&cfg);
}

static void precedence(void)
{
    char path[] = "/tmp/ts_envXXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    const char text[] = "# comment\nTESSERA_PORT=1111\nCACHE_TTL=5\nexport CACHE_NAMESPACE=\"ns1\"\nUNRELATED=1\n";
    CHECK(write(fd, text, sizeof text - 1) == (ssize_t)(sizeof text - 1));
    close(fd);
    setenv("TESSERA_ENV_FILE", path, 1);
    setenv("CACHE_TTL", "7", 1);
    char *argv[] = {"--cache-namespace", "ns2", "--threads=3", "--no-access-log"};
    ts_config cfg;
    char err[512];
    bool help;
    int rc = ts_config_load(&cfg, 4, argv, err, sizeof err, &help);
    unlink(path);
    unsetenv("CACHE_TTL");
    CHECK_INT(rc, 0);
    CHECK_INT(cfg.port, 1111);               /* .env */
    CHECK_INT(cfg.cache_ttl, 7);             /* env beats .env */
    CHECK_STR(cfg.cache_namespace, "ns2");   /* flag beats .env */
    CHECK_INT(cfg.threads, 3);
    CHECK(!cfg.access_log);
    ts_config_free(&cfg);
}

static void bad_values(void)
{
    setenv("TESSERA_ENV_FILE", "/nonexistent/.env", 1);
    ts_config cfg;
    char err[512];
    bool help;
    char *a1[] = {"--port", "99999"};
    CHECK_INT(ts_config_load(&cfg, 2, a1, err, sizeof err, &help), -1);
    CHECK(strstr(err, "--port") && strstr(err, "99999"));
    ts_config_free(&cfg);
    char *a2[] = {"--bogus"};
    CHECK_INT(ts_config_load(&cfg, 1, a2, err, sizeof err, &help), -1);
    CHECK(strstr(err, "unknown option"));
    ts_config_free(&cfg);
    char *a3[] = {"--cache-endpoint", "ftp://x"};
    CHECK_INT(ts_config_load(&cfg, 2, a3, err, sizeof err, &help), -1);
    ts_config_free(&cfg);
    setenv("TESSERA_THREADS", "many", 1);
    CHECK_INT(ts_config_load(&cfg, 0, NULL, err, sizeof err, &help), -1);
    CHECK(strstr(err, "TESSERA_THREADS") && strstr(err, "environment"));
    unsetenv("TESSERA_THREADS");
    ts_config_free(&cfg);
}

static void help_lists_every_setting(void)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ts_config_usage(f, "tessera");
    fclose(f);
    const char *names[] = {"--host", "--port", "--threads", "--data-root", "CACHE_ENDPOINT",
                           "CACHE_TTL", "CACHE_NAMESPACE", "--log-level"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        CHECK(strstr(buf, names[i]) != NULL);
    free(buf);
}

TS_TEST_MAIN(TEST(defaults), TEST(precedence), TEST(bad_values), TEST(help_lists_every_setting))
