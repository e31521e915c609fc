"""The API server's credentials for talking to kubelets (``kubectl logs``): kube-apiserver's flags.

``--kubelet-client-certificate FILE`` / ``--kubelet-client-key FILE``
    the client certificate the API server presents to kubelets (kubeadm's
    ``apiserver-kubelet-client``); default ``DATA_DIR/pki/apiserver-kubelet-client.crt``/``.key``.
``--kubelet-certificate-authority FILE``
    the CA that kubelet serving certificates must chain to; default ``DATA_DIR/pki/ca.crt``
    (without it the kubelet's certificate is not verified, as kube-apiserver does).

The values land in ``config.plugin_options["kubelet_client"]`` (keys ``client_certificate``,
``client_key``, ``certificate_authority``), which the ``pods/log`` handler reads; this plugin
also closes the handler's kubelet connections at shutdown.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from kapi import hookimpl

if TYPE_CHECKING:
    from kapi import App


@hookimpl
def kapi_add_options(parser: argparse.ArgumentParser) -> None:
    """``--kubelet-client-certificate``, ``--kubelet-client-key``, ``--kubelet-certificate-authority``."""
    group = parser.add_argument_group("kubelet client (kubelet_client)")
    group.add_argument("--kubelet-client-certificate", default="", metavar="FILE",
                       help="client certificate for kubelets (default DATA_DIR/pki/apiserver-kubelet-client.crt)")
    group.add_argument("--kubelet-client-key", default="", metavar="FILE",
                       help="its key (default DATA_DIR/pki/apiserver-kubelet-client.key)")
    group.add_argument("--kubelet-certificate-authority", default="", metavar="FILE",
                       help="CA of kubelet serving certificates (default DATA_DIR/pki/ca.crt when present)")


@hookimpl
def kapi_read_options(args: argparse.Namespace) -> dict[str, Any] | None:
    """The flags given, as this plugin's section; None when all are defaults."""
    section = {"client_certificate": getattr(args, "kubelet_client_certificate", ""),
               "client_key": getattr(args, "kubelet_client_key", ""),
               "certificate_authority": getattr(args, "kubelet_certificate_authority", "")}
    if bool(section["client_certificate"]) != bool(section["client_key"]):
        raise ValueError("--kubelet-client-certificate and --kubelet-client-key go together")
    return {k: v for k, v in section.items() if v} or None


@hookimpl
async def kapi_shutdown(app: App) -> None:
    """Close the kubelet connections the ``pods/log`` handler opened."""
    client = app.plugin_state("kubelet_client").pop("http", None)
    if client is not None:
        await client.aclose()
