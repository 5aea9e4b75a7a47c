/* The worker's side of the rank keeper (keeper.h): connecting to it or starting it, launches,
 * and the ends it reports. */
#define _GNU_SOURCE /* O_PATH */
#include "worker/keeper.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "common/mem.h"

#define KEEPER_REPLY_MS 5000 /* a launch's answer; the keeper answers at once */

void
keeper_init(keeper_t *k, const char *state_dir, const char *rank_exe)
{
    memset(k, 0, sizeof *k);
    k->fd = -1;
    snprintf(k->dir, sizeof k->dir, "%s", state_dir);
    k->rank_exe = rank_exe;
}

/* The socket's address; a state directory too long for sun_path is reached through a
 * descriptor of it (*dirfd, closed by the caller). -1 when it cannot be named. */
static int
sock_addr(const keeper_t *k, struct sockaddr_un *a, int *dirfd)
{
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    *dirfd = -1;
    if (snprintf(a->sun_path, sizeof a->sun_path, "%s/%s", k->dir, KEEPER_SOCK) <
        (int) sizeof a->sun_path)
        return 0;
    *dirfd = open(k->dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (*dirfd < 0)
        return -1;
    snprintf(a->sun_path, sizeof a->sun_path, "/proc/self/fd/%d/%s", *dirfd, KEEPER_SOCK);
    return 0;
}

static int
client_socket(void)
{
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = {KEEPER_REPLY_MS / 1000, 0};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int sz = 2 * KEEPER_MAX_MSG;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
    return fd;
}

/* Start a keeper: the worker binds and listens (so the path is root's, 0600, before anything
 * runs), connects, then starts `wslq-rank --keeper 3` with the listener, in a session of its
 * own and not as the worker's child (the middle process exits at once). */
static int
start(keeper_t *k, const struct sockaddr_un *a)
{
    unlink(a->sun_path);
    int l = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (l < 0)
        return -1;
    mode_t old = umask(077);
    int rc = bind(l, (const struct sockaddr *) a, sizeof *a);
    umask(old);
    if (rc < 0 || chmod(a->sun_path, 0600) < 0 || listen(l, 8) < 0) {
        close(l);
        return -1;
    }
    int c = client_socket();
    if (c < 0 || connect(c, (const struct sockaddr *) a, sizeof *a) < 0) {
        if (c >= 0)
            close(c);
        close(l);
        return -1;
    }
    int nullfd = open("/dev/null", O_RDWR | O_CLOEXEC);
    pid_t mid = fork();
    if (mid == 0) {
        /* async-signal-safe calls only: the worker has other threads */
        setsid();
        pid_t pid = fork();
        if (pid != 0)
            _exit(pid < 0);
        if (nullfd >= 0) {
            dup2(nullfd, 0);
            dup2(nullfd, 1);
            dup2(nullfd, 2);
        }
        if (l == 3)
            fcntl(3, F_SETFD, 0);
        else
            dup2(l, 3);
        syscall(SYS_close_range, 4U, ~0U, 0);
        char *argv[] = {(char *) "wslq-rank", (char *) "--keeper", (char *) "3", NULL};
        char *envp[] = {(char *) "PATH=/usr/bin:/bin", NULL};
        execve(k->rank_exe, argv, envp);
        _exit(127);
    }
    if (nullfd >= 0)
        close(nullfd);
    close(l);
    int st = 1;
    if (mid > 0)
        while (waitpid(mid, &st, 0) < 0 && errno == EINTR)
            ;
    if (mid < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        close(c);
        return -1;
    }
    log_info("rank keeper started path=%s", a->sun_path);
    k->fd = c;
    return 0;
}

int
keeper_connect(keeper_t *k)
{
    if (k->fd >= 0)
        return 0;
    if (k->rank_exe == NULL || k->dir[0] == '\0')
        return -1;
    struct sockaddr_un a;
    int dirfd;
    if (sock_addr(k, &a, &dirfd) < 0)
        return -1;
    int c = client_socket();
    int rc = -1;
    if (c >= 0 && connect(c, (const struct sockaddr *) &a, sizeof a) == 0) {
        log_info("rank keeper found path=%s", a.sun_path);
        k->fd = c;
        rc = 0;
    } else if (c >= 0) {
        close(c);
    }
    if (dirfd >= 0)
        close(dirfd);
    return rc;
}

/* Connected to the keeper, or a new one started: 0, or -1. */
static int
ensure(keeper_t *k)
{
    if (k->fd >= 0)
        return 0;
    if (k->rank_exe == NULL || k->dir[0] == '\0')
        return -1;
    if (keeper_connect(k) == 0)
        return 0;
    struct sockaddr_un a;
    int dirfd;
    if (sock_addr(k, &a, &dirfd) < 0)
        return -1;
    int rc = start(k, &a);
    if (rc < 0)
        log_warn("cannot start the rank keeper: ranks start through wslq-rank each err=\"%s\"",
                 strerror(errno));
    if (dirfd >= 0)
        close(dirfd);
    return rc;
}

static void
lose(keeper_t *k)
{
    if (k->fd >= 0)
        close(k->fd);
    k->fd = -1;
    k->lost = 1;
    log_warn("rank keeper connection lost: its running ranks are watched by group");
}

static void
push_end(keeper_t *k, pid_t pid, int status)
{
    if (k->nends == k->cap) {
        k->cap = k->cap ? k->cap * 2 : 16;
        k->ends = wq_realloc(k->ends, k->cap * sizeof *k->ends);
    }
    k->ends[k->nends].pid = pid;
    k->ends[k->nends].status = status;
    k->nends++;
}

/* One message from the keeper: 1 read (ends are queued), 0 nothing waiting, -1 lost. */
static int
read_one(keeper_t *k, int flags, keeper_reply_t *out)
{
    keeper_reply_t r;
    ssize_t n;
    do
        n = recv(k->fd, &r, sizeof r, flags);
    while (n < 0 && errno == EINTR && flags == 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return 0;
    if (n != (ssize_t) sizeof r || r.magic != KEEPER_MAGIC) {
        lose(k);
        return -1;
    }
    if (r.type == KEEPER_ENDED)
        push_end(k, r.pid, r.value);
    *out = r;
    return 1;
}

pid_t
keeper_launch(keeper_t *k,
              const char *status_path,
              const char *exe,
              const char *cwd,
              char **argv,
              char **envp,
              int nullfd,
              int outfd,
              int errw,
              const runas_acct_t *acct,
              uid_t status_uid,
              gid_t status_gid,
              const isol_cpus_t *cpus,
              int procs_fd)
{
    keeper_launch_t h;
    memset(&h, 0, sizeof h);
    h.magic = KEEPER_MAGIC;
    h.type = KEEPER_LAUNCH;
    size_t len = sizeof h;
    const char *fixed[3] = {status_path, exe ? exe : "", cwd};
    for (int i = 0; i < 3; i++)
        len += strlen(fixed[i]) + 1;
    for (; argv[h.argc] != NULL; h.argc++)
        len += strlen(argv[h.argc]) + 1;
    for (; envp[h.envc] != NULL; h.envc++)
        len += strlen(envp[h.envc]) + 1;
    if (acct != NULL && acct->drop) {
        h.drop = 1;
        h.uid = acct->uid;
        h.gid = acct->gid;
        h.ngroups = (uint32_t) acct->ngroups;
        len += (size_t) acct->ngroups * sizeof(gid_t);
    }
    if (len > KEEPER_MAX_MSG || h.argc == 0 || ensure(k) < 0)
        return -2;
    h.status_uid = status_uid;
    h.status_gid = status_gid;
    if (cpus != NULL) {
        h.has_cpus = 1;
        h.cpus = *cpus;
    }
    h.has_procs = procs_fd >= 0;
    char *buf = wq_malloc(len);
    size_t off = 0;
    memcpy(buf, &h, sizeof h);
    off += sizeof h;
    if (h.ngroups) {
        memcpy(buf + off, acct->groups, h.ngroups * sizeof(gid_t));
        off += h.ngroups * sizeof(gid_t);
    }
    for (int i = 0; i < 3; i++) {
        size_t n = strlen(fixed[i]) + 1;
        memcpy(buf + off, fixed[i], n);
        off += n;
    }
    for (char **v = argv; *v; v++) {
        size_t n = strlen(*v) + 1;
        memcpy(buf + off, *v, n);
        off += n;
    }
    for (char **v = envp; *v; v++) {
        size_t n = strlen(*v) + 1;
        memcpy(buf + off, *v, n);
        off += n;
    }
    int fds[4] = {nullfd, outfd, errw, procs_fd};
    int nfd = 3 + h.has_procs;
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof fds)];
    } cbuf;
    memset(&cbuf, 0, sizeof cbuf);
    struct iovec iov = {buf, len};
    struct msghdr m;
    memset(&m, 0, sizeof m);
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = cbuf.buf;
    m.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t) nfd);
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t) nfd);
    memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t) nfd);
    ssize_t sent = sendmsg(k->fd, &m, MSG_NOSIGNAL);
    int saved = errno;
    free(buf);
    if (sent != (ssize_t) len) {
        if (sent < 0 && saved == EMSGSIZE)
            return -2; /* too large for the socket: the old way */
        lose(k);
        return -2;
    }
    for (;;) {
        keeper_reply_t r;
        if (read_one(k, 0, &r) <= 0) {
            if (k->fd >= 0)
                lose(k); /* no answer in time */
            /* the rank may have started: failed rather than started a second time */
            errno = ECONNRESET;
            return -1;
        }
        if (r.type == KEEPER_STARTED && r.pid > 0)
            return r.pid;
        if (r.type == KEEPER_REFUSED) {
            errno = r.value > 0 ? r.value : EINVAL;
            return -1;
        }
    }
}

int
keeper_next_end(keeper_t *k, keeper_end_t *e)
{
    keeper_reply_t r;
    while (k->nends == 0 && k->fd >= 0 && read_one(k, MSG_DONTWAIT, &r) > 0)
        ;
    if (k->nends == 0)
        return 1;
    *e = k->ends[0];
    memmove(k->ends, k->ends + 1, (k->nends - 1) * sizeof *k->ends);
    k->nends--;
    return 0;
}

int
keeper_fd(const keeper_t *k)
{
    return k->fd;
}

void
keeper_close(keeper_t *k)
{
    if (k->fd >= 0)
        close(k->fd);
    k->fd = -1;
    free(k->ends);
    k->ends = NULL;
    k->nends = k->cap = 0;
}
