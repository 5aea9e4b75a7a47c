/* Helpers shared by the files of node; not part of the library's interface. */
#ifndef WSLQ_NODE_INTERNAL_H
#define WSLQ_NODE_INTERNAL_H

#include <stddef.h>

/* Copy src into dst[size], truncating; always NUL-terminated when size > 0. */
void node_copy(char *dst, size_t size, const char *src);

/* 1 if needle occurs in hay, ignoring ASCII case. */
int node_ci_contains(const char *hay, const char *needle);

/* Value of key in [section] of an INI file (wsl.conf, .wslconfig), case-insensitive names,
 * trailing "# comment" and surrounding quotes removed; the last occurrence wins. Returns 1
 * found, 0 not found, -1 file unreadable. */
int node_ini_get(const char *file, const char *section, const char *key, char *out, size_t size);

/* 1 for true/yes/on/1, 0 for false/no/off/0, -1 otherwise (case-insensitive). */
int node_parse_bool(const char *s);

/* Run argv[0] (an absolute path) with a deadline, capturing the first line of stdout in
 * out. Returns the exit status, or -1 if it could not run or timed out. */
int node_run_line(const char *const argv[], int timeout_ms, char *out, size_t size);
/* The same, capturing all of stdout (at most size - 1 bytes; the rest is read and dropped). */
int node_run_output(const char *const argv[], int timeout_ms, char *out, size_t size);

#endif
