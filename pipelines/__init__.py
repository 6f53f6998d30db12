"""Reference pipelines, by name. Listing them imports nothing heavy; :func:`load`
imports the pipeline (and kfp) only when asked, :func:`compile_pipeline` compiles one.

Add a pipeline with one module in ``pipelines/`` (a body decorated with
:func:`~kfp_interop.pipelines.common.reference_pipeline`) and one registration below.
"""

import importlib
import os

from kfp_interop.registry import Registry

# name -> ("module:function", one-line description)
PIPELINES: Registry = Registry("pipeline", "Reference pipelines live in pipelines/.",
                               entry_point_group="kfp_interop.pipelines")
PIPELINES.register("tabular", ("kfp_interop.pipelines.tabular:tabular",
                               "scikit-learn/XGBoost/LightGBM -> ONNX (parity gate) -> "
                               "metadata -> store/register -> serve -> smoke test"))
PIPELINES.register("deep", ("kfp_interop.pipelines.deep:deep",
                            "PyTorch/Keras MLP or CNN on digits -> ONNX (parity gate) -> "
                            "metadata -> serve -> smoke test"))
PIPELINES.register("transfer-learning", (
    "kfp_interop.pipelines.transfer_learning:transfer_learning",
    "pretrain on digits 0-4, fine-tune k-shot on 5-9 vs from scratch -> ONNX -> serve"))
PIPELINES.register("onnx-import", (
    "kfp_interop.pipelines.onnx_import:onnx_import",
    "an ONNX file from any exporter -> checked, described (record) -> store/register -> "
    "serve -> smoke test"))
PIPELINES.register("warm-start", (
    "kfp_interop.pipelines.warm_start:warm_start_pipeline",
    "XGBoost continued on newer rows vs newer rows only -> ONNX -> serve"))


def load(name: str):
    """The pipeline function registered as ``name``."""
    target, _ = PIPELINES.get(name)
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def describe(name: str) -> str:
    return PIPELINES.get(name)[1]


def compile_pipeline(name: str, output: str) -> str:
    """Compile a reference pipeline to KFP IR YAML at ``output`` (atomically)."""
    from kfp import compiler

    from kfp_interop.files import atomic_path

    func = load(name)
    with atomic_path(output, suffix=".yaml") as tmp:  # the compiler picks the format by suffix
        compiler.Compiler().compile(func, tmp)
    return os.fspath(output)


__all__ = ["PIPELINES", "load", "describe", "compile_pipeline"]
