/* runas: job ranks run as another account, for real (worker/README.md, "Run-as modes").
 *
 *   worker_runas_test PATH-TO-wslq-rank PATH-TO-wslq
 *
 * Needs root and useradd (else exit 77 with the reason). It makes a temporary system account
 * with a second group of its own, and removes both at the end; a watchdog process (its own
 * session, reading a pipe only this process holds) removes them too if this one dies.
 *
 * Checked: the start checks and their one-line fixes; account resolution and the reasons of a
 * refused job (no account, root, a bad name) with nothing run; in service and owner mode every
 * process of each rank (wslq-rank included) has the account's uids, gids and groups and no
 * capability, and the rank sees its id, groups, HOME, USER, LOGNAME and home as working
 * directory; the worker's other thread kept root (the switch uses raw system calls); a rank
 * reaches its rendezvous socket; the spool is 0700 and its files 0600, all the account's; a
 * failed switch runs nothing and gives the reason; links, hard links and FIFOs planted in the
 * spool are not followed when a worker adopts the job. Every wait is bounded. */
/* cmocka.h needs these first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
/* after the standard headers */
#include <cmocka.h>
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#include "common/clock.h"
#include "worker/job.h"
#include "worker/rdv.h"
#include "worker/runas.h"

static const char *rank_exe, *cli_exe;
static char acct_name[RUNAS_NAME_MAX + 1], group_name[RUNAS_NAME_MAX + 1];
static char home[64], dir[64];
static uid_t acct_uid;
static gid_t acct_gid, extra_gid;
static int watchdog_fd = -1;
static pid_t watchdog_pid;
static job_cfg_t cfg;
static keeper_t *keeper; /* the rank keeper of the test that uses one, else NULL */
static uint64_t next_id = 1;

/* ---- the temporary account ---- */

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int
sh(const char *fmt, ...)
{
    char cmd[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/* The account, its group and its home go when the pipe's write end closes: at our exit, or
 * when this process is killed. */
static void
remove_account(void)
{
    if (watchdog_fd < 0)
        return;
    close(watchdog_fd);
    watchdog_fd = -1;
    int status;
    for (int i = 0; i < 3000 && waitpid(watchdog_pid, &status, WNOHANG) == 0; i++)
        usleep(10000);
}

static int
start_watchdog(void)
{
    int p[2];
    if (pipe(p) < 0)
        return -1;
    fcntl(p[1], F_SETFD, FD_CLOEXEC); /* no rank may hold it: only this process's end counts */
    watchdog_pid = fork();
    if (watchdog_pid < 0)
        return -1;
    if (watchdog_pid == 0) {
        setsid(); /* not in our process group: a timeout that kills the group spares it */
        dup2(p[0], 0);
        execl("/bin/sh", "sh", "-c",
              "cat >/dev/null; userdel -f \"$1\" 2>/dev/null; groupdel \"$2\" 2>/dev/null; "
              "rm -rf \"$3\"",
              "sh", acct_name, group_name, home, (char *) NULL);
        _exit(127);
    }
    close(p[0]);
    watchdog_fd = p[1];
    atexit(remove_account);
    return 0;
}

static int
make_account(void)
{
    unsigned tag = (unsigned) getpid() ^ (unsigned) wq_clock_mono_ms();
    snprintf(acct_name, sizeof acct_name, "wqt%08x", tag);
    snprintf(group_name, sizeof group_name, "wqg%08x", tag);
    snprintf(home, sizeof home, "/tmp/wqt-home-XXXXXX");
    if (mkdtemp(home) == NULL || start_watchdog() < 0)
        return -1;
    if (sh("groupadd --system %s", group_name) != 0 ||
        sh("useradd --system --no-create-home --home-dir %s --shell /usr/sbin/nologin -G %s %s",
           home, group_name, acct_name) != 0)
        return -1;
    struct passwd *pw = getpwnam(acct_name);
    struct group *gr = getgrnam(group_name);
    if (pw == NULL || gr == NULL)
        return -1;
    acct_uid = pw->pw_uid;
    acct_gid = pw->pw_gid;
    extra_gid = gr->gr_gid;
    return chown(home, acct_uid, acct_gid) == 0 ? 0 : -1;
}

/* ---- a worker's setup ---- */

static int
setup(void **state)
{
    (void) state;
    if (make_account() < 0) {
        fprintf(stderr, "cannot make the temporary account %s\n", acct_name);
        return -1;
    }
    snprintf(dir, sizeof dir, "/tmp/wslq-runas-XXXXXX");
    if (mkdtemp(dir) == NULL || chmod(dir, 0711) < 0)
        return -1;
    extern char **environ;
    cfg.state_dir = dir;
    cfg.env.node = "testnode";
    cfg.env.iface = "lo";
    cfg.env.ip = "127.0.0.1";
    cfg.base_env = environ;
    cfg.grace_ms = 200;
    cfg.rank_exe = rank_exe;
    return 0;
}

static int
teardown(void **state)
{
    (void) state;
    int rc = sh("rm -rf %s", dir);
    remove_account();
    return rc == 0 && getpwnam(acct_name) == NULL ? 0 : -1;
}

typedef struct {
    Wslq__JobLaunch l;
    Wslq__JobSpec spec;
    Wslq__Alloc alloc;
    char *argv[4];
    char *env[2];
    char cli[600];
} launch_t;

static void
init_launch(launch_t *f, const char *shell_line, int nranks)
{
    wslq__job_launch__init(&f->l);
    wslq__job_spec__init(&f->spec);
    wslq__alloc__init(&f->alloc);
    f->argv[0] = "/bin/sh";
    f->argv[1] = "-c";
    f->argv[2] = (char *) shell_line;
    f->spec.argv = f->argv;
    f->spec.n_argv = 3;
    f->spec.wrap = 1;
    f->spec.name = "t";
    f->spec.cwd = "/tmp";
    snprintf(f->cli, sizeof f->cli, "WQ_CLI=%s", cli_exe);
    f->env[0] = f->cli;
    f->spec.env = f->env;
    f->spec.n_env = 1;
    f->alloc.nranks = (uint32_t) nranks;
    f->alloc.node = "testnode";
    f->l.job_id = next_id++;
    f->l.spec = &f->spec;
    f->l.alloc = &f->alloc;
    f->l.world_size = (uint32_t) nranks;
    f->l.nnodes = 1;
}

/* ---- a fake scheduler behind the rendezvous relay: every KV request is answered found ---- */

static uint64_t kv_pending[16];
static int kv_npending, kv_requests;

static int
kv_send(void *ctx, Wslq__Envelope *env)
{
    (void) ctx;
    if (env->body_case == WSLQ__ENVELOPE__BODY_KV && kv_npending < 16) {
        kv_pending[kv_npending++] = env->request_id;
        kv_requests++;
    }
    return 0;
}

static void
pump(rdv_t *rdv)
{
    if (rdv == NULL)
        return;
    zmq_pollitem_t items[16];
    size_t n = rdv_pollitems(rdv, items, 16);
    if (n > 0 && zmq_poll(items, (int) n, 5) > 0)
        rdv_handle(rdv, items, n);
    for (int i = 0; i < kv_npending; i++) {
        Wslq__KvReply kr = WSLQ__KV_REPLY__INIT;
        kr.found = 1;
        Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
        env.request_id = kv_pending[i];
        env.body_case = WSLQ__ENVELOPE__BODY_KV_REPLY;
        env.kv_reply = &kr;
        rdv_reply(rdv, &env);
    }
    kv_npending = 0;
}

static char *
read_log(const job_t *j)
{
    static char buf[8192];
    ssize_t n = job_log_read(j, 0, buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

/* Reap, poll and relay until the log holds every string of in_log (NULL-ended), or, with
 * in_log NULL, until the job ends; at most limit_ms. */
static void
run_until(job_t *j, rdv_t *rdv, int64_t limit_ms, const char *const *in_log)
{
    int64_t end = wq_clock_mono_ms() + limit_ms;
    while (j->phase != JOB_ENDED && wq_clock_mono_ms() < end) {
        int status;
        pid_t pid;
        while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
            job_reap(j, pid, status, wq_clock_mono_ms());
        keeper_end_t e;
        while (keeper != NULL && keeper_next_end(keeper, &e) == 0)
            job_reap(j, e.pid, e.status, wq_clock_mono_ms());
        job_poll(j, wq_clock_mono_ms());
        pump(rdv);
        int have = in_log != NULL;
        for (size_t k = 0; in_log != NULL && in_log[k] != NULL; k++)
            have &= strstr(read_log(j), in_log[k]) != NULL;
        if (have)
            return;
        usleep(5000);
    }
    if (in_log == NULL)
        assert_int_equal(j->phase, JOB_ENDED);
}

/* ---- what the kernel says about a process ---- */

/* Every process in process group pgid: each line of /proc/PID/status named 'key' must equal
 * 'want'. Returns the number of processes checked. */
static int
check_group(pid_t pgid, const char *key, const char *want)
{
    DIR *d = opendir("/proc");
    assert_non_null(d);
    struct dirent *e;
    int seen = 0;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        char p[300], buf[4096];
        snprintf(p, sizeof p, "/proc/%s/stat", e->d_name);
        FILE *f = fopen(p, "r");
        if (f == NULL)
            continue;
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = '\0';
        char *rp = strrchr(buf, ')'); /* the name may hold spaces and parentheses */
        char st;
        int ppid, pgrp;
        if (rp == NULL || sscanf(rp + 1, " %c %d %d", &st, &ppid, &pgrp) != 3 || pgrp != pgid ||
            st == 'Z')
            continue;
        snprintf(p, sizeof p, "/proc/%s/status", e->d_name);
        f = fopen(p, "r");
        if (f == NULL)
            continue;
        char line[512];
        int found = 0;
        while (fgets(line, sizeof line, f) != NULL)
            if (strncmp(line, key, strlen(key)) == 0 && line[strlen(key)] == ':') {
                char *v = line + strlen(key) + 1;
                v += strspn(v, " \t");
                v[strcspn(v, "\n")] = '\0';
                for (char *t = v; *t; t++)
                    if (*t == '\t')
                        *t = ' ';
                if (strcmp(v, want) != 0)
                    fail_msg("pid %s %s: '%s', want '%s'", e->d_name, key, v, want);
                found = 1;
            }
        fclose(f);
        assert_true(found);
        seen++;
    }
    closedir(d);
    return seen;
}

static void
assert_owned(const char *path, mode_t mode)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        fail_msg("%s: missing", path);
    if (st.st_uid != acct_uid || st.st_gid != acct_gid || (st.st_mode & 07777) != mode)
        fail_msg("%s: uid %u gid %u mode %04o, want %u %u %04o", path, (unsigned) st.st_uid,
                 (unsigned) st.st_gid, (unsigned) (st.st_mode & 07777), (unsigned) acct_uid,
                 (unsigned) acct_gid, (unsigned) mode);
}

/* A second thread of "the worker": a glibc setuid in the vfork child would have changed it too
 * (glibc signals every thread it knows, the parent's). */
static int thread_pipe[2] = {-1, -1};

static void *
idle_thread(void *arg)
{
    *(pid_t *) arg = (pid_t) syscall(SYS_gettid);
    char b;
    ssize_t r = read(thread_pipe[0], &b, 1);
    (void) r;
    return NULL;
}

static void
assert_task_root(pid_t tid)
{
    char p[64], line[256];
    snprintf(p, sizeof p, "/proc/self/task/%d/status", (int) tid);
    FILE *f = fopen(p, "r");
    assert_non_null(f);
    int ok = 0;
    while (fgets(line, sizeof line, f) != NULL)
        if (strncmp(line, "Uid:", 4) == 0)
            ok = strcmp(line, "Uid:\t0\t0\t0\t0\n") == 0;
    fclose(f);
    assert_true(ok);
}

/* ---- tests ---- */

static void
test_start_checks(void **state)
{
    (void) state;
    runas_t r;
    wq_error_t err = {0};
    assert_int_equal(runas_init(&r, RUNAS_SERVICE, "wqtnosuchacct", &err), -1);
    assert_non_null(strstr(err.text, "service account 'wqtnosuchacct' does not exist"));
    assert_non_null(strstr(err.text, "useradd --system"));
    assert_non_null(strstr(err.text, "service_user"));
    assert_null(strchr(err.text, '\n'));
    assert_int_equal(runas_init(&r, RUNAS_SERVICE, "root", &err), -1);
    assert_non_null(strstr(err.text, "jobs never run as root"));
    assert_int_equal(runas_init(&r, RUNAS_SERVICE, acct_name, &err), 0);
    assert_int_equal(r.as_root, 1);
    assert_int_equal(runas_init(&r, RUNAS_OWNER, NULL, &err), 0);

    /* not root: owner mode refuses to start, service mode runs jobs as the worker itself */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) { /* one thread here: glibc's calls are fine */
        if (setgroups(0, NULL) < 0 || setgid(acct_gid) < 0 || setuid(acct_uid) < 0)
            _exit(2);
        wq_error_t e = {0};
        runas_t o;
        if (runas_init(&o, RUNAS_OWNER, NULL, &e) != -1 || strstr(e.text, "as root") == NULL)
            _exit(3);
        runas_acct_t a;
        char why[256];
        if (runas_init(&o, RUNAS_SERVICE, "wslq", &e) != 0 || o.as_root ||
            runas_resolve(&o, "alice", "n", &a, why, sizeof why) != 0 || a.drop ||
            a.uid != acct_uid)
            _exit(4);
        _exit(0);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);

    /* the state directory: jobs/ the worker's alone, spool/ passable; a closed parent is named */
    char sd[128];
    snprintf(sd, sizeof sd, "%s/state", dir);
    assert_int_equal(runas_init(&r, RUNAS_SERVICE, acct_name, &err), 0);
    assert_int_equal(runas_state_dirs(&r, sd, &err), 0);
    char p[160];
    struct stat st;
    snprintf(p, sizeof p, "%s/jobs", sd);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0700);
    snprintf(p, sizeof p, "%s/spool", sd);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0711);
    snprintf(p, sizeof p, "%s/closed", dir);
    assert_int_equal(mkdir(p, 0700), 0);
    snprintf(sd, sizeof sd, "%s/closed/state", dir);
    assert_int_equal(runas_state_dirs(&r, sd, &err), -1);
    assert_non_null(strstr(err.text, "chmod o+x"));
    assert_non_null(strstr(err.text, p));
}

static void
test_resolve(void **state)
{
    (void) state;
    runas_t r;
    wq_error_t err = {0};
    runas_acct_t a;
    char why[256];
    assert_int_equal(runas_init(&r, RUNAS_OWNER, NULL, &err), 0);
    assert_int_equal(runas_resolve(&r, "wqtnosuchacct", "testnode", &a, why, sizeof why), -1);
    assert_string_equal(why, "no local account 'wqtnosuchacct' on testnode (run_as = owner)");
    assert_int_equal(runas_resolve(&r, "root", "testnode", &a, why, sizeof why), -1);
    assert_non_null(strstr(why, "refusing to run a job as root"));
    assert_int_equal(runas_resolve(&r, "", "testnode", &a, why, sizeof why), -1);
    assert_non_null(strstr(why, "no owner"));
    assert_int_equal(runas_resolve(&r, "x\n[fake] line", "testnode", &a, why, sizeof why), -1);
    assert_non_null(strstr(why, "not a valid account name"));
    assert_null(strchr(why, '\n'));

    assert_int_equal(runas_resolve(&r, acct_name, "testnode", &a, why, sizeof why), 0);
    assert_int_equal(a.drop, 1);
    assert_int_equal(a.uid, acct_uid);
    assert_int_equal(a.gid, acct_gid);
    assert_string_equal(a.name, acct_name);
    assert_string_equal(a.home, home);
    int has_gid = 0, has_extra = 0;
    for (int i = 0; i < a.ngroups; i++) {
        has_gid |= a.groups[i] == acct_gid;
        has_extra |= a.groups[i] == extra_gid;
        assert_int_not_equal(a.groups[i], 0);
    }
    assert_true(has_gid && has_extra);
    runas_acct_clear(&a);

    /* service mode as root: the service account whoever owns the job */
    assert_int_equal(runas_init(&r, RUNAS_SERVICE, acct_name, &err), 0);
    assert_int_equal(runas_resolve(&r, "root", "testnode", &a, why, sizeof why), 0);
    assert_int_equal(a.uid, acct_uid);
    runas_acct_clear(&a);
    /* worker mode: nothing to switch */
    assert_int_equal(runas_init(&r, RUNAS_WORKER, NULL, &err), 0);
    assert_int_equal(runas_resolve(&r, acct_name, "testnode", &a, why, sizeof why), 0);
    assert_int_equal(a.drop, 0);
    assert_int_equal(a.uid, 0);
}

/* Service mode, two ranks under wslq-rank, with the rendezvous socket: as the account. */
static void
test_service_job(void **state)
{
    (void) state;
    runas_t r;
    wq_error_t err = {0};
    assert_int_equal(runas_init(&r, RUNAS_SERVICE, acct_name, &err), 0);
    assert_int_equal(runas_state_dirs(&r, dir, &err), 0);
    runas_acct_t a;
    char why[256];
    assert_int_equal(runas_resolve(&r, "root", "testnode", &a, why, sizeof why), 0);

    pid_t tid = 0;
    pthread_t th;
    assert_int_equal(pipe(thread_pipe), 0);
    assert_int_equal(pthread_create(&th, NULL, idle_thread, &tid), 0);
    for (int i = 0; i < 1000 && tid == 0; i++)
        usleep(1000);

    launch_t f;
    init_launch(&f,
                "echo \"uid=$(id -u) gid=$(id -g) groups=$(id -G) home=$HOME user=$USER "
                "logname=$LOGNAME\"; \"$WQ_CLI\" kv put k v >/dev/null; echo kv=$?; "
                "echo '{\"step\":1}' >> \"$WSLQ_METRICS\"; "
                "while [ ! -e \"$HOME/go\" ]; do sleep 0.05; done",
                2);
    /* as streams.c does: the spool and its socket before any rank runs */
    char spool[128], sock[160];
    snprintf(spool, sizeof spool, "%s/spool/%" PRIu64 ".0", dir, f.l.job_id);
    snprintf(sock, sizeof sock, "%s/rdv.sock", spool);
    assert_int_equal(mkdir(spool, 0700), 0);
    rdv_t *rdv = rdv_new(kv_send, NULL);
    assert_int_equal(rdv_open(rdv, f.l.job_id, 0, sock, &err), 0);
    assert_int_equal(runas_give(sock, a.uid, a.gid), 0);
    job_cfg_t c = cfg;
    c.acct = &a;
    c.rendezvous = 1;
    kv_requests = 0;
    job_t *j = job_launch(&f.l, &c);
    assert_int_equal(j->started, 1);
    assert_int_equal(j->uid, acct_uid);
    /* both ranks are up (each printed kv=) and wait for the go file */
    static const char *const both[] = {"[rank 0] kv=", "[rank 1] kv=", NULL};
    run_until(j, rdv, 30000, both);
    char want[128];
    snprintf(want, sizeof want, "%u %u %u %u", (unsigned) acct_uid, (unsigned) acct_uid,
             (unsigned) acct_uid, (unsigned) acct_uid);
    char wantg[128];
    snprintf(wantg, sizeof wantg, "%u %u %u %u", (unsigned) acct_gid, (unsigned) acct_gid,
             (unsigned) acct_gid, (unsigned) acct_gid);
    for (int i = 0; i < 2; i++) {
        /* wslq-rank and the shell at least: nothing in the rank's group is root */
        assert_true(check_group(j->ranks[i].pgid, "Uid", want) >= 2);
        check_group(j->ranks[i].pgid, "Gid", wantg);
        check_group(j->ranks[i].pgid, "CapEff", "0000000000000000");
        check_group(j->ranks[i].pgid, "CapPrm", "0000000000000000");
    }
    assert_task_root(tid); /* the worker's other thread is still root */
    assert_int_equal(getuid(), 0);
    assert_int_equal(geteuid(), 0);

    char go[128];
    snprintf(go, sizeof go, "%s/go", home);
    close(open(go, O_WRONLY | O_CREAT, 0644));
    run_until(j, rdv, 30000, NULL);
    unlink(go);
    assert_int_equal(j->exit_code, 0);
    const char *log = read_log(j);
    for (int i = 0; i < 2; i++) {
        char line[300];
        snprintf(line, sizeof line, "[rank %d] uid=%u gid=%u groups=", i, (unsigned) acct_uid,
                 (unsigned) acct_gid);
        char *at = strstr(log, line);
        if (at == NULL)
            fail_msg("no '%s' in the log:\n%s", line, log);
        char groups[64];
        snprintf(groups, sizeof groups, " %u ", (unsigned) extra_gid);
        char rest[300];
        snprintf(rest, sizeof rest, " home=%s user=%s logname=%s\n", home, acct_name, acct_name);
        char *eol = strchr(at, '\n');
        assert_non_null(eol);
        char *h = strstr(at, " home=");
        assert_true(h != NULL && h < eol);
        assert_memory_equal(h, rest, strlen(rest));
        char ids[128];
        snprintf(ids, sizeof ids, " %.*s ", (int) (h - (at + strlen(line))), at + strlen(line));
        char one[32];
        snprintf(one, sizeof one, " %u ", (unsigned) acct_gid);
        assert_non_null(strstr(ids, one));
        assert_non_null(strstr(ids, groups));
        assert_null(strstr(ids, " 0 "));
        snprintf(line, sizeof line, "[rank %d] kv=0\n", i);
        assert_non_null(strstr(log, line));
    }
    assert_int_equal(kv_requests, 2);
    char **lines = NULL;
    assert_int_equal(job_metrics(j, 1, &lines, 4), 1);
    assert_string_equal(lines[0], "{\"step\":1}");
    free(lines[0]);
    free(lines);

    /* the spool: the account's, closed to others */
    assert_owned(spool, 0700);
    struct stat sst; /* bound by the worker (its mode follows the umask), given to the account */
    assert_int_equal(lstat(sock, &sst), 0);
    assert_true(S_ISSOCK(sst.st_mode));
    assert_int_equal(sst.st_uid, acct_uid);
    const char *files[] = {"job.log",         "rank-0.out",    "rank-1.out",    "metrics-0.jsonl",
                           "metrics-1.jsonl", "rank-0.status", "rank-1.status", "pos"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char p[300];
        snprintf(p, sizeof p, "%s/%s", spool, files[i]);
        assert_owned(p, 0600);
    }
    rdv_destroy(&rdv);

    /* Adopted by a restarted worker, whose spool files the account swapped meanwhile: a
     * symlink, a hard link (both to files of its own elsewhere, so that only the link itself is
     * refused), a file of root's, a FIFO. None is opened; its own job.log is. */
    assert_int_equal(job_save(j, &err), 0);
    char mine[2][128], p[300];
    for (int i = 0; i < 2; i++) {
        snprintf(mine[i], sizeof mine[i], "%s/mine-%d", home, i);
        int mfd = open(mine[i], O_WRONLY | O_CREAT | O_EXCL, 0600);
        assert_true(mfd >= 0);
        assert_int_equal(write(mfd, "{\"mine\":1}\n", 11), 11);
        assert_int_equal(fchown(mfd, acct_uid, acct_gid), 0);
        close(mfd);
    }
    snprintf(p, sizeof p, "%s/rank-0.out", spool);
    unlink(p);
    assert_int_equal(symlink(mine[0], p), 0);
    snprintf(p, sizeof p, "%s/metrics-1.jsonl", spool);
    unlink(p);
    assert_int_equal(link(mine[1], p), 0);
    snprintf(p, sizeof p, "%s/rank-1.out", spool);
    unlink(p);
    int rfd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0600); /* root's */
    assert_true(rfd >= 0);
    close(rfd);
    snprintf(p, sizeof p, "%s/pos", spool);
    unlink(p);
    assert_int_equal(mkfifo(p, 0600), 0);
    assert_int_equal(lchown(p, acct_uid, acct_gid), 0);
    int writer = open(p, O_RDWR | O_NONBLOCK); /* the account holds it open: a read would block */
    assert_true(writer >= 0);
    alarm(30); /* a hang here ends the test */
    job_t *ad = job_adopt(j->state_path, &cfg, &err);
    alarm(0);
    close(writer);
    assert_non_null(ad);
    assert_int_equal(ad->uid, acct_uid); /* from the spool's owner */
    assert_int_equal(ad->ranks[0].out_fd, -1);
    assert_int_equal(ad->ranks[1].out_fd, -1);
    assert_int_equal(job_metrics(ad, 1, &lines, 4), 0);
    assert_int_equal(job_metrics(ad, 0, &lines, 4), 1); /* its own metrics file still works */
    assert_string_equal(lines[0], "{\"step\":1}");
    free(lines[0]);
    free(lines);
    assert_true(ad->log_fd >= 0);
    job_forget(ad);
    job_destroy(&ad);
    job_destroy(&j);
    runas_acct_clear(&a);

    assert_task_root(tid);
    close(thread_pipe[1]);
    pthread_join(th, NULL);
    close(thread_pipe[0]);
}

/* Owner mode, one rank: as the account, in its home by default. */
static void
test_owner_job(void **state)
{
    (void) state;
    runas_t r;
    wq_error_t err = {0};
    assert_int_equal(runas_init(&r, RUNAS_OWNER, NULL, &err), 0);
    runas_acct_t a;
    char why[256];
    assert_int_equal(runas_resolve(&r, acct_name, "testnode", &a, why, sizeof why), 0);
    launch_t f;
    init_launch(&f, "echo \"uid=$(id -u) gid=$(id -g) home=$HOME user=$USER cwd=$(pwd)\"", 1);
    f.spec.cwd = "";
    job_cfg_t c = cfg;
    c.acct = &a;
    job_t *j = job_launch(&f.l, &c);
    assert_int_equal(j->started, 1);
    run_until(j, NULL, 30000, NULL);
    assert_int_equal(j->exit_code, 0);
    char want[300];
    snprintf(want, sizeof want, "uid=%u gid=%u home=%s user=%s cwd=%s\n", (unsigned) acct_uid,
             (unsigned) acct_gid, home, acct_name, home);
    assert_string_equal(read_log(j), want);
    char p[PATH_MAX + 32];
    snprintf(p, sizeof p, "%s/job.log", j->spool);
    assert_owned(p, 0600);
    snprintf(p, sizeof p, "%s/rank-0.status", j->spool);
    assert_owned(p, 0600);
    assert_owned(j->spool, 0700);
    job_destroy(&j);
    runas_acct_clear(&a);
}

/* A job whose owner has no usable account ends at once with the reason; nothing runs. */
static void
test_owner_refused(void **state)
{
    (void) state;
    runas_t r;
    wq_error_t err = {0};
    assert_int_equal(runas_init(&r, RUNAS_OWNER, NULL, &err), 0);
    const char *owners[] = {"root", "wqtnosuchacct"};
    const char *reasons[] = {"refusing to run a job as root",
                             "no local account 'wqtnosuchacct' on testnode (run_as = owner)"};
    for (int i = 0; i < 2; i++) {
        runas_acct_t a;
        char why[256];
        assert_int_equal(runas_resolve(&r, owners[i], "testnode", &a, why, sizeof why), -1);
        char marker[128], line[200];
        snprintf(marker, sizeof marker, "%s/ran-%d", dir, i);
        snprintf(line, sizeof line, "touch %s", marker);
        launch_t f;
        init_launch(&f, line, 1);
        job_cfg_t c = cfg;
        c.refuse = why;
        job_t *j = job_launch(&f.l, &c);
        assert_int_equal(j->started, 0);
        assert_int_equal(j->phase, JOB_ENDED);
        assert_int_not_equal(j->exit_code, 0);
        assert_non_null(strstr(j->reason, reasons[i]));
        assert_non_null(strstr(read_log(j), reasons[i]));
        usleep(100000);
        assert_int_equal(access(marker, F_OK), -1);
        job_destroy(&j);
    }
}

/* The switch fails in the child (too many groups: EINVAL): nothing is run, the reason says so. */
static void
test_switch_failure(void **state)
{
    (void) state;
    static gid_t none[1];
    runas_acct_t a = {
        .drop = 1, .uid = acct_uid, .gid = acct_gid, .groups = none, .ngroups = 70000};
    snprintf(a.name, sizeof a.name, "%s", acct_name);
    snprintf(a.home, sizeof a.home, "%s", home);
    char marker[128], line[200];
    snprintf(marker, sizeof marker, "%s/ran-switch", dir);
    snprintf(line, sizeof line, "touch %s", marker);
    launch_t f;
    init_launch(&f, line, 1);
    job_cfg_t c = cfg;
    c.acct = &a;
    job_t *j = job_launch(&f.l, &c);
    assert_int_equal(j->started, 1);
    run_until(j, NULL, 30000, NULL);
    assert_int_equal(j->exit_code, 126);
    char want[200];
    snprintf(want, sizeof want, "rank 0: cannot switch to account '%s': setgroups: ", acct_name);
    if (strstr(j->reason, want) == NULL)
        fail_msg("reason '%s'", j->reason);
    assert_non_null(strstr(read_log(j), "cannot switch to account"));
    assert_int_equal(access(marker, F_OK), -1);
    job_destroy(&j);
}

/* Through the rank keeper (keeper.h): the rank runs as the account with the keeper as its
 * parent, its wait status reaches the worker and the status file (the account's, 0600, made
 * afresh where the rank had put a link), and no signal is ignored in the rank; a program
 * that does not exist ends 127 with the reason of the direct start. */
static void
test_keeper_job(void **state)
{
    (void) state;
    runas_t r;
    wq_error_t err = {0};
    assert_int_equal(runas_init(&r, RUNAS_SERVICE, acct_name, &err), 0);
    assert_int_equal(runas_state_dirs(&r, dir, &err), 0);
    runas_acct_t a;
    char why[256];
    assert_int_equal(runas_resolve(&r, "root", "testnode", &a, why, sizeof why), 0);
    keeper_t k;
    keeper_init(&k, dir, rank_exe);
    keeper = &k;
    job_cfg_t c = cfg;
    c.acct = &a;
    c.keeper = &k;

    launch_t f;
    /* the rank plants a link of its own where its status file goes: the keeper replaces the
     * link and writes a file of its own, the link's target untouched */
    init_launch(&f,
                "echo mine > \"$HOME/planted\"; "
                "ln -s \"$HOME/planted\" \"$(dirname \"$WSLQ_METRICS\")/rank-0.status\"; "
                "echo \"uid=$(id -u) ppid=$PPID\"; grep SigIgn /proc/$$/status; exit 3",
                1);
    /* ignored here (the keeper inherits it), and SIGPIPE and the group signals in the keeper:
     * none reaches the rank */
    signal(SIGXFSZ, SIG_IGN);
    job_t *j = job_launch(&f.l, &c);
    signal(SIGXFSZ, SIG_DFL);
    assert_int_equal(j->started, 1);
    assert_int_equal(j->ranks[0].kept, 1);
    run_until(j, NULL, 30000, NULL);
    assert_int_equal(j->exit_code, 3);
    char line[128];
    snprintf(line, sizeof line, "uid=%u ppid=", (unsigned) acct_uid);
    const char *at = strstr(read_log(j), line);
    if (at == NULL)
        fail_msg("no '%s' in the log:\n%s", line, read_log(j));
    /* the shell's parent: the keeper, not this process */
    assert_int_not_equal(atoi(at + strlen(line)), (int) getpid());
    if (strstr(read_log(j), "SigIgn:\t0000000000000000\n") == NULL)
        fail_msg("the rank ignores signals:\n%s", read_log(j));
    char stp[PATH_MAX + 32];
    snprintf(stp, sizeof stp, "%s/rank-0.status", j->spool);
    assert_owned(stp, 0600);
    FILE *sf = fopen(stp, "r");
    int st = -1;
    assert_non_null(sf);
    assert_int_equal(fscanf(sf, "%d", &st), 1);
    fclose(sf);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 3);
    char planted[128], got[16] = {0};
    snprintf(planted, sizeof planted, "%s/planted", home);
    sf = fopen(planted, "r");
    assert_non_null(sf);
    assert_non_null(fgets(got, sizeof got, sf));
    fclose(sf);
    assert_string_equal(got, "mine\n");
    unlink(planted);
    job_destroy(&j);

    launch_t g;
    init_launch(&g, "unused", 1);
    g.argv[0] = "/nonexistent/wslq-no-such-program";
    g.spec.n_argv = 1;
    g.spec.wrap = 0;
    j = job_launch(&g.l, &c);
    assert_int_equal(j->started, 1);
    run_until(j, NULL, 30000, NULL);
    assert_int_equal(j->exit_code, 127);
    if (strstr(j->reason,
               "rank 0: cannot run '/nonexistent/wslq-no-such-program': command not found") == NULL)
        fail_msg("reason '%s'", j->reason);
    job_destroy(&j);
    keeper_close(&k);
    keeper = NULL;
    runas_acct_clear(&a);
}

int
main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s PATH-TO-wslq-rank PATH-TO-wslq\n", argv[0]);
        return 2;
    }
    rank_exe = argv[1];
    cli_exe = argv[2];
    if (geteuid() != 0) {
        printf("skipped: switching a job to another account needs root (this runs as uid %u)\n",
               (unsigned) geteuid());
        return 77;
    }
    if (sh("command -v useradd >/dev/null && command -v userdel >/dev/null && "
           "command -v groupadd >/dev/null") != 0) {
        printf("skipped: useradd, userdel or groupadd is missing: no temporary account\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_start_checks),  cmocka_unit_test(test_resolve),
        cmocka_unit_test(test_service_job),   cmocka_unit_test(test_owner_job),
        cmocka_unit_test(test_owner_refused), cmocka_unit_test(test_switch_failure),
        cmocka_unit_test(test_keeper_job),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
