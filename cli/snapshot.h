/* wslq submit --workdir: pack the directory (its .gitignore and .wslqignore honoured, .git
 * left out), check it against the scheduler's limit, and upload it in chunks unless the
 * scheduler has it already (same content, same SHA-256). */
#ifndef WSLQ_CLI_SNAPSHOT_H
#define WSLQ_CLI_SNAPSHOT_H

#include "cli/client.h"
#include "cli/submit.h"

/* Pack and upload dir; *hash (64 hex + NUL, caller frees) names it for JobSpec.workdir_hash.
 * Prints one line to stderr (files, size, uploaded or already stored). 0, or -1 with *err:
 * over the limit ("... is 150.0 MiB, over the scheduler's limit of 100.0 MiB
 * (workdir_max_mb); biggest: data/ 140.0 MiB, ..."), unreadable, or the scheduler's refusal. */
int cli_snapshot_upload(client_t *c, const char *dir, char **hash, wq_error_t *err);

/* Download every node's --output archive of job id and unpack each into dest/<node>/.
 * Prints what it fetched; nodes whose output did not come are named on stderr. */
int cli_fetch_output(client_t *c, uint64_t id, const char *dest, wq_error_t *err);

#endif
