/* wslq submit --workdir and wslq fetch: the packing, the chunked transfers (snapshot.h). */
#include "cli/snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/limits.h"
#include "common/mem.h"
#include "common/snapignore.h"
#include "common/snaptar.h"

/* what an output archive may unpack to on the fetching machine */
#define FETCH_MAX_BYTES (64ull << 30)

static int
tmp_file(char *path, size_t len, wq_error_t *err)
{
    const char *t = getenv("TMPDIR");
    snprintf(path, len, "%s/wslq-XXXXXX", t && *t ? t : "/tmp");
    int fd = mkstemp(path);
    if (fd < 0)
        return wq_fail_errno(err, "cannot create a temporary file in %s", t && *t ? t : "/tmp");
    close(fd);
    return 0;
}

/* One SnapshotPut; the reply's have and max_bytes. */
static int
put(client_t *c,
    const char *hash,
    uint64_t size,
    uint64_t offset,
    const uint8_t *data,
    size_t len,
    uint64_t *have,
    uint64_t *max,
    wq_error_t *err)
{
    Wslq__SnapshotPut p = WSLQ__SNAPSHOT_PUT__INIT;
    p.hash = (char *) hash;
    p.size = size;
    p.offset = offset;
    p.data.data = (uint8_t *) data;
    p.data.len = len;
    Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
    env.body_case = WSLQ__ENVELOPE__BODY_SNAP_PUT;
    env.snap_put = &p;
    Wslq__Envelope *rep = client_call(c, &env, WSLQ__ENVELOPE__BODY_SNAP_PUT_REPLY, 30000, err);
    if (rep == NULL)
        return -1;
    *have = rep->snap_put_reply->have;
    if (max)
        *max = rep->snap_put_reply->max_bytes;
    wire_free(&rep);
    return 0;
}

static int
upload(
    client_t *c, const char *path, const char *hash, uint64_t size, uint64_t have, wq_error_t *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return wq_fail_errno(err, "cannot read %s", path);
    uint8_t *buf = wq_malloc(WIRE_MAX_SNAP_CHUNK);
    int rc = 0;
    while (rc == 0 && have < size) {
        size_t want =
            size - have < WIRE_MAX_SNAP_CHUNK ? (size_t) (size - have) : WIRE_MAX_SNAP_CHUNK;
        ssize_t r = pread(fd, buf, want, (off_t) have);
        if (r <= 0) {
            rc = wq_fail_errno(err, "cannot read %s", path);
            break;
        }
        uint64_t now_have = 0;
        rc = put(c, hash, size, have, buf, (size_t) r, &now_have, NULL, err);
        if (rc == 0 && now_have != have + (uint64_t) r)
            rc = wq_fail(err, WQ_EPROTO,
                         "the scheduler holds %" PRIu64 " bytes of the snapshot, not %" PRIu64,
                         now_have, have + (uint64_t) r);
        have = now_have;
    }
    free(buf);
    close(fd);
    return rc;
}

int
cli_snapshot_upload(client_t *c, const char *dir, char **hash, wq_error_t *err)
{
    static const char zeros[] = "0000000000000000000000000000000000000000000000000000000000000000";
    uint64_t have = 0, max = 0;
    /* size 0: only the limit */
    if (put(c, zeros, 0, 0, NULL, 0, &have, &max, err) < 0)
        return -1;
    snapignore_t *ig = snapignore_new();
    snapignore_add_text(ig, ".git/\n", 6);
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/.gitignore", dir);
    int rc = snapignore_add_file(ig, p, err);
    snprintf(p, sizeof p, "%s/.wslqignore", dir);
    if (rc == 0)
        rc = snapignore_add_file(ig, p, err);
    char tmp[PATH_MAX];
    if (rc == 0)
        rc = tmp_file(tmp, sizeof tmp, err);
    if (rc < 0) {
        snapignore_free(ig);
        return -1;
    }
    snaptar_stats_t st;
    rc = snaptar_pack(dir, ig, tmp, max, &st, err);
    snapignore_free(ig);
    if (rc < 0) {
        unlink(tmp);
        if (err->code == WQ_ELIMIT && st.bytes > max && max > 0) {
            char a[32], b[32], line[200] = "";
            size_t off = 0;
            for (size_t i = 0; i < st.n_top && off < sizeof line; i++) {
                char s[32];
                off += (size_t) snprintf(line + off, sizeof line - off, "%s%s %s", i ? ", " : "",
                                         st.top[i].name,
                                         snaptar_size_text(st.top[i].bytes, s, sizeof s));
            }
            wq_fail(err, WQ_ELIMIT,
                    "--workdir %s is %s, over the scheduler's limit of %s (workdir_max_mb); "
                    "biggest: %s (leave them out in .wslqignore)",
                    dir, snaptar_size_text(st.bytes, a, sizeof a),
                    snaptar_size_text(max, b, sizeof b), line);
        }
        return -1;
    }
    char hex[65];
    struct stat sb;
    if (snaptar_sha256_file(tmp, hex, err) < 0 || stat(tmp, &sb) < 0) {
        unlink(tmp);
        return wq_fail_errno(err, "cannot read the snapshot %s", tmp);
    }
    uint64_t size = (uint64_t) sb.st_size;
    rc = put(c, hex, size, 0, NULL, 0, &have, NULL, err);
    int stored = rc == 0 && have == size;
    if (rc == 0 && !stored)
        rc = upload(c, tmp, hex, size, have, err);
    unlink(tmp);
    if (rc < 0)
        return -1;
    char a[32], b[32];
    fprintf(stderr, "wslq: --workdir %s: %zu files, %s (%s compressed), %s\n", dir, st.files,
            snaptar_size_text(st.bytes, a, sizeof a), snaptar_size_text(size, b, sizeof b),
            stored ? "already at the scheduler" : "uploaded");
    if (st.skipped > 0)
        fprintf(stderr,
                "wslq: --workdir %s: %zu entries left out (links leading outside it, sockets, "
                "devices, unreadable)\n",
                dir, st.skipped);
    *hash = wq_strdup(hex);
    return 0;
}

/* ---- wslq fetch ---- */

static Wslq__Envelope *
fetch_call(client_t *c, uint64_t id, const char *node, uint64_t offset, wq_error_t *err)
{
    Wslq__FetchRequest f = WSLQ__FETCH_REQUEST__INIT;
    f.job_id = id;
    f.node = (char *) (node ? node : "");
    f.offset = offset;
    Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
    env.body_case = WSLQ__ENVELOPE__BODY_FETCH;
    env.fetch = &f;
    return client_call(c, &env, WSLQ__ENVELOPE__BODY_FETCH_REPLY, 30000, err);
}

static int
fetch_node(client_t *c, uint64_t id, const char *node, const char *dest, wq_error_t *err)
{
    char tmp[PATH_MAX];
    if (tmp_file(tmp, sizeof tmp, err) < 0)
        return -1;
    FILE *f = fopen(tmp, "we");
    if (f == NULL) {
        unlink(tmp);
        return wq_fail_errno(err, "cannot write %s", tmp);
    }
    uint64_t off = 0, size = 0;
    int rc = 0;
    do {
        Wslq__Envelope *rep = fetch_call(c, id, node, off, err);
        if (rep == NULL) {
            rc = -1;
            break;
        }
        const Wslq__FetchReply *r = rep->fetch_reply;
        size = r->size;
        if (r->offset != off || (r->data.len == 0 && off < size)) {
            rc = wq_fail(err, WQ_EPROTO, "the scheduler sent a piece out of order");
        } else if (fwrite(r->data.data, 1, r->data.len, f) != r->data.len) {
            rc = wq_fail_errno(err, "cannot write %s", tmp);
        }
        off += r->data.len;
        wire_free(&rep);
    } while (rc == 0 && off < size);
    if (fclose(f) != 0 && rc == 0)
        rc = wq_fail_errno(err, "cannot write %s", tmp);
    char *to = wq_asprintf("%s/%s", dest, node);
    if (rc == 0)
        rc = wq_mkdir_p(to, 0755, err);
    if (rc == 0)
        rc = snaptar_unpack(tmp, to, FETCH_MAX_BYTES, -1, -1, err);
    if (rc == 0) {
        char a[32];
        printf("job %" PRIu64 ": %s's output (%s) in %s\n", id, node,
               snaptar_size_text(size, a, sizeof a), to);
    }
    unlink(tmp);
    free(to);
    return rc;
}

int
cli_fetch_output(client_t *c, uint64_t id, const char *dest, wq_error_t *err)
{
    Wslq__Envelope *rep = fetch_call(c, id, NULL, 0, err);
    if (rep == NULL)
        return -1;
    const Wslq__FetchReply *r = rep->fetch_reply;
    for (size_t i = 0; i < r->n_errors; i++)
        fprintf(stderr, "wslq: job %" PRIu64 ": no output from %s\n", id, r->errors[i]);
    int rc = 0;
    if (r->n_nodes == 0)
        rc = wq_fail(err, WQ_ENOENT, "job %" PRIu64 ": no node's output came back", id);
    for (size_t i = 0; rc == 0 && i < r->n_nodes; i++)
        rc = fetch_node(c, id, r->nodes[i], dest, err);
    wire_free(&rep);
    return rc;
}

int
submit_workdir_opts(const char *workdir,
                    const char *chdir_opt,
                    const char *output,
                    Wslq__JobSpec *spec,
                    char **workdir_out,
                    wq_error_t *err)
{
    *workdir_out = NULL;
    if (output != NULL && workdir == NULL)
        return wq_fail(err, WQ_EINVAL,
                       "--output needs --workdir (it names a directory in the job's work area)");
    if (workdir == NULL)
        return 0;
    if (chdir_opt != NULL)
        return wq_fail(err, WQ_EINVAL,
                       "--workdir and --chdir cannot be used together: with --workdir the job "
                       "starts in its snapshot's work area");
    char real[PATH_MAX];
    struct stat sb;
    if (realpath(workdir, real) == NULL || stat(real, &sb) < 0)
        return wq_fail_errno(err, "--workdir %s", workdir);
    if (!S_ISDIR(sb.st_mode))
        return wq_fail(err, WQ_EINVAL, "--workdir %s: not a directory", workdir);
    if (output != NULL)
        wire_set_str(&spec->output_dir, output);
    /* replaced by the snapshot's hash once uploaded (cmd_submit), valid for the checks */
    wire_set_str(&spec->workdir_hash,
                 "0000000000000000000000000000000000000000000000000000000000000000");
    *workdir_out = wq_strdup(real);
    return 0;
}
