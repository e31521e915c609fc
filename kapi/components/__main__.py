"""``python -m kapi.components COMMAND ...`` (see ``kapi.components.cli``)."""

import sys

from kapi.components.cli import main

sys.exit(main())
