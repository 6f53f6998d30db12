"""The one datatype table: Open Inference Protocol names and their ONNX, NumPy (wire
byte order and size), Triton and MLflow counterparts.

Every module that translates a datatype reads this table; nothing else spells one out.
"""

from __future__ import annotations

import dataclasses

from kfp_interop.errors import InvalidInputError

__all__ = ["DType", "DTYPES", "OIP_DATATYPES", "by_oip", "by_onnx", "by_triton", "by_mlflow"]


@dataclasses.dataclass(frozen=True)
class DType:
    """One datatype in every dialect.

    Attributes:
        oip: the Open Inference Protocol name (``FP32``).
        onnx: the ``onnx.TensorProto.DataType`` value.
        numpy: the NumPy dtype of the wire format (little-endian), ``object`` for BYTES.
        size: bytes per element in binary tensor data (0: variable, BYTES).
        triton: the Triton ``config.pbtxt`` data type.
        mlflow: the dtype name MLflow tensor specs use.
    """

    oip: str
    onnx: int
    numpy: str
    size: int
    triton: str
    mlflow: str


DTYPES: tuple[DType, ...] = (
    DType("BOOL", 9, "bool", 1, "TYPE_BOOL", "bool"),
    DType("UINT8", 2, "<u1", 1, "TYPE_UINT8", "uint8"),
    DType("UINT16", 4, "<u2", 2, "TYPE_UINT16", "uint16"),
    DType("UINT32", 12, "<u4", 4, "TYPE_UINT32", "uint32"),
    DType("UINT64", 13, "<u8", 8, "TYPE_UINT64", "uint64"),
    DType("INT8", 3, "<i1", 1, "TYPE_INT8", "int8"),
    DType("INT16", 5, "<i2", 2, "TYPE_INT16", "int16"),
    DType("INT32", 6, "<i4", 4, "TYPE_INT32", "int32"),
    DType("INT64", 7, "<i8", 8, "TYPE_INT64", "int64"),
    DType("FP16", 10, "<f2", 2, "TYPE_FP16", "float16"),
    DType("FP32", 1, "<f4", 4, "TYPE_FP32", "float32"),
    DType("FP64", 11, "<f8", 8, "TYPE_FP64", "float64"),
    DType("BF16", 16, "", 2, "TYPE_BF16", ""),
    DType("BYTES", 8, "object", 0, "TYPE_STRING", "str"),
)
_BY_OIP = {d.oip: d for d in DTYPES}
_BY_ONNX = {d.onnx: d for d in DTYPES}
_BY_TRITON = {d.triton: d for d in DTYPES}
# MLflow's tensor dtypes are NumPy names; its column types (ColSpec) are its own
_BY_MLFLOW = {**{d.mlflow: d for d in DTYPES if d.mlflow},
              "object": _BY_OIP["BYTES"], "string": _BY_OIP["BYTES"],
              "bytes": _BY_OIP["BYTES"], "binary": _BY_OIP["BYTES"],
              "double": _BY_OIP["FP64"], "float": _BY_OIP["FP32"],
              "integer": _BY_OIP["INT32"], "long": _BY_OIP["INT64"],
              "boolean": _BY_OIP["BOOL"]}
OIP_DATATYPES = tuple(_BY_OIP)


def _lookup(table: dict, key, message: str) -> DType:
    try:
        return table[key]
    except (KeyError, TypeError):
        raise InvalidInputError(message) from None


def by_oip(name: str) -> DType:
    """The row of an OIP datatype name.

    Raises:
        InvalidInputError: not an OIP datatype.
    """
    return _lookup(_BY_OIP, name, f"{name!r} is not an Open Inference Protocol datatype; "
                                  f"use one of {list(OIP_DATATYPES)}.")


def by_onnx(elem_type: int) -> DType:
    """The row of an ONNX element type.

    Raises:
        InvalidInputError: the ONNX type has no OIP datatype.
    """
    return _lookup(_BY_ONNX, elem_type, f"ONNX element type {elem_type} has no Open "
                                        "Inference Protocol datatype.")


def by_triton(name: str) -> DType:
    """The row of a Triton ``config.pbtxt`` data type (``TYPE_FP32``).

    Raises:
        InvalidInputError: not a Triton data type with an OIP counterpart.
    """
    return _lookup(_BY_TRITON, name, f"{name!r} is not a Triton data type kfp-interop "
                                     f"knows; known: {sorted(_BY_TRITON)}.")


def by_mlflow(name: str) -> DType:
    """The row of an MLflow tensor dtype (``float32``) or column type (``double``).

    Raises:
        InvalidInputError: an MLflow type with no OIP counterpart (e.g. ``datetime``).
    """
    return _lookup(_BY_MLFLOW, name, f"MLflow type {name!r} has no Open Inference Protocol "
                                     f"datatype; known: {sorted(_BY_MLFLOW)}.")
