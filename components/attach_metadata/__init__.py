"""The attach_metadata component (see README.md beside this file)."""

from kfp_interop.components.attach_metadata.component import attach_metadata

__all__ = ["attach_metadata"]
