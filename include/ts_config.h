/*
 * Settings: one declarative table (name, type, default, bounds, environment
 * variable, help). Values come from CLI flags, the environment and a .env file;
 * flags win over the environment, the environment over .env.
 */
#ifndef TS_CONFIG_H
#define TS_CONFIG_H

#include <stdbool.h>
#include <stdio.h>

#ifndef TS_DEFAULT_TMS_DIR
#define TS_DEFAULT_TMS_DIR "tms"
#endif
#ifndef TS_DEFAULT_WEB_DIR
#define TS_DEFAULT_WEB_DIR "web"
#endif
#ifndef TS_DEFAULT_DATA_ROOT
#define TS_DEFAULT_DATA_ROOT "data"
#endif

/* X(field, type, flag, env, default, min, max, help)
 * type is STR, INT or BOOL; min/max bound INT values. */
#define TS_CONFIG_TABLE(X)                                                                 \
    X(host, STR, "host", "TESSERA_HOST", "0.0.0.0", 0, 0, "address to listen on")          \
    X(port, INT, "port", "TESSERA_PORT", "8080", 1, 65535, "TCP port to listen on")         \
    X(threads, INT, "threads", "TESSERA_THREADS", "0", 0, 512,                               \
      "worker threads (0 = number of cores)")                                              \
    X(data_root, STR, "data-root", "TESSERA_DATA_ROOT", TS_DEFAULT_DATA_ROOT, 0, 0,        \
      "folder whose GeoTIFFs may be served")                                               \
    X(default_dataset, STR, "default-dataset", "TESSERA_DEFAULT_DATASET", "", 0, 0,        \
      "dataset served when a request has no ?url= (default: first .tif in data root)")     \
    X(base_url, STR, "base-url", "TESSERA_BASE_URL", "", 0, 0,                             \
      "public base URL for absolute links (default: from Host/X-Forwarded-*)")             \
    X(tms_dir, STR, "tms-dir", "TESSERA_TMS_DIR", TS_DEFAULT_TMS_DIR, 0, 0,                \
      "folder of the built-in TileMatrixSet JSON files")                                   \
    X(tms_extra_dir, STR, "tms-extra-dir", "TESSERA_TMS_EXTRA_DIR", "", 0, 0,              \
      "folder of additional (custom) TileMatrixSet JSON files")                            \
    X(web_dir, STR, "web-dir", "TESSERA_WEB_DIR", TS_DEFAULT_WEB_DIR, 0, 0,                \
      "folder of the map viewer's assets (npm-installed)")                                 \
    X(log_level, STR, "log-level", "TESSERA_LOG_LEVEL", "info", 0, 0,                      \
      "debug, info, warn, error or off")                                                   \
    X(access_log, BOOL, "access-log", "TESSERA_ACCESS_LOG", "true", 0, 0,                  \
      "log one line per request")                                                          \
    X(gdal_cache_mb, INT, "gdal-cache-mb", "TESSERA_GDAL_CACHE_MB", "256", 8, 65536,       \
      "MiB of decoded source blocks shared by all threads (GDAL's own cache: 1/4 more)")   \
    X(max_tilesize, INT, "max-tilesize", "TESSERA_MAX_TILESIZE", "2048", 64, 8192,         \
      "largest tile edge in pixels a request may ask for")                                 \
    X(connection_timeout, INT, "connection-timeout", "TESSERA_CONNECTION_TIMEOUT", "30", 1, \
      3600, "seconds an idle connection is kept")                                          \
    X(cache_endpoint, STR, "cache-endpoint", "CACHE_ENDPOINT", "memory://", 0, 0,          \
      "memory://, redis://[:password@]host:port/db, unix:///path.sock or none")            \
    X(cache_ttl, INT, "cache-ttl", "CACHE_TTL", "3600", 0, 315360000,                      \
      "seconds a cached response lives (0 = no expiry)")                                   \
    X(cache_namespace, STR, "cache-namespace", "CACHE_NAMESPACE", "tessera", 0, 0,         \
      "prefix of every cache key")                                                         \
    X(cache_memory_mb, INT, "cache-memory-mb", "CACHE_MEMORY_MB", "256", 1, 1048576,       \
      "memory cache budget in MiB")                                                        \
    X(cache_l1_mb, INT, "cache-l1-mb", "CACHE_L1_MB", "0", 0, 1048576,                     \
      "in-memory L1 in front of Redis, MiB (0 = off)")                                     \
    X(cache_admin_token, STR, "cache-admin-token", "CACHE_ADMIN_TOKEN", "", 0, 0,          \
      "bearer token for DELETE /cache (unset = endpoint off)")                             \
    X(cache_max_age, INT, "cache-max-age", "TESSERA_CACHE_MAX_AGE", "3600", 0, 315360000,  \
      "max-age of Cache-Control on 200 responses")                                         \
    X(metrics_private, BOOL, "metrics-private", "TESSERA_METRICS_PRIVATE", "false", 0, 0,  \
      "GET /metrics requires the CACHE_ADMIN_TOKEN bearer token")                          \
    X(max_renders, INT, "max-renders", "TESSERA_MAX_RENDERS", "0", 0, 4096,                 \
      "renders running at once (0 = worker threads)")                                      \
    X(render_queue, INT, "render-queue", "TESSERA_RENDER_QUEUE", "64", 0, 100000,           \
      "renders that may wait for a slot; beyond that: 503 + Retry-After")                  \
    X(render_queue_timeout_ms, INT, "render-queue-timeout-ms", "TESSERA_RENDER_QUEUE_TIMEOUT_MS", \
      "5000", 1, 600000, "longest wait for a render slot before a 503")                    \
    X(render_timeout_ms, INT, "render-timeout-ms", "TESSERA_RENDER_TIMEOUT_MS", "20000", 0,  \
      3600000, "a render running longer is abandoned with a 503 (0 = no limit)")           \
    X(rate_limit, INT, "rate-limit", "TESSERA_RATE_LIMIT", "0", 0, 1000000,                 \
      "requests per second per client IP (token bucket; 0 = off); shared through Redis "   \
      "when Redis is the cache")                                                           \
    X(rate_burst, INT, "rate-burst", "TESSERA_RATE_BURST", "0", 0, 10000000,                \
      "token bucket size (0 = 2 x rate-limit)")                                            \
    X(trust_forwarded_for, BOOL, "trust-forwarded-for", "TESSERA_TRUST_FORWARDED_FOR",       \
      "false", 0, 0, "rate-limit by the first X-Forwarded-For address (behind a proxy)")  \
    X(max_connections, INT, "max-connections", "TESSERA_MAX_CONNECTIONS", "1024", 1,        \
      1000000, "open connections accepted at once")                                        \
    X(max_connections_per_ip, INT, "max-connections-per-ip", "TESSERA_MAX_CONNECTIONS_PER_IP", \
      "0", 0, 1000000, "open connections per client IP (0 = no limit)")                    \
    X(allow_remote, BOOL, "allow-remote", "TESSERA_ALLOW_REMOTE", "false", 0, 0,            \
      "allow http(s):// dataset URLs (only for hosts in --allowed-hosts)")                 \
    X(allowed_hosts, STR, "allowed-hosts", "ALLOWED_HOSTS", "", 0, 0,                       \
      "comma-separated host or host:port list remote datasets may come from")

typedef struct ts_config {
#define TS_CFG_FIELD_STR char *
#define TS_CFG_FIELD_INT long
#define TS_CFG_FIELD_BOOL bool
#define TS_CFG_FIELD(field, type, flag, env, def, min, max, help) TS_CFG_FIELD_##type field;
    TS_CONFIG_TABLE(TS_CFG_FIELD)
#undef TS_CFG_FIELD
    char *env_file; /* the .env that was read, if any */
} ts_config;

/* Fill cfg with defaults, then .env, environment and argv (in rising
 * priority). argv starts after the subcommand. Returns 0, or -1 with a
 * one-line message in err. `*help` is set when --help was given. */
int ts_config_load(ts_config *cfg, int argc, char **argv, char *err, size_t errlen, bool *help);
void ts_config_free(ts_config *cfg);
void ts_config_usage(FILE *out, const char *prog);

#endif
