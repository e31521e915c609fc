"""Per-controller service-account credentials (``--use-service-account-credentials``).

kube-controller-manager can run each controller as its own service account
(``kube-system/deployment-controller``, ``.../generic-garbage-collector``, ...), bound by the RBAC
bootstrap policy to ``system:controller:NAME`` roles, so a controller can do only its own job.
``ServiceAccountClients`` makes sure each account exists (create-if-absent), asks the TokenRequest
API (``serviceaccounts/NAME/token``) for a token and wraps a client made with it in a
``RotatingClient``: a proxy whose token is renewed at 80% of its lifetime, so controllers keep
one client object for their whole life. Shared informers keep using the manager's own identity
(``system:kube-controller-manager`` may list and watch everything).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from typing import Any

from kapi.client import Client
from kapi.components.controllers.gvr import SERVICE_ACCOUNTS
from kapi.components.controllers.writes import create_if_absent

log = logging.getLogger("kapi.controllers.credentials")

NAMESPACE = "kube-system"
TOKEN_SECONDS = 3600
RENEW_FRACTION = 0.8

ClientFactory = Callable[[str], Client]


class RotatingClient:
    """Forwards every attribute to the current client; ``swap`` installs a new one."""

    def __init__(self, inner: Client) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    @property
    def current(self) -> Client:
        return self._inner

    def swap(self, inner: Client) -> Client:
        """Install ``inner``; returns the previous client (close it once in-flight calls are done)."""
        old, self._inner = self._inner, inner
        return old


class ServiceAccountClients:
    """Clients for service accounts, made from tokens the manager's ``client`` requests.

    :param make_client: builds a client for a bearer token (same server and CA as the manager).
    """

    def __init__(self, client: Client, make_client: ClientFactory, *, namespace: str = NAMESPACE,
                 token_seconds: int = TOKEN_SECONDS) -> None:
        self.client = client
        self.make_client = make_client
        self.namespace = namespace
        self.token_seconds = token_seconds
        self.clients: dict[str, RotatingClient] = {}
        self._retired: list[Client] = []

    async def _token(self, account: str) -> str:
        await create_if_absent(self.client, SERVICE_ACCOUNTS, {
            "apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": account, "namespace": self.namespace}})
        request = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                   "spec": {"expirationSeconds": self.token_seconds}}
        answer = await self.client.create(SERVICE_ACCOUNTS.path(self.namespace, account, "token"), request)
        return str((answer.get("status") or {}).get("token") or "")

    async def build(self, accounts: Mapping[str, str]) -> dict[str, Client]:
        """``controller name -> client`` for ``controller name -> account``."""
        result: dict[str, Client] = {}
        for controller, account in accounts.items():
            rotating = self.clients.get(account)
            if rotating is None:
                rotating = self.clients[account] = RotatingClient(self.make_client(await self._token(account)))
            result[controller] = rotating  # type: ignore[assignment]
        return result

    async def renew_forever(self) -> None:
        """Renew every token at 80% of its lifetime (run as a task; cancel to stop). Clients
        replaced in one round are closed in the next, long after their last request."""
        while True:
            await asyncio.sleep(self.token_seconds * RENEW_FRACTION)
            retired, self._retired = self._retired, []
            for old in retired:
                with contextlib.suppress(Exception):
                    await old.aclose()
            for account, rotating in self.clients.items():
                try:
                    self._retired.append(rotating.swap(self.make_client(await self._token(account))))
                except Exception:
                    log.exception("token renewal for %s/%s failed", self.namespace, account)

    async def aclose(self) -> None:
        """Close every client made here."""
        for client in [*self._retired, *(r.current for r in self.clients.values())]:
            with contextlib.suppress(Exception):
                await client.aclose()
        self._retired.clear()
