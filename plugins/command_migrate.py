"""``kapi migrate``: copy every key from one store to another (SQLite <-> etcd, and back).

A thin plugin: the command and the ``migrate()`` function live in ``kapi.migrate`` (see its
docstring for the store syntax and the caveats); this module only registers the command::

    kapi migrate --from sqlite:/var/lib/kapi --to etcd:https://127.0.0.1:2379 \\
        --etcd-cafile pki/etcd/ca.crt --etcd-certfile pki/apiserver-etcd-client.crt \\
        --etcd-keyfile pki/apiserver-etcd-client.key
"""

from __future__ import annotations

import argparse

from kapi import hookimpl
from kapi.migrate import add_command


@hookimpl
def kapi_register_commands(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``kapi migrate``."""
    add_command(subparsers)
