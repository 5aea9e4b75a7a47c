/* Parsers for values people type; see parse.h. */
#include "common/parse.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
wq_parse_int(
    const char *s, int64_t min, int64_t max, const char *what, int64_t *out, wq_error_t *err)
{
    if (s == NULL || *s == '\0')
        return wq_fail(err, WQ_EINVAL, "%s: empty value; expected a whole number", what);
    const char *p = s;
    if (*p == '+' || *p == '-')
        p++;
    if (!isdigit((unsigned char) *p))
        return wq_fail(err, WQ_EINVAL, "%s: '%.40s' is not a whole number", what, s);
    errno = 0;
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    if (*end != '\0')
        return wq_fail(err, WQ_EINVAL, "%s: '%.40s' is not a whole number", what, s);
    if (errno == ERANGE || v < min || v > max)
        return wq_fail(err, WQ_EINVAL, "%s: %.40s is out of range (%" PRId64 "..%" PRId64 ")", what,
                       s, min, max);
    *out = v;
    return 0;
}

/* Reads digits at *p into *v (at most 9 digits, so no overflow); returns digits read. */
static int
read_num(const char **p, int64_t *v)
{
    int n = 0;
    *v = 0;
    while (isdigit((unsigned char) **p) && n < 9) { /* 10 digits overflowed "T" sizes */
        *v = *v * 10 + (**p - '0');
        (*p)++;
        n++;
    }
    return n;
}

int
wq_parse_duration(const char *s, const char *what, int64_t *seconds, wq_error_t *err)
{
    if (s == NULL || *s == '\0')
        return wq_fail(err, WQ_EINVAL, "%s: empty duration; use e.g. 90s, 10m, 2h, 1-00:00:00",
                       what);
    const char *p = s;
    int64_t a = 0;
    if (read_num(&p, &a) == 0 || read_num(&p, &(int64_t){0}) > 0)
        goto bad;
    int64_t total;
    if (*p == '\0') {
        total = a * 60;
    } else if (p[1] == '\0' && strchr("smhd", *p) != NULL) {
        static const int64_t mult[] = {
            ['s' - 'a'] = 1, ['m' - 'a'] = 60, ['h' - 'a'] = 3600, ['d' - 'a'] = 86400};
        total = a * mult[*p - 'a'];
    } else {
        int64_t days = 0, parts[3] = {0, 0, 0};
        int nparts = 0;
        if (*p == '-') {
            days = a;
            p++;
            if (read_num(&p, &parts[0]) == 0)
                goto bad;
        } else {
            parts[0] = a;
        }
        nparts = 1;
        while (*p == ':' && nparts < 3) {
            p++;
            if (read_num(&p, &parts[nparts]) == 0)
                goto bad;
            nparts++;
        }
        if (*p != '\0' || (nparts == 1 && days == 0))
            goto bad;
        if (days > 0 && nparts == 1)
            total = days * 86400 + parts[0] * 3600;
        else if (nparts == 2 && days == 0)
            total = parts[0] * 60 + parts[1];
        else if (nparts == 2)
            total = days * 86400 + parts[0] * 3600 + parts[1] * 60;
        else
            total = days * 86400 + parts[0] * 3600 + parts[1] * 60 + parts[2];
    }
    if (total > (int64_t) 365 * 86400)
        return wq_fail(err, WQ_EINVAL, "%s: '%.40s' is longer than a year", what, s);
    *seconds = total;
    return 0;
bad:
    return wq_fail(err, WQ_EINVAL,
                   "%s: '%.40s' is not a duration; use e.g. 90s, 10m, 2h, 1:30:00, 1-00:00:00",
                   what, s);
}

int
wq_parse_size_mb(const char *s, const char *what, int64_t *mib, wq_error_t *err)
{
    if (s == NULL || *s == '\0')
        return wq_fail(err, WQ_EINVAL, "%s: empty size; use e.g. 512M or 4G", what);
    const char *p = s;
    int64_t v = 0;
    if (read_num(&p, &v) == 0 || isdigit((unsigned char) *p))
        goto bad;
    int64_t kib;
    switch (toupper((unsigned char) *p)) {
    case '\0':
        kib = v * 1024;
        break;
    case 'K':
        kib = v;
        break;
    case 'M':
        kib = v * 1024;
        break;
    case 'G':
        kib = v * 1024 * 1024;
        break;
    case 'T':
        kib = v * 1024 * 1024 * 1024;
        break;
    default:
        goto bad;
    }
    if (*p != '\0') {
        p++;
        if (*p == 'i')
            p++;
        if (*p == 'B' || *p == 'b')
            p++;
        if (*p != '\0')
            goto bad;
    }
    if (kib > (int64_t) 1 << 40)
        return wq_fail(err, WQ_EINVAL, "%s: '%.40s' is too large", what, s);
    *mib = (kib + 1023) / 1024;
    return 0;
bad:
    return wq_fail(err, WQ_EINVAL, "%s: '%.40s' is not a size; use e.g. 512M or 4G", what, s);
}

const char *
wq_format_duration(int64_t seconds, char *buf, unsigned len)
{
    if (seconds < 0)
        seconds = 0;
    int64_t d = seconds / 86400, h = seconds / 3600 % 24, m = seconds / 60 % 60, s = seconds % 60;
    if (d > 0)
        snprintf(buf, len, "%" PRId64 "-%02" PRId64 ":%02" PRId64 ":%02" PRId64, d, h, m, s);
    else if (h > 0)
        snprintf(buf, len, "%" PRId64 ":%02" PRId64 ":%02" PRId64, h, m, s);
    else
        snprintf(buf, len, "%" PRId64 ":%02" PRId64, m, s);
    return buf;
}

const char *
wq_format_size_mb(int64_t mib, char *buf, unsigned len)
{
    if (mib >= 1024)
        snprintf(buf, len, "%.1fG", (double) mib / 1024.0);
    else
        snprintf(buf, len, "%" PRId64 "M", mib);
    return buf;
}
