"""Helpers for the authorizer tests: in-process apps (memory store) with the authorizer plugins
registered whether or not their entry points are installed, an identity header that allows
colons in user names (kubelets), and RBAC object builders."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from importlib.metadata import entry_points
from typing import Any

import httpx

import kapi
from kapi import AuthnRequest, UserInfo, hookimpl
from kapi_plugins import authz_abac, authz_node, authz_rbac, authz_webhook

RBAC = "rbac.authorization.k8s.io"
PLURALS = {"Role": "roles", "ClusterRole": "clusterroles", "RoleBinding": "rolebindings",
           "ClusterRoleBinding": "clusterrolebindings"}


class IdentityAuthenticator:
    """Test-only authenticator: ``X-Test-Identity: name|group,group`` (names may contain colons)."""

    @hookimpl
    def kapi_authenticate(self, request: AuthnRequest) -> UserInfo | None:
        value = request.headers.get("x-test-identity")
        if not value:
            return None
        name, _, groups = value.partition("|")
        return UserInfo(name=name, groups=tuple(g for g in groups.split(",") if g))


def authz_plugins() -> list[tuple[str, Any]]:
    """The authorizer plugins whose entry points are not installed yet (so tests pass before and
    after they are added to setup.cfg)."""
    installed = {ep.name for ep in entry_points(group="kapi")}
    mine = [("authz_rbac", authz_rbac), ("authz_node", authz_node), ("authz_abac", authz_abac),
            ("authz_webhook", authz_webhook)]
    return [(name, module) for name, module in mine if name not in installed]


def make_app(**config: Any) -> kapi.App:
    """An App on the memory store with the identity authenticator first."""
    authenticators = ("test-identity", *config.pop("authenticators", ()))
    config.setdefault("storage_backend", "memory")
    extra = config.pop("plugins", [])
    cfg = kapi.Config(authenticators=authenticators, **config)
    return kapi.create_app(cfg, plugins=[("test-identity", IdentityAuthenticator()), *authz_plugins(), *extra])


@contextlib.asynccontextmanager
async def running(**config: Any) -> AsyncIterator[kapi.App]:
    """A started app (see ``make_app``)."""
    app = make_app(**config)
    await app.startup()
    try:
        yield app
    finally:
        await app.shutdown()


def client(app: kapi.App, identity: str = "admin|system:masters") -> httpx.AsyncClient:
    """A client calling as ``name|group,group`` (no header at all for ``""``)."""
    headers = {"x-test-identity": identity} if identity else {}
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app.asgi()), base_url="https://kapi.test",
                             headers=headers, timeout=10)


def rule(verbs: Sequence[str], resources: Sequence[str] = (), groups: Sequence[str] = ("",),
         names: Sequence[str] = (), urls: Sequence[str] = ()) -> dict[str, Any]:
    """A PolicyRule dict."""
    if urls:
        return {"verbs": list(verbs), "nonResourceURLs": list(urls)}
    out: dict[str, Any] = {"verbs": list(verbs), "apiGroups": list(groups), "resources": list(resources)}
    if names:
        out["resourceNames"] = list(names)
    return out


def role(name: str, rules: Sequence[dict[str, Any]], namespace: str = "", **extra: Any) -> dict[str, Any]:
    """A Role (with ``namespace``) or ClusterRole."""
    meta: dict[str, Any] = {"name": name, **({"namespace": namespace} if namespace else {})}
    if "labels" in extra:
        meta["labels"] = extra.pop("labels")
    return {"apiVersion": f"{RBAC}/v1", "kind": "Role" if namespace else "ClusterRole", "metadata": meta,
            "rules": list(rules), **extra}


def binding(name: str, role_name: str, subjects: Sequence[tuple[str, str]], namespace: str = "",
            role_kind: str = "") -> dict[str, Any]:
    """A RoleBinding (with ``namespace``) or ClusterRoleBinding; subjects are ``(kind, name)`` with
    service accounts written ``NS/NAME``."""
    listed = []
    for kind, subject in subjects:
        if kind == "ServiceAccount":
            ns, _, sa = subject.rpartition("/")
            listed.append({"kind": kind, "name": sa, **({"namespace": ns} if ns else {})})
        else:
            listed.append({"kind": kind, "name": subject, "apiGroup": RBAC})
    return {"apiVersion": f"{RBAC}/v1", "kind": "RoleBinding" if namespace else "ClusterRoleBinding",
            "metadata": {"name": name, **({"namespace": namespace} if namespace else {})},
            "roleRef": {"apiGroup": RBAC, "kind": role_kind or ("Role" if namespace else "ClusterRole"),
                        "name": role_name}, "subjects": listed}


def url_of(obj: dict[str, Any]) -> str:
    """The collection URL of an RBAC object."""
    namespace = obj["metadata"].get("namespace")
    where = f"namespaces/{namespace}/" if namespace else ""
    return f"/apis/{RBAC}/v1/{where}{PLURALS[obj['kind']]}"


async def create(c: httpx.AsyncClient, obj: dict[str, Any], app: kapi.App | None = None) -> httpx.Response:
    """POST an RBAC object; with ``app``, wait until the watch cache has it."""
    response = await c.post(url_of(obj), json=obj)
    if app is not None:
        await app.cache.sync()
    return response
