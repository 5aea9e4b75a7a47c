#!/usr/bin/env bash
# wslq against task-spooler, back to back on this machine; see vs_tsp.py for the figures.
#   bench/vs_tsp.sh [BIN] [--mode curve|insecure] [--sync full|normal] [--idle-s S] ...
exec python3 "$(dirname "$0")/vs_tsp.py" "$@"
