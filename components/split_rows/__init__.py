"""The split_rows component (see README.md beside this file)."""

from kfp_interop.components.split_rows.component import split_rows

__all__ = ["split_rows"]
