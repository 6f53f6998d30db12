"""Make an ONNX model smaller or faster, behind an accuracy gate: ONNX Runtime's offline
graph optimization, INT8 quantization (``onnxruntime.quantization``: dynamic, or static
QDQ calibrated on the sample), FP16 (``onnxconverter-common``, inputs and outputs kept
FP32). The optimized graph is run against the one it came from on the sample; when the
accuracy (against the sample's labels, when it has them) or the agreement drops more
than allowed, it is refused and nothing is written.

Graph levels (ONNX Runtime's): ``basic`` (constant folding, redundant nodes removed:
standard ONNX operators only, portable to any runtime and CPU), ``extended`` (fusions
into ONNX Runtime's own ``com.microsoft`` operators: portable across CPUs, but only to
ONNX Runtime, Triton's included). ``all`` (layout optimizations such as NCHWc) ties the
file to the CPU it was made on: refused.

Tree ensembles (``ai.onnx.ml`` TreeEnsemble*) cannot be quantized (ONNX Runtime has no
quantized tree operators) or usefully cast to FP16: refused by name, graph optimization
still allowed.
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import tempfile
import time
from typing import Any

from kfp_interop.constants import LABEL_OUTPUT
from kfp_interop.errors import InvalidInputError, ParityError

__all__ = ["optimize_onnx", "OptimizeResult", "QUANTIZE_MODES", "GRAPH_LEVELS"]

QUANTIZE_MODES = ("none", "int8-dynamic", "int8-static", "fp16")
GRAPH_LEVELS = ("none", "basic", "extended")
#: the sample's array holding the true labels (not a model input), if any
LABELS_KEY = "labels"


@dataclasses.dataclass
class OptimizeResult:
    model: Any  # onnx.ModelProto, the record embedded
    record: Any
    sample: dict[str, Any]
    report: dict[str, Any]


def _trees(model) -> list[str]:
    return sorted({n.op_type for n in model.graph.node
                   if n.domain == "ai.onnx.ml" and n.op_type.startswith("TreeEnsemble")})


def _session(model, threads: int = 1):
    from kfp_interop.onnx_model import ort_session

    return ort_session(model, threads=threads)


def _graph_optimized(model, level: str, work: str):
    import onnx
    import onnxruntime as ort

    if level == "none":
        return model
    opts = ort.SessionOptions()
    opts.graph_optimization_level = {"basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
                                     "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
                                     }[level]
    opts.optimized_model_filepath = os.path.join(work, f"graph-{level}.onnx")
    ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    from kfp_interop.onnx_model import prune_opsets

    optimized = onnx.load(opts.optimized_model_filepath)
    prune_opsets(optimized)
    return optimized


class _Calibration:
    """The sample, one row at a time, for static quantization's calibration."""

    def __init__(self, feeds: dict[str, Any]):
        rows = len(next(iter(feeds.values())))
        self._rows = iter([{k: v[i:i + 1] for k, v in feeds.items()} for i in range(rows)])

    def get_next(self):
        return next(self._rows, None)

    def rewind(self):  # onnxruntime >= 1.19 may ask
        pass


def _fp32_outputs(converted, original):
    """Outputs the FP16 conversion left in FP16 (it keeps the declared I/O types, not
    always the producing nodes': a graph whose last node it does not convert) cast back
    to their original type under their own name."""
    from onnx import TensorProto, helper

    was = {o.name: o.type.tensor_type.elem_type for o in original.graph.output}
    for out in converted.graph.output:
        t = out.type.tensor_type
        if t.elem_type == TensorProto.FLOAT16 and was.get(out.name) == TensorProto.FLOAT:
            inner = f"{out.name}__fp16"
            for node in converted.graph.node:
                node.output[:] = [inner if o == out.name else o for o in node.output]
                node.input[:] = [inner if i == out.name else i for i in node.input]
            converted.graph.node.append(helper.make_node(
                "Cast", [inner], [out.name], to=TensorProto.FLOAT, name=f"{out.name}_to_fp32"))
            t.elem_type = TensorProto.FLOAT
    return converted


def _quantized(model, mode: str, feeds: dict[str, Any], work: str):
    import onnx

    from kfp_interop.onnx_model import unique_opsets

    if mode == "none":
        return model
    if mode == "fp16":
        from onnxconverter_common import float16

        return _fp32_outputs(float16.convert_float_to_float16(model, keep_io_types=True),
                             model)
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                          quantize_dynamic, quantize_static)

    # the quantizer adds QuantizeLinear/MatMulInteger: it needs the default domain
    # imported once (older exports listed it twice)
    unique_opsets(model, default=17)
    src, out = os.path.join(work, "to-quantize.onnx"), os.path.join(work, f"{mode}.onnx")
    onnx.save(model, src)
    if mode == "int8-dynamic":
        quantize_dynamic(src, out, weight_type=QuantType.QInt8)
    else:
        # per-channel weights where they help (convolutions); ONNX Runtime's QDQ
        # quantizer can fail on a per-channel Gemm bias: then per-tensor
        reader_type = type("Reader", (_Calibration, CalibrationDataReader), {})
        convs = any(n.op_type == "Conv" for n in model.graph.node)
        for per_channel in ((True, False) if convs else (False,)):
            try:
                quantize_static(src, out, reader_type(feeds), quant_format=QuantFormat.QDQ,
                                per_channel=per_channel, activation_type=QuantType.QInt8,
                                weight_type=QuantType.QInt8)
                break
            except (ValueError, RuntimeError) as e:  # the quantizer's own errors
                if not per_channel:
                    raise InvalidInputError(f"ONNX Runtime's static quantizer failed on "
                                            f"this graph ({e}); try --quantize "
                                            "int8-dynamic or fp16.") from e
    return onnx.load(out)


def _changed(model, mode: str) -> bool:
    """Whether quantization left a mark: quantized operators, or FP16 weights."""
    from onnx import TensorProto

    if mode == "fp16":
        return any(t.data_type == TensorProto.FLOAT16 for t in model.graph.initializer)
    marks = ("QuantizeLinear", "DynamicQuantizeLinear", "MatMulInteger", "ConvInteger",
             "QLinear", "DynamicQuantize")
    return any(n.op_type.startswith(marks) for n in model.graph.node)


def _run(model, feeds):
    session = _session(model)
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, feeds)))


def _latency_ms(model, feeds: dict[str, Any], rows: int, repeat: int = 20) -> float:
    import numpy as np

    session = _session(model)
    n = len(next(iter(feeds.values())))
    batch = {k: np.concatenate([v] * (rows // n + 1))[:rows] for k, v in feeds.items()}
    for _ in range(3):
        session.run(None, batch)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        session.run(None, batch)
        times.append(time.perf_counter() - t0)
    return round(statistics.median(times) * 1000, 4)


def _latencies(model, feeds: dict[str, Any]) -> dict[str, float]:
    """Latency at 1 and 64 rows, at those sizes the graph takes (a graph fixed to another
    batch size takes neither)."""
    from kfp_interop.export.dynamic_batch import fixed_batch

    batch = fixed_batch(model)
    return {f"rows_{n}": _latency_ms(model, feeds, n) for n in (1, 64)
            if batch is None or batch == n}


def _unbatched(tensors: list[dict], made: dict | None) -> list[dict]:
    """The tensors with the first dimension of those made dynamic left out."""
    changed = set((made or {}).get("tensors", ()))
    return [{**t, "shape": t["shape"][1:]} if t["name"] in changed else t for t in tensors]


def _score(record, before: dict, after: dict, labels) -> dict[str, Any]:
    """The gate's numbers: accuracy against the labels (classifiers with labels), label
    agreement (classifiers without), or the relative error of the float outputs."""
    import numpy as np

    if record.task == "classification" and LABEL_OUTPUT in before:
        a, b = np.asarray(before[LABEL_OUTPUT]), np.asarray(after[LABEL_OUTPUT])
        if labels is not None:
            truth = np.asarray(labels).astype(a.dtype)
            acc_a, acc_b = float(np.mean(a == truth)), float(np.mean(b == truth))
            return {"metric": "accuracy", "before": acc_a, "after": acc_b,
                    "drop": round(acc_a - acc_b, 6)}
        agree = float(np.mean(a == b))
        return {"metric": "label_agreement", "before": 1.0, "after": agree,
                "drop": round(1.0 - agree, 6)}
    errs = []
    for name, a in before.items():
        a = np.asarray(a)
        if a.dtype.kind not in "fc":
            continue
        b = np.asarray(after[name], dtype=np.float64)
        errs.append(float(np.mean(np.abs(b - a)) / (np.mean(np.abs(a)) + 1e-12)))
    err = max(errs) if errs else 0.0
    return {"metric": "relative_error", "before": 0.0, "after": round(err, 6),
            "drop": round(err, 6)}


def optimize_onnx(path: str, sample: str | dict, *, graph_level: str = "basic",
                  quantize: str = "none", max_accuracy_drop: float = 0.01,
                  tolerance: float | None = None, record=None,
                  dynamic_batch: bool = False) -> OptimizeResult:
    """Optimize the ONNX file ``path`` (with its record, or ``record`` given for a file
    that does not carry one yet) and gate it on ``sample`` (``.npz`` of inputs by name,
    optionally an array ``labels`` of true labels; or those arrays as a dict).
    ``dynamic_batch``: a graph with a fixed batch size first gets a symbolic one
    (:mod:`kfp_interop.export.dynamic_batch`; recorded in ``optimization.dynamic_batch``).

    Returns:
        The optimized model with its new record (sha256, parity and ``optimization``
        for the new graph), the sample and a report.

    Raises:
        InvalidInputError: an unknown level or mode, a level tied to one CPU, a graph
            that cannot take the mode (tree ensembles), a sample that does not fit, an
            opset too old for the quantizer.
        ParityError: the optimized model loses more than ``max_accuracy_drop``
            (nothing is written).
    """
    import importlib.metadata

    import numpy as np
    import onnx
    import onnxruntime as ort

    from kfp_interop.export.adopt import load_tensors
    from kfp_interop.metadata import embedded_record
    from kfp_interop.metadata.record import build_record, onnx_content_sha256
    from kfp_interop.onnx_model import (compare_outputs, prune_opsets, read_onnx,
                                        sample_inputs, tensor_specs)

    if graph_level not in GRAPH_LEVELS:
        hint = (" ('all' adds layout optimizations that tie the file to the CPU it was "
                "made on: not portable)" if graph_level == "all" else "")
        raise InvalidInputError(f"Graph level {graph_level!r}: use one of "
                                f"{', '.join(GRAPH_LEVELS)}{hint}.")
    if quantize not in QUANTIZE_MODES:
        raise InvalidInputError(f"Quantization {quantize!r}: use one of "
                                f"{', '.join(QUANTIZE_MODES)}.")
    if not (0 <= float(max_accuracy_drop) <= 1):
        raise InvalidInputError(f"max_accuracy_drop {max_accuracy_drop!r}: a fraction "
                                "between 0 and 1 (0.01 = one point).")
    if graph_level == "none" and quantize == "none" and not dynamic_batch:
        raise InvalidInputError("Nothing to do: give a graph level (basic, extended), a "
                                "quantization (int8-dynamic, int8-static, fp16) or "
                                "--dynamic-batch.")
    model = read_onnx(path)
    record = record or embedded_record(model, path, required=True)
    trees = _trees(model)
    if trees and quantize != "none":
        raise InvalidInputError(
            f"{os.path.basename(path)} is a tree ensemble ({', '.join(trees)}): ONNX Runtime "
            f"has no quantized tree operators, and FP16 does not apply to them; "
            f"--quantize {quantize} is refused. Graph optimization (--graph-level) still "
            "applies.")
    opset = record.model.get("onnx_opset", 0)
    if quantize.startswith("int8") and opset < 10:
        raise InvalidInputError(f"The graph imports opset {opset}; ONNX Runtime's quantizer "
                                "needs 10 or later (QuantizeLinear): re-export it with "
                                "--opset 13 or later.")
    inputs, outputs = tensor_specs(model)
    tensors = dict(sample) if isinstance(sample, dict) else load_tensors(sample)
    labels = tensors.pop(LABELS_KEY, None)
    feeds = sample_inputs(tensors, inputs)
    rows = int(len(next(iter(feeds.values()))))
    before = _run(model, feeds)
    start, made = model, None
    if dynamic_batch:
        from kfp_interop.export.dynamic_batch import make_batch_dynamic

        start, made = make_batch_dynamic(model, feeds, where=os.path.basename(path))
        if made is None and graph_level == "none" and quantize == "none":
            raise InvalidInputError(f"Nothing to do: {os.path.basename(path)} already takes "
                                    "any batch size.")
    with tempfile.TemporaryDirectory(prefix="kfp-interop-optimize-") as work:
        optimized = _graph_optimized(start, graph_level, work)
        optimized = _quantized(optimized, quantize, feeds, work)
    prune_opsets(optimized)
    if quantize != "none" and not _changed(optimized, quantize):
        ops = sorted({n.op_type for n in model.graph.node})
        raise InvalidInputError(
            f"--quantize {quantize} changes nothing in {os.path.basename(path)}: "
            + ("ONNX Runtime quantizes MatMul, Gemm, Conv and similar operators"
               if quantize.startswith("int8") else "it holds no float weights to halve")
            + f", and this graph holds {ops}. Graph optimization (--graph-level) still "
            "applies.")
    from kfp_interop.metadata.record import METADATA_KEY

    kept = [p for p in optimized.metadata_props if p.key != METADATA_KEY]
    del optimized.metadata_props[:]
    optimized.metadata_props.extend(kept)
    try:
        after = _run(optimized, feeds)
    except Exception as e:  # noqa: BLE001 - ONNX Runtime's own error types
        raise InvalidInputError(f"The {quantize} graph does not run in ONNX Runtime ({e}); "
                                "use another --quantize.") from e
    score = {**_score(record, before, after, labels), "max_drop": float(max_accuracy_drop)}
    max_diff, problems = compare_outputs(before, after, outputs)
    if score["drop"] > max_accuracy_drop:
        raise ParityError(
            f"The {quantize if quantize != 'none' else graph_level} model loses "
            f"{score['drop']:.4f} of {score['metric']} on {rows} sample rows "
            f"({score['before']} -> {score['after']}), more than --max-accuracy-drop "
            f"{max_accuracy_drop}: refused, nothing written. Allow more, or try another "
            "--quantize (int8-static calibrates on the sample; fp16 loses least).",
            {"max_abs_diff": max_diff, "passed": False, **score})
    tools = {"onnxruntime": ort.__version__, "onnx": onnx.__version__}
    if quantize == "fp16":
        tools["onnxconverter-common"] = importlib.metadata.version("onnxconverter-common")
    label_agreement = None
    if record.task == "classification" and LABEL_OUTPUT in before:
        label_agreement = float(np.mean(np.asarray(before[LABEL_OUTPUT])
                                        == np.asarray(after[LABEL_OUTPUT])))
    parity = {"max_abs_diff": float(max_diff), "label_agreement": label_agreement,
              "tolerance": float(tolerance if tolerance is not None else max_diff),
              "n_rows": rows, "passed": True, "provider": "CPUExecutionProvider"}
    kind = (quantize if quantize != "none" else "graph" if graph_level != "none"
            else "dynamic-batch")
    optimization = {
        "kind": kind, "graph_level": graph_level,
        "tools": tools,
        "size_bytes": {"before": len(model.SerializeToString()),
                       "after": len(optimized.SerializeToString())},
        "accuracy": score, "sample_rows": rows,
        # a graph fixed to one batch size is timed as it was made dynamic (the same
        # computation), or only at the sizes it takes
        "latency_ms": {"before": _latencies(start, feeds),
                       "after": _latencies(optimized, feeds)},
        "provider": "CPUExecutionProvider",
        "source": {"file": os.path.basename(path),
                   "onnx_sha256": onnx_content_sha256(model)}}
    new = build_record(optimized, name=record.name, version=record.version,
                       task=record.task, framework=record.framework,
                       feature_names=record.feature_names, class_labels=record.class_labels,
                       target=record.target, training=record.training, parity=parity,
                       lineage=record.lineage, origin=record.origin, checks=record.checks,
                       federated=record.federated)
    extra = {k: getattr(record, k) for k in ("properties", "serving")
             if getattr(record, k) is not None}
    if made:
        optimization["dynamic_batch"] = made
    new = new.replace(optimization=optimization, **extra)
    if _unbatched(new.inputs, made) != _unbatched(record.inputs, made) or \
            _unbatched(new.outputs, made) != _unbatched(record.outputs, made):
        raise InvalidInputError(f"The optimized graph's tensors {new.inputs}/{new.outputs} "
                                f"differ from the model's {record.inputs}/{record.outputs}.")
    report = {"problems": problems, **optimization}
    if labels is not None:
        feeds = {**feeds, LABELS_KEY: np.asarray(labels)}
    return OptimizeResult(optimized, new, feeds, report)
