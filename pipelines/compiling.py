"""Compiling pipelines and components to KFP IR YAML, with the image reference the
tasks run, and writing the ServingRuntime manifests beside them."""

from __future__ import annotations

import os
import re

from kfp_interop.pipelines.loading import load
from kfp_interop.pipelines.registry import PIPELINES

__all__ = ["compile_pipeline", "compile_all", "image_reference", "IMAGE_ENV",
           "SERVING_IMAGE_ENV"]


#: ``kfp-interop compile --image`` / ``$KFP_INTEROP_IMAGE``: a private registry's copy
#: of the image, by tag or (better, immutable) by digest
IMAGE_ENV = "KFP_INTEROP_IMAGE"
SERVING_IMAGE_ENV = "KFP_INTEROP_SERVING_IMAGE"
_IMAGE_REF = re.compile(r"^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)+"
                        r"(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[0-9a-f]{64})?$")


def image_reference(image: str = "", *, serving: bool = False) -> str:
    """The image the compiled tasks run: ``image``, else ``$KFP_INTEROP_IMAGE``, else the
    release's own (tagged with the package version). ``serving``: the ServingRuntime's
    image instead (``$KFP_INTEROP_SERVING_IMAGE``, else the release's serving image).

    Raises:
        InvalidInputError: not an image reference (``registry/repo:tag`` or
            ``registry/repo@sha256:<64 hex>``).
    """
    from kfp_interop._version import __version__
    from kfp_interop.components._common import IMAGE
    from kfp_interop.constants import SERVING_IMAGE_REPOSITORY
    from kfp_interop.errors import InvalidInputError

    image = image or os.environ.get(SERVING_IMAGE_ENV if serving else IMAGE_ENV, "")
    if not image:
        return f"{SERVING_IMAGE_REPOSITORY}:{__version__}" if serving else IMAGE
    if not _IMAGE_REF.match(image) or ("@" not in image and ":" not in image.rsplit("/", 1)[-1]):
        raise InvalidInputError(
            f"Image {image!r} is not an image reference with a tag or digest: use "
            "registry.example.com/ml/kfp-interop@sha256:<64 hex> (or :<tag>).")
    return image


def _write(obj, output: str, *, pipeline_parameters: dict | None, image: str) -> str:
    """Compile ``obj`` to ``output`` (atomically), with the image reference swapped in."""
    from kfp import compiler

    from kfp_interop.components._common import IMAGE
    from kfp_interop.files import atomic_path, atomic_write

    with atomic_path(output, suffix=".yaml") as tmp:  # the compiler picks the format by suffix
        compiler.Compiler().compile(obj, tmp, pipeline_parameters=pipeline_parameters)
        with open(tmp) as f:
            text = f.read()
    if image != IMAGE:
        text = text.replace(f"image: {IMAGE}\n", f"image: {image}\n")
    atomic_write(output, text)
    return os.fspath(output)


def compile_pipeline(name: str, output: str, *, profile: str = "cluster",
                     image: str = "", compute=None, graph: dict | None = None,
                     defaults: dict | None = None) -> str:
    """Compile a reference pipeline (or ``path/file.py:function``) to KFP IR YAML at
    ``output``, with the defaults of ``profile`` (see
    :data:`kfp_interop.pipelines.common.PROFILES`) and the image of
    :func:`image_reference`; ``compute`` (a
    :class:`~kfp_interop.pipelines.common.Compute`) sets the resources of the tasks that
    train and export; ``graph`` the parameters that shape the graph (e.g. rounds);
    ``defaults`` other parameters' defaults. Two compiles give the same bytes.

    Raises:
        UnknownNameError: unknown pipeline or profile.
    """
    import inspect

    from kfp_interop.errors import UnknownNameError
    from kfp_interop.pipelines.common import PROFILES, compute_settings

    if profile not in PROFILES:
        raise UnknownNameError(f"Unknown profile {profile!r}; use one of {sorted(PROFILES)}.")
    func = load(name, graph)
    params = inspect.signature(getattr(func, "pipeline_func", func)).parameters
    defaults = {**{k: v for k, v in PROFILES[profile].items() if k in params},
                **(defaults or {})}
    if compute is not None and compute != type(compute)():
        # KFP builds a pipeline's graph when it is decorated: build it again with the
        # resources in effect
        from kfp import dsl

        with compute_settings(compute):
            func = dsl.pipeline(name=func.component_spec.name,
                                description=func.component_spec.description)(func.pipeline_func)
    return _write(func, output, pipeline_parameters=defaults or None,
                  image=image_reference(image))


def compile_all(output_dir: str, *, profile: str = "cluster", image: str = "",
                compute=None, serving_image: str = "") -> list[str]:
    """Every reference pipeline to ``<output_dir>/pipelines/<name>.yaml``, every
    component to ``<output_dir>/components/<name>/component.yaml`` and the
    ServingRuntimes (on ``serving_image``) to ``<output_dir>/manifests/`` (the
    repository's own layout); returns the paths written."""
    from kfp_interop.components import COMPONENTS

    image = image_reference(image)
    serving_image = image_reference(serving_image, serving=True)
    written = []
    for name, component in COMPONENTS.items():
        path = os.path.join(output_dir, "components", name, "component.yaml")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        written.append(_write(component, path, pipeline_parameters=None, image=image))
    for name in PIPELINES.names():
        path = os.path.join(output_dir, "pipelines", f"{name}.yaml")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        written.append(compile_pipeline(name, path, profile=profile, image=image,
                                        compute=compute))
    for cluster, fname in ((False, "servingruntime.yaml"), (True, "clusterservingruntime.yaml")):
        written.append(_write_runtime(os.path.join(output_dir, "manifests", fname),
                                      cluster=cluster, image=serving_image))
    return written


def _write_runtime(path: str, *, cluster: bool, image: str) -> str:
    """kfp-interop's KServe (Cluster)ServingRuntime on ``image``."""
    import yaml

    from kfp_interop.deploy.kserve import serving_runtime
    from kfp_interop.files import atomic_write

    os.makedirs(os.path.dirname(path), exist_ok=True)
    kind = "ClusterServingRuntime" if cluster else "ServingRuntime"
    head = (f"# kfp-interop's server as a KServe {kind} (generated by kfp-interop compile "
            "--all;\n# edit the image with --image). InferenceServices pick it with "
            "runtime: kfp-interop-onnx.\n")
    atomic_write(path, head + yaml.safe_dump(serving_runtime(cluster=cluster, image=image),
                                             sort_keys=False))
    return path
