"""PyTorch: built-in architectures ``mlp`` and ``cnn`` (for 8x8 images given as 64
features) or the user's ``nn.Module`` as ``module:Class`` with constructor arguments
(it receives ``n_features`` and ``n_classes`` too, when its signature takes them).

Every model takes FP32 ``[-1, n_features]`` and returns logits over ``n_classes``.
Training is seeded and deterministic (``torch.manual_seed``,
``torch.use_deterministic_algorithms(True)``, a seeded shuffling generator). Checkpoints
are state dicts (loaded with ``weights_only=True``) plus the architecture spec as JSON,
never pickled modules. Both built-in networks are a ``backbone`` then a ``head``, which
transfer learning freezes and replaces.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import os
from typing import Any, Callable

from kfp_interop.errors import InvalidInputError, ModelFileError
from kfp_interop.files import atomic_write_json, atomic_writer
from kfp_interop.frameworks.base import DeepFramework
from kfp_interop.frameworks.registry import register_framework
from kfp_interop.trust import import_class

__all__ = ["TorchFramework", "TorchSpec", "build_torch_model", "train_torch",
           "torch_predict_proba", "freeze_prefixes", "replace_head", "SPEC_FILE"]

SPEC_FILE = "architecture.json"


@dataclasses.dataclass(frozen=True)
class TorchSpec:
    """What rebuilds a PyTorch model: architecture (or ``module:Class``), sizes, kwargs."""

    architecture: str
    n_features: int
    n_classes: int
    init_args: dict = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _builtin_modules():
    import torch
    from torch import nn

    class MLP(nn.Module):
        """Two hidden layers; ``backbone`` then ``head``."""

        def __init__(self, n_features: int, n_classes: int, hidden: int = 64,
                     dropout: float = 0.0):
            super().__init__()
            self.backbone = nn.Sequential(nn.Linear(n_features, hidden), nn.ReLU(),
                                          nn.Dropout(dropout), nn.Linear(hidden, hidden),
                                          nn.ReLU())
            self.head = nn.Linear(hidden, n_classes)

        def forward(self, x):
            return self.head(self.backbone(x))

    class CNN(nn.Module):
        """A small CNN for 8x8 single-channel images given as 64 features."""

        def __init__(self, n_features: int, n_classes: int, channels: int = 16):
            super().__init__()
            side = int(round(n_features ** 0.5))
            if side * side != n_features:
                raise InvalidInputError(f"The cnn architecture needs square images; "
                                        f"{n_features} features is not a square (use mlp).")
            self.side = side
            self.backbone = nn.Sequential(
                nn.Conv2d(1, channels, 3, padding=1), nn.ReLU(),
                nn.Conv2d(channels, channels * 2, 3, padding=1), nn.ReLU(),
                nn.MaxPool2d(2), nn.Flatten(),
                nn.Linear(channels * 2 * (side // 2) ** 2, 64), nn.ReLU())
            self.head = nn.Linear(64, n_classes)

        def forward(self, x):
            return self.head(self.backbone(x.reshape(-1, 1, self.side, self.side)))

    return torch, {"mlp": MLP, "cnn": CNN}


def build_torch_model(spec: TorchSpec):
    """Build the module a spec describes.

    Raises:
        InvalidInputError: unknown architecture, a ``module:Class`` that does not import
            or is not an ``nn.Module``, constructor arguments that do not fit.
    """
    torch, builtin = _builtin_modules()
    if spec.architecture in builtin:
        cls = builtin[spec.architecture]
    elif ":" in spec.architecture:  # from a parameter or a checkpoint's spec: checked
        cls = import_class(spec.architecture, base=torch.nn.Module, what="model class",
                           base_name="torch.nn.Module")
    else:
        raise InvalidInputError(f"Unknown architecture {spec.architecture!r}; use one of "
                                f"{sorted(builtin)} or an importable 'module:Class'.")
    kwargs = dict(spec.init_args)
    params = inspect.signature(cls.__init__).parameters
    for key, value in (("n_features", spec.n_features), ("n_classes", spec.n_classes)):
        if key in params:
            kwargs.setdefault(key, value)
    try:
        inspect.signature(cls.__init__).bind(None, **kwargs)
        return cls(**kwargs)
    except TypeError as e:
        raise InvalidInputError(
            f"Constructor arguments {kwargs} do not fit {cls.__name__}"
            f"{inspect.signature(cls.__init__)}: {e}.") from e


def freeze_prefixes(model, prefixes: list[str], *, frozen: bool = True) -> int:
    """(Un)freeze parameters whose names start with a prefix; returns how many."""
    n = 0
    for name, param in model.named_parameters():
        if any(name.startswith(p) for p in prefixes):
            param.requires_grad = not frozen
            n += 1
    return n


def replace_head(model, n_classes: int, *, seed: int) -> None:
    """A new, seeded ``head`` for ``n_classes`` (the backbone is kept), in place.

    Raises:
        InvalidInputError: the model has no ``backbone`` and ``head`` submodules.
    """
    import torch

    if not hasattr(model, "backbone") or not hasattr(model, "head"):
        raise InvalidInputError(f"{type(model).__name__} has no 'backbone' and 'head' "
                                "submodules to freeze and replace.")
    torch.manual_seed(seed)
    model.head = torch.nn.Linear(model.head.in_features, n_classes)


def train_torch(model, X, y, *, epochs: int = 20, batch_size: int = 32, lr: float = 1e-3,
                optimizer: str = "adam", seed: int = 42, X_val=None, y_val=None,
                on_epoch: Callable[[dict], None] | None = None) -> list[dict]:
    """Seeded, deterministic mini-batch training with cross-entropy.

    Returns:
        Per-epoch ``{"epoch", "loss", "accuracy"[, "val_accuracy"]}``.
    """
    import numpy as np
    import torch

    if epochs < 1 or batch_size < 1 or not lr > 0:
        raise InvalidInputError(f"epochs={epochs}, batch_size={batch_size} and lr={lr} must "
                                "all be positive.")
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise InvalidInputError("Every parameter is frozen: nothing to train.")
    opts = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD, "adamw": torch.optim.AdamW}
    if optimizer not in opts:
        raise InvalidInputError(f"Unknown optimizer {optimizer!r}; use one of {sorted(opts)}.")
    opt = opts[optimizer](params, lr=lr)
    Xt = torch.as_tensor(np.asarray(X, dtype=np.float32))
    yt = torch.as_tensor(np.asarray(y, dtype=np.int64))
    gen = torch.Generator().manual_seed(seed)
    loss_fn = torch.nn.CrossEntropyLoss()
    history = []
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(len(Xt), generator=gen)
        total, correct, seen = 0.0, 0, 0
        for start in range(0, len(Xt), batch_size):
            idx = order[start:start + batch_size]
            opt.zero_grad()
            logits = model(Xt[idx])
            loss = loss_fn(logits, yt[idx])
            loss.backward()
            opt.step()
            total += float(loss) * len(idx)
            correct += int((logits.argmax(1) == yt[idx]).sum())
            seen += len(idx)
        row = {"epoch": epoch, "loss": total / seen, "accuracy": correct / seen}
        if X_val is not None:
            row["val_accuracy"] = float(np.mean(
                torch_predict_proba(model, X_val).argmax(1) == np.asarray(y_val)))
        history.append(row)
        if on_epoch:
            on_epoch(row)
    model.eval()
    return history


def torch_predict_proba(model, X):
    import numpy as np
    import torch

    model.eval()
    with torch.no_grad():
        logits = model(torch.as_tensor(np.asarray(X, dtype=np.float32)))
        return torch.softmax(logits, dim=1).numpy().astype(np.float64)


class TorchFramework(DeepFramework):
    name = "torch"
    native_format, native_file = "torch-state-dict", "model.pt"

    def build(self, architecture: str, n_features: int, n_classes: int, *,
              init_args: dict | None = None, seed: int = 42, backend: str = "") -> tuple:
        spec = TorchSpec(architecture, n_features, n_classes, dict(init_args or {}))
        return build_torch_model(spec), spec

    def train(self, model: Any, X, y, **kwargs: Any) -> list[dict]:
        return train_torch(model, X, y, **kwargs)

    def predict_proba(self, model: Any, X) -> Any:
        return torch_predict_proba(model, X)

    def save(self, model: Any, path: str, *, spec: Any = None) -> None:
        import torch

        if spec is None:
            raise InvalidInputError("A PyTorch model is saved with the TorchSpec that "
                                    "rebuilds it; none was given.")
        with atomic_writer(path) as f:
            torch.save(model.state_dict(), f)
        atomic_write_json(os.path.join(os.path.dirname(path), SPEC_FILE), spec.to_dict(),
                          sort_keys=False)

    def load(self, path: str, *, task: str, trusted_types: Any = None,
             spec: TorchSpec | None = None) -> tuple[Any, Any]:
        """Rebuild the module from its spec and load its weights (``weights_only=True``).

        Raises:
            ModelFileError: no checkpoint, or its tensors do not fit the architecture.
        """
        import torch

        if spec is None:
            with open(os.path.join(os.path.dirname(path), SPEC_FILE)) as f:
                spec = TorchSpec(**json.load(f))
        if not os.path.isfile(path):
            raise ModelFileError(f"No PyTorch checkpoint at {path!r}.")
        model = build_torch_model(spec)
        state = torch.load(path, weights_only=True)
        try:
            model.load_state_dict(state)
        except RuntimeError as e:
            first = str(e).splitlines()[0] if str(e) else ""
            raise ModelFileError(
                f"Checkpoint {path!r} does not match architecture {spec.architecture!r} "
                f"(n_features={spec.n_features}, n_classes={spec.n_classes}): {first} "
                "Load it with the architecture it was trained with.") from e
        model.eval()
        return model, spec


register_framework(TorchFramework())
