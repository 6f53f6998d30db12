"""kfp-interop: move ML models between frameworks and serving platforms on Kubeflow.

The library is plain Python: it never imports ``kfp``, and heavy dependencies
(onnxruntime, torch, mlflow, ...) are imported inside the functions that use them,
so ``import kfp_interop`` stays fast.

Entry points:
    * :mod:`kfp_interop.data` — bundled data sets and user CSV/Parquet files.
    * :mod:`kfp_interop.train` — training with metrics.
    * :mod:`kfp_interop.export` — the exporter registry (framework -> ONNX).
    * :mod:`kfp_interop.parity` — native vs ONNX Runtime parity gate.
    * :mod:`kfp_interop.metadata` — the inference-metadata record and its renderers.
    * :mod:`kfp_interop.serve` — a local Open Inference Protocol server.
    * :mod:`kfp_interop.smoke` — smoke tests against a live endpoint.
"""

from kfp_interop._version import __version__
from kfp_interop.errors import InteropError

__all__ = ["__version__", "InteropError"]
