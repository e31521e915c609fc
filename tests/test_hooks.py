"""The async-aware hook caller: configured order, sync and async impls, failures never allow."""

from __future__ import annotations

import pytest

from kapi import Decision, RequestAttributes, UserInfo, hookimpl
from kapi.hooks import PluginFailure, call_first, resolve_chain
from kapi.plugins import PluginConfigError, make_plugin_manager, resolve_names


class Sync:
    ALIASES = ("SyncOne",)

    @hookimpl
    def kapi_authorize(self, attributes: RequestAttributes) -> Decision | None:
        return Decision.ALLOW if attributes.verb == "get" else None


class Async:
    @hookimpl
    async def kapi_authorize(self, attributes: RequestAttributes) -> Decision | None:
        return Decision.DENY


class Broken:
    @hookimpl
    def kapi_authorize(self, attributes: RequestAttributes) -> Decision | None:
        raise RuntimeError("boom")


def attrs(verb: str) -> RequestAttributes:
    return RequestAttributes(verb=verb, path="/api/v1/pods", is_resource_request=True, resource="pods",
                             user=UserInfo("u"))


@pytest.fixture
def pm():  # type: ignore[no-untyped-def]
    return make_plugin_manager(load_entrypoints=False, extra=[("sync", Sync()), ("async", Async()),
                                                              ("broken", Broken())])


async def test_configured_order_not_registration_order(pm) -> None:  # type: ignore[no-untyped-def]
    chain = resolve_chain(pm, "kapi_authorize", ["sync", "async"])
    assert [i.plugin for i in chain] == ["sync", "async"]
    assert await call_first("kapi_authorize", chain, attributes=attrs("get"), app=None) == ("sync", Decision.ALLOW)
    assert await call_first("kapi_authorize", chain, attributes=attrs("list"), app=None) == ("async", Decision.DENY)
    reversed_chain = resolve_chain(pm, "kapi_authorize", ["async", "sync"])
    assert await call_first("kapi_authorize", reversed_chain, attributes=attrs("get"), app=None) == \
        ("async", Decision.DENY)


async def test_plugin_exception_is_a_failure_naming_it(pm) -> None:  # type: ignore[no-untyped-def]
    chain = resolve_chain(pm, "kapi_authorize", ["broken", "sync"])
    with pytest.raises(PluginFailure) as err:
        await call_first("kapi_authorize", chain, attributes=attrs("get"), app=None)
    assert err.value.code == 500 and "broken" in err.value.message


def test_aliases_and_unknown_names(pm) -> None:  # type: ignore[no-untyped-def]
    assert resolve_names(pm, ["SyncOne", "async"], what="x", flag="--f", hook="kapi_authorize") == ("sync", "async")
    with pytest.raises(PluginConfigError) as err:
        resolve_names(pm, ["Nope"], what="authorization mode", flag="--authorization-mode", hook="kapi_authorize")
    assert "--authorization-mode" in str(err.value) and "SyncOne" in str(err.value)


def test_typo_in_hook_name_fails_loudly() -> None:
    import pluggy

    class Typo:
        @hookimpl
        def kapi_authorise(self) -> None:
            return None

    with pytest.raises(pluggy.PluginValidationError):
        make_plugin_manager(load_entrypoints=False, extra=[("typo", Typo())])
