"""`python -m convsee` is the `convsee` command."""

import sys

from .cli import main

sys.exit(main())
