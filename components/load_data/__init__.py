"""The load_data component (see README.md beside this file)."""

from kfp_interop.components.load_data.component import load_data

__all__ = ["load_data"]
