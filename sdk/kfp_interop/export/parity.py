"""The parity gate: the ONNX model must predict what the native model predicts.

Both run on the same held-out rows, rounded to FP32 first (the served model takes FP32,
so that is the input both must agree on). Classification compares class probabilities
(max absolute difference) and labels (agreement); regression compares values with a
tolerance relative to their size, ``|onnx - native| <= tolerance * max(1, |native|)``,
since FP32 sums of hundreds of trees on targets in the hundreds differ in absolute terms
by more than 1e-4 while being equal to seven significant digits.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from kfp_interop.constants import (DEFAULT_TOLERANCE, INPUT_NAME, LABEL_OUTPUT,
                                   PROBABILITIES_OUTPUT, VALUE_OUTPUT)
from kfp_interop.errors import InvalidInputError, ParityError
from kfp_interop.onnx_model import ort_session

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from kfp_interop.frameworks import NativeModel

__all__ = ["DEFAULT_TOLERANCE", "ParityResult", "check_parity", "enforce_parity"]


@dataclasses.dataclass(frozen=True)
class ParityResult:
    """Outcome of a parity check.

    Attributes:
        max_abs_diff: largest absolute difference of probabilities (classification) or
            values (regression).
        max_rel_diff: regression only: largest ``|diff| / max(1, |native|)`` (what the gate
            compares); equals ``max_abs_diff`` for classification.
        label_agreement: fraction of rows with the same predicted class (``None`` for
            regression). Rows whose two best native probabilities tie (within the
            tolerance) may differ without failing the gate; they are counted in
            ``tied_rows``.
        tolerance: the gate's tolerance.
        passed: whether the gate passes.
        n_rows: rows compared.
        provider: the ONNX Runtime execution provider the ONNX side ran on.
    """

    max_abs_diff: float
    max_rel_diff: float
    label_agreement: float | None
    tolerance: float
    passed: bool
    n_rows: int
    task: str
    tied_rows: int = 0
    provider: str = "CPUExecutionProvider"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def check_parity(native: "NativeModel", onnx_model: Any, X: "np.ndarray", *,
                 tolerance: float = DEFAULT_TOLERANCE) -> ParityResult:
    """Compare the native model with ONNX Runtime on rows ``X`` (a matrix, or a
    DataFrame when the model takes text columns).

    Raises:
        InvalidInputError: no rows, or a negative tolerance.
    """
    import numpy as np

    if not tolerance >= 0:
        raise InvalidInputError(f"Parity tolerance {tolerance!r} must be a number >= 0.")
    if X.shape[0] == 0:
        raise InvalidInputError("Parity needs at least one held-out row; the test split "
                                "is empty (raise test_size).")
    sess = ort_session(onnx_model)
    if native.text_columns:  # a table with text: one input per column, numbers as FP32
        from kfp_interop.data import model_inputs

        feeds = model_inputs(X, native.text_columns)
        Xn = X.copy()
        for column in X.columns:
            if column not in native.text_columns:
                Xn[column] = feeds[column].reshape(-1).astype(np.float64)
    else:
        X32 = np.ascontiguousarray(X, dtype=np.float32)
        feeds, Xn = {INPUT_NAME: X32}, X32.astype(np.float64)
    outputs = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))
    if native.task == "classification":
        expected = native.predict_proba(Xn)
        got = np.asarray(outputs[PROBABILITIES_OUTPUT], dtype=np.float64)
        diff = float(np.max(np.abs(got - expected))) if got.shape == expected.shape else float("inf")
        same = np.asarray(outputs[LABEL_OUTPUT]).reshape(-1) == np.argmax(expected, axis=1)
        agreement = float(np.mean(same))
        # A row whose two best classes are tied (within the tolerance) may take either
        # label in either runtime: only decisive rows must agree.
        top2 = np.sort(expected, axis=1)[:, -2:]
        ties = (top2[:, 1] - top2[:, 0]) <= max(tolerance, 1e-9)
        passed = diff <= tolerance and bool(np.all(same | ties))
        n_ties = int(np.sum(ties & ~same))
        rel = diff
    else:
        expected = native.predict(Xn)
        got = np.asarray(outputs[VALUE_OUTPUT], dtype=np.float64).reshape(-1)
        abs_diff = np.abs(got - expected)
        diff = float(abs_diff.max())
        rel = float((abs_diff / np.maximum(1.0, np.abs(expected))).max())
        agreement = None
        n_ties = 0
        passed = rel <= tolerance
    return ParityResult(max_abs_diff=diff, max_rel_diff=rel, label_agreement=agreement,
                        tolerance=float(tolerance), passed=bool(passed), n_rows=int(X.shape[0]),
                        task=native.task, tied_rows=n_ties, provider=sess.get_providers()[0])


def enforce_parity(result: ParityResult) -> ParityResult:
    """Return ``result`` when it passed, else raise :class:`ParityError`."""
    if result.passed:
        return result
    what = (f"max probability difference {result.max_abs_diff:.3g}, label agreement "
            f"{result.label_agreement:.4f}" if result.task == "classification"
            else f"max relative difference {result.max_rel_diff:.3g}")
    raise ParityError(
        f"Parity gate failed on {result.n_rows} held-out rows: {what} exceeds tolerance "
        f"{result.tolerance:g}. The ONNX model does not predict what the native model "
        "predicts; try another opset or estimator, or raise parity_tolerance only if the "
        "difference is acceptable for your use.", result.to_dict())
