/* Node checks as text; see nodecheck.h. */
#include "proto/nodecheck.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "proto/wire.h"

static const char *const upper[] = {"?", "PASS", "INFO", "WARN", "FAIL"};
static const char *const lower[] = {"?", "pass", "info", "warn", "fail"};

const char *
nodecheck_verdict_name(Wslq__CheckVerdict v)
{
    return v >= WSLQ__CHECK_VERDICT__CHECK_PASS && v <= WSLQ__CHECK_VERDICT__CHECK_FAIL ? upper[v]
                                                                                        : upper[0];
}

const char *
nodecheck_verdict_lower(Wslq__CheckVerdict v)
{
    return v >= WSLQ__CHECK_VERDICT__CHECK_PASS && v <= WSLQ__CHECK_VERDICT__CHECK_FAIL ? lower[v]
                                                                                        : lower[0];
}

const char *
nodecheck_line(const Wslq__NodeCheck *c, char *buf, size_t size)
{
    const char *fix = c->fix ? c->fix : "";
    snprintf(buf, size, "%s %s%s%s", nodecheck_verdict_name(c->verdict),
             c->summary ? c->summary : "", fix[0] ? " | fix: " : "", fix);
    return buf;
}

void
nodecheck_set(Wslq__NodeCheck ***checks,
              size_t *n,
              const char *id,
              Wslq__CheckVerdict verdict,
              const char *summary,
              const char *fix)
{
    Wslq__NodeCheck *c = (Wslq__NodeCheck *) nodecheck_find(*checks, *n, id);
    if (c == NULL) {
        *checks = wq_realloc(*checks, (*n + 1) * sizeof **checks);
        c = wq_malloc(sizeof *c);
        wslq__node_check__init(c);
        c->id = wq_strdup(id);
        (*checks)[(*n)++] = c;
    }
    c->verdict = verdict;
    wire_set_str(&c->summary, summary);
    wire_set_str(&c->fix, fix);
}

const Wslq__NodeCheck *
nodecheck_find(Wslq__NodeCheck *const *checks, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(checks[i]->id, id) == 0)
            return checks[i];
    return NULL;
}
