/* wslq doctor --scheduler-host: checks of the scheduler host (cmd_doctor.c runs them; the pure
 * parts are here so cli_unit_test can reach them).
 *
 * Check ids (stable):
 *   sched.config  sched.process  sched.answers  sched.listen  sched.http  time.ntp
 *   time.nodes  state.disk  state.db  state.dir  keys.server  keys.http_token
 * Verdicts and printing are node/doctor.h's (PASS/WARN/FAIL/INFO, exit 1 on a FAIL). */
#ifndef WSLQ_CLI_DOCTOR_SCHED_H
#define WSLQ_CLI_DOCTOR_SCHED_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cli/cli.h"
#include "node/doctor.h"

/* The [scheduler] section's keys the checks need, with the scheduler's own defaults. */
typedef struct dsched_conf {
    char path[4096];       /* the config file read, "" none */
    int found;             /* the file has a [scheduler] section */
    char listen[512];      /* ZeroMQ endpoint; default every address, port 7420 */
    char state_dir[4096];  /* "/var/lib/wslq/scheduler" */
    char http[512];        /* "127.0.0.1:7421" or "off" */
    char http_token[4096]; /* http_token_file, "" none */
    int http_public;       /* http_public = summary */
    int insecure;          /* insecure = yes */
} dsched_conf_t;

/* Defaults, then the [scheduler] section of path (a missing file: defaults, found = 0).
 * Returns 0, or -1 with err when the file cannot be read or parsed. */
int dsched_conf_load(dsched_conf_t *c, const char *path, wq_error_t *err);

/* Split "tcp://HOST:PORT" ("*" and "0.0.0.0" are every address; "[v6]" too). host gets
 * HOST without brackets. Returns 0, or -1 when it is not tcp:// with a port. */
int dsched_endpoint(const char *ep, char *host, size_t hsize, unsigned *port);

/* 1 when host names this machine only: 127.0.0.0/8, localhost, ::1. */
int dsched_is_loopback(const char *host);

/* 1 when host is every address: "*", "0.0.0.0", "::", "". */
int dsched_is_any(const char *host);

/* What `timedatectl show -p NTPSynchronized` printed: 1 yes, 0 no, -1 not that line. */
int dsched_ntp_parse(const char *out);

/* A key file's mode: DOCTOR_PASS when only its owner may read it, DOCTOR_FAIL when group or
 * others may (why says which, with the mode in octal). */
doctor_verdict_t dsched_key_mode(mode_t mode, char *why, size_t size);

/* The first 100 bytes of an SQLite database: 0 with *user_version (the schema as of the last
 * WAL checkpoint), or -1 when it is not one (fewer bytes, another magic). */
int dsched_sqlite_header(const unsigned char *hdr, size_t n, uint32_t *user_version);

/* Free space verdict: FAIL under 100 MiB, WARN under 1 GiB or 5 %, else PASS. */
doctor_verdict_t dsched_disk_verdict(uint64_t avail_bytes, uint64_t total_bytes);

/* Run every check and print them (json: {"scheduler":{..},"checks":[..],"counts":{..},
 * "exit_code":n}). config: the file whose [scheduler] section describes this host's
 * scheduler (NULL: $WSLQ_SYSTEM_CONFIG, else /etc/wslq/wslq.conf); lan: comma-separated
 * addresses other PCs reach this host by (NULL: each non-loopback IPv4 address). Returns the
 * exit code: CLI_OK, CLI_FAIL (a FAIL), CLI_USAGE (the config cannot be read). */
int doctor_sched_run(cli_ctx_t *ctx, const char *config, const char *lan, int json);

#endif
