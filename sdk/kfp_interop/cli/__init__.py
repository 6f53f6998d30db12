"""The ``kfp-interop`` command line: :mod:`.parser` (choices from the registries),
:mod:`.commands` (one function per subcommand, each a library call), :mod:`.params`
(typed ``--param``), :mod:`.runs` (``kfp.local`` runs and ``kfp.Client`` submits) and
:mod:`.summary`."""

from __future__ import annotations

import sys

from kfp_interop.errors import InteropError

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    from kfp_interop.cli.parser import build_parser

    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except InteropError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
