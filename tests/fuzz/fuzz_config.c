/* Fuzz target: the worker's INI config file (worker/config.c: wcfg_load(), inih's
 * ini_parse_file() and every key's parser in wcfg_set()). The input is the file's contents;
 * it is written to this process's temporary folder and loaded over the defaults.
 *
 * The scheduler's [scheduler] section is parsed by static functions inside scheduler/main.c
 * that cannot be reached without its main(), so it has no target of its own; its value
 * parsers (durations, the listen address) are covered by fuzz_submit.c and fuzz_http.c.
 *
 * Checked beyond "no crash, no leak, no undefined behaviour": a refused file says why, naming
 * the file; a loaded one leaves every field in its documented range (config.h). */
#include <string.h>

#include "tests/fuzz/fuzz.h"
#include "worker/config.h"

static wcfg_t defaults; /* filled once: they read the environment and the hostname */

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void) argc;
    (void) argv;
    wcfg_defaults(&defaults);
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_write_file("worker.conf", data, size);
    wcfg_t c = defaults;
    wq_error_t err = {0};
    if (wcfg_load(&c, path, &err) < 0) {
        FUZZ_CHECK(strstr(err.text, "worker.conf") != NULL);
        return 0;
    }
    FUZZ_CHECK(memchr(c.scheduler, '\0', sizeof c.scheduler) != NULL);
    FUZZ_CHECK(memchr(c.state_dir, '\0', sizeof c.state_dir) != NULL);
    FUZZ_CHECK(memchr(c.iface, '\0', sizeof c.iface) != NULL);
    FUZZ_CHECK(memchr(c.ip, '\0', sizeof c.ip) != NULL);
    FUZZ_CHECK(strncmp(c.scheduler, "tcp://", 6) == 0 || strncmp(c.scheduler, "ipc://", 6) == 0);
    FUZZ_CHECK(c.state_dir[0] == '/');
    if (strcmp(c.name, defaults.name) != 0)
        FUZZ_CHECK(wcfg_valid_name(c.name));
    FUZZ_CHECK(c.gpus >= -1 && c.gpus <= WIRE_MAX_GPUS);
    FUZZ_CHECK(c.cpus >= 0 && c.cpus <= WIRE_MAX_CPUS);
    FUZZ_CHECK(c.mem_mb >= 0);
    FUZZ_CHECK(c.heartbeat_ms >= 50 && c.heartbeat_ms <= 60000);
    FUZZ_CHECK(c.kill_grace_ms >= 0 && c.kill_grace_ms <= 3600000);
    FUZZ_CHECK(c.spool_keep_days >= 0 && c.spool_keep_days <= 3650);
    FUZZ_CHECK(c.probe_port >= 0 && c.probe_port <= 65535);
    FUZZ_CHECK(c.rendezvous == 0 || c.rendezvous == 1);
    FUZZ_CHECK(c.inbound_ok >= -1 && c.inbound_ok <= 1);
    return 0;
}
