/* Node facts and GPUs (see sysinfo.h). */
#include "worker/sysinfo.h"

#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "node/doctor.h"
#include "node/dxcore.h"
#include "node/facts.h"
#include "node/gpu.h"

/* Run wslq doctor's checks once: their verdicts go to the scheduler in Register.checks and
 * the NCCL profile into every job's environment. */
static void
run_doctor(sysinfo_t *si, const char *iface)
{
    static const char *const no_env[] = {NULL};
    snprintf(si->nccl_profile, sizeof si->nccl_profile, "default");
    si->nccl_env = no_env;
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
    static const Wslq__CheckVerdict verdicts[] = {
        [DOCTOR_PASS] = WSLQ__CHECK_VERDICT__CHECK_PASS,
        [DOCTOR_WARN] = WSLQ__CHECK_VERDICT__CHECK_WARN,
        [DOCTOR_FAIL] = WSLQ__CHECK_VERDICT__CHECK_FAIL,
        [DOCTOR_INFO] = WSLQ__CHECK_VERDICT__CHECK_INFO,
    };
    for (int i = 0; i < doctor_count(r) && si->n_checks < SYSINFO_MAX_CHECKS; i++) {
        const doctor_check_t *c = doctor_get(r, i);
        sysinfo_check_t *o = &si->checks[si->n_checks++];
        snprintf(o->id, sizeof o->id, "%s", c->id);
        o->verdict = verdicts[c->verdict];
        snprintf(o->summary, sizeof o->summary, "%s", c->summary);
        snprintf(o->fix, sizeof o->fix, "%s", c->fix);
    }
    log_info("doctor checks pass=%d warn=%d fail=%d nccl_profile=%s", doctor_tally(r, DOCTOR_PASS),
             doctor_tally(r, DOCTOR_WARN), doctor_tally(r, DOCTOR_FAIL), si->nccl_profile);
    doctor_destroy(&r);
}

void
sysinfo_cleanup_nccl_shm(void)
{
    wq_error_t err = {0};
    if (node_cleanup_nccl_shm("/", 60, &err) < 0)
        log_flag(WORKER, "nccl shm cleanup failed err=\"%s\"", err.text);
}

/* DirectX adapters (libdxcore): an NVIDIA one is the NVML GPU of the same name (the first not
 * matched yet) and gets its LUID; any other becomes a GPU of kind "dx" after the NVML ones. */
static void
discover_dx(sysinfo_t *si)
{
    dx_adapter_t a[DX_MAX_ADAPTERS];
    char why[256] = "";
    int n = dx_adapters("/", a, DX_MAX_ADAPTERS, why, sizeof why);
    if (n < 0) {
        log_flag(WORKER, "no DirectX adapters: %s", why);
        return;
    }
    uint32_t next = 0;
    for (int i = 0; i < si->ngpus; i++)
        if (si->gpus[i].index >= next)
            next = si->gpus[i].index + 1;
    int k = 0;
    for (int i = 0; i < n && k < 16; i++) {
        snprintf(si->dx_luid_buf[k], sizeof si->dx_luid_buf[k], "%s", a[i].luid);
        si->dx_order[k] = si->dx_luid_buf[k];
        k++;
        if (a[i].vendor_id == 0x10de) {
            for (int g = 0; g < si->ngpus; g++)
                if (!si->gpus[g].dx && si->gpus[g].luid[0] == '\0' &&
                    strcmp(si->gpus[g].name, a[i].name) == 0) {
                    snprintf(si->gpus[g].luid, sizeof si->gpus[g].luid, "%s", a[i].luid);
                    break;
                }
            continue;
        }
        if (si->ngpus >= WIRE_MAX_GPUS || next >= WIRE_MAX_GPUS)
            continue;
        sysinfo_gpu_t *o = &si->gpus[si->ngpus++];
        memset(o, 0, sizeof *o);
        o->index = next++;
        o->dx = 1;
        snprintf(o->uuid, sizeof o->uuid, "DX-%s", a[i].luid);
        snprintf(o->name, sizeof o->name, "%.95s", a[i].name);
        snprintf(o->luid, sizeof o->luid, "%s", a[i].luid);
        snprintf(o->vendor, sizeof o->vendor, "%s", a[i].vendor);
        o->mem_total_mb = a[i].mem_mb;
        o->temp_c = o->util_pct = o->power_w = -1;
        log_info("DirectX GPU index=%u name=\"%s\" vendor=%s mem_mb=%llu luid=%s", o->index,
                 o->name, o->vendor, (unsigned long long) o->mem_total_mb, o->luid);
    }
    si->dx_order[k] = NULL;
}

void
sysinfo_open(sysinfo_t *si, const char *node, int declared_gpus, const char *iface)
{
    memset(si, 0, sizeof *si);
    node_facts_t facts;
    wq_error_t err = {0};
    if (node_facts_read("/", iface, &facts, &err) == 0) {
        snprintf(si->hostname, sizeof si->hostname, "%s", facts.hostname);
        snprintf(si->iface, sizeof si->iface, "%s", facts.iface);
        snprintf(si->ip, sizeof si->ip, "%s", facts.ip);
        si->cpus = facts.cpus > 0 ? facts.cpus : 1;
        si->mem_mb = facts.mem_total_mb > 0 ? facts.mem_total_mb : 0;
        si->is_wsl = facts.is_wsl;
        si->inbound_ok = !(facts.is_wsl && facts.networking_mirrored == 0);
    } else {
        /* only when / is not a directory: report what little is certain */
        log_warn("node facts could not be read err=\"%s\"", err.text);
        snprintf(si->hostname, sizeof si->hostname, "unknown");
        si->cpus = 1;
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
                o->cc_major = (uint32_t) g->cc_major;
                o->cc_minor = (uint32_t) g->cc_minor;
            }
            sysinfo_refresh(si);
        }
        discover_dx(si);
    }
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
}

void
sysinfo_note_idle(sysinfo_t *si, uint64_t ours, int unsure, int64_t desktop_mb)
{
    int nvidia = 0;
    sysinfo_gpu_t *only = NULL;
    for (int i = 0; i < si->ngpus; i++) {
        sysinfo_gpu_t *g = &si->gpus[i];
        if (!g->dx && !g->declared && nvidia++ == 0)
            only = g;
        if (!unsure && g->index < 64 && !(ours & (1ULL << g->index)) && g->mem_total_mb > 0)
            g->mem_idle_mb = g->mem_used_mb;
    }
    if (nvidia == 1 && desktop_mb > 0 && (uint64_t) desktop_mb > only->mem_idle_mb)
        only->mem_idle_mb = (uint64_t) desktop_mb;
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
        m->mem_idle_used_mb = g->mem_idle_mb;
        m->temp_c = g->temp_c;
        m->util_pct = g->util_pct;
        m->power_w = g->power_w;
        m->declared = g->declared;
        m->cc_major = g->cc_major;
        m->cc_minor = g->cc_minor;
        m->kind = (char *) (g->dx ? "dx" : "");
        m->luid = (char *) g->luid;
        m->vendor = (char *) g->vendor;
        ptrs[i] = m;
    }
}

void
sysinfo_close(sysinfo_t *si)
{
    gpu_set_t *gs = si->gpuset;
    gpu_close(&gs);
    si->gpuset = NULL;
}
