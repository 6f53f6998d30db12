"""Moved to :mod:`kfp_interop.runs` (the Python API: ``kfp_interop.run``,
``kfp_interop.submit``, ``kfp_interop.compile``); these names stay importable from here
for code written against the earlier path."""

from kfp_interop.runs.cluster import FINAL_STATES, resolve_token, submit  # noqa: F401
from kfp_interop.runs.local import run_local  # noqa: F401

__all__ = ["run_local", "submit", "resolve_token", "FINAL_STATES"]
