"""The main job's speed: the `tabular` pipeline on its defaults under kfp.local (one
process per task, the way `kfp-interop run --local` runs it) against the same steps
called in one process (the baseline: the work itself, no task overhead), in the same
run. Prints both wall times, the ratio (target: at most 1.5x), and task by task where
the rest goes: each task's wall time in the kfp.local run beside the same step's time
in one process.

Usage: ``python benchmarks/pipeline.py [--json out.json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time

STEPS = ["check-settings", "fingerprint-data", "load-data", "train", "export-onnx",
         "optimize", "attach-metadata", "upload-model", "deploy", "smoke-test", "register-model",
         "promote"]


def in_one_process(out: str) -> tuple[float, dict[str, float]]:
    """The tabular pipeline's steps on its local defaults, called in this process."""
    from kfp_interop import steps

    times: dict[str, float] = {}
    p = {k: os.path.join(out, k) for k in ("train", "test", "native", "exported",
                                           "optimized", "model", "upload", "deploy",
                                           "smoke", "register", "promote", "fingerprint")}
    repo = os.path.join(out, "model-repository")
    tracking = "sqlite:///" + os.path.join(out, "mlflow.db")
    start = time.perf_counter()

    def timed(name, fn, **kw):
        t0 = time.perf_counter()
        result = fn(**kw)
        times[name] = time.perf_counter() - t0
        return result

    timed("check-settings", steps.check_settings_step, deploy_target="local",
          storage_uri=repo, register=True, tracking_uri=tracking)
    timed("fingerprint-data", steps.fingerprint_data_step, dataset="iris")
    timed("load-data", steps.load_data_step, dataset="iris", train_path=p["train"],
          test_path=p["test"])
    timed("train", steps.train_step, train_path=p["train"], test_path=p["test"],
          framework="sklearn", estimator="random_forest", model_dir=p["native"])
    timed("export-onnx", steps.export_onnx_step, model_dir=p["native"], test_path=p["test"],
          out_dir=p["exported"])
    timed("optimize", steps.optimize_step, model_path=p["exported"], test_path=p["test"],
          choice="none", out_dir=p["optimized"])
    timed("attach-metadata", steps.attach_metadata_step, model_dir=p["optimized"],
          out_dir=p["model"])
    timed("upload-model", steps.upload_model_step, model_dir=p["model"], storage_uri=repo,
          out_dir=p["upload"])
    timed("deploy", steps.deploy_step, model_dir=p["model"], out_dir=p["deploy"])
    os.makedirs(p["smoke"], exist_ok=True)
    timed("smoke-test", steps.smoke_test_step, deployment_dir=p["deploy"],
          model_dir=p["model"], test_path=p["test"],
          report_path=os.path.join(p["smoke"], "report"))
    registration = timed("register-model", steps.register_model_step, model_dir=p["model"],
                         tracking_uri=tracking, out_dir=p["register"])
    timed("promote", steps.promote_step, deployment_dir=p["deploy"],
          registration=registration, tracking_uri=tracking, out_dir=p["promote"])
    total = time.perf_counter() - start
    from kfp_interop.deploy import undeploy
    from kfp_interop.steps.release import read_deployment

    undeploy(read_deployment(p["deploy"]))
    return total, times


def under_kfp_local(out: str, warm: bool = True) -> tuple[float, dict[str, float]]:
    """`kfp-interop run tabular --local` as a user starts it; task times from its log.
    ``warm=False``: every task a fresh interpreter (KFP_INTEROP_WARM_TASKS=0), as
    kfp.local alone runs it."""
    import subprocess

    env = {**os.environ, "KFP_INTEROP_WARM_TASKS": "1" if warm else "0"}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "kfp_interop.cli", "run", "tabular",
                           "--local", "--output-dir", out], capture_output=True, text=True,
                          env=env)
    total = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(proc.stdout[-3000:] + proc.stderr[-3000:])
    stamps: dict[str, list[float]] = {}
    with open(os.path.join(out, "run.log")) as f:
        for line in f:
            line = re.sub(r"\x1b\[[0-9;]*m", "", line)
            m = re.match(r"(\d+):(\d+):(\d+\.\d+) - INFO - (?:Executing task '([^']+)'|"
                         r"Task '([^']+)' finished)", line)
            if m:
                h, mi, s, started, finished = m.groups()
                task = started or finished
                stamps.setdefault(task, []).append(int(h) * 3600 + int(mi) * 60 + float(s))
    return total, {t: v[-1] - v[0] for t, v in stamps.items() if len(v) == 2}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="kfp-interop-bench-") as tmp:
        cold_total, cold_tasks = under_kfp_local(os.path.join(tmp, "cold"), warm=False)
        local_total, local_tasks = under_kfp_local(os.path.join(tmp, "local"))
        one_total, one_steps = in_one_process(os.path.join(tmp, "one"))
    ratio = local_total / one_total
    print(f"tabular under kfp.local, warm tasks:  {local_total:6.1f} s (command wall time)")
    print(f"tabular under kfp.local, cold tasks:  {cold_total:6.1f} s "
          "(KFP_INTEROP_WARM_TASKS=0: a fresh interpreter per task)")
    print(f"same steps, one process:              {one_total:6.1f} s")
    print(f"ratio warm / one process: {ratio:.2f} (target <= 1.5); "
          f"cold / one process: {cold_total / one_total:.2f}; "
          f"cold / warm: {cold_total / local_total:.2f}")
    print(f"{'task':<18}{'kfp.local':>10}{'one process':>13}{'overhead':>10}")
    for step in STEPS:
        a, b = local_tasks.get(step, float("nan")), one_steps.get(step, float("nan"))
        print(f"{step:<18}{a:>9.2f}s{b:>12.2f}s{a - b:>9.2f}s")
    rest = local_total - sum(local_tasks.values())
    print(f"{'(outside tasks)':<18}{rest:>9.2f}s  (start, compile, summary)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"kfp_local_s": local_total, "kfp_local_cold_s": cold_total,
                       "one_process_s": one_total, "ratio": ratio, "tasks": local_tasks,
                       "cold_tasks": cold_tasks, "steps": one_steps}, f,
                      indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
