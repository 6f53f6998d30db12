"""Static graphs made servable: an ONNX graph exported with a fixed batch size (a
PyTorch export without ``dynamic_axes``, MindSpore's export, "static graph first"
compilers) serves only batches of exactly that size. :func:`make_batch_dynamic` makes
the first dimension of its inputs and outputs symbolic where the graph allows it and
proves the result on the sample.

What pins a batch inside a graph: a ``Reshape`` whose target shape is a constant
starting with the batch size (exporters fold ``x.view(x.size(0), -1)`` into ``[B, -1]``
when the batch is fixed), rewritten to ``-1`` (with the other dimensions from the
original graph's inferred shape when the constant already has a ``-1``); and constant
shapes fed to ``Expand``, ``Tile``, ``ConstantOfShape`` or ``Range``, which cannot be
rewritten safely: found and named. Shape inference is re-run on the result (strict), and
the result runs the sample at the original size and at 1 and 3 rows, compared row by
row with the original graph (run block by block at its own size, the last block padded
with repeated rows).
"""

from __future__ import annotations

from typing import Any

from kfp_interop.errors import InvalidInputError

__all__ = ["make_batch_dynamic", "fixed_batch", "BATCH_DIM"]

#: the symbolic name given to the batch dimension
BATCH_DIM = "batch"
#: operators whose constant shape input pins a batch and cannot be rewritten safely
_SHAPE_CONSUMERS = {"Expand": 1, "Tile": 1, "ConstantOfShape": 0, "Range": 1}
_CHECK_ROWS = (1, 3)


def fixed_batch(model) -> int | None:
    """The fixed first dimension of the graph's inputs (``None`` when every input's
    first dimension is already symbolic).

    Raises:
        InvalidInputError: inputs disagree on it, or an input has no dimension at all.
    """
    inits = {i.name for i in model.graph.initializer}
    sizes = {}
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        dims = vi.type.tensor_type.shape.dim
        if not dims:
            raise InvalidInputError(f"Input {vi.name!r} is a scalar (no dimensions): it has "
                                    "no batch dimension to make dynamic.")
        if dims[0].HasField("dim_value") and dims[0].dim_value > 0:
            sizes[vi.name] = dims[0].dim_value
    if len(set(sizes.values())) > 1:
        raise InvalidInputError(f"The inputs' first dimensions differ ({sizes}): no one "
                                "batch size to make dynamic.")
    return next(iter(sizes.values()), None)


def _constants(model) -> dict[str, Any]:
    from onnx import numpy_helper

    out = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    out[node.output[0]] = numpy_helper.to_array(attr.t)
    return out


def _inferred_shapes(model) -> dict[str, list[int | None]]:
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
    except Exception:  # noqa: BLE001 - inference is a help here, not a requirement
        return {}
    out = {}
    for vi in list(inferred.graph.value_info) + list(inferred.graph.output):
        out[vi.name] = [d.dim_value if d.HasField("dim_value") else None
                        for d in vi.type.tensor_type.shape.dim]
    return out


def _rewrite(model, batch: int) -> tuple[Any, list[str], list[str]]:
    """The graph with the batch dimension symbolic: ``(model, rewritten, pins)``."""
    import numpy as np
    from onnx import numpy_helper

    from kfp_interop.onnx_model import tensor_names, unique_name

    new = model.__class__()
    new.CopyFrom(model)
    inits = {i.name for i in new.graph.initializer}
    for vi in list(new.graph.input) + list(new.graph.output):
        if vi.name in inits:
            continue
        dims = vi.type.tensor_type.shape.dim
        if not dims:
            raise InvalidInputError(f"Output {vi.name!r} is a scalar: a graph whose output "
                                    "has no batch dimension cannot take a dynamic batch.")
        first = dims[0]
        if first.HasField("dim_value") and first.dim_value not in (batch, 0):
            raise InvalidInputError(
                f"Output {vi.name!r} has first dimension {first.dim_value}, not the batch "
                f"size {batch}: it does not keep one row per input row, so the batch "
                "cannot be made dynamic.")
        if first.HasField("dim_value"):
            first.Clear()
            first.dim_param = BATCH_DIM
    del new.graph.value_info[:]  # intermediate shapes pinned to the old batch
    constants = _constants(model)
    shapes = _inferred_shapes(model)
    names = tensor_names(new)
    rewritten, pins = [], []
    for i, node in enumerate(new.graph.node):
        label = node.name or f"{node.op_type}#{i}"
        if node.op_type == "Reshape" and len(node.input) > 1 and node.input[1] in constants:
            target = np.asarray(constants[node.input[1]]).astype(np.int64).copy()
            if target.ndim != 1 or not target.size or target[0] != batch:
                continue
            if (target[1:] == -1).any():
                known = shapes.get(node.output[0])
                if not known or None in known[1:]:
                    pins.append(f"{label} (Reshape to {target.tolist()}: the other "
                                "dimensions are not known)")
                    continue
                target = np.asarray([-1] + known[1:], dtype=np.int64)
            else:
                target[0] = -1
            name = unique_name(new, f"{node.input[1]}_dynamic_batch", names)
            names.add(name)
            new.graph.initializer.append(numpy_helper.from_array(target, name))
            node.input[1] = name
            rewritten.append(label)
        elif node.op_type in _SHAPE_CONSUMERS:
            k = _SHAPE_CONSUMERS[node.op_type]
            if len(node.input) > k and node.input[k] in constants:
                value = np.asarray(constants[node.input[k]]).ravel()
                if value.size and int(value[0]) == batch:
                    pins.append(f"{label} ({node.op_type} to the constant shape "
                                f"{value.tolist()})")
    return new, rewritten, pins


def _blocks(session, feeds: dict[str, Any], batch: int) -> dict[str, Any]:
    """The original graph's outputs row by row: run block by block at its own size, the
    last block padded with repeated rows."""
    import numpy as np

    rows = len(next(iter(feeds.values())))
    names = [o.name for o in session.get_outputs()]
    parts: dict[str, list] = {n: [] for n in names}
    for start in range(0, rows, batch):
        idx = np.minimum(np.arange(start, start + batch), rows - 1)
        out = session.run(names, {k: v[idx] for k, v in feeds.items()})
        take = min(batch, rows - start)
        for n, value in zip(names, out):
            parts[n].append(np.asarray(value)[:take])
    return {n: np.concatenate(v) for n, v in parts.items()}


def make_batch_dynamic(model, feeds: dict[str, Any], *, where: str = "the model",
                       tolerance: float = 1e-5) -> tuple[Any, dict[str, Any] | None]:
    """``model`` with its batch dimension symbolic, and what was done (``None`` when the
    graph already takes any batch: the model comes back unchanged).

    Raises:
        InvalidInputError: something pins the batch (named), shape inference fails on
            the result, or the result does not give the original's answers at the
            original size, 1 or 3 rows (named).
    """
    import numpy as np
    import onnx

    from kfp_interop.onnx_model import ort_session

    batch = fixed_batch(model)
    if batch is None:
        return model, None
    new, rewritten, pins = _rewrite(model, batch)
    if pins:
        raise InvalidInputError(
            f"{where} has batch size {batch} fixed in its graph by {'; '.join(pins)}: "
            "--dynamic-batch cannot rewrite these. Export again with a dynamic batch "
            "(PyTorch: dynamic_axes / dynamic_shapes; shapes computed from the input, not "
            "constants).")
    try:
        onnx.shape_inference.infer_shapes(new, strict_mode=True, data_prop=True)
    except Exception as e:  # noqa: BLE001 - onnx raises its own error types
        raise InvalidInputError(f"{where} with a dynamic batch fails ONNX shape inference "
                                f"({str(e).strip()[:400]}); rewritten: {rewritten or 'none'}."
                                ) from e
    rows = len(next(iter(feeds.values())))
    original = ort_session(model)
    reference = _blocks(original, feeds, batch)
    try:
        session = ort_session(new)
    except Exception as e:  # noqa: BLE001
        raise InvalidInputError(f"{where} with a dynamic batch does not load in ONNX "
                                f"Runtime: {e}") from e
    names = [o.name for o in session.get_outputs()]
    worst = 0.0
    for n in (batch,) + _CHECK_ROWS:
        idx = np.arange(n) % rows
        try:
            got = session.run(names, {k: v[idx] for k, v in feeds.items()})
        except Exception as e:  # noqa: BLE001
            raise InvalidInputError(f"{where} with a dynamic batch does not run {n} row(s): "
                                    f"{str(e).strip()[:400]}") from e
        for name, value in zip(names, got):
            value, want = np.asarray(value), reference[name][idx]
            if value.shape != want.shape:
                raise InvalidInputError(
                    f"{where} with a dynamic batch answers {n} row(s) with {name!r} of shape "
                    f"{list(value.shape)}, the original {list(want.shape)}: rows are not "
                    "independent in this graph.")
            if value.dtype.kind in "fc":
                diff = float(np.max(np.abs(value - want))) if value.size else 0.0
                scale = float(np.max(np.abs(want))) if want.size else 1.0
                if diff > tolerance * max(1.0, scale):
                    raise InvalidInputError(
                        f"{where} with a dynamic batch answers {n} row(s) differently from "
                        f"the original ({name!r}: max difference {diff:.3g}).")
                worst = max(worst, diff)
            elif not np.array_equal(value, want):
                raise InvalidInputError(f"{where} with a dynamic batch answers {n} row(s) "
                                        f"differently from the original ({name!r}).")
    inits = {i.name for i in new.graph.initializer}
    report = {"from_batch": int(batch),
              "tensors": [v.name for v in list(new.graph.input) + list(new.graph.output)
                          if v.name not in inits],
              "rewritten": rewritten, "checked_rows": [int(batch), *_CHECK_ROWS],
              "max_abs_diff": worst}
    return new, report
