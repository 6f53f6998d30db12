"""What every pipeline stage shares: a failed stage hands its error over in a file.

A stage decorated with :func:`stage` that raises writes ``error.json``
(:func:`kfp_interop.errors.error_record`: type, name, message) into the folder that holds
its output (a KFP task's output folder, in a pipeline run) and re-raises. ``kfp-interop
run`` reads it to name the failed task's typed error without reading the task's log.
"""

from __future__ import annotations

import functools
import os
from typing import Callable, TypeVar

from kfp_interop.errors import ERROR_FILE, error_record
from kfp_interop.files import atomic_write_json

__all__ = ["stage", "read_error"]

F = TypeVar("F", bound=Callable)


def stage(output: str) -> Callable[[F], F]:
    """Decorate a stage whose keyword argument ``output`` is an output path: on failure,
    ``<dirname(output)>/error.json`` names the error."""

    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def run(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except Exception as e:
                path = kwargs.get(output)
                if path:
                    try:
                        atomic_write_json(os.path.join(os.path.dirname(os.path.abspath(path)),
                                                       ERROR_FILE), error_record(e))
                    except OSError:  # the error itself matters more than its file
                        pass
                raise

        return run  # type: ignore[return-value]

    return wrap


def read_error(task_dir: str) -> dict | None:
    """The error record a failed stage left in ``task_dir``, if any."""
    import json

    try:
        with open(os.path.join(task_dir, ERROR_FILE)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None
