"""The smoke_test component (see README.md beside this file)."""

from kfp_interop.components.smoke_test.component import smoke_test

__all__ = ["smoke_test"]
