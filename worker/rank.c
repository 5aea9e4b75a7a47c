/* wslq-rank: the parent of job ranks, so a rank's exit status outlives the worker.
 *
 *   wslq-rank --keeper FD
 *   wslq-rank STATUS_FILE ERROR_FD PROGRAM ARGV0 [ARGS...]
 *
 * --keeper: the rank keeper (keeper.h), one per worker, the parent of every rank: FD is its
 * listening seqpacket socket. It forks each rank the worker asks for, the child runs
 * child_exec (childexec.c, linked in) and execs the program, and it records each end in the
 * rank's STATUS_FILE as below. The rest of this comment is the older form, one wslq-rank per
 * rank, which the worker still uses when the keeper cannot serve a launch.
 *
 * The worker starts it in the rank's new session (in place of the rank itself). It starts
 * PROGRAM with ARGV0..., waits for it, writes the wait status to STATUS_FILE (read once the
 * rank's session is gone, so after the write) and exits the way the rank did, so the worker that
 * started it reads the same status as from the rank itself. A worker restarted meanwhile is
 * not the parent of anything; it finds the session gone and reads STATUS_FILE.
 *
 * It ignores SIGTERM, SIGINT, SIGHUP and SIGQUIT, which the worker sends to the whole group,
 * so it stays to record the status; SIGKILL takes it with the rank. If PROGRAM cannot be run,
 * it writes {2, errno} to ERROR_FD as the worker's own spawn does, and exits 127 (not found)
 * or 126. It uses no library of the project and allocates nothing: it runs in every rank.
 * It already runs as the job's account (the worker switched before exec'ing it), so the
 * status file, 0600, is the account's like the rest of the spool. */
#define _GNU_SOURCE /* accept4, struct ucred */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "worker/childexec.h"
#include "worker/keeper.h"

extern char **environ;

static const int group_signals[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT};

/* The keeper's own: every other signal is at its default, so a rank's child resets these
 * alone (childexec.h), not all 64 */
static const int keeper_ignored[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGPIPE, SIGUSR1, SIGUSR2};
#define KEEPER_NIGNORED ((int) (sizeof keeper_ignored / sizeof keeper_ignored[0]))

/* Write status to path, a file made afresh: O_EXCL and no link followed, as the keeper is root
 * in a directory the job's account owns (a file or link already there is removed first, once),
 * then given to uid:gid, so the account cannot point the write elsewhere. uid -1 = keep
 * (wslq-rank already runs as the account). No temp file and rename: the reader (a restarted
 * worker, adopted_rank_ended) reads it only once the rank's session is gone, which is after
 * this write; a writer killed in between leaves it empty, read as "status lost" as a missing
 * file is. One file made per rank, not two names and a rename. */
static int
write_status(const char *path, int status, uid_t uid, gid_t gid)
{
    /* 0600: the spool is the job's account's */
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 && errno == EEXIST && unlink(path) == 0)
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    char line[32];
    int n = snprintf(line, sizeof line, "%d\n", status);
    /* no fsync: the file has to outlive a worker restart, not a power loss (which ends the
     * rank too), and the page cache does that; an fsync per rank end cost milliseconds */
    int ok = write(fd, line, (size_t) n) == n;
    if (ok && uid != (uid_t) -1 && fchown(fd, uid, gid) < 0)
        ok = 0;
    close(fd);
    if (!ok) {
        unlink(path);
        return -1;
    }
    return 0;
}

/* ---- the keeper ---- */

typedef struct kept {
    pid_t pid;    /* 0 = free slot */
    char *status; /* its STATUS_FILE */
    uid_t uid;    /* the file's owner */
    gid_t gid;
    int client; /* the connection that started it (its end goes there), -1 = gone */
} kept_t;

static kept_t *kept;
static size_t nkept, capkept;
static size_t live;
#define KEEPER_CLIENTS 4
static int clients[KEEPER_CLIENTS] = {-1, -1, -1, -1};
static int nclients;
static unsigned char msgbuf[KEEPER_MAX_MSG] __attribute__((aligned(8)));
static char *strs[KEEPER_MAX_MSG + 3]; /* every string of a launch: at least 1 byte each */

static void drop_client(int i);

/* An answer to connection i; a failed send drops it (the worker is gone). */
static void
reply(int i, uint32_t type, int32_t pid, int32_t value)
{
    if (i < 0 || clients[i] < 0)
        return;
    keeper_reply_t r = {KEEPER_MAGIC, type, pid, value};
    if (send(clients[i], &r, sizeof r, MSG_NOSIGNAL | MSG_DONTWAIT) != (ssize_t) sizeof r &&
        errno != EAGAIN)
        drop_client(i);
}

static kept_t *
slot(void)
{
    for (size_t i = 0; i < nkept; i++)
        if (kept[i].pid == 0)
            return &kept[i];
    if (nkept == capkept) {
        size_t cap = capkept ? capkept * 2 : 64;
        kept_t *k = realloc(kept, cap * sizeof *k);
        if (k == NULL)
            return NULL;
        kept = k;
        capkept = cap;
    }
    memset(&kept[nkept], 0, sizeof kept[nkept]);
    return &kept[nkept++];
}

/* vfork: the child only reads *c and execs (childexec.h); a function of its own so nothing of
 * the caller's frame lives across the vfork */
static __attribute__((noinline)) pid_t
spawn(const child_spec_t *c)
{
    pid_t pid = vfork();
    if (pid == 0)
        child_exec(c);
    return pid;
}

static void
drop_client(int i)
{
    close(clients[i]);
    clients[i] = -1;
    nclients--;
    for (size_t k = 0; k < nkept; k++)
        if (kept[k].client == i)
            kept[k].client = -1; /* a restarted worker reads its status file */
}

/* One launch from connection ci in msgbuf (len bytes) with fds[nfd]: started, or refused with
 * the errno. */
static void
launch(int ci, size_t len, const int *fds, int nfd)
{
    keeper_launch_t h;
    int err = EINVAL;
    if (len < sizeof h)
        goto refuse;
    memcpy(&h, msgbuf, sizeof h);
    size_t nstr = (size_t) h.argc + h.envc + 3;
    if (h.magic != KEEPER_MAGIC || h.type != KEEPER_LAUNCH || h.argc == 0 ||
        h.argc > KEEPER_MAX_MSG || h.envc > KEEPER_MAX_MSG || h.ngroups > 65536 ||
        (h.drop != 0 && h.drop != 1) || (h.has_cpus != 0 && h.has_cpus != 1) ||
        (h.has_procs != 0 && h.has_procs != 1) || nfd != 3 + h.has_procs ||
        nstr > sizeof strs / sizeof strs[0] - 2)
        goto refuse;
    size_t off = sizeof h + (size_t) h.ngroups * sizeof(gid_t);
    if (off > len)
        goto refuse;
    gid_t *groups = h.ngroups ? (gid_t *) (void *) (msgbuf + sizeof h) : NULL;
    for (size_t i = 0; i < nstr; i++) {
        const unsigned char *z = off < len ? memchr(msgbuf + off, 0, len - off) : NULL;
        if (z == NULL)
            goto refuse;
        strs[i] = (char *) msgbuf + off;
        off = (size_t) (z - msgbuf) + 1;
    }
    if (off != len || strs[0][0] == '\0' || strs[2][0] == '\0')
        goto refuse;
    /* argv: strs[3 .. 3+argc), NULL; envp after it, NULL (the slot after argv is moved) */
    char **argv = strs + 3;
    char **envp = strs + 3 + h.argc + 1;
    memmove(envp, strs + 3 + h.argc, (size_t) h.envc * sizeof *envp);
    argv[h.argc] = NULL;
    envp[h.envc] = NULL;
    kept_t *k = slot();
    char *st = k ? strdup(strs[0]) : NULL;
    if (st == NULL) {
        err = ENOMEM;
        goto refuse;
    }
    runas_acct_t acct;
    memset(&acct, 0, sizeof acct);
    acct.drop = h.drop;
    acct.uid = h.uid;
    acct.gid = h.gid;
    acct.groups = groups;
    acct.ngroups = (int) h.ngroups;
    child_spec_t c = {strs[2],
                      strs[1][0] ? strs[1] : NULL,
                      argv,
                      envp,
                      fds[0],
                      fds[1],
                      fds[2],
                      0,
                      &acct,
                      h.has_cpus ? &h.cpus : NULL,
                      h.has_procs ? fds[3] : -1,
                      keeper_ignored,
                      KEEPER_NIGNORED};
    pid_t pid = spawn(&c);
    if (pid < 0) {
        err = errno;
        free(st);
        goto refuse;
    }
    k->pid = pid;
    k->status = st;
    k->uid = h.status_uid;
    k->gid = h.status_gid;
    k->client = ci;
    live++;
    for (int i = 0; i < nfd; i++)
        close(fds[i]);
    reply(ci, KEEPER_STARTED, pid, 0);
    return;
refuse:
    for (int i = 0; i < nfd; i++)
        close(fds[i]);
    reply(ci, KEEPER_REFUSED, 0, err);
}

/* Ranks that ended: the status written while the rank is still a zombie (its group exists
 * until then, so a worker watching the group finds the file), then reaped and reported. */
static void
reap(void)
{
    for (;;) {
        siginfo_t si;
        memset(&si, 0, sizeof si);
        if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0 || si.si_pid == 0)
            return;
        pid_t pid = si.si_pid;
        kept_t *k = NULL;
        for (size_t i = 0; i < nkept && k == NULL; i++)
            if (kept[i].pid == pid)
                k = &kept[i];
        int status = si.si_code == CLD_EXITED   ? (si.si_status & 0xff) << 8
                     : si.si_code == CLD_DUMPED ? (si.si_status & 0x7f) | 0x80
                                                : si.si_status & 0x7f;
        if (k != NULL && write_status(k->status, status, k->uid, k->gid) < 0)
            fprintf(stderr, "wslq-rank: cannot write %s: %s\n", k->status, strerror(errno));
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
        if (k == NULL)
            continue;
        free(k->status);
        k->status = NULL;
        k->pid = 0;
        live--;
        reply(k->client, KEEPER_ENDED, pid, status);
    }
}

/* A message on connection ci: a launch, or anything else refused. 0, or -1 when it is
 * gone. */
static int
from_client(int ci)
{
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(8 * sizeof(int))];
    } cbuf;
    struct iovec iov = {msgbuf, sizeof msgbuf};
    struct msghdr m;
    memset(&m, 0, sizeof m);
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = cbuf.buf;
    m.msg_controllen = sizeof cbuf.buf;
    ssize_t n = recvmsg(clients[ci], &m, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    if (n < 0)
        return -1; /* gone (ECONNRESET: it closed with our messages unread): nothing came, and
                      the control buffer was never filled, so it is not read */
    int fds[8], nfd = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c != NULL; c = CMSG_NXTHDR(&m, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < k; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
            if (nfd < 8)
                fds[nfd++] = fd;
            else
                close(fd);
        }
    }
    if (n <= 0) {
        for (int i = 0; i < nfd; i++)
            close(fds[i]);
        return -1;
    }
    if ((m.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0) {
        for (int i = 0; i < nfd; i++)
            close(fds[i]);
        reply(ci, KEEPER_REFUSED, 0, EMSGSIZE);
        return 0;
    }
    launch(ci, (size_t) n, fds, nfd);
    return 0;
}

static int
keeper(int lfd)
{
    for (int s = 1; s < NSIG; s++)
        signal(s, SIG_DFL); /* what the worker left ignored would reach the ranks */
    for (int i = 0; i < KEEPER_NIGNORED; i++)
        signal(keeper_ignored[i], SIG_IGN);
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, NULL);
    int sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sfd < 0 || fcntl(lfd, F_SETFD, FD_CLOEXEC) < 0) {
        fprintf(stderr, "wslq-rank --keeper: %s\n", strerror(errno));
        return 125;
    }
    if (chdir("/") < 0)
        return 125;
    int waited = 0; /* the worker connects before it starts the keeper: 10 s at most */
    for (;;) {
        struct pollfd p[2 + KEEPER_CLIENTS] = {{lfd, POLLIN, 0}, {sfd, POLLIN, 0}};
        for (int i = 0; i < KEEPER_CLIENTS; i++)
            p[2 + i] = (struct pollfd){clients[i], POLLIN, 0}; /* -1: not polled */
        int r = poll(p, 2 + KEEPER_CLIENTS, waited ? -1 : 10000);
        if (r < 0 && errno != EINTR)
            return 125;
        if (r == 0 && nclients == 0 && live == 0)
            return 0;
        waited = 1;
        if (r > 0 && p[1].revents) {
            struct signalfd_siginfo si;
            while (read(sfd, &si, sizeof si) > 0)
                ;
            reap();
        }
        for (int i = 0; r > 0 && i < KEEPER_CLIENTS; i++)
            if (clients[i] >= 0 && p[2 + i].revents && from_client(i) < 0)
                drop_client(i);
        if (r > 0 && (p[0].revents & POLLIN)) {
            int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
            struct ucred cr;
            socklen_t cl = sizeof cr;
            int i = 0;
            while (i < KEEPER_CLIENTS && clients[i] >= 0)
                i++;
            if (c >= 0 &&
                (i == KEEPER_CLIENTS || getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cr, &cl) < 0 ||
                 cr.uid != geteuid())) {
                close(c); /* only the worker's own account, and a few at a time */
                c = -1;
            }
            if (c >= 0) {
                clients[i] = c;
                nclients++;
            }
        }
        struct pollfd q = {lfd, POLLIN, 0};
        if (nclients == 0 && live == 0 && poll(&q, 1, 0) == 0)
            return 0; /* no worker, none connecting, and nothing to keep */
    }
}

int
main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--keeper") == 0) {
        char *e;
        long fd = strtol(argv[2], &e, 10);
        if (*e != '\0' || fd < 0 || fd > 1000000) {
            fprintf(stderr, "wslq-rank: --keeper takes a descriptor number\n");
            return 125;
        }
        return keeper((int) fd);
    }
    if (argc < 5) {
        fprintf(stderr,
                "usage: wslq-rank STATUS_FILE ERROR_FD PROGRAM ARGV0 [ARGS...] | --keeper FD\n");
        return 125;
    }
    const char *status_path = argv[1];
    char *end;
    long errw = strtol(argv[2], &end, 10);
    if (*end != '\0' || errw < 0)
        errw = -1;
    else
        fcntl((int) errw, F_SETFD, FD_CLOEXEC); /* the rank must not hold it: EOF = started */

    struct sigaction ign, dfl;
    memset(&ign, 0, sizeof ign);
    ign.sa_handler = SIG_IGN;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (size_t i = 0; i < sizeof group_signals / sizeof group_signals[0]; i++)
        sigaction(group_signals[i], &ign, NULL); /* before the fork: no window */

    /* vfork: the child only resets its signals (its own dispositions: no CLONE_SIGHAND) and
     * execs, and this process is one page table less to copy before every rank */
    pid_t pid = vfork();
    if (pid < 0) {
        int msg[2] = {2, errno};
        if (errw >= 0 && write((int) errw, msg, sizeof msg) < 0)
            _exit(126);
        _exit(126);
    }
    if (pid == 0) {
        for (size_t i = 0; i < sizeof group_signals / sizeof group_signals[0]; i++)
            sigaction(group_signals[i], &dfl, NULL); /* an ignored signal survives exec */
        execve(argv[3], argv + 4, environ);
        int e = errno;
        int msg[2] = {2, e};
        ssize_t w = errw >= 0 ? write((int) errw, msg, sizeof msg) : 0;
        (void) w;
        _exit(e == ENOENT ? 127 : 126);
    }
    if (errw >= 0)
        close((int) errw);

    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return 125;
    if (write_status(status_path, status, (uid_t) -1, 0) < 0)
        fprintf(stderr, "wslq-rank: cannot write %s: %s\n", status_path, strerror(errno));

    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) {
        /* end by the same signal, without a core file of our own */
        int sig = WTERMSIG(status);
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
        sigaction(sig, &dfl, NULL);
        sigset_t one;
        sigemptyset(&one);
        sigaddset(&one, sig);
        sigprocmask(SIG_UNBLOCK, &one, NULL);
        raise(sig);
        return 128 + sig;
    }
    return 125;
}
