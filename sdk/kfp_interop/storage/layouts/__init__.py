"""Model layouts, one module each, in the :data:`LAYOUTS` registry: the files a serving
runtime expects in the model's folder ``<root>/<name>/``.

* ``triton`` — a Triton model repository, for KServe's ONNX runtime and Seldon's Triton
  server: ``<name>/config.pbtxt``, ``<name>/<version>/model.onnx``.
* ``mlserver`` — an MLflow model (``MLmodel`` + ``model.onnx``) with MLServer's
  ``model-settings.json`` (runtime ``mlserver_mlflow.MLflowRuntime``).

Every layout also carries the record, ``<name>/model.metadata.json``. The folder name
must equal the serving name, or the server reports Ready and answers "unknown model".
"""

from kfp_interop.storage.layouts.base import LAYOUTS, Layout, register_layout
# built-in layouts: importing a module registers it
from kfp_interop.storage.layouts import mlserver, triton  # noqa: F401,E402

__all__ = ["LAYOUTS", "Layout", "register_layout"]
