"""What every reference pipeline shares, declared once: the export, record and serving
parameters (:data:`SHARED_PARAMETERS`), the tail that uses them (export with the parity
gate -> attach the record -> store -> register -> deploy -> smoke-test -> promote), and
loading data so that KFP's cache follows its content (:func:`load_data_by_content`).

Caching and retries: tasks whose effects live outside the pipeline (upload, register,
deploy, smoke test, promote) never come from KFP's cache, since a cached "passed smoke
test" says nothing about the cluster now; those that talk to S3, MLflow or Kubernetes
retry transient failures with backoff (:data:`RETRY`), on top of the retries the clients
do themselves. Everything else is pure given its inputs and stays cached.

KFP reads a pipeline's parameters from its function's signature, and their descriptions
(what the Kubeflow UI shows) from its docstring's ``Args:``, so
:func:`reference_pipeline` builds both: the pipeline's own parameters, documented in the
body's docstring, then the shared ones (a pipeline may change their defaults). The run's
first task checks the serving settings (:func:`_check`); the body receives the shared
values and that task as one dict, ``serving``, starts its first tasks after
``serving["check"]`` and hands the dict to :func:`export_and_serve`.
"""

import contextlib
import contextvars
import dataclasses
import functools
import inspect
from typing import Any, Callable

from kfp import dsl, kubernetes

from kfp_interop.components import (attach_metadata, check_settings, deploy, export_onnx,
                                    fingerprint_data, load_data, optimize, promote,
                                    register_model, smoke_test, upload_model)
from kfp_interop.constants import DEFAULT_OPSET, DEFAULT_TOLERANCE
from kfp_interop.errors import InvalidInputError

__all__ = ["SHARED_PARAMETERS", "PROFILES", "Compute", "compute_settings", "heavy",
           "fingerprint_of", "reads_storage", "storage_credentials", "S3_SECRET", "S3_ENV",
           "GCS_SECRET", "GCS_KEY_DIR", "GCS_KEY_FILE", "AZURE_SECRET", "AZURE_ENV", "MLFLOW_SECRET",
           "MLFLOW_ENV", "RETRY", "reference_pipeline", "export_and_serve", "optimized",
           "serve_model", "load_data_by_content"]

# S3 credentials reach the tasks that need them as environment variables from this
# Secret (manifests/s3-secret.yaml), never as parameters. Optional: local runs and
# clusters without S3 work without it.
S3_SECRET = "kfp-interop-s3"
S3_ENV = {key: key for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "S3_ENDPOINT",
                               "S3_USE_HTTPS", "AWS_REGION")}
# Google Cloud Storage: a service-account JSON key under the name KServe's storage
# initializer reads (gcloud-application-credentials.json), mounted as a file
# (manifests/gcs-secret.yaml; one Secret for both); the task is told where by
# KFP_INTEROP_GCS_CREDENTIALS, used only when the file is there (so workload identity
# keeps working without the Secret).
GCS_SECRET = "kfp-interop-gcs"
GCS_KEY_DIR = "/var/secrets/kfp-interop-gcs"
GCS_KEY_FILE = "gcloud-application-credentials.json"
# Azure Blob Storage: a connection string, or an account key or SAS token for the URI's
# account, as environment variables (manifests/azure-secret.yaml).
AZURE_SECRET = "kfp-interop-azure"
AZURE_ENV = {key: key for key in ("AZURE_STORAGE_CONNECTION_STRING",
                                  "AZURE_STORAGE_ACCESS_KEY", "AZURE_STORAGE_SAS_TOKEN")}
# MLflow credentials the same way (manifests/mlflow-secret.yaml): basic auth or a token,
# read by the MLflow client from these variables; never in the tracking URI.
MLFLOW_SECRET = "kfp-interop-mlflow"
MLFLOW_ENV = {key: key for key in ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME",
                                   "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN")}
#: KFP retry policy of the tasks that talk to S3, MLflow or Kubernetes.
RETRY = {"num_retries": 3, "backoff_duration": "30s", "backoff_factor": 2.0,
         "backoff_max_duration": "300s"}

#: (name, type, default, description) of the parameters every reference pipeline takes;
#: the descriptions reach the Kubeflow UI through the pipeline's docstring.
SHARED_PARAMETERS: tuple[tuple[str, type, Any, str], ...] = (
    ("opset", int, DEFAULT_OPSET, "highest ONNX opset the exported model may use."),
    ("parity_tolerance", float, DEFAULT_TOLERANCE,
     "largest difference allowed between ONNX Runtime and the native model (parity "
     "gate and smoke test)."),
    ("optimize", str, "none", "after export: none, graph (ONNX Runtime graph "
                              "optimization, portable level), int8-dynamic, int8-static "
                              "(calibrated on the held-out rows) or fp16, behind the "
                              "accuracy gate (docs/optimize.md)."),
    ("max_accuracy_drop", float, 0.01, "the most accuracy (classifiers) or relative error "
                                       "(regressors) optimization may cost on the held-out "
                                       "rows, a fraction (0.01 = one point)."),
    ("model_name", str, "", "serving name, a DNS-1123 label (empty: from the data set and "
                            "framework)."),
    ("model_version", str, "1", "model version, a positive integer."),
    ("storage_uri", str, "", "where to store the model in the Triton layout: "
                             "s3://bucket/prefix, gs://bucket/prefix or "
                             "https://ACCOUNT.blob.core.windows.net/container/prefix "
                             "(credentials from the kfp-interop-s3, -gcs or -azure Secret; "
                             "docs/storage.md) or a folder; empty keeps it as a KFP "
                             "artifact. Required by kserve, seldon and seldon-v2."),
    ("register", bool, True, "register the model in MLflow (a cluster needs tracking_uri "
                             "or MLFLOW_TRACKING_URI in the kfp-interop-mlflow Secret)."),
    ("tracking_uri", str, "", "MLflow tracking URI, without credentials (empty: "
                              "MLFLOW_TRACKING_URI, or a local store off-cluster)."),
    ("deploy_target", str, "local", "local (a server beside the run; on a cluster, inside "
                                    "the smoke-test task), kserve, seldon or seldon-v2."),
    ("namespace", str, "default", "Kubernetes namespace of the deployment."),
    ("canary_percent", int, 0, "traffic for the new model as a canary (0: all of it); "
                               "promoted to 100 after its smoke test passes."),
    ("dry_run", bool, False, "render and validate the manifests, deploy nothing."),
    ("smoke_rows", int, 20, "held-out rows the smoke test sends to the live endpoint."),
    ("serving_runtime", str, "", "kserve only: triton (default) or kfp-interop (the "
                                 "kfp-interop-onnx ServingRuntime in manifests/)."),
    ("serving_cpu", str, "", "CPU request and limit of the model server on a cluster, "
                             "e.g. 2 (empty: 1)."),
    ("serving_memory", str, "", "memory request and limit of the model server on a "
                                "cluster, e.g. 4Gi (empty: 1Gi)."),
    ("serving_gpus", int, 0, "GPUs for the model server on a cluster (nvidia.com/gpu)."),
    ("deploy_options", str, "", "the deploy target's other options as a JSON object, e.g. "
                                '{"replicas": 2} (kfp-interop targets lists them).'),
)

#: Defaults for where a compiled pipeline will run (``kfp-interop compile --profile``):
#: on a cluster, nothing is registered unless the user names an MLflow server, so a run
#: started on the defaults in the Kubeflow UI goes to its end (the local target serves
#: inside the smoke-test task there); ``kfp-interop run --local`` uses the functions'
#: own defaults (registration in a local store).
PROFILES: dict[str, dict[str, Any]] = {"cluster": {"register": False}, "local": {}}


@dataclasses.dataclass(frozen=True)
class Compute:
    """Compile-time task settings: resources of the tasks that train and export
    (``kfp-interop compile --cpu 4 --memory 8Gi --accelerator nvidia.com/gpu:1``), set
    through KFP's task settings: requests equal to limits; an accelerator type and count;
    and the PersistentVolumeClaims mounted into the tasks that read or write storage
    (``--storage-pvc CLAIM``), where ``pvc://CLAIM/...`` reads them."""

    cpu: str = ""
    memory: str = ""
    accelerator: str = ""
    accelerators: int = 0
    claims: tuple[str, ...] = ()

    @classmethod
    def parse(cls, *, cpu: str = "", memory: str = "", accelerator: str = "",
              claims: tuple[str, ...] | list[str] = ()) -> "Compute":
        """From the command line's strings; ``accelerator`` is ``TYPE[:COUNT]``.

        Raises:
            ManifestValidationError / InvalidInputError: a value that is not a quantity
                or a count (named).
        """
        from kfp_interop.deploy.manifests import check_quantity

        if cpu:
            check_quantity(cpu, "cpu")
        if memory:
            check_quantity(memory, "memory")
        kind, _, count = accelerator.partition(":")
        if accelerator and (not kind or (count and not count.isdigit()) or count == "0"):
            raise InvalidInputError(f"accelerator={accelerator!r}: use TYPE[:COUNT], e.g. "
                                    "nvidia.com/gpu:1.")
        from kfp_interop.storage import parse_uri

        for claim in claims:  # a claim name as pvc:// takes it, named when it is not
            parse_uri(f"pvc://{claim}")
        return cls(cpu, memory, kind, int(count or 1) if kind else 0,
                   tuple(sorted(set(claims))))

    def apply(self, task):
        if self.cpu:
            task.set_cpu_request(self.cpu).set_cpu_limit(self.cpu)
        if self.memory:
            task.set_memory_request(self.memory).set_memory_limit(self.memory)
        if self.accelerator:
            task.set_accelerator_type(self.accelerator)
            task.set_accelerator_limit(self.accelerators)
        return task


_COMPUTE: contextvars.ContextVar[Compute] = contextvars.ContextVar("compute",
                                                                    default=Compute())


@contextlib.contextmanager
def compute_settings(compute: Compute | None):
    """While compiling: the resources :func:`heavy` gives the training and export tasks."""
    token = _COMPUTE.set(compute or Compute())
    try:
        yield
    finally:
        _COMPUTE.reset(token)


def heavy(task):
    """A task that trains, exports or optimizes: it gets the compile-time resources (if
    any)."""
    return _COMPUTE.get().apply(task)


def reference_pipeline(*, name: str, description: str,
                       defaults: dict[str, Any] | None = None,
                       without: tuple[str, ...] = ()) -> Callable:
    """``@dsl.pipeline`` for a body ``f(own parameters..., *, serving)``: the compiled
    pipeline takes the body's parameters plus :data:`SHARED_PARAMETERS` (with
    ``defaults`` overriding theirs, and leaving out those named in ``without``)."""
    defaults = dict(defaults or {})
    unknown = (set(defaults) | set(without)) - {p[0] for p in SHARED_PARAMETERS}
    if unknown:
        raise InvalidInputError(f"defaults {sorted(unknown)} are not shared parameters; "
                                f"they are {[p[0] for p in SHARED_PARAMETERS]}.")

    def wrap(body: Callable) -> Any:
        own = [p for p in inspect.signature(body).parameters.values() if p.name != "serving"]
        shared = [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                    default=defaults.get(n, d), annotation=t)
                  for n, t, d, _ in SHARED_PARAMETERS if n not in without]
        signature = inspect.Signature(own + shared)
        own_names = [p.name for p in own]
        documented = _documented(body)
        missing = [n for n in own_names if n not in documented]
        if missing:
            raise InvalidInputError(f"Pipeline {name!r}: parameter(s) {missing} have no line "
                                    "in the docstring's Args section (the Kubeflow UI shows "
                                    "it).")

        @functools.wraps(body)
        def pipeline_func(*args, **kwargs):
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            values = dict(bound.arguments)
            serving = {n: values.pop(n) for n in list(values) if n not in own_names}
            serving["check"] = _check(serving)
            return body(**values, serving=serving)

        pipeline_func.__signature__ = signature
        pipeline_func.__doc__ = (inspect.cleandoc(body.__doc__) + "\n" + "".join(
            f"    {n}: {text}\n" for n, _, _, text in SHARED_PARAMETERS if n not in without))
        del pipeline_func.__wrapped__  # inspect must see the built signature
        return dsl.pipeline(name=name, description=description)(pipeline_func)

    return wrap


def _documented(body: Callable) -> set[str]:
    """The parameter names the body's docstring documents under ``Args:``."""
    import re

    doc = inspect.cleandoc(body.__doc__ or "")
    args = doc.split("Args:", 1)[1] if "Args:" in doc else ""
    return set(re.findall(r"^    ([a-z_][a-z0-9_]*):", args, flags=re.M))


def _check(serving: dict):
    """The run's first task: check_settings over the serving parameters (never cached:
    it checks where the run runs)."""
    check = check_settings(deploy_target=serving["deploy_target"],
                           storage_uri=serving["storage_uri"], register=serving["register"],
                           tracking_uri=serving["tracking_uri"], dry_run=serving["dry_run"],
                           runtime=serving["serving_runtime"], cpu=serving["serving_cpu"],
                           memory=serving["serving_memory"], gpus=serving["serving_gpus"],
                           deploy_options=serving["deploy_options"])
    check.set_caching_options(False)
    check.set_display_name("check settings")
    kubernetes.use_secret_as_env(check, MLFLOW_SECRET, MLFLOW_ENV, optional=True)
    return check


def fingerprint_of(dataset, *, after):
    """fingerprint_data, never cached, ``after`` the settings check: its output, given to
    a cached task that reads ``dataset`` as ``source_fingerprint``, makes that task's
    cache key change exactly when the data set's content does."""
    fingerprint = reads_storage(fingerprint_data(dataset=dataset).after(after))
    fingerprint.set_caching_options(False)
    return fingerprint.outputs["Output"]


def storage_credentials(task):
    """A task that reads or writes object storage gets every scheme's credentials from
    its optional Secret: S3's and Azure's keys as environment variables, GCS's key file
    mounted (bundled data sets, paths and clusters without that storage need none)."""
    kubernetes.use_secret_as_env(task, S3_SECRET, S3_ENV, optional=True)
    kubernetes.use_secret_as_env(task, AZURE_SECRET, AZURE_ENV, optional=True)
    kubernetes.use_secret_as_volume(task, GCS_SECRET, mount_path=GCS_KEY_DIR, optional=True)
    task.set_env_variable("KFP_INTEROP_GCS_CREDENTIALS", f"{GCS_KEY_DIR}/{GCS_KEY_FILE}")
    from kfp_interop.storage.pvc import PVC_ROOT

    for claim in _COMPUTE.get().claims:  # compile --storage-pvc: where pvc:// reads it
        kubernetes.mount_pvc(task, pvc_name=claim, mount_path=f"{PVC_ROOT}/{claim}")
    return task


def reads_storage(task):
    """A task that may read a data set at a storage URI: :func:`storage_credentials`."""
    return storage_credentials(task)


def load_data_by_content(dataset, *, after, **options):
    """fingerprint_data (never cached) -> load_data(source_fingerprint=...)."""
    return reads_storage(load_data(dataset=dataset,
                                   source_fingerprint=fingerprint_of(dataset, after=after),
                                   **options))


def _outside_effects(task, *, retry: bool = True):
    """A task whose effects live outside the pipeline: never cached, retried."""
    task.set_caching_options(False)
    if retry:
        task.set_retry(**RETRY)
    return task


def export_and_serve(trained, test_data, serving: dict):
    """export_onnx -> optimize -> attach_metadata -> :func:`serve_model`, for the model
    of the training task ``trained`` (its ``model`` output, and its sha256 output, which
    travels beside the artifact so the export step can tell a changed artifact from the
    one trained); returns the deploy task."""
    exported = heavy(export_onnx(model=trained.outputs["model"], test_data=test_data,
                                 opset=serving["opset"],
                                 parity_tolerance=serving["parity_tolerance"],
                                 native_sha256=trained.outputs["Output"]))
    better = optimized(exported.outputs["onnx_model"], serving, test_data=test_data)
    attached = attach_metadata(onnx_model=better.outputs["optimized"],
                               model_name=serving["model_name"],
                               model_version=serving["model_version"])
    return serve_model(attached.outputs["model"], test_data, serving)


def optimized(model, serving: dict, *, test_data=None):
    """The optimize task (``serving["optimize"]``; ``none`` passes the model through),
    gated on ``test_data`` (held-out rows) or the model folder's own sample."""
    inputs = {"test_data": test_data} if test_data is not None else {}
    task = heavy(optimize(model=model, mode=serving["optimize"],
                          max_accuracy_drop=serving["max_accuracy_drop"], **inputs))
    return task


def serve_model(final, test_data, serving: dict):
    """upload_model -> register_model -> deploy -> smoke_test -> promote, for a model
    folder with its record (``test_data`` None: the smoke test sends the model's own
    sample); returns the deploy task."""
    # the layout the deploy target reads (seldon with implementation MLFLOW_SERVER:
    # mlserver; the others: triton)
    stored = upload_model(model=final, storage_uri=serving["storage_uri"], layout="",
                          name=serving["model_name"], dry_run=serving["dry_run"],
                          deploy_target=serving["deploy_target"],
                          deploy_options=serving["deploy_options"])
    storage_credentials(_outside_effects(stored))
    registered = register_model(model=final, register=serving["register"],
                                tracking_uri=serving["tracking_uri"],
                                name=serving["model_name"])
    kubernetes.use_secret_as_env(_outside_effects(registered), MLFLOW_SECRET, MLFLOW_ENV,
                                 optional=True)
    deployed = deploy(model=final, target=serving["deploy_target"], name=serving["model_name"],
                      namespace=serving["namespace"], storage_uri=stored.outputs["Output"],
                      canary_percent=serving["canary_percent"], dry_run=serving["dry_run"],
                      runtime=serving["serving_runtime"], cpu=serving["serving_cpu"],
                      memory=serving["serving_memory"], gpus=serving["serving_gpus"],
                      deploy_options=serving["deploy_options"])
    _outside_effects(deployed)
    # a failed smoke test is an answer, not a transient fault: no retry
    smoke_inputs = {"test_data": test_data} if test_data is not None else {}
    smoked = _outside_effects(smoke_test(deployment=deployed.outputs["deployment"], model=final,
                                         rows=serving["smoke_rows"],
                                         tolerance=serving["parity_tolerance"],
                                         **smoke_inputs), retry=False)
    promoted = promote(deployment=deployed.outputs["deployment"],
                       registration=registered.outputs["registration"],
                       tracking_uri=serving["tracking_uri"]).after(smoked)
    kubernetes.use_secret_as_env(_outside_effects(promoted), MLFLOW_SECRET, MLFLOW_ENV,
                                 optional=True)
    return deployed
