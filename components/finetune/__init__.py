"""The finetune component (see README.md beside this file)."""

from kfp_interop.components.finetune.component import finetune

__all__ = ["finetune"]
