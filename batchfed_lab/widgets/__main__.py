"""``python -m batchfed_lab.widgets NOTEBOOK NAME [COLUMN ...]``: print a value an executed
notebook glued (see :mod:`batchfed_lab.widgets.glue`); ``make demo`` prints the quickstart's
placements this way."""

import sys

from .glue import _main

sys.exit(_main(sys.argv[1:]))
