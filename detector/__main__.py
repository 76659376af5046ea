"""``python -m detector`` runs the baseliner CLI."""

import sys

from detector.cli import main

sys.exit(main())
