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

import contextlib
import dataclasses
import inspect
import json
import os
from typing import Any, Callable

from kfp_interop.errors import (InvalidInputError, ModelFileError, UnsupportedModelError,
                                UntrustedModelError)
from kfp_interop.files import atomic_write_json, atomic_writer
from kfp_interop.frameworks.base import DeepFramework, ForeignModel
from kfp_interop.frameworks.registry import register_framework
from kfp_interop.trust import import_class

__all__ = ["TorchFramework", "TorchSpec", "build_torch_model", "train_torch", "one_thread",
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


@contextlib.contextmanager
def one_thread():
    """Run PyTorch on one intra-op thread: with several, its CPU kernels split sums in
    an order that varies from run to run, so two trainings from the same seed end with
    weights that differ in the 7th digit (and files that differ)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def train_torch(model, X, y, *, epochs: int = 20, batch_size: int = 32, lr: float = 1e-3,
                optimizer: str = "adam", seed: int = 42, X_val=None, y_val=None,
                on_epoch: Callable[[dict], None] | None = None,
                proximal_mu: float = 0.0) -> list[dict]:
    """Seeded, deterministic mini-batch training with cross-entropy.

    ``proximal_mu`` > 0 adds FedProx's proximal term, ``mu / 2 * ||w - w_start||^2`` over
    the trainable weights, which keeps a federated client near the global model it
    started from.

    Returns:
        Per-epoch ``{"epoch", "loss", "accuracy"[, "val_accuracy"]}``.
    """
    if epochs < 1 or batch_size < 1 or not lr > 0:
        raise InvalidInputError(f"epochs={epochs}, batch_size={batch_size} and lr={lr} must "
                                "all be positive.")
    if not proximal_mu >= 0:
        raise InvalidInputError(f"proximal_mu={proximal_mu!r} must be 0 or more.")
    with one_thread():
        return _train_torch(model, X, y, epochs=epochs, batch_size=batch_size, lr=lr,
                            optimizer=optimizer, seed=seed, X_val=X_val, y_val=y_val,
                            on_epoch=on_epoch, proximal_mu=proximal_mu)


def _train_torch(model, X, y, *, epochs, batch_size, lr, optimizer, seed, X_val, y_val,
                 on_epoch, proximal_mu=0.0) -> list[dict]:
    import numpy as np
    import torch

    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise InvalidInputError("Every parameter is frozen: nothing to train.")
    opts = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD, "adamw": torch.optim.AdamW}
    if optimizer not in opts:
        raise InvalidInputError(f"Unknown optimizer {optimizer!r}; use one of {sorted(opts)}.")
    opt = opts[optimizer](params, lr=lr)
    anchor = [p.detach().clone() for p in params] if proximal_mu else None
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
            if anchor is not None:
                loss = loss + proximal_mu / 2 * sum(((p - a) ** 2).sum()
                                                    for p, a in zip(params, anchor))
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
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

    if not isinstance(model, torch.fx.GraphModule):  # a torch.export program has no modes
        model.eval()
    with torch.no_grad(), one_thread():
        logits = model(torch.as_tensor(np.asarray(X, dtype=np.float32)))
        return torch.softmax(logits, dim=1).numpy().astype(np.float64)


def _probe_output(model, n_features: int | None, path: str) -> int | None:
    """The width of what a module made elsewhere returns for two rows of zeros (its
    logits); ``None`` when the sample's width is unknown.

    Raises:
        InvalidInputError: the module does not take rows of ``n_features`` numbers.
        UnsupportedModelError: it returns a tuple, list or dict, or not ``(batch, k)``.
    """
    import torch

    if n_features is None:
        return None
    try:
        with torch.no_grad(), one_thread():
            out = model(torch.zeros(2, n_features))
    except Exception as e:  # noqa: BLE001 - a module raises whatever its code raises
        if "Guard failed" in str(e):  # a program of a fixed batch size: the export says so
            return None
        raise InvalidInputError(f"The model {path!r} does not take rows of {n_features} "
                                f"numbers (the sample's width): {_first(e)}") from e
    if isinstance(out, (tuple, list, dict)):
        parts = list(out.values()) if isinstance(out, dict) else list(out)
        shapes = [list(p.shape) if isinstance(p, torch.Tensor) else type(p).__name__
                  for p in parts]
        raise UnsupportedModelError(
            f"The model {path!r} returns a {type(out).__name__} of {len(parts)} "
            f"({shapes}); kfp-interop exports a module that returns one tensor of logits "
            "(batch, n_classes). Wrap it in a module whose forward returns the logits "
            "only (e.g. `return self.net(x)[0]`) and save that one.")
    if not isinstance(out, torch.Tensor) or out.dim() != 2:
        raise UnsupportedModelError(
            f"The model {path!r} returns {getattr(out, 'shape', type(out).__name__)} for 2 "
            "rows; kfp-interop exports classifiers returning logits of shape (batch, "
            "n_classes).")
    return int(out.shape[1])


def _last_linear_rows(state: dict) -> int | None:
    """The output size of the last 2-D weight in a state dict (a classifier's head)."""
    rows = [t.shape[0] for k, t in state.items() if k.endswith("weight") and t.dim() == 2]
    return int(rows[-1]) if rows else None


def _check_program_archive(path: str) -> None:
    """Refuse a ``torch.export`` archive whose loading would unpickle more than tensors.

    ``torch.export.load`` unpickles pickled weights and constants with
    ``weights_only=False`` and custom objects with ``pickle.loads``: a crafted ``.pt2``
    runs code. Its raw tensors and JSON graph are data. So every pickle the archive
    holds must load under ``torch.load(weights_only=True)`` (tensors and plain
    containers only; the same pickle then unpickles to the same objects with nothing
    run), and custom or opaque objects are refused.

    Raises:
        ModelFileError: not a ``torch.export`` archive.
        UntrustedModelError: a member that is more than tensors, named.
    """
    import io
    import zipfile

    import torch

    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise ModelFileError(f"{path!r} is not a torch.export program (.pt2 archive): {e}") from e
    with archive:
        names = archive.namelist()
        if not any(n.endswith("archive_format") for n in names):
            raise ModelFileError(f"{path!r} is not a torch.export program (.pt2 archive): no "
                                 "archive_format member. Save it with torch.export.save.")
        pickled: list[str] = []
        for name in names:
            folder, base = os.path.split(name)
            if name.endswith("_config.json") and folder.endswith(("data/weights",
                                                                   "data/constants")):
                config = json.loads(archive.read(name)).get("config", {})
                for entry in config.values():
                    member = os.path.join(folder, entry.get("path_name", ""))
                    if entry.get("path_name", "").startswith(("custom_obj", "opaque_obj")):
                        raise UntrustedModelError(
                            f"{path!r} holds a custom object {member!r}: loading it runs "
                            "code from the file. Export a program of tensors only.")
                    if entry.get("use_pickle"):
                        pickled.append(member)
            elif folder.endswith(("data/sample_inputs",)) or (
                    base.endswith(".pt") and folder.endswith(("data/weights",
                                                              "data/constants"))):
                pickled.append(name)  # sample inputs, legacy weight/constant files
        for member in pickled:
            try:
                torch.load(io.BytesIO(archive.read(member)), weights_only=True)
            except Exception as e:  # noqa: BLE001 - the unpickler raises many types
                raise UntrustedModelError(
                    f"{path!r}: member {member!r} is more than tensors ({_first(e)}); "
                    "loading it would run code from the file. Export a program of "
                    "tensors only.") from e


def _first(e: BaseException) -> str:
    return (str(e).splitlines() or [type(e).__name__])[0][:200]


def _spec_of(spec: Any) -> TorchSpec:
    """The TorchSpec of a federated spec (architecture, sizes, init_args)."""
    return TorchSpec(spec.architecture, spec.n_features, spec.n_classes,
                     dict(spec.init_args))


def _arrays(model) -> list[Any]:
    """A module's state as NumPy arrays, in its state dict's order."""
    return [t.detach().cpu().numpy().copy() for t in model.state_dict().values()]


def _holding(spec: Any, weights: list[Any]):
    """The network of a federated spec holding ``weights`` (eval mode)."""
    import torch

    model = build_torch_model(_spec_of(spec))
    model.load_state_dict({n: torch.as_tensor(w) for n, w in zip(spec.names, weights)})
    model.eval()
    return model


class TorchFramework(DeepFramework):
    name = "torch"
    native_format, native_file = "torch-state-dict", "model.pt"

    def build(self, architecture: str, n_features: int, n_classes: int, *,
              init_args: dict | None = None, seed: int = 42, backend: str = "") -> tuple:
        import torch

        spec = TorchSpec(architecture, n_features, n_classes, dict(init_args or {}))
        torch.manual_seed(seed)  # the initial weights: the same seed, the same network
        return build_torch_model(spec), spec

    def train(self, model: Any, X, y, **kwargs: Any) -> list[dict]:
        return train_torch(model, X, y, **kwargs)

    # federated: the network's state dict, in its order, as NumPy arrays
    def federates(self, architecture: str) -> bool:
        return architecture in self.architectures or ":" in architecture

    def federated_arrays(self, architecture, n_features, n_classes, init_args):
        state = build_torch_model(TorchSpec(architecture, n_features, n_classes,
                                            dict(init_args or {}))).state_dict()
        return tuple(state), tuple(tuple(t.shape) for t in state.values())

    def federated_initial(self, spec, *, seed):
        import torch

        torch.manual_seed(seed)
        return _arrays(build_torch_model(_spec_of(spec)))

    def federated_train(self, spec, weights, X, y, *, epochs, lr, batch_size, optimizer,
                        seed, proximal_mu):
        model = _holding(spec, weights)
        history = train_torch(model, X, y, epochs=epochs, batch_size=batch_size, lr=lr,
                              optimizer=optimizer, seed=seed, proximal_mu=proximal_mu)
        return _arrays(model), {"loss": history[-1]["loss"],
                                "accuracy": history[-1]["accuracy"]}

    def federated_model(self, spec, weights):
        from kfp_interop.frameworks.native import NativeModel

        return NativeModel(_holding(spec, weights), self.name, "classification",
                           _spec_of(spec))

    # finetune: the module's ``backbone`` is the backbone, its last Linear the head
    def finetune_head(self, base: Any, n_classes: int, *, seed: int) -> Any:
        replace_head(base.model, n_classes, seed=seed)
        freeze_prefixes(base.model, ["backbone."], frozen=True)
        return base.model

    def unfreeze(self, model: Any) -> None:
        freeze_prefixes(model, ["backbone."], frozen=False)

    def n_inputs(self, base: Any) -> int:
        return base.spec.n_features

    def finetuned(self, base: Any, model: Any, n_classes: int) -> Any:
        from kfp_interop.frameworks.native import NativeModel

        spec = base.spec
        return NativeModel(model, self.name, "classification",
                           TorchSpec(spec.architecture, spec.n_features, n_classes,
                                     spec.init_args))

    def backbone_file(self, path: str) -> bool:
        """A ``torch.save`` archive (a zip holding ``data.pkl``), or a file named like a
        PyTorch one (``.pt``, ``.pth``; ``.pt2`` too, to be refused by name)."""
        import zipfile

        if path.endswith((".pt", ".pth", ".pt2")):
            return True
        if not zipfile.is_zipfile(path):
            return False
        with zipfile.ZipFile(path) as z:
            return any(n.endswith("/data.pkl") for n in z.namelist())

    def import_backbone(self, path: str, *, n_features: int, architecture: str,
                        init_args: dict) -> ForeignModel:
        """A state dict with the ``module:Class`` it belongs to, whose module has
        ``backbone`` and ``head`` submodules.

        Raises:
            UnsupportedModelError: a ``torch.export`` program (its graph is fixed: there
                is no backbone or head to address by name).
        """
        if path.endswith(".pt2"):
            raise UnsupportedModelError(
                f"{os.path.basename(path)!r}: fine-tuning replaces the head and freezes the "
                "backbone by name, which a torch.export program's fixed graph does not "
                "expose; give the state dict with its module:Class (base_architecture), or "
                "a Keras file.")
        foreign = self.read_foreign(path, n_features=n_features, architecture=architecture,
                                    init_args=init_args)
        if not hasattr(foreign.model, "backbone") or not hasattr(foreign.model, "head"):
            raise InvalidInputError(f"{architecture} has no 'backbone' and 'head' submodules: "
                                    "fine-tuning freezes the first and replaces the second.")
        return foreign

    def keep_backbone(self, path: str, foreign: ForeignModel, model_dir: str) -> None:
        atomic_write_json(os.path.join(model_dir, SPEC_FILE), foreign.spec.to_dict(),
                          sort_keys=False)
        super().keep_backbone(path, foreign, model_dir)

    def finetune_settings(self, base: Any, base_estimator: str | None) -> dict[str, Any]:
        return {"architecture": base.spec.architecture, "init_args": base.spec.init_args}

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


    def read_foreign(self, path: str, *, task: str = "", n_features: int | None = None,
                     trusted_types: Any = None, architecture: str = "",
                     init_args: dict | None = None) -> ForeignModel:
        """A ``torch.export`` program (``.pt2``, checked first: see
        :func:`_check_program_archive`), or a state dict (``weights_only=True``) with
        the ``module:Class`` (or built-in architecture) and constructor arguments that
        rebuild it. The module returns logits; the export adds softmax and argmax.

        Raises:
            UnsupportedModelError: ``task`` regression (the exporter does classifiers).
            InvalidInputError: a state dict without an architecture.
            ModelFileError: not a checkpoint or program; weights that do not load into
                the class (its first mismatch named).
        """
        import torch

        if task == "regression":
            raise UnsupportedModelError("PyTorch models enter as classifiers (logits out); "
                                        "regression networks are not exported yet.")
        if path.endswith(".pt2"):
            if architecture or init_args:
                raise InvalidInputError("A torch.export program (.pt2) carries its own graph: "
                                        "drop --architecture and --init-args.")
            _check_program_archive(path)
            try:
                program = torch.export.load(path)
            except Exception as e:  # noqa: BLE001
                raise ModelFileError(f"{path!r} did not load as a torch.export program: "
                                     f"{_first(e)}") from e
            module = program.module()
            return ForeignModel(module, "classification", format="torch-export",
                                estimator="torch.export program",
                                n_classes=_probe_output(module, n_features, path))
        if not architecture:
            raise InvalidInputError(
                f"{path!r} is a state dict (weights only): pass --architecture module:Class "
                "(and --init-args JSON) for the nn.Module it belongs to, or save a "
                "torch.export program (.pt2).")
        try:
            state = torch.load(path, weights_only=True, map_location="cpu")
        except Exception as e:  # noqa: BLE001 - a refused pickle raises UnpicklingError
            raise ModelFileError(
                f"{path!r} is not a state dict of tensors ({_first(e)}). Save "
                "model.state_dict() with torch.save; whole pickled modules are refused "
                "(loading them runs code).") from e
        if not isinstance(state, dict) or not all(isinstance(t, torch.Tensor)
                                                  for t in state.values()):
            raise ModelFileError(f"{path!r} holds a {type(state).__name__}, not a state dict "
                                 "of tensors: save model.state_dict().")
        args = dict(init_args or {})
        n_classes = args.pop("n_classes", None) or _last_linear_rows(state)
        if n_features is None or n_classes is None:
            raise InvalidInputError(f"Cannot tell the input and output sizes of {path!r}: "
                                    "give n_features and n_classes in --init-args.")
        args.pop("n_features", None)
        spec = TorchSpec(architecture, int(n_features), int(n_classes), args)
        model = build_torch_model(spec)
        try:
            model.load_state_dict(state)
        except RuntimeError as e:
            raise ModelFileError(f"The state dict {path!r} does not load into "
                                 f"{architecture} ({spec.to_dict()}): {_first(e)} Pass the "
                                 "class and --init-args it was trained with.") from e
        model.eval()
        _probe_output(model, n_features, path)
        return ForeignModel(model, "classification", format="torch-state-dict",
                            estimator=type(model).__name__, spec=spec,
                            n_features=int(n_features), n_classes=int(n_classes))


register_framework(TorchFramework())
