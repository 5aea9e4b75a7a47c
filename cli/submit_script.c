/* wslq submit with a batch script: the script read (a file here that starts with "#!",
 * sent with the job), and its #WSLQ directive lines split into words and applied as options
 * (submit_opts.c), each error naming the script and line. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/submit_int.h"
#include "common/mem.h"

/* Split a directive's text into words: blanks separate them, '...' and "..." quote, a word
 * starting with '#' ends the line. 0, or -1 with *err. */
static int
split_words(const char *t, strlist_t *out, wq_error_t *err)
{
    size_t n = strlen(t);
    char *w = wq_malloc(n + 1);
    size_t i = 0;
    int rc = 0;
    for (;;) {
        while (t[i] == ' ' || t[i] == '\t' || t[i] == '\r')
            i++;
        if (t[i] == '\0' || t[i] == '#')
            break;
        size_t k = 0;
        while (t[i] != '\0' && t[i] != ' ' && t[i] != '\t' && t[i] != '\r') {
            if (t[i] == '\'' || t[i] == '"') {
                char q = t[i++];
                while (t[i] != '\0' && t[i] != q)
                    w[k++] = t[i++];
                if (t[i] != q) {
                    rc = wq_fail(err, WQ_EINVAL, "unterminated %s quote",
                                 q == '"' ? "double" : "single");
                    goto out;
                }
                i++;
            } else {
                w[k++] = t[i++];
            }
        }
        w[k] = '\0';
        submit_strlist_push(out, wq_strdup(w));
    }
out:
    free(w);
    return rc;
}

/* A directive line "#WSLQ ...": the text after the tag, or NULL when the line is not one.
 * *bad is set for "#WSLQsomething". */
static const char *
directive(const char *line, int *bad)
{
    *bad = 0;
    if (strncmp(line, "#WSLQ", 5) != 0)
        return NULL;
    if (line[5] != '\0' && line[5] != ' ' && line[5] != '\t' && line[5] != '\r') {
        *bad = 1;
        return NULL;
    }
    return line + 5;
}

int
submit_script_read(const char *path, char **text, size_t *len, wq_error_t *err)
{
    *text = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return 0;
    struct stat st;
    char head[2];
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || pread(fd, head, 2, 0) != 2 ||
        head[0] != '#' || head[1] != '!') {
        close(fd);
        return 0;
    }
    if (st.st_size > WIRE_MAX_SCRIPT) {
        close(fd);
        return wq_fail(err, WQ_ELIMIT,
                       "%.200s: %lld bytes; a batch script is sent with the job and may have at "
                       "most %u",
                       path, (long long) st.st_size, WIRE_MAX_SCRIPT);
    }
    char *buf = wq_malloc((size_t) st.st_size + 1);
    size_t got = 0;
    while (got < (size_t) st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t) st.st_size - got);
        if (r < 0) {
            int e = errno;
            close(fd);
            free(buf);
            errno = e;
            return wq_fail_errno(err, "cannot read %.200s", path);
        }
        if (r == 0)
            break;
        got += (size_t) r;
    }
    close(fd);
    buf[got] = '\0';
    *text = buf;
    *len = got;
    return 1;
}

int
submit_script_options(cli_ctx_t *ctx,
                      const char *path,
                      const char *text,
                      size_t len,
                      sub_t *o,
                      submit_args_t *a,
                      wq_error_t *err)
{
    size_t pos = 0;
    int line = 0, first_cmd = 0, rc = 0;
    while (pos < len && rc == 0) {
        size_t e = pos;
        while (e < len && text[e] != '\n')
            e++;
        char *l = wq_strndup(text + pos, e - pos);
        pos = e + 1;
        line++;
        int bad;
        const char *d = directive(l, &bad);
        if (bad) {
            rc = wq_fail(err, WQ_EINVAL,
                         "%.200s:%d: '%.20s' is not a directive; write '#WSLQ --OPTION'", path,
                         line, l);
        } else if (d != NULL && first_cmd) {
            rc = wq_fail(err, WQ_EINVAL,
                         "%.200s:%d: #WSLQ after the first command (line %d) would be ignored; "
                         "move it above",
                         path, line, first_cmd);
        } else if (d != NULL) {
            size_t first = o->words.n;
            wq_error_t e2 = {0};
            if (split_words(d, &o->words, &e2) < 0) {
                rc = wq_fail(err, WQ_EINVAL, "%.200s:%d: %s", path, line, e2.text);
            } else {
                int nw = (int) (o->words.n - first);
                char **v = wq_calloc((size_t) nw + 1, sizeof *v);
                v[0] = (char *) "submit";
                for (int i = 0; i < nw; i++)
                    v[i + 1] = o->words.v[first + (size_t) i];
                if (submit_apply_words(ctx, o, a, nw + 1, v, &e2) < 0)
                    rc = wq_fail(err, WQ_EINVAL, "%.200s:%d: %s", path, line, e2.text);
                free(v);
            }
        } else if (!first_cmd && line > 1) {
            const char *c = l;
            while (*c == ' ' || *c == '\t' || *c == '\r')
                c++;
            if (*c != '\0' && *c != '#')
                first_cmd = line;
        }
        free(l);
    }
    return rc;
}
