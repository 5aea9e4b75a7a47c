/* wslq-rank: the parent of one job rank, so the rank's exit status outlives the worker.
 *
 *   wslq-rank STATUS_FILE ERROR_FD PROGRAM ARGV0 [ARGS...]
 *
 * The worker starts it in the rank's new session (in place of the rank itself). It starts
 * PROGRAM with ARGV0..., waits for it, writes the wait status to STATUS_FILE (temp file and
 * rename, so a reader sees all or nothing) and exits the way the rank did, so the worker that
 * started it reads the same status as from the rank itself. A worker restarted meanwhile is
 * not the parent of anything; it finds the session gone and reads STATUS_FILE.
 *
 * It ignores SIGTERM, SIGINT, SIGHUP and SIGQUIT, which the worker sends to the whole group,
 * so it stays to record the status; SIGKILL takes it with the rank. If PROGRAM cannot be run,
 * it writes {2, errno} to ERROR_FD as the worker's own spawn does, and exits 127 (not found)
 * or 126. It uses no library of the project and allocates nothing: it runs in every rank.
 * It already runs as the job's account (the worker switched before exec'ing it), so the
 * status file, 0600, is the account's like the rest of the spool. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static const int group_signals[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT};

static int
write_status(const char *path, int status)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int) sizeof tmp)
        return -1;
    /* 0600: the spool is the job's account's own (it runs as that account) */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    char line[32];
    int n = snprintf(line, sizeof line, "%d\n", status);
    /* no fsync: the file has to outlive a worker restart, not a power loss (which ends the
     * rank too), and the page cache does that; an fsync per rank end cost milliseconds */
    int ok = write(fd, line, (size_t) n) == n;
    close(fd);
    if (!ok || rename(tmp, path) < 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

int
main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: wslq-rank STATUS_FILE ERROR_FD PROGRAM ARGV0 [ARGS...]\n");
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
    if (write_status(status_path, status) < 0)
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
