/* A rank's child between fork and exec (childexec.h); with runas_switch and isol_child, the
 * other two pieces it runs, so the rank keeper (rank.c) links this file alone. */
#include "worker/childexec.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* 32-bit x86 and ARM have 16-bit id calls under the plain names; the 32-bit ones end in 32. */
#ifdef SYS_setuid32
#define SYS_SETGROUPS SYS_setgroups32
#define SYS_GETGROUPS SYS_getgroups32
#define SYS_SETGID    SYS_setgid32
#define SYS_SETUID    SYS_setuid32
#define SYS_GETRESUID SYS_getresuid32
#define SYS_GETRESGID SYS_getresgid32
#else
#define SYS_SETGROUPS SYS_setgroups
#define SYS_GETGROUPS SYS_getgroups
#define SYS_SETGID    SYS_setgid
#define SYS_SETUID    SYS_setuid
#define SYS_GETRESUID SYS_getresuid
#define SYS_GETRESGID SYS_getresgid
#endif

void
isol_child(const isol_cpus_t *cpus, int procs_fd)
{
    if (cpus != NULL)
        syscall(SYS_sched_setaffinity, 0, sizeof *cpus, cpus);
    if (procs_fd >= 0) {
        /* "0": this process (with one thread, as a vfork child has), at offset 0 each time:
         * every rank's child writes through the same descriptor */
        ssize_t w = pwrite(procs_fd, "0\n", 2, 0);
        (void) w;
    }
}

int
runas_switch(const runas_acct_t *a, int *err_no)
{
    if (a == NULL || !a->drop)
        return 0;
    /* Groups first and uid last: once the uid is not 0, the other two can no longer change. */
    if (syscall(SYS_SETGROUPS, (long) a->ngroups, a->groups) != 0) {
        *err_no = errno;
        return RUNAS_STAGE_GROUPS;
    }
    if (syscall(SYS_SETGID, (long) a->gid) != 0) {
        *err_no = errno;
        return RUNAS_STAGE_GID;
    }
    if (syscall(SYS_SETUID, (long) a->uid) != 0) {
        *err_no = errno;
        return RUNAS_STAGE_UID;
    }
    /* Checked, not assumed: real, effective and saved ids, the group count, and that the way
     * back to root is shut (setuid as root sets all three uids and drops the capabilities). */
    uid_t ru = 0, eu = 0, su = 0;
    gid_t rg = 0, eg = 0, sg = 0;
    *err_no = EPERM;
    if (syscall(SYS_GETRESUID, &ru, &eu, &su) != 0 || syscall(SYS_GETRESGID, &rg, &eg, &sg) != 0)
        return RUNAS_STAGE_CHECK;
    if (ru != a->uid || eu != a->uid || su != a->uid || rg != a->gid || eg != a->gid ||
        sg != a->gid || syscall(SYS_GETGROUPS, 0L, NULL) != (long) a->ngroups)
        return RUNAS_STAGE_CHECK;
    if (syscall(SYS_SETUID, 0L) == 0 || syscall(SYS_SETGID, 0L) == 0)
        return RUNAS_STAGE_CHECK;
    return 0;
}

void
child_exec(const child_spec_t *c)
{
    isol_child(c->cpus, c->procs_fd); /* while still the parent's account: the cgroup is its */
    if (c->keep_errw)
        fcntl(c->errw, F_SETFD, 0); /* wslq-rank reports the rank's own exec through it */
    setsid();
    dup2(c->nullfd, 0);
    dup2(c->outfd, 1);
    dup2(c->outfd, 2);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    /* ignored signals (SIGPIPE) would survive exec */
    if (c->ignored != NULL)
        for (int i = 0; i < c->nignored; i++)
            sigaction(c->ignored[i], &dfl, NULL);
    else
        for (int s = 1; s < NSIG; s++)
            sigaction(s, &dfl, NULL);
    int msg[2] = {1, 0};
    /* The job's account before anything runs (chdir included, so it is checked as the job's):
     * wslq-rank then runs as the account too. A failed switch runs nothing. */
    msg[0] = runas_switch(c->acct, &msg[1]);
    if (msg[0] != 0) {
        ssize_t w = write(c->errw, msg, sizeof msg);
        (void) w;
        _exit(126);
    }
    msg[0] = 1;
    if (chdir(c->cwd) == 0) {
        msg[0] = 2;
        if (c->exe != NULL)
            execve(c->exe, c->argv, c->envp);
        else
            errno = ENOENT;
    }
    msg[1] = errno;
    ssize_t w = write(c->errw, msg, sizeof msg);
    (void) w;
    _exit(msg[0] == 1 ? 1 : (msg[1] == ENOENT ? 127 : 126));
}
