"""argparse value types shared by ``kapi-apiserver``'s own flags and the flags plugins add."""

from __future__ import annotations

import argparse


def boolean(value: str) -> bool:
    """``true``/``1``/``yes`` or ``false``/``0``/``no`` (any case), as kube's bool flags accept them.

    :raises argparse.ArgumentTypeError: anything else (argparse reports it against the flag).
    """
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, not {value!r}")
