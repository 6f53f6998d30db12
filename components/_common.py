"""What every kfp-interop component shares: the one container image (tag = package
version, so the image and the code it runs never drift; see ``Dockerfile``) and docstring
choices read from the library's registries.

KFP embeds a component's source in the compiled YAML and strips its decorators, so a
component's signature holds literal defaults (``tests/test_layout.py`` checks they equal
the library's constants) and its docstring may name ``{placeholders}`` that
:func:`choices` fills from the registries before KFP reads the docstring.
"""

from typing import Callable

from kfp_interop._version import __version__
from kfp_interop.constants import IMAGE_REPOSITORY

IMAGE = f"{IMAGE_REPOSITORY}:{__version__}"

# kfp is part of the image; installing it again per task costs ~2 s locally.
COMPONENT_OPTIONS = {"base_image": IMAGE, "install_kfp_package": False}


def _registry_choices() -> dict[str, str]:
    from kfp_interop.deploy import DEPLOY_TARGETS
    from kfp_interop.frameworks import FRAMEWORKS
    from kfp_interop.storage import LAYOUTS

    def family(name: str) -> list[str]:
        return [n for n, fw in FRAMEWORKS.items() if fw.family == name]

    join = ", ".join
    return {"tabular_frameworks": join(family("tabular")),
            "deep_frameworks": join(family("deep")),
            "sklearn_estimators": join(FRAMEWORKS.get("sklearn").estimator_names()),
            "targets": join(DEPLOY_TARGETS.names()), "layouts": join(LAYOUTS.names())}


def choices(fn: Callable) -> Callable:
    """Fill the docstring's ``{tabular_frameworks}``, ``{deep_frameworks}``,
    ``{sklearn_estimators}``, ``{targets}`` and ``{layouts}`` from the registries."""
    fn.__doc__ = fn.__doc__.format(**_registry_choices())
    return fn
