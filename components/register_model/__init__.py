"""The register_model component (see README.md beside this file)."""

from kfp_interop.components.register_model.component import register_model

__all__ = ["register_model"]
