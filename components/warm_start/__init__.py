"""The warm_start component (see README.md beside this file)."""

from kfp_interop.components.warm_start.component import warm_start

__all__ = ["warm_start"]
