"""``python -m pytest_soak.cli``: the ``pytest-soak`` command."""

import sys

from pytest_soak.cli import main

sys.exit(main())
