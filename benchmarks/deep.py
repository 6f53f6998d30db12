"""PyTorch eager vs ONNX Runtime for the deep-learning models (digits, 64 features):
p50 latency at one row and at batch 64 for the MLP and the CNN, and the export time,
all measured in the same run. Target: ONNX Runtime single-row latency at least 3x lower
than torch eager.

Both run on one thread (``torch.set_num_threads(1)``, one intra-op thread in ONNX
Runtime), as a serving replica with one CPU would; torch runs under ``inference_mode``.

Usage: ``python benchmarks/deep.py [--repeat 500] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from inference import p50_ms, report  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=500)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--json")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    import torch

    from kfp_interop.data import load_dataset, split_dataset
    from kfp_interop.frameworks.torch import TorchSpec, build_torch_model, train_torch
    from kfp_interop.export import export_onnx
    from kfp_interop.frameworks import NativeModel
    from kfp_interop.onnx_model import ort_session

    torch.set_num_threads(1)
    train, test = split_dataset(load_dataset("digits"), seed=0)
    results = {}
    for arch in ("mlp", "cnn"):
        spec = TorchSpec(arch, 64, 10)
        model = build_torch_model(spec)
        train_torch(model, train.X, train.y, epochs=args.epochs, seed=0)
        model.eval()
        native = NativeModel(model, "torch", "classification", spec)
        t0 = time.perf_counter()
        onnx_model = export_onnx(native, n_features=64)
        export_s = time.perf_counter() - t0
        sess = ort_session(onnx_model, threads=1)
        row = {"export_s": export_s}
        for name, n in (("1row", 1), ("batch64", 64)):
            x = np.ascontiguousarray(test.X[:n], dtype=np.float32)
            xt = torch.from_numpy(x)

            def eager():
                with torch.inference_mode():
                    torch.softmax(model(xt), dim=1)

            row[f"torch_{name}_ms"] = p50_ms(eager, args.repeat)
            row[f"ort_{name}_ms"] = p50_ms(lambda: sess.run(None, {"input": x}), args.repeat)
            row[f"speedup_{name}"] = row[f"torch_{name}_ms"] / row[f"ort_{name}_ms"]
        results[arch] = row
    ok = all(r["speedup_1row"] >= 3 for r in results.values())
    report(results, target="target (ONNX Runtime >= 3x faster than torch eager at one row)",
           ok=ok, json_path=args.json, digits=4)
    return 0


if __name__ == "__main__":
    sys.exit(main())
