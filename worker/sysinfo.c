/* Node facts and GPUs (see sysinfo.h). */
#include "worker/sysinfo.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"

#ifdef WSLQ_HAVE_NODE
#include "worker/node/doctor.h"
#include "worker/node/gpu.h"
#include "worker/node/probe.h"
#endif

/* Interface of the default route from /proc/net/route, "" if none. */
static void
default_route_iface(char *out, size_t n)
{
    out[0] = '\0';
    FILE *f = fopen("/proc/net/route", "r");
    if (f == NULL)
        return;
    char line[256], ifn[64];
    unsigned long dest;
    while (fgets(line, sizeof line, f) != NULL)
        if (sscanf(line, "%63s %lx", ifn, &dest) == 2 && dest == 0) {
            snprintf(out, n, "%s", ifn);
            break;
        }
    fclose(f);
}

/* The fallback: sysconf, /proc/meminfo, getifaddrs. */
static void
probe_fallback(sysinfo_t *si, const char *iface)
{
    if (gethostname(si->hostname, sizeof si->hostname - 1) < 0)
        snprintf(si->hostname, sizeof si->hostname, "unknown");
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    si->cpus = n > 0 ? (int) n : 1;
    FILE *f = fopen("/proc/meminfo", "r");
    if (f != NULL) {
        char line[256];
        long long kb;
        while (fgets(line, sizeof line, f) != NULL)
            if (sscanf(line, "MemTotal: %lld kB", &kb) == 1) {
                si->mem_mb = kb / 1024;
                break;
            }
        fclose(f);
    }
    char want[64];
    if (iface != NULL && *iface != '\0')
        snprintf(want, sizeof want, "%s", iface);
    else
        default_route_iface(want, sizeof want);
    struct ifaddrs *ifa = NULL;
    if (getifaddrs(&ifa) == 0) {
        for (int pass = 0; pass < 2 && si->ip[0] == '\0'; pass++) {
            for (struct ifaddrs *p = ifa; p != NULL; p = p->ifa_next) {
                if (p->ifa_addr == NULL || p->ifa_addr->sa_family != AF_INET ||
                    (p->ifa_flags & IFF_LOOPBACK) || !(p->ifa_flags & IFF_UP))
                    continue;
                if (strcmp(p->ifa_name, "loopback0") == 0)
                    continue;
                if (pass == 0 && strcmp(p->ifa_name, want) != 0)
                    continue;
                struct sockaddr_in *sin = (struct sockaddr_in *) (void *) p->ifa_addr;
                inet_ntop(AF_INET, &sin->sin_addr, si->ip, sizeof si->ip);
                snprintf(si->iface, sizeof si->iface, "%s", p->ifa_name);
                break;
            }
            if (iface != NULL && *iface != '\0')
                break; /* an override is never replaced by a guess */
        }
        freeifaddrs(ifa);
    }
    if (si->iface[0] == '\0' && iface != NULL)
        snprintf(si->iface, sizeof si->iface, "%s", iface);
    struct stat st;
    si->is_wsl = stat("/dev/dxg", &st) == 0;
    /* WSL in NAT mode hands out 172.16.0.0/12; peers cannot connect in */
    unsigned a, b;
    int nat = si->is_wsl && sscanf(si->ip, "%u.%u.", &a, &b) == 2 && a == 172 && b >= 16 && b < 32;
    si->inbound_ok = !nat;
}

/* Run wslq doctor's checks once: their verdicts become node attributes and the NCCL
 * profile goes into every job's environment. */
static void
run_doctor(sysinfo_t *si, const char *iface)
{
    static const char *const no_env[] = {NULL};
    snprintf(si->nccl_profile, sizeof si->nccl_profile, "default");
    si->nccl_env = no_env;
#ifdef WSLQ_HAVE_NODE
    doctor_opts_t opts = DOCTOR_OPTS_INIT;
    opts.iface = iface && *iface ? iface : NULL;
    wq_error_t err = {0};
    doctor_report_t *r = doctor_run("/", &opts, &err);
    if (r == NULL) {
        log_warn("doctor checks could not run err=\"%s\"", err.text);
        return;
    }
    const char *profile = doctor_report_nccl_profile(r);
    if (profile != NULL) {
        snprintf(si->nccl_profile, sizeof si->nccl_profile, "%s", profile);
        si->nccl_env = doctor_nccl_env(profile);
    }
    for (int i = 0; i < doctor_count(r) && si->n_attrs < SYSINFO_MAX_ATTRS; i++) {
        const doctor_check_t *c = doctor_get(r, i);
        snprintf(si->attr_key[si->n_attrs], sizeof si->attr_key[0], "doctor.%.47s", c->id);
        snprintf(si->attr_val[si->n_attrs], sizeof si->attr_val[0], "%.8s %.200s%s%.100s",
                 doctor_verdict_name(c->verdict), c->summary, c->fix[0] ? " | fix: " : "", c->fix);
        si->n_attrs++;
    }
    log_info("doctor checks pass=%d warn=%d fail=%d nccl_profile=%s", doctor_tally(r, DOCTOR_PASS),
             doctor_tally(r, DOCTOR_WARN), doctor_tally(r, DOCTOR_FAIL), si->nccl_profile);
    doctor_destroy(&r);
#else
    (void) iface;
#endif
}

void
sysinfo_cleanup_nccl_shm(void)
{
#ifdef WSLQ_HAVE_NODE
    wq_error_t err = {0};
    if (node_cleanup_nccl_shm("/", 60, &err) < 0)
        log_flag(WORKER, "nccl shm cleanup failed err=\"%s\"", err.text);
#endif
}

void
sysinfo_open(sysinfo_t *si, const char *node, int declared_gpus, const char *iface)
{
    memset(si, 0, sizeof *si);
#ifdef WSLQ_HAVE_NODE
    node_facts_t facts;
    wq_error_t err = {0};
    if (node_probe("/", iface, &facts, &err) == 0) {
        snprintf(si->hostname, sizeof si->hostname, "%s", facts.hostname);
        snprintf(si->iface, sizeof si->iface, "%s", facts.iface);
        snprintf(si->ip, sizeof si->ip, "%s", facts.ip);
        si->cpus = facts.cpus > 0 ? facts.cpus : 1;
        si->mem_mb = facts.mem_total_mb > 0 ? facts.mem_total_mb : 0;
        si->is_wsl = facts.is_wsl;
        si->inbound_ok = !(facts.is_wsl && facts.networking_mirrored == 0);
    } else {
        log_warn("node probe failed, using fallback err=\"%s\"", err.text);
        probe_fallback(si, iface);
    }
    if (declared_gpus < 0) {
        gpu_set_t *gs = gpu_open("/", &err);
        if (gs == NULL) {
            snprintf(si->gpu_note, sizeof si->gpu_note, "%s", err.text);
        } else {
            const char *why = gpu_absent_reason(gs);
            if (why != NULL)
                snprintf(si->gpu_note, sizeof si->gpu_note, "%s", why);
            si->gpuset = gs;
            int n = gpu_count(gs);
            for (int i = 0; i < n && i < WIRE_MAX_GPUS; i++) {
                const gpu_info_t *g = gpu_get(gs, i);
                sysinfo_gpu_t *o = &si->gpus[si->ngpus++];
                o->index = (uint32_t) g->index;
                snprintf(o->uuid, sizeof o->uuid, "%s", g->uuid);
                snprintf(o->name, sizeof o->name, "%s", g->name);
            }
            sysinfo_refresh(si);
        }
    }
#else
    probe_fallback(si, iface);
    if (declared_gpus < 0)
        snprintf(si->gpu_note, sizeof si->gpu_note,
                 "built without worker/node: no GPU discovery; use --gpus N");
#endif
    run_doctor(si, iface);
    for (int i = 0; declared_gpus > 0 && i < declared_gpus && i < WIRE_MAX_GPUS; i++) {
        sysinfo_gpu_t *o = &si->gpus[si->ngpus++];
        o->index = (uint32_t) i;
        snprintf(o->uuid, sizeof o->uuid, "DECLARED-%.64s-%d", node, i);
        snprintf(o->name, sizeof o->name, "declared");
        o->temp_c = o->util_pct = o->power_w = -1;
        o->declared = 1;
    }
}

void
sysinfo_refresh(sysinfo_t *si)
{
#ifdef WSLQ_HAVE_NODE
    gpu_set_t *gs = si->gpuset;
    if (gs == NULL)
        return;
    gpu_refresh(gs);
    for (int i = 0; i < si->ngpus; i++) {
        const gpu_info_t *g = gpu_get(gs, i);
        if (g == NULL)
            continue;
        sysinfo_gpu_t *o = &si->gpus[i];
        o->mem_total_mb = g->mem_total_mb > 0 ? (uint64_t) g->mem_total_mb : 0;
        o->mem_used_mb = g->mem_used_mb > 0 ? (uint64_t) g->mem_used_mb : 0;
        o->temp_c = g->temp_c;
        o->util_pct = g->util_pct;
        o->power_w = g->power_w;
    }
#else
    (void) si;
#endif
}

void
sysinfo_gpu_msgs(const sysinfo_t *si, Wslq__GpuInfo *msgs, Wslq__GpuInfo **ptrs)
{
    for (int i = 0; i < si->ngpus; i++) {
        const sysinfo_gpu_t *g = &si->gpus[i];
        Wslq__GpuInfo *m = &msgs[i];
        wslq__gpu_info__init(m);
        m->index = g->index;
        m->uuid = (char *) g->uuid;
        m->name = (char *) g->name;
        m->mem_total_mb = g->mem_total_mb;
        m->mem_used_mb = g->mem_used_mb;
        m->temp_c = g->temp_c;
        m->util_pct = g->util_pct;
        m->power_w = g->power_w;
        m->declared = g->declared;
        ptrs[i] = m;
    }
}

void
sysinfo_close(sysinfo_t *si)
{
#ifdef WSLQ_HAVE_NODE
    gpu_set_t *gs = si->gpuset;
    gpu_close(&gs);
#endif
    si->gpuset = NULL;
}
