/* wslq-node-facts: print what the worker would learn about this node (facts, GPUs, doctor
 * checks), as text or JSON. For tests and debugging; `wslq doctor` is the user's command. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "node/doctor.h"

static void
usage(FILE *out)
{
    fprintf(out, "usage: wslq-node-facts [--root DIR] [--iface IF] [--json] [--no-gpu]\n"
                 "                       [--clean-shm [--min-age S]]\n"
                 "  --root DIR   read the system under DIR (test fixtures); default /\n"
                 "  --iface IF   cluster interface override\n"
                 "  --json       print one JSON object\n"
                 "  --no-gpu     do not load NVML/CUDA\n"
                 "  --clean-shm  remove stale /dev/shm/nccl-* files (unused, older than\n"
                 "               --min-age seconds, default 60) and exit\n"
                 "exit: 0 no FAIL, 1 at least one FAIL, 2 error\n");
}

static void
print_text(const doctor_report_t *r)
{
    const node_facts_t *f = doctor_facts(r);
    printf("node      %s  kernel %s\n", f->hostname, f->kernel);
    printf("wsl       %s", f->is_wsl ? "yes" : "no");
    if (f->is_wsl)
        printf(" (WSL %d%s%s, net %s)", f->wsl_version, f->wsl_pkg[0] ? " pkg " : "", f->wsl_pkg,
               f->net_mode);
    printf("\nresources %d CPUs, %lld MiB RAM, %lld MiB available\n", f->cpus,
           (long long) f->mem_total_mb, (long long) f->mem_avail_mb);
    printf("iface     %s %s\n", f->iface[0] ? f->iface : "-", f->ip[0] ? f->ip : "-");
    const gpu_set_t *g = doctor_gpus(r);
    if (g) {
        if (gpu_count(g) == 0)
            printf("gpus      none (%s)\n", gpu_absent_reason(g) ? gpu_absent_reason(g) : "0 GPUs");
        for (int i = 0; i < gpu_count(g); i++) {
            const gpu_info_t *d = gpu_get(g, i);
            char caps[128];
            printf("gpu %d     %s %s cuda=%d mem %lld/%lld MiB free temp %d util %d power %d "
                   "caps %s\n",
                   d->index, d->name, d->uuid, d->cuda_ordinal, (long long) d->mem_free_mb,
                   (long long) d->mem_total_mb, d->temp_c, d->util_pct, d->power_w,
                   gpu_caps_string(d->caps, caps, sizeof caps));
        }
    }
    printf("nccl      profile %s\n\n", doctor_report_nccl_profile(r));
    doctor_print(r, stdout);
}

int
main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"root", required_argument, NULL, 'r'}, {"iface", required_argument, NULL, 'i'},
        {"json", no_argument, NULL, 'j'},       {"no-gpu", no_argument, NULL, 'n'},
        {"clean-shm", no_argument, NULL, 'c'},  {"min-age", required_argument, NULL, 'a'},
        {"help", no_argument, NULL, 'h'},       {NULL, 0, NULL, 0}};
    const char *root = "/";
    int json = 0, clean = 0, c;
    long long min_age = 60;
    doctor_opts_t opts = DOCTOR_OPTS_INIT;
    wq_log_init("wslq-node-facts");
    while ((c = getopt_long(argc, argv, "r:i:jnca:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'r':
            root = optarg;
            break;
        case 'i':
            opts.iface = optarg;
            break;
        case 'j':
            json = 1;
            break;
        case 'n':
            opts.skip_gpu = 1;
            break;
        case 'c':
            clean = 1;
            break;
        case 'a':
            min_age = atoll(optarg);
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    wq_error_t err = {0};
    if (clean) {
        int n = node_cleanup_nccl_shm(root, min_age, &err);
        if (n < 0) {
            fprintf(stderr, "wslq-node-facts: %s\n", err.text);
            return 2;
        }
        printf("removed %d stale NCCL segment%s\n", n, n == 1 ? "" : "s");
        return 0;
    }
    opts.shm_stale_age_s = min_age;
    doctor_report_t *r = doctor_run(root, &opts, &err);
    if (!r) {
        fprintf(stderr, "wslq-node-facts: %s\n", err.text);
        return 2;
    }
    if (json) {
        cJSON *j = doctor_to_json(r);
        char *s = cJSON_Print(j);
        printf("%s\n", s);
        free(s);
        cJSON_Delete(j);
    } else {
        print_text(r);
    }
    int rc = doctor_exit_code(r);
    doctor_destroy(&r);
    return rc;
}
