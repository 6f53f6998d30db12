"""Export to ONNX and prove it: one exporter module per framework in the
:data:`EXPORTERS` registry (:mod:`.sklearn` through skl2onnx, :mod:`.xgboost` and
:mod:`.lightgbm` through onnxmltools, :mod:`.torch` through ``torch.onnx``,
:mod:`.keras` through Keras' own export), the common interface every exported model gets
(:mod:`.core`), the parity gate (:mod:`.parity`), and adopting an ONNX file made
elsewhere (:mod:`.adopt`).

Add an exporter with a module that calls :func:`register_exporter` and one import below
(``docs/extending.md``); an unknown framework fails with the list of registered ones.
"""

from kfp_interop.constants import DEFAULT_OPSET, DEFAULT_TOLERANCE, INPUT_NAME
from kfp_interop.export.adopt import AdoptResult, adopt_onnx
from kfp_interop.export.core import export_onnx
from kfp_interop.export.parity import ParityResult, check_parity, enforce_parity
from kfp_interop.export.registry import EXPORTERS, Exporter, register_exporter
# built-in exporters: importing a module registers it (converters load on first use)
from kfp_interop.export import (  # noqa: F401,E402
    keras, lightgbm, sklearn, tensorflow, torch, xgboost)
from kfp_interop.onnx_model import model_opsets, save_onnx, tensor_specs

__all__ = ["DEFAULT_OPSET", "DEFAULT_TOLERANCE", "INPUT_NAME", "EXPORTERS", "Exporter",
           "register_exporter", "export_onnx", "save_onnx", "tensor_specs", "model_opsets",
           "ParityResult", "check_parity", "enforce_parity", "adopt_onnx", "AdoptResult"]
