#!/usr/bin/env python3
"""Self-test of check_refs.py: a checker that cannot fail is no check.

Builds a small fake repository in a temporary folder with one good and one bad reference
of every kind the checker knows (paths in Markdown, in fenced code and in command spans,
paths relative to the citing folder, bare file names, section cites of the design map,
bare section signs, the shared notes, and comments of every source language it reads),
runs the checker on it, and asserts that it reports exactly the bad ones, with their
lines. Then it runs it on the same tree without the bad lines and expects a clean pass.
Both as a git work tree (when git is installed) and as a plain folder.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

CHECKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "check_refs.py")
BAD_MARK = "BAD"  # fixture lines that hold a bad reference end in this word
# The notes outside the repository that the checker must always refuse, spelled in pieces so
# that this file does not itself cite them.
OUTSIDE = "sha" + "red"
OUT_REL = f"../{OUTSIDE}/WSL.md"
OUT_ABS = f"/work/{OUTSIDE}/DESIGN.md"
# a research note the fake tree lacks (spelled in pieces: this file cites nothing itself)
GONE_NOTE = "research/" + "gone-note.md"

# path -> text. A line ending in BAD holds exactly the bad references listed for it in
# EXPECTED; every other reference in the tree must resolve or be allowed.
FILES = {
    "DESIGN.md": """# Design
## 1. Purpose
## 2. Environment
### 2.1 Variables
Own sections: §1 and §2.1.
Own section that is not there: §4 BAD
""",
    "README.md": f"""# Fake repository
Good: `node/doctor.h`, node/facts.h, [doc](node/README.md), `deploy/`, DESIGN.md §2.
Good: DESIGN §1, DESIGN.md §2 and §2.1, the CUDA on WSL guide §5.1, `doctor.h`.
Good, allowed: https://example.com/x/y.md /usr/lib/wsl/lib/libcuda.so.1 $WSLQ_BIN/wslq
Good, allowed: build/bin/wslq <state-dir>/queue.db node/*.h proto/wslq.pb-c.h ~/.bashrc
Bad path: `node/gone.h` BAD
Bad plain path: see deploy/missing.sh for it. BAD
Bad link: [gone](node/nowhere.md) BAD
Bad bare name: `vanished.c` BAD
Bad folder: `node/old/` BAD
Bad section: DESIGN.md §9 BAD
Bad section, short name: DESIGN §7 BAD
Bad section, second of two: DESIGN.md §1 and §3 BAD
Bad bare section sign: the §7.3 checks BAD
Bad shared: {OUT_REL} BAD
Bad shared, absolute: {OUT_ABS} BAD
Bad research note: {GONE_NOTE} BAD
Bad escape: `../outside.md` BAD
Good command span: `wslq submit -- python train.py`
Bad command span: `deploy/lost.sh --dry-run` BAD
```
python3 train.py --epochs 1
deploy/install.sh --dry-run
deploy/absent.sh --dry-run BAD
```
""",
    "deploy/install.sh": """#!/usr/bin/env bash
# Good: node/doctor.h and ../node/facts.h.
# Bad: node/sh_missing.h BAD
echo "node/shstr_missing.h"
cat <<EOF
# node/heredoc_missing.h
EOF
x=${#y} # Bad after code: node/sh_tail_missing.h BAD
""",
    "node/README.md": """# node
Good: `../node/doctor.h`, `doctor.h`, `web/page.js`, `../deploy/install.sh`.
Bad: `../node/gone_rel.h` BAD
Bad, below this folder: `web/nothing.js` BAD
""",
    "node/doctor.h": """/* Good: DESIGN.md §2, `facts.h`, node/README.md. */
#include "node/absent_include.h"
static const char *s = "node/cstr_missing.h /* not a comment */";
static const char c = '"';
/* Bad: DESIGN.md §8 BAD
 * and on the next line node/c_missing.h BAD
 */
// Bad: DESIGN §5 BAD
int f(void); // Bad: node/c_tail_missing.h BAD
""",
    "node/facts.h": "/* Good: nothing to cite. */\n",
    "node/sub/web/page.js": """// Good: node/doctor.h
const a = 'node/jsstr_missing.js';
const b = `node/jstpl_missing.js
// still in the template`;
// Bad: node/js_missing.js BAD
""",
    "node/kern.cu": """// Good: kern.cu
/* Bad: node/cu_missing.cu BAD
 */
""",
    "node/tool.py": '''"""Good docstring: node/doctor.h.
Bad docstring: node/doc_missing.h BAD
"""
X = "node/pystr_missing.h"
# Bad comment: node/py_missing.h BAD


def f():
    """Function docstring.
    Bad: node/fdoc_missing.h BAD
    """
    return "node/pystr2_missing.h"
''',
    "node/CMakeLists.txt": """# Good: doctor.h
message("node/cmstr_missing.c")
# Bad: node/cmake_missing.c BAD
""",
    "node/rules.cmake": """#[[ Good: node/doctor.h
Bad: node/bracket_missing.c BAD
]]
set(X "# node/cmstr2_missing.c")
""",
    "node/setup.ps1": """# Good: node/doctor.h
$x = 'node/psstr_missing.ps1'
<# Bad: node/psblock_missing.ps1 BAD
#>
# Bad: node/ps_missing.ps1 BAD
""",
    ".ci/run": """#!/bin/sh
# Good: deploy/install.sh
# Bad: deploy/ci_missing.sh BAD
""",
    "node/data.bin.txt": "not a source: node/not_scanned.h\n",
}

# (path, reference as the checker prints it) for every bad reference, in the order they
# appear on their BAD lines.
EXPECTED = [
    ("DESIGN.md", "§4"),
    ("README.md", "node/gone.h"),
    ("README.md", "deploy/missing.sh"),
    ("README.md", "node/nowhere.md"),
    ("README.md", "vanished.c"),
    ("README.md", "node/old/"),
    ("README.md", "DESIGN.md §9"),
    ("README.md", "DESIGN §7"),
    ("README.md", "DESIGN.md §3"),
    ("README.md", "§7.3"),
    ("README.md", OUT_REL),
    ("README.md", OUT_ABS),
    ("README.md", GONE_NOTE),
    ("README.md", "../outside.md"),
    ("README.md", "deploy/lost.sh"),
    ("README.md", "deploy/absent.sh"),
    ("deploy/install.sh", "node/sh_missing.h"),
    ("deploy/install.sh", "node/sh_tail_missing.h"),
    ("node/README.md", "../node/gone_rel.h"),
    ("node/README.md", "web/nothing.js"),
    ("node/doctor.h", "DESIGN.md §8"),
    ("node/doctor.h", "node/c_missing.h"),
    ("node/doctor.h", "DESIGN §5"),
    ("node/doctor.h", "node/c_tail_missing.h"),
    ("node/sub/web/page.js", "node/js_missing.js"),
    ("node/kern.cu", "node/cu_missing.cu"),
    ("node/tool.py", "node/doc_missing.h"),
    ("node/tool.py", "node/py_missing.h"),
    ("node/tool.py", "node/fdoc_missing.h"),
    ("node/CMakeLists.txt", "node/cmake_missing.c"),
    ("node/rules.cmake", "node/bracket_missing.c"),
    ("node/setup.ps1", "node/psblock_missing.ps1"),
    ("node/setup.ps1", "node/ps_missing.ps1"),
    (".ci/run", "deploy/ci_missing.sh"),
]

# References that must be seen and found good (so the clean pass is not an empty one).
MUST_RESOLVE = [
    ("README.md", "node/doctor.h"),
    ("README.md", "node/README.md"),
    ("README.md", "DESIGN.md §2"),
    ("README.md", "DESIGN.md §2.1"),
    ("README.md", "doctor.h"),
    ("node/README.md", "web/page.js"),
    ("node/README.md", "../deploy/install.sh"),
    ("node/doctor.h", "DESIGN.md §2"),
    ("deploy/install.sh", "../node/facts.h"),
    ("node/tool.py", "node/doctor.h"),
    ("DESIGN.md", "§2.1"),
]

REPORT_RE = re.compile(r"^(.+?):(\d+): cites '(.*)', which does not exist$")
failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL: " + msg)


def write_tree(root, drop_bad):
    for path, text in FILES.items():
        if drop_bad:
            text = "".join(
                ln for ln in text.splitlines(True) if not ln.rstrip().endswith(BAD_MARK)
            )
        full = os.path.join(root, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w", encoding="utf-8") as f:
            f.write(text)


def expected_lines():
    """(path, line, ref) for EXPECTED, lines found from the BAD markers."""
    out = set()
    for path, ref in EXPECTED:
        lines = FILES[path].splitlines()
        hits = [i + 1 for i, ln in enumerate(lines) if ln.rstrip().endswith(BAD_MARK) and
                (ref in ln or ref.split(" ")[-1] in ln)]
        if not hits:
            raise SystemExit("selftest bug: no BAD line in %s for %r" % (path, ref))
        out.add((path, hits[0], ref))
    return out


def run(root, verbose=False):
    cmd = [sys.executable, CHECKER] + (["--verbose"] if verbose else []) + [root]
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                       universal_newlines=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def reported(stdout):
    out = set()
    for ln in stdout.splitlines():
        m = REPORT_RE.match(ln)
        if m:
            out.add((m.group(1), int(m.group(2)), m.group(3)))
    return out


def check_tree(label, make_git):
    base = tempfile.mkdtemp(prefix="check_refs_selftest.")
    try:
        for drop_bad in (False, True):
            root = os.path.join(base, "clean" if drop_bad else "dirty")
            os.makedirs(root)
            write_tree(root, drop_bad)
            if make_git:
                with open(os.path.join(root, ".gitignore"), "w") as f:
                    f.write("/build*/\nnode/generated.h\n")
                os.makedirs(os.path.join(root, "build", "bin"))
                with open(os.path.join(root, "build", "notes.md"), "w") as f:
                    f.write("Ignored, never read: node/ignored_missing.h\n")
                with open(os.path.join(root, "node", "generated.h"), "w") as f:
                    f.write("/* ignored by git */\n")
                subprocess.run(["git", "init", "-q", root], check=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            rc, out, err = run(root)
            if not drop_bad:
                want = expected_lines()
                got = reported(out)
                if rc != 1:
                    fail("%s: exit %d on the tree with bad references, want 1" % (label, rc))
                for miss in sorted(want - got):
                    fail("%s: not reported: %s:%d: %r" % (label, miss[0], miss[1], miss[2]))
                for extra in sorted(got - want):
                    fail("%s: reported but good: %s:%d: %r" % (label, extra[0], extra[1],
                                                                extra[2]))
                junk = [ln for ln in out.splitlines() if ln and not REPORT_RE.match(ln)]
                if junk:
                    fail("%s: unexpected output lines: %r" % (label, junk[:3]))
            else:
                if rc != 0 or reported(out):
                    fail("%s: clean tree: exit %d, output %r %r" % (label, rc, out, err))
                elif not re.match(r"^check_refs: \d+ references in \d+ files, all resolve$",
                                  out.strip()):
                    fail("%s: clean tree: want the one-line count, got %r" % (label, out))
                rc, vout, _ = run(root, verbose=True)
                for path, ref in MUST_RESOLVE:
                    if not re.search(r"^%s:\d+: ok %s$" % (re.escape(path), re.escape(repr(ref))),
                                     vout, re.M):
                        fail("%s: good reference not seen as one: %s %r" % (label, path, ref))
                if make_git:
                    # ignored by git: not read, and citing it would not count as present
                    with open(os.path.join(root, "node", "README.md"), "a") as f:
                        f.write("Ignored file: `node/generated.h`\n")
                    rc, out, _ = run(root)
                    n = len(FILES["node/README.md"].splitlines()) - 2 + 1
                    want = {("node/README.md", n, "node/generated.h")}
                    if rc != 1 or reported(out) != want:
                        fail("%s: a git-ignored file counted as present: %r" % (label, out))
    finally:
        shutil.rmtree(base, ignore_errors=True)


def main():
    check_tree("plain folder", make_git=False)
    if shutil.which("git"):
        check_tree("git work tree", make_git=True)
    else:
        print("git not installed: the git work tree case is skipped")
    if failures:
        print("check_refs_selftest: %d failures" % len(failures))
        return 1
    print("check_refs_selftest: %d bad references found exactly, clean trees pass"
          % len(EXPECTED))
    return 0


if __name__ == "__main__":
    sys.exit(main())
