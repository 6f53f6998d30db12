"""``--param KEY=VALUE`` pairs typed by a pipeline's signature."""

from __future__ import annotations

from typing import Any

from kfp_interop.errors import InvalidInputError

__all__ = ["parse_params"]


def parse_params(func, pairs: list[str], *, require_all: bool = True) -> dict[str, Any]:
    """``KEY=VALUE`` strings -> typed pipeline arguments (by the pipeline's signature);
    with ``require_all``, parameters without a default must be given."""
    import inspect

    sig = inspect.signature(getattr(func, "pipeline_func", func))
    params: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep:
            raise InvalidInputError(f"--param {pair!r} must look like KEY=VALUE.")
        if key not in sig.parameters:
            raise InvalidInputError(f"Unknown pipeline parameter {key!r}; parameters: "
                                    f"{', '.join(sig.parameters)}.")
        kind = sig.parameters[key].annotation
        try:
            if kind is bool or kind == "bool":
                if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError(value)
                params[key] = value.lower() in ("true", "1", "yes")
            elif kind is int or kind == "int":
                params[key] = int(value)
            elif kind is float or kind == "float":
                params[key] = float(value)
            else:
                params[key] = value
        except ValueError:
            raise InvalidInputError(f"--param {key}={value!r} is not a valid "
                                    f"{getattr(kind, '__name__', kind)}.") from None
    missing = [n for n, p in sig.parameters.items()
               if p.default is inspect.Parameter.empty and n not in params]
    if missing and require_all:
        raise InvalidInputError(f"Pipeline parameter(s) {missing} have no default: give them "
                                "with --param " + " ".join(f"{n}=..." for n in missing) + ".")
    return params
