/* Render slots and per-client token buckets (see ts_limits.h). */
#include "ts_limits.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>

/* ---- render slots ---- */

struct ts_slots {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int max_active, max_waiting;
    int active, waiting;
};

ts_slots *ts_slots_create(int max_active, int max_waiting)
{
    ts_slots *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->max_active = max_active > 0 ? max_active : 1;
    s->max_waiting = max_waiting >= 0 ? max_waiting : 0;
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    /* Monotonic: a wall-clock step must not stretch or cut a wait. */
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, &attr);
    pthread_condattr_destroy(&attr);
    return s;
}

void ts_slots_destroy(ts_slots *s)
{
    if (!s)
        return;
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

int ts_slots_acquire(ts_slots *s, unsigned timeout_ms)
{
    if (!s)
        return 0;
    pthread_mutex_lock(&s->mu);
    if (s->active < s->max_active) {
        s->active++;
        pthread_mutex_unlock(&s->mu);
        return 0;
    }
    if (s->waiting >= s->max_waiting) {
        pthread_mutex_unlock(&s->mu);
        return -1;
    }
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    s->waiting++;
    int rc = 0;
    while (s->active >= s->max_active) {
        if (pthread_cond_timedwait(&s->cv, &s->mu, &deadline) == ETIMEDOUT &&
            s->active >= s->max_active) {
            rc = -2;
            break;
        }
    }
    s->waiting--;
    if (rc == 0)
        s->active++;
    pthread_mutex_unlock(&s->mu);
    return rc;
}

void ts_slots_release(ts_slots *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->active--;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

void ts_slots_counts(ts_slots *s, int *active, int *waiting)
{
    *active = *waiting = 0;
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    *active = s->active;
    *waiting = s->waiting;
    pthread_mutex_unlock(&s->mu);
}

/* ---- token buckets ---- */

#define RL_SHARDS 16
#define RL_SLOTS 1024 /* per shard: 16k clients tracked at once */
#define RL_PROBE 8
#define RL_KEY 48     /* textual IPv6 fits */

typedef struct bucket {
    char client[RL_KEY];
    double tokens;
    uint64_t last_ns;
} bucket;

typedef struct shard {
    pthread_mutex_t mu;
    bucket b[RL_SLOTS];
} shard;

struct ts_ratelimit {
    double rate, burst;
    uint64_t full_ns; /* time for an empty bucket to refill */
    shard shards[RL_SHARDS];
};

ts_ratelimit *ts_ratelimit_create(double rate, double burst)
{
    if (!(rate > 0))
        return NULL;
    ts_ratelimit *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->rate = rate;
    r->burst = burst >= 1 ? burst : 1;
    r->full_ns = (uint64_t)(r->burst / rate * 1e9);
    for (int i = 0; i < RL_SHARDS; i++)
        pthread_mutex_init(&r->shards[i].mu, NULL);
    return r;
}

void ts_ratelimit_destroy(ts_ratelimit *r)
{
    if (!r)
        return;
    for (int i = 0; i < RL_SHARDS; i++)
        pthread_mutex_destroy(&r->shards[i].mu);
    free(r);
}

bool ts_ratelimit_take(ts_ratelimit *r, const char *client, uint64_t now_ns, double *retry_after_s)
{
    if (!r)
        return true;
    if (!client)
        client = "";
    size_t len = strnlen(client, RL_KEY - 1);
    uint64_t h = XXH3_64bits(client, len);
    shard *sh = &r->shards[h % RL_SHARDS];
    size_t base = (size_t)(h / RL_SHARDS) % RL_SLOTS;
    pthread_mutex_lock(&sh->mu);
    bucket *found = NULL, *victim = NULL;
    for (int i = 0; i < RL_PROBE && !found; i++) {
        bucket *b = &sh->b[(base + (size_t)i) % RL_SLOTS];
        if (b->client[0] && strncmp(b->client, client, len) == 0 && b->client[len] == '\0')
            found = b;
        else if (!victim || !b->client[0] || b->last_ns < victim->last_ns)
            victim = b; /* empty, else least recently seen */
    }
    if (!found) {
        /* A reused slot restarts full: reusing an idle client's slot (idle
         * longer than a refill) changes nothing for it; evicting a busy one
         * only happens with more than RL_SLOTS * RL_SHARDS active clients. */
        found = victim;
        memcpy(found->client, client, len);
        found->client[len] = '\0';
        found->tokens = r->burst;
        found->last_ns = now_ns;
    }
    if (now_ns > found->last_ns) {
        found->tokens = fmin(r->burst, found->tokens + (double)(now_ns - found->last_ns) * 1e-9 * r->rate);
        found->last_ns = now_ns;
    }
    bool ok = found->tokens >= 1.0;
    if (ok)
        found->tokens -= 1.0;
    else if (retry_after_s)
        *retry_after_s = (1.0 - found->tokens) / r->rate;
    pthread_mutex_unlock(&sh->mu);
    return ok;
}
