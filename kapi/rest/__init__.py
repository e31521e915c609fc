"""The Kubernetes REST API: the generic handlers every resource shares, and the few special ones.

``kapi.rest.dispatch`` is the single ASGI endpoint for ``/api/v1/...`` and ``/apis/G/V/...``
resource paths; it looks the resource up in the app's registry and calls the verb's handler.
"""
