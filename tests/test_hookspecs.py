"""The plugin API guards itself: every hook is typed and documented and has a test; every built-in
plugin module is an entry point; the installed set loads without unknown hooks."""

from __future__ import annotations

import configparser
import inspect
from pathlib import Path

import pytest

from kapi import hookspecs
from kapi.plugins import make_plugin_manager

ROOT = Path(__file__).resolve().parents[1]
HOOKS = sorted(name for name in dir(hookspecs) if name.startswith("kapi_"))


def test_there_are_hooks() -> None:
    assert {"kapi_authenticate", "kapi_authorize", "kapi_mutate_admission", "kapi_validate_admission",
            "kapi_storage", "kapi_startup", "kapi_shutdown", "kapi_register_routes",
            "kapi_register_commands"} <= set(HOOKS)


@pytest.mark.parametrize("name", HOOKS)
def test_hook_is_typed_and_documented(name: str) -> None:
    func = getattr(hookspecs, name)
    doc = inspect.getdoc(func) or ""
    assert len(doc) > 80, f"{name} needs a docstring that states its contract"
    sig = inspect.signature(func)
    assert sig.return_annotation is not inspect.Signature.empty, f"{name} lacks a return type"
    for param in sig.parameters.values():
        assert param.annotation is not inspect.Parameter.empty, f"{name}({param.name}) lacks a type"


@pytest.mark.parametrize("name", HOOKS)
def test_hook_has_a_test(name: str) -> None:
    wanted = f"def test_hook_{name.removeprefix('kapi_')}"
    sources = "\n".join(p.read_text() for p in (ROOT / "tests").rglob("test_*.py"))
    assert wanted in sources, f"no {wanted}(...) in tests/"


def test_every_plugin_module_is_an_entry_point() -> None:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    lines = cfg["options.entry_points"]["kapi"].strip().splitlines()
    declared = {line.split("=", 1)[1].strip() for line in lines if "=" in line}
    modules = {f"kapi_plugins.{p.stem}" for p in (ROOT / "plugins").glob("*.py") if p.stem != "__init__"}
    assert modules <= declared, f"plugins without an entry point: {sorted(modules - declared)}"


def test_installed_plugins_load_and_validate() -> None:
    pm = make_plugin_manager()
    names = {name for name, _ in pm.list_name_plugin()}
    assert {"storage_memory", "storage_sqlite", "authz_always_allow", "authn_x509"} <= names


def test_plugin_docs_are_generated_from_the_hookspecs() -> None:
    """docs/plugins.md is ``python -m kapi.docgen`` output: every hook documented, nothing stale."""
    from kapi import docgen

    current = (ROOT / "docs" / "plugins.md").read_text()
    assert current == docgen.render(), "docs/plugins.md is stale: run `python -m kapi.docgen > docs/plugins.md`"
    for name in HOOKS:
        assert f"\n### {name}\n" in current, f"{name} is missing from docs/plugins.md"
