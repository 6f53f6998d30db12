"""Print the requirements of setup.py (install_requires plus the named extras), one per
line, without running setup.py: the Dockerfile installs them in a layer of their own, so
that a code change rebuilds only the layer holding the package.

Usage: python3 scripts/requirements.py [EXTRAS]   (e.g. serve,mlflow,torch)
"""

import ast
import os
import sys


def requirements(setup_py: str, extras: list[str]) -> list[str]:
    tree = ast.parse(open(setup_py).read())
    call = next(n for n in ast.walk(tree) if isinstance(n, ast.Call)
                and getattr(n.func, "id", "") == "setup")
    kw = {k.arg: k.value for k in call.keywords}
    out = list(ast.literal_eval(kw["install_requires"]))
    declared = ast.literal_eval(kw["extras_require"])
    for extra in extras:
        if extra not in declared:
            sys.exit(f"unknown extra {extra!r}; setup.py declares {sorted(declared)}")
        out += declared[extra]
    return list(dict.fromkeys(out))


if __name__ == "__main__":
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    wanted = [e for e in (sys.argv[1] if len(sys.argv) > 1 else "").split(",") if e]
    print("\n".join(requirements(os.path.join(here, "setup.py"), wanted)))
