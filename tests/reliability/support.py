"""Helpers shared by the reliability tests: HTTPS clients for a real kapi-apiserver with any identity,
and the read-modify-write counter used by the lost-update tests. Not a test module."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from typing import Any

import httpx

from kapi_certs import files_of
from kapi_certs.pki import cert_pem, issue, key_pem, load_cert, load_key
from tests.e2e.conftest import Server, kubeconfig_files

CM_PATH = "/api/v1/namespaces/default/configmaps"


def identity_files(server: Server, name: str, groups: tuple[str, ...] = ()) -> tuple[str, str]:
    """A client certificate (and key, mode 0600) for ``name`` in ``groups``, signed by the server's CA."""
    out = server.data_dir / "ids"
    out.mkdir(exist_ok=True)
    stem = out / name.replace(":", "_")
    cert_path, key_path = Path(f"{stem}.crt"), Path(f"{stem}.key")
    if not cert_path.exists():
        ca_cert, ca_key = files_of(server.data_dir / "pki", "ca")
        cert, key = issue(load_cert(ca_cert.read_bytes()), load_key(ca_key.read_bytes()), cn=name, orgs=groups,
                          client=True)
        key_path.write_bytes(key_pem(key))
        key_path.chmod(0o600)
        cert_path.write_bytes(cert_pem(cert))
    return str(cert_path), str(key_path)


def tls(server: Server, identity: tuple[str, str] | None = None, *, admin: bool = True) -> ssl.SSLContext:
    """A client context trusting the server's CA, presenting ``identity`` (or the admin's, or none)."""
    ctx = ssl.create_default_context(cafile=str(server.data_dir / "pki" / "ca.crt"))
    if identity is not None:
        ctx.load_cert_chain(*identity)
    elif admin:
        ctx.load_cert_chain(*kubeconfig_files(server))
    return ctx


def client(server: Server, identity: tuple[str, str] | None = None, *, admin: bool = True,
           timeout: float = 20) -> httpx.Client:
    return httpx.Client(base_url=server.url, verify=tls(server, identity, admin=admin), timeout=timeout)


def aclient(server: Server, *, timeout: float = 20) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    return httpx.AsyncClient(base_url=server.url, verify=tls(server), timeout=timeout, limits=limits)


async def increment(http: httpx.AsyncClient, name: str) -> int:
    """One read-modify-write increment of ``data.n`` with a resourceVersion precondition, retried on
    409; returns how many conflicts it met."""
    conflicts = 0
    while True:
        got = await http.get(f"{CM_PATH}/{name}")
        assert got.status_code == 200, got.text
        obj: dict[str, Any] = got.json()
        obj["data"]["n"] = str(int(obj["data"]["n"]) + 1)
        put = await http.put(f"{CM_PATH}/{name}", json=obj)
        if put.status_code == 200:
            return conflicts
        assert put.status_code in (409, 429), put.text
        conflicts += 1
        if put.status_code == 429:
            await asyncio.sleep(0.05)


async def hammer(urls: list[httpx.AsyncClient], name: str, clients: int, per_client: int) -> tuple[int, int, int]:
    """``clients`` concurrent workers (spread over ``urls``) each increment ``per_client`` times;
    returns (successes, conflicts, final counter as read back)."""
    create = await urls[0].post(CM_PATH, json={"apiVersion": "v1", "kind": "ConfigMap",
                                               "metadata": {"name": name}, "data": {"n": "0"}})
    assert create.status_code == 201, create.text

    async def worker(i: int) -> tuple[int, int]:
        http = urls[i % len(urls)]
        conflicts = 0
        for _ in range(per_client):
            conflicts += await increment(http, name)
        return per_client, conflicts

    results = await asyncio.gather(*(worker(i) for i in range(clients)))
    final = await urls[-1].get(f"{CM_PATH}/{name}")
    return sum(r[0] for r in results), sum(r[1] for r in results), int(final.json()["data"]["n"])
