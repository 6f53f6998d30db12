"""Frameworks, one module each, in the :data:`FRAMEWORKS` registry.

Each module owns everything about its framework: native save/load/predict in its safe
format, its estimators or architectures, its training defaults (see
:mod:`~kfp_interop.frameworks.base`). Add one with a module that calls
:func:`register_framework` and one import below (``docs/extending.md``).

==========  ==========  ==================  =============================================
name        family      native format       estimators / architectures
==========  ==========  ==================  =============================================
sklearn     tabular     skops               random_forest (default), gradient_boosting,
                                            logistic_regression, linear_regression,
                                            any scikit-learn ``module:Class``
xgboost     tabular     xgboost-json        xgboost
lightgbm    tabular     lightgbm-text       lightgbm
torch       deep        torch-state-dict    mlp, cnn, any ``nn.Module`` ``module:Class``
keras       deep        keras               mlp, cnn
tensorflow  imported    tf-savedmodel       none: enters as a SavedModel or ``.keras`` file
==========  ==========  ==================  =============================================

Every framework also reads model files made elsewhere (``Framework.read_foreign``), which
``kfp-interop export`` converts (:mod:`kfp_interop.steps.native_file`).
"""

from kfp_interop.frameworks.base import (CAPABILITIES, DeepFramework, ForeignModel,
                                         Framework, TabularFramework)
from kfp_interop.frameworks.native import NativeModel, load_native, save_native
from kfp_interop.frameworks.registry import (FRAMEWORKS, get_framework, register_framework,
                                             require_capability, with_capability,
                                             backbone_framework)
# built-in frameworks: importing a module registers it (heavy imports stay in functions)
from kfp_interop.frameworks import (  # noqa: F401,E402
    keras, lightgbm, sklearn, tensorflow, torch, xgboost)

__all__ = ["FRAMEWORKS", "Framework", "TabularFramework", "DeepFramework", "ForeignModel",
           "NativeModel",
           "register_framework", "get_framework", "save_native", "load_native",
           "CAPABILITIES", "with_capability", "require_capability",
           "backbone_framework"]
