"""The compare_transfer component (see README.md beside this file)."""

from kfp_interop.components.compare_transfer.component import compare_transfer

__all__ = ["compare_transfer"]
