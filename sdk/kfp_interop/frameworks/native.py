"""Native (pre-ONNX) models: one prediction interface and safe on-disk formats.

Between the train and export steps a model travels in its framework's safest format,
never as a pickle; each framework module says which (skops for scikit-learn, XGBoost
JSON, LightGBM text, a PyTorch state dict, the ``.keras`` zip).
"""

from __future__ import annotations

import os
from typing import Any

from kfp_interop.errors import InvalidInputError, ModelFileError
from kfp_interop.files import sha256_file
from kfp_interop.frameworks.registry import FRAMEWORKS

__all__ = ["NativeModel", "save_native", "load_native"]


class NativeModel:
    """A fitted model with ``predict`` / ``predict_proba`` whatever its framework.

    ``predict`` returns class indices (classification) or values (regression);
    ``predict_proba`` returns an (n, n_classes) float array.
    """

    def __init__(self, model: Any, framework: str, task: str, spec: Any = None, *,
                 feature_names: list[str] | None = None, text_columns: list[str] = ()):
        self.model = model
        self.framework = framework
        self.task = task
        self.spec = spec  # what rebuilds the model (PyTorch: its TorchSpec)
        # the table it takes: with text columns, a DataFrame of these columns, and the
        # exported graph takes one input per column
        self.feature_names = list(feature_names) if feature_names else None
        self.text_columns = list(text_columns)
        #: how messages name the model: its file (quoted), or "the model"
        self.source = "the model"
        self._categories: dict[int, list] | None = None

    @property
    def categories(self) -> dict[int, list]:
        """The columns the model maps from category values to codes itself
        (:meth:`Framework.categories`): ``{feature index: values in code order}``."""
        if self._categories is None:  # (an exporter may be registered without a framework)
            self._categories = (FRAMEWORKS.get(self.framework).categories(self.model)
                                if self.framework in FRAMEWORKS else {})
        return self._categories

    def category_text_columns(self) -> list[str]:
        """The feature columns whose categories are text (the graph takes strings)."""
        names = self.feature_names or []
        return [names[i] for i, values in sorted(self.categories.items())
                if i < len(names) and any(isinstance(v, str) for v in values)]

    def predict_proba(self, X):
        import numpy as np

        if self.task != "classification":
            raise InvalidInputError("predict_proba is defined for classification models only.")
        return np.asarray(FRAMEWORKS.get(self.framework).predict_proba(self.model, X),
                          dtype=np.float64)

    def predict(self, X):
        import numpy as np

        if self.task == "classification":
            return np.argmax(self.predict_proba(X), axis=1).astype(np.int64)
        values = FRAMEWORKS.get(self.framework).predict(self.model, X)
        return np.asarray(values, dtype=np.float64).reshape(-1)


def save_native(native: NativeModel, directory: str) -> dict[str, str]:
    """Save into ``directory`` (created); return ``{"format", "file", "sha256"}``."""
    fw = FRAMEWORKS.get(native.framework)
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, fw.native_file)
    fw.save(native.model, path, spec=native.spec)
    return {"format": fw.native_format, "file": fw.native_file, "sha256": sha256_file(path)}


def load_native(directory: str, *, framework: str, task: str,
                expected_sha256: str | None = None, trusted_types: Any = None) -> NativeModel:
    """Load a model saved by :func:`save_native` (a folder, or the native file itself),
    as data: no code from the file runs (see :mod:`kfp_interop.trust`).

    Args:
        expected_sha256: the file must have this sha256 (pass one that travelled beside
            the artifact, e.g. the training step's output, not only the one inside it).
        trusted_types: exact type names trusted beyond the framework's own list.

    Raises:
        UnknownNameError: no such framework.
        ModelFileError: the file is missing, its checksum differs, or the framework
            refuses its content (:class:`UntrustedModelError`).
    """
    fw = FRAMEWORKS.get(framework)
    path = fw.locate(directory)
    if not os.path.exists(path):
        raise ModelFileError(f"No {fw.native_format} model at {path!r}.")
    if expected_sha256 and sha256_file(path) != expected_sha256:
        raise ModelFileError(f"Model file {path!r} does not match its recorded sha256 "
                             f"{expected_sha256}: it changed after training.")
    model, spec = fw.load(path, task=task, trusted_types=trusted_types)
    return NativeModel(model, framework, task, spec)
