"""Adopting an ONNX file made elsewhere (another converter, another framework, by hand):
check it, run it, describe it from its graph, and attach the record, so storage,
registry, deploy, serving and the smoke test treat it like one of ours.

What is checked: ``onnx.checker`` and self-containment (:func:`read_onnx`), that ONNX
Runtime builds a session, and one run on a sample (the user's, or inputs made from the
declared shapes and types: dynamic dimensions become ``rows`` for the first and 2 for
the others). With expected outputs, the run is compared to them: the adopted model's
parity. What the graph cannot say (its name, task, class labels) the user states.
"""

from __future__ import annotations

import os
from typing import Any

from kfp_interop.constants import DEFAULT_TOLERANCE, PROBABILITIES_OUTPUT, VALUE_OUTPUT
from kfp_interop.errors import InvalidInputError, ModelFileError, ParityError
from kfp_interop.naming import name_from_path

__all__ = ["TASKS", "SAMPLE_FILE", "synthesize_inputs", "load_tensors", "save_tensors",
           "adopt_onnx", "AdoptResult"]

#: The sample an adopted model was run on, kept in its folder for the smoke test.
SAMPLE_FILE = "sample.npz"

TASKS = ("auto", "classification", "regression", "other")


def synthesize_inputs(specs: list[dict], *, rows: int = 4, seed: int = 0) -> dict[str, Any]:
    """Inputs that fit the declared shapes and datatypes: small values, seeded."""
    import numpy as np

    from kfp_interop.dtypes import by_oip

    rng = np.random.default_rng(seed)
    out = {}
    for spec in specs:
        shape = [(rows if i == 0 else 2) if d < 0 else d for i, d in enumerate(spec["shape"])]
        datatype = spec["datatype"]
        if datatype == "BYTES":
            out[spec["name"]] = np.array([f"s{v}" for v in rng.integers(0, 3, size=shape
                                                                        ).reshape(-1)],
                                         dtype=object).reshape(shape)
        elif datatype == "BOOL":
            out[spec["name"]] = rng.integers(0, 2, size=shape).astype(bool)
        elif datatype.startswith(("INT", "UINT")):
            out[spec["name"]] = rng.integers(0, 3, size=shape).astype(by_oip(datatype).numpy)
        elif datatype == "BF16":
            raise InvalidInputError(f"Input {spec['name']!r} is BF16, which NumPy cannot "
                                    "make: give a sample (--sample).")
        else:
            out[spec["name"]] = rng.normal(size=shape).astype(by_oip(datatype).numpy)
    return out


def load_tensors(path: str, specs: list[dict] | None = None) -> dict[str, Any]:
    """Named arrays from ``.npz`` (names = keys) or ``.npy`` (one array: the only input).

    Raises:
        InvalidInputError: not a readable ``.npz``/``.npy`` file, or object arrays
            (pickles, which are code; strings go as NumPy unicode arrays).
    """
    import numpy as np

    if not os.path.isfile(path):
        raise InvalidInputError(f"No sample file at {path!r}.")
    try:
        loaded = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise InvalidInputError(f"{path!r} is not a readable .npy/.npz file without pickled "
                                f"objects ({e}); save strings as NumPy unicode arrays.") from e
    if isinstance(loaded, np.ndarray):
        if not specs or len(specs) != 1:
            raise InvalidInputError(f"{path!r} holds one array; the model takes "
                                    f"{len(specs or [])} inputs: use .npz with their names.")
        return {specs[0]["name"]: loaded}
    with loaded:
        return {name: loaded[name] for name in loaded.files}


def save_tensors(path: str, tensors: dict[str, Any]) -> str:
    """Write named arrays as ``.npz`` (strings as NumPy unicode: no pickles), atomically."""
    import io

    import numpy as np

    from kfp_interop.files import atomic_write

    plain = {k: (np.asarray(v).astype(str) if np.asarray(v).dtype == object else np.asarray(v))
             for k, v in tensors.items()}
    buf = io.BytesIO()
    np.savez(buf, **plain)
    return atomic_write(path, buf.getvalue())


class AdoptResult:
    """An adopted model: the ONNX proto with its record embedded, the record, and the
    sample it was run on."""

    def __init__(self, model, record, sample: dict[str, Any]):
        self.model, self.record, self.sample = model, record, sample


def _infer_task(task: str, labels: list[str] | None, outputs: list[dict]) -> str:
    if task != "auto":
        return task
    if labels:
        return "classification"
    if [o["name"] for o in outputs] == [VALUE_OUTPUT]:
        return "regression"
    return "other"


def _check_labels(labels: list[str] | None, outputs: list[dict], task: str) -> None:
    if task != "classification":
        if labels:
            raise InvalidInputError("Class labels apply to classification models; give "
                                    "--task classification or leave --labels out.")
        return
    if not labels or len(labels) < 2:
        raise InvalidInputError("A classification model needs its class labels "
                                "(--labels a,b,c: at least two, in output order).")
    scores = ([o for o in outputs if o["name"] == PROBABILITIES_OUTPUT]
              or [o for o in outputs if o["datatype"].startswith("FP") and len(o["shape"]) == 2])
    if scores and scores[0]["shape"][-1] not in (-1, len(labels)):
        raise InvalidInputError(
            f"{len(labels)} labels given, but output {scores[0]['name']!r} scores "
            f"{scores[0]['shape'][-1]} classes: give one label per class, in order.")


def adopt_onnx(path: str, *, name: str = "", version: str = "1", task: str = "auto",
               labels: list[str] | str | None = None, sample: Any = None,
               expected: Any = None, tolerance: float = DEFAULT_TOLERANCE,
               rows: int = 4, dynamic_batch: bool = False) -> AdoptResult:
    """Check, run and describe an ONNX file made elsewhere.

    Args:
        path: the ONNX file.
        name: serving name (default: from the file name).
        task: ``auto`` (classification when labels are given, regression for a single
            ``variable`` output, else ``other``), ``classification``, ``regression``,
            ``other``.
        labels: class labels in output order (a list or ``"a,b,c"``).
        sample: inputs to run (a dict by name, a ``.npz``/``.npy`` path); default: made
            from the declared shapes and types.
        expected: the outputs the model should give on ``sample`` (dict or ``.npz``),
            compared within ``tolerance`` (floats) or exactly (others).
        dynamic_batch: a graph with a fixed batch size gets a symbolic one
            (:func:`kfp_interop.export.dynamic_batch.make_batch_dynamic`), checked on the
            sample against the original and recorded in ``origin.dynamic_batch``.

    Returns:
        :class:`AdoptResult`.

    Raises:
        ModelFileError: the file is not self-contained valid ONNX, has non-tensor inputs
            or outputs, or ONNX Runtime cannot load or run it.
        InvalidInputError: a sample or expected outputs that do not fit the graph,
            labels that do not fit the outputs, an unknown task.
        ParityError: the outputs differ from ``expected``.
    """
    import numpy as np

    from kfp_interop.metadata import build_record
    from kfp_interop.onnx_model import (compare_outputs, ort_session, read_onnx,
                                        sample_inputs, tensor_specs)

    if task not in TASKS:
        raise InvalidInputError(f"Unknown task {task!r}; use one of {list(TASKS)}.")
    if isinstance(labels, str):
        labels = [s.strip() for s in labels.split(",") if s.strip()]
    model = read_onnx(path)
    inputs, outputs = tensor_specs(model)
    try:
        session = ort_session(model)
    except InvalidInputError:
        raise  # an unavailable execution provider, named
    except Exception as e:  # noqa: BLE001 - onnxruntime raises its own types
        raise ModelFileError(f"ONNX Runtime cannot load {path!r}: {e}") from e
    given = sample is not None
    if isinstance(sample, str):
        sample = load_tensors(sample, inputs)
    feeds = sample_inputs(sample if given else synthesize_inputs(inputs, rows=rows), inputs)
    try:
        produced = dict(zip([o["name"] for o in outputs], session.run(None, feeds)))
    except Exception as e:  # noqa: BLE001
        hint = ("" if given else " Inputs made up from the declared shapes may not fit a "
                "graph that expects particular values or sizes: pass a sample of real "
                "inputs (--sample inputs.npz, arrays by input name).")
        what = "given" if given else "synthesized"
        raise ModelFileError(f"ONNX Runtime could not run {path!r} on the {what} sample: "
                             f"{str(e).strip()}.{hint}") from e
    task = _infer_task(task, labels, outputs)
    _check_labels(labels, outputs, task)
    parity = None
    if expected is not None:
        if isinstance(expected, str):
            expected = load_tensors(expected, outputs)
        if sorted(expected) != sorted(produced):
            raise InvalidInputError(f"Expected outputs {sorted(expected)}; the model returns "
                                    f"{sorted(produced)}.")
        max_diff, problems = compare_outputs(produced, {k: np.asarray(v)
                                                        for k, v in expected.items()}, outputs)
        n_rows = int(np.shape(next(iter(feeds.values())))[0]) if feeds else 1
        parity = {"max_abs_diff": max_diff, "label_agreement": None,
                  "tolerance": float(tolerance), "n_rows": max(1, n_rows),
                  "passed": not problems and max_diff <= tolerance,
                  "provider": session.get_providers()[0]}
        if not parity["passed"]:
            raise ParityError(f"{path!r} does not give the expected outputs: "
                              + ("; ".join(problems) or f"max difference {max_diff:.3g} "
                                 f"exceeds tolerance {tolerance:g}"), parity)
    origin = {"kind": "adopted", "source": os.path.basename(path), "format": "onnx"}
    if dynamic_batch:
        from kfp_interop.export.dynamic_batch import make_batch_dynamic

        model, made = make_batch_dynamic(model, feeds, where=repr(os.path.basename(path)))
        if made:
            origin["dynamic_batch"] = made
    first = next(iter(feeds.values()))
    checks = {"onnx_checker": True, "ort_session": True, "sample_run": True,
              "sample_rows": int(first.shape[0]) if first.ndim else 1,
              "sample": "given" if given else "synthesized"}
    producer = model.producer_name or "unknown"
    record = build_record(
        model, name=name or name_from_path(path), version=version, task=task,
        framework={"name": "onnx", "version": model.producer_version or "unknown",
                   "estimator": model.graph.name or producer},
        feature_names=None, class_labels=labels if task == "classification" else None,
        parity=parity, checks=checks, origin=origin)
    return AdoptResult(model, record, feeds)
