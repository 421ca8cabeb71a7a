"""What every `python -m` entry point shares: checked numeric options, one-line errors, a quiet Ctrl-C.

    ap.add_argument("--block", type=ranged(int, 1, 65536), default=512)
    sys.exit(run_main(main))       # error: … → exit 2; Ctrl-C → exit 130, no traceback
"""
from __future__ import annotations

import argparse
import logging
import math
import sys
from typing import Callable

EXIT_USAGE = 2  # bad input: a file, a field or an option (argparse uses 2 as well)
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report Ctrl-C


def ranged(typ: type, lo: float | None = None, hi: float | None = None) -> Callable[[str], float]:
    """An argparse type: `typ` parsed from the text, inside [lo, hi] (either end open when None)."""

    def parse(text: str):
        try:
            v = typ(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if typ is int else 'a number'}, got {text!r}") from None
        if v != v or (lo is not None and v < lo) or (hi is not None and v > hi):
            span = f"[{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}]"
            raise argparse.ArgumentTypeError(f"{text} is outside {span}")
        return v

    parse.__name__ = typ.__name__  # argparse names the type in its messages
    return parse


def instrument_weights(text: str) -> dict[str, float]:
    """An argparse type: "violin=2,clarinet=2" → {"violin": 2.0, "clarinet": 2.0} (finite W > 0, names once)."""
    out: dict[str, float] = {}
    for item in filter(None, (t.strip() for t in text.split(","))):
        name, sep, w = (part.strip() for part in item.partition("="))
        try:
            weight = float(w)
        except ValueError:
            weight = float("nan")
        if not sep or not name or not (math.isfinite(weight) and weight > 0) or name in out:
            raise argparse.ArgumentTypeError(f"expected NAME=W with W a finite number > 0, each name once; got {item!r}")
        out[name] = weight
    return out


def comma_list(typ: type = str) -> Callable[[str], list]:
    """An argparse type for 'a,b,c' (empty items dropped)."""

    def parse(text: str):
        try:
            return [typ(v.strip()) for v in text.split(",") if v.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated {typ.__name__} values, got {text!r}") from None

    parse.__name__ = f"list of {typ.__name__}"
    return parse


def run_main(main: Callable[..., int], *args, errors: tuple[type[BaseException], ...] = ()) -> int:
    """Run an entry point: the errors named print one line and give exit 2; Ctrl-C gives 130."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    try:
        return main(*args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except errors as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
