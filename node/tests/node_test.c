/* node against fixture roots and the fake NVML/CUDA/NCCL library. */
#include <dlfcn.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>
/* cmocka.h needs the standard headers above first. */
#include <cmocka.h>

#include "node/doctor.h"

#ifndef FIXTURES
#error FIXTURES must name the fixture directory
#endif
#ifndef FAKE_LIB
#error FAKE_LIB must name the fake NVML library
#endif

#define FX(name)    FIXTURES "/" name
#define MISSING_LIB "/nonexistent/libnvidia-ml.so.1"

static const char *const knobs[] = {"WSLQ_DXCORE_LIB",   "FAKE_NVML_INIT_FAIL", "FAKE_NVML_GPUS",
                                    "FAKE_NVML_DRIVER",  "FAKE_CUDA_COUNT",     "FAKE_CUDA_P2P",
                                    "FAKE_NCCL_VERSION", "FAKE_NVML_GPU0_USED", "WSLQ_WSLCONFIG"};

/* Every test starts with the fake library for NVML, CUDA and NCCL and no knobs set. */
static int
reset_env(void **state)
{
    (void) state;
    setenv("WSLQ_NVML_LIB", FAKE_LIB, 1);
    setenv("WSLQ_CUDA_LIB", FAKE_LIB, 1);
    setenv("WSLQ_NCCL_LIB", FAKE_LIB, 1);
    for (size_t i = 0; i < sizeof knobs / sizeof knobs[0]; i++)
        unsetenv(knobs[i]);
    return 0;
}

/* A writable copy of a fixture in a fresh temporary directory; returns the copy's root. */
static char *
copy_fixture(const char *name, char *buf, size_t size)
{
    char tmpl[] = "/tmp/wslq-node-test-XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "cp -a '%s/%s' '%s/root'", FIXTURES, name, tmpl);
    assert_int_equal(system(cmd), 0);
    snprintf(buf, size, "%s/root", tmpl);
    return buf;
}

static void
remove_copy(const char *root)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%.*s'", (int) (strrchr(root, '/') - root), root);
    assert_int_equal(system(cmd), 0);
}

static void
write_file(const char *root, const char *rel, const char *text, time_t age_s)
{
    char p[4096];
    snprintf(p, sizeof p, "%s%s", root, rel);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    if (age_s > 0) {
        struct timeval tv[2];
        gettimeofday(&tv[0], NULL);
        tv[0].tv_sec -= age_s;
        tv[1] = tv[0];
        assert_int_equal(utimes(p, tv), 0);
    }
}

static void
mkdirs(const char *root, const char *rel)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s%s'", root, rel);
    assert_int_equal(system(cmd), 0);
}

static const doctor_check_t *
must_find(const doctor_report_t *r, const char *id)
{
    const doctor_check_t *c = doctor_find(r, id);
    if (!c)
        fail_msg("no check %s", id);
    return c;
}

#define assert_verdict(r, id, v) \
    assert_string_equal(doctor_verdict_name(must_find(r, id)->verdict), doctor_verdict_name(v))
#define assert_contains(hay, needle)                      \
    do {                                                  \
        if (!strstr((hay), (needle)))                     \
            fail_msg("'%s' lacks '%s'", (hay), (needle)); \
    } while (0)

/* ---- facts ------------------------------------------------------------------------------- */

static void
test_facts_mirrored(void **state)
{
    (void) state;
    node_facts_t f;
    wq_error_t err = {0};
    assert_int_equal(node_facts_read(FX("wsl-mirrored"), NULL, &f, &err), 0);
    assert_int_equal(f.is_wsl, 1);
    assert_int_equal(f.wsl_version, 2);
    assert_string_equal(f.kernel, "5.15.167.4-microsoft-standard-WSL2");
    assert_string_equal(f.hostname, "lab-pc-07");
    assert_int_equal(f.cpus, 16);
    assert_int_equal(f.mem_total_mb, 32762060 / 1024);
    assert_int_equal(f.mem_avail_mb, 31001234 / 1024);
    assert_int_equal(f.swap_total_mb, 8192);
    assert_string_equal(f.iface, "eth1");
    assert_string_equal(f.ip, "192.168.10.57");
    assert_int_equal(f.prefix_len, 24);
    assert_int_equal(f.mtu, 1500);
    assert_int_equal(f.iface_from, NODE_IFACE_ROUTE);
    assert_int_equal(f.networking_mirrored, 1);
    assert_string_equal(f.net_mode, "mirrored");
    assert_int_equal(f.net_mode_from, NODE_NETMODE_GUESS);
    assert_int_equal(f.systemd, 1);
    assert_int_equal(f.wslconf_systemd, 1);
    assert_int_equal(f.wslconf_gpu, 1);
    assert_int_equal(f.interop, 1);
    assert_int_equal(f.has_dxg, 1);
    assert_int_equal(f.has_wsl_libcuda, 1);
    assert_int_equal(f.has_wsl_libnvml, 1);
    assert_int_equal(f.port_lo, 44620);
    assert_int_equal(f.port_hi, 48715);
    assert_int_equal(f.shm_tmpfs, 1);
    assert_int_equal(f.shm_total_mb, 16381028 / 1024);
    assert_int_equal(f.hostname_loopback, 1);
    assert_string_equal(f.wsl_pkg, "");
}

static void
test_facts_nat_wslinfo(void **state)
{
    (void) state;
    node_facts_t f;
    assert_int_equal(node_facts_read(FX("wsl-nat"), NULL, &f, NULL), 0);
    assert_int_equal(f.wsl_version, 2);
    assert_string_equal(f.net_mode, "nat");
    assert_int_equal(f.net_mode_from, NODE_NETMODE_WSLINFO);
    assert_int_equal(f.networking_mirrored, 0);
    assert_string_equal(f.wsl_pkg, "2.0.9.0");
    assert_int_equal(f.systemd, 0);
    assert_string_equal(f.pid1, "init");
    assert_int_equal(f.wslconf_systemd, 1); /* "systemd = true" with CRLF */
    assert_string_equal(f.iface, "eth0");
    assert_string_equal(f.ip, "172.23.45.10");
    assert_int_equal(f.prefix_len, 20);
    assert_int_equal(f.hostname_loopback, 0);
}

static void
test_facts_nat_guess(void **state)
{
    (void) state;
    char root[4096], p[4200];
    copy_fixture("wsl-nat", root, sizeof root);
    snprintf(p, sizeof p, "%s/usr/bin/wslinfo", root);
    assert_int_equal(unlink(p), 0);
    node_facts_t f;
    assert_int_equal(node_facts_read(root, NULL, &f, NULL), 0);
    assert_string_equal(f.net_mode, "nat");
    assert_int_equal(f.net_mode_from, NODE_NETMODE_GUESS);
    assert_int_equal(f.networking_mirrored, 0);
    remove_copy(root);
}

static void
test_facts_override(void **state)
{
    (void) state;
    node_facts_t f;
    assert_int_equal(node_facts_read(FX("wsl-mirrored"), "eth0", &f, NULL), 0);
    assert_string_equal(f.iface, "eth0"); /* kept, but it has no IPv4 */
    assert_string_equal(f.ip, "");
    assert_int_equal(f.iface_from, NODE_IFACE_OVERRIDE);
    assert_int_equal(node_facts_read(FX("wsl-mirrored"), "lo", &f, NULL), 0);
    assert_string_equal(f.ip, ""); /* 127.x and 10.255.255.254 on lo: never a cluster address */
    assert_int_equal(node_facts_read(FX("wsl-mirrored"), "eth1", &f, NULL), 0);
    assert_string_equal(f.ip, "192.168.10.57");
}

static void
test_facts_plain(void **state)
{
    (void) state;
    node_facts_t f;
    assert_int_equal(node_facts_read(FX("plain-linux"), NULL, &f, NULL), 0);
    assert_int_equal(f.is_wsl, 0);
    assert_int_equal(f.wsl_version, 0);
    assert_string_equal(f.kernel, "6.1.0-18-amd64"); /* from /proc/version */
    assert_int_equal(f.cpus, 5);                     /* "0-3,6" */
    /* no default route: docker0 comes first but is skipped, enp4s0 is down */
    assert_string_equal(f.iface, "enp3s0");
    assert_string_equal(f.ip, "10.0.0.5");
    assert_int_equal(f.mtu, 9000);
    assert_int_equal(f.iface_from, NODE_IFACE_FIRST);
    assert_int_equal(f.networking_mirrored, -1);
    assert_int_equal(f.interop, -1);
    assert_int_equal(f.wslconf_systemd, -1);
    assert_int_equal(f.shm_total_mb, 4096);
}

static void
test_facts_wsl1_and_errors(void **state)
{
    (void) state;
    node_facts_t f;
    wq_error_t err = {0};
    assert_int_equal(node_facts_read(FX("wsl1"), NULL, &f, NULL), 0);
    assert_int_equal(f.is_wsl, 1);
    assert_int_equal(f.wsl_version, 1);
    assert_int_equal(node_facts_read("/nonexistent/root", NULL, &f, &err), -1);
    assert_int_equal(err.code, WQ_ESYS);
    assert_contains(err.text, "/nonexistent/root");
    assert_int_equal(node_facts_read(FX("wsl1/proc/1/comm"), NULL, &f, &err), -1);
    assert_int_equal(err.code, WQ_EINVAL);
    /* the real system can always be read */
    assert_int_equal(node_facts_read("/", NULL, &f, NULL), 0);
    assert_true(f.cpus > 0);
    assert_true(f.mem_total_mb > 0);
}

static void
test_facts_json(void **state)
{
    (void) state;
    node_facts_t f;
    assert_int_equal(node_facts_read(FX("wsl-mirrored"), NULL, &f, NULL), 0);
    cJSON *j = node_facts_to_json(&f);
    assert_string_equal(cJSON_GetObjectItem(j, "ip")->valuestring, "192.168.10.57");
    assert_string_equal(cJSON_GetObjectItem(j, "iface_from")->valuestring, "route");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(j, "is_wsl")));
    assert_int_equal(cJSON_GetObjectItem(j, "networking_mirrored")->valueint, 1);
    cJSON_Delete(j);
}

/* ---- gpu --------------------------------------------------------------------------------- */

static void
test_gpu_fake(void **state)
{
    (void) state;
    wq_error_t err = {0};
    gpu_set_t *s = gpu_open(FX("wsl-mirrored"), &err);
    assert_non_null(s);
    assert_null(gpu_absent_reason(s));
    assert_int_equal(gpu_nvml_ok(s), 1);
    assert_non_null(strstr(gpu_nvml_path(s), "libfake_nvml.so"));
    assert_int_equal(gpu_count(s), 2);
    assert_string_equal(gpu_driver_version(s), "555.99");
    assert_int_equal(gpu_driver_major(s), 555);

    const gpu_info_t *g0 = gpu_get(s, 0), *g1 = gpu_get(s, 1);
    assert_string_equal(g0->name, "NVIDIA GeForce RTX 4090");
    assert_string_equal(g0->uuid, "GPU-11111111-2222-3333-4444-555555555555");
    assert_string_equal(g0->pci_bus_id, "00000000:01:00.0");
    assert_int_equal(g0->caps, GPU_CAP_NAME | GPU_CAP_UUID | GPU_CAP_MEMORY | GPU_CAP_TEMP |
                                   GPU_CAP_POWER | GPU_CAP_PCI | GPU_CAP_DISPLAY | GPU_CAP_CC);
    assert_int_equal(g0->cc_major, 8);
    assert_int_equal(g0->cc_minor, 9);
    assert_int_equal(g0->mem_total_mb, 24564);
    assert_int_equal(g0->mem_used_mb, 1843);
    assert_int_equal(g0->mem_free_mb, 24564 - 1843);
    assert_int_equal(g0->temp_c, 45);
    assert_int_equal(g0->util_pct, -1); /* NOT_SUPPORTED */
    assert_int_equal(g0->power_w, 35);  /* 35400 mW */
    assert_int_equal(g0->display_active, 1);
    /* UNKNOWN from the temperature query counts as unsupported, not as an error */
    assert_int_equal(g1->caps, GPU_CAP_NAME | GPU_CAP_UUID | GPU_CAP_MEMORY | GPU_CAP_POWER |
                                   GPU_CAP_PCI | GPU_CAP_CC);
    assert_int_equal(g1->cc_minor, 6);
    assert_int_equal(g1->temp_c, -1);
    assert_int_equal(g1->display_active, -1);

    /* CUDA numbers them the other way round: only the UUID match gets it right */
    assert_int_equal(gpu_cuda_count(s), 2);
    assert_int_equal(g0->cuda_ordinal, 1);
    assert_int_equal(g1->cuda_ordinal, 0);
    assert_int_equal(gpu_cuda_driver_version(s), 12040);
    assert_int_equal(gpu_cuda_p2p_all(s), 0);
    assert_string_equal(gpu_cuda_error(s), "");

    assert_ptr_equal(gpu_find_uuid(s, "GPU-AAAAAAAA-bbbb-cccc-dddd-eeeeeeeeeeee"), g1);
    assert_null(gpu_find_uuid(s, "GPU-00000000-0000-0000-0000-000000000000"));
    assert_null(gpu_get(s, 2));
    assert_null(gpu_get(s, -1));

    /* refresh re-reads only supported queries */
    assert_int_equal(gpu_refresh(s), 0);
    assert_int_equal(g0->mem_used_mb, 1943);
    assert_int_equal(g0->mem_free_mb, 24564 - 1943);
    assert_int_equal(g0->util_pct, -1);
    assert_int_equal(g1->temp_c, -1);
    assert_int_equal(g1->caps & GPU_CAP_TEMP, 0);

    cJSON *j = gpu_set_to_json(s);
    cJSON *arr = cJSON_GetObjectItem(j, "gpus");
    assert_int_equal(cJSON_GetArraySize(arr), 2);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(arr, 1), "caps")->valuestring,
                        "name,uuid,memory,power,pci,cc");
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(j, "absent_reason")));
    cJSON_Delete(j);

    gpu_close(&s);
    assert_null(s);
    gpu_close(&s); /* NULL-safe */
}

static void
test_gpu_absent(void **state)
{
    (void) state;
    setenv("WSLQ_NVML_LIB", MISSING_LIB, 1);
    gpu_set_t *s = gpu_open(FX("plain-linux"), NULL);
    assert_non_null(s);
    assert_int_equal(gpu_count(s), 0);
    assert_int_equal(gpu_nvml_loaded(s), 0);
    assert_contains(gpu_absent_reason(s), "cannot be loaded");
    assert_int_equal(gpu_refresh(s), -1);
    assert_int_equal(gpu_cuda_count(s), -1);
    gpu_close(&s);

    /* the default search: versioned name, then <root>/usr/lib/wsl/lib (an empty file here) */
    unsetenv("WSLQ_NVML_LIB");
    void *h = dlopen("libnvidia-ml.so.1", RTLD_NOW);
    if (h) {
        dlclose(h); /* a machine with a real NVML: the fallback cannot be observed */
        return;
    }
    s = gpu_open(FX("plain-linux"), NULL);
    assert_string_equal(gpu_absent_reason(s), "libnvidia-ml.so.1 not found");
    gpu_close(&s);
    s = gpu_open(FX("wsl-mirrored"), NULL);
    assert_contains(gpu_absent_reason(s), "wsl-mirrored/usr/lib/wsl/lib/libnvidia-ml.so.1");
    assert_contains(gpu_absent_reason(s), "cannot be loaded");
    gpu_close(&s);
}

static void
test_gpu_init_fail(void **state)
{
    (void) state;
    setenv("FAKE_NVML_INIT_FAIL", "1", 1);
    gpu_set_t *s = gpu_open("/", NULL);
    assert_int_equal(gpu_nvml_loaded(s), 1);
    assert_int_equal(gpu_nvml_ok(s), 0);
    assert_int_equal(gpu_count(s), 0);
    assert_string_equal(gpu_absent_reason(s), "nvmlInit failed: Driver Not Loaded");
    gpu_close(&s);
}

static void
test_gpu_cuda_variants(void **state)
{
    (void) state;
    setenv("FAKE_CUDA_COUNT", "1", 1);
    gpu_set_t *s = gpu_open("/", NULL);
    assert_int_equal(gpu_cuda_count(s), 1);
    assert_int_equal(gpu_get(s, 0)->cuda_ordinal, -1);
    assert_int_equal(gpu_get(s, 1)->cuda_ordinal, 0);
    assert_int_equal(gpu_cuda_p2p_all(s), -1);
    gpu_close(&s);

    unsetenv("FAKE_CUDA_COUNT");
    setenv("FAKE_CUDA_P2P", "1", 1);
    s = gpu_open("/", NULL);
    assert_int_equal(gpu_cuda_p2p_all(s), 1);
    gpu_close(&s);

    setenv("WSLQ_CUDA_LIB", "/nonexistent/libcuda.so.1", 1);
    s = gpu_open("/", NULL);
    assert_int_equal(gpu_count(s), 2);
    assert_int_equal(gpu_cuda_count(s), -1);
    assert_contains(gpu_cuda_error(s), "libcuda.so.1");
    assert_int_equal(gpu_get(s, 0)->cuda_ordinal, -1);
    gpu_close(&s);
}

static void
test_caps_and_nccl_version(void **state)
{
    (void) state;
    char buf[128];
    assert_string_equal(gpu_caps_string(0, buf, sizeof buf), "");
    assert_string_equal(
        gpu_caps_string(GPU_CAP_UUID | GPU_CAP_UTIL | GPU_CAP_DISPLAY, buf, sizeof buf),
        "uuid,util,display");
    assert_string_equal(gpu_caps_string(0xff, buf, 12), "name,uuid"); /* truncates whole names */
    const char *lib = NULL;
    assert_int_equal(gpu_nccl_version(&lib), 22105);
    assert_string_equal(lib, FAKE_LIB);
    setenv("FAKE_NCCL_VERSION", "21005", 1);
    assert_int_equal(gpu_nccl_version(NULL), 21005);
    setenv("WSLQ_NCCL_LIB", "/nonexistent/libnccl.so.2", 1);
    assert_int_equal(gpu_nccl_version(NULL), 0);
}

/* ---- doctor ------------------------------------------------------------------------------ */

static void
test_doctor_mirrored(void **state)
{
    (void) state;
    wq_error_t err = {0};
    doctor_report_t *r = doctor_run(FX("wsl-mirrored"), NULL, &err);
    assert_non_null(r);
    assert_verdict(r, "wsl.detect", DOCTOR_INFO);
    assert_verdict(r, "wsl.version", DOCTOR_INFO);
    assert_verdict(r, "wsl.network", DOCTOR_PASS);
    assert_verdict(r, "wsl.idle", DOCTOR_PASS);
    assert_contains(must_find(r, "wsl.idle")->summary, "Users/labnode/.wslconfig");
    assert_verdict(r, "wsl.systemd", DOCTOR_PASS);
    assert_verdict(r, "wsl.gpu_enabled", DOCTOR_PASS);
    assert_verdict(r, "gpu.wsl_lib", DOCTOR_PASS);
    assert_verdict(r, "gpu.dxg", DOCTOR_PASS);
    assert_verdict(r, "gpu.shadow", DOCTOR_PASS); /* a purged package does not count */
    assert_verdict(r, "gpu.nvml", DOCTOR_PASS);
    assert_verdict(r, "gpu.cuda", DOCTOR_PASS);
    assert_verdict(r, "gpu.0", DOCTOR_INFO);
    assert_contains(must_find(r, "gpu.0")->summary, "drives a display");
    assert_contains(must_find(r, "gpu.1")->summary, "caps name,uuid,memory,power,pci,cc");
    assert_verdict(r, "gpu.pinned", DOCTOR_INFO);
    assert_verdict(r, "gpu.directml", DOCTOR_INFO); /* no libdxcore here: optional */
    assert_contains(must_find(r, "gpu.directml")->summary, "libdxcore.so not found");
    assert_verdict(r, "nccl.version", DOCTOR_PASS);
    assert_contains(must_find(r, "nccl.version")->summary, "2.21.5");
    assert_contains(must_find(r, "nccl.profile")->summary,
                    "no-shm-no-p2p: NCCL_SHM_DISABLE=1 NCCL_P2P_DISABLE=1");
    assert_verdict(r, "shm.size", DOCTOR_PASS);
    assert_verdict(r, "shm.stale", DOCTOR_PASS);
    assert_verdict(r, "net.iface", DOCTOR_PASS);
    assert_contains(must_find(r, "net.iface")->summary, "eth1 192.168.10.57/24");
    assert_contains(must_find(r, "net.ports")->summary, "44620-48715");
    assert_null(doctor_find(r, "time.daemon"));
    assert_int_equal(doctor_tally(r, DOCTOR_WARN), 0);
    assert_int_equal(doctor_tally(r, DOCTOR_FAIL), 0);
    assert_int_equal(doctor_exit_code(r), 0);
    assert_string_equal(doctor_report_nccl_profile(r), "no-shm-no-p2p");
    assert_int_equal(gpu_count(doctor_gpus(r)), 2);
    assert_string_equal(doctor_facts(r)->iface, "eth1");
    doctor_destroy(&r);
    assert_null(r);
    doctor_destroy(&r);
}

static void
test_doctor_nat(void **state)
{
    (void) state;
    doctor_report_t *r = doctor_run(FX("wsl-nat"), NULL, NULL);
    assert_verdict(r, "wsl.version", DOCTOR_PASS);
    assert_verdict(r, "wsl.network", DOCTOR_WARN);
    assert_contains(must_find(r, "wsl.network")->summary, "single-node jobs only");
    assert_contains(must_find(r, "wsl.network")->summary, "fell back");
    assert_verdict(r, "wsl.idle", DOCTOR_WARN);
    assert_contains(must_find(r, "wsl.idle")->fix, "instanceIdleTimeout=-1");
    assert_verdict(r, "wsl.systemd", DOCTOR_WARN);
    assert_contains(must_find(r, "wsl.systemd")->fix, "wsl.exe --shutdown");
    assert_verdict(r, "shm.size", DOCTOR_WARN);
    assert_contains(must_find(r, "shm.size")->summary, "500 MiB free, want 2048");
    assert_verdict(r, "time.daemon", DOCTOR_INFO);
    assert_contains(must_find(r, "time.daemon")->summary, "chronyd");
    assert_int_equal(doctor_tally(r, DOCTOR_FAIL), 0);
    assert_int_equal(doctor_exit_code(r), 0);
    doctor_destroy(&r);

    /* the same node with the worker unit installed: systemd off blocks it */
    doctor_opts_t o = DOCTOR_OPTS_INIT;
    o.agent_installed = 1;
    r = doctor_run(FX("wsl-nat"), &o, NULL);
    assert_verdict(r, "wsl.systemd", DOCTOR_FAIL);
    assert_int_equal(doctor_exit_code(r), 1);
    doctor_destroy(&r);
}

static void
test_doctor_linux_driver(void **state)
{
    (void) state;
    setenv("WSLQ_NVML_LIB", MISSING_LIB, 1);
    doctor_report_t *r = doctor_run(FX("wsl-linux-driver"), NULL, NULL);
    const doctor_check_t *c = must_find(r, "gpu.shadow");
    assert_string_equal(doctor_verdict_name(c->verdict), "FAIL");
    assert_contains(c->summary, "nvidia-driver-550");
    assert_contains(c->summary, "libnvidia-compute-550");
    assert_contains(c->summary, "cuda-12-4");
    assert_contains(c->summary, "/usr/lib/x86_64-linux-gnu/libcuda.so.1");
    assert_null(strstr(c->summary, "libnvidia-ml.so.1")); /* a link into /usr/lib/wsl is fine */
    assert_null(strstr(c->summary, "cuda-toolkit"));
    assert_contains(c->fix, "sudo apt-get purge nvidia-driver-550 libnvidia-compute-550");
    assert_verdict(r, "wsl.gpu_enabled", DOCTOR_FAIL);
    assert_verdict(r, "gpu.wsl_lib", DOCTOR_FAIL);
    assert_contains(must_find(r, "gpu.wsl_lib")->summary, "libnvidia-ml.so.1");
    assert_verdict(r, "gpu.dxg", DOCTOR_FAIL);
    assert_verdict(r, "gpu.nvml", DOCTOR_FAIL);
    assert_verdict(r, "net.iface", DOCTOR_FAIL);
    assert_verdict(r, "wsl.idle", DOCTOR_INFO); /* no /mnt/c */
    assert_verdict(r, "wsl.network", DOCTOR_WARN);
    assert_null(doctor_find(r, "gpu.cuda"));
    assert_int_equal(doctor_exit_code(r), 1);
    doctor_destroy(&r);
}

/* oci.engine and oci.cdi: which engine --container jobs use, and the NVIDIA
 * Container Toolkit's CDI spec (WARN only where there are GPUs to give a container). */
static void
test_doctor_containers(void **state)
{
    (void) state;
    setenv("WSLQ_NVML_LIB", MISSING_LIB, 1);
    char buf[4096];
    const char *root = copy_fixture("plain-linux", buf, sizeof buf);
    doctor_report_t *r = doctor_run(root, NULL, NULL);
    assert_verdict(r, "oci.engine", DOCTOR_INFO);
    assert_contains(must_find(r, "oci.engine")->summary, "no podman or docker");
    assert_contains(must_find(r, "oci.engine")->fix, "apt-get install podman");
    assert_null(doctor_find(r, "oci.cdi"));
    doctor_destroy(&r);

    mkdirs(root, "/usr/bin");
    write_file(root, "/usr/bin/podman", "#!/bin/sh\n", 0);
    char p[4200];
    snprintf(p, sizeof p, "%s/usr/bin/podman", root);
    assert_int_equal(chmod(p, 0755), 0);
    r = doctor_run(root, NULL, NULL);
    assert_contains(must_find(r, "oci.engine")->summary,
                    "podman /usr/bin/podman: --container jobs use podman");
    assert_verdict(r, "oci.cdi", DOCTOR_INFO); /* no GPU: nothing to give */
    assert_contains(must_find(r, "oci.cdi")->summary, "no NVIDIA CDI spec");
    assert_contains(must_find(r, "oci.cdi")->fix, "nvidia-ctk cdi generate");
    doctor_destroy(&r);

    mkdirs(root, "/var/run/cdi");
    write_file(root, "/var/run/cdi/nvidia-container-toolkit.json", "{}", 0);
    r = doctor_run(root, NULL, NULL);
    assert_verdict(r, "oci.cdi", DOCTOR_PASS);
    assert_contains(must_find(r, "oci.cdi")->summary, "/var/run/cdi/nvidia-container-toolkit.json");
    assert_int_equal(doctor_tally(r, DOCTOR_WARN), 0);
    doctor_destroy(&r);
    remove_copy(root);
}

static void
test_doctor_wsl1_and_plain(void **state)
{
    (void) state;
    doctor_report_t *r = doctor_run(FX("wsl1"), NULL, NULL);
    assert_verdict(r, "wsl.detect", DOCTOR_FAIL);
    assert_int_equal(doctor_count(r), 1);
    assert_int_equal(doctor_exit_code(r), 1);
    doctor_destroy(&r);

    setenv("WSLQ_NVML_LIB", MISSING_LIB, 1);
    r = doctor_run(FX("plain-linux"), NULL, NULL);
    assert_verdict(r, "wsl.detect", DOCTOR_INFO);
    assert_contains(must_find(r, "wsl.detect")->summary, "not WSL");
    assert_verdict(r, "wsl.systemd", DOCTOR_PASS);
    assert_verdict(r, "gpu.nvml", DOCTOR_INFO);
    assert_contains(must_find(r, "gpu.nvml")->summary, "no NVIDIA GPU");
    static const char *const wsl_only[] = {"wsl.version", "wsl.network", "wsl.idle",
                                           "gpu.wsl_lib", "gpu.dxg",     "gpu.shadow",
                                           "gpu.pinned",  "gpu.cuda",    "nccl.profile"};
    for (size_t i = 0; i < sizeof wsl_only / sizeof wsl_only[0]; i++)
        if (doctor_find(r, wsl_only[i]))
            fail_msg("%s reported on a plain Linux box without GPU", wsl_only[i]);
    assert_verdict(r, "net.iface", DOCTOR_PASS);
    assert_contains(must_find(r, "net.iface")->summary, "enp3s0 10.0.0.5/24 mtu 9000 (first up)");
    assert_int_equal(doctor_tally(r, DOCTOR_FAIL), 0);
    assert_int_equal(doctor_tally(r, DOCTOR_WARN), 0);
    assert_int_equal(doctor_exit_code(r), 0);
    assert_string_equal(doctor_report_nccl_profile(r), "default");
    doctor_destroy(&r);
}

static void
test_doctor_gpu_verdicts(void **state)
{
    (void) state;
    doctor_report_t *r;

    setenv("FAKE_NVML_INIT_FAIL", "1", 1);
    r = doctor_run(FX("wsl-mirrored"), NULL, NULL);
    assert_verdict(r, "gpu.nvml", DOCTOR_FAIL);
    assert_contains(must_find(r, "gpu.nvml")->summary, "Driver Not Loaded");
    doctor_destroy(&r);
    r = doctor_run(FX("plain-linux"), NULL, NULL);
    assert_verdict(r, "gpu.nvml", DOCTOR_WARN);
    doctor_destroy(&r);
    unsetenv("FAKE_NVML_INIT_FAIL");

    setenv("FAKE_NVML_GPUS", "0", 1);
    r = doctor_run(FX("wsl-mirrored"), NULL, NULL);
    assert_verdict(r, "gpu.nvml", DOCTOR_WARN);
    assert_contains(must_find(r, "gpu.nvml")->fix, "WDDM");
    doctor_destroy(&r);
    unsetenv("FAKE_NVML_GPUS");

    setenv("FAKE_CUDA_COUNT", "1", 1);
    r = doctor_run(FX("wsl-mirrored"), NULL, NULL);
    assert_verdict(r, "gpu.cuda", DOCTOR_FAIL);
    assert_contains(must_find(r, "gpu.cuda")->summary, "CUDA sees 1 GPU, NVML 2; 1 matched");
    doctor_destroy(&r);
    unsetenv("FAKE_CUDA_COUNT");

    setenv("WSLQ_CUDA_LIB", MISSING_LIB, 1);
    r = doctor_run(FX("wsl-mirrored"), NULL, NULL);
    assert_verdict(r, "gpu.cuda", DOCTOR_FAIL);
    doctor_destroy(&r);
    setenv("WSLQ_CUDA_LIB", FAKE_LIB, 1);

    setenv("FAKE_NVML_GPU0_USED", "24000", 1);
    r = doctor_run(FX("wsl-mirrored"), NULL, NULL);
    assert_verdict(r, "gpu.0", DOCTOR_WARN);
    assert_contains(must_find(r, "gpu.0")->summary, "564/24564 MiB free");
    assert_verdict(r, "gpu.1", DOCTOR_INFO);
    assert_int_equal(doctor_exit_code(r), 0);
    doctor_destroy(&r);
    unsetenv("FAKE_NVML_GPU0_USED");

    setenv("FAKE_NCCL_VERSION", "21005", 1);
    r = doctor_run(FX("wsl-mirrored"), NULL, NULL);
    assert_verdict(r, "nccl.version", DOCTOR_FAIL);
    assert_contains(must_find(r, "nccl.version")->summary, "2.10.5");
    doctor_destroy(&r);
    r = doctor_run(FX("plain-linux"), NULL, NULL);
    assert_verdict(r, "nccl.version", DOCTOR_WARN);
    doctor_destroy(&r);

    setenv("WSLQ_NCCL_LIB", "/nonexistent/libnccl.so.2", 1);
    r = doctor_run(FX("wsl-mirrored"), NULL, NULL);
    assert_verdict(r, "nccl.version", DOCTOR_INFO);
    doctor_destroy(&r);
}

static void
test_nccl_profile(void **state)
{
    (void) state;
    node_facts_t wsl, plain;
    assert_int_equal(node_facts_read(FX("wsl-mirrored"), NULL, &wsl, NULL), 0);
    assert_int_equal(node_facts_read(FX("plain-linux"), NULL, &plain, NULL), 0);
    assert_string_equal(doctor_nccl_profile(&wsl, NULL), "default");

    gpu_set_t *s = gpu_open("/", NULL);
    assert_string_equal(doctor_nccl_profile(&plain, s), "default");
    assert_string_equal(doctor_nccl_profile(&wsl, s), "no-shm-no-p2p"); /* GeForce: no P2P */
    gpu_close(&s);

    setenv("FAKE_CUDA_P2P", "1", 1);
    s = gpu_open("/", NULL);
    assert_string_equal(doctor_nccl_profile(&wsl, s), "no-shm");
    gpu_close(&s);
    setenv("FAKE_NVML_DRIVER", "470.82", 1); /* before R510: no legacy IPC on WSL */
    s = gpu_open("/", NULL);
    assert_string_equal(doctor_nccl_profile(&wsl, s), "no-shm-no-p2p");
    gpu_close(&s);
    setenv("FAKE_NVML_GPUS", "1", 1);
    s = gpu_open("/", NULL);
    assert_string_equal(doctor_nccl_profile(&wsl, s), "default");
    gpu_close(&s);

    assert_null(doctor_nccl_env("default")[0]);
    assert_null(doctor_nccl_env("bogus")[0]);
    assert_string_equal(doctor_nccl_env("no-shm")[0], "NCCL_SHM_DISABLE=1");
    assert_null(doctor_nccl_env("no-shm")[1]);
    assert_string_equal(doctor_nccl_env("no-shm-no-p2p")[1], "NCCL_P2P_DISABLE=1");
    assert_null(doctor_nccl_env("no-shm-no-p2p")[2]);
}

static void
test_doctor_iface_override_and_wslconfig_env(void **state)
{
    (void) state;
    doctor_opts_t o = DOCTOR_OPTS_INIT;
    o.iface = "eth9";
    o.skip_gpu = 1;
    doctor_report_t *r = doctor_run(FX("wsl-mirrored"), &o, NULL);
    assert_null(doctor_gpus(r));
    assert_null(doctor_find(r, "gpu.nvml"));
    assert_verdict(r, "net.iface", DOCTOR_FAIL);
    assert_contains(must_find(r, "net.iface")->summary, "eth9");
    assert_int_equal(doctor_exit_code(r), 1);
    doctor_destroy(&r);

    setenv("WSLQ_WSLCONFIG", FX("wsl-nat/mnt/c/Users/student/.wslconfig"), 1);
    r = doctor_run(FX("wsl-mirrored"), &o, NULL);
    assert_verdict(r, "wsl.idle", DOCTOR_WARN);
    doctor_destroy(&r);
}

static void
hook(doctor_report_t *r, void *ctx)
{
    int *called = ctx;
    (*called)++;
    doctor_add(r, "sched.reach", DOCTOR_FAIL, "open TCP 7420 on the scheduler",
               "scheduler %s unreachable", "10.0.0.1:7420");
}

static void
test_doctor_hook_print_json(void **state)
{
    (void) state;
    int called = 0;
    doctor_opts_t o = DOCTOR_OPTS_INIT;
    o.hook = hook;
    o.hook_ctx = &called;
    doctor_report_t *r = doctor_run(FX("wsl-nat"), &o, NULL);
    assert_int_equal(called, 1);
    assert_verdict(r, "sched.reach", DOCTOR_FAIL);
    assert_int_equal(doctor_exit_code(r), 1);
    assert_null(doctor_get(r, doctor_count(r)));

    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    doctor_print(r, mem);
    fclose(mem);
    /* ids padded to the longest ("wsl.gpu_enabled", 15), fix lines indented under summaries */
    assert_contains(text, "WARN  wsl.network      nat networking (wslinfo)");
    assert_contains(text, "FAIL  sched.reach      scheduler 10.0.0.1:7420 unreachable\n"
                          "                       fix: open TCP 7420 on the scheduler\n");
    char totals[80];
    snprintf(totals, sizeof totals, "%d pass, %d warn, 1 fail, %d info\n",
             doctor_tally(r, DOCTOR_PASS), doctor_tally(r, DOCTOR_WARN),
             doctor_tally(r, DOCTOR_INFO));
    assert_contains(text, totals);
    free(text);

    cJSON *j = doctor_to_json(r);
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    j = cJSON_Parse(s);
    free(s);
    assert_non_null(j);
    cJSON *checks = cJSON_GetObjectItem(j, "checks");
    assert_int_equal(cJSON_GetArraySize(checks), doctor_count(r));
    cJSON *last = cJSON_GetArrayItem(checks, doctor_count(r) - 1);
    assert_string_equal(cJSON_GetObjectItem(last, "id")->valuestring, "sched.reach");
    assert_string_equal(cJSON_GetObjectItem(last, "verdict")->valuestring, "fail");
    assert_int_equal(cJSON_GetObjectItem(j, "exit_code")->valueint, 1);
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "counts"), "fail")->valueint, 1);
    assert_string_equal(cJSON_GetObjectItem(j, "nccl_profile")->valuestring, "no-shm-no-p2p");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "nccl_env")), 2);
    assert_string_equal(
        cJSON_GetObjectItem(cJSON_GetObjectItem(j, "node"), "net_mode")->valuestring, "nat");
    cJSON *gpus = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "gpus"), "gpus");
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(gpus, 0), "uuid")->valuestring,
                        "GPU-11111111-2222-3333-4444-555555555555");
    cJSON_Delete(j);
    doctor_destroy(&r);
}

static void
test_shm_stale_and_cleanup(void **state)
{
    (void) state;
    char root[4096], p[4200];
    copy_fixture("wsl-mirrored", root, sizeof root);
    write_file(root, "/dev/shm/nccl-aaaaaa", "stale segment of a killed rank", 3600);
    write_file(root, "/dev/shm/nccl-bbbbbb", "mapped", 3600);
    write_file(root, "/dev/shm/nccl-cccccc", "open", 3600);
    write_file(root, "/dev/shm/nccl-dddddd", "young", 0);
    write_file(root, "/dev/shm/other-file", "not ours", 3600);
    mkdirs(root, "/dev/shm/nccl-dir");
    mkdirs(root, "/proc/100");
    write_file(root, "/proc/100/maps",
               "7f00-7f10 rw-s 00000000 00:1a 42 /dev/shm/nccl-bbbbbb (deleted)\n", 0);
    mkdirs(root, "/proc/101/fd");
    snprintf(p, sizeof p, "%s/proc/101/fd/5", root);
    assert_int_equal(symlink("/dev/shm/nccl-cccccc", p), 0);

    int count = -1;
    int64_t bytes = -1;
    assert_int_equal(node_stale_nccl_shm(root, 60, &count, &bytes, NULL), 0);
    assert_int_equal(count, 1);
    assert_int_equal(bytes, (int64_t) strlen("stale segment of a killed rank"));
    assert_int_equal(node_stale_nccl_shm(root, 0, &count, NULL, NULL), 0);
    assert_int_equal(count, 2); /* the young one too */

    doctor_report_t *r = doctor_run(root, NULL, NULL);
    assert_verdict(r, "shm.stale", DOCTOR_WARN);
    assert_contains(must_find(r, "shm.stale")->summary, "1 stale /dev/shm/nccl-* file ");
    doctor_destroy(&r);

    assert_int_equal(node_cleanup_nccl_shm(root, 60, NULL), 1);
    snprintf(p, sizeof p, "%s/dev/shm/nccl-aaaaaa", root);
    assert_int_equal(access(p, F_OK), -1);
    static const char *const kept[] = {"nccl-bbbbbb", "nccl-cccccc", "nccl-dddddd", "other-file",
                                       "nccl-dir"};
    for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++) {
        snprintf(p, sizeof p, "%s/dev/shm/%s", root, kept[i]);
        assert_int_equal(access(p, F_OK), 0);
    }
    assert_int_equal(node_cleanup_nccl_shm(root, 60, NULL), 0);

    wq_error_t err = {0};
    assert_int_equal(node_cleanup_nccl_shm(FX("wsl1"), 60, &err), -1);
    assert_int_equal(err.code, WQ_ESYS);
    remove_copy(root);
}

/* DirectML's pieces: the adapters libdxcore lists, and a warning when libd3d12 is missing. */
static void
test_doctor_directml(void **state)
{
    (void) state;
    setenv("WSLQ_DXCORE_LIB", FAKE_DXCORE, 1);
    wq_error_t err = {0};
    doctor_report_t *r = doctor_run(FX("wsl-mirrored"), NULL, &err);
    assert_non_null(r);
    assert_verdict(r, "gpu.directml", DOCTOR_WARN);
    assert_contains(must_find(r, "gpu.directml")->summary,
                    "2 DirectX adapters: NVIDIA GeForce RTX 4090 (NVIDIA, 24564 MiB), AMD Radeon "
                    "RX 7900 XTX (AMD, 24560 MiB); libd3d12.so missing");
    doctor_destroy(&r);
    unsetenv("WSLQ_DXCORE_LIB");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_facts_mirrored, reset_env),
        cmocka_unit_test_setup(test_facts_nat_wslinfo, reset_env),
        cmocka_unit_test_setup(test_facts_nat_guess, reset_env),
        cmocka_unit_test_setup(test_facts_override, reset_env),
        cmocka_unit_test_setup(test_facts_plain, reset_env),
        cmocka_unit_test_setup(test_facts_wsl1_and_errors, reset_env),
        cmocka_unit_test_setup(test_facts_json, reset_env),
        cmocka_unit_test_setup(test_gpu_fake, reset_env),
        cmocka_unit_test_setup(test_gpu_absent, reset_env),
        cmocka_unit_test_setup(test_gpu_init_fail, reset_env),
        cmocka_unit_test_setup(test_gpu_cuda_variants, reset_env),
        cmocka_unit_test_setup(test_caps_and_nccl_version, reset_env),
        cmocka_unit_test_setup(test_doctor_mirrored, reset_env),
        cmocka_unit_test_setup(test_doctor_directml, reset_env),
        cmocka_unit_test_setup(test_doctor_nat, reset_env),
        cmocka_unit_test_setup(test_doctor_linux_driver, reset_env),
        cmocka_unit_test_setup(test_doctor_wsl1_and_plain, reset_env),
        cmocka_unit_test_setup(test_doctor_gpu_verdicts, reset_env),
        cmocka_unit_test_setup(test_nccl_profile, reset_env),
        cmocka_unit_test_setup(test_doctor_iface_override_and_wslconfig_env, reset_env),
        cmocka_unit_test_setup(test_doctor_hook_print_json, reset_env),
        cmocka_unit_test_setup(test_shm_stale_and_cleanup, reset_env),
        cmocka_unit_test_setup(test_doctor_containers, reset_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
