"""Each reference pipeline on its defaults with the subprocess runner (tasks in this
environment, the baseline) and the docker runner (every task in its own container of the
full image), one after the other in the same run: wall time of `kfp-interop run`, and the
ratio docker / subprocess. What the ratio shows: the cost of a container per task
(create, start, a fresh Python importing its libraries) on this machine.

Needs the images (bash scripts/image.sh) and an engine at $DOCKER_HOST.
Usage: ``python benchmarks/runners.py [--pipelines tabular,deep] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PIPELINES = ["tabular", "deep", "transfer-learning", "federated-learning", "warm-start",
             "onnx-import"]


def run(name: str, runner: str, out: str, extra: list[str]) -> tuple[float, dict]:
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "kfp_interop.cli", "run", name, "--local",
                           "--runner", runner, "--output-dir", out, *extra],
                          capture_output=True, text=True, cwd=ROOT)
    seconds = time.monotonic() - start
    if proc.returncode != 0:
        raise SystemExit(f"{name} ({runner}) failed:\n{(proc.stdout + proc.stderr)[-3000:]}")
    with open(os.path.join(out, "summary.json")) as f:
        return seconds, json.load(f)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pipelines", default=",".join(PIPELINES))
    ap.add_argument("--json")
    args = ap.parse_args()
    rows = []
    names = args.pipelines.split(",")
    with tempfile.TemporaryDirectory(prefix="kfp-interop-runners-") as tmp:
        extra: dict[str, list[str]] = {}
        if "onnx-import" in names:  # it has no default model: a tabular run's file
            run("tabular", "subprocess", os.path.join(tmp, "seed"), ["--param",
                                                                      "register=false"])
            extra["onnx-import"] = ["--param",
                                    f"model_uri={os.path.join(tmp, 'seed', 'model.onnx')}"]
        for name in names:
            times = {runner: run(name, runner, os.path.join(tmp, name, runner),
                                 extra.get(name, []))[0]
                     for runner in ("subprocess", "docker")}
            r = {"pipeline": name, **{f"{k}_s": round(v, 1) for k, v in times.items()},
                 "ratio": round(times["docker"] / times["subprocess"], 2)}
            rows.append(r)
            print(f"{name:<20} subprocess {r['subprocess_s']:>6.1f} s   docker "
                  f"{r['docker_s']:>6.1f} s   ratio {r['ratio']:.2f}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
