/* OpenPGM started only when a PGM socket is first made, not by every ZeroMQ context.
 *
 * Debian builds libzmq with OpenPGM, and zmq_ctx_new() calls pgm_init() each time: it probes
 * the CPU, reads /sys/devices/system/cpu and looks up the "pgm" protocol through the name
 * service switch (/etc/nsswitch.conf, a search for libnss_db in every library directory,
 * /etc/protocols): about a hundred system calls in each `wslq` command that connects, for a
 * transport wslq never uses (its sockets are DEALER and PAIR, which libzmq refuses to connect
 * over pgm:// or epgm:// before calling OpenPGM). The static wslq is linked with
 * --wrap=pgm_init, --wrap=pgm_shutdown, --wrap=pgm_getaddrinfo and --wrap=pgm_socket
 * (cli/CMakeLists.txt): the context's init and shutdown do nothing here, and OpenPGM's first
 * real use (an address lookup or a socket, always before any other call on a PGM socket)
 * runs its pgm_init() then, once; its pgm_shutdown() runs when the last context ends. */
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

typedef struct pgm_error_t pgm_error_t;
typedef struct pgm_sock_t pgm_sock_t;
struct pgm_addrinfo_t;

bool __real_pgm_init(pgm_error_t **error);
bool __real_pgm_shutdown(void);
bool __real_pgm_getaddrinfo(const char *network,
                            const struct pgm_addrinfo_t *hints,
                            struct pgm_addrinfo_t **res,
                            pgm_error_t **error);
bool __real_pgm_socket(
    pgm_sock_t **sock, sa_family_t family, int type, int protocol, pgm_error_t **error);

bool __wrap_pgm_init(pgm_error_t **error);
bool __wrap_pgm_shutdown(void);
bool __wrap_pgm_getaddrinfo(const char *network,
                            const struct pgm_addrinfo_t *hints,
                            struct pgm_addrinfo_t **res,
                            pgm_error_t **error);
bool __wrap_pgm_socket(
    pgm_sock_t **sock, sa_family_t family, int type, int protocol, pgm_error_t **error);

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int contexts; /* pgm_init() calls (one per ZeroMQ context) not yet shut down */
static bool started; /* the real pgm_init() succeeded and its shutdown is still owed */

/* The real init, the first time OpenPGM is used; false (and *error set) if it fails. */
static bool
pgm_start(pgm_error_t **error)
{
    pthread_mutex_lock(&lock);
    bool ok = started || (started = __real_pgm_init(error));
    pthread_mutex_unlock(&lock);
    return ok;
}

bool
__wrap_pgm_init(pgm_error_t **error)
{
    (void) error;
    pthread_mutex_lock(&lock);
    contexts++;
    pthread_mutex_unlock(&lock);
    return true;
}

bool
__wrap_pgm_shutdown(void)
{
    pthread_mutex_lock(&lock);
    if (contexts > 0 && --contexts == 0 && started) {
        __real_pgm_shutdown();
        started = false;
    }
    pthread_mutex_unlock(&lock);
    return true;
}

bool
__wrap_pgm_getaddrinfo(const char *network,
                       const struct pgm_addrinfo_t *hints,
                       struct pgm_addrinfo_t **res,
                       pgm_error_t **error)
{
    return pgm_start(error) && __real_pgm_getaddrinfo(network, hints, res, error);
}

bool
__wrap_pgm_socket(
    pgm_sock_t **sock, sa_family_t family, int type, int protocol, pgm_error_t **error)
{
    return pgm_start(error) && __real_pgm_socket(sock, family, type, protocol, error);
}
