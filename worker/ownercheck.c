/* owner.reporter (see ownercheck.h). */
#include "worker/ownercheck.h"

#include <stdio.h>
#include <string.h>

Wslq__CheckVerdict
owner_check(const char *file,
            int policy,
            const char *owner_user,
            const owner_limits_t *lim,
            int64_t now,
            char *summary,
            size_t summary_len,
            char *fix,
            size_t fix_len)
{
    char pol[96];
    snprintf(pol, sizeof pol, "owner policy %s%s%.40s", owner_policy_name(policy),
             owner_user && owner_user[0] ? ", owner_user " : "", owner_user ? owner_user : "");
    fix[0] = '\0';
    if (file == NULL || file[0] == '\0') {
        if (policy == OWNER_IGNORE) {
            snprintf(summary, summary_len, "%s; no owner_file: the PC's owner is not looked at",
                     pol);
            return WSLQ__CHECK_VERDICT__CHECK_INFO;
        }
        snprintf(summary, summary_len,
                 "%s but no owner_file: the owner is always unknown, so no job is placed here",
                 pol);
        snprintf(fix, fix_len,
                 "install the reporter (deploy/windows/install-node.ps1) and set owner_file = "
                 "/mnt/c/ProgramData/wslq/owner.json");
        return WSLQ__CHECK_VERDICT__CHECK_WARN;
    }
    owner_report_t rep;
    char why[256];
    enum owner_state st = owner_read(file, now, lim, &rep, why, sizeof why);
    if (st != OWNER_UNKNOWN || (rep.version == OWNER_FORMAT_VERSION && rep.time > 0 &&
                                now - rep.time <= lim->stale_s && rep.time - now <= lim->stale_s)) {
        char tdr[64] = "";
        if (rep.tdr_events >= 0)
            snprintf(tdr, sizeof tdr, ", %lld TDR event%s since boot", (long long) rep.tdr_events,
                     rep.tdr_events == 1 ? "" : "s");
        snprintf(summary, summary_len, "%s; reporter file fresh (%lld s old)%s: owner %s (%.100s)",
                 pol, (long long) (now > rep.time ? now - rep.time : 0), tdr, owner_state_name(st),
                 why);
        return WSLQ__CHECK_VERDICT__CHECK_PASS;
    }
    snprintf(summary, summary_len, "%s; %.180s", pol, why);
    snprintf(fix, fix_len,
             "is the wslq-owner logon task running on Windows? (Task Scheduler; "
             "deploy/windows/README.md)");
    /* ignore does not use the owner: a broken reporter only matters to the other policies */
    return policy == OWNER_IGNORE ? WSLQ__CHECK_VERDICT__CHECK_INFO
                                  : WSLQ__CHECK_VERDICT__CHECK_WARN;
}
