"""`wslq top` against a loopback cluster: --once prints nodes, GPUs and jobs; the live view
(in a pseudo-terminal) redraws when a job is submitted (pushed by WatchRequest: there is no
timer), survives a resize, and quits on 'q'. The live view also over the scheduler host's user
socket (unix:PATH, its watch parked on that connection): a submission is pushed there too."""
import fcntl
import os
import pty
import re
import select
import signal
import struct
import subprocess
import termios
import time

from cluster import BIN, Cluster, check, finish

ANSI = re.compile(rb"\x1b(\[[0-9;?]*[A-Za-z@`]|[()][0-9A-Za-z]|[=>78]|\][^\x07]*\x07)")


def set_size(fd, rows, cols):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


class Term:
    """A program on a pseudo-terminal; text is everything it drew, escapes removed."""

    def __init__(self, argv, env):
        self.master, slave = pty.openpty()
        set_size(slave, 40, 160)
        self.p = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env,
                                  start_new_session=True)
        os.close(slave)
        self.raw = b""

    def read(self, timeout):
        r, _, _ = select.select([self.master], [], [], timeout)
        if r:
            try:
                self.raw += os.read(self.master, 65536)
            except OSError:
                pass

    def text(self):
        return ANSI.sub(b"", self.raw).decode("utf-8", "replace")

    def wait_text(self, s, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if s in self.text():
                return True
            self.read(0.1)
        return s in self.text()

    def close(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait(5)
        os.close(self.master)


def main():
    c = Cluster(user_socket=True)
    try:
        c.start_worker("pc1", 2)
        env = c.env(WSLQ_SCHEDULER=c.addr, WSLQ_CREDENTIALS=c.creds)
        first = c.submit("--gpus", "1", "--name", "first", "--", "sleep", "30")
        c.wait_state(first, "RUNNING")

        r = c.cli("top", "--once")
        out = r.stdout
        check(r.returncode == 0 and "pc1" in out and "NODE  GPU" in out and "first" in out
              and "GPUs 1/2 in use" in out, "top --once: summary, nodes, GPUs, jobs")
        r = c.cli("top")  # not a terminal: one frame, as --once
        check(r.returncode == 0 and "first" in r.stdout, "top without a terminal prints a frame")
        r = c.cli("top", "extra")
        check(r.returncode == 2 and "unexpected argument" in r.stderr, "top with an operand: 2")
        r = c.cli("top", "--help")
        check(r.returncode == 0 and "--once" in r.stdout, "top --help")
        r = subprocess.run([f"{BIN}/wslq", "--scheduler", "tcp://127.0.0.1:1", "--timeout", "1",
                            "top", "--once"], capture_output=True, text=True, timeout=20, env=env)
        check(r.returncode == 1 and "cannot reach scheduler" in r.stderr,
              "top --once with no scheduler: one line, exit 1")

        t = Term([f"{BIN}/wslq", "top"], dict(env, TERM="xterm"))
        try:
            check(t.wait_text("first", 10), "live view draws the running job")
            # The screen arrives in pieces: wait for its last line, not just the job's.
            check(t.wait_text("q quit", 10) and "pc1" in t.text(), "live view draws nodes and keys")
            jid = c.submit("--gpus", "1", "--name", "pushedjob", "--", "sleep", "30")
            t0 = time.monotonic()
            seen = t.wait_text("pushedjob", 5)
            check(seen, f"a submission is drawn without a key or timer "
                  f"({time.monotonic() - t0:.2f} s)")
            before = len(t.raw)
            set_size(t.master, 24, 90)
            os.killpg(t.p.pid, signal.SIGWINCH)
            deadline = time.monotonic() + 3
            while len(t.raw) == before and time.monotonic() < deadline:
                t.read(0.1)
            check(len(t.raw) > before and t.p.poll() is None, "a resize redraws")
            os.write(t.master, b"q")
            try:
                rc = t.p.wait(3)
            except subprocess.TimeoutExpired:
                rc = None
            check(rc == 0, f"q quits at once (exit {rc})")
        finally:
            t.close()

        # the same live view over the user socket: no keys, its watch parked there
        t = Term([f"{BIN}/wslq", "top"],
                 dict(c.env(WSLQ_SCHEDULER=f"unix:{c.user_sock}"), TERM="xterm"))
        try:
            check(t.wait_text("q quit", 10) and "pushedjob" in t.text(),
                  "live view over the user socket draws the jobs")
            jid2 = c.submit("--gpus", "1", "--name", "unixpushed", "--", "sleep", "30")
            check(t.wait_text("unixpushed", 5), "a submission is pushed over the user socket")
            os.write(t.master, b"q")
            try:
                rc = t.p.wait(3)
            except subprocess.TimeoutExpired:
                rc = None
            check(rc == 0, f"q quits the user socket's view (exit {rc})")
        finally:
            t.close()
        c.cli("cancel", str(first), str(jid), str(jid2))
    finally:
        c.stop()
    finish()


if __name__ == "__main__":
    main()
