/* .gitignore-style patterns for working-directory snapshots (snapignore.h). */
#include "common/snapignore.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/mem.h"

typedef struct {
    char *pat;    /* without '!', leading '/' and trailing '/' */
    int negate;   /* "!pat" */
    int dir_only; /* "pat/" */
    int anchored; /* matched against the whole path */
} rule_t;

struct snapignore {
    rule_t *rules;
    size_t n, cap;
};

snapignore_t *
snapignore_new(void)
{
    return wq_calloc(1, sizeof(snapignore_t));
}

void
snapignore_free(snapignore_t *ig)
{
    if (ig == NULL)
        return;
    for (size_t i = 0; i < ig->n; i++)
        free(ig->rules[i].pat);
    free(ig->rules);
    free(ig);
}

static void
add_line(snapignore_t *ig, const char *s, size_t len)
{
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\r'))
        len--;
    if (len == 0 || s[0] == '#')
        return;
    rule_t r = {0};
    if (s[0] == '!') {
        r.negate = 1;
        s++, len--;
    } else if (s[0] == '\\' && len > 1 && (s[1] == '#' || s[1] == '!')) {
        s++, len--;
    }
    if (len > 0 && s[len - 1] == '/') {
        r.dir_only = 1;
        len--;
    }
    if (len > 0 && s[0] == '/') {
        r.anchored = 1;
        s++, len--;
    }
    if (len == 0)
        return;
    if (memchr(s, '/', len) != NULL)
        r.anchored = 1;
    r.pat = wq_malloc(len + 1);
    memcpy(r.pat, s, len);
    r.pat[len] = '\0';
    if (ig->n == ig->cap) {
        ig->cap = ig->cap ? ig->cap * 2 : 16;
        ig->rules = wq_realloc(ig->rules, ig->cap * sizeof *ig->rules);
    }
    ig->rules[ig->n++] = r;
}

void
snapignore_add_text(snapignore_t *ig, const char *text, size_t len)
{
    size_t i = 0;
    while (i < len) {
        const char *nl = memchr(text + i, '\n', len - i);
        size_t end = nl ? (size_t) (nl - text) : len;
        add_line(ig, text + i, end - i);
        i = end + 1;
    }
}

int
snapignore_add_file(snapignore_t *ig, const char *path, wq_error_t *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        return wq_fail_errno(err, "cannot read %s", path);
    }
    size_t cap = 4096, len = 0;
    char *buf = wq_malloc(cap);
    for (;;) {
        if (len == cap) {
            if (cap >= (1u << 20)) { /* an ignore file of a MiB is not one */
                free(buf);
                close(fd);
                return wq_fail(err, WQ_ELIMIT, "%s is over 1 MiB", path);
            }
            cap *= 2;
            buf = wq_realloc(buf, cap);
        }
        ssize_t r = read(fd, buf + len, cap - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            free(buf);
            close(fd);
            errno = e;
            return wq_fail_errno(err, "cannot read %s", path);
        }
        if (r == 0)
            break;
        len += (size_t) r;
    }
    close(fd);
    snapignore_add_text(ig, buf, len);
    free(buf);
    return 0;
}

/* A bracket class at *pp (just after '['): 1 match, 0 no match, -1 not a class (no ']'). */
static int
match_class(const char **pp, char c)
{
    const char *p = *pp;
    int neg = 0, hit = 0;
    if (*p == '!' || *p == '^') {
        neg = 1;
        p++;
    }
    const char *start = p;
    while (*p != '\0' && (*p != ']' || p == start)) {
        char lo = *p, hi = *p;
        if (p[1] == '-' && p[2] != '\0' && p[2] != ']') {
            hi = p[2];
            p += 2;
        }
        if (c >= lo && c <= hi)
            hit = 1;
        p++;
    }
    if (*p != ']')
        return -1;
    *pp = p + 1;
    return hit != neg;
}

int
snapignore_glob(const char *p, const char *s)
{
    for (;;) {
        if (*p == '\0')
            return *s == '\0';
        if (p[0] == '*' && p[1] == '*') {
            /* "**": any run of characters, '/' included; "**" followed by '/' also none */
            const char *rest = p + 2;
            if (*rest == '/' && snapignore_glob(rest + 1, s))
                return 1;
            for (const char *t = s;; t++) {
                if (snapignore_glob(rest, t))
                    return 1;
                if (*t == '\0')
                    return 0;
            }
        }
        if (*p == '*') {
            for (const char *t = s;; t++) {
                if (snapignore_glob(p + 1, t))
                    return 1;
                if (*t == '\0' || *t == '/')
                    return 0;
            }
        }
        if (*s == '\0')
            return 0;
        if (*p == '?') {
            if (*s == '/')
                return 0;
        } else if (*p == '[') {
            const char *q = p + 1;
            int m = *s == '/' ? 0 : match_class(&q, *s);
            if (m >= 0) {
                if (!m)
                    return 0;
                p = q;
                s++;
                continue;
            }
            if (*s != '[') /* no ']': a plain '[' */
                return 0;
        } else {
            if (*p == '\\' && p[1] != '\0')
                p++;
            if (*p != *s)
                return 0;
        }
        p++;
        s++;
    }
}

int
snapignore_match(const snapignore_t *ig, const char *path, int is_dir)
{
    if (ig == NULL)
        return 0;
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    int ignored = 0;
    for (size_t i = 0; i < ig->n; i++) {
        const rule_t *r = &ig->rules[i];
        if (r->dir_only && !is_dir)
            continue;
        if (snapignore_glob(r->pat, r->anchored ? path : base))
            ignored = !r->negate;
    }
    return ignored;
}
