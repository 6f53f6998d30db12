"""Warm task processes under `kfp-interop run --local` (kfp_interop.runs.warm): every
task still runs as its own process with the command KFP compiled (its own pid, memory,
environment and exit code, its output in the run log), only forked from an interpreter
that has already imported the heavy libraries; other commands run as kfp.local runs them.
"""

import json
import os
import sys
import textwrap

import pytest

from kfp_interop.runs.warm import warm_command

PIPELINE = textwrap.dedent('''
    from kfp import dsl

    @dsl.component(base_image="python:3.11", install_kfp_package=False)
    def first(out: dsl.Output[dsl.Artifact]) -> int:
        import json, os, sys
        warm = "kfp_interop.steps" in sys.modules  # preloaded: this task did not import it
        import kfp_interop
        kfp_interop.TOUCHED_BY_FIRST = True  # a module global: must not reach the next task
        os.environ["SET_BY_FIRST"] = "1"
        print("hello from first", os.getpid())
        import atexit
        leak = open(out.path + ".unclosed", "w")  # never closed: flushed at exit, as usual
        leak.write("kept")
        atexit.register(lambda: open(out.path + ".atexit", "w").write("ran"))
        with open(out.path, "w") as f:
            json.dump({"pid": os.getpid(), "ppid": os.getppid(),
                       "warm": warm,
                       "env": os.environ.get("WARM_TEST_VALUE")}, f)
        return os.getpid()

    @dsl.component(base_image="python:3.11", install_kfp_package=False)
    def second(before: int, out: dsl.Output[dsl.Artifact], fail: bool = False):
        import json, os
        import kfp_interop
        if fail:
            raise ValueError("second was told to fail")
        with open(out.path, "w") as f:
            json.dump({"pid": os.getpid(), "before": before,
                       "touched": hasattr(kfp_interop, "TOUCHED_BY_FIRST"),
                       "env_from_first": os.environ.get("SET_BY_FIRST")}, f)

    @dsl.component(base_image="python:3.11")  # KFP's default: pip install kfp first
    def cold(out: dsl.Output[dsl.Artifact]):
        import json, sys
        with open(out.path, "w") as f:
            json.dump({"warm": "kfp_interop.steps" in sys.modules}, f)

    @dsl.component(base_image="python:3.11", install_kfp_package=False)
    def with_env(out: dsl.Output[dsl.Artifact]):
        import json, os, sys
        warm = "kfp_interop.steps" in sys.modules
        with open(out.path, "w") as f:
            json.dump({"warm": warm, "setting": os.environ.get("SOME_SETTING"),
                       "threads": os.environ.get("OMP_NUM_THREADS")}, f)

    @dsl.pipeline(name="warm-check")
    def warm_check(fail: bool = False):
        a = first()
        second(before=a.outputs["Output"], fail=fail)
        cold()
        with_env().set_env_variable("SOME_SETTING", "x").set_display_name("setting")
        with_env().set_env_variable("OMP_NUM_THREADS", "1").set_display_name("threads")
''')


def _outputs(out_dir, task):
    runs = os.path.join(out_dir, "runs")
    (run,) = os.listdir(runs)
    with open(os.path.join(runs, run, task, "out")) as f:
        return json.load(f)


@pytest.fixture
def pipeline_file(tmp_path):
    path = tmp_path / "warm_check.py"
    path.write_text(PIPELINE)
    return str(path)


def test_each_task_is_its_own_warm_process(pipeline_file, tmp_path, monkeypatch):
    from kfp_interop.runs import run

    monkeypatch.setenv("WARM_TEST_VALUE", "from-the-run")
    summary = run(f"{pipeline_file}:warm_check", {}, output_dir=str(tmp_path / "out"))
    assert summary["status"] == "succeeded"
    first, second = _outputs(tmp_path / "out", "first"), _outputs(tmp_path / "out", "second")
    assert first["warm"]  # forked from the interpreter that imported the library
    assert first["pid"] != os.getpid() and first["ppid"] != os.getpid()  # the zygote's child
    assert second["pid"] != first["pid"] and second["before"] == first["pid"]
    assert second["touched"] is False and second["env_from_first"] is None
    assert first["env"] == "from-the-run"  # the run's environment, as a subprocess gets
    # a command other than KFP's plain one (here its pip install of kfp first) runs as
    # kfp.local runs it: a subprocess with a fresh interpreter
    assert _outputs(tmp_path / "out", "cold")["warm"] is False
    # a task's own environment variable: warm, and the task sees it
    assert _outputs(tmp_path / "out", "with-env") == {"warm": True, "setting": "x",
                                                      "threads": None}
    # one that libraries read on import (thread pools): a fresh interpreter that sees it
    assert _outputs(tmp_path / "out", "with-env-2") == {"warm": False, "setting": None,
                                                        "threads": "1"}
    # it ended as an interpreter does: atexit handlers ran, open files were flushed
    [folder] = (tmp_path / "out" / "runs").glob("*/first")
    assert (folder / "out.unclosed").read_text() == "kept"
    assert (folder / "out.atexit").read_text() == "ran"
    log = (tmp_path / "out" / "run.log").read_text()
    assert f"hello from first {first['pid']}" in log


def test_a_failing_warm_task_fails_the_run_with_its_error(pipeline_file, tmp_path):
    from kfp_interop.runs import run

    summary = run(f"{pipeline_file}:warm_check", {"fail": True},
                  output_dir=str(tmp_path / "out"))
    assert summary["status"] == "failed" and summary["failed_task"] == "second"
    assert "second was told to fail" in (tmp_path / "out" / "run.log").read_text()


def test_cold_tasks_when_turned_off(pipeline_file, tmp_path, monkeypatch):
    from kfp_interop.runs import run

    monkeypatch.setenv("KFP_INTEROP_WARM_TASKS", "0")
    summary = run(f"{pipeline_file}:warm_check", {}, output_dir=str(tmp_path / "out"))
    assert summary["status"] == "succeeded"
    assert _outputs(tmp_path / "out", "first")["warm"] is False  # a fresh interpreter


def test_only_kfps_own_lightweight_command_runs_warm():
    from kfp import dsl
    from kfp.local import subprocess_task_handler

    @dsl.component(base_image="python:3.11", install_kfp_package=False)
    def plain() -> str:
        return "x"

    @dsl.component(base_image="python:3.11")
    def installs_kfp() -> str:
        return "x"

    @dsl.component(base_image="python:3.11", install_kfp_package=False,
                   packages_to_install=["six"])
    def installs() -> str:
        return "x"

    def command(component):
        spec = component.pipeline_spec.deployment_spec["executors"]
        container = next(iter(spec.values()))["container"]
        full = list(container["command"]) + list(container["args"])
        return subprocess_task_handler.replace_python_executable(full, sys.executable)

    found = warm_command(command(plain))
    assert found is not None and "def plain" in found[0]
    assert found[1][0] == "--executor_input"
    assert warm_command(command(installs)) is None  # pip install first: a subprocess
    assert warm_command(command(installs_kfp)) is None
    tampered = command(plain)
    tampered[2] = tampered[2].replace("_KFP_RUNTIME=true", "rm -rf / ; _KFP_RUNTIME=true")
    assert warm_command(tampered) is None
    other_python = command(plain)
    other_python[2] = other_python[2].replace(sys.executable, "/usr/bin/python9")
    assert warm_command(other_python) is None
