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
    """The pipeline registered as ``name``, or your own as ``path/to/file.py:function``
    (a ``@dsl.pipeline`` function in a file: what ``kfp-interop run`` and ``compile``
    take besides the reference pipelines)."""
    if name not in PIPELINES and ":" in name and name.split(":", 1)[0].endswith(".py"):
        return _load_file(*name.split(":", 1))
    target, _ = PIPELINES.get(name)
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def _load_file(path: str, attr: str):
    import importlib.util

    from kfp_interop.errors import InvalidInputError

    if not os.path.isfile(path):
        raise InvalidInputError(f"No pipeline file {path!r}.")
    spec = importlib.util.spec_from_file_location(
        "kfp_interop_user_pipeline_" + os.path.splitext(os.path.basename(path))[0], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # the user's own code, named by the user on the CLI
    func = getattr(module, attr, None)
    if not hasattr(func, "pipeline_func"):
        raise InvalidInputError(f"{path}:{attr} is not a @dsl.pipeline function.")
    return func


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
