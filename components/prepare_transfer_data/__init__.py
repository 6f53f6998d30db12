"""The prepare_transfer_data component (see README.md beside this file)."""

from kfp_interop.components.prepare_transfer_data.component import prepare_transfer_data

__all__ = ["prepare_transfer_data"]
