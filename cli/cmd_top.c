/* wslq top: a live terminal view of nodes, GPUs and the queue.
 *
 * It redraws on pushed changes, not on a timer: a WatchRequest {since_version, wait_ms} is
 * parked by the scheduler until anything about jobs or nodes changes; its reply triggers a
 * fresh NodesRequest + QueueRequest and a redraw. The watch goes out on a socket of its own
 * so this command can zmq_poll() it together with the keyboard: 'q' quits at once, a
 * terminal resize redraws at once. Redraws are at most REDRAW_MIN_MS apart (heartbeats change
 * GPU numbers every second on every node).
 *
 * The frame is the text of `wslq nodes` and `wslq queue` (print.h), so the three agree;
 * --once prints one frame without curses (also what happens when stdout is not a terminal). */
#include <curses.h>
#include <errno.h>
#include <inttypes.h>
#include <locale.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>
#include <wchar.h>
#include <zmq.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/opt.h"
#include "cli/print.h"
#include "common/clock.h"
#include "common/mem.h"

#define WATCH_WAIT_MS 30000 /* longest park; the scheduler caps it at 60000 */
#define REDRAW_MIN_MS 250
#define QUEUE_LIMIT   500

static const char usage[] =
    "usage: wslq top [--once]\n"
    "\n"
    "A live view of the cluster: a summary line, every node with its GPUs (memory,\n"
    "temperature, utilisation, holding job), then the waiting and running jobs. It redraws\n"
    "when the scheduler reports a change. Keys: q quits.\n"
    "  --once              print one frame and exit (no terminal needed)\n"
    "  --scheduler ADDR, --timeout SEC   as for every command\n";

enum { O_ONCE = 1 };
static const opt_t opts[] = {{"once", 0, 0, O_ONCE}, OPT_COMMON, {NULL, 0, 0, 0}};

typedef struct {
    Wslq__Envelope *nodes; /* NodesReply; owned */
    Wslq__Envelope *queue; /* QueueReply; owned */
    char error[300];       /* last failure, shown instead of stale data; "" = none */
} frame_t;

static void
frame_clear(frame_t *f)
{
    wire_free(&f->nodes);
    wire_free(&f->queue);
    f->error[0] = '\0';
}

/* Fetch nodes and active jobs. On failure keeps the text in f->error. */
static void
fetch(client_t *c, frame_t *f)
{
    frame_clear(f);
    wq_error_t err = {0};
    f->nodes = client_nodes(c, NULL, &err);
    if (f->nodes == NULL) {
        snprintf(f->error, sizeof f->error, "%s", err.text);
        return;
    }
    Wslq__QueueRequest qr = WSLQ__QUEUE_REQUEST__INIT;
    qr.limit = QUEUE_LIMIT;
    Wslq__Envelope env2 = WSLQ__ENVELOPE__INIT;
    env2.body_case = WSLQ__ENVELOPE__BODY_QUEUE;
    env2.queue = &qr;
    f->queue = client_call(c, &env2, WSLQ__ENVELOPE__BODY_QUEUE_REPLY, 0, &err);
    if (f->queue == NULL)
        snprintf(f->error, sizeof f->error, "%s", err.text);
}

/* The frame as text (caller owns the result): a summary line, nodes and GPUs, the queue. */
static char *
render(const frame_t *f, const char *addr, int64_t now_ms)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    if (out == NULL)
        return wq_strdup("wslq: out of memory\n");
    time_t t = (time_t) (now_ms / 1000);
    struct tm tm;
    char clock[16];
    strftime(clock, sizeof clock, "%H:%M:%S", localtime_r(&t, &tm));
    if (f->error[0] || f->nodes == NULL || f->queue == NULL) {
        fprintf(out, "wslq top - %s - %s\n\nwslq: %s\n", addr, clock,
                f->error[0] ? f->error : "no answer yet");
        fclose(out);
        return buf;
    }
    const Wslq__NodesReply *nr = f->nodes->nodes_reply;
    const Wslq__QueueReply *qr = f->queue->queue_reply;
    unsigned up = 0, gpus = 0, used = 0, running = 0, pending = 0;
    for (size_t i = 0; i < nr->n_nodes; i++) {
        const Wslq__NodeInfo *n = nr->nodes[i];
        up += n->state && strcmp(n->state, "torpid") != 0 && strcmp(n->state, "lost") != 0;
        gpus += (unsigned) n->n_gpus;
        for (size_t g = 0; g < n->n_gpus; g++)
            used += n->gpus[g]->job_id != 0 || n->gpus[g]->n_shared_jobs > 0;
    }
    for (size_t i = 0; i < qr->n_jobs; i++) {
        running += qr->jobs[i]->state == WSLQ__JOB_STATE__RUNNING ||
                   qr->jobs[i]->state == WSLQ__JOB_STATE__STARTING;
        pending += qr->jobs[i]->state == WSLQ__JOB_STATE__PENDING;
    }
    fprintf(out,
            "wslq top - %s - %s - nodes %u/%zu up - GPUs %u/%u in use - jobs %u running, %u%s "
            "pending\n\n",
            addr, clock, up, nr->n_nodes, used, gpus, running, pending, qr->more ? "+" : "");
    if (nr->n_nodes == 0)
        fprintf(out, "No nodes have registered yet.\n");
    else
        print_nodes(nr, now_ms, out);
    fputc('\n', out);
    if (qr->n_jobs == 0)
        fprintf(out, "No jobs waiting or running.\n");
    else
        print_queue(qr, now_ms, 0, out);
    if (qr->more)
        fprintf(out, "(more jobs than the %d shown)\n", QUEUE_LIMIT);
    fclose(out);
    return buf;
}

/* ---------- curses ---------- */

static int
is_header(const char *line)
{
    while (*line == ' ')
        line++;
    return strncmp(line, "NAME ", 5) == 0 || strncmp(line, "NODE ", 5) == 0 ||
           strncmp(line, "ID ", 3) == 0;
}

static void
draw(const char *text, const char *status)
{
    erase();
    int rows = LINES, cols = COLS;
    int y = 0;
    const char *p = text;
    wchar_t *wline = wq_malloc(((size_t) cols + 1) * sizeof *wline);
    while (*p && y < rows - 1) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t) (nl - p) : strlen(p);
        char *line = wq_strndup(p, n);
        /* Lines are UTF-8 (the tables cut long cells with '…'); clip by characters. */
        mbstate_t st;
        memset(&st, 0, sizeof st);
        const char *src = line;
        size_t w = mbsrtowcs(wline, &src, (size_t) cols, &st);
        if (w == (size_t) -1)
            w = 0;
        wline[w] = L'\0';
        if (y == 0 || is_header(line))
            attron(A_BOLD);
        mvaddnwstr(y, 0, wline, cols);
        attroff(A_BOLD);
        free(line);
        y++;
        if (nl == NULL)
            break;
        p = nl + 1;
        if (y == rows - 1 && *p) {
            mvaddstr(y - 1, 0, "... (enlarge the terminal to see more)");
            break;
        }
    }
    free(wline);
    attron(A_REVERSE);
    mvaddnstr(rows - 1, 0, status, cols);
    for (int x = (int) strlen(status); x < cols; x++)
        mvaddch(rows - 1, x, ' ');
    attroff(A_REVERSE);
    refresh();
}

/* The watch socket: a DEALER of our own, polled together with the keyboard. */
typedef struct {
    client_t *c;      /* a connection of its own (keys and all) */
    uint64_t pending; /* request_id of the watch in flight; 0 = none */
    int64_t sent_ms;  /* monotonic */
} watch_t;

static int
watch_open(watch_t *w, const cli_ctx_t *ctx, wq_error_t *err)
{
    memset(w, 0, sizeof *w);
    w->c = client_new(ctx, err);
    if (w->c == NULL)
        return -1;
    return 0;
}

static void
watch_close(watch_t *w)
{
    client_destroy(&w->c);
}

static void
watch_send(watch_t *w, uint64_t since)
{
    Wslq__WatchRequest wr = WSLQ__WATCH_REQUEST__INIT;
    wr.since_version = since;
    wr.wait_ms = WATCH_WAIT_MS;
    Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
    env.body_case = WSLQ__ENVELOPE__BODY_WATCH;
    env.watch = &wr;
    uint64_t id = 0;
    while (id == 0)
        if (getrandom(&id, sizeof id, 0) != sizeof id)
            id = (uint64_t) wq_clock_mono_ms();
    env.request_id = id;
    w->pending = client_post(w->c, &env) == 0 ? id : 0;
    w->sent_ms = wq_clock_mono_ms();
}

/* A reply on the watch socket: 1 with *version for our watch's answer, 0 otherwise. */
static int
watch_recv(watch_t *w, uint64_t *version)
{
    int got = 0;
    Wslq__Envelope *env;
    while ((env = client_take(w->c)) != NULL) {
        if (env->request_id == w->pending && env->body_case == WSLQ__ENVELOPE__BODY_WATCH_REPLY) {
            *version = env->watch_reply->version;
            w->pending = 0;
            got = 1;
        } else if (env->request_id == w->pending) {
            w->pending = 0; /* an ErrorReply (an old scheduler): fall back to the timer */
            got = 1;
        }
        wire_free(&env);
    }
    return got;
}

static int
run_live(cli_ctx_t *ctx, client_t *c)
{
    wq_error_t err = {0};
    watch_t w;
    if (watch_open(&w, ctx, &err) < 0) {
        watch_close(&w);
        return cli_fail(&err);
    }
    setlocale(LC_ALL, "");
    if (initscr() == NULL) {
        watch_close(&w);
        fprintf(stderr, "wslq: cannot start the terminal view (TERM=%s); try --once\n",
                getenv("TERM") ? getenv("TERM") : "");
        return CLI_FAIL;
    }
    cbreak();
    noecho();
    nodelay(stdscr, TRUE);
    keypad(stdscr, TRUE);
    curs_set(0);

    frame_t f = {0};
    uint64_t version = 0;
    int64_t last_fetch = 0;
    int want_fetch = 1, quit = 0;
    char *text = NULL;
    char status[200];
    while (!quit) {
        int64_t now = wq_clock_mono_ms();
        if (want_fetch && now - last_fetch >= REDRAW_MIN_MS) {
            fetch(c, &f);
            last_fetch = wq_clock_mono_ms();
            want_fetch = 0;
            free(text);
            text = render(&f, ctx->scheduler, wq_clock_wall_ms());
            snprintf(status, sizeof status, " q quit | redraws on every change | version %" PRIu64,
                     version);
            draw(text, status);
        }
        if (w.pending == 0 && !want_fetch)
            watch_send(&w, version);
        /* No answer within the park time plus the reply timeout: ask again (and refetch, so
         * an unreachable scheduler shows up on screen). */
        if (w.pending && now - w.sent_ms > WATCH_WAIT_MS + ctx->timeout_ms) {
            w.pending = 0;
            want_fetch = 1;
        }
        long timeout = want_fetch ? REDRAW_MIN_MS - (now - last_fetch) : 1000;
        if (timeout < 0)
            timeout = 0;
        zmq_pollitem_t items[] = {{0}, {NULL, STDIN_FILENO, ZMQ_POLLIN, 0}};
        client_pollitem(w.c, &items[0]);
        int rc = zmq_poll(items, 2, timeout);
        if (rc < 0 && errno != EINTR)
            break;
        if (rc > 0 && (items[0].revents & ZMQ_POLLIN) && watch_recv(&w, &version))
            want_fetch = 1;
        /* Keys, and KEY_RESIZE (ncurses turns SIGWINCH into it; zmq_poll returned EINTR). */
        int ch;
        while ((ch = getch()) != ERR) {
            if (ch == 'q' || ch == 'Q' || ch == 3)
                quit = 1;
            else if (ch == KEY_RESIZE || ch == 12 /* ^L */)
                draw(text ? text : "", status);
        }
    }
    endwin();
    free(text);
    frame_clear(&f);
    watch_close(&w);
    return CLI_OK;
}

int
cmd_top(cli_ctx_t *ctx, int argc, char **argv)
{
    int once = 0;
    wq_error_t err = {0};
    opt_parser_t p;
    opt_parser_init(&p, argc, argv, 0);
    int id = opt_flag_loop(ctx, &p, opts, O_ONCE, usage, &once, &err);
    if (id > 0) {
        opt_parser_fini(&p);
        return CLI_OK;
    }
    if (id == 0 && p.n_operands > 0) {
        wq_fail(&err, WQ_EINVAL, "unexpected argument '%.40s'", p.operands[0]);
        id = -1;
    }
    opt_parser_fini(&p);
    if (id < 0)
        return cli_usage_error(ctx, "%s", err.text);

    client_t *c = client_new(ctx, &err);
    if (c == NULL)
        return cli_fail(&err);
    int rc;
    if (once || !isatty(STDOUT_FILENO) || !isatty(STDIN_FILENO)) {
        frame_t f = {0};
        fetch(c, &f);
        if (f.error[0]) {
            wq_fail(&err, WQ_ETIMEDOUT, "%s", f.error);
            rc = cli_fail(&err);
        } else {
            char *text = render(&f, ctx->scheduler, wq_clock_wall_ms());
            rc = fputs(text, stdout) < 0 || fflush(stdout) != 0 ? CLI_FAIL : CLI_OK;
            free(text);
        }
        frame_clear(&f);
    } else {
        rc = run_live(ctx, c);
    }
    client_destroy(&c);
    return rc;
}
