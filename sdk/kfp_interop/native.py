"""Native (pre-ONNX) models: one prediction interface and safe on-disk formats.

Between the train and export steps a model travels in its framework's safest format,
never as a pickle: scikit-learn through ``skops`` (loading refuses any type outside
scikit-learn and NumPy), XGBoost as its JSON model, LightGBM as its text model.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

from kfp_interop.errors import InvalidInputError, ModelFileError

__all__ = ["NativeModel", "save_native", "load_native", "sha256_file", "NATIVE_FORMATS"]

NATIVE_FORMATS = {"sklearn": "skops", "xgboost": "xgboost-json", "lightgbm": "lightgbm-text",
                  "torch": "torch-state-dict", "keras": "keras"}
_FILENAMES = {"skops": "model.skops", "xgboost-json": "model.json",
              "lightgbm-text": "model.txt", "torch-state-dict": "model.pt",
              "keras": "model.keras"}


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class NativeModel:
    """A fitted model with ``predict`` / ``predict_proba`` whatever its framework.

    ``predict`` returns class indices (classification) or values (regression);
    ``predict_proba`` returns an (n, n_classes) float array.
    """

    def __init__(self, model: Any, framework: str, task: str, spec: Any = None):
        self.model = model
        self.framework = framework
        self.task = task
        self.spec = spec  # torch: the TorchSpec that rebuilds the module

    def _lgb_booster(self):
        import lightgbm

        return self.model if isinstance(self.model, lightgbm.Booster) else None

    def predict_proba(self, X):
        import numpy as np

        if self.task != "classification":
            raise InvalidInputError("predict_proba is defined for classification models only.")
        if self.framework == "torch":
            from kfp_interop.deep import torch_predict_proba

            return torch_predict_proba(self.model, X)
        if self.framework == "keras":
            return np.asarray(self.model.predict(np.asarray(X, np.float32), verbose=0),
                              dtype=np.float64)
        booster = self._lgb_booster() if self.framework == "lightgbm" else None
        if booster is not None:
            p = np.asarray(booster.predict(X))
            return np.column_stack([1 - p, p]) if p.ndim == 1 else p
        return np.asarray(self.model.predict_proba(X))

    def predict(self, X):
        import numpy as np

        if self.task == "classification":
            return np.argmax(self.predict_proba(X), axis=1).astype(np.int64)
        return np.asarray(self.model.predict(X), dtype=np.float64).reshape(-1)


def save_native(native: NativeModel, directory: str) -> dict[str, str]:
    """Save into ``directory`` (created); return ``{"format", "file", "sha256"}``."""
    os.makedirs(directory, exist_ok=True)
    fmt = NATIVE_FORMATS[native.framework]
    path = os.path.join(directory, _FILENAMES[fmt])
    tmp = path + ".partial"
    if fmt == "torch-state-dict":
        from kfp_interop.deep import save_torch

        return save_torch(native.model, native.spec, directory)
    if fmt == "keras":
        native.model.save(path)  # the .keras zip: config + weights, no pickled code
        return {"format": fmt, "file": os.path.basename(path), "sha256": sha256_file(path)}
    if fmt == "skops":
        import skops.io

        skops.io.dump(native.model, tmp)
    elif fmt == "xgboost-json":
        native.model.save_model(tmp + ".json")  # xgboost picks the format by extension
        os.replace(tmp + ".json", tmp)
    else:
        booster = native._lgb_booster() or native.model.booster_
        booster.save_model(tmp)
    os.replace(tmp, path)
    return {"format": fmt, "file": os.path.basename(path), "sha256": sha256_file(path)}


def load_native(directory: str, *, framework: str, task: str,
                expected_sha256: str | None = None) -> NativeModel:
    """Load a model saved by :func:`save_native`.

    Raises:
        ModelFileError: the file is missing, its checksum differs, or (skops) it holds
            types outside scikit-learn and NumPy.
    """
    fmt = NATIVE_FORMATS.get(framework)
    if fmt is None:
        raise InvalidInputError(f"No native format for framework {framework!r}; known: "
                                f"{sorted(NATIVE_FORMATS)}.")
    path = os.path.join(directory, _FILENAMES[fmt]) if os.path.isdir(directory) else directory
    if not os.path.isfile(path):
        raise ModelFileError(f"No {fmt} model at {path!r}.")
    if expected_sha256 and sha256_file(path) != expected_sha256:
        raise ModelFileError(f"Model file {path!r} does not match its recorded sha256 "
                             f"{expected_sha256}: it changed after training.")
    if fmt == "torch-state-dict":
        from kfp_interop.deep import load_torch

        model, spec = load_torch(os.path.dirname(path))
        return NativeModel(model, framework, task, spec)
    if fmt == "keras":
        from kfp_interop.deep import keras_backend

        keras = keras_backend(os.environ.get("KERAS_BACKEND", "torch"))
        model = keras.saving.load_model(path, safe_mode=True)
        return NativeModel(model, framework, task)
    if fmt == "skops":
        import skops.io

        untrusted = skops.io.get_untrusted_types(file=path)
        foreign = [t for t in untrusted if not t.startswith(("sklearn.", "numpy."))]
        if foreign:
            raise ModelFileError(f"Model file {path!r} holds types outside scikit-learn "
                                 f"and NumPy ({foreign}); refusing to load it.")
        model = skops.io.load(path, trusted=untrusted)
    elif fmt == "xgboost-json":
        import xgboost

        model = (xgboost.XGBClassifier() if task == "classification"
                 else xgboost.XGBRegressor())
        model.load_model(path)
    else:
        import lightgbm

        model = lightgbm.Booster(model_file=path)
    return NativeModel(model, framework, task)
