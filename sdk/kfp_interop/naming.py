"""Names every serving platform accepts: a model's serving name is a Kubernetes object
name (an RFC 1123 DNS label), a model folder name and a registry name at once."""

from __future__ import annotations

import os
import re

from kfp_interop.errors import ManifestValidationError

__all__ = ["DNS1123_LABEL", "check_name", "default_model_name", "name_from_path"]

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def check_name(name: str, what: str = "name") -> str:
    """Return ``name`` if it is an RFC 1123 DNS label, else raise.

    Raises:
        ManifestValidationError: names the value and the rule.
    """
    if not isinstance(name, str) or len(name) > 63 or not DNS1123_LABEL.match(name):
        raise ManifestValidationError(
            f"{what} {name!r} is not a DNS-1123 label: use at most 63 lowercase letters, "
            "digits and '-', starting and ending with a letter or digit (e.g. 'iris-rf').")
    return name


def default_model_name(dataset: str, framework: str) -> str:
    """A DNS-1123 serving name derived from the data set and framework."""
    base = (os.path.splitext(os.path.basename(dataset))[0]
            if os.sep in dataset or "." in dataset else dataset)
    name = re.sub(r"[^a-z0-9-]+", "-", f"{base}-{framework}".lower()).strip("-")
    return name[:63].rstrip("-") or "model"


def name_from_path(path: str) -> str:
    """A DNS-1123 serving name from a file name (``My Model_v2.onnx`` -> ``my-model-v2``)."""
    stem = os.path.splitext(os.path.basename(os.path.normpath(path)))[0]
    return re.sub(r"[^a-z0-9-]+", "-", stem.lower()).strip("-")[:63].rstrip("-") or "model"
