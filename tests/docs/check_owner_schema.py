#!/usr/bin/env python3
"""The owner reporter's contract: deploy/windows/wslq-owner.ps1 writes exactly the keys of
deploy/windows/owner.schema.json (top level, each gpu_procs entry, tdr), and the example in
deploy/windows/README.md is valid against the schema. PowerShell cannot run here, so the keys
are read from the script's hashtable literals. Also checks that a wrong key is caught."""
import json
import os
import re
import sys

ROOT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..")
WIN = os.path.join(ROOT, "deploy", "windows")


def literal_keys(block):
    """Keys of a PowerShell [ordered]@{ k = v; ... } literal body (one per line or ';')."""
    keys = []
    for part in re.split(r"[;\n]", block):
        m = re.match(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*=", part)
        if m:
            keys.append(m.group(1))
    return keys


def script_keys(ps1):
    """{'top': [...], 'gpu_procs': [...], 'tdr': [...]} as the script writes them."""
    top = re.search(r"\$report = \[ordered\]@\{(.*?)\n    \}", ps1, re.S)
    proc = re.search(r"\$out \+= \[ordered\]@\{(.*?)\}", ps1, re.S)
    tdr = re.search(r"\$t = \[ordered\]@\{(.*?)\}", ps1, re.S)
    if not (top and proc and tdr):
        raise ValueError("wslq-owner.ps1: the report, gpu_procs or tdr literal is not found")
    return {"top": literal_keys(top.group(1)), "gpu_procs": literal_keys(proc.group(1)),
            "tdr": literal_keys(tdr.group(1))}


def schema_keys(schema):
    p = schema["properties"]
    return {"top": list(p), "gpu_procs": list(p["gpu_procs"]["items"]["properties"]),
            "tdr": list(p["tdr"]["properties"])}


def compare(got, want):
    errs = []
    for part in ("top", "gpu_procs", "tdr"):
        if sorted(got[part]) != sorted(want[part]):
            errs.append("%s: script writes %s, schema has %s" % (part, sorted(got[part]),
                                                               sorted(want[part])))
    return errs


def valid(value, s):
    """The subset of JSON Schema owner.schema.json uses."""
    if "const" in s:
        return value == s["const"]
    t = s.get("type")
    if t == "object":
        if not isinstance(value, dict) or any(k not in value for k in s.get("required", [])):
            return False
        return all(valid(value[k], sub) for k, sub in s.get("properties", {}).items() if k in value)
    if t == "array":
        return isinstance(value, list) and all(valid(v, s["items"]) for v in value)
    if t == "boolean":
        return isinstance(value, bool)
    if t == "string":
        return isinstance(value, str)
    if t in ("integer", "number"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if t == "integer" and not isinstance(value, int):
            return False
        return s.get("minimum", value) <= value <= s.get("maximum", value)
    raise ValueError("schema type %r not handled" % t)


def main():
    ps1 = open(os.path.join(WIN, "wslq-owner.ps1"), encoding="utf-8").read()
    schema = json.load(open(os.path.join(WIN, "owner.schema.json"), encoding="utf-8"))
    readme = open(os.path.join(WIN, "README.md"), encoding="utf-8").read()
    errs = compare(script_keys(ps1), schema_keys(schema))
    m = re.search(r"Example:\n\n```json\n(.*?)```", readme, re.S)
    if not m:
        errs.append("README.md: no ```json example after 'Example:'")
    elif not valid(json.loads(m.group(1)), schema):
        errs.append("README.md: the example does not match owner.schema.json")
    if "version      = 1" not in ps1:
        errs.append("wslq-owner.ps1 does not write version 1")
    # the check can fail: a key renamed in the script, a bad example
    broken = script_keys(ps1.replace("idle_s       =", "idle         ="))
    if not compare(broken, schema_keys(schema)):
        errs.append("self-check: a renamed key was not caught")
    if valid({"version": 1}, schema):
        errs.append("self-check: an incomplete report was accepted")
    for e in errs:
        print("FAIL:", e)
    if errs:
        return 1
    print("ok: wslq-owner.ps1 writes the keys of owner.schema.json; the README example is valid")
    return 0


if __name__ == "__main__":
    sys.exit(main())
