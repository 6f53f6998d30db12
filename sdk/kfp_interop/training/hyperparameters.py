"""Hyperparameters and constructor arguments arrive as JSON text (pipeline parameters are
flat strings): parse them once, with a clear error."""

from __future__ import annotations

import json
from typing import Any

from kfp_interop.errors import InvalidInputError

__all__ = ["parse_hyperparameters"]


def parse_hyperparameters(value: str | dict | None, *, what: str = "hyperparameters"
                          ) -> dict[str, Any]:
    """Accept a JSON object (string) or dict; refuse anything else with a clear error."""
    if value is None or value == "":
        return {}
    if isinstance(value, dict):
        return dict(value)
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as e:
        raise InvalidInputError(
            f"{what} {value!r} is not valid JSON ({e.msg}); give a JSON object "
            'such as \'{"n_estimators": 50}\'.') from e
    if not isinstance(parsed, dict):
        raise InvalidInputError(
            f"{what} {value!r} must be a JSON object, not {type(parsed).__name__}.")
    return parsed
