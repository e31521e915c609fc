"""The kubelet_client plugin: kube-apiserver's --kubelet-* flags and closing the log client."""

from __future__ import annotations

import argparse

import httpx
import pytest

import kapi
from kapi.rest import logs
from kapi_plugins import authz_always_allow, kubelet_client, storage_memory


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    kubelet_client.kapi_add_options(parser)
    return parser.parse_args(list(argv))


def test_hook_kapi_add_options_and_kapi_read_options() -> None:
    assert kubelet_client.kapi_read_options(parse()) is None
    section = kubelet_client.kapi_read_options(parse("--kubelet-client-certificate", "c.crt",
                                                     "--kubelet-client-key", "c.key",
                                                     "--kubelet-certificate-authority", "ca.crt"))
    assert section == {"client_certificate": "c.crt", "client_key": "c.key", "certificate_authority": "ca.crt"}
    with pytest.raises(ValueError, match="go together"):
        kubelet_client.kapi_read_options(parse("--kubelet-client-certificate", "c.crt"))


async def test_hook_kapi_shutdown_closes_the_kubelet_client(tmp_path: object) -> None:
    config = kapi.Config(storage_backend="memory", data_dir=str(tmp_path))
    app = kapi.create_app(config, load_entrypoints=False, plugins=[
        ("storage_memory", storage_memory), ("authz_always_allow", authz_always_allow),
        ("kubelet_client", kubelet_client)])
    await app.startup()
    http = logs.kubelet_http(app)
    assert isinstance(http, httpx.AsyncClient) and logs.kubelet_http(app) is http
    await app.shutdown()
    assert http.is_closed
