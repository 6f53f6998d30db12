"""Where transfer learning pays, and where it stops: the transfer-learning pipeline's
own steps in one process (prepare the source and k-shot target, pretrain on the source,
fine-tune on the target, train the same network from scratch on the same rows), swept
over k (target rows per class) and seeds; the gain (fine-tuned minus scratch accuracy on
the target's test rows) per k with its spread.

Defaults are the pipeline's: digits, a CNN pretrained 15 epochs on one stratified half,
the other half under Gaussian pixel noise (0.3 of the value range) as the target,
fine-tuned (head kept, every layer) 60 epochs at 1e-3, scratch 60 epochs at 1e-3.
``--task classes`` runs the old task instead (source digits 0-4, target 5-9, no shift).

Usage: ``python benchmarks/transfer.py [--k 1 2 5 10 20 50] [--seeds 42 7 1] [--task
shift|classes] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile


def run(k: int, seed: int, task: str, args) -> tuple[float, float]:
    from kfp_interop.steps import (compare_transfer_step, finetune_step,
                                   prepare_transfer_data_step, train_deep_step)

    d = tempfile.mkdtemp()
    split = {n: f"{d}/{n}" for n in ("source_train", "source_test", "target_train",
                                     "target_test")}
    if task == "shift":
        prepare_transfer_data_step(k=k, seed=seed, target_shift=args.shift,
                                   shift_strength=args.strength, **split)
    else:
        prepare_transfer_data_step(k=k, seed=seed, source_classes="0,1,2,3,4",
                                   target_classes="5,6,7,8,9", target_shift="none", **split)
    train_deep_step(train_path=split["source_train"], test_path=split["source_test"],
                    framework="torch", architecture="cnn", epochs=args.pretrain_epochs,
                    seed=seed, model_dir=f"{d}/base")
    finetune_step(base_model_dir=f"{d}/base", train_path=split["target_train"],
                  test_path=split["target_test"], epochs=args.finetune_epochs,
                  lr=args.finetune_lr, unfreeze_epochs=args.unfreeze_epochs, seed=seed,
                  model_dir=f"{d}/tuned")
    train_deep_step(train_path=split["target_train"], test_path=split["target_test"],
                    framework="torch", architecture="cnn", epochs=args.scratch_epochs,
                    batch_size=16, lr=1e-3, seed=seed, model_dir=f"{d}/scratch")
    out = compare_transfer_step(finetuned_dir=f"{d}/tuned", scratch_dir=f"{d}/scratch")
    return out["target_accuracy"], out["scratch_accuracy"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--k", type=int, nargs="+", default=[1, 2, 5, 10, 20, 50])
    ap.add_argument("--seeds", type=int, nargs="+", default=[42, 7, 1])
    ap.add_argument("--task", choices=["shift", "classes"], default="shift")
    ap.add_argument("--shift", default="noise")
    ap.add_argument("--strength", type=float, default=0.3)
    ap.add_argument("--pretrain-epochs", type=int, default=15)
    ap.add_argument("--finetune-epochs", type=int, default=60)
    ap.add_argument("--finetune-lr", type=float, default=1e-3)
    ap.add_argument("--unfreeze-epochs", type=int, default=10)
    ap.add_argument("--scratch-epochs", type=int, default=60)
    ap.add_argument("--json")
    args = ap.parse_args()
    logging.disable(logging.WARNING)
    rows = []
    what = (f"{args.shift} {args.strength}" if args.task == "shift" else
            "digits 0-4 -> 5-9")
    print(f"transfer gain (fine-tuned - scratch target accuracy), {what}, seeds {args.seeds}")
    for k in args.k:
        pairs = [run(k, s, args.task, args) for s in args.seeds]
        gains = [t - s for t, s in pairs]
        row = {"k": k, "gain_mean": statistics.mean(gains), "gain_min": min(gains),
               "gain_max": max(gains),
               "gain_std": statistics.stdev(gains) if len(gains) > 1 else 0.0,
               "finetuned_mean": statistics.mean(t for t, _ in pairs),
               "scratch_mean": statistics.mean(s for _, s in pairs)}
        rows.append(row)
        print(f"k={k:>3}: gain {row['gain_mean']:+.3f} (min {row['gain_min']:+.3f}, max "
              f"{row['gain_max']:+.3f}, sd {row['gain_std']:.3f}); fine-tuned "
              f"{row['finetuned_mean']:.3f}, scratch {row['scratch_mean']:.3f}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"task": args.task, "shift": args.shift, "strength": args.strength,
                       "seeds": args.seeds, "rows": rows}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
