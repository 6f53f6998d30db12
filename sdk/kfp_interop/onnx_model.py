"""One ONNX model: finding, reading and writing the file, its tensors and opsets in
Open Inference Protocol terms, and an ONNX Runtime session with our settings.

Everything above this layer (metadata, export, serving, storage, registry, deploy) reads
ONNX files through these functions, so a missing, corrupt or non-ONNX file is one typed
error everywhere.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from kfp_interop.constants import LABEL_OUTPUT, ONNX_FILENAME
from kfp_interop.dtypes import by_oip, by_onnx
from kfp_interop.errors import InvalidInputError, ModelFileError
from kfp_interop.files import atomic_write

if TYPE_CHECKING:  # pragma: no cover
    import onnx

__all__ = ["find_onnx", "read_onnx", "parse_onnx", "save_onnx", "tensor_specs",
           "model_opsets", "rename_tensor", "release_names", "tensor_names",
           "unique_name", "ort_session", "execution_providers", "prune_opsets",
           "PROVIDERS_ENV", "sample_inputs", "compare_outputs"]


def find_onnx(model: str) -> str:
    """The ONNX file of a model folder (``<folder>/model.onnx``) or the file itself.

    Raises:
        InvalidInputError: neither exists.
    """
    path = os.path.join(model, ONNX_FILENAME) if os.path.isdir(model) else model
    if not os.path.isfile(path):
        raise InvalidInputError(f"No ONNX model at {path!r}: pass an ONNX file or a model "
                                f"folder holding {ONNX_FILENAME}.")
    return path


def read_onnx(path: str) -> "onnx.ModelProto":
    """Load and check an ONNX file as data.

    A file that names external data (tensors in other files, found by a path the file
    itself gives) is refused: what we load and serve is one self-contained file, and
    such a path could point anywhere. The model must pass ``onnx.checker``.

    Raises:
        ModelFileError: missing, corrupt, not ONNX, external data, or failing the checker.
    """
    if not os.path.isfile(path):
        raise ModelFileError(f"No ONNX file at {path!r}.")
    with open(path, "rb") as f:
        return parse_onnx(f.read(), path)


def parse_onnx(data: bytes, where: str = "the model") -> "onnx.ModelProto":
    """:func:`read_onnx` for bytes (an object read from storage); ``where`` names them."""
    import onnx
    from google.protobuf.message import DecodeError

    try:
        model = onnx.load_from_string(data)
    except (DecodeError, ValueError, RuntimeError, OSError) as e:
        raise ModelFileError(f"{where!r} is not a readable ONNX model ({e}); export the model "
                             "again or pass the right file.") from e
    if not model.graph.node and not model.graph.output:
        raise ModelFileError(f"{where!r} parses but holds no ONNX graph: it is not an ONNX "
                             "model (or is empty).")
    external = [t.name for t in _tensors(model)
                if t.data_location == onnx.TensorProto.EXTERNAL]
    if external:
        raise ModelFileError(f"{where!r} keeps tensor(s) {external[:5]} in external files; "
                             "kfp-interop loads self-contained ONNX files only (save the "
                             "model with all tensors inside it).")
    try:
        onnx.checker.check_model(model)
    except (onnx.checker.ValidationError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelFileError(f"{where!r} is not a valid ONNX model: {first}") from e
    return model


def _tensors(model: "onnx.ModelProto"):
    """Every tensor stored in the model: initializers and Constant values, subgraphs too."""
    import onnx

    for graph in _graphs(model.graph):
        yield from graph.initializer
        for node in graph.node:
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.TENSOR:
                    yield attr.t


def save_onnx(model: "onnx.ModelProto", path: str) -> str:
    """Write the model atomically; return the path."""
    return atomic_write(path, model.SerializeToString())


def tensor_specs(model: "onnx.ModelProto") -> tuple[list[dict], list[dict]]:
    """The graph's inputs and outputs as ``{"name", "datatype", "shape"}`` (OIP terms).

    Dynamic dimensions are -1; initializers listed as inputs are left out.

    Raises:
        ModelFileError: an input or output that is not a tensor (a sequence or a map, as
            scikit-learn's ZipMap returns): the Open Inference Protocol carries tensors.
    """

    def spec(vi) -> dict:
        if vi.type.WhichOneof("value") != "tensor_type":
            raise ModelFileError(
                f"Graph input/output {vi.name!r} is a {vi.type.WhichOneof('value') or 'typeless'}"
                ", not a tensor; the Open Inference Protocol carries tensors only. Export "
                "without it (for scikit-learn classifiers: options zipmap=False).")
        t = vi.type.tensor_type
        shape = [d.dim_value if d.HasField("dim_value") else -1 for d in t.shape.dim]
        try:
            datatype = by_onnx(t.elem_type).oip
        except InvalidInputError as e:
            raise ModelFileError(f"Tensor {vi.name!r}: {e}") from e
        return {"name": vi.name, "datatype": datatype, "shape": shape}

    inits = {i.name for i in model.graph.initializer}
    return ([spec(v) for v in model.graph.input if v.name not in inits],
            [spec(v) for v in model.graph.output])


def model_opsets(model: "onnx.ModelProto") -> dict[str, int]:
    """The model's opset imports, e.g. ``{"ai.onnx": 17, "ai.onnx.ml": 3}``."""
    return {(o.domain or "ai.onnx"): int(o.version) for o in model.opset_import}


def _graphs(graph):
    """A graph and every subgraph inside it (If/Loop/Scan bodies), outermost first."""
    import onnx

    yield graph
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                yield from _graphs(attr.g)
            elif attr.type == onnx.AttributeProto.GRAPHS:
                for g in attr.graphs:
                    yield from _graphs(g)


def tensor_names(model: "onnx.ModelProto") -> set[str]:
    """Every tensor name the model uses: inputs, outputs, initializers, value infos and
    node inputs/outputs, in the main graph and its subgraphs."""
    names: set[str] = set()
    for graph in _graphs(model.graph):
        for node in graph.node:
            names.update(node.input)
            names.update(node.output)
        for vi in list(graph.input) + list(graph.output) + list(graph.value_info):
            names.add(vi.name)
        names.update(i.name for i in graph.initializer)
    names.discard("")  # an omitted optional input
    return names


def unique_name(model: "onnx.ModelProto", base: str, taken: set[str] | None = None) -> str:
    """``base``, or ``base_1``, ``base_2`` ... whichever the model does not use yet."""
    taken = tensor_names(model) if taken is None else taken
    name, k = base, 0
    while name in taken:
        k += 1
        name = f"{base}_{k}"
    return name


def rename_tensor(model: "onnx.ModelProto", old: str, new: str) -> None:
    """Rename a tensor everywhere (node inputs/outputs, graph inputs, outputs,
    initializers and value infos, in subgraphs too), in place.

    Raises:
        InvalidInputError: ``new`` already names another tensor of the model (two
            tensors would share a name; free it first with :func:`release_names`).
    """
    if old == new:
        return
    if new in tensor_names(model):
        raise InvalidInputError(f"Cannot rename tensor {old!r} to {new!r}: the graph already "
                                f"has a tensor named {new!r}.")
    for graph in _graphs(model.graph):
        for node in graph.node:
            node.input[:] = [new if n == old else n for n in node.input]
            node.output[:] = [new if n == old else n for n in node.output]
        for vi in list(graph.output) + list(graph.input) + list(graph.value_info):
            if vi.name == old:
                vi.name = new
        for init in graph.initializer:
            if init.name == old:
                init.name = new


def release_names(model: "onnx.ModelProto", names) -> dict[str, str]:
    """Give every tensor named like one of ``names`` a fresh name (``name_1`` ...), so
    the names are free for the interface; in place. Converters name tensors as they
    like, and a graph made elsewhere may already use ``label`` or ``probabilities``
    for one of its own (its output, or a tensor inside).

    Returns:
        ``{old: new}`` for each tensor renamed.
    """
    taken = tensor_names(model)
    moved = {}
    for name in names:
        if name in taken:
            new = unique_name(model, name, taken | set(names))
            rename_tensor(model, name, new)
            taken = (taken - {name}) | {new}
            moved[name] = new
    return moved


#: ``$KFP_INTEROP_ORT_PROVIDERS``: the ONNX Runtime execution providers, in order of
#: preference (``auto``: CUDA when this ONNX Runtime has it and a GPU is there, else CPU)
PROVIDERS_ENV = "KFP_INTEROP_ORT_PROVIDERS"
_PROVIDER_NAMES = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider",
                   "tensorrt": "TensorrtExecutionProvider", "rocm": "ROCMExecutionProvider",
                   "openvino": "OpenVINOExecutionProvider"}


def execution_providers(choice: str | None = None) -> list[str]:
    """The providers a session uses: ``choice`` (or ``$KFP_INTEROP_ORT_PROVIDERS``) as a
    comma-separated list of short names (``cuda,cpu``) or ``auto`` (the default); the
    CPU provider always comes last, as the fallback.

    Raises:
        InvalidInputError: a provider this ONNX Runtime does not have (the available
            ones are named).
    """
    import onnxruntime as ort

    choice = (choice if choice is not None else os.environ.get(PROVIDERS_ENV, "")) or "auto"
    available = ort.get_available_providers()
    if choice.strip().lower() == "auto":
        wanted = ["CUDAExecutionProvider"] if "CUDAExecutionProvider" in available else []
    else:
        wanted = []
        for item in (c.strip() for c in choice.split(",") if c.strip()):
            full = _PROVIDER_NAMES.get(item.lower(), item)
            if full not in available:
                raise InvalidInputError(
                    f"ONNX Runtime execution provider {item!r} is not available here; this "
                    f"ONNX Runtime has {available} (use 'auto', 'cpu', or install "
                    "onnxruntime-gpu for 'cuda').")
            wanted.append(full)
    return [p for p in wanted if p != "CPUExecutionProvider"] + ["CPUExecutionProvider"]


def ort_session(model: Any, *, threads: int = 1, providers: str | None = None):
    """An ONNX Runtime session for a path, bytes or ``onnx.ModelProto``, on the providers
    of :func:`execution_providers` (the CPU unless a GPU provider is chosen or found);
    ``session.get_providers()[0]`` is the one that runs it.

    A path is read through :func:`read_onnx` first (checked, no external data), and the
    session is made from the bytes, so ONNX Runtime never opens other files. One
    intra-op thread by default: the parity gate and the smoke test compare numbers, and
    a served model answers one request per core.
    """
    import onnxruntime as ort

    chosen = execution_providers(providers)
    if isinstance(model, (str, os.PathLike)):
        model = read_onnx(os.fspath(model))
    if hasattr(model, "SerializeToString"):
        model = model.SerializeToString()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3  # converters declare static shapes ORT warns about
    return ort.InferenceSession(model, sess_options=opts, providers=chosen)


def sample_inputs(X: Any, specs: list[dict]) -> dict[str, Any]:
    """The sample as ``{input name: array}`` in each input's datatype.

    Raises:
        InvalidInputError: a missing or unknown input, an empty sample.
    """
    import numpy as np

    if not isinstance(X, dict):
        if len(specs) != 1:
            raise InvalidInputError(f"The model takes {len(specs)} inputs "
                                    f"({[s['name'] for s in specs]}): give the sample as a "
                                    "dict of arrays by input name.")
        X = {specs[0]["name"]: X}
    names = [s["name"] for s in specs]
    if sorted(X) != sorted(names):
        raise InvalidInputError(f"The sample has inputs {sorted(X)}; the model takes "
                                f"{sorted(names)}.")
    out = {}
    for spec in specs:
        dtype = object if spec["datatype"] == "BYTES" else by_oip(spec["datatype"]).numpy
        arr = np.ascontiguousarray(X[spec["name"]], dtype=dtype)
        if arr.size == 0:
            raise InvalidInputError(f"The sample of input {spec['name']!r} is empty.")
        out[spec["name"]] = arr
    return out


def compare_outputs(expected: dict[str, Any], served: dict[str, Any], specs: list[dict]
                    ) -> tuple[float, list[str]]:
    """``(max absolute difference of float outputs, problems)``: integer, boolean and
    BYTES outputs must be equal, float ones within the caller's tolerance."""
    import numpy as np

    max_diff, problems = 0.0, []
    for spec in specs:
        name = spec["name"]
        exp, got = np.asarray(expected[name]), served.get(name)
        if got is None or list(np.shape(got)) != list(exp.shape):
            problems.append(f"output {name!r} shape "
                            f"{None if got is None else list(np.shape(got))} != {list(exp.shape)}")
            continue
        if spec["datatype"] == "BYTES" or exp.dtype.kind not in "fc":
            same = np.asarray(got, dtype=object if spec["datatype"] == "BYTES" else exp.dtype)
            unequal = int(np.sum(same.astype(str) != exp.astype(str)) if spec["datatype"]
                          == "BYTES" else np.sum(same != exp))
            if unequal:
                what = "labels differ" if name == LABEL_OUTPUT else f"output {name!r} differs"
                problems.append(f"{what} on {unequal} value(s)")
            continue
        got = np.asarray(got, dtype=np.float64)
        exp = exp.astype(np.float64)
        both_nan = np.isnan(got) & np.isnan(exp)
        diff = np.where(both_nan, 0.0, np.abs(got - exp))
        max_diff = max(max_diff, float(np.nanmax(diff, initial=0.0)) if diff.size else 0.0)
        if np.isnan(diff).any():
            problems.append(f"output {name!r} is NaN where it should not be")
    return max_diff, problems


def prune_opsets(model: "onnx.ModelProto") -> None:
    """Drop, in place, the opset imports of domains no node uses (subgraphs included);
    the default domain stays. ONNX Runtime's optimizer saves an import of every domain
    it knows (``com.microsoft.nchwc``, ``org.pytorch.aten``, ...): a runtime other than
    ONNX Runtime could refuse the file for a domain it does not have and that nothing
    uses."""
    used = {""}

    def walk(graph):
        for node in graph.node:
            used.add("" if node.domain == "ai.onnx" else node.domain)
            for attr in node.attribute:
                for g in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                    walk(g)

    walk(model.graph)
    kept = [o for o in model.opset_import
            if ("" if o.domain == "ai.onnx" else o.domain) in used]
    del model.opset_import[:]
    model.opset_import.extend(kept)


def unique_opsets(model: "onnx.ModelProto", *, default: int | None = None) -> None:
    """Rewrite ``model``'s opset imports in place: one per domain (the highest version;
    ``ai.onnx`` counted as the default domain, which ONNX allows once and ONNX Runtime's
    quantizer requires once), the default domain first, the others sorted (a fixed
    order keeps serializations byte-identical). ``default``: the default domain's
    version when the model imports none."""
    import onnx

    versions: dict[str, int] = {}
    for o in model.opset_import:
        domain = "" if o.domain == "ai.onnx" else o.domain
        versions[domain] = max(versions.get(domain, 0), o.version)
    if default is not None:
        versions.setdefault("", default)
    del model.opset_import[:]
    model.opset_import.extend(onnx.helper.make_opsetid(d, v) for d, v in
                              sorted(versions.items(), key=lambda dv: (dv[0] != "", dv[0])))

