"""Hostile input: property tests of the selector and patch parsers (only ``ValueError`` escapes),
random names and patch bodies through the API (never a 5xx), JSON/YAML bombs (a quick 4xx, bounded
memory), a 100 MiB Content-Length refused before the body is read, and slow clients that cannot
block other requests."""

from __future__ import annotations

import asyncio
import resource
import socket
import ssl
import time
import urllib.parse
from collections.abc import Iterator

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import kapi
from kapi import patch, selectors
from tests.conftest import client_for, make_app
from tests.e2e.conftest import Server, start_server
from tests.reliability.support import CM_PATH, client, tls

SELECTOR_TEXT = st.text(alphabet=st.sampled_from([*"abz09-_./=!,() in notexists\\\t", "é", "\x00"]),
                        max_size=40) | st.text(max_size=30)
JSON = st.recursive(st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=5),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner,
                                                                                  max_size=4), max_leaves=12)
OP = st.fixed_dictionaries({"op": st.sampled_from(["add", "remove", "replace", "move", "copy", "test", "x"]),
                            "path": st.sampled_from(["", "/", "/a", "/a/0", "/a/-", "/~1", "/b/c", "/0"]) | st.text(
                                max_size=6)},
                           optional={"value": JSON, "from": st.sampled_from(["/a", "/b", "", "/a/0"])})


@given(SELECTOR_TEXT)
def test_label_selectors_raise_only_value_error(text: str) -> None:
    try:
        parsed = selectors.parse_label_selector(text)
    except ValueError:
        return
    parsed.matches({"a": "b"})
    selectors.parse_label_selector(str(parsed))  # a parsed selector prints as a valid one


@given(SELECTOR_TEXT)
def test_field_selectors_raise_only_value_error(text: str) -> None:
    try:
        parsed = selectors.parse_field_selector(text)
    except ValueError:
        return
    parsed.matches({"metadata.name": "x"})


@given(JSON, st.lists(OP, max_size=4) | JSON)
def test_json_patch_raises_only_patch_error(doc: object, ops: object) -> None:
    try:
        patch.json_patch(doc, ops)
    except patch.PatchError:
        pass


@given(JSON, JSON)
def test_merge_patches_raise_only_patch_error(doc: object, body: object) -> None:
    for apply in (patch.merge_patch, lambda d, p: patch.strategic_merge(None, d, p)):
        try:
            apply(doc, body)
        except ValueError:
            pass


@pytest.fixture(scope="module")
def api() -> Iterator[tuple[asyncio.Runner, httpx.AsyncClient]]:
    """An in-process server (memory store) driven from sync hypothesis tests through one event loop."""
    runner = asyncio.Runner()
    app = make_app()
    runner.run(app.startup())
    http = client_for(app)
    runner.run(http.post(CM_PATH, json={"metadata": {"name": "target"}, "data": {"a": "1"}}))
    try:
        yield runner, http
    finally:
        runner.run(http.aclose())
        runner.run(app.shutdown())
        runner.close()


PATCH_TYPES = ["application/json-patch+json", "application/merge-patch+json",
               "application/strategic-merge-patch+json", "application/apply-patch+yaml"]


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(name=st.text(max_size=70), ctype=st.sampled_from(PATCH_TYPES), body=st.lists(OP, max_size=3) | JSON)
def test_names_and_patches_never_5xx(api: tuple[asyncio.Runner, httpx.AsyncClient], name: str, ctype: str,
                                     body: object) -> None:
    runner, http = api
    created = runner.run(http.post(CM_PATH, json={"metadata": {"name": name}}))
    assert created.status_code < 500, created.text
    got = runner.run(http.get(f"{CM_PATH}/{urllib.parse.quote(name, safe='')}"))
    assert got.status_code < 500, got.text
    params = {"fieldManager": "fuzz"} if ctype.endswith("yaml") else {}
    patched = runner.run(http.patch(f"{CM_PATH}/target", content=orjson.dumps(body), params=params,
                                    headers={"content-type": ctype}))
    assert patched.status_code < 500, (ctype, body, patched.text, runner.run(http.get(f"{CM_PATH}/target")).text)


def _bombs() -> list[tuple[str, bytes, str]]:
    laughs = "a: &a [" + ",".join(["x"] * 10) + "]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 10) + "]\n" for i in range(9))
    return [
        ("deep-json", b"[" * 100_000 + b"]" * 100_000, "application/json"),
        ("deep-json-object", b'{"a":' * 50_000 + b"1" + b"}" * 50_000, "application/json"),
        ("deep-yaml", b"[" * 50_000 + b"]" * 50_000, "application/yaml"),
        ("billion-laughs", laughs.encode(), "application/yaml"),
        ("huge-string", orjson.dumps({"metadata": {"name": "h"}, "data": {"k": "x" * (3 * 1024 * 1024 - 100)}}),
         "application/json"),
        ("many-keys", orjson.dumps({"metadata": {"name": "m"}, "data": {f"k{i}": "" for i in range(200_000)}}),
         "application/json"),
        ("many-labels", orjson.dumps({"metadata": {"name": "l", "labels": {f"k{i}": "v" for i in range(150_000)}}}),
         "application/json"),
    ]


@pytest.mark.parametrize(("kind", "body", "ctype"), _bombs(), ids=[b[0] for b in _bombs()])
async def test_bombs_are_quick_4xx(kind: str, body: bytes, ctype: str) -> None:
    app: kapi.App = make_app()
    await app.startup()
    try:
        async with client_for(app) as http:
            before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            started = time.monotonic()
            resp = await http.post(CM_PATH, content=body, headers={"content-type": ctype})
            took = time.monotonic() - started
            grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    finally:
        await app.shutdown()
    print(f"{kind}: {resp.status_code} in {took:.2f}s, peak RSS +{grown_mib:.0f} MiB")
    if kind.startswith("many-"):  # within 3 MiB these are valid objects (kube takes them too): just no 5xx
        assert resp.status_code < 500, (kind, resp.status_code, resp.text[:200])
    else:
        assert 400 <= resp.status_code < 500, (kind, resp.status_code, resp.text[:200])
    assert took < 8
    assert grown_mib < 400


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(tmp_path_factory.mktemp("hostile"))
    try:
        yield server
    finally:
        server.stop()


def _raw(server: Server) -> ssl.SSLSocket:
    ctx = tls(server)
    ctx.set_alpn_protocols(["http/1.1"])
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    return ctx.wrap_socket(sock, server_hostname="127.0.0.1")


def test_declared_100mib_body_refused_before_reading(live: Server) -> None:
    declared = 100 * 1024 * 1024
    with _raw(live) as conn:
        conn.sendall(f"POST {CM_PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {declared}\r\n\r\n".encode())
        sent = 0
        conn.setblocking(False)
        reply = b""
        deadline = time.monotonic() + 10
        while b"\r\n\r\n" not in reply and time.monotonic() < deadline:
            try:
                reply += conn.recv(65536)
            except (ssl.SSLWantReadError, BlockingIOError):
                pass
            if sent < declared:
                try:
                    sent += conn.send(b" " * 65536)
                except (ssl.SSLWantWriteError, BlockingIOError):
                    time.sleep(0.01)
    print(f"413 after the client had sent {sent / 2**20:.1f} MiB of the declared 100 MiB")
    assert reply.startswith(b"HTTP/1.1 413"), reply[:200]
    assert sent < 16 * 1024 * 1024  # answered long before the body could have been read whole


def _drip_headers(server: Server, stop: float) -> int:
    """Send a request's headers one byte at a time until ``stop``; returns bytes sent."""
    request = f"GET {CM_PATH} HTTP/1.1\r\nHost: x\r\n" + "X-Pad: " + "a" * 10_000
    sent = 0
    try:
        with _raw(server) as conn:
            for byte in request.encode():
                if time.monotonic() > stop:
                    break
                conn.sendall(bytes([byte]))
                sent += 1
                time.sleep(0.05)
    except OSError:
        pass
    return sent


async def test_slow_clients_do_not_block_others(live: Server) -> None:
    stop = time.monotonic() + 3
    drips = [asyncio.to_thread(_drip_headers, live, stop) for _ in range(30)]
    drippers = asyncio.gather(*drips)
    await asyncio.sleep(0.5)
    with client(live, timeout=5) as http:
        for _ in range(20):
            started = time.monotonic()
            assert http.get(CM_PATH).status_code == 200
            assert time.monotonic() - started < 1
    await drippers


@pytest.mark.slow
@pytest.mark.xfail(reason="known gap: hypercorn has no total deadline for request headers; a client dripping "
                          "a byte every 50 ms keeps its connection (it does not block others)", strict=False)
def test_slow_header_client_is_cut_off(live: Server) -> None:
    """A connection whose headers never complete should be closed within 45 s."""
    started = time.monotonic()
    sent = _drip_headers(live, time.monotonic() + 60)
    assert time.monotonic() - started < 45, f"still connected after {sent} bytes"


