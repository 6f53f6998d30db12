"""Warm task processes for ``kfp-interop run --local`` (kfp.local's SubprocessRunner).

Under kfp.local every task is a fresh ``python -m kfp.dsl.executor_main``: for the
``tabular`` pipeline that is eleven interpreters, each importing kfp, NumPy, pandas,
scikit-learn, ONNX, ONNX Runtime or MLflow before its own work starts, which for most
tasks costs more than the work (benchmarks/pipeline.py measures it). Here one helper
process (a "zygote", as Android and uWSGI call it) imports those once, in the
background while the run starts, and forks one child per task. The child is a new
process as far as the task can tell (its own memory, environment, working folder,
stdout and exit code) running exactly the command KFP compiled, only without paying
for the imports again.

Only the command KFP writes for a lightweight Python component (the
``sh -ec 'program_path=$(mktemp -d) ...' SOURCE ARGS`` of
``kfp.dsl.component_factory``, matched exactly) runs warm; anything else
(``packages_to_install``, container components) runs as a subprocess, as kfp.local
would. ``KFP_INTEROP_WARM_TASKS=0`` turns warm tasks off.

Why not kfp.local alone: it has no hook for re-using an interpreter, and its
SubprocessRunner cannot be told to skip imports. Why fork and not one long-lived
interpreter running tasks in turn: a task's module state, environment changes, open
files and leaks end with its process, as under kfp.local and in a pod.

The protocol on the Unix socket between the run and the zygote: a request is an 8-byte
length (sent with the write end of a pipe for the task's output, ``SCM_RIGHTS``) and
that many bytes of JSON ``{"argv", "env", "cwd"}``; the answer one JSON line
``{"rc": N}``.
"""

from __future__ import annotations

import json
import os
import re
import socket
import struct
import subprocess
import sys
import threading
from typing import Any

__all__ = ["WarmTasks", "warm_command", "PRELOAD", "enabled"]

#: what the zygote imports, in this order: kfp's executor first (every task needs it),
#: then what the built-in steps import, roughly in the order the tabular pipeline's
#: tasks need them. ``module:function`` also calls the function (a cache the tasks
#: would each fill again). Each entry is optional: one that fails to import is skipped
#: and a task imports what it needs itself. Tasks are forked as soon as the first two
#: are in; the rest load while tasks run (see :func:`_serve`).
PRELOAD = (
    "kfp.dsl.executor_main", "kfp_interop.steps",
    "numpy", "pandas", "pyarrow.parquet", "kfp_interop.data",
    "sklearn.ensemble", "sklearn.linear_model", "sklearn.model_selection",
    "sklearn.metrics", "kfp_interop.frameworks.sklearn:_skops_io", "kfp_interop.training",
    "onnx", "onnxruntime", "skl2onnx", "kfp_interop.export", "kfp_interop.metadata",
    "kfp_interop.serving.app", "kfp_interop.deploy", "kfp_interop.storage",
    "mlflow", "mlflow.store.tracking.sqlalchemy_store", "kfp_interop.model_registry.mlflow",
    # MLflow maps every installed distribution to its modules on each log_model (about a
    # second); the map is of this environment, which a task does not change
    "mlflow.utils.requirements_utils:_init_modules_to_packages_map",
)
#: what must be in before the first fork
_FIRST = 2

#: environment variables that libraries read when they are imported (thread pools,
#: backends, the interpreter's own): a task that sets one to something else than the
#: run's value runs as a subprocess, where the imports see it
IMPORT_TIME_VARIABLES = ("OMP_", "OPENBLAS_", "MKL_", "NUMEXPR_", "VECLIB_", "KMP_",
                         "GOTO_", "KERAS_", "TF_", "CUDA_", "ORT_", "PYTHON", "LD_")

# the script KFP's component_factory writes for a lightweight component, with the
# interpreter kfp.local substituted for python3
_SCRIPT = re.compile(
    r'\s*program_path=\$\(mktemp -d\)\s+'
    r'printf "%s" "\$0" > "\$program_path/ephemeral_component\.py"\s+'
    r'_KFP_RUNTIME=true (?P<python>\S+) -m kfp\.dsl\.executor_main\s+'
    r'--component_module_path\s+"\$program_path/ephemeral_component\.py"\s+"\$@"\s*')


def enabled() -> bool:
    return os.environ.get("KFP_INTEROP_WARM_TASKS", "1").strip().lower() not in (
        "0", "false", "no", "off")


def warm_command(full_command: list[str]) -> tuple[str, list[str]] | None:
    """``(component source, executor arguments)`` when ``full_command`` is KFP's
    command for a lightweight Python component run by this interpreter, else None."""
    if len(full_command) < 4 or full_command[:2] != ["sh", "-ec"]:
        return None
    match = _SCRIPT.fullmatch(full_command[2])
    if not match or match.group("python") not in (sys.executable, "python3"):
        return None
    return full_command[3], list(full_command[4:])


class WarmTasks:
    """The run's side: start the zygote (:meth:`start`), run tasks in it (:meth:`run`),
    stop it (:meth:`close`). A zygote that died is not restarted: tasks then run as
    subprocesses (``run`` returns None)."""

    def __init__(self, preload: tuple[str, ...] = PRELOAD):
        self.preload = preload
        self._env: dict[str, str] = {}
        self._proc: subprocess.Popen | None = None
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()

    def start(self) -> "WarmTasks":
        self._env = dict(os.environ)  # what the zygote's imports see
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "kfp_interop.runs.warm", str(theirs.fileno()),
                 *self.preload], pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        except OSError:
            ours.close()
            return self
        finally:
            theirs.close()
        self._sock = ours
        return self

    def run(self, source: str, args: list[str], env: dict[str, str], out) -> int | None:
        """Run one task in a fork of the zygote, its output written line by line to
        ``out``; its exit code, or None when it must run as a subprocess (nothing ran):
        the zygote is gone, or ``env`` changes a variable libraries read on import."""
        changed = {k for k in set(env) | set(self._env) if env.get(k) != self._env.get(k)}
        if any(k.startswith(IMPORT_TIME_VARIABLES) for k in changed):
            return None
        with self._lock:
            if self._sock is None:
                return None
            read_end, write_end = os.pipe()
            payload = json.dumps({"argv": [source, *args], "env": env,
                                  "cwd": os.getcwd()}).encode()
            try:
                socket.send_fds(self._sock, [struct.pack("!Q", len(payload))], [write_end])
                self._sock.sendall(payload)
            except OSError:
                os.close(read_end)
                self._gone()
                return None
            finally:
                os.close(write_end)
            with os.fdopen(read_end, "r", errors="replace") as lines:
                for line in lines:
                    out.write(line)
            answer = _read_line(self._sock)
            if answer is None:
                self._gone()
                return 1  # its exit code went with the zygote: counted as a failure
            return int(json.loads(answer)["rc"])

    def _gone(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def close(self) -> None:
        """Stop the zygote. No task runs by then (:meth:`run` waits for each), so it is
        killed rather than left to finish the imports it may still be doing."""
        self._gone()
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            self._proc = None

    def __enter__(self) -> "WarmTasks":
        return self.start()

    def __exit__(self, *exc) -> bool:
        self.close()
        return False


def _read_line(sock: socket.socket) -> str | None:
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(4096)
        if not chunk:
            return None
        data += chunk
    return data.decode()


def _read_exactly(sock: socket.socket, n: int) -> bytes | None:
    data = b""
    while len(data) < n:
        chunk = sock.recv(min(1 << 20, n - len(data)))
        if not chunk:
            return None
        data += chunk
    return data


# -- the zygote ---------------------------------------------------------------------------

def _preload(entry: str) -> None:
    import importlib

    name, _, function = entry.partition(":")
    try:
        module = importlib.import_module(name)
        if function:
            getattr(module, function)()
    except Exception:  # noqa: BLE001 - not installed or broken: the task will say
        pass


def _child(sock: socket.socket, out_fd: int, request: dict[str, Any]) -> int:
    """In the forked child: become the task (KFP's script, in Python); returns its exit
    code (the child then leaves through :func:`_exit`)."""
    code = 1
    try:
        sock.close()
        os.dup2(out_fd, 1)
        os.dup2(out_fd, 2)
        os.close(out_fd)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        sys.stdin = open(0, closefd=False)
        sys.stdout = open(1, "w", buffering=1, closefd=False)
        sys.stderr = open(2, "w", buffering=1, closefd=False)
        import runpy
        import tempfile

        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        os.environ["_KFP_RUNTIME"] = "true"
        source, *args = request["argv"]
        program = os.path.join(tempfile.mkdtemp(), "ephemeral_component.py")
        with open(program, "w") as f:
            f.write(source)
        sys.argv = ["-m", "--component_module_path", program, *args]
        sys.path[0] = request["cwd"]  # as ``python -m`` sets it
        try:
            runpy.run_module("kfp.dsl.executor_main", run_name="__main__", alter_sys=True)
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
            if not isinstance(e.code, (int, type(None))):
                print(e.code, file=sys.stderr)
    except BaseException:  # noqa: BLE001 - a task's failure is its exit code
        import traceback

        traceback.print_exc()
        code = 1
    return code


def _exit(code: int) -> None:
    """End a forked task as an interpreter's exit would for Python code (the task's
    non-daemon threads joined, atexit handlers run, every open file flushed), then
    ``os._exit``, as multiprocessing's forked children end (the zygote's own objects are
    frozen out of the walk, see :func:`_serve`): C++ destructors of libraries
    the zygote loaded would otherwise join thread pools of the zygote's that do not exist
    in the child (ONNX Runtime aborts with "No such process")."""
    import atexit
    import gc
    import io
    import threading

    try:
        threading._shutdown()  # type: ignore[attr-defined] - what interpreter exit calls
        atexit._run_exitfuncs()
        for obj in gc.get_objects():
            if isinstance(obj, io.IOBase) and not obj.closed:
                try:
                    obj.flush()
                except Exception:  # noqa: BLE001 - a broken pipe or a read-only file
                    pass
    finally:
        os._exit(code)


def _answer(sock: socket.socket, pid: int) -> None:
    """(a thread) Wait for the task's process and send its exit code."""
    _, status = os.waitpid(pid, 0)
    rc = os.waitstatus_to_exitcode(status)
    try:
        sock.sendall(json.dumps({"rc": rc if rc >= 0 else 128 - rc}).encode() + b"\n")
    except OSError:
        pass  # the run is gone


def _serve(fd: int, modules: list[str]) -> None:
    """Preload, fork a child per request. Imports happen only on this thread and never
    while a fork is pending: the first ``_FIRST`` entries before anything, then one
    entry at a time whenever no request waits, so a task starts at once and the rest of
    the imports overlap it (on the other core). A thread per task waits for its process
    and answers, so an import in progress does not delay the answer."""
    import gc
    import select

    sock = socket.socket(fileno=fd)
    pending = list(modules)
    for entry in pending[:_FIRST]:
        _preload(entry)
    del pending[:_FIRST]
    while True:
        if pending and not select.select([sock], [], [], 0)[0]:
            _preload(pending.pop(0))
            continue
        try:
            head, fds, _, _ = socket.recv_fds(sock, 8, 1)
        except OSError:
            return
        if not head:
            return  # the run closed its end
        rest = _read_exactly(sock, 8 - len(head)) if len(head) < 8 else b""
        if rest is None or len(fds) != 1:
            return
        (size,) = struct.unpack("!Q", head + rest)
        payload = _read_exactly(sock, size)
        if payload is None:
            return
        request = json.loads(payload)
        # the preloaded objects out of the collector's sight: a child's collections and
        # its exit (_exit walks the collector's objects) see only what the task made,
        # and do not touch (copy) the zygote's pages
        gc.freeze()
        pid = os.fork()
        if pid == 0:
            _exit(_child(sock, fds[0], request))
        os.close(fds[0])
        threading.Thread(target=_answer, args=(sock, pid), daemon=True).start()


if __name__ == "__main__":
    _serve(int(sys.argv[1]), sys.argv[2:])
