/* A job that failed because Windows reset the GPU (TDR: the display driver's watchdog stops a
 * GPU that did not answer within TdrDelay, default 2 s). Two signs, either enough:
 *   - the CUDA or DirectX driver's message in the tail of the job's output (tdr_scan);
 *   - the reporter's TDR event count (the owner file's "tdr": {"events"}) rose while the job ran.
 * Only a job that ended non-zero is looked at; the scheduler ends it GPU_RESET (retried like a
 * lost node: spec.retries) with the reason "GPU reset by Windows (TDR) on NODE: WHY". */
#ifndef WSLQ_WORKER_TDR_H
#define WSLQ_WORKER_TDR_H

#include <stddef.h>
#include <stdint.h>

#define TDR_SCAN_TAIL (64 * 1024) /* bytes at the end of the output that are read */

/* 1 if text (len bytes, need not be NUL-terminated) has a line with a GPU reset message; why
 * gets "<what> in the job's output: <that line, shortened>" (one line). 0 if none. Pure. */
int tdr_scan(const char *text, size_t len, char *why, size_t whylen);

/* tdr_scan over the last TDR_SCAN_TAIL bytes of the file open at fd (read with pread). */
int tdr_scan_fd(int fd, char *why, size_t whylen);

struct worker;
struct job;

/* The reporter's TDR event count now, from a new read of the owner file: -1 when there is no
 * fresh report or it has no count. The read becomes the worker's last (its owner state, the
 * next heartbeat's report, the count a launch within TDR_REUSE_MS takes): a job launched
 * after another's end starts from the count that end saw, not from an older heartbeat's, so a
 * reset that end was told of is never laid on the next job too. For a job's end. */
int64_t tdr_events_now(struct worker *w);

/* How old the worker's last read of the owner file (a heartbeat's, a failed job end's) may be
 * for a job's launch to take the count from it instead of reading the file again. On WSL 2
 * the file is on the Windows drive (/mnt/c), where every open is a round trip to Windows, and
 * the reporter writes it every 5 s by default: a read younger than that is about as fresh as
 * the file. */
#define TDR_REUSE_MS 5000

/* The count as tdr_events_now, from the last read of the owner file (a heartbeat's, the
 * Register's or a job end's) when it is younger than TDR_REUSE_MS, else from a new one (which
 * becomes the last). For a job's launch. */
int64_t tdr_events_recent(struct worker *w);

/* At a job's end: set j->gpu_reset and j->gpu_reset_why if it failed with a GPU reset. */
void tdr_check_end(struct worker *w, struct job *j);

#endif
