"""What optimization gives on this machine, in one run: size, ONNX Runtime latency at 1
and 64 rows and test accuracy, for each of none / graph / int8-dynamic / int8-static /
fp16 on the digits MLP and CNN (PyTorch, the deep pipeline's stages) and the
breast-cancer logistic regression, and graph-only on a 100-tree RandomForest (trees
cannot be quantized).

Each variant goes through ``kfp_interop.export.optimize.optimize_onnx`` with the test
rows and their labels as the sample (the gate is opened wide here: the point is to
report, and the accuracy column is what the gate would compare). Latency: the median of
20 runs of one ONNX Runtime session, one thread. INT8 pays on CPUs with VNNI
(``avx512_vnni``/``avx_vnni`` in /proc/cpuinfo, printed); elsewhere it may not.

Target (issue 20): int8 at least 3x smaller for the CNN, at most 1 point of accuracy
lost. Usage: ``python benchmarks/optimize.py [--epochs 5] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

import numpy as np

VARIANTS = [("none", "basic", "graph"), ("int8-dynamic", "basic", "int8-dynamic"),
            ("int8-static", "basic", "int8-static"), ("fp16", "basic", "fp16")]


def _cpu_flags() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "")
    except OSError:
        return "unknown"
    found = [f for f in ("avx512_vnni", "avx_vnni", "avx512f", "avx2") if f" {f}" in flags]
    return ", ".join(found) or "none of avx2/avx512/vnni"


def _models(work: str, epochs: int) -> dict[str, tuple[str, dict]]:
    """name -> (model folder, sample with the test rows and their labels)."""
    from kfp_interop.data.splits import load_split
    from kfp_interop.metadata import load_metadata
    from kfp_interop.steps import (attach_metadata_step, export_onnx_step, load_data_step,
                                   run_tabular, train_deep_step)

    out = {}

    def sample(model_dir, test):
        record = load_metadata(os.path.join(model_dir, "model.onnx"))
        split = load_split(test)
        [inp] = record.inputs
        X = np.asarray(split.X, np.float32).reshape([-1] + list(inp["shape"][1:]))
        return {inp["name"]: X, "labels": split.y}

    data = {k: os.path.join(work, "digits", k) for k in ("train", "test")}
    load_data_step(dataset="digits", train_path=data["train"], test_path=data["test"])
    for arch in ("mlp", "cnn"):
        d = {k: os.path.join(work, arch, k) for k in ("native", "exported", "model")}
        train_deep_step(train_path=data["train"], test_path=data["test"], architecture=arch,
                        epochs=epochs, model_dir=d["native"])
        export_onnx_step(model_dir=d["native"], test_path=data["test"], out_dir=d["exported"])
        attach_metadata_step(model_dir=d["exported"], model_name=f"digits-{arch}",
                             out_dir=d["model"])
        out[f"digits-{arch}"] = (d["model"], sample(d["model"], data["test"]))
    for name, estimator in (("breast-cancer-lr", "logistic_regression"),
                            ("rf-100", "random_forest")):
        paths = run_tabular(os.path.join(work, name),
                            dataset="breast_cancer" if name.startswith("breast") else "iris",
                            framework="sklearn", estimator=estimator,
                            hyperparameters=json.dumps({"n_estimators": 100})
                            if estimator == "random_forest" else "{}")
        out[name] = (paths["model"], sample(paths["model"], paths["test"]))
    return out


def main(argv=None) -> int:
    from kfp_interop.errors import InvalidInputError
    from kfp_interop.export.optimize import optimize_onnx

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--json")
    a = p.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="kfp-interop-optbench-") as work:
        for name, (model_dir, sample) in _models(work, a.epochs).items():
            path = os.path.join(model_dir, "model.onnx")
            for quantize, level, label in VARIANTS:
                try:
                    result = optimize_onnx(path, dict(sample), graph_level=level,
                                           quantize=quantize, max_accuracy_drop=1.0)
                except InvalidInputError as e:
                    rows.append({"model": name, "variant": label,
                                 "refused": str(e).split(":")[0][:60]})
                    continue
                o = result.record.optimization
                rows.append({"model": name, "variant": label,
                             "kb_before": o["size_bytes"]["before"] / 1024,
                             "kb_after": o["size_bytes"]["after"] / 1024,
                             "ms1_before": o["latency_ms"]["before"]["rows_1"],
                             "ms1_after": o["latency_ms"]["after"]["rows_1"],
                             "ms64_before": o["latency_ms"]["before"]["rows_64"],
                             "ms64_after": o["latency_ms"]["after"]["rows_64"],
                             "metric": o["accuracy"]["metric"],
                             "acc_before": o["accuracy"]["before"],
                             "acc_after": o["accuracy"]["after"]})
    print(f"CPU: {_cpu_flags()}")
    print(f"{'model':<18}{'variant':<14}{'KB':>10}{'x smaller':>10}{'1 row ms':>16}"
          f"{'64 rows ms':>18}{'accuracy':>18}")
    for r in rows:
        if "refused" in r:
            print(f"{r['model']:<18}{r['variant']:<14}refused: {r['refused']}")
            continue
        print(f"{r['model']:<18}{r['variant']:<14}{r['kb_after']:>10.1f}"
              f"{r['kb_before'] / r['kb_after']:>10.2f}"
              f"{r['ms1_before']:>8.3f}->{r['ms1_after']:<7.3f}"
              f"{r['ms64_before']:>9.3f}->{r['ms64_after']:<8.3f}"
              f"{r['acc_before']:>9.4f}->{r['acc_after']:<8.4f}")
    cnn = next((r for r in rows if r["model"] == "digits-cnn"
                and r["variant"] == "int8-static" and "refused" not in r), None)
    if cnn:
        print(f"int8_static_cnn_size_ratio = {cnn['kb_before'] / cnn['kb_after']:.2f} "
              f"(target >= 3), accuracy points lost = "
              f"{100 * (cnn['acc_before'] - cnn['acc_after']):.2f} (target <= 1)")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
