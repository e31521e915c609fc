"""Calling out to webhooks configured by a kubeconfig file (kube-apiserver's webhook config format).

Shared by the token-authentication and authorization webhook plugins (and usable by third-party
ones): ``load_target(path, source)`` reads the kubeconfig's current context into a ``Target``
(https server URL, an ``ssl.SSLContext`` trusting its CA and presenting its client certificate, an
optional bearer token); ``duration_seconds`` parses the Go durations their cache flags take.
Errors are ``WebhookConfigError`` with a message naming ``source`` (the flag or file) and the field.
"""

from __future__ import annotations

import base64
import binascii
import os
import ssl
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kapi.durations import parse_duration as duration_seconds

__all__ = ["Target", "WebhookConfigError", "duration_seconds", "load_target"]


class WebhookConfigError(ValueError):
    """The webhook configuration cannot be used; the message names the file or option."""




# ---------------------------------------------------------------------------------------------
# kubeconfig -> target


@dataclass(frozen=True)
class Target:
    """Where and how to call the webhook."""

    server: str
    tls: ssl.SSLContext
    bearer: str = ""


def _named(config: Mapping[str, Any], kind: str, name: str | None) -> dict[str, Any]:
    entries = [e for e in config.get(f"{kind}s") or () if isinstance(e, Mapping)]
    chosen = next((e for e in entries if e.get("name") == name), None) if name else None
    chosen = chosen or (entries[0] if entries else None)
    body = chosen.get(kind) if chosen is not None else None
    return dict(body) if isinstance(body, Mapping) else {}


def _material(section: Mapping[str, Any], name: str, base: Path, source: str) -> bytes | None:
    data = section.get(f"{name}-data")
    if data:
        try:
            return base64.b64decode(str(data), validate=True)
        except (binascii.Error, ValueError):
            raise WebhookConfigError(f"{source}: {name}-data is not valid base64") from None
    path = section.get(name)
    if not path:
        return None
    full = Path(str(path)) if Path(str(path)).is_absolute() else base / str(path)
    try:
        return full.read_bytes()
    except OSError as exc:
        raise WebhookConfigError(f"{source}: cannot read {name} {full}: {exc.strerror or exc}") from None


def _tls(cluster: Mapping[str, Any], user: Mapping[str, Any], base: Path, source: str) -> ssl.SSLContext:
    ca = _material(cluster, "certificate-authority", base, source)
    try:
        context = ssl.create_default_context(cadata=ca.decode() if ca else None)
    except (ssl.SSLError, UnicodeDecodeError):
        raise WebhookConfigError(f"{source}: certificate-authority is not a PEM CA bundle") from None
    if cluster.get("insecure-skip-tls-verify"):
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    cert = _material(user, "client-certificate", base, source)
    key = _material(user, "client-key", base, source)
    if bool(cert) != bool(key):
        raise WebhookConfigError(f"{source}: client-certificate and client-key go together")
    if cert and key:
        # the ssl module loads a certificate chain only from files: stage them privately, just for the load
        with tempfile.TemporaryDirectory(prefix="kapi-webhook-") as tmp:
            cert_file, key_file = Path(tmp) / "client.crt", Path(tmp) / "client.key"
            cert_file.write_bytes(cert)
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(key)
            try:
                context.load_cert_chain(cert_file, key_file)
            except ssl.SSLError:
                raise WebhookConfigError(f"{source}: the client certificate and key cannot be loaded "
                                         f"(not PEM, or they do not belong together)") from None
    return context


def load_target(path: str, source: str) -> Target:
    """The webhook's URL, TLS context and token from a kubeconfig file.

    :raises WebhookConfigError: unreadable file, no https server, or unusable credentials.
    """
    source = f"{source} {path}"
    try:
        config = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise WebhookConfigError(f"cannot read the {source}: {exc}") from None
    if not isinstance(config, Mapping):
        raise WebhookConfigError(f"{source}: not a kubeconfig")
    context_name = config.get("current-context")
    context = _named(config, "context", str(context_name) if context_name else None)
    cluster = _named(config, "cluster", context.get("cluster"))
    user = _named(config, "user", context.get("user"))
    server = str(cluster.get("server") or "")
    if not server.startswith("https://"):
        raise WebhookConfigError(f"{source}: the cluster's server must be an https URL")
    base = Path(path).resolve().parent
    token = str(user.get("token") or "")
    if not token and user.get("tokenFile"):
        token = (_material({"t": user["tokenFile"]}, "t", base, source) or b"").decode().strip()
    return Target(server=server, tls=_tls(cluster, user, base, source), bearer=token)
