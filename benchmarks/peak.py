"""python -m benchmarks.peak MODULE ARGS...: run `python -m MODULE ARGS` in this process, then print its peak memory.

The last line printed is JSON: {"exit": code, "peak_mb": ...}, the largest resident set of this process
or of any worker process it waited for.
"""

from __future__ import annotations

import json
import resource
import runpy
import sys


def main() -> int:
    module, *args = sys.argv[1:]
    sys.argv = [module, *args]
    code = 0
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 2)
    peak_kb = max(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    sys.stdout.flush()
    print(json.dumps({"exit": code, "peak_mb": round(peak_kb / 1024, 1)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
