/* File system helpers shared by the programs. */
#ifndef WSLQ_FS_H
#define WSLQ_FS_H

#include <sys/types.h>

#include "common/err.h"

/* Create 'path' and every missing parent, each with 'mode' (less the umask), as `mkdir -p`
 * does. Existing directories along the way are fine; an empty path, a path of PATH_MAX bytes
 * or more, or a 'path' that exists but is not a directory (after symlinks) is an error.
 * Returns 0, or -1 with *err ("cannot create /a/b: Permission denied", naming the first
 * component that failed). Directories created before a failure are left in place. */
int wq_mkdir_p(const char *path, mode_t mode, wq_error_t *err);

/* Raise this process's open-file limit to its hard limit (1,024 by default is too few for a
 * scheduler with many peers or a worker with many ranks). Returns the soft limit now in force,
 * or -1 if it cannot be read. */
long wq_raise_fd_limit(void);

#endif
