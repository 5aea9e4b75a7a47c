#!/usr/bin/env python3
"""`wslq doctor`'s gpu.tdr check with a fake reg.exe first on PATH, printing what the real one
prints through WSL interop: TdrDelay set to 8 s (PASS), set to 2 s and not set (WARN, with
the fix), garbled output and a reg.exe that fails otherwise (INFO); no reg.exe at all on a
machine that is not WSL: no check."""
import json
import os
import stat
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from cluster import BIN, check, finish  # noqa: E402

KEY = "HKEY_LOCAL_MACHINE\\System\\CurrentControlSet\\Control\\GraphicsDrivers"
SET = "\r\n{key}\r\n    TdrDelay    REG_DWORD    {value}\r\n\r\n"
ABSENT_ERR = "ERROR: The system was unable to find the specified registry key or value.\r\n"

d = tempfile.mkdtemp(prefix="wslq-doctor-tdr-")


def fake_reg(stdout, stderr="", rc=0):
    """A reg.exe that checks its arguments as wslq passes them and prints stdout/stderr."""
    with open(os.path.join(d, "out"), "w", newline="") as f:
        f.write(stdout)
    with open(os.path.join(d, "err"), "w", newline="") as f:
        f.write(stderr)
    exe = os.path.join(d, "reg.exe")
    with open(exe, "w") as f:
        f.write("#!/bin/sh\n"
                f"[ \"$1 $3 $4\" = 'query /v TdrDelay' ] || {{ echo \"bad args: $*\" >&2; exit 9; }}\n"
                f"cat {d}/out; cat {d}/err >&2; exit {rc}\n")
    os.chmod(exe, stat.S_IRWXU)


def tdr_check(path_first=True):
    env = dict(os.environ, PATH=(d + ":" if path_first else "") + "/usr/bin:/bin",
               WSLQ_SYSTEM_CONFIG=os.devnull)
    r = subprocess.run([f"{BIN}/wslq", "doctor", "--no-gpu", "--json"], capture_output=True,
                       text=True, timeout=60, env=env)
    if r.returncode not in (0, 1):
        return {"error": r.stderr}
    found = [c for c in json.loads(r.stdout)["checks"] if c["id"] == "gpu.tdr"]
    return found[0] if found else None


fake_reg(SET.format(key=KEY, value="0x8"))
c = tdr_check()
check(c and c["verdict"] == "pass" and c["summary"].startswith("TdrDelay is 8 s"), f"8 s: {c}")

fake_reg(SET.format(key=KEY, value="0x2"))
c = tdr_check()
check(c and c["verdict"] == "warn" and c["summary"].startswith("TdrDelay is 2 s: a CUDA kernel")
      and "TdrDelay" in c["fix"], f"2 s: {c}")

fake_reg("", ABSENT_ERR, rc=1)
c = tdr_check()
check(c and c["verdict"] == "warn" and "TdrDelay is 2 s (not set: Windows' default)" in
      c["summary"], f"not set: {c}")

fake_reg("hello\r\nTdrDelay REG_SZ eight\r\n")
c = tdr_check()
check(c and c["verdict"] == "info" and "unexpected output" in c["summary"], f"garbled: {c}")

fake_reg("", "ERROR: Access is denied.\r\n", rc=5)
c = tdr_check()
check(c and c["verdict"] == "info" and "could not read TdrDelay" in c["summary"],
      f"reg.exe fails: {c}")

# no reg.exe anywhere (this machine is not WSL): nothing to say
is_wsl = os.path.exists("/dev/dxg") or "microsoft" in open("/proc/version").read().lower()
if not is_wsl and not os.path.exists("/mnt/c/Windows/System32/reg.exe"):
    c = tdr_check(path_first=False)
    check(c is None, f"no reg.exe, not WSL: no check ({c})")

# the text form shows it too
fake_reg(SET.format(key=KEY, value="0xa"))
r = subprocess.run([f"{BIN}/wslq", "doctor", "--no-gpu"], capture_output=True, text=True,
                   timeout=60, env=dict(os.environ, PATH=d + ":/usr/bin:/bin",
                                        WSLQ_SYSTEM_CONFIG=os.devnull))
check("PASS  gpu.tdr" in r.stdout and "TdrDelay is 10 s" in r.stdout, f"text:\n{r.stdout}")
finish()
