"""``GET pods/NAME/log``: the container log, proxied from the pod's kubelet (``kubectl logs``).

The API server picks the container (``container=``, or the only one; otherwise 400 naming the
choices, as kube-apiserver), finds the node (``spec.nodeName``; an unassigned pod has an empty
log) and its kubelet endpoint (the Node's ``InternalIP`` address and
``status.daemonEndpoints.kubeletEndpoint.Port``), and GETs
``https://IP:PORT/containerLogs/NS/POD/CONTAINER`` with ``follow``, ``tailLines``,
``limitBytes`` and ``previous`` passed on. With ``follow=true`` the answer streams until the
container ends or the client goes away. A kubelet error comes back with its code and text.

The API server authenticates to kubelets with its kubelet-client certificate. Settings (section
``kubelet_client`` of ``config.plugin_options``, filled by the ``kubelet_client`` plugin's flags
``--kubelet-client-certificate``, ``--kubelet-client-key``, ``--kubelet-certificate-authority``),
each defaulting to the generated PKI: ``DATA_DIR/pki/apiserver-kubelet-client.crt``/``.key`` and
``DATA_DIR/pki/ca.crt`` (kubelet serving certificates are verified when that CA exists). The
HTTP client is made once per app and kept in ``app.plugin_state("kubelet_client")["http"]``.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

import anyio
import httpx
from starlette.responses import Response, StreamingResponse

from kapi import errors
from kapi.rest.context import Ctx

if TYPE_CHECKING:
    from kapi.app import App

Obj = dict[str, Any]
SECTION = "kubelet_client"
PASSED_ON = ("follow", "tailLines", "limitBytes", "previous", "timestamps", "sinceSeconds")
TEXT = "text/plain"
REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound"}


def kubelet_tls(config: Mapping[str, Any], data_dir: str) -> ssl.SSLContext:
    """The client TLS context for kubelets (see the module docstring)."""
    pki = os.path.join(data_dir, "pki")
    cert = str(config.get("client_certificate") or os.path.join(pki, "apiserver-kubelet-client.crt"))
    key = str(config.get("client_key") or os.path.join(pki, "apiserver-kubelet-client.key"))
    ca = str(config.get("certificate_authority") or os.path.join(pki, "ca.crt"))
    if os.path.exists(ca):
        ctx = ssl.create_default_context(cafile=ca)
        ctx.check_hostname = False  # kubelets are addressed by IP; the chain is what is checked
    else:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if os.path.exists(cert) and os.path.exists(key):
        ctx.load_cert_chain(cert, key)
    return ctx


def kubelet_http(app: App) -> httpx.AsyncClient:
    """The app's HTTP client for kubelets (made on first use)."""
    state = app.plugin_state(SECTION)
    client = state.get("http")
    if client is None:
        tls = kubelet_tls(app.config.options_for(SECTION), app.config.data_dir)
        # no idle keep-alive connections: a kubelet shutting down would wait for them to close
        client = state["http"] = httpx.AsyncClient(verify=tls, timeout=httpx.Timeout(10.0, read=None),
                                                   limits=httpx.Limits(max_keepalive_connections=0))
    return client  # type: ignore[no-any-return]


def _cached(ctx: Ctx, group: str, plural: str, namespace: str, name: str) -> Obj | None:
    rt = ctx.app.registry.lookup(group, "v1", plural)
    if rt is None:
        return None
    key = rt.key(ctx.app.root, namespace, name)
    cache = ctx.app.cache.route(key)
    cached = cache.objects.get(key) if cache is not None else None
    return cached.obj if cached is not None else None


def choose_container(pod: Mapping[str, Any], wanted: str) -> str:
    """The container to read; 400 with kube-apiserver's messages when it is ambiguous or unknown."""
    spec = pod.get("spec") or {}
    name = (pod.get("metadata") or {}).get("name", "")
    containers = [str(c.get("name")) for c in spec.get("containers") or []]
    init = [str(c.get("name")) for c in spec.get("initContainers") or []]
    ephemeral = [str(c.get("name")) for c in spec.get("ephemeralContainers") or []]
    if not wanted:
        if len(containers) == 1:
            return containers[0]
        message = f"a container name must be specified for pod {name}"
        if containers:
            message += f", choose one of: [{' '.join(containers)}]"
        if init:
            message += f" or one of the init containers: [{' '.join(init)}]"
        raise errors.bad_request(message)
    if wanted not in (*containers, *init, *ephemeral):
        raise errors.bad_request(f"container {wanted} is not valid for pod {name}")
    return wanted


def kubelet_endpoint(node: Mapping[str, Any]) -> str:
    """``https://IP:PORT`` of the node's kubelet. :raises APIError: 400 when the Node has none."""
    status = node.get("status") or {}
    port = ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port")
    addresses = {a.get("type"): a.get("address") for a in status.get("addresses") or []}
    host = addresses.get("InternalIP") or addresses.get("ExternalIP") or addresses.get("Hostname")
    if not port or not host:
        raise errors.bad_request(f"node {node.get('metadata', {}).get('name')} has no kubelet endpoint")
    return f"https://{f'[{host}]' if ':' in str(host) else host}:{port}"


async def _upstream_error(response: httpx.Response) -> errors.APIError:
    text = (await response.aread()).decode("utf-8", "replace").strip()
    code = response.status_code if response.status_code in REASONS else 500
    return errors.APIError(code, REASONS.get(code, "InternalError"), text or f"kubelet answered {code}")


async def pod_log(ctx: Ctx) -> Response:
    """GET pods/NAME/log (see the module docstring)."""
    await ctx.app.cache.sync()
    pod = _cached(ctx, "", "pods", ctx.namespace, ctx.name)
    if pod is None:
        raise ctx.not_found()
    container = choose_container(pod, ctx.query("container"))
    node_name = (pod.get("spec") or {}).get("nodeName")
    if not node_name:
        return Response(b"", media_type=TEXT)
    node = _cached(ctx, "", "nodes", "", node_name)
    if node is None:
        raise errors.not_found("", "nodes", node_name)
    params = {k: ctx.query(k) for k in PASSED_ON if ctx.query(k)}
    url = f"{kubelet_endpoint(node)}/containerLogs/{ctx.namespace}/{ctx.name}/{container}"
    http = kubelet_http(ctx.app)
    request = http.build_request("GET", url, params=params)
    try:
        response = await http.send(request, stream=True)
    except httpx.HTTPError as exc:
        raise errors.APIError(500, "InternalError", f"Get \"{url}\": {exc}") from None
    if response.status_code >= 400:
        try:
            raise await _upstream_error(response)
        finally:
            await response.aclose()
    if ctx.flag("follow"):
        async def relay() -> AsyncIterator[bytes]:
            try:
                async for chunk in response.aiter_raw():
                    yield chunk
            except httpx.HTTPError:
                return
            finally:
                with anyio.CancelScope(shield=True):  # the client left: still hang up on the kubelet
                    await response.aclose()

        return StreamingResponse(relay(), media_type=TEXT)
    try:
        data = await response.aread()
    finally:
        await response.aclose()
    return Response(data, media_type=TEXT)
