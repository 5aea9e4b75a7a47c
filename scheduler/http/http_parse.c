/* The dashboard's request-target parser; see http_parse.h. Pure: no I/O, no allocation. */
#include "scheduler/http/http_parse.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "proto/wslq.pb-c.h"

static const struct {
    const char *name;
    unsigned mask;
} state_names[] = {
    {"pending", 1u << WSLQ__JOB_STATE__PENDING},
    {"starting", 1u << WSLQ__JOB_STATE__STARTING},
    {"running", 1u << WSLQ__JOB_STATE__RUNNING},
    {"completed", 1u << WSLQ__JOB_STATE__COMPLETED},
    {"failed", 1u << WSLQ__JOB_STATE__FAILED},
    {"cancelled", 1u << WSLQ__JOB_STATE__CANCELLED},
    {"timeout", 1u << WSLQ__JOB_STATE__TIMEOUT},
    {"node_fail", 1u << WSLQ__JOB_STATE__NODE_FAIL},
    {"out_of_memory", 1u << WSLQ__JOB_STATE__OUT_OF_MEMORY},
    {"active", (1u << WSLQ__JOB_STATE__PENDING) | (1u << WSLQ__JOB_STATE__STARTING) |
                   (1u << WSLQ__JOB_STATE__RUNNING)},
    {"ended", (1u << WSLQ__JOB_STATE__COMPLETED) | (1u << WSLQ__JOB_STATE__FAILED) |
                  (1u << WSLQ__JOB_STATE__CANCELLED) | (1u << WSLQ__JOB_STATE__TIMEOUT) |
                  (1u << WSLQ__JOB_STATE__NODE_FAIL) | (1u << WSLQ__JOB_STATE__OUT_OF_MEMORY)},
};

static int
hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int
lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

/* Percent-decode s[0..n) into out (cap bytes including the NUL). 'plus' turns '+' into a
 * space (query strings). Refuses bad escapes, NUL and control characters, and, in a path
 * segment (!plus), '/' and '\\' however they were written. Returns the decoded length or -1
 * with *why. */
static long
decode(const char *s, size_t n, char *out, size_t cap, int plus, const char **why)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char) s[i];
        if (c == '%') {
            if (i + 2 >= n) {
                *why = "truncated %-escape";
                return -1;
            }
            int a = hexval(s[i + 1]), b = hexval(s[i + 2]);
            if (a < 0 || b < 0) {
                *why = "malformed %-escape";
                return -1;
            }
            c = a * 16 + b;
            i += 2;
            if (c == 0) {
                *why = "NUL byte (%00)";
                return -1;
            }
        } else if (c == '+' && plus) {
            c = ' ';
        }
        if (c < 0x20 || c == 0x7f) {
            *why = "control character";
            return -1;
        }
        if (!plus && (c == '/' || c == '\\')) {
            *why = "slash inside a path segment";
            return -1;
        }
        if (o + 1 >= cap) {
            *why = "value too long";
            return -1;
        }
        out[o++] = (char) c;
    }
    out[o] = '\0';
    return (long) o;
}

/* Strict decimal in [min, max]: digits only, no sign, no leading '+', at most 19 digits. */
static int
parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    size_t n = strlen(s);
    if (n == 0 || n > 19)
        return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (uint64_t) (s[i] - '0');
    }
    if (v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

int
http_parse_states(const char *list, unsigned *mask, wq_error_t *err)
{
    unsigned m = 0;
    const char *p = list;
    if (*p == '\0')
        return wq_fail(err, WQ_EINVAL, "state: empty list");
    for (;;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t) (end - p) : strlen(p);
        size_t k;
        for (k = 0; k < sizeof state_names / sizeof state_names[0]; k++) {
            const char *name = state_names[k].name;
            if (strlen(name) != n)
                continue;
            size_t i = 0;
            while (i < n && lower((unsigned char) p[i]) == name[i])
                i++;
            if (i == n)
                break;
        }
        if (k == sizeof state_names / sizeof state_names[0])
            return wq_fail(err, WQ_EINVAL,
                           "state: unknown state '%.*s' (pending, starting, running, "
                           "completed, failed, cancelled, timeout, node_fail, active, ended)",
                           (int) (n > 32 ? 32 : n), p);
        m |= state_names[k].mask;
        if (end == NULL)
            break;
        p = end + 1;
    }
    *mask = m;
    return 0;
}

/* Which query keys a route accepts (access_token is accepted everywhere). */
enum {
    Q_STATE = 1 << 0,
    Q_USER = 1 << 1,
    Q_NAME = 1 << 2,
    Q_LIMIT = 1 << 3,
    Q_BEFORE = 1 << 4,
    Q_OFFSET = 1 << 5,
    Q_MAX = 1 << 6,
    Q_JOB = 1 << 7,
    Q_TOKEN = 1 << 8,
    Q_ANY = 1 << 9, /* static files: ignore the query */
};

static const struct {
    const char *key;
    unsigned bit;
} query_keys[] = {
    {"state", Q_STATE}, {"user", Q_USER},     {"name", Q_NAME},
    {"limit", Q_LIMIT}, {"before", Q_BEFORE}, {"offset", Q_OFFSET},
    {"max", Q_MAX},     {"job", Q_JOB},       {"access_token", Q_TOKEN},
};

static unsigned
route_keys(http_route_t r)
{
    switch (r) {
    case HTTP_R_JOBS:
        return Q_STATE | Q_USER | Q_NAME | Q_LIMIT | Q_BEFORE;
    case HTTP_R_JOB_LOG:
        return Q_OFFSET | Q_MAX;
    case HTTP_R_EVENTS:
        return Q_JOB;
    case HTTP_R_STATIC:
        return Q_ANY;
    default:
        return 0;
    }
}

static int __attribute__((format(printf, 4, 5)))
fail(int *status, int code, wq_error_t *err, const char *fmt, ...)
{
    char text[sizeof err->text];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    *status = code;
    return wq_fail(err, WQ_EINVAL, "%s", text);
}

/* Is the decoded segment a file name we would serve: [A-Za-z0-9._-], not starting with '.'. */
static int
asset_name_ok(const char *s)
{
    if (s[0] == '\0' || s[0] == '.')
        return 0;
    for (const char *p = s; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

#define MAX_SEGMENTS 8
#define SEGMENT_MAX  64

static int
apply_param(http_req_t *req, unsigned bit, const char *v, int *status, wq_error_t *err)
{
    uint64_t x;
    switch (bit) {
    case Q_STATE:
        if (http_parse_states(v, &req->state_mask, err) < 0) {
            *status = 400;
            return -1;
        }
        return 0;
    case Q_USER:
        strcpy(req->user, v); /* both HTTP_MAX_VALUE + 1 bytes */
        return 0;
    case Q_NAME:
        strcpy(req->name, v);
        return 0;
    case Q_LIMIT:
        if (parse_u64(v, 1, HTTP_JOBS_MAX, &x) < 0)
            return fail(status, 400, err, "limit: '%.32s' is not a number from 1 to 1000", v);
        req->limit = (unsigned) x;
        return 0;
    case Q_BEFORE:
        if (parse_u64(v, 1, HTTP_MAX_JOB_ID, &x) < 0)
            return fail(status, 400, err, "before: '%.32s' is not a job id", v);
        req->before = x;
        return 0;
    case Q_OFFSET:
        if (parse_u64(v, 0, (uint64_t) 1 << 62, &x) < 0)
            return fail(status, 400, err, "offset: '%.32s' is not a byte offset", v);
        req->offset = (int64_t) x;
        return 0;
    case Q_MAX:
        if (parse_u64(v, 1, HTTP_LOG_MAX, &x) < 0)
            return fail(status, 400, err, "max: '%.32s' is not a number from 1 to 1048576", v);
        req->max = (uint32_t) x;
        return 0;
    case Q_JOB:
        if (parse_u64(v, 1, HTTP_MAX_JOB_ID, &x) < 0)
            return fail(status, 400, err, "job: '%.32s' is not a job id", v);
        req->job_id = x;
        return 0;
    case Q_TOKEN:
        if (strlen(v) > HTTP_MAX_TOKEN)
            return fail(status, 400, err, "%s: too long", "access_token");
        strcpy(req->token, v);
        return 0;
    default:
        return 0;
    }
}

static int
parse_query(const char *q, size_t n, http_req_t *req, int *status, wq_error_t *err)
{
    unsigned allowed = route_keys(req->route) | Q_TOKEN;
    unsigned seen = 0;
    int count = 0;
    size_t i = 0;
    while (i < n) {
        size_t end = i;
        while (end < n && q[end] != '&')
            end++;
        if (end == i) { /* "a=1&&b=2" or a trailing '&' */
            i = end + 1;
            continue;
        }
        if (++count > HTTP_MAX_PARAMS)
            return fail(status, 400, err, "too many query parameters (at most %d)",
                        HTTP_MAX_PARAMS);
        size_t eq = i;
        while (eq < end && q[eq] != '=')
            eq++;
        char key[32], val[HTTP_MAX_VALUE + 1];
        const char *why = NULL;
        if (decode(q + i, eq - i, key, sizeof key, 1, &why) < 0)
            return fail(status, 400, err, "query parameter name: %s", why);
        if (decode(q + (eq < end ? eq + 1 : end), eq < end ? end - eq - 1 : 0, val, sizeof val, 1,
                   &why) < 0) {
            *status = 400;
            return wq_fail(err, WQ_EINVAL, "query parameter '%s': %s", key, why);
        }
        i = end + 1;
        if (allowed & Q_ANY)
            continue;
        unsigned bit = 0;
        for (size_t k = 0; k < sizeof query_keys / sizeof query_keys[0]; k++)
            if (strcmp(query_keys[k].key, key) == 0)
                bit = query_keys[k].bit;
        if (bit == 0 || !(allowed & bit))
            return fail(status, 400, err, "unknown query parameter '%s'", key);
        if (seen & bit)
            return fail(status, 400, err, "query parameter '%s' given twice", key);
        seen |= bit;
        if (apply_param(req, bit, val, status, err) < 0)
            return -1;
    }
    return 0;
}

int
http_parse_target(const char *target, size_t len, http_req_t *req, int *status, wq_error_t *err)
{
    memset(req, 0, sizeof *req);
    req->offset = -1;
    req->limit = HTTP_JOBS_DEFAULT;
    req->max = HTTP_LOG_DEFAULT;
    *status = 200;
    if (len > HTTP_MAX_TARGET) {
        *status = 414;
        return wq_fail(err, WQ_ELIMIT, "request target longer than %d bytes", HTTP_MAX_TARGET);
    }
    if (len == 0 || target[0] != '/')
        return fail(status, 400, err, "request target must start with '/'");
    size_t qpos = 0;
    while (qpos < len && target[qpos] != '?' && target[qpos] != '#')
        qpos++;
    if (qpos < len && target[qpos] == '#')
        return fail(status, 400, err, "fragment in request target");

    /* Split the path into decoded segments. */
    char seg[MAX_SEGMENTS][SEGMENT_MAX];
    int nseg = 0;
    size_t i = 1;
    while (i <= qpos) {
        size_t end = i;
        while (end < qpos && target[end] != '/')
            end++;
        if (end == i && end == qpos && nseg == 0)
            break; /* "/" */
        if (nseg == MAX_SEGMENTS)
            return fail(status, 404, err, "no such path");
        const char *why = NULL;
        long n = decode(target + i, end - i, seg[nseg], SEGMENT_MAX, 0, &why);
        if (n < 0) {
            *status = 400;
            return wq_fail(err, WQ_EINVAL, "path: %s", why);
        }
        if (strcmp(seg[nseg], ".") == 0 || strcmp(seg[nseg], "..") == 0)
            return fail(status, 400, err, "path: '%s' segment", seg[nseg]);
        nseg++;
        i = end + 1;
    }

    /* Route. An empty segment (a doubled or trailing '/') matches nothing. */
    uint64_t id = 0;
    if (nseg == 0) {
        req->route = HTTP_R_STATIC;
        strcpy(req->file, "index.html");
    } else if (nseg == 2 && strcmp(seg[0], "assets") == 0 && asset_name_ok(seg[1])) {
        req->route = HTTP_R_STATIC;
        strcpy(req->file, seg[1]);
    } else if (nseg == 1 && strcmp(seg[0], "metrics") == 0) {
        req->route = HTTP_R_METRICS;
    } else if (nseg == 1 && strcmp(seg[0], "healthz") == 0) {
        req->route = HTTP_R_HEALTH;
    } else if (nseg >= 3 && strcmp(seg[0], "api") == 0 && strcmp(seg[1], "v1") == 0) {
        const char *what = seg[2];
        if (nseg == 3 && strcmp(what, "summary") == 0) {
            req->route = HTTP_R_SUMMARY;
        } else if (nseg == 3 && strcmp(what, "jobs") == 0) {
            req->route = HTTP_R_JOBS;
        } else if (nseg == 3 && strcmp(what, "nodes") == 0) {
            req->route = HTTP_R_NODES;
        } else if (nseg == 3 && strcmp(what, "events") == 0) {
            req->route = HTTP_R_EVENTS;
        } else if (nseg == 3 && strcmp(what, "whoami") == 0) {
            req->route = HTTP_R_WHOAMI;
        } else if (nseg == 3 && strcmp(what, "usage") == 0) {
            req->route = HTTP_R_USAGE;
        } else if ((nseg == 4 || nseg == 5) && strcmp(what, "jobs") == 0) {
            if (parse_u64(seg[3], 1, HTTP_MAX_JOB_ID, &id) < 0)
                return fail(status, 404, err, "no job '%.32s'", seg[3]);
            if (nseg == 4)
                req->route = HTTP_R_JOB;
            else if (strcmp(seg[4], "log") == 0)
                req->route = HTTP_R_JOB_LOG;
            else if (strcmp(seg[4], "metrics") == 0)
                req->route = HTTP_R_JOB_METRICS;
            req->job_id = id;
        }
    }
    if (req->route == HTTP_R_NONE)
        return fail(status, 404, err, "no such path");
    if (qpos < len && parse_query(target + qpos + 1, len - qpos - 1, req, status, err) < 0) {
        req->route = HTTP_R_NONE;
        return -1;
    }
    return 0;
}

/* The first IPv4 address of the network interface named 'name' (the LAN's, "eth0"): 0, or
 * -1 when there is no such interface or it has no IPv4 address. */
static int
iface_ipv4(const char *name, struct in_addr *out)
{
    struct ifaddrs *list = NULL;
    if (getifaddrs(&list) < 0)
        return -1;
    int rc = -1;
    for (struct ifaddrs *i = list; i != NULL && rc < 0; i = i->ifa_next) {
        if (i->ifa_addr != NULL && i->ifa_addr->sa_family == AF_INET &&
            strcmp(i->ifa_name, name) == 0) {
            *out = ((const struct sockaddr_in *) (const void *) i->ifa_addr)->sin_addr;
            rc = 0;
        }
    }
    freeifaddrs(list);
    return rc;
}

int
http_parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *len, wq_error_t *err)
{
    memset(ss, 0, sizeof *ss);
    char host[64];
    const char *port_s;
    size_t n = strlen(s);
    if (n == 0 || n > 80)
        return wq_fail(err, WQ_EINVAL, "http: '%.80s' is not HOST:PORT", s);
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL || close[1] != ':' || (size_t) (close - s - 1) >= sizeof host)
            return wq_fail(err, WQ_EINVAL, "http: '%s' is not [IPV6]:PORT", s);
        memcpy(host, s + 1, (size_t) (close - s - 1));
        host[close - s - 1] = '\0';
        port_s = close + 2;
    } else {
        const char *colon = strrchr(s, ':');
        if (colon == NULL) {
            strcpy(host, "127.0.0.1");
            port_s = s;
        } else {
            if ((size_t) (colon - s) >= sizeof host)
                return wq_fail(err, WQ_EINVAL, "http: '%s' is not HOST:PORT", s);
            memcpy(host, s, (size_t) (colon - s));
            host[colon - s] = '\0';
            port_s = colon + 1;
        }
    }
    uint64_t port;
    if (parse_u64(port_s, 0, 65535, &port) < 0)
        return wq_fail(err, WQ_EINVAL, "http: '%s' has no port number from 0 to 65535", s);
    if (s[0] == '[') {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *) ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t) port);
        if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1)
            return wq_fail(err, WQ_EINVAL, "http: '%s' is not an IPv6 address", host);
        *len = sizeof *a;
        return 0;
    }
    struct sockaddr_in *a = (struct sockaddr_in *) ss;
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t) port);
    if (strcmp(host, "*") == 0 || strcmp(host, "") == 0)
        a->sin_addr.s_addr = htonl(INADDR_ANY);
    else if (strcmp(host, "localhost") == 0)
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    else if (inet_pton(AF_INET, host, &a->sin_addr) != 1 && iface_ipv4(host, &a->sin_addr) < 0)
        return wq_fail(err, WQ_EINVAL,
                       "http: '%s' is not an IPv4 address, a network interface with one, "
                       "[IPv6], '*' or 'localhost'",
                       host);
    *len = sizeof *a;
    return 0;
}
