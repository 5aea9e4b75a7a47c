/* The cJSON functions wslq calls, loaded only when one is first called.
 *
 * Debian ships cJSON as a shared library only, so the static wslq (cli/CMakeLists.txt) would
 * load libcjson.so.1 at every start: a file opened, four mappings, its relocations, about 6
 * page faults and 6 system calls of a `wslq --version`, for the `--json` output of a few
 * commands. The static wslq links these definitions instead: each opens libcjson.so.1 on its
 * first call and forwards to it; if that fails it answers as cJSON does when out of memory
 * (NULL or false; `cli_print_json` then prints a one-line error naming the library). Every object
 * the program frees or prints came from the same library, so the two never mix. */
#include <cjson/cJSON.h>
#include <dlfcn.h>
#include <stddef.h>
#include <stdio.h>

static char lib_error[256]; /* why the library could not be opened, "" while it could */

static void *
cjson_lib_sym(const char *name)
{
    static void *lib;
    if (lib == NULL) {
        lib = dlopen("libcjson.so.1", RTLD_NOW | RTLD_LOCAL);
        if (lib == NULL) {
            const char *why = dlerror();
            snprintf(lib_error, sizeof lib_error, "%s", why ? why : "libcjson.so.1: not found");
        }
    }
    return lib != NULL ? dlsym(lib, name) : NULL;
}

/* Why the last call found no cJSON (cli_print_json names it), or NULL. */
const char *cli_json_lib_error(void);
const char *
cli_json_lib_error(void)
{
    return lib_error[0] ? lib_error : NULL;
}

/* Defines RET NAME(PARAMS) forwarding ARGS to the library's NAME, FAIL without it. */
#define CJSON_LAZY(ret, name, params, args, fail)                         \
    ret name params                                                       \
    {                                                                     \
        static __typeof__(name) *fn; /* the same value from any thread */ \
        if (fn == NULL)                                                   \
            *(void **) &fn = cjson_lib_sym(#name);                        \
        if (fn == NULL)                                                   \
            return fail;                                                  \
        return fn args;                                                   \
    }

CJSON_LAZY(cJSON *, cJSON_CreateObject, (void), (), NULL)
CJSON_LAZY(cJSON *, cJSON_CreateArray, (void), (), NULL)
CJSON_LAZY(cJSON *, cJSON_CreateNumber, (double num), (num), NULL)
CJSON_LAZY(cJSON *, cJSON_CreateString, (const char *string), (string), NULL)
CJSON_LAZY(cJSON_bool, cJSON_AddItemToArray, (cJSON * array, cJSON *item), (array, item), 0)
CJSON_LAZY(cJSON_bool,
           cJSON_AddItemToObject,
           (cJSON * object, const char *string, cJSON *item),
           (object, string, item),
           0)
CJSON_LAZY(cJSON *,
           cJSON_AddArrayToObject,
           (cJSON *const object, const char *const name),
           (object, name),
           NULL)
CJSON_LAZY(cJSON *,
           cJSON_AddObjectToObject,
           (cJSON *const object, const char *const name),
           (object, name),
           NULL)
CJSON_LAZY(cJSON *,
           cJSON_AddNullToObject,
           (cJSON *const object, const char *const name),
           (object, name),
           NULL)
CJSON_LAZY(cJSON *,
           cJSON_AddBoolToObject,
           (cJSON *const object, const char *const name, const cJSON_bool boolean),
           (object, name, boolean),
           NULL)
CJSON_LAZY(cJSON *,
           cJSON_AddNumberToObject,
           (cJSON *const object, const char *const name, const double number),
           (object, name, number),
           NULL)
CJSON_LAZY(cJSON *,
           cJSON_AddStringToObject,
           (cJSON *const object, const char *const name, const char *const string),
           (object, name, string),
           NULL)
CJSON_LAZY(char *, cJSON_Print, (const cJSON *item), (item), NULL)

void
cJSON_Delete(cJSON *item)
{
    static __typeof__(cJSON_Delete) *fn;
    if (fn == NULL)
        *(void **) &fn = cjson_lib_sym("cJSON_Delete");
    if (fn != NULL)
        fn(item);
}
