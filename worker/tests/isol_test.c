/* isol: CPU picking and CPU lists, the cgroup writer against fixture directories (what a v2
 * and a v1 cgroup would get, the pid a rank's child writes, the OOM kill count and peak read
 * back), cgroup mode detection, the memory watch's resident-memory sum; the config keys. */
/* cmocka.h needs these first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
/* after the standard headers */
#include <cmocka.h>

#include "worker/config.h"
#include "worker/isol.h"

static void
cpus_of(isol_cpus_t *s, const char *list)
{
    assert_int_equal(isol_cpulist_parse(list, s), 0);
}

static void
test_cpulist(void **state)
{
    (void) state;
    isol_cpus_t s;
    char buf[256];
    cpus_of(&s, "0-3,8,10-11");
    assert_int_equal(isol_cpu_count(&s), 7);
    assert_int_equal(isol_cpulist(&s, buf, sizeof buf), strlen("0-3,8,10-11"));
    assert_string_equal(buf, "0-3,8,10-11");
    cpus_of(&s, "5");
    isol_cpulist(&s, buf, sizeof buf);
    assert_string_equal(buf, "5");
    cpus_of(&s, "1023");
    assert_true(isol_cpu_has(&s, 1023));
    /* a buffer too small holds whole items only */
    cpus_of(&s, "0,2,4,6,8");
    assert_int_equal(isol_cpulist(&s, buf, 6), 5);
    assert_string_equal(buf, "0,2,4");
    memset(&s, 0, sizeof s);
    assert_int_equal(isol_cpulist(&s, buf, sizeof buf), 0);
    assert_string_equal(buf, "");
    const char *bad[] = {"", "a", "1-", "-1", "3-1", "1,,2", "1,", "1024", "0-99999", "1 2", NULL};
    for (int i = 0; bad[i]; i++)
        assert_int_equal(isol_cpulist_parse(bad[i], &s), -1);
    assert_int_equal(isol_cpulist_parse(NULL, &s), -1);
}

static void
test_pick(void **state)
{
    (void) state;
    static int use[ISOL_MAX_CPUS];
    isol_cpus_t avail, out;
    char buf[64];
    cpus_of(&avail, "0-3");
    memset(use, 0, sizeof use);
    /* free node: the lowest ids */
    assert_int_equal(isol_pick_cpus(&avail, use, 2, &out), 2);
    isol_cpulist(&out, buf, sizeof buf);
    assert_string_equal(buf, "0-1");
    /* 0 and 1 taken by another job: the next two */
    use[0] = use[1] = 1;
    isol_pick_cpus(&avail, use, 2, &out);
    isol_cpulist(&out, buf, sizeof buf);
    assert_string_equal(buf, "2-3");
    /* all taken once, 2 twice: the least used first, lowest among equals */
    use[2] = 2;
    use[3] = 1;
    isol_pick_cpus(&avail, use, 3, &out);
    isol_cpulist(&out, buf, sizeof buf);
    assert_string_equal(buf, "0-1,3");
    /* more than there are: every CPU */
    assert_int_equal(isol_pick_cpus(&avail, use, 9, &out), 4);
    assert_int_equal(memcmp(&out, &avail, sizeof out), 0);
    /* only CPUs of avail, whatever use says */
    cpus_of(&avail, "4,6");
    memset(use, 0, sizeof use);
    isol_pick_cpus(&avail, use, 1, &out);
    isol_cpulist(&out, buf, sizeof buf);
    assert_string_equal(buf, "4");
}

static char root[64];

static void
mkfile(const char *dir, const char *name, const char *text)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void
readfile(const char *dir, const char *name, char *buf, size_t n)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "r");
    assert_non_null(f);
    size_t r = fread(buf, 1, n - 1, f);
    buf[r] = '\0';
    fclose(f);
}

/* A forked child joins the cgroup at path through isol_cg_procs_fd and isol_child: what it
 * writes to the kernel's file (a plain file here) is "0", the writer itself. */
static void
child_joins(int version, const char *path, const char *file)
{
    int fd = isol_cg_procs_fd(version, path);
    assert_true(fd >= 0);
    pid_t pid = fork();
    if (pid == 0) {
        isol_child(NULL, fd);
        _exit(0);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    close(fd);
    char buf[64];
    readfile(path, file, buf, sizeof buf);
    assert_string_equal(buf, "0\n");
}

static void
rm_tree(const char *dir)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

/* A v2 cgroup as the kernel would have it made: the files a new cgroup has. */
static void
v2_job_dir(const char *dir, int swap)
{
    assert_int_equal(mkdir(dir, 0755), 0);
    mkfile(dir, "memory.max", "max\n");
    if (swap)
        mkfile(dir, "memory.swap.max", "max\n");
    mkfile(dir, "cpu.max", "max 100000\n");
    mkfile(dir, "cgroup.procs", "");
    mkfile(dir, "memory.events", "low 0\nhigh 0\nmax 3\noom 1\noom_kill 0\noom_group_kill 0\n");
    mkfile(dir, "memory.peak", "1048576\n");
}

static void
test_cgroup_v2_fixture(void **state)
{
    (void) state;
    snprintf(root, sizeof root, "/tmp/wslq-cg-XXXXXX");
    assert_non_null(mkdtemp(root));
    mkfile(root, "cgroup.controllers", "cpuset cpu io memory pids\n");
    mkfile(root, "cgroup.subtree_control", "");
    isol_t is;
    wq_error_t err = {0};
    assert_int_equal(isol_init(&is, ISOL_BIND_CORES, ISOL_CG_AUTO, root, 1, &err), 0);
    assert_int_equal(is.cg, ISOL_CG_V2);
    assert_string_equal(is.cg_root, root);
    char buf[256];
    readfile(root, "cgroup.subtree_control", buf, sizeof buf);
    assert_string_equal(buf, "+memory +cpu"); /* the children get both controllers */
    assert_true(is.n_avail >= 1);

    char job[512], path[512];
    snprintf(job, sizeof job, "%s/wslq-job-7-1", root);
    v2_job_dir(job, 1);
    /* 1: the directory was there (the kernel's files are faked in it first) */
    assert_int_equal(isol_cg_create(ISOL_CG_V2, root, 7, 1, 256, 2, path, sizeof path, &err), 1);
    assert_string_equal(path, job);
    readfile(path, "memory.max", buf, sizeof buf);
    assert_string_equal(buf, "268435456\n");
    readfile(path, "memory.swap.max", buf, sizeof buf);
    assert_string_equal(buf, "0\n");
    readfile(path, "cpu.max", buf, sizeof buf);
    assert_string_equal(buf, "200000 100000\n");

    /* a rank's child joins it: "0" (the writer itself, to the kernel) in cgroup.procs */
    child_joins(ISOL_CG_V2, path, "cgroup.procs");

    /* the kernel's OOM killer: oom_kill counts up; the peak in bytes */
    assert_int_equal(isol_cg_oom_kills(ISOL_CG_V2, path), 0);
    mkfile(path, "memory.events", "low 0\nhigh 0\nmax 9\noom 2\noom_kill 2\noom_group_kill 0\n");
    assert_int_equal(isol_cg_oom_kills(ISOL_CG_V2, path), 2);
    assert_int_equal(isol_cg_peak(ISOL_CG_V2, path), 1048576);

    /* no swap accounting (no memory.swap.max), no --mem: memory.max left alone */
    snprintf(job, sizeof job, "%s/wslq-job-8-0", root);
    v2_job_dir(job, 0);
    assert_int_equal(isol_cg_create(ISOL_CG_V2, root, 8, 0, 0, 1, path, sizeof path, &err), 1);
    readfile(path, "memory.max", buf, sizeof buf);
    assert_string_equal(buf, "max\n");
    readfile(path, "cpu.max", buf, sizeof buf);
    assert_string_equal(buf, "100000 100000\n");

    /* made now (nothing to write): 0, its counters fresh; again: 1, a leftover */
    assert_int_equal(isol_cg_create(ISOL_CG_V2, root, 10, 0, 0, 0, path, sizeof path, &err), 0);
    assert_int_equal(isol_cg_create(ISOL_CG_V2, root, 10, 0, 0, 0, path, sizeof path, &err), 1);
    assert_int_equal(rmdir(path), 0);

    /* a limit that cannot be written: an error naming the file, nothing left behind */
    snprintf(job, sizeof job, "%s/wslq-job-9-0", root);
    assert_int_equal(isol_cg_create(ISOL_CG_V2, root, 9, 0, 64, 1, path, sizeof path, &err), -1);
    assert_non_null(strstr(err.text, "memory.max"));
    struct stat sb;
    assert_int_equal(stat(job, &sb), -1);
    /* the sweep: empty job cgroups no job holds go, a held one and a busy one stay, and
     * nothing that is not a job's */
    char held_p[512], busy[512], other[512];
    snprintf(held_p, sizeof held_p, "%s/wslq-job-20-0", root);
    snprintf(busy, sizeof busy, "%s/wslq-job-21-0", root);
    snprintf(other, sizeof other, "%s/system", root);
    snprintf(job, sizeof job, "%s/wslq-job-22-0", root);
    assert_int_equal(mkdir(held_p, 0755), 0);
    assert_int_equal(mkdir(busy, 0755), 0);
    mkfile(busy, "cgroup.procs", "123\n"); /* not empty: rmdir refuses, as for processes */
    assert_int_equal(mkdir(other, 0755), 0);
    assert_int_equal(mkdir(job, 0755), 0);
    const char *held[] = {held_p, NULL};
    assert_int_equal(isol_cg_sweep(&is, held, 2), 1);
    assert_int_equal(stat(job, &sb), -1);
    assert_int_equal(stat(held_p, &sb), 0);
    assert_int_equal(stat(busy, &sb), 0);
    assert_int_equal(stat(other, &sb), 0);
    /* removal of an empty cgroup (a fixture's directory here is empty once its files go) */
    snprintf(job, sizeof job, "%s/wslq-job-10-0", root);
    assert_int_equal(mkdir(job, 0755), 0);
    assert_int_equal(isol_cg_remove(job), 0);
    assert_int_equal(stat(job, &sb), -1);
    rm_tree(root);
}

static void
test_cgroup_v1_fixture(void **state)
{
    (void) state;
    snprintf(root, sizeof root, "/tmp/wslq-cg-XXXXXX");
    assert_non_null(mkdtemp(root));
    mkfile(root, "memory.limit_in_bytes", "9223372036854771712\n");
    isol_t is;
    wq_error_t err = {0};
    /* auto with a root that is not v2: v1's memory controller */
    assert_int_equal(isol_init(&is, ISOL_BIND_NONE, ISOL_CG_AUTO, root, 1, &err), 0);
    assert_int_equal(is.cg, ISOL_CG_V1);
    /* v2 insisted on: refused, saying why */
    assert_int_equal(isol_init(&is, ISOL_BIND_NONE, ISOL_CG_V2, root, 1, &err), -1);
    assert_non_null(strstr(err.text, "cgroup = v2"));
    char job[512], path[512], buf[256];
    snprintf(job, sizeof job, "%s/wslq-job-3-0", root);
    assert_int_equal(mkdir(job, 0755), 0);
    mkfile(job, "memory.limit_in_bytes", "9223372036854771712\n");
    mkfile(job, "memory.memsw.limit_in_bytes", "9223372036854771712\n");
    mkfile(job, "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n");
    mkfile(job, "memory.max_usage_in_bytes", "2097152\n");
    assert_int_equal(isol_cg_create(ISOL_CG_V1, root, 3, 0, 128, 1, path, sizeof path, &err), 1);
    readfile(path, "memory.limit_in_bytes", buf, sizeof buf);
    assert_string_equal(buf, "134217728\n");
    readfile(path, "memory.memsw.limit_in_bytes", buf, sizeof buf);
    assert_string_equal(buf, "134217728\n");
    assert_int_equal(isol_cg_oom_kills(ISOL_CG_V1, path), 0);
    mkfile(path, "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n");
    assert_int_equal(isol_cg_oom_kills(ISOL_CG_V1, path), 1);
    assert_int_equal(isol_cg_peak(ISOL_CG_V1, path), 2097152);
    /* a rank's child joins it through tasks (its one thread, no lock on every thread group) */
    mkfile(path, "tasks", "");
    child_joins(ISOL_CG_V1, path, "tasks");
    /* v1 insisted on, a directory that is neither */
    rm_tree(root);
    snprintf(root, sizeof root, "/tmp/wslq-cg-XXXXXX");
    assert_non_null(mkdtemp(root));
    assert_int_equal(isol_init(&is, ISOL_BIND_NONE, ISOL_CG_V1, root, 1, &err), -1);
    assert_non_null(strstr(err.text, "cgroup = v1"));
    /* auto there: none, the memory watch said */
    assert_int_equal(isol_init(&is, ISOL_BIND_NONE, ISOL_CG_AUTO, root, 1, &err), 0);
    assert_int_equal(is.cg, ISOL_CG_NONE);
    assert_non_null(strstr(is.why, "memory watch"));
    assert_int_equal(isol_init(&is, ISOL_BIND_NONE, ISOL_CG_NONE, root, 1, &err), 0);
    assert_int_equal(is.cg, ISOL_CG_NONE);
    rm_tree(root);
}

/* The memory watch's sum: a child in its own process group touching 64 MiB shows at least
 * that; a group that does not exist shows nothing. */
static void
test_rss_groups(void **state)
{
    (void) state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    if (pid == 0) {
        setpgid(0, 0);
        size_t n = 64u << 20;
        char *m = malloc(n);
        memset(m, 'x', n);
        ssize_t w = write(p[1], m + n - 1, 1); /* uses m: the memset is not left out */
        (void) w;
        pause();
        _exit(0);
    }
    char c;
    assert_int_equal(read(p[0], &c, 1), 1);
    pid_t g = pid;
    uint64_t rss = isol_rss_groups("/proc", &g, 1);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    close(p[0]);
    close(p[1]);
    assert_true(rss >= (64u << 20));
    assert_true(rss < (256u << 20));
    assert_int_equal(isol_rss_groups("/proc", &g, 1), 0);
    assert_int_equal(isol_rss_groups("/nonexistent", &g, 1), 0);
    assert_true(isol_watch_limit(100) > 100u << 20);
    assert_true(isol_watch_limit(100) <= 110u << 20);
}

static void
test_config_keys(void **state)
{
    (void) state;
    wcfg_t c;
    wcfg_defaults(&c);
    assert_int_equal(c.cpu_bind, ISOL_BIND_CORES);
    assert_int_equal(c.cgroup, ISOL_CG_AUTO);
    assert_int_equal(c.mem_watch, 1);
    assert_string_equal(c.cgroup_root, "");
    wq_error_t err = {0};
    assert_int_equal(wcfg_set(&c, "cpu_bind", "none", &err), 0);
    assert_int_equal(c.cpu_bind, ISOL_BIND_NONE);
    assert_int_equal(wcfg_set(&c, "cgroup", "v1", &err), 0);
    assert_int_equal(c.cgroup, ISOL_CG_V1);
    assert_int_equal(wcfg_set(&c, "cgroup", "none", &err), 0);
    assert_int_equal(c.cgroup, ISOL_CG_NONE);
    assert_int_equal(wcfg_set(&c, "cgroup_root", "/sys/fs/cgroup/wslq", &err), 0);
    assert_string_equal(c.cgroup_root, "/sys/fs/cgroup/wslq");
    assert_int_equal(wcfg_set(&c, "mem_watch", "no", &err), 0);
    assert_int_equal(c.mem_watch, 0);
    wcfg_t before = c;
    assert_int_equal(wcfg_set(&c, "cpu_bind", "sockets", &err), -1);
    assert_non_null(strstr(err.text, "cpu_bind"));
    assert_int_equal(wcfg_set(&c, "cgroup", "v3", &err), -1);
    assert_non_null(strstr(err.text, "auto, v2, v1 or none"));
    assert_int_equal(wcfg_set(&c, "cgroup_root", "relative/dir", &err), -1);
    assert_non_null(strstr(err.text, "absolute"));
    assert_int_equal(wcfg_set(&c, "mem_watch", "maybe", &err), -1);
    assert_int_equal(memcmp(&before, &c, sizeof c), 0); /* nothing changed */
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cpulist),           cmocka_unit_test(test_pick),
        cmocka_unit_test(test_cgroup_v2_fixture), cmocka_unit_test(test_cgroup_v1_fixture),
        cmocka_unit_test(test_rss_groups),        cmocka_unit_test(test_config_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
