"""The versions of the packages installed here, as pip pins: what a model served
elsewhere must install to run as it was checked here (MLflow's registration, Acumos's
onboarding metadata). Read from the installed distributions' metadata: nothing is
imported."""

from __future__ import annotations

__all__ = ["installed_pins", "SERVING_PACKAGES"]

#: what running an ONNX model needs; each entry lists alternative distributions of one
#: package (the first installed one is pinned)
SERVING_PACKAGES: tuple[tuple[str, ...], ...] = (("numpy",), ("onnx",),
                                                 ("onnxruntime", "onnxruntime-gpu"))


def installed_pins(packages: tuple[tuple[str, ...], ...] = SERVING_PACKAGES
                   ) -> list[tuple[str, str]]:
    """``(distribution, version)`` of each package, the first of its alternatives that
    is installed; a package with none installed is left out."""
    from importlib.metadata import PackageNotFoundError, version

    pins = []
    for names in packages:
        for name in names:
            try:
                pins.append((name, version(name)))
                break
            except PackageNotFoundError:
                continue
    return pins
