/* Parsers for values people type: integers, durations ("90", "10m", "1:30:00", "2-00:00:00"),
 * sizes ("512M", "4G"). Each rejects trailing junk, overflow and negatives, and fills *err
 * with a one-line reason naming what was wrong. */
#ifndef WSLQ_PARSE_H
#define WSLQ_PARSE_H

#include <stdint.h>

#include "common/err.h"

/* Decimal integer in [min, max]. 'what' names the value in the error ("--gpus"). */
int wq_parse_int(
    const char *s, int64_t min, int64_t max, const char *what, int64_t *out, wq_error_t *err);

/* Duration to seconds. Bare numbers are minutes (as in Slurm's --time); suffixes s, m, h, d;
 * also [D-]HH:MM:SS and MM:SS. Zero is allowed (no limit). */
int wq_parse_duration(const char *s, const char *what, int64_t *seconds, wq_error_t *err);

/* Size to MiB. Bare numbers are MiB; suffixes K, M, G, T (powers of 1024), optional "B"/"iB". */
int wq_parse_size_mb(const char *s, const char *what, int64_t *mib, wq_error_t *err);

/* Format seconds as [D-]HH:MM:SS (Slurm style) into buf. */
const char *wq_format_duration(int64_t seconds, char *buf, unsigned len);

/* Format MiB as "512M" / "15.6G" into buf. */
const char *wq_format_size_mb(int64_t mib, char *buf, unsigned len);

#endif
