"""The deploy component (see README.md beside this file)."""

from kfp_interop.components.deploy.component import deploy

__all__ = ["deploy"]
