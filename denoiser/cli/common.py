"""What the subcommands share: exit codes, usage errors, argparse value types, progress bars, checks."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from denoiser.progress import Progress, drain

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad arguments found after parsing (exit code 2)."""


def _sigma_arg(text: str) -> float | None:
    if text == "auto":
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--sigma takes 'auto' or a number, not '{text}'") from None
    if not 0 <= value <= 255:
        raise argparse.ArgumentTypeError("--sigma must be within 0–255")
    return value


def _float_in(lo: float, hi: float, not_a_number: str, out_of_range: str) -> Callable[[str], float]:
    """An argparse type for a number in [lo, hi]; the messages are templates of the given `text`."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(not_a_number.format(text=text)) from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(out_of_range.format(text=text))
        return value
    return parse


def _unit_share(flag: str) -> Callable[[str], float]:
    """An argparse type for a 0–1 share whose message names `flag`."""
    return _float_in(0.0, 1.0, flag + " must be a number within 0–1, got {text!r}", flag + " must be within 0–1")


_strength_arg = _unit_share("--strength")


_grain_size = _float_in(0.5, 8.0, "--grain-size must be a number of pixels, got {text!r}",
                       "--grain-size must be within 0.5–8 px")


def _pair(text: str) -> tuple[float, float]:
    try:
        a, b = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected two numbers 'LO,HI', not '{text}'") from None
    return a, b


def _jpeg_range(text: str) -> tuple[int, int]:
    lo, hi = _pair(text)
    if not (1 <= lo <= hi <= 100 and lo == int(lo) and hi == int(hi)):
        raise argparse.ArgumentTypeError(f"JPEG qualities are whole numbers with 1 ≤ LO ≤ HI ≤ 100, not '{text}'")
    return int(lo), int(hi)


def _sigma_list(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, not '{text}'") from None
    if not values or not all(0 <= v <= 255 for v in values):
        raise argparse.ArgumentTypeError(f"expected one or more σ within 0–255 separated by commas, not '{text}'")
    return values


def _bar(total: float, desc: str, quiet: bool = False) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, file=sys.stderr, disable=quiet, unit="", dynamic_ncols=True,
                bar_format="{l_bar}{bar}| {n:.1f}/{total:.0f} [{elapsed}<{remaining}]")


def drain_with_bar(gen: Any, desc: str, quiet: bool = False, also: Any = None) -> Any:
    """Run an engine generator to completion, showing its progress on stderr (and passing each event to
    `also`, when given)."""
    bar = None

    def show(ev: Progress) -> None:
        nonlocal bar
        if also is not None:
            also(ev)
        if bar is None:
            bar = _bar(ev.total, desc, quiet)
        bar.n = ev.done
        bar.set_postfix_str(ev.message[-60:], refresh=False)
        bar.refresh()

    try:
        return drain(gen, show)
    finally:
        if bar is not None:
            bar.close()


# --- subcommands -----------------------------------------------------------------------------------


def _check_device(args: argparse.Namespace) -> None:
    """Refuse an impossible --device/--precision pair before any file is touched."""
    from denoiser.device import resolve_device, resolve_precision

    try:
        resolve_precision(args.precision, resolve_device(args.device))
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _warn_emulated_bf16(precision: str, device: Any, speak: bool = True) -> None:
    """Print the engine's warning (if any) that bf16 asked for by name is emulated, and slow, on this CPU."""
    from denoiser.device import emulated_bf16_warning

    warning = emulated_bf16_warning(precision, device)
    if warning and speak:
        print(f"warning: {warning}", file=sys.stderr, flush=True)


def _check_output_name(inputs: Sequence[str], output: str) -> None:
    """One input file and an output like `result.txt`: refuse it rather than make a folder of that name."""
    from denoiser.imageio import output_format_for

    out = Path(output)
    if len(inputs) != 1 or not Path(inputs[0]).is_file() or output.endswith(("/", os.sep)) or out.exists():
        return
    from denoiser.imageio import RAW_EXTENSIONS

    if out.suffix.lower() == ".dng" and Path(inputs[0]).suffix.lower() in RAW_EXTENSIONS:
        return  # a camera RAW denoised to a DNG
    if out.suffix and not out.suffix[1:].isdigit():
        try:
            output_format_for(out)
        except ValueError as exc:
            raise UsageError(f"-o {output}: {exc}; to write into a folder of that name, end it with /") from None



_share = _float_in(0.0, 1.0, "expected a number from 0 to 1, not '{text}'",
                  "expected a number from 0 to 1, not '{text}'")  # a share in [0, 1] (argparse type)


def _positive(kind: type) -> Any:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a positive number, not '{text}'") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"expected a positive number, not '{text}'")
        return value

    return parse


def _tile(text: str) -> int:
    """--tile: an edge in pixels no smaller than the tiler's minimum (named in the message)."""
    from denoiser.inference import check_tile

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of pixels, not '{text}'") from None
    try:
        check_tile(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--tile ")) from None
    return value



def _add_ensemble_arg(parser: argparse.ArgumentParser) -> None:
    """--ensemble N: the self-ensemble size, shared by denoise and eval."""
    from denoiser.ensemble import ENSEMBLE_SIZES

    parser.add_argument("--ensemble", type=int, default=1, choices=ENSEMBLE_SIZES, metavar="N",
                        help="average N flipped/turned passes (1, 2, 4 or 8): N times slower and a little "
                             "cleaner, most at 8 (measured in docs/bench/quality.md; default 1)")


def drain_training(gen: Any, show: Callable[[Progress], None], main_rank: bool, stopped: str) -> Any | None:
    """Drain a training generator; on Ctrl-C rank 0 says `stopped` (where the kept checkpoint is) and
    None comes back, so the caller exits with EXIT_FAILED."""
    try:
        return drain(gen, show)
    except KeyboardInterrupt:
        if main_rank:
            print(stopped, file=sys.stderr)
        return None
