"""``python -m kfp_interop.cli``."""

import sys

from kfp_interop.cli import main

sys.exit(main())
