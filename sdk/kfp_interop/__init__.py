"""kfp-interop: move ML models between frameworks and serving platforms on Kubeflow.

The library is plain Python: it never imports ``kfp`` (one local-run module aside), and
heavy dependencies (onnxruntime, torch, mlflow, ...) are imported inside the functions
that use them, so ``import kfp_interop`` stays fast. One package per concern, in layers
(each imports only the ones below it; ``.importlinter`` checks it):

=================  =====================================================================
``cli``            the ``kfp-interop`` command, a shell over ``runs``
``runs``           the Python API: run (kfp.local), submit (kfp.Client), compile
``steps``          pipeline stages as plain functions over files (what components call)
``deploy``         deploy targets: local, kserve, seldon, seldon-v2 (registry)
``serving``        the local Open Inference Protocol server, its client, the smoke test
``storage``        S3 and folders (schemes registry), runtime layouts (layouts registry)
``model_registry`` MLflow: register, aliases, promote
``export``         one exporter per framework (registry), the common interface, parity gate
``training``       fit and score, tabular and networks
``frameworks``     one module per framework: native format, estimators, training (registry)
``metadata``       the inference-metadata record, its schema, renderers (registry)
``data``           bundled data sets and user files, splits on disk
``onnx_model``     ONNX files: read, write, tensors, opsets, ONNX Runtime sessions
base               ``errors``, ``files``, ``registry``, ``constants``, ``dtypes``, ``naming``
=================  =====================================================================

``kfp_interop.components`` (one folder per KFP component) and ``kfp_interop.pipelines``
(reference pipelines) sit between ``runs`` and ``steps``; with ``runs.local`` and
``runs.cluster`` they are the only parts that import kfp.

``kfp_interop.run``, ``kfp_interop.submit`` and ``kfp_interop.compile`` are
:mod:`kfp_interop.runs`' functions, imported when first used.
"""

from kfp_interop._version import __version__
from kfp_interop.errors import InteropError

__all__ = ["__version__", "InteropError", "run", "submit", "compile"]


def __getattr__(name: str):
    """``run``, ``submit``, ``compile``: imported on first use (kfp stays unimported)."""
    if name in ("run", "submit", "compile"):
        from kfp_interop import runs

        return getattr(runs, name)
    raise AttributeError(f"module 'kfp_interop' has no attribute {name!r}")
