"""Compile every component to components/<name>/component.yaml and every reference
pipeline to pipelines/<name>.yaml. Tests fail when a checked-in file is stale:
run ``python scripts/compile_all.py`` after changing a component or pipeline."""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def targets():
    """(kind, name, path) for every compiled file the repository checks in."""
    from kfp_interop.components import COMPONENTS
    from kfp_interop.pipelines import PIPELINES

    for name in COMPONENTS:
        yield "component", name, os.path.join(ROOT, "components", name, "component.yaml")
    for name in PIPELINES.names():
        yield "pipeline", name, os.path.join(ROOT, "pipelines", f"{name}.yaml")


def compile_to(kind: str, name: str, path: str) -> None:
    from kfp import compiler

    from kfp_interop.components import COMPONENTS
    from kfp_interop.pipelines import load

    obj = COMPONENTS[name] if kind == "component" else load(name)
    compiler.Compiler().compile(obj, path)


def main() -> int:
    for kind, name, path in targets():
        compile_to(kind, name, path)
        print(f"wrote {os.path.relpath(path, ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
