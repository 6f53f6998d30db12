"""The Kubernetes deploy flow, once for every custom-resource target:

1. render the manifest from the model's record and validate it: admission rules, and
   the CRD's strict JSON Schema shipped with the package (``deploy/schemas/``; or those
   in the folder ``$KFP_INTEROP_CRD_SCHEMAS`` names), so a dry run refuses what the API
   server would;
2. dry run: write ``<output_dir>/<target>.yaml``, print it, stop;
3. apply with the official ``kubernetes`` client: create, or patch when it exists;
4. wait for Ready from the real status (fail fast on a reported failure);
5. do not trust Ready alone: the endpoint must answer ``/v2/models/{name}/ready`` and its
   metadata must match the record;
6. on a timeout or a wrong answer, roll back (delete what was created, or restore the
   previous spec) and raise.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from typing import Any, Callable, ClassVar

from kfp_interop.deploy.base import DeployTarget, TargetOption
from kfp_interop.deploy.kube_api import CustomObjects, api_client
from kfp_interop.deploy.manifests import (KubernetesSpec, clean_object, crd_schema,
                                          merge_patch, validate_schema, write_yaml)
from kfp_interop.errors import DeployError, DeployTimeoutError, KubernetesAPIError
from kfp_interop.naming import check_name

__all__ = ["KubernetesTarget", "custom_objects"]


def custom_objects(client: Any = None, kubeconfig: str | None = None) -> CustomObjects:
    """A :class:`CustomObjects` from one, an ``ApiClient``, or the environment."""
    if isinstance(client, CustomObjects):
        return client
    return CustomObjects(client or api_client(kubeconfig=kubeconfig))


def _record_of(model: str | None):
    if not model:
        return None
    from kfp_interop.metadata import load_metadata
    from kfp_interop.onnx_model import find_onnx

    return load_metadata(find_onnx(model))


class KubernetesTarget(DeployTarget):
    """A deploy target backed by one custom resource kind, described by ``spec``."""

    renders_manifests = True

    def __init__(self, spec: type[KubernetesSpec]):
        self.spec = spec
        self.name = spec.target

    #: the spec fields every Kubernetes target has: set by the deploy call, not options
    COMMON: ClassVar[frozenset] = frozenset({"name", "namespace", "storage_uri",
                                             "canary_percent", "onnx_sha256"})

    def options(self) -> dict[str, TargetOption]:
        """The spec's own fields (resources, replicas, runtime, service account, ...)."""
        return {f.name: TargetOption(f.name, {"str": str, "int": int, "bool": bool}.get(
                    f.type if isinstance(f.type, str) else f.type.__name__, str), f.default)
                for f in dataclasses.fields(self.spec) if f.name not in self.COMMON}

    def check_options(self, given: dict[str, Any]) -> dict[str, Any]:
        """Typed as the spec declares them, compute options checked as the spec checks
        them (:func:`~kfp_interop.deploy.manifests.check_compute`), so a run stops before
        its first task."""
        from kfp_interop.deploy.manifests import check_compute

        checked = super().check_options(given)
        check_compute(checked)
        return checked

    def layout(self, options: dict | None = None) -> str:
        return self.spec.layout_for(options or {})

    # -- render ---------------------------------------------------------------------------
    def render(self, model: str | None = None, *, name: str = "", namespace: str = "default",
               storage_uri: str = "", canary_percent: int = 0, record=None,
               **options: Any) -> tuple[KubernetesSpec, dict]:
        """``(spec, manifest)``; name and sha256 default to the model's record
        (``record``, or read from ``model``). Validated before it is returned."""
        record = record if record is not None else _record_of(model)
        sha = ""
        if record is not None:
            name = name or record.name
            sha = record.model["onnx_sha256"]
        options = self.check_options(options)
        if storage_uri and name:
            storage_uri = self.spec.storage_for(storage_uri, name, options)
        spec = self.spec(name=name, namespace=namespace, storage_uri=storage_uri,
                         canary_percent=canary_percent, onnx_sha256=sha, **options)
        manifest = spec.to_manifest()
        self.validate(manifest, crd_schema(spec.resource))
        return spec, manifest

    def validate(self, manifest: dict, schema: dict | None = None) -> None:
        """Admission rules (always) and, given a CRD JSON Schema, the schema too."""
        check_name(manifest.get("metadata", {}).get("name", ""), "metadata.name")
        self.spec.admit(manifest)
        if schema is not None:
            validate_schema(manifest, schema)

    # -- deploy ---------------------------------------------------------------------------
    def deploy(self, model: str | None, *, name: str = "", namespace: str = "default",
               storage_uri: str = "", canary_percent: int = 0, dry_run: bool = False,
               output_dir: str | None = None, timeout: float = 600.0, endpoint: str = "",
               port: int = 0, kubeconfig: str | None = None, client: Any = None,
               log: Callable[[str], None] = print, poll: float = 2.0,
               answer_timeout: float = 60.0, **options: Any) -> dict:
        """Render, validate, (dry run or) apply, wait for Ready, confirm, roll back on
        failure.

        Args:
            model: the model folder or ONNX file with its record.
            storage_uri: where the model was uploaded (the repository root).
            canary_percent: 0, or the share of traffic the new version gets.
            dry_run: only write ``<output_dir>/<target>.yaml`` (no cluster needed).
            client: a ``kubernetes.client.ApiClient`` or :class:`CustomObjects`
                (default: in-cluster config, else ``kubeconfig``).
            endpoint: override the OIP base URL read from the status (e.g. an ingress).
            options: spec fields of this target (service_account, implementation, cpu, ...).

        Returns:
            The deployment: target, name, namespace, endpoint, manifest, created,
            previous, canary_percent, manifest_path (dry run).

        Raises:
            ManifestValidationError, KubernetesPermissionError (403),
            KubernetesNotFoundError (404), KubernetesAPIError, DeployTimeoutError,
            DeployError.
        """
        record = _record_of(model)
        api, live = None, None
        if not dry_run and self.spec.needs_live(options, canary_percent):
            api = custom_objects(client, kubeconfig)
            live = api.get(self.spec.resource, namespace,
                           name or (record.name if record else ""))
            options = self.spec.options_from_live(dict(options), live, canary_percent)
        spec, manifest = self.render(name=name, namespace=namespace, storage_uri=storage_uri,
                                     canary_percent=canary_percent, record=record, **options)
        res = spec.resource
        info: dict[str, Any] = {"target": self.name, "name": spec.name,
                                "model_name": spec.name, "namespace": namespace,
                                "canary_percent": canary_percent, "manifest": manifest,
                                "resource": dataclasses.asdict(res), "dry_run": dry_run}
        if dry_run:
            import yaml

            path = write_yaml(manifest, os.path.join(output_dir or ".", f"{self.name}.yaml"))
            log(f"# dry run: {self.name} manifest written to {path}\n"
                + yaml.safe_dump(manifest, sort_keys=False))
            info.update(manifest_path=path, endpoint=None)
            return info
        api = api or custom_objects(client, kubeconfig)
        previous = live if live is not None else api.get(res, namespace, spec.name)
        if previous is None:
            try:
                api.create(res, namespace, manifest)
                info["created"] = True
            except KubernetesAPIError as e:
                if e.status != 409:
                    raise
                previous = api.get(res, namespace, spec.name)  # created meanwhile: patch it
                if previous is None:
                    raise KubernetesAPIError(f"Conflict creating {res.kind} {namespace}/"
                                             f"{spec.name} ({e}), yet it does not exist; "
                                             "retry the deployment.", 409) from e
        if previous is not None:
            api.patch(res, namespace, spec.name, spec.patch_for(manifest))
            info.update(created=False, previous=clean_object(previous))
        log(f"{'created' if info['created'] else 'patched'} {res.kind} {namespace}/{spec.name}")
        try:
            obj = self._wait_ready(api, spec, namespace, timeout, poll)
            info["endpoint"] = (endpoint or spec.endpoint(obj) or "").rstrip("/")
            if not info["endpoint"]:
                raise DeployError(f"{res.kind} {spec.name!r} is Ready but reports no URL; "
                                  "pass the inference endpoint explicitly.")
            self._confirm_answers(info["endpoint"], spec.name, record, answer_timeout,
                                  spec.request_headers(spec.name),
                                  grpc=getattr(spec, "protocol", "v2") == "grpc-v2")
        except DeployError as e:
            action = self.rollback(info, client=api)
            e.args = (f"{e} Rolled back: {action}.",)
            e.deployment = info
            raise
        log(f"{res.kind} {namespace}/{spec.name} is Ready and answers at {info['endpoint']}")
        return info

    @staticmethod
    def _wait_ready(api: CustomObjects, spec: KubernetesSpec, namespace: str,
                    timeout: float, poll: float) -> dict:
        end = time.monotonic() + timeout
        while True:
            obj = api.get(spec.resource, namespace, spec.name) or {}
            ready, failure = spec.readiness(obj)
            if ready:
                return obj
            if failure:
                raise DeployError(f"{spec.resource.kind} {namespace}/{spec.name}: {failure}")
            if time.monotonic() >= end:
                raise DeployTimeoutError(
                    f"{spec.resource.kind} {namespace}/{spec.name} was not Ready within "
                    f"{timeout:g} s (status: {json.dumps(obj.get('status') or {})[:300]}).")
            time.sleep(poll)

    @staticmethod
    def _confirm_answers(endpoint: str, name: str, record, timeout: float,
                         headers: dict | None, grpc: bool = False) -> None:
        """The endpoint serves *this* model: ready, and metadata equal to the record
        (over gRPC for a ``grpc-v2`` deployment)."""
        from kfp_interop.serving.client import (grpc_wait_metadata, http_json,
                                                metadata_mismatches, wait_model_ready)

        if grpc:
            meta, problem = grpc_wait_metadata(endpoint, name, timeout=timeout,
                                               headers=headers)
            if problem is not None:
                raise DeployError(f"{endpoint} reports Ready but model {name!r} does not "
                                  f"answer over gRPC ({problem}).")
            diffs = metadata_mismatches(meta, record) if record is not None else []
            if diffs:
                raise DeployError(f"{endpoint} serves a model {name!r} whose {diffs} differ "
                                  "from the record: another model is behind this name.")
            return
        problem = wait_model_ready(endpoint, name, timeout=timeout, headers=headers)
        if problem is not None:
            raise DeployError(f"{endpoint} reports Ready but model {name!r} does not answer "
                              f"({problem}).")
        if record is None:
            return
        status, meta = http_json("GET", f"{endpoint}/v2/models/{name}", timeout=5,
                                 headers=headers)
        if status != 200 or not isinstance(meta, dict):
            raise DeployError(f"{endpoint}: model metadata answered {status}: {meta}")
        diffs = metadata_mismatches(meta, record)
        if diffs:
            raise DeployError(f"{endpoint} serves a model {name!r} whose {diffs} differ from "
                              "the record: another model is behind this name.")

    # -- after deploy ---------------------------------------------------------------------
    def rollback(self, deployment: dict, *, client: Any = None) -> str:
        """Delete what the deployment created, or restore the previous spec."""
        api = custom_objects(client)
        res, ns, name = self.spec.resource, deployment["namespace"], deployment["name"]
        if deployment.get("created"):
            api.delete(res, ns, name)
            return f"deleted the new {res.kind} {ns}/{name}"
        previous = deployment.get("previous")
        if previous:
            current = clean_object(api.get(res, ns, name) or {})
            patch = merge_patch(current.get("spec") or {}, previous.get("spec") or {})
            if patch:
                api.patch(res, ns, name, {"spec": patch})
            return f"restored the previous spec of {res.kind} {ns}/{name}"
        return "nothing to roll back"

    def promote(self, deployment: dict, *, client: Any = None) -> dict:
        if not deployment.get("canary_percent") or deployment.get("dry_run"):
            return deployment
        patch = self.spec.promote_patch(deployment["manifest"])
        if patch:
            custom_objects(client).patch(self.spec.resource, deployment["namespace"],
                                         deployment["name"], patch)
        return {**deployment, "canary_percent": 0, "promoted": True}

    def delete(self, name: str, namespace: str = "default", *, client: Any = None,
               kubeconfig: str | None = None) -> bool:
        check_name(name)
        return custom_objects(client, kubeconfig).delete(self.spec.resource, namespace, name)

    def undeploy(self, deployment: dict, *, client: Any = None) -> bool:
        if deployment.get("dry_run"):
            return False
        return self.delete(deployment["name"], deployment["namespace"], client=client)
