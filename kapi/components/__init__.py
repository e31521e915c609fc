"""The components around the API server: scheduler, kubelet, controller manager, and ``kapi up``.

Each talks to the API server only, through ``kapi.client`` over mutual TLS with its own
kubeconfig, and each is a ``kapi`` sub-command (registered by ``kapi_plugins.command_components``).
"""
