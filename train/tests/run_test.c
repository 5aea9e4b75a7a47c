/* Integration tests: real wslq-train processes on loopback.
 *
 *   run_test WSLQ_TRAIN CASE
 *
 * Cases (each its own ctest entry):
 *   flags        bad flags exit 2 with one line; --help/--version exit 0
 *   device       without a usable GPU: --device cuda exits 2 with one line carrying the
 *                driver's reason, --device auto trains on cpu and says so; with one, auto
 *                picks cuda
 *   cuda_built   --version reports the CUDA backend whenever the build found nvcc
 *                (WSLQ_EXPECT_CUDA=ON from CMake): a CI build that silently lost it fails
 *   baddata      missing, wrong-magic, truncated and corrupt IDX files exit 2 naming the file
 *   equiv        1 rank batch 64 vs 2 ranks x 32 (env) vs 4 ranks x 16 (flags): per-step losses
 *                over 20 steps agree within 1e-5
 *   kill         3 ranks; SIGKILL rank 1 mid-run: ranks 0 and 2 exit 3 well within --comm-timeout
 *   stuck        3 ranks; SIGSTOP rank 2: ranks 0 and 1 exit 3 once --comm-timeout (3 s) passes
 *   unreachable  rank 1 of 2 with nobody at MASTER_PORT: exit 3 within the deadline, clear line
 *   resume       40 steps straight vs 25 + checkpoint + resume to 40 (crossing an epoch end):
 *                steps 26..40 print identical losses; with the step-40 checkpoint damaged, a
 *                run resumes from step 25's (logs steps 26..41) and names the damaged file
 *   preempt      2 ranks; SIGTERM to rank 1 only: both stop at the same step with exit 4 and a
 *                checkpoint of that step; the resumed run starts at the next step and
 *                reproduces the uninterrupted run's losses exactly
 *   acc_mlp      real Fashion-MNIST, default MLP, 2 epochs, 1 rank: test accuracy >= 0.85
 *   acc_cnn      real Fashion-MNIST, default CNN, 2 ranks x batch 32, 2 epochs over the first
 *                30000 training samples: test accuracy >= 0.87 (one pass over 30000 measured
 *                0.8765, one full epoch 0.8657-0.8679: a single pass is too close to the floor)
 *   gpu_equiv    (1+ GPUs) 20 steps: cuda vs cpu per-step losses within 1e-4; 1 GPU x 64 vs
 *                2 ranks x 32 (NCCL on 2 GPUs, or the TCP ring sharing 1 GPU) within 1e-4
 *   gpu_acc      (1+ GPUs, real data) MLP 2 epochs >= 0.85, CNN 2 x 30000 samples >= 0.87
 *   gpu_kill     (2+ GPUs) 2 NCCL ranks: SIGKILL rank 1 -> rank 0 exits 3 well within
 *                --comm-timeout; SIGSTOP rank 1 -> rank 0 exits 3 at the 3 s deadline
 *
 * All but acc_* use a small synthetic IDX data set written to a temp dir, so they need no
 * package; acc_* exit 77 when /usr/share/datasets/fashion-mnist is missing; gpu_* exit 77
 * (saying why) when fewer CUDA devices are usable than they need. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/net.h"

#define REAL_DATA "/usr/share/datasets/fashion-mnist"
#define MAX_STEPS 512

static const char *trainer;
static char tmpdir[256];
static int failures;
static int last_port; /* run_job's port: its rank logs are job-<port>-<world>-r<rank>.log */

#define CHECK(cond, ...)                                         \
    do {                                                         \
        if (!(cond)) {                                           \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
            fprintf(stderr, __VA_ARGS__);                        \
            fputc('\n', stderr);                                 \
            failures++;                                          \
        }                                                        \
    } while (0)

static void
sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long) (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A free port on 127.0.0.1 for a test's ranks; none is a broken test machine: exit 1. */
static int
free_port(void)
{
    int port = wq_free_tcp_port(INADDR_LOOPBACK);
    if (port == 0) {
        perror("free_port");
        exit(1);
    }
    return port;
}

static char *
path(const char *fmt, ...)
{
    static char bufs[64][512]; /* rotating: a result stays valid for 63 more calls */
    static int next;
    char *b = bufs[next++ % 64];
    int n = snprintf(b, 512, "%s/", tmpdir);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b + n, (size_t) (512 - n), fmt, ap);
    va_end(ap);
    return b;
}

/* Start wslq-train with args (NULL-terminated), env "K=V" strings (NULL-terminated, may be
 * NULL), output (stdout+stderr) to log. */
static pid_t
spawn(const char *log, const char *const *env, const char *const *args)
{
    const char *argv[64];
    int n = 0;
    argv[n++] = trainer;
    for (int i = 0; args[i] && n < 63; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 1);
        dup2(fd, 2);
        unsetenv("RANK");
        unsetenv("WORLD_SIZE");
        unsetenv("MASTER_ADDR");
        unsetenv("MASTER_PORT");
        unsetenv("WSLQ_METRICS");
        unsetenv("LOCAL_WORLD_SIZE");
        for (int i = 0; env && env[i]; i++)
            putenv((char *) env[i]);
        execv(trainer, (char *const *) argv);
        _exit(127);
    }
    return pid;
}

/* Wait up to timeout_ms; returns the exit code, 128+signal, or -1 on timeout (process killed). */
static int
wait_exit(pid_t pid, int timeout_ms, int64_t *took_ms)
{
    int64_t t0 = wq_clock_mono_ms();
    for (;;) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) {
            if (took_ms)
                *took_ms = wq_clock_mono_ms() - t0;
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        if (wq_clock_mono_ms() - t0 > timeout_ms) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return -1;
        }
        sleep_ms(10);
    }
}

static char *
slurp(const char *p)
{
    FILE *f = fopen(p, "r");
    if (!f)
        return calloc(1, 1);
    char *buf = calloc(1, 1 << 20);
    size_t n = fread(buf, 1, (1 << 20) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* Step losses from a metrics file: loss[step] as text (exact compare) and value; returns the
 * highest step seen. */
static int
read_losses(const char *p, double *val, char txt[][32])
{
    FILE *f = fopen(p, "r");
    if (!f)
        return 0;
    char line[512];
    int maxs = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned e;
        int s;
        char l[32];
        if (strstr(line, "test_acc"))
            continue;
        if (sscanf(line, "{\"epoch\":%u,\"step\":%d,\"loss\":%31[^}]}", &e, &s, l) == 3 && s > 0 &&
            s < MAX_STEPS) {
            if (val)
                val[s] = strtod(l, NULL);
            if (txt)
                snprintf(txt[s], 32, "%s", l);
            maxs = s > maxs ? s : maxs;
        }
    }
    fclose(f);
    return maxs;
}

/* The lowest step a metrics file logs a loss for (0 when none): where a run started. */
static int
first_step(const char *p)
{
    static char txt[MAX_STEPS][32];
    memset(txt, 0, sizeof txt);
    read_losses(p, NULL, txt);
    for (int s = 1; s < MAX_STEPS; s++)
        if (txt[s][0])
            return s;
    return 0;
}

static double
last_test_acc(const char *p)
{
    char *s = slurp(p), *q = s, *hit;
    double acc = -1;
    while ((hit = strstr(q, "\"test_acc\":"))) {
        acc = strtod(hit + 11, NULL);
        q = hit + 1;
    }
    free(s);
    return acc;
}

static int
count_lines(const char *p)
{
    char *s = slurp(p);
    int n = 0;
    for (char *c = s; *c; c++)
        n += *c == '\n';
    free(s);
    return n;
}

/* ---- synthetic data: class c images are a noisy bright band at rows 2c..2c+7 ------------- */

static void
put_be32(FILE *f, uint32_t v)
{
    unsigned char b[4] = {(unsigned char) (v >> 24), (unsigned char) (v >> 16),
                          (unsigned char) (v >> 8), (unsigned char) v};
    fwrite(b, 1, 4, f);
}

static void
write_idx(const char *dir, const char *prefix, int n, unsigned seed)
{
    char p[1100];
    snprintf(p, sizeof p, "%s/%s-images-idx3-ubyte", dir, prefix);
    FILE *fi = fopen(p, "wb");
    snprintf(p, sizeof p, "%s/%s-labels-idx1-ubyte", dir, prefix);
    FILE *fl = fopen(p, "wb");
    put_be32(fi, 0x803);
    put_be32(fi, (uint32_t) n);
    put_be32(fi, 28);
    put_be32(fi, 28);
    put_be32(fl, 0x801);
    put_be32(fl, (uint32_t) n);
    uint32_t s = seed;
    for (int i = 0; i < n; i++) {
        s = s * 1103515245u + 12345u;
        unsigned char c = (unsigned char) ((s >> 16) % 10);
        fputc(c, fl);
        for (int px = 0; px < 784; px++) {
            s = s * 1103515245u + 12345u;
            /* Faint band under heavy noise: learnable, but not in a handful of steps. */
            int row = px / 28, noise = (int) ((s >> 16) % 200);
            int v = (row >= 2 * c && row < 2 * c + 8) ? 40 + noise : noise;
            fputc(v, fi);
        }
    }
    fclose(fi);
    fclose(fl);
}

static const char *
synth_dir(void)
{
    static char d[512];
    if (!d[0]) {
        snprintf(d, sizeof d, "%s/synth", tmpdir);
        mkdir(d, 0755);
        write_idx(d, "train", 1280, 1);
        write_idx(d, "t10k", 256, 2);
    }
    return d;
}

/* ---- cases -------------------------------------------------------------------------------- */

static int
run_simple(const char *log, const char *const *args)
{
    return wait_exit(spawn(log, NULL, args), 60000, NULL);
}

static void
case_flags(void)
{
    const char *bad[][4] = {
        {"--model", "rnn", NULL},
        {"--batch", "0", NULL},
        {"--batch", "x", NULL},
        {"--lr", "-1", NULL},
        {"--lr-schedule", "linear", NULL},
        {"--hidden", "256,,1", NULL},
        {"--frobnicate", NULL},
        {"--epochs", NULL},
        {"--model", "cnn", "--hidden", "10"},
        {"--rank", "3", NULL},
        {"--device", "tpu", NULL},
        {"--comm", "mpi", NULL},
        {"--kernel", "4", NULL},
        {"stray", NULL},
        {"--master-port", "70000", NULL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *log = path("flags%zu.log", i);
        int rc = run_simple(log, bad[i]);
        char *out = slurp(log);
        CHECK(rc == 2, "%s %s: exit %d, want 2", bad[i][0], bad[i][1] ? bad[i][1] : "", rc);
        CHECK(count_lines(log) == 1, "%s: want one line, got: %s", bad[i][0], out);
        CHECK(strncmp(out, "wslq-train: ", 12) == 0, "%s: message '%s'", bad[i][0], out);
        free(out);
    }
    const char *help[] = {"--help", NULL}, *ver[] = {"--version", NULL};
    CHECK(run_simple(path("help.log"), help) == 0, "--help");
    CHECK(run_simple(path("ver.log"), ver) == 0, "--version");
}

static void
copy_prefix(const char *from, const char *to, long bytes)
{
    FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
    int c;
    for (long i = 0; a && b && (bytes < 0 || i < bytes) && (c = fgetc(a)) != EOF; i++)
        fputc(c, b);
    if (a)
        fclose(a);
    if (b)
        fclose(b);
}

static void
expect_data_error(const char *dir, const char *want)
{
    const char *args[] = {"--data", dir, "--max-steps", "1", "--threads", "1", NULL};
    const char *log = path("data-%ld.log", (long) wq_clock_mono_ms());
    int rc = run_simple(log, args);
    char *out = slurp(log);
    CHECK(rc == 2, "data %s: exit %d, want 2 (%s)", dir, rc, out);
    CHECK(strstr(out, want) != NULL, "data %s: want '%s' in: %s", dir, want, out);
    CHECK(count_lines(log) == 1, "data %s: want one line: %s", dir, out);
    free(out);
}

static void
case_baddata(void)
{
    const char *good = synth_dir();
    char d[512], src[1100], dst[1100];
    /* Good synthetic data trains. */
    const char *ok[] = {"--data", good, "--max-steps", "2", "--threads", "1", "--quiet", NULL};
    CHECK(run_simple(path("good.log"), ok) == 0, "synthetic data should train");

    expect_data_error(path("nowhere"), "cannot open");

    const char *names[] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                           "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};
    /* Truncated images. */
    snprintf(d, sizeof d, "%s/trunc", tmpdir);
    mkdir(d, 0755);
    for (int i = 0; i < 4; i++) {
        snprintf(src, sizeof src, "%s/%s", good, names[i]);
        snprintf(dst, sizeof dst, "%s/%s", d, names[i]);
        copy_prefix(src, dst, i == 0 ? 16 + 784 * 100 + 5 : -1);
    }
    expect_data_error(d, "truncated");
    /* Labels in the images' place: wrong magic. */
    snprintf(d, sizeof d, "%s/magic", tmpdir);
    mkdir(d, 0755);
    for (int i = 0; i < 4; i++) {
        snprintf(src, sizeof src, "%s/%s", good, names[i == 0 ? 1 : i]);
        snprintf(dst, sizeof dst, "%s/%s", d, names[i]);
        copy_prefix(src, dst, -1);
    }
    expect_data_error(d, "not an IDX image file");
    /* A gzip file with its middle overwritten: zlib's CRC or inflate catches it. */
    if (access(REAL_DATA "/t10k-labels-idx1-ubyte.gz", R_OK) == 0) {
        snprintf(d, sizeof d, "%s/corrupt", tmpdir);
        mkdir(d, 0755);
        for (int i = 0; i < 4; i++) {
            snprintf(src, sizeof src, "%s/%s.gz", REAL_DATA, names[i]);
            snprintf(dst, sizeof dst, "%s/%s.gz", d, names[i]);
            copy_prefix(src, dst, -1);
        }
        snprintf(dst, sizeof dst, "%s/%s.gz", d, names[1]);
        FILE *f = fopen(dst, "r+b");
        fseek(f, 2000, SEEK_SET);
        for (int i = 0; i < 64; i++)
            fputc(0x55, f);
        fclose(f);
        expect_data_error(d, "corrupt");
        /* And a truncated gzip file. */
        snprintf(src, sizeof src, "%s/%s.gz", REAL_DATA, names[1]);
        copy_prefix(src, dst, 3000);
        expect_data_error(d, "train-labels");
    }
    /* Too few samples for one global batch. */
    const char *big[] = {"--data", good, "--batch", "4096", "--threads", "1", NULL};
    CHECK(run_simple(path("big.log"), big) == 2, "batch larger than the data set");
}

/* Run `world` ranks of one job; per-rank extra args; returns exit codes in rc[]. Rank 0's
 * metrics go to metrics. */
static void
run_job(int world,
        int batch,
        const char *metrics,
        const char *const *extra,
        int use_env,
        int *rc,
        int timeout_ms)
{
    pid_t pids[8];
    int port = free_port();
    last_port = port;
    char sport[16], sworld[16], sbatch[16], srank[8][16];
    snprintf(sport, sizeof sport, "%d", port);
    snprintf(sworld, sizeof sworld, "%d", world);
    snprintf(sbatch, sizeof sbatch, "%d", batch);
    for (int r = 0; r < world; r++) {
        char envs[6][128];
        const char *env[7] = {NULL};
        const char *args[48];
        int n = 0;
        snprintf(srank[r], sizeof srank[r], "%d", r);
        snprintf(envs[0], 128, "WSLQ_METRICS=%s", metrics);
        env[0] = envs[0];
        if (use_env) {
            snprintf(envs[1], 128, "RANK=%d", r);
            snprintf(envs[2], 128, "WORLD_SIZE=%d", world);
            snprintf(envs[3], 128, "MASTER_ADDR=127.0.0.1");
            snprintf(envs[4], 128, "MASTER_PORT=%d", port);
            for (int i = 1; i < 5; i++)
                env[i] = envs[i];
        } else {
            args[n++] = "--rank";
            args[n++] = srank[r];
            args[n++] = "--world-size";
            args[n++] = sworld;
            args[n++] = "--master-addr";
            args[n++] = "127.0.0.1";
            args[n++] = "--master-port";
            args[n++] = sport;
        }
        args[n++] = "--batch";
        args[n++] = sbatch;
        for (int i = 0; extra[i]; i++)
            args[n++] = extra[i];
        args[n] = NULL;
        pids[r] = spawn(path("job-%d-%d-r%d.log", port, world, r), env, args);
    }
    for (int r = 0; r < world; r++)
        rc[r] = wait_exit(pids[r], timeout_ms, NULL);
}

static void
case_equiv(void)
{
    const char *extra[] = {"--data",    synth_dir(), "--max-steps", "20", "--log-every",  "1",
                           "--threads", "1",         "--seed",      "3",  "--test-limit", "64",
                           "--quiet",   NULL};
    static double loss[3][MAX_STEPS];
    int worlds[3] = {1, 2, 4}, rc[8];
    for (int k = 0; k < 3; k++) {
        const char *m = path("equiv%d.jsonl", worlds[k]);
        run_job(worlds[k], 64 / worlds[k], m, extra, k == 1, rc, 120000);
        for (int r = 0; r < worlds[k]; r++)
            CHECK(rc[r] == 0, "world %d rank %d exit %d", worlds[k], r, rc[r]);
        CHECK(read_losses(m, loss[k], NULL) == 20, "world %d: 20 step losses", worlds[k]);
    }
    double worst = 0;
    for (int s = 1; s <= 20; s++)
        for (int k = 1; k < 3; k++) {
            double d = fabs(loss[k][s] - loss[0][s]);
            worst = d > worst ? d : worst;
            CHECK(d <= 1e-5, "step %d: world %d loss %.9g vs world 1 %.9g", s, worlds[k],
                  loss[k][s], loss[0][s]);
        }
    printf("equiv: 20 steps, losses %.6f -> %.6f, largest 1-vs-N difference %.3g\n", loss[0][1],
           loss[0][20], worst);
}

/* Start 3 ranks of a long run; returns their pids. */
static void
start_long_job(pid_t *pids, const char *metrics, const char *timeout_s, int port)
{
    char sport[16];
    snprintf(sport, sizeof sport, "%d", port);
    for (int r = 0; r < 3; r++) {
        char srank[8], menv[700];
        snprintf(srank, sizeof srank, "%d", r);
        snprintf(menv, sizeof menv, "WSLQ_METRICS=%s", metrics);
        const char *env[] = {menv, NULL};
        const char *args[] = {
            "--data",        synth_dir(), "--epochs",     "100000", "--batch",        "16",
            "--log-every",   "1",         "--threads",    "1",      "--comm-timeout", timeout_s,
            "--rank",        srank,       "--world-size", "3",      "--master-addr",  "127.0.0.1",
            "--master-port", sport,       "--quiet",      NULL};
        pids[r] = spawn(path("long-%d-r%d.log", port, r), env, args);
    }
    /* Wait until training is under way (10 steps logged). */
    int64_t t0 = wq_clock_mono_ms();
    while (read_losses(metrics, NULL, NULL) < 10 && wq_clock_mono_ms() - t0 < 30000)
        sleep_ms(20);
}

static void
case_kill(void)
{
    pid_t pids[3];
    const char *m = path("kill.jsonl");
    /* Margins for an ASan build on two busy cores; a peer's death must still be seen well
     * before the 40 s deadline would end the ranks anyway. */
    start_long_job(pids, m, "40", free_port());
    CHECK(read_losses(m, NULL, NULL) >= 10, "job did not start training");
    kill(pids[1], SIGKILL);
    int64_t took[3] = {0};
    int rc0 = wait_exit(pids[0], 45000, &took[0]);
    int rc2 = wait_exit(pids[2], 45000, &took[2]);
    wait_exit(pids[1], 1000, NULL);
    CHECK(rc0 == 3 && rc2 == 3, "after SIGKILL of rank 1: rank 0 exit %d, rank 2 exit %d", rc0,
          rc2);
    CHECK(took[0] < 20000 && took[2] < 20000, "exits took %lld and %lld ms (deadline 40 s)",
          (long long) took[0], (long long) took[2]);
    printf("kill: ranks 0 and 2 exited 3 after %lld and %lld ms\n", (long long) took[0],
           (long long) took[2]);
}

static void
case_stuck(void)
{
    pid_t pids[3];
    const char *m = path("stuck.jsonl");
    start_long_job(pids, m, "3", free_port());
    CHECK(read_losses(m, NULL, NULL) >= 10, "job did not start training");
    kill(pids[2], SIGSTOP);
    int64_t took[2] = {0};
    int rc0 = wait_exit(pids[0], 30000, &took[0]);
    int rc1 = wait_exit(pids[1], 30000, &took[1]);
    kill(pids[2], SIGKILL);
    kill(pids[2], SIGCONT);
    wait_exit(pids[2], 2000, NULL);
    CHECK(rc0 == 3 && rc1 == 3, "after SIGSTOP of rank 2: rank 0 exit %d, rank 1 exit %d", rc0,
          rc1);
    /* 10 s of margin (ASan, busy cores); the default deadline, 30 s, would still fail. */
    CHECK(took[0] < 3000 + 10000 && took[1] < 3000 + 10000,
          "exits took %lld and %lld ms (deadline 3 s)", (long long) took[0], (long long) took[1]);
    printf("stuck: ranks 0 and 1 exited 3 after %lld and %lld ms (deadline 3000)\n",
           (long long) took[0], (long long) took[1]);
}

static void
case_unreachable(void)
{
    char sport[16];
    snprintf(sport, sizeof sport, "%d", free_port());
    const char *args[] = {"--data",
                          synth_dir(),
                          "--rank",
                          "1",
                          "--world-size",
                          "2",
                          "--master-addr",
                          "127.0.0.1",
                          "--master-port",
                          sport,
                          "--comm-timeout",
                          "2",
                          "--threads",
                          "1",
                          NULL};
    int64_t took = 0;
    const char *log = path("unreach.log");
    int rc = wait_exit(spawn(log, NULL, args), 30000, &took);
    char *out = slurp(log);
    CHECK(rc == 3, "unreachable master: exit %d, want 3", rc);
    CHECK(took < 2000 + 10000, "took %lld ms (deadline 2 s; 10 s of margin for ASan on busy cores)",
          (long long) took);
    CHECK(strstr(out, "cannot reach rank 0 at 127.0.0.1") != NULL, "message: %s", out);
    free(out);
    /* Rank 0 alone: nobody arrives. */
    const char *args0[] = {"--data",
                           synth_dir(),
                           "--rank",
                           "0",
                           "--world-size",
                           "2",
                           "--master-addr",
                           "127.0.0.1",
                           "--master-port",
                           sport,
                           "--comm-timeout",
                           "2",
                           "--threads",
                           "1",
                           NULL};
    log = path("unreach0.log");
    rc = wait_exit(spawn(log, NULL, args0), 30000, &took);
    out = slurp(log);
    CHECK(rc == 3, "lonely rank 0: exit %d, want 3", rc);
    CHECK(strstr(out, "only 1 of 2 ranks arrived") != NULL, "message: %s", out);
    free(out);
}

static void
case_resume(void)
{
    const char *d = synth_dir();
    /* 1280 samples / 64 = 20 steps per epoch: 25 stops mid-epoch 2. */
    const char *a[] = {"--data",    d,   "--max-steps",  "40", "--log-every", "1",
                       "--threads", "1", "--test-limit", "64", "--quiet",     "--epochs",
                       "10",        NULL};
    static char ta[MAX_STEPS][32], tc[MAX_STEPS][32];
    int rc[1];
    run_job(1, 64, path("resume-a.jsonl"), a, 0, rc, 60000);
    CHECK(rc[0] == 0, "straight run exit %d", rc[0]);
    read_losses(path("resume-a.jsonl"), NULL, ta);

    char ck[600];
    snprintf(ck, sizeof ck, "%s", path("ck"));
    const char *b[] = {"--data",
                       d,
                       "--max-steps",
                       "25",
                       "--log-every",
                       "1",
                       "--threads",
                       "1",
                       "--test-limit",
                       "64",
                       "--quiet",
                       "--epochs",
                       "10",
                       "--checkpoint-dir",
                       ck,
                       NULL};
    run_job(1, 64, path("resume-b.jsonl"), b, 0, rc, 60000);
    CHECK(rc[0] == 0, "first half exit %d", rc[0]);
    CHECK(access(path("ck/ckpt-000000000025.wqck"), R_OK) == 0, "checkpoint at step 25");
    /* The same run asked to go on to step 40: it resumes from the checkpoint. */
    const char *c[sizeof b / sizeof b[0]];
    memcpy(c, b, sizeof b);
    c[3] = "40";
    run_job(1, 64, path("resume-c.jsonl"), c, 0, rc, 60000);
    CHECK(rc[0] == 0, "resumed run exit %d", rc[0]);
    CHECK(read_losses(path("resume-c.jsonl"), NULL, tc) == 40, "resumed run reaches step 40");
    for (int s = 26; s <= 40; s++)
        CHECK(strcmp(ta[s], tc[s]) == 0, "step %d: straight %s, resumed %s", s, ta[s], tc[s]);
    CHECK(tc[25][0] == '\0', "resumed run must not redo step 25");

    /* A damaged newest checkpoint is skipped for the older one. */
    FILE *f = fopen(path("ck/ckpt-000000000040.wqck"), "r+b");
    CHECK(f != NULL, "checkpoint at step 40");
    if (f) {
        fseek(f, 1000, SEEK_SET);
        fputc(0x7f, f);
        fclose(f);
    }
    const char *e[] = {"--data",
                       d,
                       "--max-steps",
                       "41",
                       "--log-every",
                       "1",
                       "--threads",
                       "1",
                       "--test-limit",
                       "64",
                       "--quiet",
                       "--epochs",
                       "10",
                       "--checkpoint-dir",
                       ck,
                       NULL};
    run_job(1, 64, path("resume-e.jsonl"), e, 0, rc, 60000);
    CHECK(rc[0] == 0, "run past a damaged checkpoint exit %d", rc[0]);
    /* It must have started from step 25's checkpoint: the first step it logs is 26, and steps
     * 26..40 repeat the straight run. Break this catches: the payload CRC check in
     * train/ckpt.c load_one() turned off, so the damaged step-40 file is loaded and the run
     * logs only step 41 (and one flipped byte of the parameters goes unnoticed). */
    static char te[MAX_STEPS][32];
    int laste = read_losses(path("resume-e.jsonl"), NULL, te);
    int firste = first_step(path("resume-e.jsonl"));
    CHECK(firste == 26 && laste == 41,
          "past a damaged newest checkpoint: logged steps %d..%d, want 26..41 (resumed from the "
          "older checkpoint at step 25)",
          firste, laste);
    for (int s = 26; s <= 40; s++)
        CHECK(strcmp(ta[s], te[s]) == 0, "step %d: straight %s, resumed past damage %s", s, ta[s],
              te[s]);
    char *elog = slurp(path("job-%d-1-r0.log", last_port));
    CHECK(strstr(elog, "skipping damaged checkpoint") && strstr(elog, "ckpt-000000000040.wqck"),
          "the damaged checkpoint is named in the log: %s", elog);
    free(elog);
    /* A different model in the same dir is refused, exit 2. */
    const char *g[] = {"--data",           d,  "--hidden", "32", "--threads", "1",
                       "--checkpoint-dir", ck, NULL};
    run_job(1, 64, path("resume-g.jsonl"), g, 0, rc, 60000);
    CHECK(rc[0] == 2, "other model on the checkpoint dir: exit %d, want 2", rc[0]);
}

static void
case_preempt(void)
{
    const char *d = synth_dir();
    char ck[600];
    snprintf(ck, sizeof ck, "%s", path("pck"));
    int port = free_port();
    char sport[16];
    snprintf(sport, sizeof sport, "%d", port);
    pid_t pids[2];
    char m[600];
    snprintf(m, sizeof m, "%s", path("preempt.jsonl"));
    for (int r = 0; r < 2; r++) {
        char srank[8], menv[700];
        snprintf(srank, sizeof srank, "%d", r);
        snprintf(menv, sizeof menv, "WSLQ_METRICS=%s", m);
        const char *env[] = {menv, NULL};
        const char *args[] = {"--data",
                              d,
                              "--epochs",
                              "1000",
                              "--batch",
                              "32",
                              "--log-every",
                              "1",
                              "--threads",
                              "1",
                              "--rank",
                              srank,
                              "--world-size",
                              "2",
                              "--master-addr",
                              "127.0.0.1",
                              "--master-port",
                              sport,
                              "--quiet",
                              "--checkpoint-dir",
                              ck,
                              "--test-limit",
                              "64",
                              NULL};
        pids[r] = spawn(path("preempt-r%d.log", r), env, args);
    }
    int64_t t0 = wq_clock_mono_ms();
    while (read_losses(m, NULL, NULL) < 30 && wq_clock_mono_ms() - t0 < 30000)
        sleep_ms(10);
    kill(pids[1], SIGTERM);
    int rc0 = wait_exit(pids[0], 30000, NULL), rc1 = wait_exit(pids[1], 30000, NULL);
    CHECK(rc0 == 4 && rc1 == 4, "SIGTERM to rank 1: exits %d and %d, want 4 and 4", rc0, rc1);
    static char ta[MAX_STEPS][32], tb[MAX_STEPS][32];
    int stopped = read_losses(m, NULL, tb);
    char *out = slurp(path("preempt-r0.log"));
    CHECK(strstr(out, "preempted at step") != NULL, "rank 0 says preempted: %s", out);
    free(out);
    CHECK(stopped >= 30 && stopped + 20 < MAX_STEPS, "stopped at step %d", stopped);

    /* Resume with both ranks to stopped + 20 and compare with a straight 2-rank run. */
    char smax[16];
    snprintf(smax, sizeof smax, "%d", stopped + 20);
    const char *rest[] = {
        "--data", d,         "--max-steps",      smax, "--log-every",  "1",  "--threads",
        "1",      "--quiet", "--checkpoint-dir", ck,   "--test-limit", "64", "--epochs",
        "1000",   NULL};
    int rc[2];
    const char *m2 = path("preempt-resumed.jsonl");
    /* The preemption checkpoint is the one at the step both ranks stopped at. */
    CHECK(access(path("pck/ckpt-%012d.wqck", stopped), R_OK) == 0,
          "a checkpoint at step %d, where both ranks stopped", stopped);
    run_job(2, 32, m2, rest, 0, rc, 60000);
    CHECK(rc[0] == 0 && rc[1] == 0, "resume exits %d %d", rc[0], rc[1]);
    /* The resumed run must start right after the preempted step. Training is deterministic, so
     * equal losses alone would also pass if it restarted from an older (end-of-epoch)
     * checkpoint or from scratch. Break this catches: no checkpoint written at preemption (the
     * save() in train/train.c's preempt branch skipped). */
    int first = first_step(m2);
    CHECK(first == stopped + 1,
          "the resumed run starts at step %d, want %d (right after the preempted step %d)", first,
          stopped + 1, stopped);
    char *rlog = slurp(path("job-%d-2-r0.log", last_port));
    char want[64];
    snprintf(want, sizeof want, "step=%d ", stopped);
    CHECK(strstr(rlog, "resumed from checkpoint") && strstr(rlog, want),
          "rank 0 says it resumed from step %d: %s", stopped, rlog);
    free(rlog);
    read_losses(m2, NULL, tb);
    const char *straight[] = {"--data", d,           "--max-steps", smax,      "--log-every",
                              "1",      "--threads", "1",           "--quiet", "--test-limit",
                              "64",     "--epochs",  "1000",        NULL};
    const char *m3 = path("preempt-straight.jsonl");
    run_job(2, 32, m3, straight, 0, rc, 60000);
    read_losses(m3, NULL, ta);
    for (int s = stopped + 1; s <= stopped + 20; s++)
        CHECK(strcmp(ta[s], tb[s]) == 0, "step %d: straight %s, resumed %s", s, ta[s], tb[s]);
    printf("preempt: both ranks stopped at step %d with exit 4; resume matches\n", stopped);
}

static int
have_real_data(void)
{
    if (access(REAL_DATA "/train-images-idx3-ubyte.gz", R_OK) == 0 ||
        access(REAL_DATA "/train-images-idx3-ubyte", R_OK) == 0)
        return 1;
    printf("skipped: Fashion-MNIST not found in " REAL_DATA " (install dataset-fashion-mnist)\n");
    return 0;
}

static int
case_acc(int cnn)
{
    if (!have_real_data())
        return 77;
    const char *m = path("acc.jsonl");
    int rc[2];
    int64_t t0 = wq_clock_mono_ms();
    if (!cnn) {
        const char *a[] = {"--epochs", "2", "--threads", "1", NULL};
        run_job(1, 64, m, a, 0, rc, 240000);
        CHECK(rc[0] == 0, "mlp run exit %d", rc[0]);
    } else {
        const char *a[] = {"--model", "cnn",       "--epochs", "2", "--train-limit",
                           "30000",   "--threads", "1",        NULL};
        run_job(2, 32, m, a, 0, rc, 280000);
        CHECK(rc[0] == 0 && rc[1] == 0, "cnn run exits %d %d", rc[0], rc[1]);
    }
    double acc = last_test_acc(m), want = cnn ? 0.87 : 0.85;
    CHECK(acc >= want, "%s test accuracy %.4f < %.2f", cnn ? "cnn" : "mlp", acc, want);
    printf("%s: test accuracy %.4f (floor %.2f) in %.1f s\n", cnn ? "cnn" : "mlp", acc, want,
           (double) (wq_clock_mono_ms() - t0) / 1000.0);
    return 0;
}

/* ---- device selection and the GPU path ------------------------------------------------ */

/* Visible CUDA devices as the trainer reports them (--list-devices); why gets the reason
 * when there are none. */
static int
gpu_count(char *why, size_t len)
{
    const char *args[] = {"--list-devices", NULL};
    const char *log = path("devices.log");
    run_simple(log, args);
    char *out = slurp(log);
    int n = 0;
    char *p = strstr(out, "cuda devices: ");
    if (p)
        n = atoi(p + 14);
    char *open = p ? strchr(p, '(') : NULL, *close = open ? strrchr(open, ')') : NULL;
    if (open && close)
        snprintf(why, len, "%.*s", (int) (close - open - 1), open + 1);
    else
        snprintf(why, len, "%d visible", n);
    free(out);
    return n;
}

static int
cuda_built(void)
{
    const char *ver[] = {"--version", NULL};
    run_simple(path("version.log"), ver);
    char *out = slurp(path("version.log"));
    int built = strstr(out, "cuda: built") != NULL;
    free(out);
    return built;
}

static void
case_device(void)
{
    char why[256];
    int n = gpu_count(why, sizeof why);
    const char *cuda[] = {"--device",  "cuda", "--data",  synth_dir(),    "--max-steps", "2",
                          "--threads", "1",    "--quiet", "--test-limit", "64",          NULL};
    const char *autod[] = {"--device",  "auto", "--data",       synth_dir(), "--max-steps", "2",
                           "--threads", "1",    "--test-limit", "64",        NULL};
    const char *log = path("device-cuda.log"), *alog = path("device-auto.log");
    int rc = run_simple(log, cuda), arc = run_simple(alog, autod);
    char *out = slurp(log), *aout = slurp(alog);
    if (n == 0) {
        CHECK(rc == 2, "--device cuda without a GPU: exit %d, want 2 (%s)", rc, out);
        CHECK(count_lines(log) == 1, "--device cuda: want one line, got: %s", out);
        CHECK(strncmp(out, "wslq-train: --device cuda: ", 27) == 0, "message: %s", out);
        if (cuda_built())
            CHECK(strstr(out, "cudaGetDeviceCount: ") != NULL,
                  "--device cuda: the driver's reason is missing: %s", out);
        else
            CHECK(strstr(out, "CUDA support not built") != NULL, "message: %s", out);
        CHECK(arc == 0, "--device auto without a GPU: exit %d, want 0 (%s)", arc, aout);
        CHECK(strstr(aout, "wslq-train: --device auto: ") && strstr(aout, "using cpu\n"),
              "--device auto should say it uses cpu: %s", aout);
        CHECK(strstr(aout, "device cpu,") != NULL, "banner: %s", aout);
        printf("device: --device cuda -> exit 2: %s", out);
    } else {
        CHECK(rc == 0, "--device cuda with %d GPU(s): exit %d (%s)", n, rc, out);
        CHECK(arc == 0 && strstr(aout, "device cuda:") != NULL,
              "--device auto with a GPU should use it: exit %d: %s", arc, aout);
        printf("device: %d GPU(s); cuda and auto train on cuda\n", n);
    }
    free(out);
    free(aout);
}

static int
case_cuda_built(void)
{
    const char *expect = getenv("WSLQ_EXPECT_CUDA");
    const char *nvcc = getenv("WSLQ_NVCC");
    int built = cuda_built();
    char *out = slurp(path("version.log"));
    if (expect && !strcmp(expect, "ON"))
        CHECK(built,
              "nvcc is present (%s) but this wslq-train has no CUDA backend; the CMake "
              "configure found nvcc and lost it (see CMakeFiles/CMakeError.log), or "
              "configure with -DWSLQ_CUDA=OFF on purpose. --version says:\n%s",
              nvcc ? nvcc : "CUDACXX", out);
    CHECK(strstr(out, "cuda: ") && strstr(out, "nccl: "), "--version lines: %s", out);
    printf("cuda_built: expected %s, --version:\n%s", expect ? expect : "(unset)", out);
    free(out);
    return 0;
}

/* `world` ranks with LOCAL_RANK set (each picks its GPU) and --device cuda. */
static void
run_gpu_job(int world,
            int batch,
            const char *metrics,
            const char *const *extra,
            int *rc,
            int timeout_ms,
            pid_t *pids_out)
{
    pid_t pids[8];
    int port = free_port();
    char sport[16], sworld[16], sbatch[16], srank[8][16], envs[8][2][128];
    snprintf(sport, sizeof sport, "%d", port);
    snprintf(sworld, sizeof sworld, "%d", world);
    snprintf(sbatch, sizeof sbatch, "%d", batch);
    for (int r = 0; r < world; r++) {
        const char *env[3] = {envs[r][0], envs[r][1], NULL};
        const char *args[48];
        int n = 0;
        snprintf(srank[r], sizeof srank[r], "%d", r);
        snprintf(envs[r][0], 128, "WSLQ_METRICS=%s", metrics);
        snprintf(envs[r][1], 128, "LOCAL_RANK=%d", r);
        const char *common[] = {"--device",      "cuda", "--rank",        srank[r],
                                "--world-size",  sworld, "--master-addr", "127.0.0.1",
                                "--master-port", sport,  "--batch",       sbatch};
        for (size_t i = 0; i < sizeof common / sizeof common[0]; i++)
            args[n++] = common[i];
        for (int i = 0; extra[i]; i++)
            args[n++] = extra[i];
        args[n] = NULL;
        pids[r] = spawn(path("gpu-%d-%d-r%d.log", port, world, r), env, args);
    }
    if (pids_out) {
        memcpy(pids_out, pids, sizeof(pid_t) * (size_t) world);
        return;
    }
    for (int r = 0; r < world; r++)
        rc[r] = wait_exit(pids[r], timeout_ms, NULL);
}

static int
need_gpus(int want)
{
    char why[256];
    int n = gpu_count(why, sizeof why);
    if (n >= want)
        return n;
    printf("skipped: needs %d CUDA device%s, %d usable (%s)\n", want, want == 1 ? "" : "s", n, why);
    return 0;
}

static void
compare_losses(const char *what, const double *a, const double *b, int steps, double tol)
{
    double worst = 0;
    for (int s = 1; s <= steps; s++) {
        double d = fabs(a[s] - b[s]);
        worst = d > worst ? d : worst;
        CHECK(d <= tol, "%s step %d: %.9g vs %.9g", what, s, a[s], b[s]);
    }
    printf("%s: %d steps, largest difference %.3g (tolerance %.0e)\n", what, steps, worst, tol);
}

static int
case_gpu_equiv(void)
{
    int n = need_gpus(1);
    if (!n)
        return 77;
    const char *base[] = {"--data",    synth_dir(), "--max-steps", "20", "--log-every",  "1",
                          "--threads", "1",         "--seed",      "3",  "--test-limit", "64",
                          "--quiet",   NULL};
    static double cpu[MAX_STEPS], one[MAX_STEPS], two[MAX_STEPS];
    int rc[2];
    run_job(1, 64, path("ge-cpu.jsonl"), base, 0, rc, 120000);
    CHECK(rc[0] == 0, "cpu run exit %d", rc[0]);
    run_gpu_job(1, 64, path("ge-1.jsonl"), base, rc, 120000, NULL);
    CHECK(rc[0] == 0, "1-GPU run exit %d", rc[0]);
    CHECK(read_losses(path("ge-cpu.jsonl"), cpu, NULL) == 20, "cpu: 20 step losses");
    CHECK(read_losses(path("ge-1.jsonl"), one, NULL) == 20, "1 GPU: 20 step losses");
    compare_losses("cuda vs cpu", cpu, one, 20, 1e-4);
    /* Two ranks: NCCL on two GPUs, else the TCP ring with both ranks on the one GPU. */
    const char *tcp[] = {"--data",
                         synth_dir(),
                         "--max-steps",
                         "20",
                         "--log-every",
                         "1",
                         "--threads",
                         "1",
                         "--seed",
                         "3",
                         "--test-limit",
                         "64",
                         "--quiet",
                         "--comm",
                         n >= 2 ? "nccl" : "tcp",
                         NULL};
    run_gpu_job(2, 32, path("ge-2.jsonl"), tcp, rc, 120000, NULL);
    CHECK(rc[0] == 0 && rc[1] == 0, "2-rank run exits %d %d", rc[0], rc[1]);
    CHECK(read_losses(path("ge-2.jsonl"), two, NULL) == 20, "2 ranks: 20 step losses");
    compare_losses(n >= 2 ? "1 GPU vs 2 GPUs (nccl)" : "1 GPU vs 2 ranks on 1 GPU (tcp)", one, two,
                   20, 1e-4);
    return 0;
}

static int
case_gpu_acc(void)
{
    if (!need_gpus(1) || !have_real_data())
        return 77;
    int rc[1];
    const char *mlp[] = {"--epochs", "2", NULL};
    run_gpu_job(1, 64, path("gacc-mlp.jsonl"), mlp, rc, 240000, NULL);
    CHECK(rc[0] == 0, "mlp exit %d", rc[0]);
    double a = last_test_acc(path("gacc-mlp.jsonl"));
    CHECK(a >= 0.85, "cuda mlp test accuracy %.4f < 0.85", a);
    const char *cnn[] = {"--model", "cnn", "--epochs", "2", "--train-limit", "30000", NULL};
    run_gpu_job(1, 64, path("gacc-cnn.jsonl"), cnn, rc, 240000, NULL);
    CHECK(rc[0] == 0, "cnn exit %d", rc[0]);
    double b = last_test_acc(path("gacc-cnn.jsonl"));
    CHECK(b >= 0.87, "cuda cnn test accuracy %.4f < 0.87", b);
    printf("gpu_acc: mlp %.4f (floor 0.85), cnn %.4f (floor 0.87)\n", a, b);
    return 0;
}

static int
case_gpu_kill(void)
{
    if (!need_gpus(2))
        return 77;
    for (int k = 0; k < 2; k++) {
        int sig = k == 0 ? SIGKILL : SIGSTOP;
        const char *m = path("gkill%d.jsonl", k);
        const char *extra[] = {
            "--data",  synth_dir(), "--epochs", "100000",         "--log-every",       "1",
            "--quiet", "--comm",    "nccl",     "--comm-timeout", k == 0 ? "40" : "3", NULL};
        pid_t pids[2];
        run_gpu_job(2, 16, m, extra, NULL, 0, pids);
        int64_t t0 = wq_clock_mono_ms();
        while (read_losses(m, NULL, NULL) < 10 && wq_clock_mono_ms() - t0 < 60000)
            sleep_ms(20);
        CHECK(read_losses(m, NULL, NULL) >= 10, "job did not start training");
        kill(pids[1], sig);
        int64_t took = 0;
        int rc0 = wait_exit(pids[0], k == 0 ? 45000 : 30000, &took);
        kill(pids[1], SIGKILL);
        kill(pids[1], SIGCONT);
        wait_exit(pids[1], 5000, NULL);
        int limit = k == 0 ? 20000 : 3000 + 10000; /* margins as in case_kill and case_stuck */
        CHECK(rc0 == 3, "after %s of rank 1: rank 0 exit %d, want 3", k ? "SIGSTOP" : "SIGKILL",
              rc0);
        CHECK(took < limit, "rank 0 took %lld ms", (long long) took);
        printf("gpu_kill: %s of rank 1 -> rank 0 exit %d after %lld ms\n",
               k ? "SIGSTOP" : "SIGKILL", rc0, (long long) took);
    }
    return 0;
}

int
main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: run_test WSLQ_TRAIN CASE\n");
        return 2;
    }
    trainer = argv[1];
    const char *t = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/wslq-train-test-XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    const char *c = argv[2];
    int rc = 0;
    if (!strcmp(c, "flags"))
        case_flags();
    else if (!strcmp(c, "baddata"))
        case_baddata();
    else if (!strcmp(c, "equiv"))
        case_equiv();
    else if (!strcmp(c, "kill"))
        case_kill();
    else if (!strcmp(c, "stuck"))
        case_stuck();
    else if (!strcmp(c, "unreachable"))
        case_unreachable();
    else if (!strcmp(c, "resume"))
        case_resume();
    else if (!strcmp(c, "preempt"))
        case_preempt();
    else if (!strcmp(c, "acc_mlp"))
        rc = case_acc(0);
    else if (!strcmp(c, "acc_cnn"))
        rc = case_acc(1);
    else if (!strcmp(c, "device"))
        case_device();
    else if (!strcmp(c, "cuda_built"))
        rc = case_cuda_built();
    else if (!strcmp(c, "gpu_equiv"))
        rc = case_gpu_equiv();
    else if (!strcmp(c, "gpu_acc"))
        rc = case_gpu_acc();
    else if (!strcmp(c, "gpu_kill"))
        rc = case_gpu_kill();
    else {
        fprintf(stderr, "unknown case %s\n", c);
        return 2;
    }
    if (failures) {
        fprintf(stderr, "%d check(s) failed; logs kept in %s\n", failures, tmpdir);
        return 1;
    }
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return rc;
}
