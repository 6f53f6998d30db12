"""The train component (see README.md beside this file)."""

from kfp_interop.components.train.component import train

__all__ = ["train"]
