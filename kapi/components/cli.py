"""The component commands: ``kapi scheduler``, ``kapi kubelet``, ``kapi up`` and ``kapi init``.

``add_commands(subparsers)`` registers them on the ``kapi`` CLI (through the
``command_components`` plugin); ``python -m kapi.components COMMAND ...`` runs them without the
entry points installed (``kapi up`` starts its children that way).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any


def add_commands(subparsers: Any) -> None:
    """Register every component command on ``subparsers``."""
    from kapi.components import init, up
    from kapi.components.kubelet import cli as kubelet_cli
    from kapi.components.scheduler import cli as scheduler_cli

    scheduler_cli.add_parser(subparsers)
    kubelet_cli.add_parser(subparsers)
    up.add_parser(subparsers)
    init.add_parser(subparsers)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m kapi.components COMMAND ...``."""
    parser = argparse.ArgumentParser(prog="kapi", description="kapi control-plane components")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_commands(subparsers)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
