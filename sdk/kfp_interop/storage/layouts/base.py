"""The layout registry: layout name -> function staging a model's files."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from kfp_interop.registry import Registry

if TYPE_CHECKING:  # pragma: no cover
    from kfp_interop.metadata import InferenceMetadata

__all__ = ["LAYOUTS", "Layout", "register_layout"]

#: ``(record, onnx_path, workdir, name, version) -> {key under <name>/: local path}``:
#: stage the runtime's files in ``workdir`` (the record file is added by the caller).
Layout = Callable[["InferenceMetadata", str, str, str, str], dict[str, str]]

LAYOUTS: Registry[Layout] = Registry(
    "storage layout", "Add one with kfp_interop.storage.register_layout(name, fn).",
    entry_point_group="kfp_interop.storage_layouts")


def register_layout(name: str, fn: Layout, *, replace: bool = False) -> Layout:
    return LAYOUTS.register(name, fn, replace=replace)
