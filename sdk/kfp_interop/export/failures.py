"""Converter failures in our words: each known failure of skl2onnx, onnxmltools,
torch.onnx and tf2onnx that a user can meet, as a typed error naming the model, the
cause and what to do. A failure not in :data:`KNOWN_FAILURES` is still reported as an
:class:`~kfp_interop.errors.ExportError` naming the model and the converter, with the
converter's first line quoted as the detail, never as the message itself.

Example:
    >>> try:
    ...     convert(...)
    ... except Exception as e:
    ...     raise explain("onnxmltools", e, source="booster.json") from e
"""

from __future__ import annotations

import dataclasses
import re

from kfp_interop.errors import ExportError, InteropError, UnsupportedModelError

__all__ = ["KnownFailure", "KNOWN_FAILURES", "explain", "known_failure", "chain_text"]


@dataclasses.dataclass(frozen=True)
class KnownFailure:
    """One failure a converter is known to raise.

    Attributes:
        converter: ``skl2onnx``, ``onnxmltools``, ``torch.onnx`` or ``tf2onnx``.
        pattern: a regular expression searched in the text of the exception and its
            causes; its groups fill ``cause`` and ``todo`` (``{0}``, ``{1}``...).
        cause: what is wrong, in our words.
        todo: what the user can do.
        error: the error type raised.
    """

    converter: str
    pattern: str
    cause: str
    todo: str
    error: type = UnsupportedModelError


KNOWN_FAILURES: tuple[KnownFailure, ...] = (
    KnownFailure("onnxmltools", r"'gbtree_model_param'|gblinear",
                 "it uses XGBoost's linear booster (booster='gblinear'), which has no ONNX "
                 "converter", "train with booster='gbtree' (the default) or 'dart'"),
    KnownFailure("onnxmltools", r"Unexpected objective: (\S+)",
                 "its objective {0} has no ONNX translation in onnxmltools",
                 "train with binary:logistic, multi:softprob, reg:squarederror, "
                 "reg:logistic, count:poisson, reg:gamma or reg:tweedie"),
    KnownFailure("onnxmltools", r"Unable to retrieve the number of classes",
                 "the booster holds no trees the converter can count classes from",
                 "train at least one boosting round and save the model again"),
    KnownFailure("skl2onnx", r"Unable to find column name '([^']*)'",
                 "a ColumnTransformer selects column {0!r} by name after another step, "
                 "where the columns have no names in the graph",
                 "select columns by name in the pipeline's first step only"),
    KnownFailure("skl2onnx", r"FunctionTransformer is not supported",
                 "a FunctionTransformer runs a Python function, which has no ONNX form",
                 "replace it with a scikit-learn transformer, or apply the function to the "
                 "data before the model"),
    KnownFailure("skl2onnx", r"[Ss]parse",
                 "a step hands sparse matrices to the next, which the converter cannot",
                 "make the step dense (e.g. OneHotEncoder(sparse_output=False))"),
    KnownFailure("torch.onnx", r"Guard failed|always_classified|Constraints violated",
                 "the model takes a fixed batch size, so it cannot be exported with a "
                 "dynamic batch", "export the program with dynamic_shapes={{'x': {{0: "
                 "torch.export.Dim('batch')}}}} (or save the state dict)", ExportError),
    KnownFailure("torch.onnx", r"[Dd]ata-dependent|GuardOnDataDependent|"
                 r"Could not guard on data-dependent|[Dd]ynamic control flow",
                 "its forward branches in Python on the values of a tensor (e.g. "
                 "`if x.sum() > 0:`), which torch.export cannot trace",
                 "compute both branches and pick with torch.where, or use torch.cond"),
    KnownFailure("tf2onnx", r"Unsupported ops: Counter\(\{(.+?)\}\)|Tensorflow op \[[^:]*: ([^\]]+)\] is "
                 r"not supported",
                 "TensorFlow op(s) {0} have no ONNX translation in tf2onnx",
                 "try another --opset, or replace the layer that uses them"),
    KnownFailure("tf2onnx", r"[Oo]pset (\d+) is not supported",
                 "tf2onnx does not write opset {0}", "pass a lower --opset"),
)


def chain_text(e: BaseException) -> str:
    """The text of an exception and its causes, without terminal colour codes."""
    parts, seen = [], set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        parts.append(f"{type(e).__name__}: {e}")
        e = e.__cause__ or e.__context__
    return re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(parts))


def _first_line(e: BaseException) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(e)).strip()
    return (text.splitlines()[0] if text else type(e).__name__)[:300]


def known_failure(converter: str, e: BaseException,
                  extra: tuple[KnownFailure, ...] = ()) -> tuple[KnownFailure, list] | None:
    """The known failure ``e`` is (with the groups its pattern matched), or None."""
    text = chain_text(e)
    for known in (*extra, *KNOWN_FAILURES):
        if known.converter == converter:
            match = re.search(known.pattern, text)
            if match:
                return known, [g for g in match.groups() if g is not None]
    return None


def explain(converter: str, e: BaseException, *, source: str,
            extra: tuple[KnownFailure, ...] = ()) -> InteropError:
    """The typed error for converter ``converter``'s failure ``e`` on the model
    ``source`` (a file name, or "the model"): a known failure's cause and remedy, or
    an :class:`ExportError` quoting the converter."""
    if isinstance(e, InteropError):
        return e
    found = known_failure(converter, e, extra)
    if found:
        known, groups = found
        cause, todo = known.cause.format(*groups), known.todo.format(*groups)
        return known.error(f"{converter} cannot convert {source}: {cause}. To export it, "
                           f"{todo}.")
    return ExportError(f"{converter} failed to convert {source}, for a reason kfp-interop "
                       f"does not know (the converter says: {_first_line(e)!r}). Check "
                       "the model converts with the converter alone; if it does, report "
                       "this with the model's type.")
