"""kapi's pytest plugin: a real API server per test, in process, over TLS (what envtest gives Go).

Installed with kapi (entry point ``pytest11``: ``kapi = kapi.testing.pytest_plugin``), so its
fixtures are available in every test of a project that has kapi installed::

    def test_my_operator(kapi_client):                      # kubernetes.client.ApiClient
        core = kubernetes.client.CoreV1Api(kapi_client)
        core.create_namespaced_config_map("default", {"metadata": {"name": "x"}})

    def test_with_kubectl(kapi_kubeconfig):                 # pathlib.Path
        subprocess.run(["kubectl", "--kubeconfig", str(kapi_kubeconfig), "get", "ns"], check=True)

    async def test_async(kapi_async_client): ...            # kubernetes_asyncio ApiClient, or httpx

Fixtures (all function-scoped except ``kapi_pki``):

* ``kapi_server`` - a ``kapi.testing.inprocess.KapiServer``: a fresh ``App`` on the memory store,
  served over TLS on a free ``127.0.0.1`` port by a background thread with its own event loop
  (so sync and async tests both work; use ``kapi_server.call(coro)`` to reach the ``App`` itself).
  It starts in well under 0.5 s (the first one in a process also pays for imports) and is stopped
  after the test. ``kapi_server.kubeconfig_for("alice", ("dev",))`` makes a kubeconfig for
  another identity.
* ``kapi_kubeconfig`` - the admin kubeconfig path (``CN=kubernetes-admin, O=system:masters``).
* ``kapi_client`` - the official ``kubernetes`` client's ``ApiClient`` (skipped if not installed).
* ``kapi_async_client`` - a ``kubernetes_asyncio`` ``ApiClient`` when that package is installed,
  else an ``httpx.AsyncClient`` with ``base_url`` and the admin certificate.
* ``kapi_config`` - the ``kapi.Config`` used; override the fixture, or mark a test
  ``@pytest.mark.kapi(authorizers=("RBAC",), admission=(...))`` to change fields.
* ``kapi_plugins`` - extra ``(name, plugin)`` pairs registered in the app, replacing an installed
  plugin of the same name (override the fixture; name them in the config).
* ``kapi_components`` - controllers, scheduler and fake kubelets to run beside the server, from
  ``@pytest.mark.kapi_components(controllers=("*",), scheduler=True, fake_nodes=("node-1",))``:
  real garbage collection, namespace deletion, Deployments -> ReplicaSets -> Pods, scheduling and
  pods reaching Running (what envtest lacks). They run as the admin, on the server's loop.
* ``kapi_pki`` - the session's CA, serving and admin certificates (``LocalPKI``).

pytest-xdist: each worker process has its own temporary directories and kernel-chosen ports, so
nothing is shared between workers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from kapi.config import Config
from kapi.testing.components import Components

if TYPE_CHECKING:  # the server machinery is imported when a test first asks for it, not at pytest start
    from kapi.testing.inprocess import KapiServer, LocalPKI

try:
    import pytest_asyncio
except ImportError:  # pragma: no cover - the async fixture needs pytest-asyncio
    pytest_asyncio = None  # type: ignore[assignment]

MARKER = "kapi"
COMPONENTS_MARKER = "kapi_components"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{MARKER}(**fields): kapi.Config fields for the kapi_server fixture")
    config.addinivalue_line("markers", f"{COMPONENTS_MARKER}(controllers=('*',), scheduler=True, "
                            "fake_nodes=('node-1',)): run these beside kapi_server")


@pytest.fixture(scope="session")
def kapi_pki(tmp_path_factory: pytest.TempPathFactory) -> LocalPKI:
    """The session's test PKI (made once per process; also warms kapi's imports)."""
    from kapi.app import create_app
    from kapi.testing.inprocess import LocalPKI

    create_app(Config(storage_backend="memory")).asgi()  # import and build once: later servers start fast
    return LocalPKI.create(tmp_path_factory.mktemp("kapi-pki"))


@pytest.fixture
def kapi_config(request: pytest.FixtureRequest) -> Config:
    """Memory storage, client-certificate authentication, AlwaysAllow; ``@pytest.mark.kapi(...)``
    fields applied on top."""
    fields: dict[str, Any] = {}
    for mark in reversed(list(request.node.iter_markers(MARKER))):
        fields.update(mark.kwargs)
    return Config(storage_backend="memory", authenticators=("x509",)).with_changes(**fields)


@pytest.fixture
def kapi_components(request: pytest.FixtureRequest) -> Components:
    """What runs beside the server: ``@pytest.mark.kapi_components(...)`` fields (nothing by default)."""
    fields: dict[str, Any] = {}
    for mark in reversed(list(request.node.iter_markers(COMPONENTS_MARKER))):
        fields.update(mark.kwargs)
    normalized: dict[str, Any] = {k: tuple(v) if isinstance(v, list | tuple) else v for k, v in fields.items()}
    return Components(**normalized)


@pytest.fixture
def kapi_plugins() -> list[tuple[str, Any]]:
    """Extra ``(name, plugin)`` pairs for the app (none by default)."""
    return []


@pytest.fixture
def kapi_server(kapi_config: Config, kapi_plugins: list[tuple[str, Any]], kapi_components: Components,
                kapi_pki: LocalPKI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KapiServer]:
    """A running in-process API server over TLS (see the module docstring)."""
    from kapi.app import App
    from kapi.testing.inprocess import start_server
    from kapi.testing.plugins import plugin_manager

    app = App(kapi_config, plugin_manager(kapi_plugins))
    server = start_server(app, kapi_pki, tmp_path_factory.mktemp("kapi-server"))
    try:
        if kapi_components:
            server.start_components(kapi_components)
        yield server
    finally:
        server.stop()


@pytest.fixture
def kapi_kubeconfig(kapi_server: KapiServer) -> Path:
    """The admin kubeconfig of ``kapi_server``."""
    return kapi_server.kubeconfig


@pytest.fixture
def kapi_client(kapi_server: KapiServer) -> Iterator[Any]:
    """``kubernetes.client.ApiClient`` for ``kapi_server`` as the admin."""
    kubernetes = pytest.importorskip("kubernetes")
    configuration = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(config_file=str(kapi_server.kubeconfig), client_configuration=configuration)
    api = kubernetes.client.ApiClient(configuration)
    try:
        yield api
    finally:
        api.close()
        api.rest_client.pool_manager.clear()  # close kept-alive connections: the server stops at once


async def _async_client(server: KapiServer) -> AsyncIterator[Any]:
    try:
        from kubernetes_asyncio import client, config
    except ImportError:
        import ssl

        import httpx

        ctx = ssl.create_default_context(cafile=server.ca_file)
        ctx.load_cert_chain(*server.client_cert)
        async with httpx.AsyncClient(base_url=server.url, verify=ctx, timeout=10) as http:
            yield http
        return
    configuration = client.Configuration()
    await config.load_kube_config(config_file=str(server.kubeconfig), client_configuration=configuration)
    api = client.ApiClient(configuration)
    try:
        yield api
    finally:
        await api.close()


if pytest_asyncio is not None:

    @pytest_asyncio.fixture
    async def kapi_async_client(kapi_server: KapiServer) -> AsyncIterator[Any]:
        """``kubernetes_asyncio.client.ApiClient`` for ``kapi_server`` (admin), or an
        ``httpx.AsyncClient`` with the admin certificate when kubernetes_asyncio is missing."""
        async for api in _async_client(kapi_server):
            yield api
