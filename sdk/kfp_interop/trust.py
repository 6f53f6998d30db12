"""What kfp-interop trusts, stated in one place (``docs/security.md`` explains the model).

* **Code comes from code.** A ``module:Class`` in a parameter or in a checkpoint's spec
  (an estimator, a network) is imported only from an allowed module: scikit-learn,
  XGBoost, LightGBM and PyTorch, plus the modules the operator lists in
  ``$KFP_INTEROP_ALLOWED_MODULES`` (comma-separated; set it on the component image or the
  server's environment, not in a pipeline parameter). The class is checked to be a class
  and a subclass of the expected base before anything is called.
* **Model files are data.** A scikit-learn model file is loaded by skops with an exact
  list of trusted type names (what kfp-interop's trainers produce, see
  ``frameworks/sklearn.py``), plus the exact names the operator lists in
  ``$KFP_INTEROP_TRUSTED_TYPES`` or a step's ``trusted_types`` argument; never a prefix.
"""

from __future__ import annotations

import importlib
import os
from typing import Iterable

from kfp_interop.errors import InvalidInputError, UntrustedCodeError

__all__ = ["DEFAULT_ALLOWED_MODULES", "ALLOWED_MODULES_ENV", "TRUSTED_TYPES_ENV",
           "allowed_modules", "module_allowed", "import_class", "trusted_types"]

DEFAULT_ALLOWED_MODULES = ("sklearn", "xgboost", "lightgbm", "torch")
ALLOWED_MODULES_ENV = "KFP_INTEROP_ALLOWED_MODULES"
TRUSTED_TYPES_ENV = "KFP_INTEROP_TRUSTED_TYPES"


def _names(text: str | Iterable[str] | None) -> list[str]:
    items = text.split(",") if isinstance(text, str) else list(text or [])
    return [n.strip() for n in items if n and n.strip()]


def allowed_modules() -> tuple[str, ...]:
    """The default modules plus those in ``$KFP_INTEROP_ALLOWED_MODULES``."""
    return DEFAULT_ALLOWED_MODULES + tuple(_names(os.environ.get(ALLOWED_MODULES_ENV)))


def module_allowed(module: str) -> bool:
    """``module`` is an allowed module or inside one (``sklearn.svm`` is in ``sklearn``)."""
    return any(module == p or module.startswith(p + ".") for p in allowed_modules())


def import_class(path: str, *, base: type | tuple[type, ...], what: str = "class",
                 base_name: str = "") -> type:
    """``"module:Class"`` -> the class, only from an allowed module, only a subclass of
    ``base``; nothing of it is called here.

    Raises:
        UntrustedCodeError: the module is not allowed (nothing was imported).
        InvalidInputError: malformed path, a module or name that does not exist, not a
            class, or not a subclass of ``base``.
    """
    module, _, name = str(path).partition(":")
    if not module or not name or not all(p.isidentifier() for p in module.split(".")) \
            or not name.isidentifier():
        raise InvalidInputError(f"{what} {path!r} must look like 'module:Class'.")
    if not module_allowed(module):
        raise UntrustedCodeError(
            f"{what} {path!r}: module {module!r} is not allowed. kfp-interop imports "
            f"classes only from {', '.join(allowed_modules())}; to allow your own, list "
            f"the module in ${ALLOWED_MODULES_ENV} (comma-separated) where the step runs "
            "(the component image or its environment; see docs/security.md).")
    try:
        obj = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as e:
        raise InvalidInputError(f"Cannot import {what} {path!r}: {e}. Check the module "
                                "and class names, and that the package is installed.") from e
    bases = base if isinstance(base, tuple) else (base,)
    if not isinstance(obj, type) or not issubclass(obj, bases):
        expected = base_name or " or ".join(f"{b.__module__}.{b.__qualname__}" for b in bases)
        raise InvalidInputError(f"{what} {path!r} is not a {expected} class.")
    return obj


def trusted_types(extra: str | Iterable[str] | None = None) -> set[str]:
    """Exact type names trusted beyond the built-in list: ``$KFP_INTEROP_TRUSTED_TYPES``
    plus ``extra``."""
    return set(_names(os.environ.get(TRUSTED_TYPES_ENV))) | set(_names(extra))


