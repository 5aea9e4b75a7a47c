/* The doctor's gpu.tdr check: Windows' TDR delay (HKLM\System\CurrentControlSet\Control\
 * GraphicsDrivers TdrDelay, seconds, 2 when absent), read with `reg.exe query` through WSL
 * interop. A CUDA kernel that runs longer than it is stopped by a GPU reset, and its job
 * fails (worker/tdr.h). */
#ifndef WSLQ_NODE_TDRDELAY_H
#define WSLQ_NODE_TDRDELAY_H

#include <stddef.h>

#include "node/doctor.h"

#define TDR_DELAY_DEFAULT_S 2 /* Windows' TdrDelay when the value is absent */

/* Parse `reg.exe query <key> /v TdrDelay` output (its exit code rc): 1 with *delay_s set,
 * 0 when the value is absent (Windows' default applies), -1 when the output makes no sense.
 * Pure. */
int tdr_delay_parse(const char *out, int rc, int *delay_s);

/* reg.exe: the first on PATH, else root's /mnt/c/Windows/System32/reg.exe; 0 and out set,
 * or -1 when there is none. */
int tdr_reg_exe(const char *root, char *out, size_t size);

/* Add gpu.tdr when reg.exe can be found (nothing otherwise, but INFO on WSL). */
void doctor_check_tdr(doctor_report_t *r, const char *root);

#endif
