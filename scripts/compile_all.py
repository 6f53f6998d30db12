"""Compile every component to components/<name>/component.yaml and every reference
pipeline to pipelines/<name>.yaml (the cluster profile, the release image): what the
repository checks in and users upload. Tests fail when a checked-in file is stale:
run ``python scripts/compile_all.py`` after changing a component or pipeline. The same
as ``kfp-interop compile --all --output-dir .``."""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def main() -> int:
    from kfp_interop.pipelines import compile_all

    os.environ.pop("KFP_INTEROP_IMAGE", None)  # the checked-in files name the release image
    for path in compile_all(ROOT):
        print(f"wrote {os.path.relpath(path, ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
