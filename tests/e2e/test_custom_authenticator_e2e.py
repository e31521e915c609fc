"""examples/custom_authenticator as a third party would use it: pip-installed (into a private
``--target`` directory put on PYTHONPATH, so the test never changes the shared environment), found
through its ``kapi`` entry point by a real kapi-apiserver, and exercised with the official client
(``X-Api-Key`` header) and with kubectl (client certificate, which keeps working beside it)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import Kubectl, Server, start_server

pytestmark = pytest.mark.e2e

PACKAGE = Path(__file__).resolve().parents[2] / "examples" / "custom_authenticator"
KEYS = "# key,user,groups\nsecret-1,ci-robot,deployers|ops\n"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example package, installed with pip into its own directory."""
    target = tmp_path_factory.mktemp("apikey-site")
    source = tmp_path_factory.mktemp("apikey-src") / "pkg"  # a copy: pip's build files stay out of the repo
    shutil.copytree(PACKAGE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    try:
        result = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                                 "--disable-pip-version-check", "--target", str(target), str(source)],
                                capture_output=True, text=True, timeout=180)
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"pip is not usable here: {exc}")
    if result.returncode != 0 and "No module named pip" in result.stderr:
        pytest.skip("pip is not installed")
    assert result.returncode == 0, result.stderr
    assert list(target.glob("kapi_apikey-*.dist-info"))
    return target


@pytest.fixture
def with_plugin(site: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH")) if p))
    return site


@pytest.fixture
def server(with_plugin: Path, tmp_path: Path) -> Iterator[Server]:
    keys = tmp_path / "keys.csv"
    keys.write_text(KEYS)
    srv = start_server(tmp_path / "data", "--authentication-plugins", "apikey", "--apikey-file", str(keys),
                       "--storage-backend", "memory")
    try:
        yield srv
    finally:
        srv.stop()


def test_kapi_plugins_shows_the_installed_package(with_plugin: Path) -> None:
    out = subprocess.run([sys.executable, "-c", "from kapi.cli import main; raise SystemExit(main(['plugins']))"],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    entry = out.split("\napikey\n", 1)[1].split("\n\n", 1)[0]
    assert "from: kapi_apikey (kapi-apikey)" in entry
    assert "kapi_add_options" in entry and "kapi_authenticate" in entry


def test_api_key_and_client_certificate_side_by_side(server: Server) -> None:
    from kubernetes import client, config

    configuration = client.Configuration()
    config.load_kube_config(config_file=str(server.kubeconfig), client_configuration=configuration)
    keyed = client.Configuration()
    keyed.host, keyed.ssl_ca_cert = configuration.host, configuration.ssl_ca_cert  # no client certificate
    review = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    with client.ApiClient(keyed, header_name="X-Api-Key", header_value="secret-1") as api:
        me = client.AuthenticationV1Api(api).create_self_subject_review(review)
    assert me.status.user_info.username == "ci-robot"
    assert me.status.user_info.groups == ["deployers", "ops", "system:authenticated"]
    with (client.ApiClient(keyed, header_name="X-Api-Key", header_value="guess") as api,
          pytest.raises(client.ApiException) as info):
        client.CoreV1Api(api).list_namespace()
    assert info.value.status == 401
    assert "default" in Kubectl.installed(server.kubeconfig)("get", "namespaces", "-o", "name")


def test_the_template_tests_pass_against_the_installed_package(with_plugin: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(PACKAGE / "tests"),
                             "--rootdir", str(PACKAGE)], capture_output=True, text=True, timeout=120,
                            cwd=str(PACKAGE))
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_missing_keys_file_is_a_clear_startup_error(with_plugin: Path, tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-c", "from kapi.cli import apiserver_main; raise SystemExit("
                             "apiserver_main())", "--data-dir", str(tmp_path), "--authentication-plugins", "apikey",
                             "--apikey-file", str(tmp_path / "nope.csv")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert f"--apikey-file {tmp_path / 'nope.csv'}: no such file (plugin apikey)" in result.stderr
