/* The GSSAPI functions the static libzmq refers to, loaded only when one is first called.
 *
 * wslq links libzmq statically (cli/CMakeLists.txt): a short-lived command then starts without
 * the dynamic loader resolving libzmq, libstdc++ and their dependencies. Debian builds libzmq
 * with the GSSAPI mechanism, and Debian ships no static Kerberos, so linking libgssapi_krb5
 * would load it and six more libraries (libkrb5, libk5crypto, libkrb5support, libcom_err,
 * libkeyutils, libresolv) into every command: about half of what is left of its start-up.
 * wslq never selects that mechanism (it speaks CURVE or, with --insecure, NULL), so each
 * function here opens the real library on its first call and forwards to it; if that fails
 * it answers GSS_S_FAILURE, as a failed GSSAPI handshake would. The two name types libzmq
 * refers to are the standard object identifiers of RFC 2744 (section 4), which the library
 * compares by value. */
#include <dlfcn.h>
#include <gssapi/gssapi.h>
#include <stddef.h>

/* 1.2.840.113554.1.2.1.1 and 1.2.840.113554.1.2.1.4 */
static gss_OID_desc user_name_oid = {10, "\x2a\x86\x48\x86\xf7\x12\x01\x02\x01\x01"};
static gss_OID_desc hostbased_service_oid = {10, "\x2a\x86\x48\x86\xf7\x12\x01\x02\x01\x04"};
gss_OID GSS_C_NT_USER_NAME = &user_name_oid;
gss_OID GSS_C_NT_HOSTBASED_SERVICE = &hostbased_service_oid;

static void *
gss_lib_sym(const char *name)
{
    static void *lib;
    if (lib == NULL)
        lib = dlopen("libgssapi_krb5.so.2", RTLD_NOW | RTLD_LOCAL);
    return lib != NULL ? dlsym(lib, name) : NULL;
}

/* Defines NAME(PARAMS) forwarding ARGS to the library's NAME. */
#define GSS_LAZY(name, params, args)                                      \
    OM_uint32 KRB5_CALLCONV name params                                   \
    {                                                                     \
        static __typeof__(name) *fn; /* the same value from any thread */ \
        if (fn == NULL)                                                   \
            *(void **) &fn = gss_lib_sym(#name);                          \
        if (fn == NULL) {                                                 \
            if (minor != NULL)                                            \
                *minor = 0;                                               \
            return GSS_S_FAILURE;                                         \
        }                                                                 \
        return fn args;                                                   \
    }

GSS_LAZY(gss_accept_sec_context,
         (OM_uint32 * minor,
          gss_ctx_id_t *ctx,
          gss_cred_id_t cred,
          gss_buffer_t in,
          gss_channel_bindings_t cb,
          gss_name_t *src,
          gss_OID *mech,
          gss_buffer_t out,
          OM_uint32 *flags,
          OM_uint32 *time_rec,
          gss_cred_id_t *deleg),
         (minor, ctx, cred, in, cb, src, mech, out, flags, time_rec, deleg))
GSS_LAZY(gss_acquire_cred,
         (OM_uint32 * minor,
          gss_name_t name,
          OM_uint32 time_req,
          gss_OID_set mechs,
          gss_cred_usage_t usage,
          gss_cred_id_t *cred,
          gss_OID_set *actual,
          OM_uint32 *time_rec),
         (minor, name, time_req, mechs, usage, cred, actual, time_rec))
GSS_LAZY(gss_delete_sec_context,
         (OM_uint32 * minor, gss_ctx_id_t *ctx, gss_buffer_t out),
         (minor, ctx, out))
GSS_LAZY(gss_display_name,
         (OM_uint32 * minor, gss_name_t name, gss_buffer_t out, gss_OID *type),
         (minor, name, out, type))
GSS_LAZY(gss_import_name,
         (OM_uint32 * minor, gss_buffer_t in, gss_OID type, gss_name_t *out),
         (minor, in, type, out))
GSS_LAZY(
    gss_init_sec_context,
    (OM_uint32 * minor,
     gss_cred_id_t cred,
     gss_ctx_id_t *ctx,
     gss_name_t target,
     gss_OID mech,
     OM_uint32 req_flags,
     OM_uint32 time_req,
     gss_channel_bindings_t cb,
     gss_buffer_t in,
     gss_OID *actual,
     gss_buffer_t out,
     OM_uint32 *flags,
     OM_uint32 *time_rec),
    (minor, cred, ctx, target, mech, req_flags, time_req, cb, in, actual, out, flags, time_rec))
GSS_LAZY(gss_release_buffer, (OM_uint32 * minor, gss_buffer_t buf), (minor, buf))
GSS_LAZY(gss_release_cred, (OM_uint32 * minor, gss_cred_id_t *cred), (minor, cred))
GSS_LAZY(gss_release_name, (OM_uint32 * minor, gss_name_t *name), (minor, name))
GSS_LAZY(gss_unwrap,
         (OM_uint32 * minor,
          gss_ctx_id_t ctx,
          gss_buffer_t in,
          gss_buffer_t out,
          int *conf,
          gss_qop_t *qop),
         (minor, ctx, in, out, conf, qop))
GSS_LAZY(gss_wrap,
         (OM_uint32 * minor,
          gss_ctx_id_t ctx,
          int conf_req,
          gss_qop_t qop,
          gss_buffer_t in,
          int *conf,
          gss_buffer_t out),
         (minor, ctx, conf_req, qop, in, conf, out))
