#!/usr/bin/env python3
"""Stands in for docker or podman (named so by a link): records the exact command line it was
given, and the values of the variables it passes by name (--env NAME), in
$WQTEST_SHIM_OUT/<container name>.json, then exits 0."""
import json
import os
import sys

args = sys.argv[1:]
name = args[args.index("--name") + 1] if "--name" in args else "none"
passed = {}
for i, a in enumerate(args[:-1]):
    if a == "--env" and "=" not in args[i + 1]:
        passed[args[i + 1]] = os.environ.get(args[i + 1])
with open(os.path.join(os.environ["WQTEST_SHIM_OUT"], name + ".json"), "w") as f:
    json.dump({"engine": os.path.basename(sys.argv[0]), "argv": args, "passed": passed}, f)
