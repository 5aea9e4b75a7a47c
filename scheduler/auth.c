/* Who is who. Every TCP connection is ZeroMQ CURVE, authenticated by the ZAP handler here;
 * every message carries its connection's key (User-Id "k:<key>"), which maps to a principal:
 * a user (admin or not), a node bound to its name, or a key nobody enrolled, which may only
 * enrol with a one-time code. The scheduler host's local socket (<state-dir>/admin.sock,
 * reachable by the scheduler's own account alone) is the local admin. Handlers get the
 * principal with the message and never read identity from message fields.
 *
 * Codes and tokens are kept as BLAKE2b hashes; a code works once and expires after a day. */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "common/mem.h"
#include "proto/keys.h"
#include "scheduler/sched_int.h"

#define ENROL_PER_MIN 20 /* failed enrolments accepted a minute, in all */

/* ---------- the principals we know ---------- */

static int
cmp_key(const void *a, const void *b)
{
    return strcmp(((const auth_key_t *) a)->key, ((const auth_key_t *) b)->key);
}

static void
load_one(const queue_principal_t *p, void *arg)
{
    sched_t *self = arg;
    self->keys = wq_realloc(self->keys, (self->n_keys + 1) * sizeof *self->keys);
    auth_key_t *k = &self->keys[self->n_keys++];
    memset(k, 0, sizeof *k);
    snprintf(k->key, sizeof k->key, "%s", p->key);
    snprintf(k->name, sizeof k->name, "%s", p->name);
    k->kind = strcmp(p->kind, "user") == 0   ? WHO_USER
              : strcmp(p->kind, "node") == 0 ? WHO_NODE
                                             : WHO_NOBODY; /* revoked */
    k->admin = p->admin;
}

static int
reload_keys(sched_t *self, wq_error_t *err)
{
    free(self->keys);
    self->keys = NULL;
    self->n_keys = 0;
    if (queue_principals_list(self->q, load_one, self, err) < 0)
        return -1;
    if (self->n_keys > 0) /* qsort and bsearch take no NULL array, even when empty */
        qsort(self->keys, self->n_keys, sizeof *self->keys, cmp_key);
    return 0;
}

static const auth_key_t *
find_key(const sched_t *self, const char *z85)
{
    if (self->n_keys == 0)
        return NULL;
    auth_key_t want;
    snprintf(want.key, sizeof want.key, "%s", z85);
    return bsearch(&want, self->keys, self->n_keys, sizeof *self->keys, cmp_key);
}

/* The address codes give: the listen address when it names one host, else the first
 * non-loopback IPv4 address of this host that is up. */
static void
guess_address(char *buf, size_t size, const char *listen)
{
    const char *port = strrchr(listen, ':');
    if (strncmp(listen, "tcp://", 6) == 0 && strncmp(listen + 6, "*:", 2) != 0 &&
        strncmp(listen + 6, "0.0.0.0:", 8) != 0) {
        snprintf(buf, size, "%s", listen);
        return;
    }
    char host[64] = "127.0.0.1";
    struct ifaddrs *ifa = NULL;
    if (getifaddrs(&ifa) == 0) {
        for (struct ifaddrs *p = ifa; p != NULL; p = p->ifa_next)
            if (p->ifa_addr && p->ifa_addr->sa_family == AF_INET &&
                !(p->ifa_flags & IFF_LOOPBACK) && (p->ifa_flags & IFF_UP)) {
                inet_ntop(AF_INET, &((struct sockaddr_in *) (void *) p->ifa_addr)->sin_addr, host,
                          sizeof host);
                break;
            }
        freeifaddrs(ifa);
    }
    snprintf(buf, size, "tcp://%s%s", host, port ? port : ":7420");
}

int
auth_open(sched_t *self, wq_error_t *err)
{
    if (self->cfg.insecure) {
        log_warn("INSECURE: no CURVE; anyone who can reach %s can act as any user or node. For a "
                 "throwaway test cluster only",
                 self->cfg.listen);
        return 0;
    }
    char *path = wq_asprintf("%s/server.key", self->state_dir);
    int rc = keys_load(path, &self->server_keys, NULL);
    if (rc < 0 && access(path, F_OK) == 0) {
        rc = keys_load(path, &self->server_keys, err); /* say why it cannot be used */
        free(path);
        err->code = WQ_EIO;
        return -1;
    }
    if (rc < 0) {
        if (keys_generate(&self->server_keys, err) < 0 ||
            keys_save(path, &self->server_keys, err) < 0) {
            free(path);
            return -1;
        }
        log_info("made the scheduler's key pair path=%s public=%s", path,
                 self->server_keys.public_);
    }
    free(path);
    if (reload_keys(self, err) < 0)
        return -1;
    if (self->cfg.advertise && *self->cfg.advertise)
        snprintf(self->advertise, sizeof self->advertise, "%s", self->cfg.advertise);
    else
        guess_address(self->advertise, sizeof self->advertise, self->cfg.listen);
    /* the ZAP handler must be bound before the first connection's handshake */
    self->zap = zmq_socket(self->zctx, ZMQ_REP);
    int zero = 0, one = 1;
    zmq_setsockopt(self->zap, ZMQ_LINGER, &zero, sizeof zero);
    if (zmq_bind(self->zap, "inproc://zeromq.zap.01") < 0)
        return wq_fail(err, WQ_ESYS, "cannot start the key check (ZAP): %s", zmq_strerror(errno));
    zmq_setsockopt(self->router, ZMQ_CURVE_SERVER, &one, sizeof one);
    zmq_setsockopt(self->router, ZMQ_CURVE_SECRETKEY, self->server_keys.secret, KEYS_Z85_LEN);
    zmq_setsockopt(self->router, ZMQ_ZAP_DOMAIN, "wslq", 4);
    log_info("CURVE on public_key=%s known_keys=%zu advertise=%s", self->server_keys.public_,
             self->n_keys, self->advertise);
    return 0;
}

void
auth_close(sched_t *self)
{
    if (self->zap)
        zmq_close(self->zap);
    self->zap = NULL;
    free(self->keys);
    self->keys = NULL;
    self->n_keys = 0;
}

void *
auth_zap_socket(sched_t *self)
{
    return self->zap;
}

/* ---------- ZAP (ZeroMQ RFC 27): one answer per handshake ---------- */

static void
zap_reply(void *sock,
          const char *request_id,
          size_t id_len,
          const char *code,
          const char *text,
          const char *user_id)
{
    zmq_send(sock, "1.0", 3, ZMQ_SNDMORE);
    zmq_send(sock, request_id, id_len, ZMQ_SNDMORE);
    zmq_send(sock, code, strlen(code), ZMQ_SNDMORE);
    zmq_send(sock, text, strlen(text), ZMQ_SNDMORE);
    zmq_send(sock, user_id, strlen(user_id), ZMQ_SNDMORE);
    zmq_send(sock, "", 0, 0);
}

void
auth_zap(sched_t *self)
{
    for (int n = 0; n < 1000; n++) {
        char frames[8][64];
        size_t len[8] = {0};
        int count = 0, more = 1;
        while (more && count < 8) {
            int r =
                zmq_recv(self->zap, frames[count], sizeof frames[count], count ? 0 : ZMQ_DONTWAIT);
            if (r < 0)
                return; /* nothing (more) waiting */
            len[count] = r > (int) sizeof frames[count] ? sizeof frames[count] : (size_t) r;
            size_t sz = sizeof more;
            zmq_getsockopt(self->zap, ZMQ_RCVMORE, &more, &sz);
            count++;
        }
        while (more) { /* a malformed request: drain it */
            char skip[64];
            zmq_recv(self->zap, skip, sizeof skip, 0);
            size_t sz = sizeof more;
            zmq_getsockopt(self->zap, ZMQ_RCVMORE, &more, &sz);
        }
        /* version, request id, domain, address, routing id, mechanism, credentials */
        if (count < 7 || len[0] != 3 || memcmp(frames[0], "1.0", 3) != 0) {
            zap_reply(self->zap, count > 1 ? frames[1] : "", count > 1 ? len[1] : 0, "500",
                      "bad ZAP request", "");
            continue;
        }
        char addr[64];
        snprintf(addr, sizeof addr, "%.*s", (int) len[3], frames[3]);
        if (len[5] != 5 || memcmp(frames[5], "CURVE", 5) != 0 || len[6] != 32) {
            self->stats.auth_denied_total++;
            zap_reply(self->zap, frames[1], len[1], "400", "CURVE required", "");
            continue;
        }
        char z85[KEYS_Z85_LEN + 1];
        zmq_z85_encode(z85, (const uint8_t *) frames[6], 32);
        const auth_key_t *k = find_key(self, z85);
        if (k != NULL && k->kind == WHO_NOBODY) {
            self->stats.auth_denied_total++;
            int sup = wq_ratelimit(&self->auth_rl, 10, 60000);
            if (sup >= 0)
                log_warn("revoked key refused addr=%s key=%s suppressed=%d", addr, z85, sup);
            zap_reply(self->zap, frames[1], len[1], "400", "key revoked", "");
            continue;
        }
        char uid[KEYS_Z85_LEN + 3];
        snprintf(uid, sizeof uid, "k:%s", z85);
        /* known, or a new key that may only enrol (auth_who) */
        zap_reply(self->zap, frames[1], len[1], "200", "OK", uid);
    }
}

/* ---------- the principal of a message ---------- */

/* A user socket peer (usock.c): root and the scheduler's own account are the local admin,
 * as they are on the admin socket, while there is one; any other uid is the enrolled user
 * named as its account (WHO_NOBODY with no name when there is none: usock.c refuses it with
 * its own line). A name with keys of which some are revoked is the user of those that are
 * not; all revoked: WHO_NOBODY with the name. */
static void
auth_local(sched_t *self, const peer_t *from, who_t *who)
{
    if (self->admin_router != NULL && (from->uid == 0 || from->uid == (uint32_t) geteuid())) {
        who->kind = WHO_LOCAL_ADMIN;
        snprintf(who->name, sizeof who->name, "root");
        return;
    }
    const char *account = usock_account(self, from);
    if (account[0] == '\0')
        return;
    int revoked = 0;
    for (size_t i = 0; i < self->n_keys; i++) {
        const auth_key_t *k = &self->keys[i];
        if (strcmp(k->name, account) != 0 || k->kind == WHO_NODE)
            continue;
        if (k->kind == WHO_NOBODY) {
            revoked = 1;
            continue;
        }
        if (who->kind != WHO_USER) {
            who->kind = WHO_USER;
            snprintf(who->name, sizeof who->name, "%s", k->name);
        }
        who->admin |= k->admin;
    }
    if (who->kind != WHO_USER && revoked)
        snprintf(who->name, sizeof who->name, "%s", account);
}

void
auth_who(sched_t *self, const peer_t *from, const char *user_id, who_t *who)
{
    memset(who, 0, sizeof *who);
    if (from->admin_sock) {
        who->kind = WHO_LOCAL_ADMIN;
        snprintf(who->name, sizeof who->name, "root");
        return;
    }
    if (from->local) {
        auth_local(self, from, who);
        return;
    }
    if (self->cfg.insecure) {
        who->kind = WHO_INSECURE;
        return;
    }
    if (strncmp(user_id, "k:", 2) != 0)
        return; /* WHO_NOBODY: cannot happen with CURVE on */
    snprintf(who->key, sizeof who->key, "%s", user_id + 2);
    const auth_key_t *k = find_key(self, who->key);
    if (k == NULL) {
        who->kind = WHO_ANON;
        return;
    }
    who->kind = k->kind;
    who->admin = k->admin;
    snprintf(who->name, sizeof who->name, "%s", k->name);
}

/* ---------- enrolment ---------- */

static int
make_code(sched_t *self,
          const char *kind,
          const char *name,
          int admin,
          uint32_t valid_s,
          char *code,
          size_t size,
          wq_error_t *err)
{
    char secret[KEYS_SECRET_HEX + 1];
    if (keys_random_hex(secret, sizeof secret, KEYS_SECRET_HEX / 2, err) < 0)
        return -1;
    queue_code_t c = {0};
    keys_hash_hex(secret, c.hash);
    snprintf(c.kind, sizeof c.kind, "%s", kind);
    snprintf(c.name, sizeof c.name, "%s", name);
    c.admin = admin;
    c.made_ms = wq_clock_wall_ms();
    c.expires_ms = c.made_ms + 1000LL * (valid_s ? valid_s : WIRE_CODE_VALID_DEFAULT_S);
    sched_db_begin(self);
    if (self->failed)
        return -1;
    if (queue_code_put(self->q, &c, err) < 0) {
        sched_fatal(self, err);
        return -1;
    }
    keys_code_format(code, size, self->server_keys.public_, secret, self->advertise);
    return 0;
}

void
handle_enrol(sched_t *self, const msg_t *m)
{
    const Wslq__EnrolRequest *r = m->env->enrol;
    wq_error_t err = {0};
    queue_code_t c;
    char hash[KEYS_HEX_LEN + 1];
    keys_hash_hex(r->secret, hash);
    sched_db_begin(self);
    if (self->failed)
        return;
    if (queue_code_take(self->q, hash, wq_clock_wall_ms(), &c, &err) < 0) {
        if (err.code == WQ_EIO) {
            sched_fatal(self, &err);
            return;
        }
        self->stats.enrol_refused_total++;
        int sup = wq_ratelimit(&self->enrol_rl, ENROL_PER_MIN, 60000);
        if (sup < 0) /* many wrong codes: say nothing more precise to a guesser */
            wq_fail(&err, WQ_EPERM, "too many enrolment attempts; try again in a minute");
        else
            log_warn("enrolment refused key=%s: %s", m->who->key, err.text);
        out_error(self, m->from, m->env->request_id, &err);
        return;
    }
    int node = strcmp(c.kind, "node") == 0;
    const char *name = c.name[0] ? c.name : r->node_name;
    if (name[0] == '\0') {
        wq_fail(&err, WQ_EINVAL, "a join code without a node name needs the node's name");
        out_error(self, m->from, m->env->request_id, &err);
        return;
    }
    for (size_t i = 0; node && i < self->n_keys; i++)
        if (self->keys[i].kind == WHO_NODE && strcmp(self->keys[i].name, name) == 0) {
            wq_fail(&err, WQ_EINVAL,
                    "node name %s belongs to another key; an admin must remove it first (wslq "
                    "admin node remove %s)",
                    name, name);
            out_error(self, m->from, m->env->request_id, &err);
            return;
        }
    queue_principal_t p = {0};
    snprintf(p.key, sizeof p.key, "%s", m->who->key);
    snprintf(p.kind, sizeof p.kind, "%s", c.kind);
    snprintf(p.name, sizeof p.name, "%s", name);
    p.admin = c.admin;
    p.since_ms = wq_clock_wall_ms();
    if (queue_principal_put(self->q, &p, &err) < 0 || reload_keys(self, &err) < 0) {
        sched_fatal(self, &err);
        return;
    }
    log_info("enrolled kind=%s name=%s admin=%d key=%s", p.kind, p.name, p.admin, p.key);
    Wslq__EnrolReply rep = WSLQ__ENROL_REPLY__INIT;
    rep.kind = p.kind;
    rep.name = p.name;
    rep.admin = p.admin;
    out_enrol_reply(self, m->from, m->env->request_id, &rep);
}

/* ---------- administration ---------- */

typedef struct {
    Wslq__Principal **list;
    size_t n;
    const char *kind;
} plist_t;

static void
add_principal(plist_t *l,
              const char *kind,
              const char *name,
              int admin,
              const char *key,
              int64_t since,
              int64_t expires)
{
    l->list = wq_realloc(l->list, (l->n + 1) * sizeof *l->list);
    Wslq__Principal *p = wq_malloc(sizeof *p);
    wslq__principal__init(p);
    p->kind = wq_strdup(kind);
    p->name = wq_strdup(name);
    p->admin = admin;
    p->key = wq_strdup(key);
    p->since_ms = since;
    p->expires_ms = expires;
    l->list[l->n++] = p;
}

static void
list_principal(const queue_principal_t *p, void *arg)
{
    plist_t *l = arg;
    if (strcmp(p->kind, l->kind) == 0)
        add_principal(l, p->kind, p->name, p->admin, p->key, p->since_ms, 0);
}

static void
list_code(const queue_code_t *c, void *arg)
{
    plist_t *l = arg;
    if (strcmp(c->kind, l->kind) == 0)
        add_principal(l, "code", c->name, c->admin, "", c->made_ms, c->expires_ms);
}

void
handle_admin(sched_t *self, const msg_t *m)
{
    const Wslq__AdminRequest *r = m->env->admin;
    wq_error_t err = {0};
    Wslq__AdminReply rep = WSLQ__ADMIN_REPLY__INIT;
    char code[512] = "";
    plist_t l = {0};
    int changed = 0;
    sched_db_begin(self);
    if (self->failed)
        return;
    switch (r->op) {
    case WSLQ__ADMIN_REQUEST__OP__USER_ADD:
        if (r->name[0] == '\0') {
            wq_fail(&err, WQ_EINVAL, "a user name is needed");
            break;
        }
        if (make_code(self, "user", r->name, r->admin, r->valid_s, code, sizeof code, &err) == 0) {
            rep.code = code;
            log_info("enrolment code made user=%s admin=%d by=%s", r->name, r->admin, m->who->name);
        }
        break;
    case WSLQ__ADMIN_REQUEST__OP__NODE_INVITE:
        if (make_code(self, "node", r->name, 0, r->valid_s, code, sizeof code, &err) == 0) {
            rep.code = code;
            log_info("join code made node=%s by=%s", r->name[0] ? r->name : "(any)", m->who->name);
        }
        break;
    case WSLQ__ADMIN_REQUEST__OP__USER_REMOVE:
    case WSLQ__ADMIN_REQUEST__OP__NODE_REMOVE: {
        int node = r->op == WSLQ__ADMIN_REQUEST__OP__NODE_REMOVE;
        int n = queue_principals_revoke(self->q, node ? "node" : "user", r->name, &err);
        if (n < 0 || (!node && queue_tokens_revoke(self->q, r->name, &err) < 0)) {
            sched_fatal(self, &err);
            return;
        }
        if (n == 0) {
            wq_fail(&err, WQ_ENOENT, "no %s named %s has a key", node ? "node" : "user", r->name);
            break;
        }
        if (node)
            nodes_forget(self, r->name);
        changed = 1;
        log_warn("%s removed name=%s keys=%d by=%s", node ? "node" : "user", r->name, n,
                 m->who->name);
        break;
    }
    case WSLQ__ADMIN_REQUEST__OP__USER_SET: {
        int n = queue_principals_set_admin(self->q, r->name, r->admin, &err);
        if (n < 0) {
            sched_fatal(self, &err);
            return;
        }
        if (n == 0)
            wq_fail(&err, WQ_ENOENT, "no user named %s has a key", r->name);
        changed = n > 0;
        break;
    }
    case WSLQ__ADMIN_REQUEST__OP__NODE_DRAIN: {
        unsigned running = 0;
        if (r->name[0] == '\0') {
            wq_fail(&err, WQ_EINVAL, "a node name is needed");
            break;
        }
        if (nodes_drain(self, r->name, r->reason, m->who->name, r->now, &running, &err) < 0) {
            if (self->failed)
                return;
            break;
        }
        rep.jobs_on_node = running;
        break;
    }
    case WSLQ__ADMIN_REQUEST__OP__NODE_RESUME:
        if (r->name[0] == '\0') {
            wq_fail(&err, WQ_EINVAL, "a node name is needed");
            break;
        }
        if (nodes_resume(self, r->name, m->who->name, &err) < 0 && self->failed)
            return;
        break;
    case WSLQ__ADMIN_REQUEST__OP__NODE_TAG:
        if (r->name[0] == '\0') {
            wq_fail(&err, WQ_EINVAL, "a node name is needed");
            break;
        }
        if (nodes_tag(self, r->name, r->tags, r->n_tags, m->who->name, &err) < 0 && self->failed)
            return;
        break;
    case WSLQ__ADMIN_REQUEST__OP__USER_LIST:
    case WSLQ__ADMIN_REQUEST__OP__NODE_LIST:
        l.kind = r->op == WSLQ__ADMIN_REQUEST__OP__USER_LIST ? "user" : "node";
        if (queue_principals_list(self->q, list_principal, &l, &err) < 0 ||
            queue_codes_list(self->q, wq_clock_wall_ms(), list_code, &l, &err) < 0) {
            sched_fatal(self, &err);
            break;
        }
        rep.principals = l.list;
        rep.n_principals = l.n;
        break;
    default:
        wq_fail(&err, WQ_EPROTO, "unknown admin operation");
    }
    if (changed && reload_keys(self, &err) < 0) {
        sched_fatal(self, &err);
        return;
    }
    if (err.code != WQ_OK)
        out_error(self, m->from, m->env->request_id, &err);
    else
        out_admin_reply(self, m->from, m->env->request_id, &rep);
    for (size_t i = 0; i < l.n; i++)
        wslq__principal__free_unpacked(l.list[i], NULL);
    free(l.list);
}

/* ---------- dashboard tokens ---------- */

void
handle_token(sched_t *self, const msg_t *m)
{
    wq_error_t err = {0};
    char token[65], hash[KEYS_HEX_LEN + 1];
    if (keys_random_hex(token, sizeof token, 32, &err) < 0) {
        out_error(self, m->from, m->env->request_id, &err);
        return;
    }
    keys_hash_hex(token, hash);
    sched_db_begin(self);
    if (self->failed)
        return;
    if (queue_token_put(self->q, hash, m->who->name, wq_clock_wall_ms(), &err) < 0) {
        sched_fatal(self, &err);
        return;
    }
    log_info("dashboard token made user=%s", m->who->name);
    Wslq__TokenReply rep = WSLQ__TOKEN_REPLY__INIT;
    rep.token = token;
    out_token_reply(self, m->from, m->env->request_id, &rep);
}
