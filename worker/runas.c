/* Run-as modes and the per-rank account switch (see runas.h). */
#include "worker/runas.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/log.h"
#include "common/mem.h"

#define GROUPS_MAX 65536 /* the kernel's NGROUPS_MAX */

static const char *const mode_names[] = {"service", "owner", "worker"};

int
runas_valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > RUNAS_NAME_MAX || s[0] == '-')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        int ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
                 ch == '.' || ch == '_' || ch == '-' || (ch == '$' && i == n - 1 && n > 1);
        if (!ok)
            return 0;
    }
    return 1;
}

int
runas_parse_mode(const char *s, int *mode, wq_error_t *err)
{
    for (int i = 0; i < (int) (sizeof mode_names / sizeof mode_names[0]); i++)
        if (strcmp(s, mode_names[i]) == 0) {
            *mode = i;
            return 0;
        }
    return wq_fail(err, WQ_EINVAL,
                   "run_as: expected service or owner (or worker, for tests), "
                   "got '%.64s'",
                   s);
}

const char *
runas_mode_name(int mode)
{
    return mode >= 0 && mode < (int) (sizeof mode_names / sizeof mode_names[0]) ? mode_names[mode]
                                                                                : "?";
}

/* getpwnam_r into *pw, its strings in *buf (caller frees). 1 found, 0 no such account, -1 with
 * errno when the account database cannot be read. */
static int
lookup(const char *name, struct passwd *pw, char **buf)
{
    long hint = sysconf(_SC_GETPW_R_SIZE_MAX);
    size_t n = hint > 0 ? (size_t) hint : 16384;
    for (;;) {
        *buf = wq_malloc(n);
        struct passwd *res = NULL;
        int rc = getpwnam_r(name, pw, *buf, n, &res);
        if (rc == ERANGE && n < (4u << 20)) {
            free(*buf);
            n *= 4;
            continue;
        }
        if (rc == 0 && res != NULL)
            return 1;
        free(*buf);
        *buf = NULL;
        /* "not found" is 0 with no result, or one of these, depending on the NSS module */
        if (rc == 0 || rc == ENOENT || rc == ESRCH || rc == EBADF || rc == EPERM)
            return 0;
        errno = rc;
        return -1;
    }
}

int
runas_init(runas_t *r, int mode, const char *service_user, wq_error_t *err)
{
    memset(r, 0, sizeof *r);
    r->mode = mode;
    r->as_root = geteuid() == 0;
    snprintf(r->service_user, sizeof r->service_user, "%s",
             service_user && *service_user ? service_user : "wslq");
    if (mode == RUNAS_OWNER) {
        if (!r->as_root)
            return wq_fail(err, WQ_EPERM,
                           "run_as = owner needs the worker to run as root (it switches each job "
                           "to its owner's account): start it as root, or set run_as = service");
        return 0;
    }
    if (mode == RUNAS_WORKER) {
        if (r->as_root)
            log_warn("run_as = worker and the worker runs as root: every job runs as root; "
                     "only for throwaway test machines (use run_as = service or owner)");
        return 0;
    }
    if (!r->as_root)
        return 0; /* jobs run as the worker's own unprivileged account */
    struct passwd pw;
    char *buf = NULL;
    int found = lookup(r->service_user, &pw, &buf);
    if (found < 0)
        return wq_fail_errno(err, "cannot look up service account '%s'", r->service_user);
    if (found == 0)
        return wq_fail(
            err, WQ_ENOENT,
            "service account '%s' does not exist: create it (useradd --system "
            "--create-home --home-dir /var/lib/wslq/home --shell /usr/sbin/nologin %s) or set "
            "service_user",
            r->service_user, r->service_user);
    int root = pw.pw_uid == 0 || pw.pw_gid == 0;
    free(buf);
    if (root)
        return wq_fail(err, WQ_EPERM,
                       "service_user '%s' is root (uid or group 0): jobs never run as root; "
                       "name an unprivileged account",
                       r->service_user);
    return 0;
}

/* chmod a directory of the worker's own to 'mode' unless it has it. */
static int
set_mode(const char *path, mode_t mode, wq_error_t *err)
{
    struct stat st;
    if (stat(path, &st) < 0)
        return wq_fail_errno(err, "cannot read %s", path);
    if ((st.st_mode & 07777) != mode && chmod(path, mode) < 0)
        return wq_fail_errno(err, "cannot make %s mode %04o", path, (unsigned) mode);
    return 0;
}

int
runas_state_dirs(const runas_t *r, const char *state_dir, wq_error_t *err)
{
    int others = r->as_root && r->mode != RUNAS_WORKER; /* ranks switch to other accounts */
    mode_t pass = others ? 0711 : 0700;
    char p[PATH_MAX + 8];
    if (wq_mkdir_p(state_dir, pass, err) < 0)
        return -1;
    snprintf(p, sizeof p, "%s/jobs", state_dir);
    if (wq_mkdir_p(p, 0700, err) < 0 || set_mode(p, 0700, err) < 0)
        return -1;
    snprintf(p, sizeof p, "%s/spool", state_dir);
    if (wq_mkdir_p(p, pass, err) < 0 || set_mode(p, pass, err) < 0)
        return -1;
    if (!others)
        return 0;
    struct stat st;
    if (stat(state_dir, &st) == 0 && !(st.st_mode & S_IXOTH) && st.st_uid == geteuid() &&
        set_mode(state_dir, (st.st_mode & 07777) | S_IXOTH, err) < 0)
        return -1;
    /* Every directory above: the worker does not change modes it does not own. */
    snprintf(p, sizeof p, "%s", state_dir);
    for (;;) {
        if (stat(p, &st) < 0)
            return wq_fail_errno(err, "cannot read %s", p);
        if (!(st.st_mode & S_IXOTH))
            return wq_fail(err, WQ_EPERM,
                           "jobs running as other accounts cannot reach their spool under %s: %s "
                           "is mode %04o; allow them through (chmod o+x %s) or choose another "
                           "state_dir",
                           state_dir, p, (unsigned) (st.st_mode & 07777), p);
        char *slash = strrchr(p, '/');
        if (slash == NULL || slash == p)
            break;
        *slash = '\0';
    }
    return 0;
}

/* The account's groups as initgroups would set them (its primary group included). */
static int
group_list(const char *name, gid_t gid, gid_t **out, int *count)
{
    int n = 32;
    gid_t *g = wq_malloc((size_t) n * sizeof *g);
    for (;;) {
        int want = n;
        if (getgrouplist(name, gid, g, &want) >= 0) {
            *out = g;
            *count = want;
            return 0;
        }
        /* glibc says how many it needs in want; others may not: grow anyway */
        int next = want > n ? want : n * 2;
        if (next > GROUPS_MAX) {
            free(g);
            errno = E2BIG;
            return -1;
        }
        n = next;
        g = wq_realloc(g, (size_t) n * sizeof *g);
    }
}

int
runas_resolve(
    const runas_t *r, const char *owner, const char *node, runas_acct_t *a, char *why, size_t n)
{
    memset(a, 0, sizeof *a);
    a->uid = geteuid();
    a->gid = getegid();
    const char *name;
    if (r->mode == RUNAS_OWNER)
        name = owner;
    else if (r->mode == RUNAS_SERVICE && r->as_root)
        name = r->service_user;
    else
        return 0; /* the worker's own account: nothing to switch */
    const char *mode = runas_mode_name(r->mode);
    if (!r->as_root) {
        snprintf(why, n, "run_as = %s needs a worker running as root", mode);
        return -1;
    }
    if (name == NULL || *name == '\0') {
        snprintf(why, n, "the job has no owner (run_as = %s)", mode);
        return -1;
    }
    if (!runas_valid_name(name)) { /* not echoed: it came from the network */
        snprintf(why, n,
                 "no local account on %s for the job's owner: not a valid account name "
                 "(run_as = %s)",
                 node, mode);
        return -1;
    }
    struct passwd pw;
    char *buf = NULL;
    int found = lookup(name, &pw, &buf);
    if (found <= 0) {
        if (found < 0)
            snprintf(why, n, "cannot look up account '%s' on %s: %s", name, node, strerror(errno));
        else
            snprintf(why, n, "no local account '%s' on %s (run_as = %s)", name, node, mode);
        return -1;
    }
    int rc = -1;
    if (pw.pw_uid == 0 || pw.pw_gid == 0) {
        snprintf(why, n, "refusing to run a job as root (account '%s' on %s has %s 0)", name, node,
                 pw.pw_uid == 0 ? "uid" : "group");
        goto out;
    }
    if (strlen(pw.pw_dir) >= sizeof a->home) {
        snprintf(why, n, "account '%s' on %s: home directory path too long", name, node);
        goto out;
    }
    if (group_list(name, pw.pw_gid, &a->groups, &a->ngroups) < 0) {
        snprintf(why, n, "cannot read the groups of account '%s' on %s: %s", name, node,
                 strerror(errno));
        goto out;
    }
    a->drop = 1;
    a->uid = pw.pw_uid;
    a->gid = pw.pw_gid;
    snprintf(a->name, sizeof a->name, "%s", name);
    snprintf(a->home, sizeof a->home, "%s", pw.pw_dir);
    rc = 0;
out:
    free(buf);
    if (rc < 0)
        runas_acct_clear(a);
    return rc;
}

void
runas_acct_clear(runas_acct_t *a)
{
    if (a == NULL)
        return;
    free(a->groups);
    memset(a, 0, sizeof *a);
    a->uid = geteuid();
    a->gid = getegid();
}

int
runas_give(const char *path, uid_t uid, gid_t gid)
{
    if (uid == geteuid() && gid == getegid())
        return 0;
    return fchownat(AT_FDCWD, path, uid, gid, AT_SYMLINK_NOFOLLOW);
}
