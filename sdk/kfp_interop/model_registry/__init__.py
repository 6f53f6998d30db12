"""Model registries. Today one: MLflow (:mod:`.mlflow`), with the ``mlflow.onnx`` flavor,
a signature rendered from the record, aliases and promotion."""

from kfp_interop.model_registry.mlflow import (CHAMPION_ALIAS, DEFAULT_ALIAS, load_model,
                                               promote, register_model,
                                               resolve_tracking_uri, set_alias)

__all__ = ["register_model", "set_alias", "promote", "load_model", "resolve_tracking_uri",
           "DEFAULT_ALIAS", "CHAMPION_ALIAS"]
