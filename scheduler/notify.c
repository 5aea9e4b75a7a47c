/* Webhook notifications: the sender thread and its queue (see notify.h). */
#include "scheduler/notify.h"

#include <curl/curl.h>
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/mem.h"

typedef struct item {
    char *url;
    char *body;
    int64_t next_mono; /* not posted before this */
    uint64_t seq;      /* order of arrival: the older first among those due */
    unsigned tries;
    struct item *next;
} item_t;

struct notify {
    notify_config_t cfg;
    /* loop thread only */
    item_t *staged, **staged_tail;
    /* shared, under mu */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    item_t *queue; /* unordered; the sender picks the earliest due */
    size_t n_queue;
    uint64_t next_seq;
    int stop;
    /* the sender's */
    pthread_t thread;
    int started;
    CURL *curl;
    int curl_inited;     /* curl_global_init succeeded: cleaned up at the end */
    atomic_int stopping; /* read by libcurl's progress callback: abort a post in flight */
    _Atomic uint64_t sent_total, failed_total, dropped_total;
};

/* libcurl, opened when webhooks are first configured. Linked, it and what it needs (OpenSSL,
 * libssh2, LDAP, Kerberos, RTMP, ...) were loaded by every scheduler and were a quarter of an
 * idle one's resident memory, for a feature most labs leave off. */
static struct {
    int loaded;
    CURLcode (*global_init)(long);
    void (*global_cleanup)(void);
    CURL *(*easy_init)(void);
    CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
    CURLcode (*easy_perform)(CURL *);
    CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
    const char *(*easy_strerror)(CURLcode);
    void (*easy_cleanup)(CURL *);
} lib;

#define CURL_SONAME "libcurl.so.4"

static int
curl_load(wq_error_t *err)
{
    if (lib.loaded)
        return 0;
    void *h = dlopen(CURL_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        const char *why = dlerror();
        return wq_fail(err, WQ_ESYS,
                       "webhooks (--notify-url) need libcurl: %.200s; install libcurl4",
                       why ? why : CURL_SONAME);
    }
    struct {
        const char *name;
        void **fn;
    } syms[] = {
        {"curl_global_init", (void **) &lib.global_init},
        {"curl_global_cleanup", (void **) &lib.global_cleanup},
        {"curl_easy_init", (void **) &lib.easy_init},
        {"curl_easy_setopt", (void **) &lib.easy_setopt},
        {"curl_easy_perform", (void **) &lib.easy_perform},
        {"curl_easy_getinfo", (void **) &lib.easy_getinfo},
        {"curl_easy_strerror", (void **) &lib.easy_strerror},
        {"curl_easy_cleanup", (void **) &lib.easy_cleanup},
    };
    for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
        *syms[i].fn = dlsym(h, syms[i].name);
        if (*syms[i].fn == NULL) {
            dlclose(h);
            return wq_fail(err, WQ_ESYS, "webhooks (--notify-url): %s has no %s", CURL_SONAME,
                           syms[i].name);
        }
    }
    lib.loaded = 1; /* kept open for the process's life, as a linked library would be */
    return 0;
}

void
notify_config_init(notify_config_t *cfg)
{
    cfg->timeout_ms = 5000;
    cfg->retries = 5;
    cfg->backoff_ms = 2000;
    cfg->max_pending = 10000;
}

int
notify_check_url(const char *url, wq_error_t *err)
{
    const char *host = NULL;
    if (strncmp(url, "http://", 7) == 0)
        host = url + 7;
    else if (strncmp(url, "https://", 8) == 0)
        host = url + 8;
    if (host == NULL)
        return wq_fail(err, WQ_EINVAL,
                       "webhook URL '%.80s' does not start with http:// or https://", url);
    if (*host == '\0' || *host == '/' || *host == ':')
        return wq_fail(err, WQ_EINVAL, "webhook URL '%.80s' names no host", url);
    for (const char *p = url; *p; p++)
        if ((unsigned char) *p <= ' ' || *p == 0x7f)
            return wq_fail(err, WQ_EINVAL, "webhook URL '%.80s' has a space or control character",
                           url);
    return 0;
}

static void
item_free(item_t *it)
{
    free(it->url);
    free(it->body);
    free(it);
}

static size_t
discard(char *ptr, size_t size, size_t nmemb, void *arg)
{
    (void) ptr;
    (void) arg;
    return size * nmemb;
}

static int
progress(void *arg, curl_off_t dlt, curl_off_t dln, curl_off_t ult, curl_off_t uln)
{
    (void) dlt;
    (void) dln;
    (void) ult;
    (void) uln;
    notify_t *self = arg;
    return atomic_load(&self->stopping) ? 1 : 0; /* non-zero aborts the transfer */
}

/* One post: 0 when the receiver answered 2xx, else -1 with why. */
static int
post(notify_t *self, const item_t *it, char *why, size_t size)
{
    CURL *c = self->curl;
    lib.easy_setopt(c, CURLOPT_URL, it->url);
    lib.easy_setopt(c, CURLOPT_POSTFIELDS, it->body);
    lib.easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long) strlen(it->body));
    CURLcode rc = lib.easy_perform(c);
    if (rc != CURLE_OK) {
        snprintf(why, size, "%s", lib.easy_strerror(rc));
        return -1;
    }
    long code = 0;
    lib.easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    if (code < 200 || code > 299) {
        snprintf(why, size, "the receiver answered HTTP %ld", code);
        return -1;
    }
    return 0;
}

static void
abstime_in(struct timespec *ts, int64_t ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (ms % 1000) * 1000000;
    if (ts->tv_nsec >= 1000000000) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000;
    }
}

/* The due item with the earliest (next_mono, seq), unlinked; NULL with *wait_ms when none is
 * due yet (-1: the queue is empty). Under mu. */
static item_t *
take_due(notify_t *self, int64_t now, int64_t *wait_ms)
{
    item_t **best = NULL;
    for (item_t **pp = &self->queue; *pp; pp = &(*pp)->next) {
        const item_t *it = *pp;
        if (best == NULL || it->next_mono < (*best)->next_mono ||
            (it->next_mono == (*best)->next_mono && it->seq < (*best)->seq))
            best = pp;
    }
    if (best == NULL) {
        *wait_ms = -1;
        return NULL;
    }
    if ((*best)->next_mono > now) {
        *wait_ms = (*best)->next_mono - now;
        return NULL;
    }
    item_t *it = *best;
    *best = it->next;
    it->next = NULL;
    self->n_queue--;
    return it;
}

static void *
sender(void *arg)
{
    notify_t *self = arg;
    pthread_mutex_lock(&self->mu);
    while (!self->stop) {
        int64_t wait_ms;
        item_t *it = take_due(self, wq_clock_mono_ms(), &wait_ms);
        if (it == NULL) {
            if (wait_ms < 0) {
                pthread_cond_wait(&self->cv, &self->mu);
            } else {
                struct timespec ts;
                abstime_in(&ts, wait_ms);
                pthread_cond_timedwait(&self->cv, &self->mu, &ts);
            }
            continue;
        }
        pthread_mutex_unlock(&self->mu);
        char why[CURL_ERROR_SIZE + 64];
        int ok = post(self, it, why, sizeof why) == 0;
        pthread_mutex_lock(&self->mu);
        if (ok) {
            atomic_fetch_add(&self->sent_total, 1);
            item_free(it);
            continue;
        }
        if (self->stop) { /* aborted by the stop: counted with the rest at destroy */
            it->next = self->queue;
            self->queue = it;
            self->n_queue++;
            break;
        }
        it->tries++;
        if (it->tries > self->cfg.retries) {
            atomic_fetch_add(&self->failed_total, 1);
            log_warn("webhook post given up after %u tries url=%s err=\"%s\"", it->tries, it->url,
                     why);
            item_free(it);
            continue;
        }
        int64_t backoff = self->cfg.backoff_ms;
        for (unsigned i = 1; i < it->tries && backoff < NOTIFY_BACKOFF_MAX_MS; i++)
            backoff *= 2;
        if (backoff > NOTIFY_BACKOFF_MAX_MS)
            backoff = NOTIFY_BACKOFF_MAX_MS;
        log_warn("webhook post failed, retry in %" PRId64 " ms url=%s try=%u err=\"%s\"", backoff,
                 it->url, it->tries, why);
        it->next_mono = wq_clock_mono_ms() + backoff;
        it->next = self->queue;
        self->queue = it;
        self->n_queue++;
    }
    pthread_mutex_unlock(&self->mu);
    return NULL;
}

notify_t *
notify_new(const notify_config_t *cfg, wq_error_t *err)
{
    notify_t *self = wq_calloc(1, sizeof *self);
    self->cfg = *cfg;
    self->staged_tail = &self->staged;
    pthread_mutex_init(&self->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&self->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (curl_load(err) < 0)
        goto error;
    if (lib.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        wq_fail(err, WQ_ESYS, "cannot start libcurl for webhooks");
        goto error;
    }
    self->curl_inited = 1;
    self->curl = lib.easy_init();
    if (self->curl == NULL) {
        wq_fail(err, WQ_ESYS, "cannot start libcurl for webhooks");
        goto error;
    }
    CURL *c = self->curl;
    static char ua[] = "wslq-scheduler";
    lib.easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    lib.easy_setopt(c, CURLOPT_USERAGENT, ua);
    lib.easy_setopt(c, CURLOPT_TIMEOUT_MS, (long) cfg->timeout_ms);
    lib.easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long) cfg->timeout_ms);
    lib.easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
#if LIBCURL_VERSION_NUM >= 0x075500
    lib.easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    lib.easy_setopt(c, CURLOPT_PROTOCOLS, (long) (CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    lib.easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    lib.easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    lib.easy_setopt(c, CURLOPT_XFERINFOFUNCTION, progress);
    lib.easy_setopt(c, CURLOPT_XFERINFODATA, self);
    static struct curl_slist json = {"Content-Type: application/json", NULL};
    lib.easy_setopt(c, CURLOPT_HTTPHEADER, &json);
    int rc = pthread_create(&self->thread, NULL, sender, self);
    if (rc != 0) {
        wq_fail(err, WQ_ESYS, "cannot start the webhook thread: %s", strerror(rc));
        goto error;
    }
    self->started = 1;
    return self;
error:
    notify_destroy(&self);
    return NULL;
}

static size_t
free_list(item_t *it)
{
    size_t n = 0;
    while (it != NULL) {
        item_t *next = it->next;
        item_free(it);
        it = next;
        n++;
    }
    return n;
}

void
notify_destroy(notify_t **self_p)
{
    notify_t *self = *self_p;
    if (self == NULL)
        return;
    if (self->started) {
        pthread_mutex_lock(&self->mu);
        self->stop = 1;
        atomic_store(&self->stopping, 1);
        pthread_cond_signal(&self->cv);
        pthread_mutex_unlock(&self->mu);
        pthread_join(self->thread, NULL);
    }
    size_t n = free_list(self->queue) + free_list(self->staged);
    if (n > 0)
        log_warn("webhook notifications not sent, dropped at stop count=%zu", n);
    if (self->curl != NULL)
        lib.easy_cleanup(self->curl);
    if (self->curl_inited)
        lib.global_cleanup();
    pthread_cond_destroy(&self->cv);
    pthread_mutex_destroy(&self->mu);
    free(self);
    *self_p = NULL;
}

void
notify_stage(notify_t *self, const char *url, char *body)
{
    item_t *it = wq_calloc(1, sizeof *it);
    it->url = wq_strdup(url);
    it->body = body;
    *self->staged_tail = it;
    self->staged_tail = &it->next;
}

int
notify_staged(const notify_t *self)
{
    return self->staged != NULL;
}

void
notify_commit(notify_t *self)
{
    if (self->staged == NULL)
        return;
    int64_t now = wq_clock_mono_ms();
    pthread_mutex_lock(&self->mu);
    for (item_t *it = self->staged, *next; it != NULL; it = next) {
        next = it->next;
        if (self->n_queue >= self->cfg.max_pending) {
            /* the oldest goes: the receiver has been down for long, the newest matter more */
            item_t **oldest = &self->queue;
            for (item_t **pp = &self->queue; *pp; pp = &(*pp)->next)
                if ((*pp)->seq < (*oldest)->seq)
                    oldest = pp;
            item_t *gone = *oldest;
            *oldest = gone->next;
            self->n_queue--;
            atomic_fetch_add(&self->dropped_total, 1);
            log_warn("webhook queue full, oldest notification dropped url=%s max=%zu", gone->url,
                     self->cfg.max_pending);
            item_free(gone);
        }
        it->next_mono = now;
        it->seq = self->next_seq++;
        it->next = self->queue;
        self->queue = it;
        self->n_queue++;
    }
    pthread_cond_signal(&self->cv);
    pthread_mutex_unlock(&self->mu);
    self->staged = NULL;
    self->staged_tail = &self->staged;
}

void
notify_discard(notify_t *self)
{
    free_list(self->staged);
    self->staged = NULL;
    self->staged_tail = &self->staged;
}

void
notify_stats(notify_t *self, notify_stats_t *out)
{
    out->sent_total = atomic_load(&self->sent_total);
    out->failed_total = atomic_load(&self->failed_total);
    out->dropped_total = atomic_load(&self->dropped_total);
    pthread_mutex_lock(&self->mu);
    out->pending = self->n_queue;
    pthread_mutex_unlock(&self->mu);
}
