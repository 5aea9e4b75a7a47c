/* doctor on the machine the tests run on. On the plain, GPU-less Debian CI box the answer
 * must be calm: not WSL, no GPU, no FAIL, exit code 0. Elsewhere (a WSL PC, a GPU box) the
 * expectations do not hold and the test is skipped (77). */
#include <stdio.h>
#include <string.h>

#include "node/doctor.h"

#define CHECK(cond)                                                 \
    do {                                                            \
        if (!(cond)) {                                              \
            fprintf(stderr, "node_real_test: failed: %s\n", #cond); \
            doctor_print(r, stderr);                                \
            return 1;                                               \
        }                                                           \
    } while (0)

int
main(void)
{
    wq_error_t err = {0};
    doctor_report_t *r = doctor_run("/", NULL, &err);
    if (!r) {
        fprintf(stderr, "node_real_test: %s\n", err.text);
        return 1;
    }
    const node_facts_t *f = doctor_facts(r);
    if (f->is_wsl || gpu_count(doctor_gpus(r)) > 0) {
        printf("skipped: this machine is WSL or has GPUs; the fixture tests cover it\n");
        doctor_destroy(&r);
        return 77;
    }
    const doctor_check_t *c;
    CHECK((c = doctor_find(r, "wsl.detect")) && c->verdict == DOCTOR_INFO);
    CHECK(strstr(c->summary, "not WSL"));
    CHECK((c = doctor_find(r, "gpu.nvml")) && c->verdict == DOCTOR_INFO);
    CHECK(strstr(c->summary, "no NVIDIA GPU"));
    CHECK(doctor_find(r, "wsl.network") == NULL && doctor_find(r, "gpu.shadow") == NULL);
    CHECK(doctor_tally(r, DOCTOR_FAIL) == 0);
    CHECK(doctor_exit_code(r) == 0);
    CHECK(strcmp(doctor_report_nccl_profile(r), "default") == 0);
    doctor_print(r, stdout);
    doctor_destroy(&r);
    return 0;
}
