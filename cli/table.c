/* Text tables; see table.h. */
#include "cli/table.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"

struct table {
    int ncols;
    char **headers; /* ncols */
    int *max;       /* per column: 0 = unlimited */
    int *right;     /* per column: 1 = right-aligned */
    char **cells;   /* rows * ncols, NULL = empty */
    int rows;
    int cap_rows;
    int cur_col; /* next cell of the last row */
};

table_t *
table_new(int ncols, const char *const *headers)
{
    table_t *t = wq_calloc(1, sizeof *t);
    t->ncols = ncols;
    t->headers = wq_calloc((size_t) ncols, sizeof *t->headers);
    t->max = wq_calloc((size_t) ncols, sizeof *t->max);
    t->right = wq_calloc((size_t) ncols, sizeof *t->right);
    for (int i = 0; i < ncols; i++)
        t->headers[i] = wq_strdup(headers[i]);
    return t;
}

void
table_set_max(table_t *t, int col, int width)
{
    if (col >= 0 && col < t->ncols)
        t->max[col] = width > 1 ? width : 2;
}

void
table_set_right(table_t *t, int col)
{
    if (col >= 0 && col < t->ncols)
        t->right[col] = 1;
}

void
table_row(table_t *t)
{
    if (t->rows == t->cap_rows) {
        int cap = t->cap_rows ? t->cap_rows * 2 : 16;
        t->cells = wq_realloc(t->cells, (size_t) cap * (size_t) t->ncols * sizeof *t->cells);
        memset(t->cells + (size_t) t->cap_rows * (size_t) t->ncols, 0,
               (size_t) (cap - t->cap_rows) * (size_t) t->ncols * sizeof *t->cells);
        t->cap_rows = cap;
    }
    t->rows++;
    t->cur_col = 0;
}

size_t
table_width(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char) *s & 0xC0) != 0x80)
            n++;
    return n;
}

/* A copy of s cut to 'max' code points, the last one replaced by "…". Caller owns it. */
static char *
truncate_cell(const char *s, int max)
{
    if (max <= 0 || table_width(s) <= (size_t) max)
        return wq_strdup(s);
    size_t keep = 0, cps = 0;
    while (s[keep] != '\0') {
        if (((unsigned char) s[keep] & 0xC0) != 0x80) {
            if (cps == (size_t) max - 1)
                break;
            cps++;
        }
        keep++;
    }
    char *out = wq_malloc(keep + sizeof "…");
    memcpy(out, s, keep);
    memcpy(out + keep, "…", sizeof "…");
    return out;
}

void
table_cellf(table_t *t, const char *fmt, ...)
{
    if (t->rows == 0 || t->cur_col >= t->ncols)
        return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    /* Control characters (a job name with a newline) would break the layout. */
    for (char *p = buf; *p; p++)
        if ((unsigned char) *p < 0x20 || *p == 0x7f)
            *p = '?';
    int col = t->cur_col++;
    t->cells[(size_t) (t->rows - 1) * (size_t) t->ncols + (size_t) col] =
        truncate_cell(buf, t->max[col]);
}

int
table_rows(const table_t *t)
{
    return t->rows;
}

static void
print_cell(FILE *out, const char *s, size_t width, int right, int last)
{
    size_t w = table_width(s);
    size_t pad = width > w ? width - w : 0;
    if (right)
        fprintf(out, "%*s", (int) pad, "");
    fputs(s, out);
    if (!right && !last)
        fprintf(out, "%*s", (int) pad, "");
}

void
table_print(const table_t *t, FILE *out, int indent, int no_header)
{
    size_t *width = wq_calloc((size_t) t->ncols, sizeof *width);
    for (int c = 0; c < t->ncols; c++) {
        width[c] = no_header ? 0 : table_width(t->headers[c]);
        for (int r = 0; r < t->rows; r++) {
            const char *s = t->cells[(size_t) r * (size_t) t->ncols + (size_t) c];
            if (s != NULL && table_width(s) > width[c])
                width[c] = table_width(s);
        }
    }
    for (int r = no_header ? 0 : -1; r < t->rows; r++) {
        /* Stop at the last non-empty cell: no trailing spaces. */
        int last = 0;
        for (int c = 0; c < t->ncols; c++) {
            const char *s =
                r < 0 ? t->headers[c] : t->cells[(size_t) r * (size_t) t->ncols + (size_t) c];
            if (s != NULL && s[0] != '\0')
                last = c;
        }
        fprintf(out, "%*s", indent, "");
        for (int c = 0; c <= last; c++) {
            const char *s =
                r < 0 ? t->headers[c] : t->cells[(size_t) r * (size_t) t->ncols + (size_t) c];
            if (c > 0)
                fputs("  ", out);
            print_cell(out, s ? s : "", width[c], t->right[c], c == last);
        }
        fputc('\n', out);
    }
    free(width);
}

void
table_destroy(table_t **tp)
{
    if (tp == NULL || *tp == NULL)
        return;
    table_t *t = *tp;
    for (int i = 0; i < t->ncols; i++)
        free(t->headers[i]);
    for (size_t i = 0; i < (size_t) t->rows * (size_t) t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    free(t->headers);
    free(t->max);
    free(t->right);
    free(t);
    *tp = NULL;
}
