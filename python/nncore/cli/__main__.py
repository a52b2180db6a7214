"""`python -m nncore.cli`, as `python -m nncore` and the `nncore` command."""

import sys

from . import main

sys.exit(main())
