/* Webhook notifications (wslq submit --notify): a job's start, end, failure or requeue posted
 * as JSON to its owner's webhook URL (the scheduler config's notify-url, or notify-url.USER).
 *
 * The loop thread stages a notification while it handles the change; it is handed to the
 * sender thread only when the turn's COMMIT succeeded (nothing leaves before the disk has
 * it), and dropped with the turn otherwise. The sender thread posts with libcurl, one at a
 * time, retrying a failed post (no answer, or not 2xx) with a doubling backoff; the loop
 * never waits for it. What is still unsent when the scheduler stops is logged and dropped. */
#ifndef WSLQ_NOTIFY_H
#define WSLQ_NOTIFY_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

typedef struct notify notify_t;

typedef struct {
    int64_t timeout_ms; /* one post, connection included */
    unsigned retries;   /* posts after the first that failed */
    int64_t backoff_ms; /* before the first retry; doubles, at most NOTIFY_BACKOFF_MAX_MS */
    size_t max_pending; /* notifications waiting to be sent; over it the oldest is dropped */
} notify_config_t;

#define NOTIFY_BACKOFF_MAX_MS (5 * 60 * 1000)

void notify_config_init(notify_config_t *cfg);

/* Start the sender thread. NULL with *err when the thread or libcurl cannot start. */
notify_t *notify_new(const notify_config_t *cfg, wq_error_t *err);
/* Stop the thread (a post in flight may take up to the timeout) and log what is dropped. */
void notify_destroy(notify_t **self_p);

/* Loop thread: keep one notification until the turn commits. Takes body (malloc'd). */
void notify_stage(notify_t *self, const char *url, char *body);
/* Loop thread: 1 if the turn has staged a notification. */
int notify_staged(const notify_t *self);
/* The turn committed: hand what was staged to the sender. */
void notify_commit(notify_t *self);
/* The turn was rolled back: forget what was staged. */
void notify_discard(notify_t *self);

typedef struct {
    uint64_t sent_total;    /* posts answered 2xx */
    uint64_t failed_total;  /* given up after every retry */
    uint64_t dropped_total; /* dropped: over max_pending */
    uint64_t pending;       /* waiting for their (next) post */
} notify_stats_t;

/* Any thread. */
void notify_stats(notify_t *self, notify_stats_t *out);

/* "http://..." or "https://..." with a host: 0, else -1 with a one-line reason. */
int notify_check_url(const char *url, wq_error_t *err);

#endif
