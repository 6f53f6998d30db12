"""Fill the registry tables in the docs from the registries themselves, so the docs
cannot drift from the code. A table sits between ``<!-- table:NAME -->`` and
``<!-- /table -->`` in a Markdown file; ``python scripts/render_docs.py`` rewrites every
such table, ``--check`` exits 1 (listing the files) when one is stale (a test runs it).
"""

from __future__ import annotations

import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _checkout() -> None:
    """Import this checkout's code, installed or not: the library from sdk/, and
    components/ and pipelines/ as kfp_interop.components and kfp_interop.pipelines (what
    setup.py's package_dir does for an install)."""
    import importlib.util

    sys.path.insert(0, os.path.join(ROOT, "sdk"))
    import kfp_interop

    for sub in ("components", "pipelines"):
        name = f"kfp_interop.{sub}"
        if name in sys.modules:
            continue
        folder = os.path.join(ROOT, sub)
        spec = importlib.util.spec_from_file_location(
            name, os.path.join(folder, "__init__.py"), submodule_search_locations=[folder])
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        setattr(kfp_interop, sub, module)
        spec.loader.exec_module(module)


_checkout()
FILES = ("README.md", "docs/architecture.md", "docs/extending.md")
MARKER = re.compile(r"(<!-- table:(?P<name>[a-z-]+) -->\n)(?P<body>.*?)(<!-- /table -->)",
                    re.S)


def _summary(obj) -> str:
    """The first sentence of the docstring of the module that defines ``obj``."""
    module = sys.modules[getattr(obj, "__module__", type(obj).__module__)]
    paragraph = (module.__doc__ or "").strip().split("\n\n")[0]
    text = " ".join(line.strip() for line in paragraph.splitlines())
    sentence = re.split(r"(?<=\.)\s", text, maxsplit=1)[0].rstrip(".")
    return sentence.replace("``", "`").replace("|", "\\|")


def _module(obj) -> str:
    return f"`{getattr(obj, '__module__', type(obj).__module__)}`"


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def tables() -> dict[str, str]:
    from kfp_interop.deploy import DEPLOY_TARGETS
    from kfp_interop.export import EXPORTERS
    from kfp_interop.frameworks import FRAMEWORKS
    from kfp_interop.metadata.render import RENDERERS
    from kfp_interop.pipelines import PIPELINES, describe
    from kfp_interop.storage import LAYOUTS, SCHEMES

    def choices(fw) -> str:
        return ", ".join(f"`{n}`" for n in fw.choices()) or "none (enters from files)"

    out = {}
    out["frameworks"] = _table(
        ("framework", "family", "native format (file)", "estimators / architectures",
         "module", "exporter"),
        [(f"`{n}`", fw.family, f"{fw.native_format} (`{fw.native_file}`)", choices(fw),
          _module(fw), _module(EXPORTERS.get(n)) if n in EXPORTERS else "none")
         for n, fw in FRAMEWORKS.items()])
    out["renderers"] = _table(("format", "module", "renders"),
                              [(f"`{n}`", _module(fn), _summary(fn))
                               for n, fn in RENDERERS.items()])
    out["schemes"] = _table(("scheme", "module", "stores in"),
                            [(f"`{n}`", _module(cls), _summary(cls))
                             for n, cls in SCHEMES.items()])
    out["layouts"] = _table(("layout", "module", "files"),
                            [(f"`{n}`", _module(fn), _summary(fn))
                             for n, fn in LAYOUTS.items()])
    rows = []
    for n, target in DEPLOY_TARGETS.items():
        spec = getattr(target, "spec", None)
        kind = f"`{spec.resource.kind}`" if spec else "a process"
        rows.append((f"`{n}`", kind, _module(spec or target), _summary(spec or target)))
    out["targets"] = _table(("target", "deploys", "module", "what"), rows)
    out["pipelines"] = _table(("pipeline", "module", "what"),
                              [(f"`{n}`", f"`{PIPELINES.get(n).module}`",
                                describe(n)) for n in PIPELINES.names()])
    return out


def render(text: str, rendered: dict[str, str]) -> str:
    def fill(m: re.Match) -> str:
        name = m.group("name")
        if name not in rendered:
            raise KeyError(f"unknown table {name!r}; known: {sorted(rendered)}")
        return m.group(1) + rendered[name] + m.group(4)

    return MARKER.sub(fill, text)


def main(argv: list[str] | None = None) -> int:
    check = "--check" in (argv if argv is not None else sys.argv[1:])
    rendered = tables()
    stale = []
    for rel in FILES:
        path = os.path.join(ROOT, rel)
        with open(path) as f:
            text = f.read()
        new = render(text, rendered)
        if new != text:
            stale.append(rel)
            if not check:
                with open(path, "w") as f:
                    f.write(new)
    if check and stale:
        print(f"stale registry tables in {stale}: run python scripts/render_docs.py")
        return 1
    for rel in stale:
        print(f"updated {rel}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
