"""The ServiceAccount controller: every active namespace has a ``default`` ServiceAccount.

It creates the account when a namespace appears or the account is deleted, like
``pkg/controller/serviceaccount``. Creation is create-if-absent (409 AlreadyExists is success), so
it is safe alongside the ServiceAccount admission plugin or anyone else creating it; a namespace
that is terminating or gone is skipped.
"""

from __future__ import annotations

from typing import Any

from kapi.client import ApiError
from kapi.components.controllers.framework import Controller
from kapi.components.controllers.gvr import NAMESPACES, SERVICE_ACCOUNTS
from kapi.components.controllers.objects import is_namespace_active, namespace_of
from kapi.components.controllers.writes import create_if_absent, is_namespace_terminating

Obj = dict[str, Any]

DEFAULT_ACCOUNT = "default"


class ServiceAccountController(Controller):
    """``serviceaccount``: see the module docstring."""

    name = "serviceaccount"
    component = "service-account-controller"
    service_account = "service-account-controller"

    def setup(self) -> None:
        self.namespaces = self.cache(NAMESPACES)
        self.accounts = self.cache(SERVICE_ACCOUNTS, field_selector=f"metadata.name={DEFAULT_ACCOUNT}")
        self.namespaces.add_handler(self.enqueue, lambda old, new: self.enqueue(new))
        self.accounts.add_handler(on_delete=lambda sa: self.enqueue(namespace_of(sa)))

    async def sync(self, key: str) -> float | None:
        if not is_namespace_active(self.namespaces.get(key)) or self.accounts.get(f"{key}/{DEFAULT_ACCOUNT}"):
            return None
        account = {"apiVersion": "v1", "kind": "ServiceAccount",
                   "metadata": {"name": DEFAULT_ACCOUNT, "namespace": key}}
        try:
            await create_if_absent(self.client, SERVICE_ACCOUNTS, account)
        except ApiError as exc:
            if not (exc.not_found or is_namespace_terminating(exc)):
                raise
        return None



