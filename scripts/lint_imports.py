"""Check the import contracts in ``.importlinter`` with import-linter.

The installed package ``kfp_interop`` is assembled from three folders (``sdk/kfp_interop``,
``components/`` as ``kfp_interop.components``, ``pipelines/`` as
``kfp_interop.pipelines``; see ``setup.py``), while import-linter reads one folder per
package. So this script stages a copy of the tree as installed and lints that.

Usage: ``python scripts/lint_imports.py [--root DIR]`` (exit code of ``lint-imports``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def stage(root: str, dest: str) -> str:
    """Copy the package tree as installed under ``dest``; return the package folder."""
    ignore = shutil.ignore_patterns("__pycache__", "*.yaml", "*.md")
    pkg = os.path.join(dest, "kfp_interop")
    shutil.copytree(os.path.join(root, "sdk", "kfp_interop"), pkg, ignore=ignore)
    for sub in ("components", "pipelines"):
        shutil.copytree(os.path.join(root, sub), os.path.join(pkg, sub), ignore=ignore)
    return pkg


def lint(root: str = ROOT) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="kfp-interop-lint-") as tmp:
        stage(root, tmp)
        env = {**os.environ, "PYTHONPATH": tmp + os.pathsep + os.environ.get("PYTHONPATH", "")}
        exe = os.path.join(os.path.dirname(sys.executable), "lint-imports")
        return subprocess.run([exe, "--config", os.path.join(root, ".importlinter"),
                               "--no-cache"], cwd=tmp, env=env, capture_output=True, text=True)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--root", default=ROOT, help="repository root to lint")
    proc = lint(p.parse_args().root)
    sys.stdout.write(proc.stdout)
    sys.stderr.write(proc.stderr)
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
