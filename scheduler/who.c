/* What a principal may see of a job; see who.h. */
#include "scheduler/who.h"

#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "proto/wire.h"

int
who_may_touch(const who_t *who, const Wslq__JobInfo *info)
{
    if (WHO_IS_ADMIN(who))
        return 1;
    return who->kind == WHO_USER && info->spec != NULL && strcmp(info->spec->user, who->name) == 0;
}

static void
free_strv(char ***v, size_t *n)
{
    for (size_t i = 0; i < *n; i++)
        free((*v)[i]);
    free(*v);
    *v = NULL;
    *n = 0;
}

void
who_redact(const who_t *who, Wslq__JobInfo *info)
{
    Wslq__JobSpec *s = info->spec;
    if (s == NULL)
        return;
    /* secret values: shown to nobody, owner and admins included; the names stay */
    for (size_t i = 0; i < s->n_secret_env; i++) {
        char *eq = strchr(s->secret_env[i], '=');
        if (eq != NULL) {
            char *v = wq_asprintf("%.*s=(secret)", (int) (eq - s->secret_env[i]), s->secret_env[i]);
            free(s->secret_env[i]);
            s->secret_env[i] = v;
        }
    }
    if (who_may_touch(who, info))
        return;
    free_strv(&s->argv, &s->n_argv);
    s->argv = wq_calloc(1, sizeof *s->argv);
    s->argv[0] = wq_strdup("(hidden: not your job)");
    s->n_argv = 1;
    wire_set_str(&s->cwd, "");
    free_strv(&s->env, &s->n_env);
    free_strv(&s->secret_env, &s->n_secret_env);
    free(s->script.data);
    s->script.data = NULL;
    s->script.len = 0;
}
