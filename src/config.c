/* Settings from defaults, .env, environment and CLI flags (see ts_config.h). */
#include "ts_config.h"
#include "ts_common.h"

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum opt_type { T_STR, T_INT, T_BOOL };

typedef struct opt {
    const char *field;
    enum opt_type type;
    const char *flag;
    const char *env;
    const char *def;
    long min, max;
    const char *help;
    size_t offset;
} opt;

static const opt options[] = {
#define TS_CFG_OPT(field, type, flag, env, def, min, max, help)                            \
    {#field, T_##type, flag, env, def, min, max, help, offsetof(ts_config, field)},
    TS_CONFIG_TABLE(TS_CFG_OPT)
#undef TS_CFG_OPT
};
#define N_OPTIONS (sizeof options / sizeof options[0])

static const opt *find_flag(const char *name, size_t len)
{
    for (size_t i = 0; i < N_OPTIONS; i++)
        if (strlen(options[i].flag) == len && strncmp(options[i].flag, name, len) == 0)
            return &options[i];
    return NULL;
}

static const opt *find_env(const char *name)
{
    for (size_t i = 0; i < N_OPTIONS; i++)
        if (strcmp(options[i].env, name) == 0)
            return &options[i];
    return NULL;
}

/* Parse and store one value; `source` names where it came from for the error. */
static int set_value(ts_config *cfg, const opt *o, const char *value, const char *source,
                     char *err, size_t errlen)
{
    char *base = (char *)cfg + o->offset;
    switch (o->type) {
    case T_STR: {
        char *copy = strdup(value);
        if (!copy) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        free(*(char **)base);
        *(char **)base = copy;
        return 0;
    }
    case T_INT: {
        char *end;
        errno = 0;
        long v = strtol(value, &end, 10);
        if (errno || end == value || *end != '\0' || v < o->min || v > o->max) {
            snprintf(err, errlen, "invalid value for --%s (%s) from %s: '%s' (expected an integer %ld..%ld)",
                     o->flag, o->env, source, value, o->min, o->max);
            return -1;
        }
        *(long *)base = v;
        return 0;
    }
    case T_BOOL: {
        if (!strcasecmp(value, "1") || !strcasecmp(value, "true") || !strcasecmp(value, "yes") ||
            !strcasecmp(value, "on")) {
            *(bool *)base = true;
        } else if (!strcasecmp(value, "0") || !strcasecmp(value, "false") ||
                   !strcasecmp(value, "no") || !strcasecmp(value, "off")) {
            *(bool *)base = false;
        } else {
            snprintf(err, errlen, "invalid value for --%s (%s) from %s: '%s' (expected true or false)",
                     o->flag, o->env, source, value);
            return -1;
        }
        return 0;
    }
    }
    return -1;
}

/* Values that need more than a type check. */
static int validate(const ts_config *cfg, char *err, size_t errlen)
{
    if (ts_log_level_parse(cfg->log_level) < 0) {
        snprintf(err, errlen, "invalid value for --log-level (TESSERA_LOG_LEVEL): '%s' (expected debug, info, warn, error or off)",
                 cfg->log_level);
        return -1;
    }
    const char *ep = cfg->cache_endpoint;
    if (!(strncmp(ep, "memory://", 9) == 0 || strncmp(ep, "redis://", 8) == 0 ||
          strncmp(ep, "unix://", 7) == 0 || strcmp(ep, "none") == 0 || ep[0] == '\0')) {
        snprintf(err, errlen, "invalid value for --cache-endpoint (CACHE_ENDPOINT): '%s' (expected memory://, redis://host:port/db, unix:///path or none)",
                 ep);
        return -1;
    }
    return 0;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

/* .env: KEY=VALUE lines, '#' comments, optional `export `, optional quotes. */
static int load_env_file(ts_config *cfg, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0; /* a missing .env is normal */
    char line[4096];
    int lineno = 0, rc = 0;
    while (rc == 0 && fgets(line, sizeof line, f)) {
        lineno++;
        char *s = trim(line);
        if (*s == '\0' || *s == '#')
            continue;
        if (strncmp(s, "export ", 7) == 0)
            s = trim(s + 7);
        char *eq = strchr(s, '=');
        if (!eq)
            continue;
        *eq = '\0';
        char *key = trim(s), *val = trim(eq + 1);
        size_t vl = strlen(val);
        if (vl >= 2 && (val[0] == '"' || val[0] == '\'') && val[vl - 1] == val[0]) {
            val[vl - 1] = '\0';
            val++;
        }
        const opt *o = find_env(key);
        if (!o)
            continue; /* .env files are shared with other tools: ignore unknown keys */
        char source[600];
        snprintf(source, sizeof source, "%s:%d", path, lineno);
        rc = set_value(cfg, o, val, source, err, errlen);
    }
    fclose(f);
    return rc;
}

int ts_config_load(ts_config *cfg, int argc, char **argv, char *err, size_t errlen, bool *help)
{
    memset(cfg, 0, sizeof *cfg);
    *help = false;
    err[0] = '\0';
    for (size_t i = 0; i < N_OPTIONS; i++)
        if (set_value(cfg, &options[i], options[i].def, "default", err, errlen) < 0)
            return -1;

    /* The .env path itself can come from a flag or the environment. */
    const char *env_file = getenv("TESSERA_ENV_FILE");
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "--env-file=", 11) == 0)
            env_file = argv[i] + 11;
        else if (strcmp(argv[i], "--env-file") == 0 && i + 1 < argc)
            env_file = argv[i + 1];
    }
    if (!env_file)
        env_file = ".env";
    cfg->env_file = strdup(env_file);
    if (load_env_file(cfg, env_file, err, errlen) < 0)
        return -1;

    for (size_t i = 0; i < N_OPTIONS; i++) {
        const char *v = getenv(options[i].env);
        if (v && set_value(cfg, &options[i], v, "environment", err, errlen) < 0)
            return -1;
    }

    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            *help = true;
            return 0;
        }
        if (strncmp(a, "--", 2) != 0) {
            snprintf(err, errlen, "unexpected argument '%s' (see --help)", a);
            return -1;
        }
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        if (nlen == 8 && strncmp(name, "env-file", 8) == 0) {
            if (!eq)
                i++;
            continue;
        }
        const opt *o = find_flag(name, nlen);
        if (!o && strncmp(name, "no-", 3) == 0) {
            const opt *b = find_flag(name + 3, nlen - 3);
            if (b && b->type == T_BOOL && !eq) {
                *(bool *)((char *)cfg + b->offset) = false;
                continue;
            }
        }
        if (!o) {
            snprintf(err, errlen, "unknown option '--%.*s' (see --help)", (int)nlen, name);
            return -1;
        }
        const char *value;
        if (eq) {
            value = eq + 1;
        } else if (o->type == T_BOOL) {
            value = "true";
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            snprintf(err, errlen, "option '--%s' needs a value", o->flag);
            return -1;
        }
        if (set_value(cfg, o, value, "command line", err, errlen) < 0)
            return -1;
    }
    return validate(cfg, err, errlen);
}

void ts_config_free(ts_config *cfg)
{
    for (size_t i = 0; i < N_OPTIONS; i++)
        if (options[i].type == T_STR)
            TS_FREE(*(char **)((char *)cfg + options[i].offset));
    TS_FREE(cfg->env_file);
}

void ts_config_usage(FILE *out, const char *prog)
{
    fprintf(out,
            "Usage: %s [serve] [options]\n"
            "\n"
            "tessera serves map tiles from Cloud-Optimized GeoTIFFs, with a built-in cache.\n"
            "Every option can also be set in the environment or in a .env file\n"
            "(command line > environment > .env > default).\n"
            "\n"
            "Options:\n",
            prog);
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const opt *o = &options[i];
        const char *meta = o->type == T_INT ? " N" : o->type == T_STR ? " VALUE" : "";
        char left[64];
        snprintf(left, sizeof left, "--%s%s", o->flag, meta);
        fprintf(out, "  %-28s %s\n  %-28s [env %s, default: %s]\n", left, o->help, "", o->env,
                o->def[0] ? o->def : "(empty)");
    }
    fprintf(out, "  %-28s %s\n", "--env-file PATH", "read settings from this file (default: .env; env TESSERA_ENV_FILE)");
    fprintf(out, "  %-28s %s\n", "--help", "show this help");
}
