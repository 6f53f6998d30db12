"""kfp-interop's KFP v2 components, one folder each (definition, compiled
``component.yaml``, README).

Example:
    >>> from kfp_interop.components import export_onnx, train

The list is derived from the folders: every ``<name>/component.py`` defining the
component ``<name>`` is imported here and becomes the package attribute ``<name>`` (the
folder's module stays importable as ``kfp_interop.components.<name>.component``).
``setup.py`` packages the same folders, so adding a component is adding its folder.
"""

import importlib
import os

_HERE = os.path.dirname(os.path.abspath(__file__))


def _names() -> list[str]:
    return sorted(d for d in os.listdir(_HERE)
                  if os.path.isfile(os.path.join(_HERE, d, "component.py")))


COMPONENTS = {}
for _name in _names():
    COMPONENTS[_name] = getattr(importlib.import_module(f"{__name__}.{_name}.component"),
                                _name)
    globals()[_name] = COMPONENTS[_name]

__all__ = ["COMPONENTS", *COMPONENTS]
