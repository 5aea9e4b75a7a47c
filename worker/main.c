/* wslq-worker: flags, then the event loop (worker.c). Exit 0 on SIGTERM, 2 on bad usage,
 * 1 when it cannot start. */
#include <stdio.h>
#include <stdlib.h>

#include "common/fs.h"
#include "common/log.h"
#include "worker/config.h"
#include "worker/creds.h"
#include "worker/worker.h"

int
main(int argc, char **argv)
{
    wq_log_init("wslq-worker");
    wq_raise_fd_limit(); /* every rank's files and rendezvous connections take descriptors */
    wcfg_t cfg;
    enum wcfg_action action;
    wq_error_t err = {0};
    if (wcfg_parse_args(&cfg, argc, argv, &action, &err) < 0) {
        fprintf(stderr, "wslq-worker: %s\n", err.text);
        return 2;
    }
    if (action == WCFG_HELP) {
        fputs(wcfg_usage(), stdout);
        return 0;
    }
    if (action == WCFG_VERSION) {
        printf("wslq-worker %s\n", WSLQ_VERSION);
        return 0;
    }
    keys_creds_t creds;
    if (action == WCFG_JOIN) {
        if (creds_join(&cfg, 15000, &creds, &err) < 0) {
            fprintf(stderr, "wslq-worker: %s\n", err.text);
            return 1;
        }
        printf("Joined the cluster as node %s (scheduler %s); credentials in %s.\n"
               "Start the worker now (systemctl start wslq-worker, or wslq-worker with the "
               "same --state-dir).\n",
               creds.name, creds.scheduler, cfg.credentials);
        return 0;
    }
    if (!cfg.insecure && creds_resolve(&cfg, &creds, &err) < 0) {
        fprintf(stderr, "wslq-worker: %s\n", err.text);
        return 1;
    }
    worker_t *w = worker_new(&cfg, cfg.insecure ? NULL : &creds, &err);
    if (w == NULL) {
        fprintf(stderr, "wslq-worker: %s\n", err.text);
        return 1;
    }
    int rc = worker_run(w);
    worker_destroy(&w);
    return rc == 0 ? 0 : 1;
}
