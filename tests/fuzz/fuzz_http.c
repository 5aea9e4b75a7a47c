/* Fuzz target: the dashboard's request-target parser, http_parse_target(), with the input as
 * the raw target bytes exactly as libmicrohttpd hands them over (not NUL-terminated: the
 * parser must not read past len); then the same bytes, cut at the first NUL, as a listen
 * address (http_parse_listen(), the --http flag and [scheduler] http key) and as a
 * ?state= list (http_parse_states()).
 *
 * Checked beyond "no crash, no leak, no undefined behaviour": a parsed target has a route,
 * status 200, and NUL-terminated strings within their fields; a refused one has status 400,
 * 404 or 414, no route, and a reason; a listen address that parses is IPv4 or IPv6 with the
 * matching length. */
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "scheduler/http/http_parse.h"
#include "tests/fuzz/fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size copy: libFuzzer's own buffer is exact too, but this keeps it so when the
     * input is replayed from a larger buffer. */
    char *target = malloc(size ? size : 1);
    FUZZ_CHECK(target != NULL);
    memcpy(target, data, size);
    http_req_t req;
    int status = -1;
    wq_error_t err = {0};
    if (http_parse_target(target, size, &req, &status, &err) == 0) {
        FUZZ_CHECK(status == 200);
        FUZZ_CHECK(req.route != HTTP_R_NONE);
        FUZZ_CHECK(memchr(req.file, '\0', sizeof req.file) != NULL);
        FUZZ_CHECK(memchr(req.user, '\0', sizeof req.user) != NULL);
        FUZZ_CHECK(memchr(req.name, '\0', sizeof req.name) != NULL);
        FUZZ_CHECK(memchr(req.token, '\0', sizeof req.token) != NULL);
        FUZZ_CHECK(req.limit >= 1 && req.limit <= HTTP_JOBS_MAX);
        FUZZ_CHECK(req.max >= 1 && req.max <= HTTP_LOG_MAX);
        FUZZ_CHECK(req.job_id <= HTTP_MAX_JOB_ID && req.before <= HTTP_MAX_JOB_ID);
        if (req.route == HTTP_R_STATIC)
            FUZZ_CHECK(req.file[0] != '\0' && req.file[0] != '.' && strchr(req.file, '/') == NULL);
    } else {
        FUZZ_CHECK(status == 400 || status == 404 || status == 414);
        FUZZ_CHECK(err.text[0] != '\0');
    }
    free(target);

    char *s = fuzz_strndup(data, size);
    struct sockaddr_storage ss;
    socklen_t sl = 0;
    if (http_parse_listen(s, &ss, &sl, &err) == 0)
        FUZZ_CHECK((ss.ss_family == AF_INET && sl == sizeof(struct sockaddr_in)) ||
                   (ss.ss_family == AF_INET6 && sl == sizeof(struct sockaddr_in6)));
    unsigned mask = 0;
    if (http_parse_states(s, &mask, &err) == 0)
        FUZZ_CHECK(mask != 0 && (mask & 1u) == 0); /* bit 0, JOB_STATE_UNSPECIFIED, never */
    free(s);
    return 0;
}
