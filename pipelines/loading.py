"""Finding a pipeline by what a user names: a registered reference pipeline, or their
own ``path/to/file.py:function``."""

from __future__ import annotations

import os

from kfp_interop.pipelines.registry import PIPELINES

__all__ = ["load"]


def load(name: str, graph: dict | None = None):
    """The pipeline registered as ``name``, or your own as ``path/to/file.py:function``
    (a ``@dsl.pipeline`` function in a file: what ``kfp-interop run`` and ``compile``
    take besides the reference pipelines). ``graph`` sets the parameters that shape a
    pipeline's graph, which are fixed when it is compiled.

    Raises:
        UnknownNameError: neither a registered pipeline nor a file:function.
        InvalidInputError: graph parameters the pipeline does not have; a file that does
            not exist or holds no such ``@dsl.pipeline`` function.
    """
    from kfp_interop.errors import InvalidInputError

    if name not in PIPELINES and ":" in name and name.split(":", 1)[0].endswith(".py"):
        if graph:
            raise InvalidInputError(f"{name} has no graph parameters ({sorted(graph)}).")
        return _load_file(*name.split(":", 1))
    return PIPELINES.get(name).load(graph)


def _load_file(path: str, attr: str):
    import importlib.util

    from kfp_interop.errors import InvalidInputError

    if not os.path.isfile(path):
        raise InvalidInputError(f"No pipeline file {path!r}.")
    spec = importlib.util.spec_from_file_location(
        "kfp_interop_user_pipeline_" + os.path.splitext(os.path.basename(path))[0], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # the user's own code, named by the user on the CLI
    func = getattr(module, attr, None)
    if not hasattr(func, "pipeline_func"):
        raise InvalidInputError(f"{path}:{attr} is not a @dsl.pipeline function.")
    return func
