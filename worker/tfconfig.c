/* TF_CONFIG for a TensorFlow multi-worker rank (see tfconfig.h). */
#include "worker/tfconfig.h"

#include <cjson/cJSON.h>
#include <stdlib.h>

char *
tfconfig_json(const Wslq__JobLaunch *l, uint32_t rank)
{
    if (l->spec == NULL || !l->spec->tf || l->n_tf_workers == 0 || rank >= l->n_tf_workers)
        return NULL;
    cJSON *root = cJSON_CreateObject();
    cJSON *cluster = cJSON_AddObjectToObject(root, "cluster");
    cJSON *workers = cJSON_AddArrayToObject(cluster, "worker");
    for (size_t i = 0; i < l->n_tf_workers; i++)
        cJSON_AddItemToArray(workers, cJSON_CreateString(l->tf_workers[i]));
    cJSON *task = cJSON_AddObjectToObject(root, "task");
    cJSON_AddStringToObject(task, "type", "worker");
    cJSON_AddNumberToObject(task, "index", (double) rank);
    char *text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return text;
}
