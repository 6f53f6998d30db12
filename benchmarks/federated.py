"""The federated-learning pipeline's cost under kfp.local, for N clients in {2, 4, 8} and
R = 5 rounds, against the centralized baseline (the same model on the pooled rows, as
many epochs as a client trains in all rounds) run as one process in the same session:
wall time, peak memory (the largest process), and the per-task cost of a client step
(its mean duration in the run log, and the start-up every step pays: a fresh
interpreter importing kfp, kfp_interop's steps and the model's framework). kfp.local runs
a round's client steps concurrently, as a cluster would.

The pipeline runs without registration and deploys to the local target, so what is
measured is the federation plus the export/serve tail every pipeline has.

Usage: ``python benchmarks/federated.py [--clients 2 4 8] [--rounds 5] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time

CENTRAL = r"""
import os, sys, tempfile
from kfp_interop.steps import federated_centralized_step, federated_split_step
d = tempfile.mkdtemp()
federated_split_step(dataset="digits", clients=1, partition="iid",
                     partitions_dir=os.path.join(d, "p"), train_path=os.path.join(d, "tr"),
                     test_path=os.path.join(d, "te"))
r = federated_centralized_step(train_path=os.path.join(d, "tr"), test_path=os.path.join(d, "te"),
                     architecture="mlp", epochs=int(sys.argv[1]), out_dir=os.path.join(d, "m"))
print(r["centralized_accuracy"])
"""
STARTUP = ("import kfp.dsl.executor_main, kfp_interop.steps, kfp_interop.data, "
           "kfp_interop.federated.models, torch")


def measured(cmd: list[str]) -> tuple[float, float, subprocess.CompletedProcess]:
    """Wall seconds and peak RSS (MB) of the largest process ``cmd`` ran (its tasks
    included), in a child that reports its own children's peak."""
    probe = (
        "import json, resource, subprocess, sys, time\n"
        "t = time.perf_counter()\n"
        "p = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "w = time.perf_counter() - t\n"
        "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024\n"
        "print(json.dumps({'wall': w, 'peak': peak, 'rc': p.returncode,\n"
        "                  'out': p.stdout[-4000:]}))\n")
    out = subprocess.run([sys.executable, "-c", probe, *cmd], capture_output=True, text=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return result["wall"], result["peak"], result


def task_durations(log: str, prefix: str) -> list[float]:
    """Durations of the tasks named ``prefix...`` from kfp.local's run log timestamps
    (a loop's iterations run concurrently under one name: starts and ends are paired
    first in, first out)."""
    start: dict[str, list[float]] = {}
    out = []
    text = re.sub(r"\x1b\[[0-9;]*m", "", open(log, errors="replace").read())
    # search, not match: lines written by concurrent tasks can run into each other
    for m in re.finditer(r"(\d+):(\d+):(\d+\.\d+) - INFO - (Executing task|Task) "
                         r"'([^']+)'( finished)?", text):
        h, mi, s, kind, task, finished = m.groups()
        if kind == "Task" and not finished:
            continue
        t = int(h) * 3600 + int(mi) * 60 + float(s)
        if not task.startswith(prefix):
            continue
        if kind == "Executing task":
            start.setdefault(task, []).append(t)
        elif start.get(task):
            out.append(t - start[task].pop(0))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clients", type=int, nargs="+", default=[2, 4, 8])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--local-epochs", type=int, default=2)
    ap.add_argument("--json")
    args = ap.parse_args()
    rows = []
    wall, peak, res = measured([sys.executable, "-c", CENTRAL,
                                str(args.rounds * args.local_epochs)])
    central = {"wall_s": round(wall, 2), "peak_mb": round(peak), "accuracy":
               float(res["out"].strip().splitlines()[-1])}
    starts = []
    for _ in range(3):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", STARTUP], check=True, capture_output=True)
        starts.append(time.perf_counter() - t)
    startup = sorted(starts)[1]
    for n in args.clients:
        with tempfile.TemporaryDirectory() as out:
            wall, peak, res = measured([
                sys.executable, "-m", "kfp_interop.cli", "run", "federated-learning",
                "--local", "--output-dir", out, "--param", f"clients={n}",
                "--param", f"rounds={args.rounds}", "--param", "register=false"])
            summary = json.load(open(os.path.join(out, "summary.json")))
            clients = task_durations(os.path.join(out, "run.log"), "federated-client")
            # tasks that ran (kfp.local's log can miss a loop iteration's "finished"
            # line, so the mean is over the tasks whose start and end were both logged)
            ran = glob.glob(os.path.join(out, "runs", "*", "for-loop-*-iteration-*",
                                         "federated-client*", "executor_output.json"))
            rows.append({"clients": n, "rounds": args.rounds, "status": summary["status"],
                         "wall_s": round(wall, 1), "peak_mb": round(peak),
                         "client_tasks": len(ran), "client_tasks_timed": len(clients),
                         "client_task_mean_s": round(sum(clients) / max(1, len(clients)), 2),
                         "federated_accuracy": (summary.get("metrics") or {}).get(
                             "federated_accuracy"),
                         "wall_vs_centralized": round(wall / central["wall_s"], 1),
                         "peak_vs_centralized": round(peak / central["peak_mb"], 2)})
    print(f"centralized baseline (one process): {central['wall_s']} s, peak "
          f"{central['peak_mb']} MB, accuracy {central['accuracy']:.4f}")
    print(f"start-up a step pays (fresh interpreter importing kfp, kfp_interop's steps, "
          f"torch): {startup:.2f} s")
    print(f"{'N':>3} {'R':>3} {'wall s':>8} {'x central':>9} {'peak MB':>8} {'x central':>9} "
          f"{'client tasks (timed)':>20} {'mean s':>7} {'accuracy':>9}")
    for r in rows:
        tasks = f"{r['client_tasks']} ({r['client_tasks_timed']})"
        print(f"{r['clients']:>3} {r['rounds']:>3} {r['wall_s']:>8} {r['wall_vs_centralized']:>9}"
              f" {r['peak_mb']:>8} {r['peak_vs_centralized']:>9} {tasks:>20}"
              f" {r['client_task_mean_s']:>7} {r['federated_accuracy']:>9.4f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"centralized": central, "step_startup_s": startup, "runs": rows}, f,
                      indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
