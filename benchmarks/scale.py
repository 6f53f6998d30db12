"""Scale, in one run: engine=local vs engine=dask on generated Parquet folders of 1M,
10M and 30M rows x 20 features (written file by file, never whole in memory): wall time,
peak memory of the task process and of each Dask worker, and held-out accuracy.

Both engines run the tabular pipeline's own steps with LightGBM: local = ``load_data_step``
+ ``train_step`` on the same rows as one Parquet file (the local engine reads one file;
it is written row group by row group from the partitions, never whole in memory); dask
= ``train_dask_step`` (load_data's split on the partitions + train, a LocalCluster of 2
worker processes, one thread each). Each run is a child process watched from here (peak RSS of it and of
its descendants, sampled every 0.2 s); the local child runs under an address-space
limit (``--limit-gib``, default 22: this machine has 24 GiB) so that "cannot" is a
MemoryError, not the machine swapping.

Targets (issue 21): at 10M rows and above the dask engine finishes where the local one
cannot within 24 GiB; at 1M rows the dask engine's time within 2x the local one.
Usage: ``python benchmarks/scale.py [--sizes 1M,10M,30M] [--estimators 100]
[--rows-per-file 1000000] [--dir D] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

FEATURES = 20


def _rows(text: str) -> int:
    text = text.strip().upper()
    return int(float(text[:-1]) * (1_000_000 if text.endswith("M") else 1_000)) \
        if text[-1] in "MK" else int(text)


def generate(folder: str, rows: int, rows_per_file: int, seed: int = 0) -> int:
    """Parquet files of at most ``rows_per_file`` rows each; returns the file count."""
    import numpy as np
    import pandas as pd

    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    w = rng.normal(size=FEATURES)
    files = 0
    for start in range(0, rows, rows_per_file):
        n = min(rows_per_file, rows - start)
        X = rng.normal(size=(n, FEATURES)).astype(np.float32)
        signal = X @ w + 0.5 * X[:, 0] * X[:, 1] + rng.normal(size=n)
        frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(FEATURES)])
        frame["label"] = (signal > 0).astype(np.int64)
        frame.to_parquet(os.path.join(folder, f"part-{files:05d}.parquet"))
        files += 1
    return files


def one_file(folder: str) -> str:
    """The folder's rows as one Parquet file beside it, row group by row group."""
    import pyarrow.parquet as pq

    path = folder.rstrip("/") + ".parquet"
    if os.path.exists(path):
        return path
    files = sorted(f for f in os.listdir(folder) if f.endswith(".parquet"))
    writer = None
    try:
        for name in files:
            table = pq.read_table(os.path.join(folder, name))
            writer = writer or pq.ParquetWriter(path + ".tmp", table.schema)
            writer.write_table(table)
    finally:
        if writer:
            writer.close()
    os.replace(path + ".tmp", path)
    return path


def child_local(folder: str, estimators: int, limit_gib: float) -> dict:
    import resource

    limit = int(limit_gib * 1024 ** 3)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    from kfp_interop.steps.tabular import load_data_step, train_step

    out = tempfile.mkdtemp(prefix="kfp-interop-scale-")
    try:
        t0 = time.perf_counter()
        load_data_step(dataset=one_file(folder), target_column="label",
                       task="classification", train_path=os.path.join(out, "train.parquet"),
                       test_path=os.path.join(out, "test.parquet"))
        meta, _ = train_step(train_path=os.path.join(out, "train.parquet"),
                             test_path=os.path.join(out, "test.parquet"),
                             framework="lightgbm", estimator="",
                             hyperparameters=json.dumps({"n_estimators": estimators}),
                             model_dir=os.path.join(out, "model"))
        return {"seconds": time.perf_counter() - t0, "accuracy": meta.metrics["accuracy"],
                "rows": meta.rows}
    finally:
        shutil.rmtree(out, ignore_errors=True)


def child_dask(folder: str, estimators: int, workers: int) -> dict:
    from kfp_interop.steps.tabular import train_dask_step

    out = tempfile.mkdtemp(prefix="kfp-interop-scale-")
    try:
        t0 = time.perf_counter()
        meta, _ = train_dask_step(dataset=folder, target_column="label", task="classification",
                                  framework="lightgbm",
                                  hyperparameters=json.dumps({"n_estimators": estimators}),
                                  workers=workers, model_dir=os.path.join(out, "model"),
                                  test_path=os.path.join(out, "test.parquet"))
        return {"seconds": time.perf_counter() - t0, "accuracy": meta.metrics["accuracy"],
                "rows": meta.rows, "partitions": meta.engine["partitions"],
                "workers": meta.engine["workers"]}
    finally:
        shutil.rmtree(out, ignore_errors=True)


def watched(args: list[str]) -> dict:
    """Run this script as a child with ``args``; its JSON result plus the peak RSS of the
    child (``task``) and of each of its descendants by role."""
    import psutil

    proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    root = psutil.Process(proc.pid)
    peaks: dict[int, tuple[str, int]] = {}
    while proc.poll() is None:
        try:
            tree = [root] + root.children(recursive=True)
        except psutil.NoSuchProcess:
            break
        for p in tree:
            try:
                rss = p.memory_info().rss
                role = "task" if p.pid == root.pid else (
                    "worker" if "spawn_main" in " ".join(p.cmdline()) else "other")
            except psutil.Error:
                continue
            old = peaks.get(p.pid, (role, 0))
            peaks[p.pid] = (role, max(old[1], rss))
        time.sleep(0.2)
    out, err = proc.communicate()
    result = {"ok": proc.returncode == 0}
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if proc.returncode == 0 and lines:
        result.update(json.loads(lines[-1]))
    else:
        tail = (err.strip().splitlines() or ["?"])[-1]
        result["error"] = tail[:300]
    by_role: dict[str, list[int]] = {}
    for role, peak in peaks.values():
        by_role.setdefault(role, []).append(peak)
    result["peak_gib"] = {role: [round(v / 1024 ** 3, 2) for v in sorted(values)]
                          for role, values in by_role.items()}
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="1M,10M,30M")
    ap.add_argument("--estimators", type=int, default=100)
    ap.add_argument("--rows-per-file", type=int, default=1_000_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--limit-gib", type=float, default=22.0)
    ap.add_argument("--dir", default="")
    ap.add_argument("--json")
    ap.add_argument("--child", choices=["local", "dask"])
    ap.add_argument("--folder")
    args = ap.parse_args()
    if args.child:
        result = (child_local(args.folder, args.estimators, args.limit_gib)
                  if args.child == "local"
                  else child_dask(args.folder, args.estimators, args.workers))
        print(json.dumps(result))
        return 0
    root = args.dir or tempfile.mkdtemp(prefix="kfp-interop-scale-data-")
    report = []
    print(f"LightGBM, {args.estimators} trees, {FEATURES} features, files of "
          f"{args.rows_per_file:,} rows; dask: LocalCluster of {args.workers} workers x 1 "
          f"thread; local: one thread, address space limited to {args.limit_gib:g} GiB")
    print(f"{'rows':>6} {'engine':<6} {'seconds':>8} {'accuracy':>9}  peak GiB (task; workers)")
    for size in args.sizes.split(","):
        rows = _rows(size)
        folder = os.path.join(root, f"table-{size}")
        if not os.path.isdir(folder):
            generate(folder, rows, args.rows_per_file)
        one_file(folder)  # the local engine's input, written before anything is timed
        line = {"rows": rows}
        for engine in ("local", "dask"):
            r = watched(["--child", engine, "--folder", folder, "--estimators",
                         str(args.estimators), "--workers", str(args.workers),
                         "--limit-gib", str(args.limit_gib)])
            line[engine] = r
            peaks = r["peak_gib"]
            shown = (f"{r['seconds']:8.1f} {r['accuracy']:9.4f}" if r["ok"]
                     else f"{'failed':>8} {'':>9}")
            print(f"{size:>6} {engine:<6} {shown}  {max(peaks.get('task', [0]))}; "
                  f"{peaks.get('worker', [])}" + ("" if r["ok"] else f"  ({r['error']})"),
                  flush=True)
        if line["local"]["ok"] and line["dask"]["ok"]:
            print(f"{'':>6} ratio dask/local time {line['dask']['seconds'] / line['local']['seconds']:.2f}, "
                  f"accuracy difference {line['dask']['accuracy'] - line['local']['accuracy']:+.4f}")
        report.append(line)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    if not args.dir:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
