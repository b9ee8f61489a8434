"""``python -m diffdsp`` runs the command line."""

import sys

from diffdsp.cli import main

sys.exit(main())
