"""Datatype names across ONNX, the Open Inference Protocol, Triton, NumPy and MLflow."""

from __future__ import annotations

__all__ = ["OIP_DATATYPES", "onnx_elem_to_oip", "oip_to_numpy", "oip_to_triton",
           "oip_to_mlflow"]

# ONNX TensorProto.DataType value -> OIP datatype
_ONNX_TO_OIP = {1: "FP32", 2: "UINT8", 3: "INT8", 4: "UINT16", 5: "INT16", 6: "INT32",
                7: "INT64", 8: "BYTES", 9: "BOOL", 10: "FP16", 11: "FP64", 12: "UINT32",
                13: "UINT64", 16: "BF16"}
_OIP_TO_NUMPY = {"BOOL": "bool", "UINT8": "uint8", "UINT16": "uint16", "UINT32": "uint32",
                 "UINT64": "uint64", "INT8": "int8", "INT16": "int16", "INT32": "int32",
                 "INT64": "int64", "FP16": "float16", "FP32": "float32", "FP64": "float64",
                 "BYTES": "object"}
OIP_DATATYPES = tuple(_OIP_TO_NUMPY) + ("BF16",)


def onnx_elem_to_oip(elem_type: int) -> str:
    try:
        return _ONNX_TO_OIP[elem_type]
    except KeyError:
        raise ValueError(f"ONNX element type {elem_type} has no Open Inference Protocol "
                         "datatype.") from None


def oip_to_numpy(datatype: str) -> str:
    return _OIP_TO_NUMPY[datatype]


def oip_to_triton(datatype: str) -> str:
    """OIP ``FP32`` -> Triton ``TYPE_FP32`` (``BYTES`` -> ``TYPE_STRING``)."""
    return "TYPE_STRING" if datatype == "BYTES" else f"TYPE_{datatype}"


def oip_to_mlflow(datatype: str) -> str:
    """OIP datatype -> the NumPy dtype name MLflow tensor specs use."""
    return "str" if datatype == "BYTES" else _OIP_TO_NUMPY[datatype]
