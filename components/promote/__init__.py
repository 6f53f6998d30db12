"""The promote component (see README.md beside this file)."""

from kfp_interop.components.promote.component import promote

__all__ = ["promote"]
