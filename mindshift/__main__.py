"""`python -m mindshift`: the `mindshift` command without its console script."""

import sys

from mindshift.cli import main

sys.exit(main())
