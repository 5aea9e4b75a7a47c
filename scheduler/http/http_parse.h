/* The dashboard's request-target parser: one raw HTTP request-target ("/api/v1/jobs?state=
 * running&limit=20") in, one route with checked parameters out. A pure function (no I/O, no
 * globals, no allocation) so it can be fuzzed and unit tested with hostile input; http.c
 * hands it the target exactly as the client sent it, before anyone percent-decoded it.
 *
 * Rules: the target is at most HTTP_MAX_TARGET bytes (else 414); it starts with '/'; %XX
 * escapes must be well formed; a decoded NUL, control character, backslash or '/' inside a
 * path segment, and "." / ".." segments are refused (400); unknown paths are 404; query
 * keys a route does not know, repeated keys and malformed values are 400. */
#ifndef WSLQ_HTTP_PARSE_H
#define WSLQ_HTTP_PARSE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "common/err.h"
#include "common/limits.h" /* HTTP_MAX_*, HTTP_JOBS_*, HTTP_LOG_* */

typedef enum {
    HTTP_R_NONE = 0,
    HTTP_R_STATIC,      /* a file of the page (file) */
    HTTP_R_SUMMARY,     /* /api/v1/summary */
    HTTP_R_JOBS,        /* /api/v1/jobs */
    HTTP_R_JOB,         /* /api/v1/jobs/<id> */
    HTTP_R_JOB_LOG,     /* /api/v1/jobs/<id>/log */
    HTTP_R_JOB_METRICS, /* /api/v1/jobs/<id>/metrics */
    HTTP_R_NODES,       /* /api/v1/nodes */
    HTTP_R_EVENTS,      /* /api/v1/events (Server-Sent Events) */
    HTTP_R_METRICS,     /* /metrics (Prometheus) */
    HTTP_R_HEALTH,      /* /healthz */
    HTTP_R_WHOAMI,      /* /api/v1/whoami: who the token belongs to */
    HTTP_R_USAGE,       /* /api/v1/usage: GPU-hours per user and node, the last 7 days */
} http_route_t;

typedef struct {
    http_route_t route;
    char file[64];                  /* STATIC: asset name, "index.html" for "/" */
    uint64_t job_id;                /* JOB*: from the path; EVENTS: ?job= to follow (0 = none) */
    unsigned state_mask;            /* JOBS: bit (1 << JobState); 0 = every state */
    char user[HTTP_MAX_VALUE + 1];  /* JOBS: "" = any */
    char name[HTTP_MAX_VALUE + 1];  /* JOBS: "" = any */
    unsigned limit;                 /* JOBS: rows, 1..HTTP_JOBS_MAX */
    uint64_t before;                /* JOBS: only ids below this; 0 = newest */
    int64_t offset;                 /* LOG: byte offset; -1 = the tail */
    uint32_t max;                   /* LOG: bytes, 1..HTTP_LOG_MAX */
    char token[HTTP_MAX_TOKEN + 1]; /* ?access_token= on any route, "" = none */
} http_req_t;

/* Parse 'target' (len bytes, not necessarily NUL-terminated) into *req. Returns 0, or -1
 * with *status set to the HTTP status to answer (400, 404, 414) and *err to one line saying
 * why. Never reads past len. */
int
http_parse_target(const char *target, size_t len, http_req_t *req, int *status, wq_error_t *err);

/* Bits of http_req_t.state_mask for a comma list of state names ("running,pending",
 * case-insensitive, also "active" and "ended"). 0 or -1 with *err. */
int http_parse_states(const char *list, unsigned *mask, wq_error_t *err);

/* A listen address: "HOST:PORT" with HOST an IPv4 address, the name of a network interface
 * (its first IPv4 address now: "eth0:7421" serves the LAN only), "[IPv6]", "*" (every IPv4
 * address) or "localhost"; a bare "PORT" means 127.0.0.1. PORT is 0..65535 (0 = any free
 * port). Fills *ss and *len; 0 or -1 with *err. No name lookup. */
int http_parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *len, wq_error_t *err);

#endif
