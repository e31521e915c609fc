"""Hostile input: property tests of the selector and patch parsers (only ``ValueError`` escapes),
random names and patch bodies through the API (never a 5xx), JSON/YAML bombs (a quick 4xx, bounded
memory), a 100 MiB Content-Length refused before the body is read, and slow clients that cannot
block other requests: dripped headers are cut off after the header timeout, a dripped body gets 504
after the request timeout."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import resource
import socket
import ssl
import time
import urllib.parse
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import kapi
from kapi import patch, selectors
from kapi.client import Client, ssl_context
from kapi_certs import load_kubeconfig
from tests.conftest import client_for, make_app
from tests.e2e.conftest import Server, serving
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
    with serving(tmp_path_factory.mktemp("hostile")) as server:
        yield server


def _raw(port: int, ctx: ssl.SSLContext) -> ssl.SSLSocket:
    ctx.set_alpn_protocols(["http/1.1"])
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    return ctx.wrap_socket(sock, server_hostname="127.0.0.1")


def test_declared_100mib_body_refused_before_reading(live: Server) -> None:
    declared = 100 * 1024 * 1024
    with _raw(live.port, tls(live)) as conn:
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


def _drip_headers(port: int, ctx: ssl.SSLContext, stop: float) -> int:
    """Send a request's headers one byte at a time until ``stop`` or until the server hangs up;
    returns the bytes sent."""
    request = f"GET {CM_PATH} HTTP/1.1\r\nHost: x\r\n" + "X-Pad: " + "a" * 10_000
    sent = 0
    try:
        with _raw(port, ctx) as conn:
            for byte in request.encode():
                if time.monotonic() > stop:
                    break
                conn.sendall(bytes([byte]))
                sent += 1
                time.sleep(0.05)
    except OSError:
        pass
    return sent


@contextlib.contextmanager
def _drippers(count: int, port: int, ctx: ssl.SSLContext, stop: float) -> Iterator[list[Future[int]]]:
    """``count`` concurrent ``_drip_headers`` clients, each on its own thread; joined on exit."""
    with ThreadPoolExecutor(count) as pool:
        yield [pool.submit(_drip_headers, port, ctx, stop) for _ in range(count)]


async def test_slow_clients_do_not_block_others(live: Server) -> None:
    stop = time.monotonic() + 3
    with _drippers(30, live.port, tls(live), stop) as drips:
        await asyncio.sleep(0.5)
        with client(live, timeout=5) as http:
            for _ in range(20):
                started = time.monotonic()
                assert http.get(CM_PATH).status_code == 200
                assert time.monotonic() - started < 1
    assert all(drip.result() > 0 for drip in drips)


@pytest.fixture
async def short_timeouts(tmp_path: Path) -> AsyncIterator[kapi.Listening]:
    """An in-process server over TLS with a 2 s header timeout and a 2 s request timeout."""
    app = kapi.create_app(kapi.Config(storage_backend="memory", authenticators=("x509",), request_timeout=2))
    stop, where = asyncio.Event(), asyncio.get_running_loop().create_future()
    serving = asyncio.create_task(kapi.serve(app, port=0, credentials_dir=tmp_path, header_timeout=2,
                                             shutdown_trigger=stop.wait, on_listening=where.set_result))
    try:
        yield await asyncio.wait_for(where, 10)
    finally:
        stop.set()
        await asyncio.wait_for(serving, 10)


def _admin_ctx(listening: kapi.Listening) -> ssl.SSLContext:
    """A client context with the CA and admin certificate of the server's generated kubeconfig."""
    assert listening.kubeconfig is not None
    config = load_kubeconfig(listening.kubeconfig)
    cluster, user = config["clusters"][0]["cluster"], config["users"][0]["user"]
    return ssl_context(*(base64.b64decode(entry[key]) for entry, key in (
        (cluster, "certificate-authority-data"), (user, "client-certificate-data"), (user, "client-key-data"))))


async def test_slow_header_clients_are_cut_off_after_the_header_timeout(short_timeouts: kapi.Listening) -> None:
    """30 clients dripping header bytes are disconnected once ``header_timeout`` passes (plus the
    1 s close grace), while an ordinary client keeps being served."""
    started = time.monotonic()
    with _drippers(30, short_timeouts.port, _admin_ctx(short_timeouts), started + 30) as futures:
        drips = [await asyncio.wrap_future(future) for future in futures]
    took = time.monotonic() - started
    print(f"30 drippers cut off after {took:.1f} s, having sent {min(drips)}-{max(drips)} header bytes")
    assert took < 8
    assert short_timeouts.kubeconfig is not None
    async with Client.from_kubeconfig(short_timeouts.kubeconfig) as api:
        assert (await api.get("/api/v1/namespaces/default"))["metadata"]["name"] == "default"


def _drip_body(port: int, ctx: ssl.SSLContext, path: str) -> tuple[bytes, float]:
    """POST a 1,000-byte body one byte every 50 ms; returns the reply and when its headers came."""
    started = time.monotonic()
    with _raw(port, ctx) as conn:
        conn.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     "Content-Length: 1000\r\n\r\n{".encode())
        conn.settimeout(0.05)
        reply = b""
        for _ in range(999):
            try:
                reply += conn.recv(4096)
            except TimeoutError:
                pass
            if b"\r\n\r\n" in reply:
                break
            conn.sendall(b" ")
        took = time.monotonic() - started
        conn.settimeout(5)
        while not reply.endswith(b"}"):  # the Status body
            reply += conn.recv(4096)
    return reply, took


async def test_a_dripped_body_is_answered_504_after_the_request_timeout(short_timeouts: kapi.Listening) -> None:
    reply, took = await asyncio.to_thread(_drip_body, short_timeouts.port, _admin_ctx(short_timeouts), CM_PATH)
    assert reply.startswith(b"HTTP/1.1 504"), reply[:300]
    assert took < 5
    assert b'"reason":"Timeout"' in reply, reply


@pytest.mark.slow
def test_slow_header_client_is_cut_off_by_the_default_server(live: Server) -> None:
    """``kapi-apiserver`` closes a connection whose headers never complete after 30 s (+1 s grace)."""
    started = time.monotonic()
    sent = _drip_headers(live.port, tls(live), time.monotonic() + 60)
    assert time.monotonic() - started < 35, f"still connected after {sent} bytes"


