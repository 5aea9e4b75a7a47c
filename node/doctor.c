/* wslq doctor: the checks that can run inside the distro (DESIGN.md §10); see doctor.h. */
#include "node/doctor.h"

#include <dirent.h>
#include <glob.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/mem.h"
#include "node/containers.h"
#include "node/dxcore.h"
#include "node/node_internal.h"
#include "node/tdrdelay.h"

#define NCCL_MIN         21200 /* NCCL 2.12.0: first release NVIDIA lists for WSL */
#define DRIVER_IPC_MIN   510   /* legacy CUDA IPC on WSL from R510 (CUDA on WSL guide §2.1) */
#define GPU_FREE_WARN_MB 1024

struct doctor_report {
    node_facts_t facts;
    gpu_set_t *gpus;
    doctor_check_t *checks;
    int n, cap;
    const char *profile;
};

static const char FIX_MIRRORED[] =
    "on Windows 11 22H2+ set [wsl2] networkingMode=mirrored in %UserProfile%\\.wslconfig "
    "(deploy/windows/install-node.ps1), then wsl.exe --shutdown";

doctor_check_t *
doctor_add(
    doctor_report_t *r, const char *id, doctor_verdict_t v, const char *fix, const char *fmt, ...)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 32;
        r->checks = wq_realloc(r->checks, (size_t) r->cap * sizeof *r->checks);
    }
    doctor_check_t *c = &r->checks[r->n++];
    memset(c, 0, sizeof *c);
    node_copy(c->id, sizeof c->id, id);
    c->verdict = v;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->summary, sizeof c->summary, fmt, ap);
    va_end(ap);
    if (fix)
        node_copy(c->fix, sizeof c->fix, fix);
    return c;
}

static void fixf(doctor_check_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
fixf(doctor_check_t *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->fix, sizeof c->fix, fmt, ap);
    va_end(ap);
}

/* ---- helpers ---------------------------------------------------------------------------- */

static int
exists(const char *root, const char *path)
{
    char p[4096];
    return node_path(p, sizeof p, root, path) && access(p, F_OK) == 0;
}

/* The Windows user's .wslconfig, read through the C: drive mount (WSL automounts it at
 * /mnt/c unless [automount] says otherwise). $WSLQ_WSLCONFIG overrides. Returns 1 found
 * (path in out), 0 C: mounted but no file, -1 C: not reachable. */
static int
find_wslconfig(const char *root, char *out, size_t size)
{
    const char *env = getenv("WSLQ_WSLCONFIG");
    if (env && env[0]) {
        node_copy(out, size, env);
        return access(env, R_OK) == 0 ? 1 : 0;
    }
    char users[4096], pat[4200];
    if (!node_path(users, sizeof users, root, "/mnt/c/Users") || access(users, R_OK) != 0)
        return -1;
    snprintf(pat, sizeof pat, "%s/*/.wslconfig", users);
    glob_t g;
    int found = 0;
    if (glob(pat, 0, NULL, &g) == 0) {
        /* Several accounts may have one; prefer a file that disables the idle timeout
         * (the lab's service account, as install-node.ps1 writes it). */
        for (size_t i = 0; i < g.gl_pathc && found < 2; i++) {
            char v[64];
            int has =
                node_ini_get(g.gl_pathv[i], "general", "instanceIdleTimeout", v, sizeof v) == 1;
            if (!found || has) {
                node_copy(out, size, g.gl_pathv[i]);
                found = has ? 2 : 1;
            }
        }
        globfree(&g);
    }
    return found ? 1 : 0;
}

static int
version_cmp(const char *v, int maj, int min, int pat)
{
    int a = 0, b = 0, c = 0;
    if (sscanf(v, "%d.%d.%d", &a, &b, &c) < 1)
        return 0;
    if (a != maj)
        return a < maj ? -1 : 1;
    if (b != min)
        return b < min ? -1 : 1;
    return c < pat ? -1 : c > pat;
}

static int
is_driver_pkg(const char *p)
{
    static const char *const prefixes[] = {"nvidia-driver",  "libnvidia-compute-", "nvidia-dkms-",
                                           "nvidia-kernel-", "cuda-drivers",       "libnvidia-gl-"};
    static const char *const exact[] = {"cuda", "libcuda1", "libnvidia-ml1", "nvidia-kernel-dkms"};
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
        if (strncmp(p, prefixes[i], strlen(prefixes[i])) == 0)
            return 1;
    for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++)
        if (strcmp(p, exact[i]) == 0)
            return 1;
    /* cuda-12-4, cuda-13-0: meta-packages that pull cuda-drivers; cuda-toolkit-* is fine */
    int a, b, n = 0;
    if (sscanf(p, "cuda-%d-%d%n", &a, &b, &n) == 2 && p[n] == '\0')
        return 1;
    return 0;
}

/* Installed Linux NVIDIA driver packages from the dpkg status file, space-separated. */
static int
dpkg_driver_pkgs(const char *root, char *out, size_t size)
{
    char p[4096], line[1024], pkg[256] = "";
    int n = 0;
    out[0] = '\0';
    FILE *f = node_path(p, sizeof p, root, "/var/lib/dpkg/status") ? fopen(p, "r") : NULL;
    if (!f)
        return 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (strncmp(line, "Package: ", 9) == 0) {
            node_copy(pkg, sizeof pkg, line + 9);
        } else if (strncmp(line, "Status: ", 8) == 0 && strstr(line, " installed") &&
                   !strstr(line, "not-installed") && is_driver_pkg(pkg)) {
            size_t len = strlen(out);
            snprintf(out + len, size - len, "%s%s", len ? " " : "", pkg);
            n++;
        } else if (line[0] == '\0') {
            pkg[0] = '\0';
        }
    }
    fclose(f);
    return n;
}

/* A libcuda/libnvidia-ml in the multiarch dir that is not a link into /usr/lib/wsl. */
static int
shadow_file(const char *root, const char *rel)
{
    char p[4096], target[4096];
    struct stat st;
    if (!node_path(p, sizeof p, root, rel) || lstat(p, &st) < 0)
        return 0;
    if (!S_ISLNK(st.st_mode))
        return 1;
    ssize_t n = readlink(p, target, sizeof target - 1);
    if (n <= 0)
        return 1;
    target[n] = '\0';
    return strstr(target, "/usr/lib/wsl/") == NULL;
}

static int
agent_installed(const char *root)
{
    return exists(root, "/etc/systemd/system/wslq-worker.service") ||
           exists(root, "/lib/systemd/system/wslq-worker.service") ||
           exists(root, "/usr/lib/systemd/system/wslq-worker.service");
}

static void
time_daemons(const char *root, char *out, size_t size)
{
    static const char *const names[] = {"chronyd", "ntpd", "systemd-timesyn", "openntpd"};
    char p[4096];
    out[0] = '\0';
    DIR *d = node_path(p, sizeof p, root, "/proc") ? opendir(p) : NULL;
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9')
            continue;
        char rel[300], comm[64];
        snprintf(rel, sizeof rel, "/proc/%s/comm", e->d_name);
        if (node_read_file(root, rel, comm, sizeof comm) <= 0)
            continue;
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
            if (strcmp(comm, names[i]) == 0 && !strstr(out, comm)) {
                size_t len = strlen(out);
                snprintf(out + len, size - len, "%s%s", len ? "," : "", comm);
            }
    }
    closedir(d);
}

/* ---- checks ----------------------------------------------------------------------------- */

static void
check_wsl(doctor_report_t *r, const char *root, int agent)
{
    const node_facts_t *f = &r->facts;
    if (!f->is_wsl) {
        doctor_add(r, "wsl.detect", DOCTOR_INFO, NULL, "not WSL: native Linux, kernel %s",
                   f->kernel[0] ? f->kernel : "unknown");
    } else if (f->wsl_version == 1) {
        doctor_add(r, "wsl.detect", DOCTOR_FAIL,
                   "in Windows: wsl.exe --set-version <distro> 2 (WSL 1 has no GPU, no systemd)",
                   "WSL 1 (kernel %s)", f->kernel);
        return;
    } else {
        doctor_add(r, "wsl.detect", DOCTOR_INFO, NULL, "WSL %d, kernel %s%s",
                   f->wsl_version ? f->wsl_version : 2, f->kernel,
                   f->has_dxg ? ", /dev/dxg present" : "");
    }

    if (f->is_wsl) {
        if (!f->wsl_pkg[0])
            doctor_add(r, "wsl.version", DOCTOR_INFO, "in Windows: wsl.exe --update",
                       "WSL package version unknown (no wslinfo: WSL older than 2.0?)");
        else if (version_cmp(f->wsl_pkg, 2, 0, 0) < 0)
            doctor_add(r, "wsl.version", DOCTOR_WARN, "in Windows: wsl.exe --update",
                       "WSL %s is older than 2.0: no mirrored networking", f->wsl_pkg);
        else
            doctor_add(r, "wsl.version", DOCTOR_PASS, NULL, "WSL %s", f->wsl_pkg);
    }

    /* .wslconfig: idle timeouts, and what networking mode was asked for */
    char cfg[4096], v1[64] = "", v2[64] = "", mode[64] = "";
    int cfg_state = f->is_wsl ? find_wslconfig(root, cfg, sizeof cfg) : -2;
    if (cfg_state == 1) {
        node_ini_get(cfg, "general", "instanceIdleTimeout", v1, sizeof v1);
        node_ini_get(cfg, "wsl2", "vmIdleTimeout", v2, sizeof v2);
        if (node_ini_get(cfg, "wsl2", "networkingMode", mode, sizeof mode) != 1)
            node_ini_get(cfg, "experimental", "networkingMode", mode, sizeof mode);
    }

    if (f->wsl_version == 2) {
        const char *how = f->net_mode_from == NODE_NETMODE_WSLINFO ? "wslinfo"
                          : f->networking_mirrored == 1            ? "loopback0 interface present"
                          : f->networking_mirrored == 0 ? "172.16/12 address, no loopback0"
                                                        : "no wslinfo, no clear sign";
        if (f->networking_mirrored == 1) {
            doctor_add(r, "wsl.network", DOCTOR_PASS, NULL, "mirrored networking (%s)", how);
        } else {
            doctor_check_t *c = doctor_add(
                r, "wsl.network", DOCTOR_WARN, FIX_MIRRORED,
                "%s networking (%s): single-node jobs only%s", f->net_mode, how,
                !strcasecmp(mode, "mirrored")
                    ? "; .wslconfig asks for mirrored, so Windows fell back (Windows 10/Server?)"
                    : "");
            if (!strcasecmp(mode, "mirrored"))
                fixf(c, "mirrored needs Windows 11 22H2+ client and WSL >= 2.0; otherwise keep "
                        "this node for single-node jobs");
        }
    }

    if (f->is_wsl) {
        if (cfg_state == -1) {
            doctor_add(r, "wsl.idle", DOCTOR_INFO,
                       "check %UserProfile%\\.wslconfig by hand, or run install-node.ps1 -Check",
                       "cannot read .wslconfig: C: drive not mounted at /mnt/c");
        } else if (cfg_state == 0) {
            doctor_add(r, "wsl.idle", DOCTOR_WARN,
                       "set [general] instanceIdleTimeout=-1 and [wsl2] vmIdleTimeout=-1 "
                       "(deploy/windows/install-node.ps1)",
                       "no .wslconfig under /mnt/c/Users: WSL stops when idle (15 s / 60 s)");
        } else {
            int ok1 = v1[0] == '-', ok2 = v2[0] == '-';
            if (ok1 && ok2)
                doctor_add(r, "wsl.idle", DOCTOR_PASS, NULL,
                           "idle timeouts disabled (instanceIdleTimeout=%s vmIdleTimeout=%s) in %s",
                           v1, v2, cfg);
            else
                doctor_add(r, "wsl.idle", DOCTOR_WARN,
                           "set [general] instanceIdleTimeout=-1 and [wsl2] vmIdleTimeout=-1 "
                           "(deploy/windows/install-node.ps1), then wsl.exe --shutdown",
                           "WSL will stop when idle: instanceIdleTimeout=%s vmIdleTimeout=%s in %s",
                           v1[0] ? v1 : "(default 15000)", v2[0] ? v2 : "(default 60000)", cfg);
        }
    }

    /* systemd */
    if (f->systemd == 1) {
        doctor_add(r, "wsl.systemd", DOCTOR_PASS, NULL, "systemd is PID 1");
    } else if (f->is_wsl) {
        doctor_verdict_t v = agent ? DOCTOR_FAIL : DOCTOR_WARN;
        if (f->wslconf_systemd == 1)
            doctor_add(r, "wsl.systemd", v, "in Windows: wsl.exe --shutdown, then start the distro",
                       "systemd=true in /etc/wsl.conf but PID 1 is %s: restart WSL",
                       f->pid1[0] ? f->pid1 : "unknown");
        else
            doctor_add(r, "wsl.systemd", v,
                       "add [boot] systemd=true to /etc/wsl.conf (deploy/wsl/install.sh), then "
                       "wsl.exe --shutdown",
                       "systemd is off (PID 1 is %s)%s", f->pid1[0] ? f->pid1 : "unknown",
                       agent ? " but wslq-worker.service is installed" : "");
    } else {
        doctor_add(r, "wsl.systemd", agent ? DOCTOR_WARN : DOCTOR_INFO, NULL,
                   "PID 1 is %s, not systemd: run wslq-worker under another supervisor",
                   f->pid1[0] ? f->pid1 : "unknown");
    }

    if (f->is_wsl) {
        if (f->wslconf_gpu == 0)
            doctor_add(r, "wsl.gpu_enabled", DOCTOR_FAIL,
                       "remove [gpu] enabled=false from /etc/wsl.conf, then wsl.exe --shutdown",
                       "GPU access disabled in /etc/wsl.conf");
        else
            doctor_add(r, "wsl.gpu_enabled", DOCTOR_PASS, NULL,
                       "GPU access enabled for the distro");
    }
}

/* DirectML's pieces (any DirectX 12 GPU, --gpu-type dx): libdxcore and its adapters,
 * libd3d12. Never a failure: CUDA jobs do not need them. */
static void
check_directml(doctor_report_t *r, const char *root)
{
    dx_adapter_t a[DX_MAX_ADAPTERS];
    char why[256] = "", names[512] = "";
    int n = dx_adapters(root, a, DX_MAX_ADAPTERS, why, sizeof why);
    size_t len = 0;
    for (int i = 0; i < n && len + 8 < sizeof names; i++)
        len +=
            (size_t) snprintf(names + len, sizeof names - len, "%s%s (%s, %llu MiB)", i ? ", " : "",
                              a[i].name, a[i].vendor, (unsigned long long) a[i].mem_mb);
    int d3d12 = exists(root, "/usr/lib/wsl/lib/libd3d12.so");
    if (n < 0)
        doctor_add(r, "gpu.directml", DOCTOR_INFO,
                   "in Windows: wsl.exe --update (libdxcore.so comes with WSL)",
                   "DirectML GPUs (--gpu-type dx) unavailable: %s", why);
    else if (n == 0)
        doctor_add(r, "gpu.directml", DOCTOR_INFO, NULL,
                   "libdxcore lists no DirectX 12 compute adapter");
    else
        doctor_add(r, "gpu.directml", d3d12 ? DOCTOR_INFO : DOCTOR_WARN,
                   d3d12 ? NULL : "in Windows: wsl.exe --update (libd3d12.so comes with WSL)",
                   "%d DirectX adapter%s: %s; libd3d12.so %s", n, n == 1 ? "" : "s", names,
                   d3d12 ? "present" : "missing");
}

static void
check_gpu_files(doctor_report_t *r, const char *root)
{
    const node_facts_t *f = &r->facts;
    if (f->wsl_version != 2)
        return;
    if (f->has_wsl_libcuda && f->has_wsl_libnvml)
        doctor_add(r, "gpu.wsl_lib", DOCTOR_PASS, NULL,
                   "/usr/lib/wsl/lib has libcuda.so.1 and libnvidia-ml.so.1");
    else
        doctor_add(r, "gpu.wsl_lib", DOCTOR_FAIL,
                   "install the NVIDIA Windows driver (R495+, WDDM mode) on the PC, then "
                   "wsl.exe --shutdown",
                   "/usr/lib/wsl/lib lacks%s%s: the Windows driver exposes no CUDA to WSL",
                   f->has_wsl_libcuda ? "" : " libcuda.so.1",
                   f->has_wsl_libnvml ? "" : " libnvidia-ml.so.1");
    if (f->has_dxg)
        doctor_add(r, "gpu.dxg", DOCTOR_PASS, NULL, "/dev/dxg present (GPU paravirtualisation)");
    else
        doctor_add(r, "gpu.dxg", DOCTOR_FAIL,
                   "in Windows: wsl.exe --update and update the GPU driver; check [wsl2] "
                   "gpuSupport in .wslconfig",
                   "no /dev/dxg: the VM has no GPU");
    check_directml(r, root);

    char pkgs[512], what[768] = "";
    int npkg = dpkg_driver_pkgs(root, pkgs, sizeof pkgs);
    if (npkg)
        snprintf(what, sizeof what, "packages %s", pkgs);
    static const char *const libs[] = {"/usr/lib/x86_64-linux-gnu/libcuda.so.1",
                                       "/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1"};
    for (size_t i = 0; i < 2; i++)
        if (shadow_file(root, libs[i])) {
            size_t len = strlen(what);
            snprintf(what + len, sizeof what - len, "%s%s", len ? ", " : "", libs[i]);
        }
    const char *loaded = r->gpus ? gpu_nvml_path(r->gpus) : "";
    const char *forced = getenv("WSLQ_NVML_LIB");
    if (loaded[0] && !(forced && forced[0]) && strncmp(loaded, "/usr/lib/wsl/", 13) != 0) {
        size_t len = strlen(what);
        snprintf(what + len, sizeof what - len, "%sNVML loaded from %s", len ? ", " : "", loaded);
    }
    if (what[0]) {
        doctor_check_t *c =
            doctor_add(r, "gpu.shadow", DOCTOR_FAIL, NULL,
                       "Linux NVIDIA driver inside WSL shadows the Windows one: %s", what);
        if (npkg)
            fixf(c, "sudo apt-get purge %s (keep only cuda-toolkit-* from the WSL-Ubuntu repo)",
                 pkgs);
        else
            fixf(c, "remove the listed files (a CUDA runfile driver?); WSL provides them in "
                    "/usr/lib/wsl/lib");
    } else {
        doctor_add(r, "gpu.shadow", DOCTOR_PASS, NULL, "no Linux NVIDIA driver installed in WSL");
    }
}

static void
check_gpus(doctor_report_t *r)
{
    const node_facts_t *f = &r->facts;
    const gpu_set_t *g = r->gpus;
    if (!g)
        return;
    int wsl = f->is_wsl;
    const char *why = gpu_absent_reason(g);
    int n = gpu_count(g);
    if (!gpu_nvml_loaded(g)) {
        if (wsl)
            doctor_add(r, "gpu.nvml", DOCTOR_FAIL,
                       "install the NVIDIA Windows driver; run the worker with /usr/lib/wsl/lib "
                       "readable",
                       "no NVML: %s", why ? why : "not loaded");
        else
            doctor_add(r, "gpu.nvml", DOCTOR_INFO, NULL, "no NVIDIA GPU: %s",
                       why ? why : "NVML not loaded");
        return;
    }
    if (!gpu_nvml_ok(g)) {
        doctor_add(
            r, "gpu.nvml", wsl ? DOCTOR_FAIL : DOCTOR_WARN,
            wsl ? "update the Windows NVIDIA driver; purge Linux driver packages (gpu.shadow)"
                : "check the NVIDIA driver (nvidia-smi)",
            "%s (library %s)", why ? why : "NVML failed", gpu_nvml_path(g));
        return;
    }
    doctor_add(
        r, "gpu.nvml", n > 0 ? DOCTOR_PASS : (wsl ? DOCTOR_WARN : DOCTOR_INFO),
        n > 0 || !wsl ? NULL : "check the GPU is in WDDM mode (not TCC) in Windows nvidia-smi",
        "NVML driver %s, %d GPU%s (%s)", gpu_driver_version(g)[0] ? gpu_driver_version(g) : "?", n,
        n == 1 ? "" : "s", gpu_nvml_path(g));
    if (n == 0)
        return;

    int cc = gpu_cuda_count(g), mapped = 0;
    for (int i = 0; i < n; i++)
        mapped += gpu_get(g, i)->cuda_ordinal >= 0;
    int cv = gpu_cuda_driver_version(g);
    if (cc < 0)
        doctor_add(r, "gpu.cuda", DOCTOR_FAIL,
                   "check that libcuda.so.1 resolves to /usr/lib/wsl/lib (gpu.shadow)",
                   "CUDA driver API unusable: %s", gpu_cuda_error(g));
    else if (cc != n || mapped != n)
        doctor_add(r, "gpu.cuda", DOCTOR_FAIL,
                   "CUDA and NVML disagree: check for a second driver (gpu.shadow) and "
                   "CUDA_VISIBLE_DEVICES in the worker's environment",
                   "CUDA sees %d GPU%s, NVML %d; %d matched by UUID", cc, cc == 1 ? "" : "s", n,
                   mapped);
    else
        doctor_add(r, "gpu.cuda", DOCTOR_PASS, NULL,
                   "CUDA %d.%d sees %d GPU%s, all matched to NVML by UUID", cv / 1000,
                   (cv % 1000) / 10, cc, cc == 1 ? "" : "s");

    for (int i = 0; i < n; i++) {
        const gpu_info_t *d = gpu_get(g, i);
        char id[48], caps[128];
        snprintf(id, sizeof id, "gpu.%d", d->index);
        gpu_caps_string(d->caps, caps, sizeof caps);
        int low = d->mem_free_mb >= 0 && d->mem_free_mb < GPU_FREE_WARN_MB;
        doctor_add(r, id, low ? DOCTOR_WARN : DOCTOR_INFO,
                   low ? "close Windows applications using the GPU, or lower jobs' memory" : NULL,
                   "%s %s: %lld/%lld MiB free%s; caps %s", d->name[0] ? d->name : "?",
                   d->uuid[0] ? d->uuid : "(no uuid)", (long long) d->mem_free_mb,
                   (long long) d->mem_total_mb,
                   d->display_active == 1 ? ", drives a display (shared, TDR 2 s)" : "", caps);
    }
    if (wsl)
        doctor_add(r, "gpu.pinned", DOCTOR_INFO,
                   "in job code prefer pin_memory=False on WSL; jobs get WSLQ_PINNED_OK=0",
                   "pinned host memory is limited on WSL (often under 1 GiB); not measured");
}

static void
check_nccl(doctor_report_t *r)
{
    const node_facts_t *f = &r->facts;
    int n = gpu_count(r->gpus);
    const char *lib = NULL;
    int v = gpu_nccl_version(&lib);
    int maj = v >= 10000 ? v / 10000 : v / 1000;
    int min = v >= 10000 ? (v % 10000) / 100 : (v % 1000) / 100;
    int pat = v % 100;
    if (v == 0) {
        if (n > 0)
            doctor_add(r, "nccl.version", DOCTOR_INFO,
                       "jobs bring their own NCCL >= 2.12 (PyTorch wheels do), or apt install "
                       "libnccl2",
                       "%s not on the library path", lib);
    } else if (v < NCCL_MIN) {
        doctor_add(r, "nccl.version", f->is_wsl ? DOCTOR_FAIL : DOCTOR_WARN,
                   "install NCCL >= 2.12 (libnccl2 from the CUDA repo)",
                   "NCCL %d.%d.%d is older than 2.12 (no WSL support)", maj, min, pat);
    } else {
        doctor_add(r, "nccl.version", DOCTOR_PASS, NULL, "NCCL %d.%d.%d (%s)", maj, min, pat, lib);
    }
    if (n > 0) {
        const char *const *env = doctor_nccl_env(r->profile);
        char buf[200] = "";
        for (size_t i = 0; env[i]; i++) {
            size_t len = strlen(buf);
            snprintf(buf + len, sizeof buf - len, "%s%s", i ? " " : "", env[i]);
        }
        doctor_add(r, "nccl.profile", DOCTOR_INFO, NULL, "profile %s%s%s", r->profile,
                   buf[0] ? ": " : "", buf);
    }
}

static void
check_shm(doctor_report_t *r, const char *root, int64_t age)
{
    const node_facts_t *f = &r->facts;
    int64_t need = 1024 * (gpu_count(r->gpus) > 1 ? gpu_count(r->gpus) : 1);
    if (f->shm_tmpfs == 0)
        doctor_add(r, "shm.size", DOCTOR_WARN, "mount a tmpfs on /dev/shm",
                   "/dev/shm is not a tmpfs");
    else if (f->shm_free_mb < 0)
        doctor_add(r, "shm.size", DOCTOR_INFO, NULL, "/dev/shm size unknown");
    else if (f->shm_free_mb < need)
        doctor_add(r, "shm.size", DOCTOR_WARN,
                   "raise [wsl2] memory in .wslconfig (tmpfs is half the VM's RAM) or remove "
                   "files in /dev/shm",
                   "/dev/shm has %lld MiB free, want %lld (1 GiB per GPU)",
                   (long long) f->shm_free_mb, (long long) need);
    else
        doctor_add(r, "shm.size", DOCTOR_PASS, NULL, "/dev/shm %lld MiB free of %lld",
                   (long long) f->shm_free_mb, (long long) f->shm_total_mb);

    int count = 0;
    int64_t bytes = 0;
    if (node_stale_nccl_shm(root, age, &count, &bytes, NULL) < 0)
        doctor_add(r, "shm.stale", DOCTOR_INFO, NULL, "/dev/shm not readable");
    else if (count > 0)
        doctor_add(r, "shm.stale", DOCTOR_WARN,
                   "wslq-node-facts --clean-shm (the worker also cleans after each job)",
                   "%d stale /dev/shm/nccl-* file%s (%lld MiB) left by killed jobs", count,
                   count == 1 ? "" : "s", (long long) (bytes >> 20));
    else
        doctor_add(r, "shm.stale", DOCTOR_PASS, NULL, "no stale /dev/shm/nccl-* files");
}

static void
check_net(doctor_report_t *r, const char *root, const doctor_opts_t *o)
{
    const node_facts_t *f = &r->facts;
    static const char *const from[] = {"none", "configured", "default route", "first up"};
    if (f->ip[0]) {
        doctor_add(r, "net.iface", DOCTOR_PASS, NULL, "%s %s/%d mtu %d (%s)", f->iface, f->ip,
                   f->prefix_len, f->mtu, from[f->iface_from & 3]);
    } else if (o && o->iface && o->iface[0]) {
        doctor_add(r, "net.iface", DOCTOR_FAIL,
                   "set the worker's iface to an interface with a LAN IPv4 (ip -4 addr)",
                   "configured interface %s has no IPv4 address", o->iface);
    } else {
        doctor_add(r, "net.iface", f->is_wsl ? DOCTOR_FAIL : DOCTOR_WARN,
                   "connect the PC to the lab LAN; in WSL use mirrored networking",
                   "no interface with a non-loopback IPv4 address");
    }
    if (f->port_lo > 0)
        doctor_add(r, "net.ports", DOCTOR_INFO, NULL, "ephemeral ports %d-%d%s", f->port_lo,
                   f->port_hi,
                   f->networking_mirrored == 1
                       ? " (WSL's block moves between boots; firewall must cover it)"
                       : "");
    if (f->hostname[0])
        doctor_add(r, "net.hostname", DOCTOR_INFO, NULL, "hostname %s %s", f->hostname,
                   f->hostname_loopback ? "maps to loopback in /etc/hosts; wslq advertises the IP"
                                        : "does not map to loopback");
    if (f->is_wsl) {
        char d[128];
        time_daemons(root, d, sizeof d);
        if (d[0])
            doctor_add(r, "time.daemon", DOCTOR_INFO,
                       "WSL syncs the clock from the host; stop it if wslq reports a clock offset",
                       "time daemon running in the distro: %s", d);
    }
}

/* ---- report ----------------------------------------------------------------------------- */

doctor_report_t *
doctor_run(const char *root, const doctor_opts_t *opts, wq_error_t *err)
{
    doctor_opts_t dflt = DOCTOR_OPTS_INIT;
    const doctor_opts_t *o = opts ? opts : &dflt;
    doctor_report_t *r = wq_calloc(1, sizeof *r);
    if (node_facts_read(root, o->iface, &r->facts, err) < 0) {
        free(r);
        return NULL;
    }
    if (!o->skip_gpu) {
        r->gpus = gpu_open(root, err);
        if (!r->gpus) {
            free(r);
            return NULL;
        }
    }
    r->profile = doctor_nccl_profile(&r->facts, r->gpus);
    int agent = o->agent_installed >= 0 ? o->agent_installed : agent_installed(root);

    check_wsl(r, root, agent);
    if (!(r->facts.is_wsl && r->facts.wsl_version == 1)) {
        check_gpu_files(r, root);
        check_gpus(r);
        check_nccl(r);
        check_shm(r, root, o->shm_stale_age_s > 0 ? o->shm_stale_age_s : 60);
        const node_facts_t *f = &r->facts;
        doctor_add(r, "vm.resources", DOCTOR_INFO, NULL,
                   "%d CPUs, %lld MiB RAM (%lld available), %lld MiB swap", f->cpus,
                   (long long) f->mem_total_mb, (long long) f->mem_avail_mb,
                   (long long) f->swap_total_mb);
        check_net(r, root, o);
        doctor_check_containers(r, root);
        doctor_check_tdr(r, root);
    }
    if (o->hook)
        o->hook(r, o->hook_ctx);
    return r;
}

int
doctor_count(const doctor_report_t *r)
{
    return r->n;
}

const doctor_check_t *
doctor_get(const doctor_report_t *r, int i)
{
    return i >= 0 && i < r->n ? &r->checks[i] : NULL;
}

const doctor_check_t *
doctor_find(const doctor_report_t *r, const char *id)
{
    for (int i = 0; i < r->n; i++)
        if (strcmp(r->checks[i].id, id) == 0)
            return &r->checks[i];
    return NULL;
}

int
doctor_tally(const doctor_report_t *r, doctor_verdict_t v)
{
    int n = 0;
    for (int i = 0; i < r->n; i++)
        n += r->checks[i].verdict == v;
    return n;
}

const node_facts_t *
doctor_facts(const doctor_report_t *r)
{
    return &r->facts;
}

const gpu_set_t *
doctor_gpus(const doctor_report_t *r)
{
    return r->gpus;
}

const char *
doctor_verdict_name(doctor_verdict_t v)
{
    switch (v) {
    case DOCTOR_PASS:
        return "PASS";
    case DOCTOR_WARN:
        return "WARN";
    case DOCTOR_FAIL:
        return "FAIL";
    case DOCTOR_INFO:
        return "INFO";
    }
    return "?";
}

void
doctor_print(const doctor_report_t *r, FILE *out)
{
    int w = 0;
    for (int i = 0; i < r->n; i++) {
        int l = (int) strlen(r->checks[i].id);
        w = l > w ? l : w;
    }
    for (int i = 0; i < r->n; i++) {
        const doctor_check_t *c = &r->checks[i];
        fprintf(out, "%-4s  %-*s  %s\n", doctor_verdict_name(c->verdict), w, c->id, c->summary);
        if (c->fix[0])
            fprintf(out, "%-4s  %-*s  fix: %s\n", "", w, "", c->fix);
    }
    fprintf(out, "%d pass, %d warn, %d fail, %d info\n", doctor_tally(r, DOCTOR_PASS),
            doctor_tally(r, DOCTOR_WARN), doctor_tally(r, DOCTOR_FAIL),
            doctor_tally(r, DOCTOR_INFO));
}

cJSON *
doctor_to_json(const doctor_report_t *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "node", node_facts_to_json(&r->facts));
    if (r->gpus)
        cJSON_AddItemToObject(o, "gpus", gpu_set_to_json(r->gpus));
    else
        cJSON_AddNullToObject(o, "gpus");
    cJSON_AddStringToObject(o, "nccl_profile", r->profile);
    cJSON *env = cJSON_AddArrayToObject(o, "nccl_env");
    for (const char *const *e = doctor_nccl_env(r->profile); *e; e++)
        cJSON_AddItemToArray(env, cJSON_CreateString(*e));
    doctor_checks_to_json(r, o);
    return o;
}

void
doctor_checks_to_json(const doctor_report_t *r, cJSON *o)
{
    static const char *const lower[] = {"pass", "warn", "fail", "info"};
    cJSON *arr = cJSON_AddArrayToObject(o, "checks");
    for (int i = 0; i < r->n; i++) {
        const doctor_check_t *c = &r->checks[i];
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "id", c->id);
        cJSON_AddStringToObject(j, "verdict", lower[c->verdict & 3]);
        cJSON_AddStringToObject(j, "summary", c->summary);
        cJSON_AddStringToObject(j, "fix", c->fix);
        cJSON_AddItemToArray(arr, j);
    }
    cJSON *counts = cJSON_AddObjectToObject(o, "counts");
    for (int v = 0; v < 4; v++)
        cJSON_AddNumberToObject(counts, lower[v], doctor_tally(r, (doctor_verdict_t) v));
    cJSON_AddNumberToObject(o, "exit_code", doctor_exit_code(r));
}

int
doctor_exit_code(const doctor_report_t *r)
{
    return doctor_tally(r, DOCTOR_FAIL) > 0 ? 1 : 0;
}

const char *
doctor_nccl_profile(const node_facts_t *facts, const gpu_set_t *gpus)
{
    if (!facts || !facts->is_wsl || gpu_count(gpus) < 2)
        return "default";
    int major = gpu_driver_major(gpus);
    if (gpu_cuda_p2p_all(gpus) == 0 || (major > 0 && major < DRIVER_IPC_MIN))
        return "no-shm-no-p2p";
    return "no-shm";
}

const char *const *
doctor_nccl_env(const char *profile)
{
    static const char *const none[] = {NULL};
    static const char *const no_shm[] = {"NCCL_SHM_DISABLE=1", NULL};
    static const char *const no_shm_p2p[] = {"NCCL_SHM_DISABLE=1", "NCCL_P2P_DISABLE=1", NULL};
    if (profile && strcmp(profile, "no-shm") == 0)
        return no_shm;
    if (profile && strcmp(profile, "no-shm-no-p2p") == 0)
        return no_shm_p2p;
    return none;
}

const char *
doctor_report_nccl_profile(const doctor_report_t *r)
{
    return r->profile;
}

void
doctor_destroy(doctor_report_t **rp)
{
    if (!rp || !*rp)
        return;
    gpu_close(&(*rp)->gpus);
    free((*rp)->checks);
    free(*rp);
    *rp = NULL;
}

doctor_report_t *
doctor_report_new(void)
{
    doctor_report_t *r = wq_calloc(1, sizeof *r);
    r->profile = "default";
    return r;
}
