/* CURVE keys, credentials files and codes; see keys.h. */
#include "proto/keys.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "common/fs.h"

int
keys_generate(keys_creds_t *c, wq_error_t *err)
{
    if (zmq_curve_keypair(c->public_, c->secret) != 0)
        return wq_fail(err, WQ_ESYS,
                       "cannot make a CURVE key pair: %s (is libzmq built with CURVE?)",
                       zmq_strerror(errno));
    return 0;
}

int
keys_save(const char *path, const keys_creds_t *c, wq_error_t *err)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int) sizeof tmp)
        return wq_fail(err, WQ_EINVAL, "path too long: %s", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return wq_fail_errno(err, "cannot write %s", tmp);
    fchmod(fd, 0600); /* whatever the umask */
    char buf[512];
    int n = 0;
    if (c->scheduler[0])
        n += snprintf(buf + n, sizeof buf - (size_t) n, "scheduler %s\n", c->scheduler);
    if (c->server[0])
        n += snprintf(buf + n, sizeof buf - (size_t) n, "server %s\n", c->server);
    if (c->public_[0])
        n += snprintf(buf + n, sizeof buf - (size_t) n, "public %s\n", c->public_);
    if (c->secret[0])
        n += snprintf(buf + n, sizeof buf - (size_t) n, "secret %s\n", c->secret);
    if (c->name[0])
        n += snprintf(buf + n, sizeof buf - (size_t) n, "name %s\n", c->name);
    int ok = write(fd, buf, (size_t) n) == n && fsync(fd) == 0;
    sodium_memzero(buf, sizeof buf);
    close(fd);
    if (!ok) {
        unlink(tmp);
        return wq_fail_errno(err, "cannot write %s", tmp);
    }
    if (rename(tmp, path) < 0) {
        unlink(tmp);
        return wq_fail_errno(err, "cannot rename %s", tmp);
    }
    return 0;
}

static int
is_z85_key(const char *s)
{
    uint8_t bin[32];
    return strlen(s) == KEYS_Z85_LEN && zmq_z85_decode(bin, s) != NULL;
}

int
keys_load(const char *path, keys_creds_t *c, wq_error_t *err)
{
    memset(c, 0, sizeof *c);
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return wq_fail_errno(err, "cannot read %s", path);
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && (st.st_mode & 077) != 0) {
        fclose(f);
        return wq_fail(err, WQ_EPERM, "%s holds a secret key but others may read it: chmod 600 %s",
                       path, path);
    }
    char line[512];
    int lineno = 0, rc = 0;
    while (rc == 0 && fgets(line, sizeof line, f) != NULL) {
        lineno++;
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] == '\0' || line[0] == '#')
            continue;
        char *sp = strchr(line, ' ');
        if (sp == NULL) {
            rc = wq_fail(err, WQ_EINVAL, "%s:%d: expected 'NAME VALUE'", path, lineno);
            break;
        }
        *sp = '\0';
        const char *k = line, *v = sp + 1;
        char *dst = NULL;
        size_t cap = 0;
        int key = 1;
        if (strcmp(k, "scheduler") == 0) {
            dst = c->scheduler, cap = sizeof c->scheduler, key = 0;
        } else if (strcmp(k, "server") == 0) {
            dst = c->server, cap = sizeof c->server;
        } else if (strcmp(k, "public") == 0) {
            dst = c->public_, cap = sizeof c->public_;
        } else if (strcmp(k, "secret") == 0) {
            dst = c->secret, cap = sizeof c->secret;
        } else if (strcmp(k, "name") == 0) {
            dst = c->name, cap = sizeof c->name, key = 0;
        } else {
            rc = wq_fail(err, WQ_EINVAL, "%s:%d: unknown entry '%.32s'", path, lineno, k);
            break;
        }
        if ((key && !is_z85_key(v)) || strlen(v) >= cap) {
            rc = wq_fail(err, WQ_EINVAL, "%s:%d: %s is not a valid %s", path, lineno, k,
                         key ? "CURVE key (40 Z85 characters)" : "value");
            break;
        }
        snprintf(dst, cap, "%s", v);
    }
    sodium_memzero(line, sizeof line);
    fclose(f);
    return rc;
}

int
keys_z85_to_hex(const char *z85, char hex[KEYS_HEX_LEN + 1])
{
    uint8_t bin[32];
    if (strlen(z85) != KEYS_Z85_LEN || zmq_z85_decode(bin, z85) == NULL)
        return -1;
    sodium_bin2hex(hex, KEYS_HEX_LEN + 1, bin, sizeof bin);
    return 0;
}

int
keys_hex_to_z85(const char *hex, char z85[KEYS_Z85_LEN + 1])
{
    uint8_t bin[32];
    size_t n = 0;
    if (strlen(hex) != KEYS_HEX_LEN ||
        sodium_hex2bin(bin, sizeof bin, hex, KEYS_HEX_LEN, NULL, &n, NULL) != 0 || n != 32)
        return -1;
    return zmq_z85_encode(z85, bin, sizeof bin) != NULL ? 0 : -1;
}

void
keys_code_format(
    char *buf, size_t size, const char *server_z85, const char *secret_hex, const char *scheduler)
{
    char hex[KEYS_HEX_LEN + 1] = "";
    keys_z85_to_hex(server_z85, hex);
    snprintf(buf, size, "wq1:%s:%s@%s", hex, secret_hex, scheduler);
}

int
keys_code_parse(const char *code,
                char server_z85[KEYS_Z85_LEN + 1],
                char secret_hex[KEYS_SECRET_HEX + 1],
                char *scheduler,
                size_t scheduler_size,
                wq_error_t *err)
{
    const char *bad = "is not a wslq code; it looks like wq1:<key>:<secret>@tcp://HOST:PORT";
    if (strncmp(code, "wq1:", 4) != 0)
        return wq_fail(err, WQ_EINVAL, "'%.24s...' %s", code, bad);
    const char *k = code + 4, *colon = strchr(k, ':'), *at = colon ? strchr(colon, '@') : NULL;
    if (colon == NULL || at == NULL || colon - k != KEYS_HEX_LEN ||
        at - colon - 1 != KEYS_SECRET_HEX || strncmp(at + 1, "tcp://", 6) != 0)
        return wq_fail(err, WQ_EINVAL, "the code %s", bad);
    char hex[KEYS_HEX_LEN + 1];
    memcpy(hex, k, KEYS_HEX_LEN);
    hex[KEYS_HEX_LEN] = '\0';
    if (keys_hex_to_z85(hex, server_z85) < 0)
        return wq_fail(err, WQ_EINVAL, "the code's scheduler key is damaged (copy it again)");
    memcpy(secret_hex, colon + 1, KEYS_SECRET_HEX);
    secret_hex[KEYS_SECRET_HEX] = '\0';
    for (const char *p = secret_hex; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return wq_fail(err, WQ_EINVAL, "the code's secret is damaged (copy it again)");
    if (strlen(at + 1) >= scheduler_size)
        return wq_fail(err, WQ_EINVAL, "the code's scheduler address is too long");
    snprintf(scheduler, scheduler_size, "%s", at + 1);
    return 0;
}

int
keys_client_socket(void *sock, const keys_creds_t *c, wq_error_t *err)
{
    if (!c->server[0] || !c->public_[0] || !c->secret[0])
        return wq_fail(err, WQ_EINVAL,
                       "incomplete credentials: need the server key and a key pair");
    if (zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, c->server, KEYS_Z85_LEN) < 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, c->public_, KEYS_Z85_LEN) < 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, c->secret, KEYS_Z85_LEN) < 0)
        return wq_fail(err, WQ_ESYS, "cannot use CURVE: %s", zmq_strerror(errno));
    return 0;
}

void *
keys_watch(void *zctx, void *sock)
{
    char ep[64];
    snprintf(ep, sizeof ep, "inproc://wslq-keys-mon-%p", sock);
    if (zmq_socket_monitor(sock, ep,
                           ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                               ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) < 0)
        return NULL;
    void *mon = zmq_socket(zctx, ZMQ_PAIR);
    if (mon == NULL)
        return NULL;
    int linger = 0;
    zmq_setsockopt(mon, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_connect(mon, ep) < 0) {
        zmq_close(mon);
        return NULL;
    }
    return mon;
}

int
keys_handshake_event(void *mon)
{
    if (mon == NULL)
        return KEYS_HS_NONE;
    zmq_msg_t head, ep;
    zmq_msg_init(&head);
    if (zmq_msg_recv(&head, mon, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&head);
        return KEYS_HS_NONE;
    }
    zmq_msg_init(&ep);
    if (zmq_msg_more(&head))
        zmq_msg_recv(&ep, mon, 0);
    uint16_t event = 0;
    if (zmq_msg_size(&head) >= 6)
        memcpy(&event, zmq_msg_data(&head), 2);
    zmq_msg_close(&head);
    zmq_msg_close(&ep);
    if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
        return KEYS_HS_REFUSED;
    if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL)
        return KEYS_HS_WRONG_SERVER;
    return KEYS_HS_FAILED;
}

int
keys_random_hex(char *buf, size_t size, size_t bytes, wq_error_t *err)
{
    uint8_t bin[64];
    if (bytes > sizeof bin || size < 2 * bytes + 1)
        return wq_fail(err, WQ_EINVAL, "random secret too long");
    if (getrandom(bin, bytes, 0) != (ssize_t) bytes)
        return wq_fail_errno(err, "cannot read random bytes");
    sodium_bin2hex(buf, size, bin, bytes);
    sodium_memzero(bin, sizeof bin);
    return 0;
}

void
keys_hash_hex(const char *s, char out[KEYS_HEX_LEN + 1])
{
    uint8_t h[32];
    crypto_generichash(h, sizeof h, (const unsigned char *) s, strlen(s), NULL, 0);
    sodium_bin2hex(out, KEYS_HEX_LEN + 1, h, sizeof h);
}
