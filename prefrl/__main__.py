"""`python -m prefrl ...` is the `prefrl` command."""

import sys

from prefrl.interfaces.cli import main

sys.exit(main())
