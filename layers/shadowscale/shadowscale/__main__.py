"""`python -m shadowscale ...`: the command line."""

import sys

from shadowscale.cli.main import main

sys.exit(main())
