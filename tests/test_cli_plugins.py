"""``kapi plugins`` and clear startup errors for misconfigured plugins (real processes, exit codes)."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from kapi.cli import main


def test_kapi_plugins_lists_names_aliases_hooks_and_origins(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert ("authz_always_allow (AlwaysAllow)\n  from: kapi_plugins.authz_always_allow (kapi)\n"
            "  hooks: kapi_authorize") in out
    assert "storage_memory (memory)" in out
    entry = out.split("authn_x509", 1)[1].split("\n\n", 1)[0]
    assert "from: kapi_plugins.authn_x509 (kapi)" in entry and "kapi_authenticate" in entry


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def apiserver(tmp_path: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-c", "from kapi.cli import apiserver_main; raise SystemExit(apiserver_main())",
           "--data-dir", str(tmp_path), "--storage-backend", "memory", "--secure-port", str(_free_port()), *flags]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(("flags", "message"), [
    (("--authorization-mode", "Node,NoSuchMode"), "unknown authorization mode 'NoSuchMode' in --authorization-mode: "
     "installed ones are "),
    (("--authentication-plugins", "apikey"), "unknown authenticator 'apikey' in --authentication-plugins"),
    (("--enable-admission-plugins", "NoSuchAdmission"), "unknown admission plugin 'NoSuchAdmission' in "
     "--enable-admission-plugins"),
    (("--storage-backend", "cassandra"), "unknown storage backend 'cassandra' in --storage-backend"),
    (("--plugin-option", "apikey"), "--plugin-option 'apikey': expected PLUGIN.KEY=VALUE"),
])
def test_misconfigured_plugins_stop_the_server_with_exit_code_2(tmp_path: Path, flags: tuple[str, ...],
                                                                message: str) -> None:
    result = apiserver(tmp_path, *flags)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    if "unknown" in message:
        assert "install the package that provides it" in result.stderr  # the fix


def test_json_logs(tmp_path: Path) -> None:
    result = apiserver(tmp_path, "--logging-format", "json", "--authorization-mode", "Nope")
    assert result.returncode == 2
    result = subprocess.run([sys.executable, "-c", "from kapi.cli import apiserver_main; raise SystemExit("
                             "apiserver_main())", "--logging-format", "yaml"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2 and "invalid choice: 'yaml'" in result.stderr


def test_a_broken_command_plugin_is_named_not_fatal(monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    import kapi
    from kapi import cli
    from kapi.plugins import make_plugin_manager

    class Broken:
        @kapi.hookimpl
        def kapi_register_commands(self) -> None:
            raise ImportError("cannot import name 'gone'")

    monkeypatch.setattr(cli, "make_plugin_manager", lambda: make_plugin_manager(extra=[("broken", Broken())]))
    assert main(["plugins"]) == 0
    captured = capsys.readouterr()
    assert "warning: plugin 'broken' could not add its commands (ImportError: cannot import name 'gone')" \
        in captured.err
    assert "broken\n  from: registered in code\n  hooks: kapi_register_commands" in captured.out
