"""The Python API for running pipelines, the one the ``kfp-interop`` command is a shell
over: :func:`run` (on this machine, through kfp.local), :func:`submit` (on a Kubeflow
Pipelines cluster, through kfp.Client) and :func:`compile` (KFP IR YAML). Also reachable
as ``kfp_interop.run``, ``kfp_interop.submit`` and ``kfp_interop.compile``.

Parameters are a dict of typed values, checked against the pipeline's signature before
anything runs; graph parameters (e.g. ``rounds`` of federated-learning) go in ``graph``.

    import kfp_interop
    summary = kfp_interop.run("tabular", {"dataset": "wine"}, output_dir="out")
    kfp_interop.run("tabular", runner="docker")            # every task in the image
    kfp_interop.compile("tabular", "tabular.yaml")
    kfp_interop.submit("tabular", {"dataset": "wine"}, host="http://localhost:8080")
"""

from __future__ import annotations

import inspect
from typing import Any

__all__ = ["run", "submit", "compile", "check_params", "DEFAULT_OUTPUT_DIR"]

#: where ``run`` writes unless told
DEFAULT_OUTPUT_DIR = "kfp-interop-output"

_TYPES = {bool: "bool", int: "int", float: "float", str: "str"}


def check_params(func, params: dict[str, Any] | None, *,
                 require_all: bool = True) -> dict[str, Any]:
    """``params`` checked against the pipeline's signature: known names, values of the
    declared type (an int where a float is declared is taken), and, with
    ``require_all``, every parameter without a default given.

    Raises:
        InvalidInputError: an unknown name, a value of another type, a missing value.
    """
    from kfp_interop.errors import InvalidInputError

    sig = inspect.signature(getattr(func, "pipeline_func", func))
    out = {}
    for key, value in (params or {}).items():
        if key not in sig.parameters:
            raise InvalidInputError(f"Unknown pipeline parameter {key!r}; parameters: "
                                    f"{', '.join(sig.parameters)}.")
        kind = sig.parameters[key].annotation
        name = _TYPES.get(kind, kind if isinstance(kind, str) else "")
        ok = {"bool": isinstance(value, bool),
              "int": isinstance(value, int) and not isinstance(value, bool),
              "float": isinstance(value, (int, float)) and not isinstance(value, bool),
              "str": isinstance(value, str)}.get(name, True)
        if not ok:
            raise InvalidInputError(f"Pipeline parameter {key}={value!r} is a "
                                    f"{type(value).__name__}; the pipeline takes a {name}.")
        out[key] = float(value) if name == "float" else value
    missing = [n for n, p in sig.parameters.items()
               if p.default is inspect.Parameter.empty and n not in out]
    if missing and require_all:
        raise InvalidInputError(f"Pipeline parameter(s) {missing} have no default: give "
                                "them.")
    return out


def run(name: str, params: dict[str, Any] | None = None, *,
        output_dir: str = DEFAULT_OUTPUT_DIR, runner: str = "subprocess", image: str = "",
        profile: str = "local", graph: dict | None = None, keep_serving: bool = False,
        verbose: bool = False) -> dict[str, Any]:
    """Run a reference pipeline (or ``path/file.py:function``) on this machine through
    kfp.local and return its summary (also written to ``output_dir/summary.json``).

    ``runner``: ``subprocess`` (tasks in this environment) or ``docker`` (every task in
    its own container of ``image``, default the one the compiled YAML names). ``profile``
    ``cluster`` rehearses a run started in the Kubeflow UI (its compiled defaults).

    Raises:
        UnknownNameError: an unknown pipeline, profile or runner.
        InvalidInputError: parameters that do not fit the pipeline.
        ContainerEngineError / ContainerImageError: (docker) no engine, or an image that
            is missing or holds other code.
    """
    from kfp_interop.pipelines import load
    from kfp_interop.runs.local import run_local

    checked = check_params(load(name, graph), params)
    return run_local(name, checked, output_dir, keep_serving=keep_serving, verbose=verbose,
                     profile=profile, graph=graph, runner=runner, image=image)


def submit(name: str, params: dict[str, Any] | None = None, *, host: str,
           **options) -> dict[str, Any]:
    """Compile a reference pipeline and start a run on the Kubeflow Pipelines API at
    ``host``; see :func:`kfp_interop.runs.cluster.submit` for ``options`` (namespace,
    experiment, run_name, token_file, profile, image, compute, graph, wait, timeout).
    Returns ``{"run_id", "url", "experiment_id", "state", "tasks"}``."""
    from kfp_interop.pipelines import load
    from kfp_interop.runs.cluster import submit as _submit

    checked = check_params(load(name, options.get("graph")), params)
    return _submit(name, checked, host=host, **options)


def compile(name: str, output: str, *, profile: str = "cluster", image: str = "",
            compute=None, graph: dict | None = None,
            defaults: dict[str, Any] | None = None) -> str:  # noqa: A001 - the API's word
    """Compile a reference pipeline (or ``path/file.py:function``) to KFP IR YAML at
    ``output``, with ``defaults`` as its parameters' defaults; returns the path."""
    from kfp_interop.pipelines import compile_pipeline, load

    checked = check_params(load(name, graph), defaults, require_all=False)
    return compile_pipeline(name, output, profile=profile, image=image, compute=compute,
                            graph=graph, defaults=checked or None)
