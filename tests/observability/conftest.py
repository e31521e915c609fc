"""The kit's own tests use its fixtures whether or not the ``pytest11`` entry point is installed yet
(importing them here works either way: a conftest fixture of the same name takes precedence)."""

from kapi.testing.pytest_plugin import (  # noqa: F401
    kapi_async_client,
    kapi_client,
    kapi_components,
    kapi_config,
    kapi_kubeconfig,
    kapi_pki,
    kapi_plugins,
    kapi_server,
)
