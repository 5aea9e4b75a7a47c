/* wslq-train: flags and environment to a train_cfg_t, then train_run. */
#include <cblas.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/parse.h"
#include "train/data.h"
#include "train/train.h"
#ifdef WSLQ_HAVE_CUDA
#include "train/cuda/device.h"
#endif
#ifdef WSLQ_HAVE_NCCL
#include "train/cuda/comm_nccl.h"
#endif

#ifndef WSLQ_VERSION
#define WSLQ_VERSION "unknown"
#endif

static const char usage_text[] =
    "usage: wslq-train [options]\n"
    "Data-parallel Fashion-MNIST training: CPU (OpenBLAS) or CUDA (cuBLAS), gradients\n"
    "averaged over a TCP ring or NCCL.\n"
    "\n"
    "model:\n"
    "  --model mlp|cnn          network (default mlp)\n"
    "  --hidden LIST            mlp hidden widths (default 256,128)\n"
    "  --conv LIST              cnn conv channels, each conv-relu-maxpool2 (default 32,64)\n"
    "  --fc LIST                cnn hidden fully connected widths (default 128)\n"
    "  --kernel K               cnn conv kernel size, odd (default 3)\n"
    "training:\n"
    "  --epochs N               passes over the training set (default 5)\n"
    "  --max-steps N            stop after N optimizer steps in total (default: no limit)\n"
    "  --batch N                per-rank batch; global batch = N x ranks x accum (default 64)\n"
    "  --accum K                micro-batches accumulated per gradient sync (default 1)\n"
    "  --optimizer adam|sgd     (default adam)\n"
    "  --lr F                   learning rate (default 1e-3 adam, 0.01 sgd)\n"
    "  --momentum F             sgd momentum (default 0.9)\n"
    "  --lr-schedule S          constant, or cosine: decay to 0 over the run (default constant)\n"
    "  --seed N                 initialisation and data order (default 1)\n"
    "  --threads N              OpenBLAS threads (default: cpus / LOCAL_WORLD_SIZE)\n"
    "  --device cpu|auto|cuda   where to train (default cpu); auto = cuda if a GPU is usable\n"
    "  --cuda-device N          use visible CUDA device N (default: the only one, or LOCAL_RANK)\n"
    "  --list-devices           print the CUDA devices this rank can see, then exit\n"
    "data:\n"
    "  --data DIR               IDX files, gzipped or not (default " DATA_DEFAULT_DIR ")\n"
    "  --train-limit N          use only the first N training samples\n"
    "  --test-limit N           use only the first N test samples\n"
    "checkpoints and output:\n"
    "  --checkpoint-dir DIR     save here and resume from the newest checkpoint found\n"
    "  --checkpoint-every N     also save every N steps (default: at epoch ends)\n"
    "  --log-every N            write a step metrics line every N steps (default 0: off)\n"
    "  --quiet                  no per-epoch lines\n"
    "distributed (default from RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT):\n"
    "  --rank R  --world-size N  --master-addr IPv4  --master-port P\n"
    "  --comm-timeout S         seconds any communication may wait (default 30)\n"
    "  --comm auto|tcp|nccl     gradient transport (default: nccl for cuda ranks if built)\n"
    "\n"
    "exit codes: 0 done, 1 error, 2 usage/data, 3 comm abort (peer lost), "
    "4 preempted (resumable)\n"
    "metrics: JSON lines appended to $WSLQ_METRICS by rank 0\n";

enum {
    OPT_MODEL = 256,
    OPT_HIDDEN,
    OPT_CONV,
    OPT_FC,
    OPT_KERNEL,
    OPT_EPOCHS,
    OPT_MAX_STEPS,
    OPT_BATCH,
    OPT_ACCUM,
    OPT_OPTIMIZER,
    OPT_LR,
    OPT_MOMENTUM,
    OPT_LR_SCHEDULE,
    OPT_SEED,
    OPT_THREADS,
    OPT_DEVICE,
    OPT_DATA,
    OPT_TRAIN_LIMIT,
    OPT_TEST_LIMIT,
    OPT_CKPT_DIR,
    OPT_CKPT_EVERY,
    OPT_LOG_EVERY,
    OPT_QUIET,
    OPT_RANK,
    OPT_WORLD,
    OPT_MADDR,
    OPT_MPORT,
    OPT_TIMEOUT,
    OPT_COMM,
    OPT_CUDA_DEVICE,
    OPT_LIST_DEVICES,
    OPT_VERSION,
    OPT_HELP,
};

static const struct option options[] = {
    {"model", required_argument, NULL, OPT_MODEL},
    {"hidden", required_argument, NULL, OPT_HIDDEN},
    {"conv", required_argument, NULL, OPT_CONV},
    {"fc", required_argument, NULL, OPT_FC},
    {"kernel", required_argument, NULL, OPT_KERNEL},
    {"epochs", required_argument, NULL, OPT_EPOCHS},
    {"max-steps", required_argument, NULL, OPT_MAX_STEPS},
    {"batch", required_argument, NULL, OPT_BATCH},
    {"accum", required_argument, NULL, OPT_ACCUM},
    {"optimizer", required_argument, NULL, OPT_OPTIMIZER},
    {"lr", required_argument, NULL, OPT_LR},
    {"momentum", required_argument, NULL, OPT_MOMENTUM},
    {"lr-schedule", required_argument, NULL, OPT_LR_SCHEDULE},
    {"seed", required_argument, NULL, OPT_SEED},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"device", required_argument, NULL, OPT_DEVICE},
    {"data", required_argument, NULL, OPT_DATA},
    {"train-limit", required_argument, NULL, OPT_TRAIN_LIMIT},
    {"test-limit", required_argument, NULL, OPT_TEST_LIMIT},
    {"checkpoint-dir", required_argument, NULL, OPT_CKPT_DIR},
    {"checkpoint-every", required_argument, NULL, OPT_CKPT_EVERY},
    {"log-every", required_argument, NULL, OPT_LOG_EVERY},
    {"quiet", no_argument, NULL, OPT_QUIET},
    {"rank", required_argument, NULL, OPT_RANK},
    {"world-size", required_argument, NULL, OPT_WORLD},
    {"master-addr", required_argument, NULL, OPT_MADDR},
    {"master-port", required_argument, NULL, OPT_MPORT},
    {"comm-timeout", required_argument, NULL, OPT_TIMEOUT},
    {"comm", required_argument, NULL, OPT_COMM},
    {"cuda-device", required_argument, NULL, OPT_CUDA_DEVICE},
    {"list-devices", no_argument, NULL, OPT_LIST_DEVICES},
    {"version", no_argument, NULL, OPT_VERSION},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

static int
usage_error(const char *msg)
{
    fprintf(stderr, "wslq-train: %s (see --help)\n", msg);
    return TRAIN_EXIT_USAGE;
}

static int
parse_float(const char *s, double min, double max, const char *what, float *out, wq_error_t *err)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno || !isfinite(v) || v < min || v > max)
        return wq_fail(err, WQ_EINVAL, "%s: '%s' is not a number in [%g, %g]", what, s, min, max);
    *out = (float) v;
    return 0;
}

static int
parse_int(const char *s, int64_t min, int64_t max, const char *what, int64_t *out, wq_error_t *err)
{
    return wq_parse_int(s, min, max, what, out, err);
}

static void
print_version(void)
{
    printf("wslq-train %s\nbackends: cpu (%s)\n", WSLQ_VERSION, openblas_get_config());
#ifdef WSLQ_HAVE_CUDA
    char buf[512];
    cuda_version_text(buf, sizeof buf);
    printf("cuda: built (%s)\n", buf);
#else
    printf("cuda: CUDA support not built\n");
#endif
#ifdef WSLQ_HAVE_NCCL
    char nbuf[256];
    nccl_version_text(nbuf, sizeof nbuf);
    printf("transports: tcp-ring; nccl: built (%s)\n", nbuf);
#else
    printf("transports: tcp-ring; nccl: NCCL support not built\n");
#endif
}

/* --list-devices: what this rank's CUDA runtime sees. Always exit 0: "none" is an answer. */
static int
list_devices(void)
{
#ifdef WSLQ_HAVE_CUDA
    char why[256];
    int n = cuda_device_count(why, sizeof why);
    printf("cuda devices: %d%s%s%s\n", n, n ? "" : " (", n ? "" : why, n ? "" : ")");
    for (int i = 0; i < n; i++) {
        char d[160];
        cuda_describe(i, d, sizeof d);
        printf("  %s\n", d);
    }
#else
    printf("cuda devices: 0 (CUDA support not built)\n");
#endif
    return TRAIN_EXIT_OK;
}

/* --device cuda|auto -> cpu or cuda, with one line on stderr when it cannot or does not use
 * cuda. Returns -1 (exit 2) when cuda was demanded and is not usable. */
static int
resolve_device(const char *device, train_cfg_t *cfg)
{
    cfg->device = TRAIN_DEVICE_CPU;
    if (!strcmp(device, "cpu"))
        return 0;
    int quiet = cfg->comm.rank != 0;
#ifdef WSLQ_HAVE_CUDA
    char why[256];
    if (cuda_device_count(why, sizeof why) > 0) {
        cfg->device = TRAIN_DEVICE_CUDA;
        return 0;
    }
    if (!strcmp(device, "cuda")) {
        fprintf(stderr, "wslq-train: --device cuda: no usable CUDA device: %s\n", why);
        return -1;
    }
    if (!quiet)
        fprintf(stderr, "wslq-train: --device auto: no usable CUDA device (%s), using cpu\n", why);
#else
    if (!strcmp(device, "cuda")) {
        fprintf(stderr, "wslq-train: --device cuda: CUDA support not built into this binary\n");
        return -1;
    }
    if (!quiet)
        fprintf(stderr, "wslq-train: --device auto: CUDA support not built, using cpu\n");
#endif
    return 0;
}

int
main(int argc, char **argv)
{
    wq_log_init("wslq-train");
    train_cfg_t cfg;
    train_cfg_defaults(&cfg);
    wq_error_t err;
    if (comm_opts_from_env(&cfg.comm, &err) < 0)
        return usage_error(err.text);
    cfg.metrics_path = getenv("WSLQ_METRICS");
    int64_t v;
    const char *lr_env = getenv("LOCAL_RANK");
    if (lr_env && *lr_env) {
        if (wq_parse_int(lr_env, 0, COMM_MAX_WORLD - 1, "LOCAL_RANK", &v, &err) < 0)
            return usage_error(err.text);
        cfg.local_rank = (int) v;
    }

    int lr_set = 0, threads_set = 0, hidden_set = 0, fc_set = 0, conv_set = 0;
    const char *device = "cpu";
    float f;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":", options, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case OPT_MODEL:
            if (!strcmp(optarg, "mlp"))
                cfg.spec.kind = MODEL_MLP;
            else if (!strcmp(optarg, "cnn"))
                cfg.spec.kind = MODEL_CNN;
            else
                bad = wq_fail(&err, WQ_EINVAL, "--model: '%s' is not mlp or cnn", optarg);
            break;
        case OPT_HIDDEN:
            hidden_set = 1;
            bad = model_parse_widths(optarg, "--hidden", cfg.spec.hidden, &cfg.spec.n_hidden, &err);
            break;
        case OPT_FC:
            fc_set = 1;
            bad = model_parse_widths(optarg, "--fc", cfg.spec.hidden, &cfg.spec.n_hidden, &err);
            break;
        case OPT_CONV:
            conv_set = 1;
            bad = model_parse_widths(optarg, "--conv", cfg.spec.conv, &cfg.spec.n_conv, &err);
            break;
        case OPT_KERNEL:
            if (!(bad = parse_int(optarg, 1, 7, "--kernel", &v, &err))) {
                if (v % 2 == 0)
                    bad =
                        wq_fail(&err, WQ_EINVAL, "--kernel: %s is even; want 1, 3, 5 or 7", optarg);
                cfg.spec.kernel = (int) v;
            }
            break;
        case OPT_EPOCHS:
            if (!(bad = parse_int(optarg, 1, 100000, "--epochs", &v, &err)))
                cfg.epochs = (int) v;
            break;
        case OPT_MAX_STEPS:
            if (!(bad = parse_int(optarg, 0, INT64_MAX, "--max-steps", &v, &err)))
                cfg.max_steps = v;
            break;
        case OPT_BATCH:
            if (!(bad = parse_int(optarg, 1, 65536, "--batch", &v, &err)))
                cfg.batch = (int) v;
            break;
        case OPT_ACCUM:
            if (!(bad = parse_int(optarg, 1, 65536, "--accum", &v, &err)))
                cfg.accum = (int) v;
            break;
        case OPT_OPTIMIZER:
            if (!strcmp(optarg, "adam"))
                cfg.optim = OPTIM_ADAM;
            else if (!strcmp(optarg, "sgd"))
                cfg.optim = OPTIM_SGD;
            else
                bad = wq_fail(&err, WQ_EINVAL, "--optimizer: '%s' is not adam or sgd", optarg);
            break;
        case OPT_LR:
            lr_set = 1;
            bad = parse_float(optarg, 1e-9, 100.0, "--lr", &cfg.lr, &err);
            break;
        case OPT_MOMENTUM:
            bad = parse_float(optarg, 0.0, 0.9999, "--momentum", &cfg.momentum, &err);
            break;
        case OPT_LR_SCHEDULE:
            if (!strcmp(optarg, "constant"))
                cfg.lr_cosine = 0;
            else if (!strcmp(optarg, "cosine"))
                cfg.lr_cosine = 1;
            else
                bad = wq_fail(&err, WQ_EINVAL, "--lr-schedule: '%s' is not constant or cosine",
                              optarg);
            break;
        case OPT_SEED:
            if (!(bad = parse_int(optarg, 0, INT64_MAX, "--seed", &v, &err)))
                cfg.seed = (uint64_t) v;
            break;
        case OPT_THREADS:
            threads_set = 1;
            if (!(bad = parse_int(optarg, 1, 1024, "--threads", &v, &err)))
                cfg.threads = (int) v;
            break;
        case OPT_DEVICE:
            device = optarg;
            if (strcmp(device, "cpu") && strcmp(device, "auto") && strcmp(device, "cuda"))
                bad = wq_fail(&err, WQ_EINVAL, "--device: '%s' is not cpu, auto or cuda", optarg);
            break;
        case OPT_DATA:
            cfg.data_dir = optarg;
            break;
        case OPT_TRAIN_LIMIT:
            if (!(bad = parse_int(optarg, 1, 10000000, "--train-limit", &v, &err)))
                cfg.train_limit = (int) v;
            break;
        case OPT_TEST_LIMIT:
            if (!(bad = parse_int(optarg, 1, 10000000, "--test-limit", &v, &err)))
                cfg.test_limit = (int) v;
            break;
        case OPT_CKPT_DIR:
            cfg.ckpt_dir = optarg;
            break;
        case OPT_CKPT_EVERY:
            if (!(bad = parse_int(optarg, 0, INT64_MAX, "--checkpoint-every", &v, &err)))
                cfg.ckpt_every = v;
            break;
        case OPT_LOG_EVERY:
            if (!(bad = parse_int(optarg, 0, 1000000000, "--log-every", &v, &err)))
                cfg.log_every = (int) v;
            break;
        case OPT_QUIET:
            cfg.quiet = 1;
            break;
        case OPT_RANK:
            if (!(bad = parse_int(optarg, 0, COMM_MAX_WORLD - 1, "--rank", &v, &err)))
                cfg.comm.rank = (int) v;
            break;
        case OPT_WORLD:
            if (!(bad = parse_int(optarg, 1, COMM_MAX_WORLD, "--world-size", &v, &err)))
                cfg.comm.world = (int) v;
            break;
        case OPT_MADDR:
            if (strlen(optarg) >= sizeof cfg.comm.master_addr)
                bad = wq_fail(&err, WQ_EINVAL, "--master-addr: too long");
            else
                snprintf(cfg.comm.master_addr, sizeof cfg.comm.master_addr, "%s", optarg);
            break;
        case OPT_MPORT:
            if (!(bad = parse_int(optarg, 1, 65535, "--master-port", &v, &err)))
                cfg.comm.master_port = (int) v;
            break;
        case OPT_TIMEOUT:
            if (!(bad = parse_float(optarg, 0.1, 86400.0, "--comm-timeout", &f, &err)))
                cfg.comm.timeout_ms = (int) (f * 1000.0f);
            break;
        case OPT_COMM:
            if (!strcmp(optarg, "auto"))
                cfg.comm_kind = TRAIN_COMM_AUTO;
            else if (!strcmp(optarg, "tcp"))
                cfg.comm_kind = TRAIN_COMM_TCP;
            else if (!strcmp(optarg, "nccl"))
                cfg.comm_kind = TRAIN_COMM_NCCL;
            else
                bad = wq_fail(&err, WQ_EINVAL, "--comm: '%s' is not auto, tcp or nccl", optarg);
            break;
        case OPT_CUDA_DEVICE:
            if (!(bad = parse_int(optarg, 0, 1023, "--cuda-device", &v, &err)))
                cfg.cuda_device = (int) v;
            break;
        case OPT_LIST_DEVICES:
            return list_devices();
        case OPT_VERSION:
            print_version();
            return TRAIN_EXIT_OK;
        case OPT_HELP:
            fputs(usage_text, stdout);
            return TRAIN_EXIT_OK;
        case ':':
            fprintf(stderr, "wslq-train: %s needs a value (see --help)\n", argv[optind - 1]);
            return TRAIN_EXIT_USAGE;
        default:
            fprintf(stderr, "wslq-train: unknown option '%s' (see --help)\n", argv[optind - 1]);
            return TRAIN_EXIT_USAGE;
        }
        if (bad)
            return usage_error(err.text);
    }
    if (optind < argc) {
        fprintf(stderr, "wslq-train: unexpected argument '%s' (see --help)\n", argv[optind]);
        return TRAIN_EXIT_USAGE;
    }
    if (cfg.spec.kind == MODEL_MLP && (fc_set || conv_set))
        return usage_error("--conv and --fc apply to --model cnn (use --hidden for mlp)");
    if (cfg.spec.kind == MODEL_CNN) {
        if (hidden_set)
            return usage_error("--hidden applies to --model mlp (use --conv and --fc for cnn)");
        if (!conv_set) {
            cfg.spec.n_conv = 2;
            cfg.spec.conv[0] = 32;
            cfg.spec.conv[1] = 64;
        }
        if (!fc_set) {
            cfg.spec.n_hidden = 1;
            cfg.spec.hidden[0] = 128;
        }
    }
    if (cfg.comm.rank >= cfg.comm.world) {
        fprintf(stderr, "wslq-train: rank %d is not in 0..%d (world size %d)\n", cfg.comm.rank,
                cfg.comm.world - 1, cfg.comm.world);
        return TRAIN_EXIT_USAGE;
    }
    if (resolve_device(device, &cfg) < 0)
        return TRAIN_EXIT_USAGE;
    if (cfg.comm_kind == TRAIN_COMM_NCCL && cfg.device != TRAIN_DEVICE_CUDA)
        return usage_error("--comm nccl needs --device cuda (or auto on a GPU)");
    if (!lr_set && cfg.optim == OPTIM_SGD)
        cfg.lr = 0.01f;
    if (!threads_set) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        int64_t local = 1;
        const char *s = getenv("LOCAL_WORLD_SIZE");
        if (s && *s && wq_parse_int(s, 1, COMM_MAX_WORLD, "LOCAL_WORLD_SIZE", &local, &err) < 0)
            local = 1;
        cfg.threads = cpus > local ? (int) (cpus / local) : 1;
    }
    return train_run(&cfg);
}
