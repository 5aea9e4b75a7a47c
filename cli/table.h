/* Text tables for listings: columns sized to their content, cells truncated with "…" past a
 * column's maximum width, no trailing spaces. Widths count UTF-8 code points. */
#ifndef WSLQ_CLI_TABLE_H
#define WSLQ_CLI_TABLE_H

#include <stdio.h>

typedef struct table table_t;

/* A table with ncols columns named by headers (copied). Caller owns the result. */
table_t *table_new(int ncols, const char *const *headers);

/* Cells of column 'col' longer than 'width' code points are cut to width-1 plus "…". */
void table_set_max(table_t *t, int col, int width);

/* Right-align column 'col' (numbers). */
void table_set_right(table_t *t, int col);

/* Start a new row; table_cellf fills its cells left to right (missing cells print empty). */
void table_row(table_t *t);
void table_cellf(table_t *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

int table_rows(const table_t *t);

/* Print the header (unless no_header) and rows, each line prefixed with 'indent' spaces,
 * columns separated by two spaces. */
void table_print(const table_t *t, FILE *out, int indent, int no_header);

/* Free and NULL *tp. NULL-safe. */
void table_destroy(table_t **tp);

/* Code points in a UTF-8 string (continuation bytes not counted). */
size_t table_width(const char *s);

#endif
