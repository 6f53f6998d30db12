"""Keras 3: the built-in ``mlp`` and ``cnn`` on the torch backend (no TensorFlow needed),
or on TensorFlow when it is installed; saved as the ``.keras`` zip (config + weights)
and loaded with ``safe_mode=True`` (no deserialised code)."""

from __future__ import annotations

import os
from typing import Any, Callable

from kfp_interop.errors import InvalidInputError, ModelFileError, UnsupportedModelError
from kfp_interop.files import atomic_path
from kfp_interop.frameworks.base import (DeepFramework, ForeignModel, check_task,
                                         probabilities_from)
from kfp_interop.frameworks.registry import register_framework

__all__ = ["KerasFramework", "keras_backend", "build_keras_model", "train_keras",
           "read_keras_file", "keras_output_kind", "keras_probabilities", "KERAS_BACKENDS"]

# backend -> the package it needs
KERAS_BACKENDS = {"torch": "torch", "tensorflow": "tensorflow", "jax": "jax"}


def keras_backend(backend: str = "torch"):
    """Import Keras 3 on ``backend`` (set before the first import).

    Raises:
        InvalidInputError: the backend is not installed, or Keras already runs on another.
    """
    import importlib.util

    if backend not in KERAS_BACKENDS:
        raise InvalidInputError(f"Unknown Keras backend {backend!r}; use one of "
                                f"{sorted(KERAS_BACKENDS)}.")
    if importlib.util.find_spec(KERAS_BACKENDS[backend]) is None:
        raise InvalidInputError(f"Keras backend {backend!r} is not installed: pip install "
                                f"{KERAS_BACKENDS[backend]} (or use backend 'torch').")
    os.environ.setdefault("KERAS_BACKEND", backend)
    import keras

    if keras.backend.backend() != backend:
        raise InvalidInputError(f"Keras is already running on {keras.backend.backend()!r} "
                                f"in this process; {backend!r} needs a new process.")
    return keras


def build_keras_model(architecture: str, n_features: int, n_classes: int, *,
                      backend: str = "torch", seed: int = 42):
    keras = keras_backend(backend)
    keras.utils.set_random_seed(seed)
    layers = keras.layers
    if architecture == "mlp":
        body = [layers.Dense(64, activation="relu"), layers.Dense(64, activation="relu")]
    elif architecture == "cnn":
        side = int(round(n_features ** 0.5))
        if side * side != n_features:
            raise InvalidInputError(f"The cnn architecture needs square images; {n_features} "
                                    "features is not a square (use mlp).")
        body = [layers.Reshape((side, side, 1)),
                layers.Conv2D(16, 3, padding="same", activation="relu"),
                layers.Conv2D(32, 3, padding="same", activation="relu"),
                layers.MaxPooling2D(2), layers.Flatten(), layers.Dense(64, activation="relu")]
    else:
        raise InvalidInputError(f"Unknown Keras architecture {architecture!r}; use one of "
                                f"{list(KerasFramework.architectures)}.")
    return keras.Sequential([keras.Input((n_features,))] + body +
                            [layers.Dense(n_classes, activation="softmax")])


def train_keras(model, X, y, *, epochs: int = 20, batch_size: int = 32, lr: float = 1e-3,
                seed: int = 42, X_val=None, y_val=None,
                on_epoch: Callable[[dict], None] | None = None) -> list[dict]:
    import numpy as np

    keras = keras_backend(os.environ.get("KERAS_BACKEND", "torch"))
    keras.utils.set_random_seed(seed)
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    history: list[dict] = []

    class Log(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            row = {"epoch": epoch + 1, "loss": float(logs["loss"]),
                   "accuracy": float(logs["accuracy"])}
            if "val_accuracy" in (logs or {}):
                row["val_accuracy"] = float(logs["val_accuracy"])
            history.append(row)
            if on_epoch:
                on_epoch(row)

    val = (np.asarray(X_val, np.float32), np.asarray(y_val)) if X_val is not None else None
    model.fit(np.asarray(X, np.float32), np.asarray(y), epochs=epochs, batch_size=batch_size,
              shuffle=True, verbose=0, validation_data=val, callbacks=[Log()])
    return history


def keras_output_kind(model) -> str:
    """What a Keras model's one output holds (:data:`~kfp_interop.frameworks.base.
    OUTPUT_KINDS`), from the activation of the layer that computes it: ``softmax`` over
    several columns means probabilities, ``sigmoid`` on one column P(class 1); other
    activations mean logits (several columns) or values (one)."""
    output = model.outputs[0]
    width = output.shape[-1] if len(output.shape) > 1 else 1
    history = getattr(output, "_keras_history", None)
    layer = getattr(history, "operation", None) or model.layers[-1]
    if type(layer).__name__ == "Softmax":
        activation = "softmax"
    else:
        activation = getattr(getattr(layer, "activation", None), "__name__", "linear")
    if activation == "softmax" and width > 1:
        return "probabilities"
    if activation == "sigmoid" and width == 1:
        return "sigmoid"
    return "logits" if width > 1 else "values"


def keras_probabilities(model, X):
    """Class probabilities of a Keras classifier, whatever its output holds."""
    import numpy as np

    return probabilities_from(model.predict(np.asarray(X, np.float32), verbose=0),
                              keras_output_kind(model))


def read_keras_file(path: str, *, backend: str, task: str = "") -> ForeignModel:
    """A ``.keras`` file loaded with ``safe_mode=True`` on ``backend``: one input of
    ``n_features`` numbers; one output, class probabilities (a softmax at the end) or
    one value (regression, an output of width 1).

    Raises:
        ModelFileError: not a ``.keras`` zip, or refused by safe mode (a Lambda layer
            would deserialise code).
        UnsupportedModelError: several inputs or outputs, or inputs that are not one row
            of numbers.
    """
    import zipfile

    if not path.endswith(".keras") or not zipfile.is_zipfile(path):
        raise ModelFileError(f"{path!r} is not a Keras 3 model file (a .keras zip): save "
                             "it with model.save('model.keras').")
    keras = keras_backend(backend)
    try:
        model = keras.saving.load_model(path, safe_mode=True)
    except Exception as e:  # noqa: BLE001 - Keras raises many types on a bad file
        first = (str(e).splitlines() or [type(e).__name__])[0][:300]
        raise ModelFileError(f"{path!r} did not load as a Keras model in safe mode: "
                             f"{first}") from e
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise UnsupportedModelError(f"{path!r} has {len(model.inputs)} inputs and "
                                    f"{len(model.outputs)} outputs; kfp-interop exports "
                                    "Keras models with one of each.")
    in_shape, out_shape = tuple(model.inputs[0].shape), tuple(model.outputs[0].shape)
    if len(out_shape) == 1:  # one value per row
        out_shape = out_shape + (1,)
    if len(in_shape) != 2 or in_shape[1] is None or len(out_shape) != 2:
        raise UnsupportedModelError(f"{path!r} maps {in_shape} to {out_shape}; kfp-interop "
                                    "exports models from rows of features (batch, "
                                    "n_features) to (batch, n_outputs).")
    kind = keras_output_kind(model)
    found = "regression" if kind == "values" else "classification"
    task = check_task(task, "regression" if task == "regression" and kind == "sigmoid"
                      else found, path)
    n_classes = 2 if kind == "sigmoid" else int(out_shape[1])
    return ForeignModel(model, task, format="keras", estimator=f"keras.{type(model).__name__}",
                        n_features=int(in_shape[1]),
                        n_classes=n_classes if task == "classification" else None)


class KerasFramework(DeepFramework):
    name = "keras"
    native_format, native_file = "keras", "model.keras"

    def build(self, architecture: str, n_features: int, n_classes: int, *,
              init_args: dict | None = None, seed: int = 42, backend: str = "torch") -> tuple:
        if init_args:
            raise InvalidInputError("init_args apply to PyTorch models; Keras architectures "
                                    "take none.")
        if ":" in architecture:
            raise InvalidInputError("A 'module:Class' architecture is a PyTorch nn.Module; "
                                    "use framework='torch'.")
        return build_keras_model(architecture, n_features, n_classes, backend=backend or "torch",
                                 seed=seed), None

    def train(self, model: Any, X, y, *, optimizer: str = "adam", **kwargs: Any) -> list[dict]:
        return train_keras(model, X, y, **kwargs)

    def estimator_name(self, model: Any, architecture: str) -> str:
        return f"keras.Sequential({architecture})"

    def estimator_of(self, model: Any) -> str:
        return f"keras.{type(model).__name__}"

    # finetune: the last layer, a Dense layer, is the head; everything before it the
    # backbone. A new head is a new Dense softmax layer on what the old one read (the
    # graph stays flat, so the ONNX export sees plain layers).
    def finetune_head(self, base: Any, n_classes: int, *, seed: int) -> Any:
        keras = keras_backend(os.environ.get("KERAS_BACKEND", "torch"))
        model = base.model
        head = model.layers[-1] if model.layers else None
        if not isinstance(head, keras.layers.Dense) or len(model.layers) < 2:
            raise InvalidInputError(
                f"The Keras base model's last layer is {type(head).__name__}: fine-tuning "
                "replaces a Dense classification head (the last layer) and freezes the "
                "layers before it; end the model in a Dense softmax layer.")
        keras.utils.set_random_seed(seed)
        out = keras.layers.Dense(n_classes, activation="softmax", name="new_head")(head.input)
        model = keras.Model(model.inputs, out, name=f"{model.name}_finetuned")
        for layer in model.layers[:-1]:
            layer.trainable = False
        return model

    def unfreeze(self, model: Any) -> None:
        for layer in model.layers:
            layer.trainable = True

    def n_inputs(self, base: Any) -> int:
        return int(base.model.inputs[0].shape[-1])

    def finetuned(self, base: Any, model: Any, n_classes: int) -> Any:
        from kfp_interop.frameworks.native import NativeModel

        return NativeModel(model, self.name, "classification", None)

    def finetune_settings(self, base: Any, base_estimator: str | None) -> dict[str, Any]:
        return {"architecture": base_estimator}

    def read_foreign(self, path: str, *, task: str = "", n_features: int | None = None,
                     trusted_types: Any = None, architecture: str = "",
                     init_args: dict | None = None) -> ForeignModel:
        """A ``.keras`` file on this process's Keras backend (``$KERAS_BACKEND``, default
        torch; Keras 3 files do not depend on the backend that saved them)."""
        return read_keras_file(path, backend=os.environ.get("KERAS_BACKEND", "torch"),
                               task=task)

    def backbone_file(self, path: str) -> bool:
        """A Keras 3 ``.keras`` archive (a zip with ``config.json`` and
        ``metadata.json``), whatever the file is called."""
        import zipfile

        if not zipfile.is_zipfile(path):
            return False
        with zipfile.ZipFile(path) as z:
            names = set(z.namelist())
        return {"config.json", "metadata.json"} <= names

    def import_backbone(self, path: str, *, n_features: int, architecture: str,
                        init_args: dict) -> ForeignModel:
        import shutil
        import tempfile

        if architecture:
            raise InvalidInputError(f"A Keras file carries its own architecture: drop "
                                    f"architecture={architecture!r}.")
        with tempfile.TemporaryDirectory() as tmp:  # Keras reads .keras by name only
            named = os.path.join(tmp, "model.keras")
            shutil.copyfile(path, named)
            foreign = self.read_foreign(named, task="classification")
        if foreign.n_features != n_features:
            raise InvalidInputError(f"{os.path.basename(path)!r} takes {foreign.n_features} "
                                    f"features; the target data has {n_features}.")
        return foreign

    def predict_proba(self, model: Any, X) -> Any:
        return keras_probabilities(model, X)

    def predict(self, model: Any, X) -> Any:
        import numpy as np

        return model.predict(np.asarray(X, np.float32), verbose=0)

    def save(self, model: Any, path: str, *, spec: Any = None) -> None:
        from kfp_interop.frameworks.canonical import canonical_zip

        with atomic_path(path, suffix=".keras") as tmp:  # Keras wants the extension
            model.save(tmp)
            with open(tmp, "rb") as f:
                data = canonical_zip(f.read())  # the same model, the same bytes
            with open(tmp, "wb") as f:
                f.write(data)

    def load(self, path: str, *, task: str, trusted_types: Any = None) -> tuple[Any, Any]:
        keras = keras_backend(os.environ.get("KERAS_BACKEND", "torch"))
        return keras.saving.load_model(path, safe_mode=True), None


register_framework(KerasFramework())
