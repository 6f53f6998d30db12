"""Check a Triton-layout model repository (a folder or ``s3://bucket/prefix``) as KServe's
and Seldon's Triton servers will read it, before they do.

Every model folder ``<name>/`` must hold a ``config.pbtxt`` that parses with Triton's own
``ModelConfig`` schema and names the folder (a mismatch is the commonest cause of an
InferenceService that reports Ready and then answers "unknown model"), numeric version
folders each holding the model file, the versions the config's policy asks for, and
tensors in the config that the ONNX graph has (names, datatypes, dims; a config dim of -1
matches any). A kfp-interop record beside the model must describe that very graph
(sha256), and a kfp-interop manifest must list every object with its sha256.

Each problem is named with its object; nothing is written.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from kfp_interop.storage.transfer import MANIFEST_NAME, PREVIOUS_DIR, RECORD_FILE, open_store

__all__ = ["Problem", "validate_repository"]

CONFIG_FILE = "config.pbtxt"
#: Highest ONNX IR version the ONNX Runtime inside Triton 2.51 (ONNX Runtime 1.19) loads;
#: checked against a real Triton in tests/test_triton.py. onnx >= 1.18 writes newer IR
#: versions by default, which ONNX Runtime 1.2x loads and Triton's does not.
TRITON_MAX_IR_VERSION = 10
DEFAULT_MODEL_FILE = "model.onnx"
_ONNX_PLATFORMS = ("onnxruntime_onnx",)


@dataclasses.dataclass(frozen=True)
class Problem:
    """One thing Triton (or kfp-interop) would refuse: where, and what."""

    model: str
    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.key}: {self.message}"


def _dims_match(config: list[int], graph: list[int]) -> bool:
    return len(config) == len(graph) and all(c == -1 or g == -1 or c == g
                                             for c, g in zip(config, graph))


def _check_tensors(config, graph_model, model: str, key: str) -> list[Problem]:
    """Config tensors against the graph's: every graph input configured, every
    configured tensor in the graph with the same datatype and compatible dims."""
    from kfp_interop.dtypes import by_triton
    from kfp_interop.errors import InvalidInputError
    from kfp_interop.metadata.importers.triton import model_config_pb2
    from kfp_interop.onnx_model import tensor_specs

    pb2 = model_config_pb2()
    batch = [-1] if config.max_batch_size > 0 else []
    problems = []
    graph_inputs, graph_outputs = tensor_specs(graph_model)
    for kind, configured, graph in (("input", config.input, graph_inputs),
                                    ("output", config.output, graph_outputs)):
        by_name = {t["name"]: t for t in graph}
        for t in configured:
            found = by_name.get(t.name)
            if found is None:
                problems.append(Problem(model, key, f"config {kind} {t.name!r} is not a graph "
                                                     f"{kind}; the graph has {sorted(by_name)}."))
                continue
            type_name = pb2.DataType.Name(t.data_type)
            try:
                datatype = by_triton(type_name).oip
            except InvalidInputError:
                datatype = type_name
            if datatype != found["datatype"]:
                problems.append(Problem(model, key, f"config {kind} {t.name!r} is {type_name}, "
                                                     f"the graph's is {found['datatype']}."))
            dims = batch + [int(d) for d in (t.reshape.shape if t.HasField("reshape")
                                             else t.dims)]
            if not _dims_match(dims, found["shape"]):
                problems.append(Problem(
                    model, key, f"config {kind} {t.name!r} has dims {dims} (with the batch "
                    f"when max_batch_size > 0), the graph's shape is {found['shape']}."))
        if kind == "input":
            missing = sorted(set(by_name) - {t.name for t in configured})
            if missing:
                problems.append(Problem(model, key, f"graph input(s) {missing} are not in the "
                                                     "config: Triton refuses the model."))
    return problems


def _check_model(store, name: str, keys: list[str]) -> tuple[list[Problem], dict[str, Any]]:
    from kfp_interop.errors import MetadataError, ModelFileError
    from kfp_interop.files import sha256_bytes
    from kfp_interop.metadata import InferenceMetadata, onnx_content_sha256
    from kfp_interop.metadata.importers.triton import parse_config
    from kfp_interop.onnx_model import parse_onnx

    problems: list[Problem] = []
    info: dict[str, Any] = {"versions": []}
    inside = [k[len(name) + 1:] for k in keys]
    if any(p.startswith(PREVIOUS_DIR + "/") for p in inside):
        problems.append(Problem(name, f"{name}/{PREVIOUS_DIR}/", "an upload into this folder "
                                "did not finish: the objects below may mix two versions "
                                "(kfp-interop's download still reads the previous one whole, "
                                "servers reading the folder directly do not). Run the upload "
                                "again."))
        inside = [p for p in inside if not p.startswith(PREVIOUS_DIR + "/")]
    config_key = f"{name}/{CONFIG_FILE}"
    config = None
    if CONFIG_FILE not in inside:
        problems.append(Problem(name, config_key, "missing: kfp-interop repositories carry "
                                                  "the config Triton serves the model with."))
    else:
        try:
            config = parse_config(store.read_bytes(config_key).decode("utf-8"), config_key)
        except (MetadataError, UnicodeDecodeError) as e:
            problems.append(Problem(name, config_key, str(e)))
    if config is not None:
        if config.name and config.name != name:
            problems.append(Problem(
                name, config_key, f"names the model {config.name!r} but sits in folder "
                f"{name!r}: Triton refuses it, and KServe then answers 'unknown model'. "
                "Rename the folder or the config's name."))
        platform = config.platform or ("onnxruntime_onnx" if config.backend == "onnxruntime"
                                       else config.backend)
        if platform not in _ONNX_PLATFORMS:
            problems.append(Problem(name, config_key, f"platform {platform!r}: the repository "
                                                      "holds ONNX models (onnxruntime_onnx)."))
    model_file = (config.default_model_filename if config is not None
                  and config.default_model_filename else DEFAULT_MODEL_FILE)
    folders = sorted({p.split("/", 1)[0] for p in inside if "/" in p})
    versions = [f for f in folders if f.isdigit() and int(f) > 0]
    for folder in folders:
        if folder not in versions:
            problems.append(Problem(name, f"{name}/{folder}/", "is not a numeric version "
                                                               "folder (1, 2, ...): Triton "
                                                               "ignores it."))
    if not versions:
        problems.append(Problem(name, f"{name}/", "has no numeric version folder (e.g. "
                                                  f"{name}/1/{model_file})."))
    if config is not None:
        wanted = [str(v) for v in config.version_policy.specific.versions]
        absent = [v for v in wanted if v not in versions]
        if absent:
            problems.append(Problem(name, config_key, f"version_policy asks for version(s) "
                                                      f"{absent}, which have no folder."))
    info["versions"] = sorted(versions, key=int)
    graphs: dict[str, Any] = {}
    for version in info["versions"]:
        key = f"{name}/{version}/{model_file}"
        if key not in keys:
            problems.append(Problem(name, key, "missing: the version folder holds no model "
                                               "file."))
            continue
        try:
            graph = parse_onnx(store.read_bytes(key), key)
        except ModelFileError as e:
            problems.append(Problem(name, key, str(e)))
            continue
        graphs[version] = graph
        if graph.ir_version > TRITON_MAX_IR_VERSION:
            problems.append(Problem(name, key, f"is ONNX IR version {graph.ir_version}; the "
                                    f"ONNX Runtime in Triton 2.51 loads IR <= "
                                    f"{TRITON_MAX_IR_VERSION}. Save it with a lower "
                                    "ir_version (e.g. onnx.helper.make_model(..., "
                                    "ir_version=10)) or re-export it."))
        if config is not None:
            problems.extend(_check_tensors(config, graph, name, key))
    record_key = f"{name}/{RECORD_FILE}"
    if RECORD_FILE in inside:
        try:
            record = InferenceMetadata.from_json(store.read_bytes(record_key))
        except MetadataError as e:
            problems.append(Problem(name, record_key, str(e)))
        else:
            stated = record.model.get("onnx_sha256")
            actual = {v: onnx_content_sha256(g) for v, g in graphs.items()}
            if stated and graphs and stated not in actual.values():
                problems.append(Problem(name, record_key, f"describes the graph with sha256 "
                                                          f"{stated}; the version folders "
                                                          f"hold {actual}."))
    manifest_key = f"{name}/{MANIFEST_NAME}"
    info["manifest"] = MANIFEST_NAME in inside
    if info["manifest"]:
        try:
            manifest = json.loads(store.read_bytes(manifest_key))
            # keys relative to the model folder: a renamed folder is one problem, not many
            listed = {k.split("/", 1)[1]: v["sha256"] for k, v in manifest["objects"].items()}
        except (ValueError, KeyError, TypeError, AttributeError, IndexError) as e:
            problems.append(Problem(name, manifest_key, f"is not a kfp-interop manifest ({e})."))
            listed = None
        if listed is not None:
            if manifest.get("name") not in (None, name):
                problems.append(Problem(name, manifest_key, f"was written for model folder "
                                                            f"{manifest['name']!r}."))
            present = set(inside) - {MANIFEST_NAME}
            for rel in sorted(set(listed) | present):
                key = f"{name}/{rel}"
                if rel not in listed:
                    problems.append(Problem(name, key, "is not in the manifest (added after "
                                                       "the upload?)."))
                elif rel not in present:
                    problems.append(Problem(name, key, "is in the manifest but missing."))
                elif sha256_bytes(store.read_bytes(key)) != listed[rel]:
                    problems.append(Problem(name, key, "differs from the sha256 in the "
                                                       "manifest: changed or corrupt."))
    return problems, info


def validate_repository(uri: str, *, settings: Any = None) -> dict[str, Any]:
    """Check every model folder of the repository at ``uri``.

    Returns:
        ``{"uri", "models": {name: {"versions", "manifest"}}, "problems": [Problem]}``;
        no problems means Triton would load every model as kfp-interop uploaded it.

    Raises:
        InvalidInputError: a malformed URI.
        StorageError: the store cannot be read (unreachable, no bucket, no access).
    """
    from kfp_interop.errors import StorageError

    store = open_store(uri, settings=settings)
    with store.guard(f"listing {uri}"):
        try:
            keys = store.list_keys()
        except FileNotFoundError as e:
            raise StorageError(f"Repository {uri!r} does not exist.") from e
    if not keys:
        raise StorageError(f"Repository {uri!r} is empty or does not exist.")
    models: dict[str, list[str]] = {}
    problems: list[Problem] = []
    for key in keys:
        name, sep, _ = key.partition("/")
        if not sep:
            problems.append(Problem("", key, "is a file at the repository root; models are "
                                             "folders (<name>/config.pbtxt, <name>/1/...)."))
            continue
        models.setdefault(name, []).append(key)
    report: dict[str, Any] = {"uri": uri, "models": {}, "problems": problems}
    with store.guard(f"reading {uri}"):
        for name, model_keys in sorted(models.items()):
            found, info = _check_model(store, name, model_keys)
            problems.extend(found)
            report["models"][name] = info
    return report
