/* A rank's start between fork and exec, shared by the worker's own spawn (launch.c) and the
 * rank keeper (rank.c, keeper.h): system calls only, no allocation and no writes to the
 * parent's memory (a vfork child shares it). Compiled into both programs. */
#ifndef WSLQ_WORKER_CHILDEXEC_H
#define WSLQ_WORKER_CHILDEXEC_H

#include "worker/isol.h"
#include "worker/runas.h"

/* What a rank's child needs. exe NULL = the program was not found (ENOENT reported). */
typedef struct child_spec {
    const char *cwd;
    const char *exe;
    char **argv;
    char **envp;
    int nullfd;               /* stdin */
    int outfd;                /* stdout and stderr */
    int errw;                 /* the error pipe's write end ({stage, errno} on failure) */
    int keep_errw;            /* 1: errw stays open across the exec (wslq-rank reports on it) */
    const runas_acct_t *acct; /* the account to switch to, NULL = none */
    const isol_cpus_t *cpus;  /* CPU affinity, NULL = none */
    int procs_fd;             /* the job cgroup's procs file, -1 = none */
    const int *ignored;       /* the only signals not at their default (the parent ignores */
    int nignored;             /* them, none caught); NULL = reset every one */
} child_spec_t;

/* In the child: cgroup and affinity, a new session, the standard descriptors, signals reset
 * (mask empty, every disposition default: the ignored ones, or all 64 when the parent cannot
 * say which; a caught one is reset by the exec itself), the switch to the account, chdir, exec. On
 * failure {stage, errno} goes to errw (stage 1 chdir, 2 exec, enum runas_stage for the switch) and
 * the child exits 1 (chdir), 127 (not found) or 126. */
_Noreturn void child_exec(const child_spec_t *c);

#endif
