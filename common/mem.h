/* Allocation that aborts on out-of-memory: a scheduler that has run out of heap has no useful
 * way to recover. Sizes from outside are checked against limits before they get here. */
#ifndef WSLQ_MEM_H
#define WSLQ_MEM_H

#include <stddef.h>

void *wq_malloc(size_t n);            /* Caller owns the result. */
void *wq_calloc(size_t n, size_t sz); /* Caller owns the result. */
void *wq_realloc(void *p, size_t n);  /* Caller owns the result. */
char *wq_strdup(const char *s);       /* NULL in, NULL out. Caller owns the result. */
char *wq_strndup(const char *s, size_t n);

/* printf into a new string. Caller owns the result. */
char *wq_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
