"""The train_deep component (see README.md beside this file)."""

from kfp_interop.components.train_deep.component import train_deep

__all__ = ["train_deep"]
