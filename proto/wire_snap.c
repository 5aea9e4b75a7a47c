/* Snapshot and output messages: validation (wire_snap.h). */
#include "proto/wire_snap.h"

#include <string.h>

#include "common/limits.h"

int
wire_hash_ok(const char *s)
{
    if (s == NULL)
        return 0;
    size_t i = 0;
    for (; s[i] && i < 65; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return i == 64;
}

static int
hash(const char *s, int required, wq_error_t *err)
{
    if ((s == NULL || *s == '\0') && !required)
        return 0;
    if (!wire_hash_ok(s))
        return wq_fail(err, WQ_EPROTO, "snapshot hash is not 64 lowercase hex digits");
    return 0;
}

static int
chunk(size_t len, wq_error_t *err)
{
    if (len > WIRE_MAX_SNAP_CHUNK)
        return wq_fail(err, WQ_ELIMIT, "a snapshot chunk of %zu bytes is more than %u", len,
                       WIRE_MAX_SNAP_CHUNK);
    return 0;
}

static int
line(const char *s, wq_error_t *err)
{
    if (s == NULL)
        return 0;
    size_t n = strnlen(s, WIRE_MAX_ERROR_TEXT + 1);
    if (n > WIRE_MAX_ERROR_TEXT)
        return wq_fail(err, WQ_ELIMIT, "error text is too long");
    for (size_t i = 0; i < n; i++)
        if ((unsigned char) s[i] < 0x20 || s[i] == 0x7f)
            return wq_fail(err, WQ_EPROTO, "error text contains a control character");
    return 0;
}

int
wire_is_snap(const Wslq__Envelope *env)
{
    switch (env->body_case) {
    case WSLQ__ENVELOPE__BODY_SNAP_PUT:
    case WSLQ__ENVELOPE__BODY_SNAP_PUT_REPLY:
    case WSLQ__ENVELOPE__BODY_SNAP_GET:
    case WSLQ__ENVELOPE__BODY_SNAP_DATA:
    case WSLQ__ENVELOPE__BODY_OUTPUT_PUT:
    case WSLQ__ENVELOPE__BODY_OUTPUT_PUT_REPLY:
    case WSLQ__ENVELOPE__BODY_FETCH:
    case WSLQ__ENVELOPE__BODY_FETCH_REPLY:
        return 1;
    default:
        return 0;
    }
}

int
wire_validate_snap(const Wslq__Envelope *env, wq_error_t *err)
{
    switch (env->body_case) {
    case WSLQ__ENVELOPE__BODY_SNAP_PUT:
        return hash(env->snap_put->hash, 1, err) < 0 ? -1 : chunk(env->snap_put->data.len, err);
    case WSLQ__ENVELOPE__BODY_SNAP_PUT_REPLY:
        return 0;
    case WSLQ__ENVELOPE__BODY_SNAP_GET:
        return hash(env->snap_get->hash, 1, err);
    case WSLQ__ENVELOPE__BODY_SNAP_DATA:
        if (hash(env->snap_data->hash, 0, err) < 0 || line(env->snap_data->error, err) < 0)
            return -1;
        return chunk(env->snap_data->data.len, err);
    case WSLQ__ENVELOPE__BODY_OUTPUT_PUT:
        if (line(env->output_put->error, err) < 0)
            return -1;
        return chunk(env->output_put->data.len, err);
    case WSLQ__ENVELOPE__BODY_OUTPUT_PUT_REPLY:
        return line(env->output_put_reply->error, err);
    case WSLQ__ENVELOPE__BODY_FETCH: {
        const char *n = env->fetch->node;
        if (n != NULL && (strnlen(n, WIRE_MAX_NAME + 1) > WIRE_MAX_NAME || strchr(n, '/') ||
                          strcmp(n, ".") == 0 || strcmp(n, "..") == 0))
            return wq_fail(err, WQ_EPROTO, "fetch: not a node name");
        return 0;
    }
    case WSLQ__ENVELOPE__BODY_FETCH_REPLY:
        if (env->fetch_reply->n_nodes > WIRE_MAX_NODES)
            return wq_fail(err, WQ_ELIMIT, "fetch: more than %d nodes", WIRE_MAX_NODES);
        for (size_t i = 0; i < env->fetch_reply->n_nodes; i++) {
            const char *n = env->fetch_reply->nodes[i];
            if (n == NULL || *n == '\0' || strnlen(n, WIRE_MAX_NAME + 1) > WIRE_MAX_NAME ||
                strchr(n, '/') || strcmp(n, ".") == 0 || strcmp(n, "..") == 0)
                return wq_fail(err, WQ_EPROTO, "fetch: not a node name");
        }
        if (env->fetch_reply->n_errors > WIRE_MAX_NODES)
            return wq_fail(err, WQ_ELIMIT, "fetch: more than %d errors", WIRE_MAX_NODES);
        for (size_t i = 0; i < env->fetch_reply->n_errors; i++)
            if (env->fetch_reply->errors[i] == NULL || line(env->fetch_reply->errors[i], err) < 0)
                return wq_fail(err, WQ_EPROTO, "fetch: a bad error line");
        return chunk(env->fetch_reply->data.len, err);
    default:
        return wq_fail(err, WQ_EPROTO, "not a snapshot message");
    }
}

int
wire_check_snap_spec(const Wslq__JobSpec *spec, wq_error_t *err)
{
    if (hash(spec->workdir_hash, 0, err) < 0)
        return -1;
    const char *o = spec->output_dir;
    if (o == NULL || *o == '\0')
        return 0;
    if (spec->workdir_hash == NULL || spec->workdir_hash[0] == '\0')
        return wq_fail(err, WQ_EINVAL,
                       "--output needs --workdir (it is a directory in the "
                       "job's work area)");
    if (strnlen(o, WIRE_MAX_PATH + 1) > WIRE_MAX_PATH || o[0] == '/')
        return wq_fail(err, WQ_EINVAL, "--output %.64s: a directory relative to the work area", o);
    for (const char *s = o; *s;) {
        const char *e = strchr(s, '/');
        size_t k = e ? (size_t) (e - s) : strlen(s);
        if (k == 2 && s[0] == '.' && s[1] == '.')
            return wq_fail(err, WQ_EINVAL, "--output %.64s: \"..\" leaves the work area", o);
        s += k;
        if (*s == '/')
            s++;
    }
    for (const char *s = o; *s; s++)
        if ((unsigned char) *s < 0x20 || *s == 0x7f)
            return wq_fail(err, WQ_EINVAL, "--output: a control character in the name");
    return 0;
}
