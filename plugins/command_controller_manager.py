"""``kapi controller-manager``: kube-controller-manager's controllers as a kapi command.

A thin plugin: the controllers, their framework and the command live in
``kapi.components.controllers`` (see ``kapi.components.controllers.command`` for every flag);
this module only registers the command::

    kapi controller-manager --kubeconfig controller-manager.kubeconfig --leader-elect \\
        --node-monitor-grace-period 40s --use-service-account-credentials

Controllers: deployment, replicaset, namespace, garbagecollector, nodelifecycle, podgc, job,
serviceaccount, root-ca-cert-publisher, endpoint, endpointslice (``--controllers '*,-podgc'``).
"""

from __future__ import annotations

import argparse

from kapi import hookimpl


@hookimpl
def kapi_register_commands(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``kapi controller-manager``."""
    from kapi.components.controllers.command import add_command

    add_command(subparsers)
