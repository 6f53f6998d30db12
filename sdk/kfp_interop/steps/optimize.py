"""Optimize an exported model behind the accuracy gate (:mod:`kfp_interop.export.optimize`)
and write it as a model folder.

Two kinds of folder come in: one carrying its record (``kfp-interop optimize``, adopt's
output; the sample is the ``sample.npz`` beside it unless given), and, in the reference
pipelines, export_onnx's output (``model.onnx`` without a record, ``model_meta.json``),
checked on the held-out split; its record is built by attach_metadata after, from the
folder's facts, which then carry the ``optimization`` block and the new graph's parity.
"""

from __future__ import annotations

import os
import shutil

from kfp_interop.constants import ONNX_FILENAME
from kfp_interop.errors import InvalidInputError
from kfp_interop.steps.stage import stage

__all__ = ["optimize_step", "OPTIMIZE_CHOICES", "optimize_choice", "pass_through"]

#: the one-word choice of the component and the pipelines' ``optimize`` parameter
OPTIMIZE_CHOICES = ("none", "graph", "int8-dynamic", "int8-static", "fp16")


def optimize_choice(choice: str, graph_level: str = "basic") -> tuple[str, str] | None:
    """``(graph_level, quantize)`` for a choice of :data:`OPTIMIZE_CHOICES`; ``None`` for
    ``none`` (the model passes through unchanged). Every other choice runs the graph pass
    at ``graph_level`` first.

    Raises:
        InvalidInputError: an unknown choice (named).
    """
    if choice not in OPTIMIZE_CHOICES:
        raise InvalidInputError(f"optimize={choice!r}: use one of "
                                f"{', '.join(OPTIMIZE_CHOICES)}.")
    if choice == "none":
        return None
    return graph_level, ("none" if choice == "graph" else choice)


@stage("out_dir")
def optimize_step(*, model_path: str, sample_path: str = "", test_path: str = "",
                  graph_level: str = "basic", quantize: str = "none", choice: str = "",
                  max_accuracy_drop: float = 0.01, dynamic_batch: bool = False,
                  out_dir: str):
    """Optimize ``model_path`` (an ONNX file with its record, its folder, or an
    export_onnx folder) and write ``out_dir/model.onnx``. The sample is ``sample_path``
    (``.npz``), else the rows of ``test_path`` (a split: its labels are the gate's truth),
    else the ``sample.npz`` beside the model (what adopt writes). Nothing is written when
    the gate refuses. ``choice`` (one of :data:`OPTIMIZE_CHOICES`, the component's and
    the pipelines' way) replaces ``quantize``; ``none`` copies the folder unchanged.

    Returns:
        ``(record, report)``; ``(None, None)`` for ``choice="none"``.
    """
    if choice:
        picked = optimize_choice(choice, graph_level)
        if picked is None and not dynamic_batch:
            pass_through(model_path, out_dir)
            return None, None
        graph_level, quantize = picked or ("none", "none")
    from kfp_interop.export.adopt import SAMPLE_FILE, load_tensors, save_tensors
    from kfp_interop.export.optimize import optimize_onnx
    from kfp_interop.metadata import save_metadata
    from kfp_interop.onnx_model import find_onnx

    path = find_onnx(model_path)
    exported = _export_folder(path)
    provisional = None
    if exported is not None:
        from kfp_interop.onnx_model import read_onnx
        from kfp_interop.steps.export import record_from_meta

        provisional = record_from_meta(read_onnx(path), exported)
    if sample_path:
        tensors = load_tensors(sample_path)
    elif test_path:
        if exported is None:
            raise InvalidInputError("A split (test_path) is for an export_onnx folder; for "
                                    "a model with its record give the sample as .npz.")
        tensors = _split_sample(exported, test_path, provisional.inputs)
    else:
        beside = os.path.join(os.path.dirname(path), SAMPLE_FILE)
        if not os.path.isfile(beside):
            raise InvalidInputError(f"No sample to check the optimized model on: {beside!r} "
                                    "does not exist; pass --sample inputs.npz (arrays by "
                                    "input name, optionally 'labels').")
        tensors = load_tensors(beside)
    result = optimize_onnx(path, tensors, graph_level=graph_level, quantize=quantize,
                           max_accuracy_drop=max_accuracy_drop, record=provisional,
                           dynamic_batch=dynamic_batch)
    os.makedirs(out_dir, exist_ok=True)
    save_tensors(os.path.join(out_dir, SAMPLE_FILE), result.sample)
    if exported is None:
        save_metadata(result.record, result.model, os.path.join(out_dir, ONNX_FILENAME))
        return result.record, result.report
    from kfp_interop.onnx_model import model_opsets, save_onnx
    from kfp_interop.steps.model_dir import write_model_meta

    parity = {**result.record.parity, "task": exported.task}
    save_onnx(result.model, os.path.join(out_dir, ONNX_FILENAME))
    write_model_meta(out_dir, exported.replace(opsets=model_opsets(result.model),
                                               parity=parity,
                                               optimization=result.record.optimization))
    return result.record, result.report


def pass_through(model_path: str, out_dir: str) -> None:
    """``optimize=none`` in a pipeline: the model folder, unchanged."""
    from kfp_interop.onnx_model import find_onnx

    shutil.copytree(os.path.dirname(find_onnx(model_path)), out_dir, dirs_exist_ok=True)


def _export_folder(path: str):
    """The :class:`ModelMeta` of an export_onnx folder whose ONNX file carries no record
    yet, else ``None``."""
    from kfp_interop.metadata.record import METADATA_KEY
    from kfp_interop.onnx_model import read_onnx
    from kfp_interop.steps.model_dir import has_model_meta, read_model_meta

    folder = os.path.dirname(path)
    if not has_model_meta(folder):
        return None
    if any(p.key == METADATA_KEY for p in read_onnx(path).metadata_props):
        return None
    meta = read_model_meta(folder)
    if not meta.parity_passed:
        raise InvalidInputError(f"{folder!r}: the model's parity gate did not pass (or did "
                                "not run): optimize only a model export_onnx approved.")
    return meta


def _split_sample(meta, test_path: str, inputs: list[dict]) -> dict:
    """The model's inputs (by name) from held-out rows, with the split's labels (class
    indices, what the exported classifiers answer) when it is a split of kfp-interop's."""
    import numpy as np

    from kfp_interop.data import model_inputs, read_features
    from kfp_interop.data.splits import load_split, read_split_metadata
    from kfp_interop.errors import DatasetError

    feeds = model_inputs(read_features(test_path, meta.feature_names, meta.text_columns),
                         meta.text_columns)
    tensors = dict(feeds) if isinstance(feeds, dict) else {inputs[0]["name"]: feeds}
    try:
        split = read_split_metadata(test_path)
    except DatasetError:
        split = None
    if split is not None and meta.task == "classification":
        tensors["labels"] = np.asarray(load_split(test_path, split).y)
    return tensors
