"""One test per hook: a throwaway plugin implements it and the app shows the effect."""

from __future__ import annotations

import argparse
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

import kapi
from kapi import AdmissionDenied, AdmissionRequest, AuthnRequest, Decision, RequestAttributes, UserInfo, hookimpl
from kapi.cli import add_apiserver_flags, config_from_args
from kapi.plugins import make_plugin_manager
from tests.conftest import HeaderAuthenticator, client_for

CM = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}


async def started(*plugins: tuple[str, Any], **config: Any) -> kapi.App:
    cfg = kapi.Config(storage_backend=config.pop("storage_backend", "memory"),
                      authenticators=config.pop("authenticators", ("test-header",)), **config)
    app = kapi.create_app(cfg, plugins=[("test-header", HeaderAuthenticator()), *plugins])
    await app.startup()
    return app


async def test_hook_authenticate() -> None:
    class Keys:
        @hookimpl
        async def kapi_authenticate(self, request: AuthnRequest) -> UserInfo | None:
            key = request.headers.get("x-key")
            if key is None:
                return None
            if key != "good":
                raise kapi.AuthenticationError("invalid key")
            return UserInfo("key-user")

    app = await started(("keys", Keys()), authenticators=("keys",))
    try:
        async with client_for(app, user="") as c:
            assert (await c.get("/api/v1/namespaces", headers={"x-key": "good"})).status_code == 200
            bad = await c.get("/api/v1/namespaces", headers={"x-key": "bad"})
            assert bad.status_code == 401 and "invalid key" in bad.json()["message"]
            assert (await c.get("/api/v1/namespaces")).status_code == 401
    finally:
        await app.shutdown()


async def test_hook_authorize() -> None:
    class ReadOnly:
        @hookimpl
        def kapi_authorize(self, attributes: RequestAttributes) -> Decision | None:
            return Decision.ALLOW if attributes.is_read_only else None

    app = await started(("read-only", ReadOnly()), authorizers=("read-only",))
    try:
        async with client_for(app, user="u") as c:
            assert (await c.get("/api/v1/namespaces/default/configmaps")).status_code == 200
            assert (await c.post("/api/v1/namespaces/default/configmaps", json=CM)).status_code == 403
    finally:
        await app.shutdown()


async def test_hook_mutate_admission() -> None:
    class Labeller:
        @hookimpl
        def kapi_mutate_admission(self, request: AdmissionRequest) -> dict[str, Any] | None:
            if request.obj is None:
                return None
            obj = dict(request.obj)
            obj["metadata"] = {**obj["metadata"], "labels": {"stamped": "yes"}}
            return obj

    app = await started(("labeller", Labeller()), admission=("labeller",))
    try:
        async with client_for(app) as c:
            created = (await c.post("/api/v1/namespaces/default/configmaps", json=CM)).json()
            assert created["metadata"]["labels"] == {"stamped": "yes"}
    finally:
        await app.shutdown()


async def test_hook_validate_admission() -> None:
    class NoX:
        @hookimpl
        async def kapi_validate_admission(self, request: AdmissionRequest) -> None:
            if request.name == "x" and request.operation is kapi.Operation.CREATE:
                raise AdmissionDenied('admission webhook "no-x" denied the request: x is reserved')

    app = await started(("no-x", NoX()), admission=("no-x",))
    try:
        async with client_for(app) as c:
            denied = await c.post("/api/v1/namespaces/default/configmaps", json=CM)
            assert denied.status_code == 403 and "x is reserved" in denied.json()["message"]
            assert (await c.get("/api/v1/namespaces/default/configmaps/x")).status_code == 404
    finally:
        await app.shutdown()


async def test_hook_storage() -> None:
    from kapi_plugins.storage_memory import kapi_storage as memory_storage

    opened: list[str] = []

    class Custom:
        @hookimpl
        def kapi_storage(self, config: kapi.Config, backend: str) -> kapi.Storage | None:
            if backend != "custom":
                return None
            opened.append(backend)
            return memory_storage(config=config, backend="memory")

    app = await started(("custom", Custom()), storage_backend="custom")
    try:
        assert opened == ["custom"]
        async with client_for(app) as c:
            assert (await c.post("/api/v1/namespaces/default/configmaps", json=CM)).status_code == 201
    finally:
        await app.shutdown()


async def test_hook_startup() -> None:
    class Starter:
        @hookimpl
        async def kapi_startup(self, app: kapi.App) -> None:
            app.plugin_state("starter")["ready"] = True

    app = await started(("starter", Starter()))
    try:
        assert app.plugin_state("starter") == {"ready": True}
    finally:
        await app.shutdown()


async def test_hook_shutdown() -> None:
    stopped: list[bool] = []

    class Stopper:
        @hookimpl
        def kapi_shutdown(self) -> None:
            stopped.append(True)

    app = await started(("stopper", Stopper()))
    await app.shutdown()
    assert stopped == [True]


async def test_hook_register_routes() -> None:
    class Hello:
        @hookimpl
        def kapi_register_routes(self) -> list[Route]:
            async def hello(request: Request) -> PlainTextResponse:
                return PlainTextResponse(f"hello {request.scope['kapi.user'].name}")

            return [Route("/hello", hello)]

    app = await started(("hello", Hello()))
    try:
        async with client_for(app, user="ann") as c:
            assert (await c.get("/hello")).text == "hello ann"
        async with client_for(app, user="") as anon:
            assert (await anon.get("/hello")).status_code == 401
    finally:
        await app.shutdown()


class Flags:
    @hookimpl
    def kapi_add_options(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--flags-level", default="1")

    @hookimpl
    def kapi_read_options(self, args: argparse.Namespace) -> dict[str, Any]:
        if not args.flags_level.isdigit():
            raise ValueError("--flags-level must be a number")
        return {"level": int(args.flags_level)}


def _parse(argv: list[str]) -> kapi.Config:
    pm = make_plugin_manager(load_entrypoints=False, extra=[("flags", Flags())])
    parser = argparse.ArgumentParser()
    add_apiserver_flags(parser)
    pm.hook.kapi_add_options(parser=parser)
    args = parser.parse_args(argv)
    sections = {i.plugin_name: i.function(args) for i in pm.hook.kapi_read_options.get_hookimpls()}
    return config_from_args(args, sections)


def test_hook_add_options() -> None:
    assert _parse(["--flags-level", "3"]).options_for("flags") == {"level": 3}


def test_hook_read_options() -> None:
    with pytest.raises(ValueError, match="--flags-level"):
        _parse(["--flags-level", "x"])
    assert _parse(["--plugin-option", "other.k=v"]).options_for("other") == {"k": "v"}


def test_hook_register_commands() -> None:
    class Cmd:
        @hookimpl
        def kapi_register_commands(self, subparsers: Any) -> None:
            p = subparsers.add_parser("greet")
            p.set_defaults(func=lambda args: 7)

    pm = make_plugin_manager(load_entrypoints=True, extra=[("cmd", Cmd())])
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    pm.hook.kapi_register_commands(subparsers=sub)
    args = parser.parse_args(["greet"])
    assert args.func(args) == 7
    assert parser.parse_args(["certs", "init", "--cert-dir", "/nonexistent"]).command == "certs"
