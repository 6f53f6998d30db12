"""The upload_model component (see README.md beside this file)."""

from kfp_interop.components.upload_model.component import upload_model

__all__ = ["upload_model"]
