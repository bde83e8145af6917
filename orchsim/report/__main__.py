"""``python -m orchsim.report``, the same as ``python -m orchsim report``."""

import sys

from orchsim.report.cli import main

sys.exit(main())
