"""The API server's configuration: one frozen object built once (by the CLI or by an embedder).

Field names follow kube-apiserver's flags (``--secure-port`` -> ``secure_port``). Plugins read the
fields they need from ``app.config``; a third-party plugin's own settings live in
``plugin_options[plugin_name]`` (filled from ``--plugin-option NAME.KEY=VALUE`` or by the embedder).

Which plugins run, and in what order, is configuration too:

* ``authenticators``: authenticator plugin names, tried in this order;
* ``authorizers``: authorizer plugin names or aliases (``--authorization-mode`` values such as
  ``AlwaysAllow``), asked in this order;
* ``admission``: admission plugin names or aliases; mutating ones run first, then validating ones,
  each group in this order;
* ``storage_backend``: the storage plugin alias (``memory``, ``sqlite``, ``etcd3``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any


def default_data_dir() -> str:
    """A per-user directory for the SQLite file and generated credentials."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(base, "kapi")


@dataclass(frozen=True)
class Config:
    """Everything the API server needs to start. Immutable; use ``with_changes`` to derive."""

    # serving
    bind_address: str = "127.0.0.1"
    secure_port: int = 6443
    advertise_address: str = ""
    tls_cert_file: str = ""
    tls_private_key_file: str = ""
    client_ca_file: str = ""
    workers: int = 1
    # authentication / authorization / admission
    authenticators: tuple[str, ...] = ()
    token_auth_file: str = ""
    anonymous_auth: bool = False
    authorizers: tuple[str, ...] = ("AlwaysAllow",)
    admission: tuple[str, ...] = ()
    # storage
    storage_backend: str = "sqlite"
    data_dir: str = field(default_factory=default_data_dir)
    etcd_servers: tuple[str, ...] = ()
    etcd_prefix: str = "/registry"
    etcd_cafile: str = ""
    etcd_certfile: str = ""
    etcd_keyfile: str = ""
    watch_cache_size: int = 1000
    # limits
    max_requests_inflight: int = 400
    max_mutating_requests_inflight: int = 200
    max_request_body_bytes: int = 3 * 1024 * 1024
    request_timeout: float = 60.0
    min_request_timeout: int = 1800
    # services
    service_cluster_ip_range: str = "10.96.0.0/12"
    service_node_port_range: str = "30000-32767"
    # third-party plugin settings: {plugin name: {key: value}}
    plugin_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def with_changes(self, **changes: Any) -> Config:
        """A copy with some fields replaced."""
        return replace(self, **changes)

    @property
    def sqlite_path(self) -> Path:
        """Where the SQLite store keeps its database."""
        return Path(self.data_dir) / "kapi.db"

    def options_for(self, plugin: str) -> Mapping[str, Any]:
        """The settings section of one plugin (empty when none were given)."""
        return self.plugin_options.get(plugin, {})
