"""ddp_allreduce.py with failures on request, for torchrun's restarts and a failing rank:
WQTEST_CRASH_ONCE=R makes global rank R exit 3 in the first round only (torchrun's
TORCHELASTIC_RESTART_COUNT 0), WQTEST_FAIL=R makes rank R exit 5 every time."""
import os
import runpy
import sys

rank = os.environ["RANK"]
if os.environ.get("WQTEST_CRASH_ONCE") == rank and os.environ["TORCHELASTIC_RESTART_COUNT"] == "0":
    print(f"ddp rank={rank} crashes in round 0", flush=True)
    sys.exit(3)
if os.environ.get("WQTEST_FAIL") == rank:
    print(f"ddp rank={rank} fails", flush=True)
    sys.exit(5)
print(f"ddp rank={rank} round={os.environ['TORCHELASTIC_RESTART_COUNT']}", flush=True)
runpy.run_path(os.path.join(os.path.dirname(os.path.abspath(__file__)), "ddp_allreduce.py"))
