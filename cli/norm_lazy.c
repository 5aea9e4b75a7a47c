/* The NORM functions the static libzmq refers to, loaded only when one is first called.
 *
 * Debian builds libzmq with the NORM transport (norm://), and its archive libnorm.a with
 * libprotokit.a brings four C++ constructors into every `wslq` command (an address parsed
 * with sscanf, the clock read, static tables) and is what needs libm: about 20 page faults of
 * a `wslq --version`. wslq never speaks NORM (libzmq accepts norm:// only for PUB/SUB
 * sockets, wslq's are DEALER and PAIR), so the static wslq links these definitions instead of
 * the two archives (cli/CMakeLists.txt): each opens libnorm.so.1 on its first call and
 * forwards to it; if that fails it answers as a failed call of that function would (an
 * invalid handle, false, nothing done). NORM's header is C++ only, so the prototypes are
 * written here; the four constants are the library's values (null handles and 0xffffffff). */
#include <dlfcn.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef const void *NormInstanceHandle;
typedef const void *NormSessionHandle;
typedef const void *NormNodeHandle;
typedef const void *NormObjectHandle;
typedef uint16_t NormSessionId;
typedef uint32_t NormNodeId;
typedef int NormDescriptor;
typedef int NormObjectType; /* enum */
typedef int NormSyncPolicy; /* enum */
typedef int NormFlushMode;  /* enum */
typedef struct NormEvent NormEvent;

const NormInstanceHandle NORM_INSTANCE_INVALID = NULL;
const NormSessionHandle NORM_SESSION_INVALID = NULL;
const NormObjectHandle NORM_OBJECT_INVALID = NULL;
const NormNodeId NORM_NODE_ANY = 0xffffffff;

static void *
norm_lib_sym(const char *name)
{
    static void *lib;
    if (lib == NULL)
        lib = dlopen("libnorm.so.1", RTLD_NOW | RTLD_LOCAL);
    return lib != NULL ? dlsym(lib, name) : NULL;
}

/* Defines RET NAME(PARAMS) forwarding ARGS to the library's NAME, FAIL without it. */
#define NORM_LAZY(ret, name, params, args, fail)                     \
    ret name params;                                                 \
    ret name params                                                  \
    {                                                                \
        static ret(*fn) params; /* the same value from any thread */ \
        if (fn == NULL)                                              \
            *(void **) &fn = norm_lib_sym(#name);                    \
        if (fn == NULL)                                              \
            return fail;                                             \
        return fn args;                                              \
    }
#define NORM_LAZY_VOID(name, params, args)        \
    void name params;                             \
    void name params                              \
    {                                             \
        static void(*fn) params;                  \
        if (fn == NULL)                           \
            *(void **) &fn = norm_lib_sym(#name); \
        if (fn != NULL)                           \
            fn args;                              \
    }

NORM_LAZY(NormInstanceHandle, NormCreateInstance, (bool boost), (boost), NULL)
NORM_LAZY_VOID(NormDestroyInstance, (NormInstanceHandle i), (i))
NORM_LAZY_VOID(NormStopInstance, (NormInstanceHandle i), (i))
NORM_LAZY(NormDescriptor, NormGetDescriptor, (NormInstanceHandle i), (i), -1)
NORM_LAZY(
    bool, NormGetNextEvent, (NormInstanceHandle i, NormEvent *ev, bool wait), (i, ev, wait), false)
NORM_LAZY(NormSessionHandle,
          NormCreateSession,
          (NormInstanceHandle i, const char *addr, uint16_t port, NormNodeId id),
          (i, addr, port, id),
          NULL)
NORM_LAZY_VOID(NormDestroySession, (NormSessionHandle s), (s))
NORM_LAZY(NormSessionId, NormGetRandomSessionId, (void), (), 0)
NORM_LAZY(bool, NormIsUnicastAddress, (const char *addr), (addr), false)
NORM_LAZY_VOID(NormNodeDelete, (NormNodeHandle n), (n))
NORM_LAZY(NormObjectType, NormObjectGetType, (NormObjectHandle o), (o), 0)
NORM_LAZY(const void *, NormObjectGetUserData, (NormObjectHandle o), (o), NULL)
NORM_LAZY_VOID(NormObjectSetUserData, (NormObjectHandle o, const void *d), (o, d))
NORM_LAZY_VOID(NormSetCongestionControl, (NormSessionHandle s, bool on, bool rate), (s, on, rate))
NORM_LAZY_VOID(NormSetDefaultSyncPolicy, (NormSessionHandle s, NormSyncPolicy p), (s, p))
NORM_LAZY_VOID(NormSetDefaultUnicastNack, (NormSessionHandle s, bool on), (s, on))
NORM_LAZY(bool, NormSetLoopback, (NormSessionHandle s, bool on), (s, on), false)
NORM_LAZY(bool, NormSetMulticastInterface, (NormSessionHandle s, const char *ifn), (s, ifn), false)
NORM_LAZY_VOID(NormSetRxPortReuse,
               (NormSessionHandle s, bool on, const char *rx, const char *tx, uint16_t port),
               (s, on, rx, tx, port))
NORM_LAZY(bool, NormSetTTL, (NormSessionHandle s, unsigned char ttl), (s, ttl), false)
NORM_LAZY(bool, NormStartReceiver, (NormSessionHandle s, uint32_t space), (s, space), false)
NORM_LAZY(bool,
          NormStartSender,
          (NormSessionHandle s,
           NormSessionId id,
           uint32_t space,
           uint16_t seg,
           uint16_t data,
           uint16_t parity,
           uint8_t fec),
          (s, id, space, seg, data, parity, fec),
          false)
NORM_LAZY_VOID(NormStopReceiver, (NormSessionHandle s), (s))
NORM_LAZY_VOID(NormStopSender, (NormSessionHandle s), (s))
NORM_LAZY_VOID(NormStreamFlush, (NormObjectHandle o, bool eom, NormFlushMode m), (o, eom, m))
NORM_LAZY(NormObjectHandle,
          NormStreamOpen,
          (NormSessionHandle s, uint32_t size, const char *info, unsigned int len),
          (s, size, info, len),
          NULL)
NORM_LAZY(
    bool, NormStreamRead, (NormObjectHandle o, char *buf, unsigned int *n), (o, buf, n), false)
NORM_LAZY(bool, NormStreamSeekMsgStart, (NormObjectHandle o), (o), false)
NORM_LAZY(unsigned int,
          NormStreamWrite,
          (NormObjectHandle o, const char *buf, unsigned int n),
          (o, buf, n),
          0)
