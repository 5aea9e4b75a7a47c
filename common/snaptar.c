/* gzip-compressed ustar archives of a directory tree (snaptar.h). */
#include "common/snaptar.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "common/mem.h"

#define BLOCK 512
/* entries in one archive: far above a source tree, small enough to list in memory */
#define MAX_ENTRIES 1000000u
/* directory depth the walk enters */
#define MAX_DEPTH 128

/* ---- packing ---- */

typedef struct {
    char *rel;  /* path from the root, '/'-separated */
    char *link; /* a symlink's target, else NULL */
    mode_t mode;
    uint64_t size;
    int64_t mtime;
} entry_t;

typedef struct {
    const char *root;
    const snapignore_t *ign;
    entry_t *e;
    size_t n, cap;
    snaptar_stats_t *st;
    wq_error_t *err;
} walk_t;

static int
cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}

/* A link target that stays inside the tree from the directory of rel. */
static int
link_inside(const char *rel, const char *target)
{
    if (target[0] == '\0' || target[0] == '/')
        return 0;
    int depth = 0;
    for (const char *p = rel; *p; p++)
        if (*p == '/')
            depth++;
    const char *s = target;
    while (*s) {
        const char *e = strchr(s, '/');
        size_t n = e ? (size_t) (e - s) : strlen(s);
        if (n == 2 && s[0] == '.' && s[1] == '.') {
            if (--depth < 0)
                return 0;
        } else if (n > 0 && !(n == 1 && s[0] == '.')) {
            depth++;
        }
        s += n;
        if (*s == '/')
            s++;
    }
    return 1;
}

static void
add_entry(walk_t *w, const char *rel, const struct stat *sb, char *link)
{
    if (w->n == w->cap) {
        w->cap = w->cap ? w->cap * 2 : 256;
        w->e = wq_realloc(w->e, w->cap * sizeof *w->e);
    }
    entry_t *e = &w->e[w->n++];
    e->rel = wq_malloc(strlen(rel) + 1);
    strcpy(e->rel, rel);
    e->link = link;
    e->mode = sb->st_mode;
    e->size = S_ISREG(sb->st_mode) ? (uint64_t) sb->st_size : 0;
    e->mtime = (int64_t) sb->st_mtime;
}

static int
walk_dir(walk_t *w, int dfd, const char *rel, int depth)
{
    if (depth > MAX_DEPTH)
        return wq_fail(w->err, WQ_ELIMIT, "%s: directories nested over %d deep", rel, MAX_DEPTH);
    DIR *d = fdopendir(dfd);
    if (d == NULL) {
        close(dfd);
        return wq_fail_errno(w->err, "cannot list %s/%s", w->root, rel);
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 32;
            names = wq_realloc(names, cap * sizeof *names);
        }
        names[n] = wq_malloc(strlen(de->d_name) + 1);
        strcpy(names[n++], de->d_name);
    }
    if (n > 1)
        qsort(names, n, sizeof *names, cmp_name);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        char path[PATH_MAX];
        if ((size_t) snprintf(path, sizeof path, "%s%s%s", rel, *rel ? "/" : "", names[i]) >=
            sizeof path) {
            rc = wq_fail(w->err, WQ_ELIMIT, "path too long: %s/%s", rel, names[i]);
            break;
        }
        struct stat sb;
        if (fstatat(dirfd(d), names[i], &sb, AT_SYMLINK_NOFOLLOW) < 0) {
            w->st->skipped++;
            continue;
        }
        if (snapignore_match(w->ign, path, S_ISDIR(sb.st_mode)))
            continue;
        if (w->n >= MAX_ENTRIES) {
            rc = wq_fail(w->err, WQ_ELIMIT, "more than %u files and directories", MAX_ENTRIES);
            break;
        }
        if (S_ISREG(sb.st_mode)) {
            add_entry(w, path, &sb, NULL);
        } else if (S_ISDIR(sb.st_mode)) {
            int cfd = openat(dirfd(d), names[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (cfd < 0) {
                w->st->skipped++;
                continue;
            }
            add_entry(w, path, &sb, NULL);
            rc = walk_dir(w, cfd, path, depth + 1);
        } else if (S_ISLNK(sb.st_mode)) {
            char t[PATH_MAX];
            ssize_t tl = readlinkat(dirfd(d), names[i], t, sizeof t - 1);
            if (tl <= 0 || tl >= 100) {
                w->st->skipped++;
                continue;
            }
            t[tl] = '\0';
            if (!link_inside(path, t)) {
                w->st->skipped++;
                continue;
            }
            char *link = wq_malloc((size_t) tl + 1);
            memcpy(link, t, (size_t) tl + 1);
            add_entry(w, path, &sb, link);
        } else {
            w->st->skipped++; /* sockets, fifos, devices */
        }
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    closedir(d);
    return rc;
}

static void
octal(char *field, size_t width, uint64_t v)
{
    /* width - 1 digits and a NUL (callers keep v within them) */
    field[width - 1] = '\0';
    for (size_t i = width - 1; i > 0; i--) {
        field[i - 1] = (char) ('0' + (v & 7));
        v >>= 3;
    }
}

/* Fill a ustar header; -1 when the name cannot be split into prefix and name. */
static int
header(uint8_t h[BLOCK],
       const char *name,
       int type,
       mode_t mode,
       uint64_t size,
       int64_t mtime,
       const char *link)
{
    memset(h, 0, BLOCK);
    size_t len = strlen(name);
    if (len <= 100) {
        memcpy(h, name, len);
    } else {
        /* split at a '/' with at most 155 bytes before it and 100 after */
        const char *cut = NULL;
        for (const char *p = name; *p; p++)
            if (*p == '/' && (size_t) (p - name) <= 155 && len - (size_t) (p - name) - 1 <= 100 &&
                p != name)
                cut = p;
        if (cut == NULL)
            return -1;
        memcpy(h, cut + 1, len - (size_t) (cut - name) - 1);
        memcpy(h + 345, name, (size_t) (cut - name));
    }
    octal((char *) h + 100, 8, mode & 07777);
    octal((char *) h + 108, 8, 0);
    octal((char *) h + 116, 8, 0);
    octal((char *) h + 124, 12, size);
    octal((char *) h + 136, 12, mtime > 0 ? (uint64_t) mtime : 0);
    h[156] = (uint8_t) type;
    if (link != NULL)
        memcpy(h + 157, link, strlen(link));
    memcpy(h + 257, "ustar", 6);
    memcpy(h + 263, "00", 2);
    memset(h + 148, ' ', 8);
    unsigned sum = 0;
    for (int i = 0; i < BLOCK; i++)
        sum += h[i];
    snprintf((char *) h + 148, 8, "%06o", sum);
    h[155] = ' ';
    return 0;
}

static int
gz_put(gzFile gz, const void *buf, size_t len, const char *out, wq_error_t *err)
{
    if (len > 0 && gzwrite(gz, buf, (unsigned) len) != (int) len) {
        int zerr = 0;
        const char *m = gzerror(gz, &zerr);
        return wq_fail(err, WQ_EIO, "cannot write %s: %s", out,
                       zerr == Z_ERRNO ? strerror(errno) : m);
    }
    return 0;
}

static int
write_file(gzFile gz, const char *root, const entry_t *e, const char *out, wq_error_t *err)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", root, e->rel);
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return wq_fail_errno(err, "cannot read %s", path);
    static uint8_t buf[1 << 16];
    uint64_t left = e->size;
    while (left > 0) {
        size_t want = left < sizeof buf ? (size_t) left : sizeof buf;
        ssize_t r = read(fd, buf, want);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int x = errno;
            close(fd);
            errno = x;
            return wq_fail_errno(err, "cannot read %s", path);
        }
        if (r == 0) { /* it shrank while packed: keep the archive whole */
            memset(buf, 0, want);
            r = (ssize_t) want;
        }
        if (gz_put(gz, buf, (size_t) r, out, err) < 0) {
            close(fd);
            return -1;
        }
        left -= (uint64_t) r;
    }
    close(fd);
    size_t pad = (size_t) ((BLOCK - e->size % BLOCK) % BLOCK);
    memset(buf, 0, BLOCK);
    return gz_put(gz, buf, pad, out, err);
}

static void
count_top(snaptar_stats_t *st, const entry_t *e, size_t n)
{
    /* sum each top-level entry's content, keep the SNAPTAR_TOP largest */
    st->n_top = 0;
    size_t i = 0;
    while (i < n) {
        const char *slash = strchr(e[i].rel, '/');
        size_t tl = slash ? (size_t) (slash - e[i].rel) : strlen(e[i].rel);
        uint64_t sum = 0;
        size_t j = i;
        while (j < n && strncmp(e[j].rel, e[i].rel, tl) == 0 &&
               (e[j].rel[tl] == '\0' || e[j].rel[tl] == '/'))
            sum += e[j++].size;
        if (j == i)
            j = i + 1;
        size_t k;
        if (st->n_top < SNAPTAR_TOP) {
            k = st->n_top++;
        } else if (sum > st->top[SNAPTAR_TOP - 1].bytes) {
            k = SNAPTAR_TOP - 1;
        } else {
            i = j;
            continue;
        }
        snprintf(st->top[k].name, sizeof st->top[k].name, "%.*s%s", (int) tl, e[i].rel,
                 S_ISDIR(e[i].mode) ? "/" : "");
        st->top[k].bytes = sum;
        while (k > 0 && st->top[k].bytes > st->top[k - 1].bytes) {
            __typeof__(st->top[0]) t = st->top[k];
            st->top[k] = st->top[k - 1];
            st->top[k - 1] = t;
            k--;
        }
        i = j;
    }
}

static int
cmp_entry(const void *a, const void *b)
{
    return strcmp(((const entry_t *) a)->rel, ((const entry_t *) b)->rel);
}

static int
pack(const char *root,
     const snapignore_t *ign,
     const char *out_path,
     int out_fd,
     uint64_t max_bytes,
     snaptar_stats_t *st,
     wq_error_t *err)
{
    snaptar_stats_t dummy;
    if (st == NULL)
        st = &dummy;
    memset(st, 0, sizeof *st);
    int dfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return wq_fail_errno(err, "cannot open the directory %s", root);
    walk_t w = {.root = root, .ign = ign, .st = st, .err = err};
    int rc = walk_dir(&w, dfd, "", 0);
    if (w.n > 1) /* a depth-first walk in name order is not quite strcmp order */
        qsort(w.e, w.n, sizeof *w.e, cmp_entry);
    for (size_t i = 0; i < w.n; i++) {
        st->bytes += w.e[i].size;
        st->files += S_ISREG(w.e[i].mode);
    }
    if (rc == 0) {
        count_top(st, w.e, w.n);
        if (max_bytes > 0 && st->bytes > max_bytes) {
            char a[32], b[32];
            rc = wq_fail(err, WQ_ELIMIT, "%s is %s, over the limit of %s", root,
                         snaptar_size_text(st->bytes, a, sizeof a),
                         snaptar_size_text(max_bytes, b, sizeof b));
        }
    }
    gzFile gz = NULL;
    if (rc == 0) {
        int fd = out_fd >= 0 ? dup(out_fd)
                             : open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0)
            rc = wq_fail_errno(err, "cannot create %s", out_path);
        else if ((gz = gzdopen(fd, "wb1")) == NULL) {
            close(fd);
            rc = wq_fail(err, WQ_EIO, "cannot start compressing %s", out_path);
        }
    }
    uint8_t h[BLOCK];
    for (size_t i = 0; rc == 0 && i < w.n; i++) {
        const entry_t *e = &w.e[i];
        char name[PATH_MAX + 2];
        int type = S_ISDIR(e->mode) ? '5' : S_ISLNK(e->mode) ? '2' : '0';
        snprintf(name, sizeof name, "%s%s", e->rel, type == '5' ? "/" : "");
        if (header(h, name, type, e->mode, e->size, e->mtime, e->link) < 0) {
            rc = wq_fail(err, WQ_ELIMIT, "path too long for the archive: %s", e->rel);
            break;
        }
        rc = gz_put(gz, h, BLOCK, out_path, err);
        if (rc == 0 && type == '0')
            rc = write_file(gz, root, e, out_path, err);
    }
    if (gz != NULL) {
        memset(h, 0, BLOCK);
        if (rc == 0)
            rc = gz_put(gz, h, BLOCK, out_path, err);
        if (rc == 0)
            rc = gz_put(gz, h, BLOCK, out_path, err);
        if (gzclose(gz) != Z_OK && rc == 0)
            rc = wq_fail(err, WQ_EIO, "cannot write %s", out_path);
        if (rc < 0 && out_fd < 0)
            unlink(out_path);
    }
    for (size_t i = 0; i < w.n; i++) {
        free(w.e[i].rel);
        free(w.e[i].link);
    }
    free(w.e);
    return rc;
}

int
snaptar_pack(const char *root,
             const snapignore_t *ign,
             const char *out_path,
             uint64_t max_bytes,
             snaptar_stats_t *st,
             wq_error_t *err)
{
    return pack(root, ign, out_path, -1, max_bytes, st, err);
}

int
snaptar_pack_fd(const char *root,
                const snapignore_t *ign,
                int fd,
                uint64_t max_bytes,
                snaptar_stats_t *st,
                wq_error_t *err)
{
    return pack(root, ign, "the archive", fd, max_bytes, st, err);
}

/* ---- unpacking ---- */

typedef struct {
    gzFile gz;
    const char *path;
    wq_error_t *err;
} rd_t;

/* Exactly len bytes; -1 with a "truncated" or read error. */
static int
rd_full(rd_t *r, void *buf, size_t len)
{
    int got = len ? gzread(r->gz, buf, (unsigned) len) : 0;
    if (got < 0) {
        int zerr = 0;
        const char *m = gzerror(r->gz, &zerr);
        return wq_fail(r->err, WQ_EINVAL, "%s: not a valid archive (%s)", r->path,
                       zerr == Z_ERRNO ? strerror(errno) : m);
    }
    if ((size_t) got != len)
        return wq_fail(r->err, WQ_EINVAL, "%s: archive truncated", r->path);
    return 0;
}

static int
parse_octal(const uint8_t *f, size_t width, uint64_t *out)
{
    size_t i = 0;
    uint64_t v = 0;
    while (i < width && f[i] == ' ')
        i++;
    size_t digits = 0;
    for (; i < width && f[i] >= '0' && f[i] <= '7'; i++, digits++) {
        if (v > (UINT64_MAX >> 3))
            return -1;
        v = (v << 3) | (uint64_t) (f[i] - '0');
    }
    for (; i < width; i++)
        if (f[i] != ' ' && f[i] != '\0')
            return -1;
    if (digits == 0)
        return -1;
    *out = v;
    return 0;
}

/* Safe relative name: no leading '/', no "..", no empty or over-long parts. Strips "./"
 * prefixes and a trailing '/'. Returns the cleaned name in out or -1. */
static int
clean_name(const char *in, char *out, size_t len)
{
    if (in[0] == '/' || in[0] == '\0')
        return -1;
    while (in[0] == '.' && in[1] == '/')
        in += 2;
    size_t n = strlen(in);
    while (n > 0 && in[n - 1] == '/')
        n--;
    if (n == 0 || n >= len)
        return -1;
    memcpy(out, in, n);
    out[n] = '\0';
    for (const char *s = out; *s;) {
        const char *e = strchr(s, '/');
        size_t k = e ? (size_t) (e - s) : strlen(s);
        if (k == 0 || (k == 2 && s[0] == '.' && s[1] == '.') || (k == 1 && s[0] == '.'))
            return -1;
        s += k;
        if (*s == '/')
            s++;
    }
    return 0;
}

/* Open the directory holding name's last component, component by component without
 * following links; missing ones are made. Returns the fd and sets *leaf, or -1. */
static int
open_parent(int root, const char *name, const char **leaf, int uid, int gid)
{
    int fd = dup(root);
    if (fd < 0)
        return -1;
    const char *s = name;
    for (;;) {
        const char *e = strchr(s, '/');
        if (e == NULL) {
            *leaf = s;
            return fd;
        }
        char part[NAME_MAX + 1];
        size_t k = (size_t) (e - s);
        if (k > NAME_MAX) {
            close(fd);
            errno = ENAMETOOLONG;
            return -1;
        }
        memcpy(part, s, k);
        part[k] = '\0';
        int nfd = openat(fd, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (nfd < 0 && errno == ENOENT) {
            if (mkdirat(fd, part, 0700) == 0 && uid >= 0)
                (void) fchownat(fd, part, (uid_t) uid, (gid_t) gid, AT_SYMLINK_NOFOLLOW);
            nfd = openat(fd, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        }
        close(fd);
        if (nfd < 0)
            return -1;
        fd = nfd;
        s = e + 1;
    }
}

static int
extract_file(rd_t *r,
             int pfd,
             const char *leaf,
             const char *name,
             uint64_t size,
             mode_t mode,
             int64_t mtime,
             int uid,
             int gid)
{
    int fd = openat(pfd, leaf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return wq_fail_errno(r->err, "%s: cannot create %s", r->path, name);
    static uint8_t buf[1 << 16];
    uint64_t left = size;
    int rc = 0;
    while (rc == 0 && left > 0) {
        size_t want = left < sizeof buf ? (size_t) left : sizeof buf;
        rc = rd_full(r, buf, want);
        if (rc == 0) {
            size_t done = 0;
            while (done < want) {
                ssize_t w = write(fd, buf + done, want - done);
                if (w < 0 && errno == EINTR)
                    continue;
                if (w <= 0) {
                    rc = wq_fail_errno(r->err, "cannot write %s", name);
                    break;
                }
                done += (size_t) w;
            }
        }
        left -= want;
    }
    if (rc == 0) {
        size_t pad = (size_t) ((BLOCK - size % BLOCK) % BLOCK);
        rc = rd_full(r, buf, pad);
    }
    if (rc == 0) {
        (void) fchmod(fd, (mode & 0777) | 0600);
        struct timespec ts[2] = {{.tv_sec = mtime, .tv_nsec = 0}, {.tv_sec = mtime, .tv_nsec = 0}};
        (void) futimens(fd, ts);
        if (uid >= 0 && fchown(fd, (uid_t) uid, (gid_t) gid) < 0)
            rc = wq_fail_errno(r->err, "cannot give %s to uid %d", name, uid);
    }
    close(fd);
    return rc;
}

static int unpack(int fd,
                  const char *path,
                  const char *dest,
                  uint64_t max_bytes,
                  int uid,
                  int gid,
                  wq_error_t *err);

int
snaptar_unpack(
    const char *path, const char *dest, uint64_t max_bytes, int uid, int gid, wq_error_t *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return wq_fail_errno(err, "cannot read %s", path);
    return unpack(fd, path, dest, max_bytes, uid, gid, err);
}

int
snaptar_unpack_fd(int fd, const char *dest, uint64_t max_bytes, wq_error_t *err)
{
    if (lseek(fd, 0, SEEK_SET) < 0)
        return wq_fail_errno(err, "cannot read the archive");
    int own = dup(fd);
    if (own < 0)
        return wq_fail_errno(err, "cannot read the archive");
    return unpack(own, "the archive", dest, max_bytes, -1, -1, err);
}

/* Takes fd. */
static int
unpack(int fd,
       const char *path,
       const char *dest,
       uint64_t max_bytes,
       int uid,
       int gid,
       wq_error_t *err)
{
    int dfd = open(dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        close(fd);
        return wq_fail_errno(err, "cannot open %s", dest);
    }
    rd_t r = {.gz = gzdopen(fd, "rb"), .path = path, .err = err};
    if (r.gz == NULL) {
        close(fd);
        close(dfd);
        return wq_fail(err, WQ_EIO, "cannot read %s", path);
    }
    uint64_t total = 0;
    size_t entries = 0;
    int rc = 0, ended = 0;
    uint8_t h[BLOCK];
    while (rc == 0 && !ended) {
        if ((rc = rd_full(&r, h, BLOCK)) < 0)
            break;
        int zero = 1;
        for (int i = 0; i < BLOCK && zero; i++)
            zero = h[i] == 0;
        if (zero) {
            ended = 1;
            break;
        }
        if (++entries > MAX_ENTRIES) {
            rc = wq_fail(err, WQ_ELIMIT, "%s: more than %u entries", path, MAX_ENTRIES);
            break;
        }
        uint64_t sum = 0, want = 0, size = 0, mode = 0, mtime = 0;
        for (int i = 0; i < BLOCK; i++)
            sum += (i >= 148 && i < 156) ? ' ' : h[i];
        if (memcmp(h + 257, "ustar", 5) != 0 || parse_octal(h + 148, 8, &want) < 0 || want != sum) {
            rc = wq_fail(err, WQ_EINVAL, "%s: not a ustar archive (bad header checksum)", path);
            break;
        }
        if (parse_octal(h + 124, 12, &size) < 0 || parse_octal(h + 100, 8, &mode) < 0 ||
            parse_octal(h + 136, 12, &mtime) < 0) {
            rc = wq_fail(err, WQ_EINVAL, "%s: a header with a bad number", path);
            break;
        }
        char raw[PATH_MAX], name[PATH_MAX];
        char pre[156], nm[101], link[101];
        memcpy(pre, h + 345, 155);
        pre[155] = '\0';
        memcpy(nm, h, 100);
        nm[100] = '\0';
        memcpy(link, h + 157, 100);
        link[100] = '\0';
        snprintf(raw, sizeof raw, "%s%s%s", pre, pre[0] ? "/" : "", nm);
        int type = h[156];
        if (clean_name(raw, name, sizeof name) < 0) {
            rc = wq_fail(err, WQ_EINVAL, "%s: refused entry \"%.200s\": absolute or with ..", path,
                         raw);
            break;
        }
        if (type != '0' && type != '\0' && type != '5' && type != '2') {
            rc = wq_fail(err, WQ_EINVAL,
                         "%s: refused entry %.200s: type '%c' (only files, "
                         "directories and links inside the tree)",
                         path, name, type >= 32 && type < 127 ? type : '?');
            break;
        }
        if (type == '0' || type == '\0') {
            total += size;
            if (max_bytes > 0 && total > max_bytes) {
                char a[32];
                rc = wq_fail(err, WQ_ELIMIT, "%s: content over the limit of %s", path,
                             snaptar_size_text(max_bytes, a, sizeof a));
                break;
            }
        } else if (size != 0) {
            rc = wq_fail(err, WQ_EINVAL, "%s: entry %.200s has data but is no file", path, name);
            break;
        }
        if (type == '2' && !link_inside(name, link)) {
            rc = wq_fail(err, WQ_EINVAL, "%s: refused link %.200s -> %.200s: it leads outside",
                         path, name, link);
            break;
        }
        const char *leaf = NULL;
        int pfd = open_parent(dfd, name, &leaf, uid, gid);
        if (pfd < 0) {
            rc = wq_fail(err, WQ_EINVAL,
                         "%s: refused entry %.200s: its directory is a link or "
                         "a file (%s)",
                         path, name, strerror(errno));
            break;
        }
        if (type == '5') {
            struct stat sb;
            if (mkdirat(pfd, leaf, 0700) < 0 &&
                (errno != EEXIST || fstatat(pfd, leaf, &sb, AT_SYMLINK_NOFOLLOW) < 0 ||
                 !S_ISDIR(sb.st_mode)))
                rc = wq_fail(err, WQ_EINVAL, "%s: cannot make directory %.200s", path, name);
            else {
                (void) fchmodat(pfd, leaf, ((mode_t) mode & 0777) | 0700, 0);
                if (uid >= 0)
                    (void) fchownat(pfd, leaf, (uid_t) uid, (gid_t) gid, AT_SYMLINK_NOFOLLOW);
            }
        } else if (type == '2') {
            if (symlinkat(link, pfd, leaf) < 0)
                rc = wq_fail_errno(err, "%s: cannot make link %.200s", path, name);
            else if (uid >= 0)
                (void) fchownat(pfd, leaf, (uid_t) uid, (gid_t) gid, AT_SYMLINK_NOFOLLOW);
        } else {
            rc = extract_file(&r, pfd, leaf, name, size, (mode_t) mode, (int64_t) mtime, uid, gid);
        }
        close(pfd);
    }
    gzclose(r.gz);
    close(dfd);
    return rc;
}

/* ---- hashes and sizes ---- */

int
snaptar_sha256_file(const char *path, char hex[65], wq_error_t *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return wq_fail_errno(err, "cannot read %s", path);
    crypto_hash_sha256_state s;
    crypto_hash_sha256_init(&s);
    static uint8_t buf[1 << 16];
    for (;;) {
        ssize_t r = read(fd, buf, sizeof buf);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int x = errno;
            close(fd);
            errno = x;
            return wq_fail_errno(err, "cannot read %s", path);
        }
        if (r == 0)
            break;
        crypto_hash_sha256_update(&s, buf, (unsigned long long) r);
    }
    close(fd);
    uint8_t out[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_final(&s, out);
    for (size_t i = 0; i < sizeof out; i++)
        snprintf(hex + 2 * i, 3, "%02x", out[i]);
    return 0;
}

int
snaptar_hash_ok(const char *s)
{
    if (s == NULL)
        return 0;
    size_t i = 0;
    for (; s[i]; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return i == 64;
}

const char *
snaptar_size_text(uint64_t bytes, char *buf, size_t len)
{
    if (bytes < (1u << 20))
        snprintf(buf, len, "%.1f KiB", (double) bytes / 1024);
    else
        snprintf(buf, len, "%.1f MiB", (double) bytes / (1 << 20));
    return buf;
}
