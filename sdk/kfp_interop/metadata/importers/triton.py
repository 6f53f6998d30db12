"""A Triton ``config.pbtxt``, parsed with Triton's own ``ModelConfig`` protobuf schema
(from ``tritonclient``): what KServe's and Seldon's Triton servers read.

With ``max_batch_size > 0`` Triton's dims leave out the batch; imported tensors get a
dynamic one (-1) in front. The version is the first of ``version_policy.specific``;
``parameters`` are the facts."""

from __future__ import annotations

from kfp_interop.errors import InvalidInputError, MetadataError
from kfp_interop.metadata.importers.base import IMPORTERS, Described, tensor

__all__ = ["from_triton", "model_config_pb2"]


def model_config_pb2():
    """Triton's ``model_config_pb2`` module, loaded alone: importing ``tritonclient.grpc``
    would also register Triton's gRPC service protos, whose names clash with other
    libraries' (KServe's) in the process-wide descriptor pool.

    Raises:
        InvalidInputError: tritonclient is not installed.
    """
    import importlib.util
    import os
    import sys

    name = "kfp_interop_triton_model_config_pb2"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec("tritonclient")
    if spec is None or not spec.submodule_search_locations:
        raise InvalidInputError("Reading Triton configs needs tritonclient: pip install "
                                "'kfp-interop[serve]' (or tritonclient[grpc]).")
    path = os.path.join(list(spec.submodule_search_locations)[0], "grpc",
                        "model_config_pb2.py")
    module_spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    sys.modules[name] = module
    return module


def parse_config(text: str, path: str):
    """A ``config.pbtxt`` as Triton's ``ModelConfig`` message.

    Raises:
        MetadataError: the text does not parse with Triton's schema (the line named).
    """
    from google.protobuf import text_format

    pb2 = model_config_pb2()
    try:
        return text_format.Parse(text, pb2.ModelConfig())
    except text_format.ParseError as e:
        raise MetadataError(f"{path!r} is not a Triton config.pbtxt: {e}") from e


def from_triton(text: str, path: str) -> Described:
    from kfp_interop.dtypes import by_triton

    pb2 = model_config_pb2()
    config = parse_config(text, path)
    if not config.input or not config.output:
        raise MetadataError(f"{path!r}: the Triton config declares no inputs or no outputs "
                            "(kfp-interop reads configs that list them).")
    batch = [-1] if config.max_batch_size > 0 else []

    def tensors(items, kind: str) -> list[dict]:
        out = []
        for t in items:
            type_name = pb2.DataType.Name(t.data_type)
            try:
                datatype = by_triton(type_name).oip
            except InvalidInputError as e:
                raise MetadataError(f"{path!r}: {kind} {t.name!r}: {e}") from e
            dims = t.reshape.shape if t.HasField("reshape") else t.dims
            out.append(tensor(t.name, datatype, batch + [int(d) for d in dims], path=path,
                              where=kind))
        return out

    versions = list(config.version_policy.specific.versions)
    serving = None
    if config.max_batch_size > 0 and config.HasField("dynamic_batching"):
        dyn = config.dynamic_batching
        block = {"max_batch_size": int(config.max_batch_size),
                 "max_queue_delay_us": int(dyn.max_queue_delay_microseconds)}
        if dyn.preferred_batch_size:
            block["preferred_batch_sizes"] = [int(p) for p in dyn.preferred_batch_size]
        serving = {"dynamic_batching": block}
    platform = config.platform or ("onnxruntime_onnx" if config.backend == "onnxruntime"
                                   else config.backend)
    return Described(inputs=tensors(config.input, "input"),
                     outputs=tensors(config.output, "output"), name=config.name or None,
                     version=str(versions[0]) if versions else None,
                     properties={k: v.string_value for k, v in config.parameters.items()},
                     platform=platform, serving=serving)


IMPORTERS.register("triton", from_triton)
