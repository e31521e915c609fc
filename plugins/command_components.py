"""``kapi scheduler``, ``kapi kubelet``, ``kapi up`` and ``kapi init``: the control-plane components.

A thin command plugin: the commands live in ``kapi.components`` (scheduler, kubelet, the
single-machine cluster ``kapi up`` and the kubeadm-style ``kapi init``); this module only
registers them. Unlike request-path plugins it imports a core package besides ``kapi``
(``kapi.components``), because the commands are the core's own components, not an extension::

    kapi up --data-dir ./cluster            # API server, scheduler, controller manager, kubelet
    kapi scheduler --kubeconfig scheduler.kubeconfig --leader-elect
    kapi kubelet --node-name n1 --kubeconfig kubelet.kubeconfig --runtime process
    kapi kubelet --node-name fake --fake-nodes 100 --kubeconfig fake.kubeconfig
    kapi init --root /                      # static pod manifests and systemd units
"""

from __future__ import annotations

import argparse

from kapi import hookimpl


@hookimpl
def kapi_register_commands(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register the component commands."""
    from kapi.components.cli import add_commands

    add_commands(subparsers)
