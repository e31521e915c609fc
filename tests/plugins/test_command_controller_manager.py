"""``kapi controller-manager`` registration (plugin ``command_controller_manager``)."""

from __future__ import annotations

import argparse

import pytest

from kapi.components.controllers.command import options_from_args
from kapi_plugins import command_controller_manager


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="kapi")
    subparsers = root.add_subparsers(dest="command")
    command_controller_manager.kapi_register_commands(subparsers=subparsers)
    return root


def test_command_is_registered_with_kube_flags() -> None:
    args = parser().parse_args(["controller-manager", "--kubeconfig", "k", "--controllers", "*,-podgc",
                                "--node-monitor-grace-period", "1m", "--pod-eviction-timeout", "30s",
                                "--leader-elect", "--use-service-account-credentials"])
    assert args.func.__name__ == "cmd_controller_manager"
    assert args.leader_elect and args.use_service_account_credentials
    assert args.leader_elect_resource_name == "kube-controller-manager"
    options = options_from_args(args, {})
    assert options.node_monitor_grace_period == 60 and options.default_toleration_seconds == 30
    assert options.root_ca_pem == ""


def test_bad_duration_is_a_usage_error() -> None:
    with pytest.raises(SystemExit):
        parser().parse_args(["controller-manager", "--kubeconfig", "k", "--node-monitor-period", "soon"])


def test_unknown_controller_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    args = parser().parse_args(["controller-manager", "--kubeconfig", "k", "--controllers", "nope"])
    assert args.func(args) == 2
    assert "unknown controller 'nope'" in capsys.readouterr().err
