"""Running a reference pipeline on this machine through ``kfp.local``: the
SubprocessRunner (tasks in this environment) or the DockerRunner (every task in the
image the compiled YAML names, see :mod:`kfp_interop.runs.containers`). With
:mod:`kfp_interop.runs.cluster`, one of the two library modules that import kfp.

Embedded defaults make a run self-contained: with no S3 or MLflow configured, the model
repository is a folder and the MLflow store a SQLite file, both in the output folder.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import re
import sys
import time
import warnings
from typing import Any

from kfp_interop.runs.summary import build_summary
from kfp_interop.files import atomic_write_json
from kfp_interop.redaction import redact, redact_all

__all__ = ["run_local", "RUNNERS"]


class _Progress:
    """stdout stand-in during a local run: everything goes to the run log; task and
    pipeline status lines also go to the terminal (all of it with --verbose). Whole lines
    are passed on, with the user info of any URI redacted (kfp.local prints every task's
    parameters, and a tracking URI may carry credentials)."""

    KEYS = ("Executing task", "finished with status", "Pipeline '", "Pipeline \x1b")

    def __init__(self, log, terminal, verbose: bool):
        self.log, self.terminal, self.verbose = log, terminal, verbose
        self._buf = ""

    def _line(self, line: str) -> None:
        line = redact(line)
        self.log.write(line)
        if self.verbose or (any(k in line for k in self.KEYS) and not line.startswith(" ")):
            self.terminal.write(line)

    def write(self, text: str) -> int:
        self._buf += text
        while "\n" in self._buf:
            line, self._buf = self._buf.split("\n", 1)
            self._line(line + "\n")
        return len(text)

    def flush(self) -> None:
        self.log.flush()
        self.terminal.flush()

    def close(self) -> None:
        if self._buf:
            self._line(self._buf)
            self._buf = ""
        self.flush()

    def isatty(self) -> bool:
        return False


def _local_stores(params: dict[str, Any], accepted, out_dir: str) -> dict[str, Any]:
    """Embedded defaults: with no S3 or MLflow configured, a local model repository and a
    local MLflow store (SQLite; MLflow 3 refuses its plain file store) in out_dir."""
    if "storage_uri" in accepted and "storage_uri" not in params:
        params = {**params, "storage_uri": os.path.join(out_dir, "model-repository")}
    if "tracking_uri" in accepted and not params.get("tracking_uri") and \
            not os.environ.get("MLFLOW_TRACKING_URI"):
        params = {**params, "tracking_uri": "sqlite:///" + os.path.join(out_dir, "mlflow.db")}
    return params


#: kfp.local runners by name (``kfp-interop run --runner``)
RUNNERS = ("subprocess", "docker")


class _WarmTasks:
    """While a run lasts: kfp.local's SubprocessRunner starts each lightweight Python
    task in a fork of a warm interpreter (:mod:`kfp_interop.runs.warm`), other commands
    as subprocesses as before."""

    def __init__(self):
        from kfp_interop.runs.warm import WarmTasks

        self.tasks = WarmTasks().start()  # its imports overlap the run's start

    def __enter__(self):
        from kfp.local import subprocess_task_handler

        from kfp_interop.runs.warm import warm_command

        saved = self._saved = subprocess_task_handler.run_local_subprocess

        def run(full_command, env_vars=None):
            found = warm_command(full_command)
            if found is None:
                return saved(full_command, env_vars)
            rc = self.tasks.run(*found, {**os.environ, **(env_vars or {})}, sys.stdout)
            if rc is None:  # the warm interpreter is gone: as kfp.local would
                return saved(full_command, env_vars)
            print("\n")  # kfp.local's separator after a task's output
            return rc

        subprocess_task_handler.run_local_subprocess = run
        return self

    def __exit__(self, *exc):
        from kfp.local import subprocess_task_handler

        subprocess_task_handler.run_local_subprocess = self._saved
        self.tasks.close()
        return False


class _DockerTasks:
    """While a run lasts: kfp.local's DockerRunner starts each task through
    :func:`kfp_interop.runs.containers.run_task` (see there why), in ``image``, with the
    host's S3/MLflow settings, the output folder and any file named by a parameter
    mounted at their own paths, and host networking (servers on 127.0.0.1 stay
    reachable). The image's user (uid 1000) must write the output folder: as root it is
    handed to that user for the run and back to its owner after; another user runs the
    tasks as itself."""

    def __init__(self, out_dir: str, params: dict[str, Any], image: str):
        from kfp_interop._version import __version__
        from kfp_interop.runs import containers
        from kfp_interop.pipelines import image_reference

        self.out_dir = out_dir
        self.owner = os.stat(out_dir)
        self.image = image_reference(image)
        self.client = containers.engine()
        try:
            containers.check_image(self.client, self.image, __version__)
        except BaseException:
            self.client.close()
            raise
        self.volumes = {out_dir: {"bind": out_dir, "mode": "rw"}}
        for value in params.values():  # data files named by a parameter, read-only
            if isinstance(value, str) and containers.mountable(value) \
                    and not value.startswith(out_dir + os.sep):
                self.volumes[value] = {"bind": value, "mode": "ro"}
        self.env = containers.task_environment()
        self.run_args: dict[str, Any] = {"network_mode": "host"}
        uid = os.geteuid()
        if uid not in (0, containers.IMAGE_USER[0]):
            self.run_args["user"] = f"{uid}:{os.getegid()}"
            self.env["HOME"] = "/tmp"

    def _chown(self, uid: int, gid: int) -> None:
        for root, dirs, files in os.walk(self.out_dir):
            for n in [root] + [os.path.join(root, f) for f in dirs + files]:
                with contextlib.suppress(FileNotFoundError):
                    os.lchown(n, uid, gid)

    def __enter__(self):
        from kfp.local import docker_task_handler

        from kfp_interop.runs import containers
        from kfp_interop.components._common import IMAGE

        if os.geteuid() == 0:
            self._chown(*containers.IMAGE_USER)

        def task(client, image, command, volumes, **run_args):
            if image.split("@")[0] == IMAGE:
                image = self.image
            return containers.run_task(self.client, image, command, volumes,
                                       base_environment=self.env,
                                       extra_volumes=self.volumes,
                                       **{**run_args, **self.run_args})

        self._saved = docker_task_handler.run_docker_container
        docker_task_handler.run_docker_container = task
        return self

    def __exit__(self, *exc):
        from kfp.local import docker_task_handler

        docker_task_handler.run_docker_container = self._saved
        if os.geteuid() == 0:  # back to the folder's owner
            self._chown(self.owner.st_uid, self.owner.st_gid)
        self.client.close()
        return False


def run_local(name: str, params: dict[str, Any], out_dir: str, *, keep_serving: bool = False,
              verbose: bool = False, profile: str = "local",
              graph: dict | None = None, runner: str = "subprocess",
              image: str = "") -> dict[str, Any]:
    """Run a reference pipeline through kfp.local and write ``out_dir/summary.json``.
    Returns the summary.

    ``runner="subprocess"`` runs each task in this environment; ``"docker"`` runs each
    in its own container of ``image`` (default: the one the compiled YAML names), as the
    image's user, with the command KFP would run, against Docker or podman's
    Docker-compatible socket (``$DOCKER_HOST``). ``profile="cluster"`` runs it with the
    defaults its compiled YAML has (nothing stored or registered unless given): a
    rehearsal of a run started in the Kubeflow UI.

    Raises:
        UnknownNameError: unknown pipeline, profile or runner.
        ContainerEngineError / ContainerImageError: (docker) no engine answers; the
            image is missing or carries another version.
    """
    from kfp_interop.runs.warm import enabled

    warm = _WarmTasks() if runner == "subprocess" and enabled() else None
    try:
        return _run_local(name, params, out_dir, keep_serving=keep_serving,
                          verbose=verbose, profile=profile, graph=graph, runner=runner,
                          image=image, warm=warm)
    finally:
        if warm is not None:
            warm.tasks.close()


def _run_local(name: str, params: dict[str, Any], out_dir: str, *, keep_serving: bool,
               verbose: bool, profile: str, graph: dict | None, runner: str, image: str,
               warm: "_WarmTasks | None") -> dict[str, Any]:
    from kfp import local

    from kfp_interop.deploy import DEPLOY_TARGETS, undeploy
    from kfp_interop.errors import UnknownNameError
    from kfp_interop.pipelines import load
    from kfp_interop.pipelines.common import PROFILES

    if profile not in PROFILES:
        raise UnknownNameError(f"Unknown profile {profile!r}; use one of {sorted(PROFILES)}.")
    if runner not in RUNNERS:
        raise UnknownNameError(f"Unknown runner {runner!r}; use one of {list(RUNNERS)}.")
    func = load(name, graph)
    out_dir = os.path.abspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    accepted = inspect.signature(getattr(func, "pipeline_func", func)).parameters
    params = {**{k: v for k, v in PROFILES[profile].items() if k in accepted}, **params}
    if profile == "local":
        params = _local_stores(params, accepted, out_dir)
    for stale in ("summary.json", "model.onnx", "model.metadata.json"):
        if os.path.exists(os.path.join(out_dir, stale)):
            os.remove(os.path.join(out_dir, stale))
    runs_root = os.path.join(out_dir, "runs")
    os.makedirs(runs_root, exist_ok=True)
    before = set(os.listdir(runs_root))
    log_path = os.path.join(out_dir, "run.log")
    in_containers = _DockerTasks(out_dir, params, image) if runner == "docker" else None
    local.init(runner=local.DockerRunner() if in_containers else
               local.SubprocessRunner(use_venv=False), pipeline_root=runs_root,
               raise_on_error=True)
    how = f"in containers of {in_containers.image}" if in_containers else "locally"
    print(f"Running pipeline {name!r} {how} (log: {log_path})")
    start = time.monotonic()
    status, failure = "succeeded", ""
    real_stdout = sys.stdout
    with open(log_path, "w") as log, warnings.catch_warnings(), \
            (in_containers or warm or contextlib.nullcontext()):
        # kfp.local warns that our image is not a plain Python image and that display
        # names have no local effect: both expected with the SubprocessRunner.
        warnings.filterwarnings("ignore", module=r"kfp\.local")
        sys.stdout = _Progress(log, real_stdout, verbose)
        try:
            func(**params)
        except Exception as e:  # noqa: BLE001 - kfp.local raises RuntimeError on failure
            status = "failed"
            failure = str(e)
            log.write(redact(f"\n{type(e).__name__}: {e}\n"))
        finally:
            sys.stdout.close()
            sys.stdout = real_stdout
    seconds = time.monotonic() - start
    new = sorted(set(os.listdir(runs_root)) - before)
    run_dir = os.path.join(runs_root, new[-1]) if new else None
    summary = build_summary(name, run_dir, out_dir, status, params, seconds, log_path)
    if status == "failed" and not summary.get("failed_task"):
        # the run failed before any task wrote its folder: kfp.local names the task
        match = re.search(r"Inner task failed: '([^']+)'", re.sub(r"\x1b\[[0-9;]*m", "",
                                                                    failure))
        if match:
            summary["failed_task"] = match.group(1)
    if status == "failed" and not summary.get("error"):
        from kfp_interop.runs.summary import failure_reason

        summary["error"] = failure_reason(log_path)
    summary = redact_all(summary)  # no credentials from a URI parameter in the summary
    dep = summary.get("deployment")
    if dep and not DEPLOY_TARGETS.get(dep["target"]).stops_with_local_run:
        dep = None  # a cluster deployment stays: that is what it is for
    if dep and not keep_serving:
        undeploy(dep)
        summary["server_stopped"] = True
    elif dep:
        summary["server_stopped"] = False
    atomic_write_json(os.path.join(out_dir, "summary.json"), summary, sort_keys=False,
                      default=str)
    return summary
