"""``kapi up`` building blocks: component kubeconfigs and the process supervisor."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from kapi.components.supervisor import RESTART_DELAY, Supervisor
from kapi.components.up import FAKE_IDENTITY, component_kubeconfigs
from kapi_certs import common_name, current_credentials, ensure_default_credentials, load_kubeconfig, organizations


def test_component_kubeconfigs_are_made_once_per_server(tmp_path: Path) -> None:
    ensure_default_credentials(tmp_path, server="https://127.0.0.1:1234")
    paths = component_kubeconfigs(tmp_path, "https://127.0.0.1:1234", ["n0"], True)
    assert set(paths) == {"kube-scheduler", "kube-controller-manager", "kubelet-n0", "kubelet-fake"}
    identities = {}
    for name, path in paths.items():
        server, _, cert = current_credentials(load_kubeconfig(path))
        assert server == "https://127.0.0.1:1234" and cert is not None
        identities[name] = (common_name(cert), organizations(cert))
        assert path.stat().st_mode & 0o077 == 0
    assert identities["kubelet-n0"] == ("system:node:n0", ("system:nodes",))
    assert identities["kube-scheduler"] == ("system:kube-scheduler", ())
    assert identities["kubelet-fake"] == (FAKE_IDENTITY[0], FAKE_IDENTITY[1])
    before = paths["kube-scheduler"].read_bytes()
    assert component_kubeconfigs(tmp_path, "https://127.0.0.1:1234", ["n0"], False)["kube-scheduler"].read_bytes() \
        == before
    moved = component_kubeconfigs(tmp_path, "https://127.0.0.1:9999", [], False)["kube-scheduler"]
    assert current_credentials(load_kubeconfig(moved))[0] == "https://127.0.0.1:9999"


def test_supervisor_restarts_and_stops(tmp_path: Path) -> None:
    supervisor = Supervisor(tmp_path / "logs")
    flaky = supervisor.start("flaky", [sys.executable, "-c", "print('hi'); raise SystemExit(3)"])
    sleeper = supervisor.start("sleeper", [sys.executable, "-c", "import time; time.sleep(60)"])
    assert flaky.process is not None
    flaky.process.wait(10)
    assert supervisor.check() is None  # noticed
    time.sleep(RESTART_DELAY + 0.1)
    assert supervisor.check() is None  # restarted
    assert flaky.restarts == 1
    assert "hi" in flaky.tail() and "starting:" in flaky.tail()
    critical = supervisor.start("critical", [sys.executable, "-c", "raise SystemExit(1)"], critical=True)
    assert critical.process is not None
    critical.process.wait(10)
    assert supervisor.check() is critical
    started = time.monotonic()
    supervisor.stop_all(timeout=5)
    assert time.monotonic() - started < 5
    assert sleeper.process is not None and sleeper.process.returncode is not None
