"""``python -m agenticaiframework.communication`` runs the ``agentcomm`` command."""

import sys

from .cli import main

sys.exit(main())
