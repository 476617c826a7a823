"""`python -m denoiser` runs the command line."""

import sys

from denoiser.cli import main

sys.exit(main())
