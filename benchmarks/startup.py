"""Start-up costs a user pays on every command: ``import kfp_interop`` and compiling
every reference pipeline, each in a fresh process, against the baseline of a bare Python
start measured in the same run. Targets: the import under 0.3 s, compiling every
reference pipeline under 3 s in total.

The import is timed inside the process (``time.perf_counter`` around the import; the
interpreter's own start is the baseline, reported beside it); compiling is timed from
the import of kfp_interop.pipelines to the last YAML written, all five pipelines in one
process, as ``kfp-interop compile --all`` does.

Usage: ``python benchmarks/startup.py [--repeat 5] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

IMPORT = ("import time; t = time.perf_counter(); import kfp_interop; "
          "print(time.perf_counter() - t)")
COMPILE = r"""
import os, sys, tempfile, time
t = time.perf_counter()
from kfp_interop.pipelines import PIPELINES, compile_pipeline
with tempfile.TemporaryDirectory() as d:
    for name in PIPELINES.names():
        compile_pipeline(name, os.path.join(d, name + ".yaml"))
print(time.perf_counter() - t, len(PIPELINES.names()))
"""


def fresh(code: str) -> tuple[float, list[str]]:
    """Wall time of a fresh ``python -c code`` and what it printed."""
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True).stdout.split()
    return time.perf_counter() - start, out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json")
    args = ap.parse_args()
    bare = statistics.median(fresh("pass")[0] for _ in range(args.repeat))
    imports = [float(fresh(IMPORT)[1][0]) for _ in range(args.repeat)]
    compiles = [fresh(COMPILE)[1] for _ in range(args.repeat)]
    cli = statistics.median(fresh("import sys; from kfp_interop.cli import main; "
                                  "sys.argv = ['kfp-interop', 'pipelines']; main()")[0]
                            for _ in range(args.repeat))
    result = {
        "python_start_s": round(bare, 4),
        "import_kfp_interop_s": round(statistics.median(imports), 4),
        "compile_all_pipelines_s": round(statistics.median(float(c[0]) for c in compiles), 3),
        "pipelines": int(compiles[0][1]),
        "cli_pipelines_wall_s": round(cli, 4),
    }
    result["import_vs_python_start"] = round(result["import_kfp_interop_s"] / bare, 2)
    result["targets"] = {"import_under_0.3_s": result["import_kfp_interop_s"] < 0.3,
                         "compile_under_3_s": result["compile_all_pipelines_s"] < 3.0}
    print(f"python start (baseline)        {bare * 1000:8.1f} ms")
    print(f"import kfp_interop             {result['import_kfp_interop_s'] * 1000:8.1f} ms"
          f"   ({result['import_vs_python_start']}x the bare start; target < 300 ms)")
    print(f"kfp-interop pipelines (wall)   {cli * 1000:8.1f} ms   (the whole command, "
          "interpreter start included)")
    print(f"compile {result['pipelines']} reference pipelines  "
          f"{result['compile_all_pipelines_s'] * 1000:8.1f} ms   (target < 3000 ms)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return 0 if all(result["targets"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
