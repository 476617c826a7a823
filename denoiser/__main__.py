"""`python -m denoiser` runs the command line (and is what `torchrun ... -m denoiser` starts on each rank)."""

from denoiser.cli import main
from denoiser.distributed import exit_process

exit_process(main())
