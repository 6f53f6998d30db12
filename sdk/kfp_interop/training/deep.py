"""Training networks (PyTorch, Keras) on tabular or small-image data, whatever the deep
framework: it builds and trains through the framework registry."""

from __future__ import annotations

from typing import Callable

from kfp_interop.constants import DEFAULT_SEED
from kfp_interop.data import TabularData
from kfp_interop.frameworks import DeepFramework, NativeModel, get_framework

__all__ = ["fit_network"]


def fit_network(framework: str, architecture: str, train: TabularData, test: TabularData, *,
                init_args: dict | None = None, epochs: int, batch_size: int, lr: float,
                optimizer: str = "adam", seed: int = DEFAULT_SEED, backend: str = "",
                on_epoch: Callable[[dict], None] | None = None
                ) -> tuple[NativeModel, list[dict], str]:
    """Build and train a classifier; returns ``(native model, history, estimator name)``.

    Raises:
        UnknownNameError / InvalidInputError: unknown or non-deep framework, unknown
            architecture, bad constructor arguments or training settings.
    """
    fw: DeepFramework = get_framework(framework, "deep")
    n_features, n_classes = train.X.shape[1], len(train.class_labels)
    model, spec = fw.build(architecture, n_features, n_classes, init_args=init_args,
                           seed=seed, backend=backend)
    history = fw.train(model, train.X, train.y, epochs=epochs, batch_size=batch_size, lr=lr,
                       optimizer=optimizer, seed=seed, X_val=test.X, y_val=test.y,
                       on_epoch=on_epoch)
    return (NativeModel(model, framework, "classification", spec), history,
            fw.estimator_name(model, architecture))


