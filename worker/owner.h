/* The PC owner's state, from the file the Windows-side reporter writes
 * (deploy/windows/wslq-owner.ps1; format in deploy/windows/README.md). A missing, unreadable,
 * unparsable or stale file is OWNER_UNKNOWN, never OWNER_AWAY. */
#ifndef WSLQ_WORKER_OWNER_H
#define WSLQ_WORKER_OWNER_H

#include <stddef.h>
#include <stdint.h>

/* Values as on the wire (proto/wslq.proto OwnerState). */
enum owner_state { OWNER_UNKNOWN = 0, OWNER_AWAY = 1, OWNER_PRESENT = 2, OWNER_GAMING = 3 };
/* Values as on the wire (proto/wslq.proto OwnerPolicy). */
enum owner_policy { OWNER_IGNORE = 0, OWNER_YIELD = 1, OWNER_SUSPEND = 2, OWNER_EVICT = 3 };

#define OWNER_FILE_MAX       (64 * 1024) /* a larger file is not read: unknown */
#define OWNER_FORMAT_VERSION 1

typedef struct owner_limits {
    int away_min;   /* idle this many minutes or more = away */
    int stale_s;    /* a report older (or this much newer) than this = unknown */
    int gpu_mem_mb; /* Windows processes holding this much GPU memory in all = gaming; 0 = off */
    int gpu_pct;    /* one Windows process's busiest engine at this % or more = gaming; 0 = off */
} owner_limits_t;

typedef struct owner_report {
    int version;
    int64_t time;       /* Unix seconds the reporter wrote it */
    int64_t idle_s;     /* seconds since the last keyboard/mouse input */
    int fullscreen;     /* a full-screen window is in front */
    int gpu_ok;         /* the GPU counters could be read */
    int64_t gpu_mem_mb; /* the Windows processes' dedicated GPU memory, WSL's own excluded */
    double gpu_pct;     /* the busiest Windows process's busiest engine, WSL's own excluded */
    char gpu_top[64];   /* that process's name */
    int tdr_delay_s;    /* TdrDelay, -1 = not in the file */
    int64_t tdr_events; /* display driver resets (TDR) since boot, -1 = not in the file */
} owner_report_t;

void owner_limits_default(owner_limits_t *l);

/* "unknown", "away", "present", "gaming"; "ignore", "yield", "suspend", "evict". */
const char *owner_state_name(int s);
const char *owner_policy_name(int p);
/* "ignore", "yield", "suspend" or "evict" into *out; -1 if none of them. */
int owner_policy_parse(const char *s, int *out);

/* Classify a report's text (len bytes, need not be NUL-terminated) at Unix time now. Pure.
 * *r gets what was read (may be NULL); why gets a one-line reason for the state. */
enum owner_state owner_classify(const char *text,
                                size_t len,
                                int64_t now,
                                const owner_limits_t *lim,
                                owner_report_t *r,
                                char *why,
                                size_t whylen);

/* Read path (at most OWNER_FILE_MAX bytes) and classify it. *r is filled in every case: a file
 * that cannot be read gives a report with nothing in it (version 0, TDR fields -1). */
enum owner_state owner_read(const char *path,
                            int64_t now,
                            const owner_limits_t *lim,
                            owner_report_t *r,
                            char *why,
                            size_t whylen);

#endif
