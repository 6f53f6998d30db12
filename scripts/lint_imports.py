"""Check the import contracts in ``.importlinter`` with import-linter.

The installed package ``kfp_interop`` is assembled from three folders (``sdk/kfp_interop``,
``components/`` as ``kfp_interop.components``, ``pipelines/`` as
``kfp_interop.pipelines``; see ``setup.py``), while import-linter reads one folder per
package. So this script stages a copy of the tree as installed and lints that.

It also checks what the contracts cannot: that no module imports, at module level or
inside a function, a chain of modules leading back to itself, including a package's
``__init__`` and its own modules (grimp's import graph, strongly connected components).

Usage: ``python scripts/lint_imports.py [--root DIR]`` (non-zero when a rule is broken).
"""

from __future__ import annotations

import argparse
import os
import re
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


# Run in a child process (the staged tree must be the kfp_interop it imports): print
# every import cycle, one per line, and exit 1 if there is any.
_CYCLES = r"""
import sys
import grimp

graph = grimp.build_graph("kfp_interop")
edges = {m: graph.find_modules_directly_imported_by(m) for m in graph.modules}
index, low, stack, on_stack, cycles = {}, {}, [], set(), []

def visit(v):  # Tarjan's strongly connected components
    index[v] = low[v] = len(index)
    stack.append(v)
    on_stack.add(v)
    for w in edges[v]:
        if w not in index:
            visit(w)
            low[v] = min(low[v], low[w])
        elif w in on_stack:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        component = []
        while True:
            w = stack.pop()
            on_stack.discard(w)
            component.append(w)
            if w == v:
                break
        if len(component) > 1 or v in edges[v]:
            cycles.append(sorted(component))

sys.setrecursionlimit(10000)
for module in sorted(edges):
    if module not in index:
        visit(module)
for cycle in cycles:
    print("import cycle: " + " <-> ".join(cycle))
print(f"{len(edges)} modules, {len(cycles)} import cycle(s)")
sys.exit(1 if cycles else 0)
"""


def lint(root: str = ROOT) -> subprocess.CompletedProcess:
    """Run the contracts, then the cycle check, on a staged copy of ``root``; the
    result's ``stdout`` holds both reports, ``returncode`` is non-zero if either fails."""
    with tempfile.TemporaryDirectory(prefix="kfp-interop-lint-") as tmp:
        stage(root, tmp)
        # the staged tree has every layer: the ones optional in a checkout are required
        config = os.path.join(tmp, "importlinter.ini")
        with open(os.path.join(root, ".importlinter")) as src, open(config, "w") as dst:
            dst.write(re.sub(r"^(\s+)\((\w+)\)\s*$", r"\1\2", src.read(), flags=re.M))
        env = {**os.environ, "PYTHONPATH": tmp + os.pathsep + os.environ.get("PYTHONPATH", "")}
        exe = os.path.join(os.path.dirname(sys.executable), "lint-imports")
        contracts = subprocess.run([exe, "--config", config, "--no-cache"], cwd=tmp, env=env,
                                   capture_output=True, text=True)
        cycles = subprocess.run([sys.executable, "-c", _CYCLES], cwd=tmp, env=env,
                                capture_output=True, text=True)
    return subprocess.CompletedProcess(
        contracts.args, contracts.returncode or cycles.returncode,
        contracts.stdout + cycles.stdout, contracts.stderr + cycles.stderr)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--root", default=ROOT, help="repository root to lint")
    proc = lint(p.parse_args().root)
    sys.stdout.write(proc.stdout)
    sys.stderr.write(proc.stderr)
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
