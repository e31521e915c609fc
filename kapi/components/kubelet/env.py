"""A container's environment and command line, as the kubelet resolves them before starting it.

* ``envFrom`` (ConfigMaps, Secrets, with ``prefix``) first, then ``env`` entries in order:
  ``value`` (with ``$(VAR)`` references to earlier variables expanded; ``$$`` escapes),
  ``fieldRef`` (metadata.name/namespace/uid, metadata.labels['k'] and annotations['k'],
  spec.nodeName, spec.serviceAccountName, status.hostIP/podIP/podIPs), ``resourceFieldRef``
  (limits/requests of cpu, memory, ephemeral-storage, divided by ``divisor`` and rounded up),
  ``configMapKeyRef`` / ``secretKeyRef`` (read through the API server; ``optional`` honoured).
* ``command`` and ``args`` with ``$(VAR)`` expanded against the final environment.
* ``HOSTNAME`` is the pod name unless set.

A missing non-optional reference raises ``ConfigError`` (the container waits with reason
``CreateContainerConfigError``, as in Kubernetes).
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from kapi.kinds.quantity import parse_quantity

Obj = dict[str, Any]
Fetch = Callable[[str, str], Awaitable[Obj | None]]  # (kind plural, name) -> object or None

_REFERENCE = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.\-]*)\)")
_SUBSCRIPT = re.compile(r"^metadata\.(labels|annotations)\['(.+)'\]$")


class ConfigError(Exception):
    """A referenced ConfigMap, Secret or key is missing (and not optional), or a ref is invalid."""


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes ``$(VAR)`` expansion: known variables are replaced, unknown ones kept, ``$$`` -> ``$``."""
    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return env.get(name, match.group(0))

    return _REFERENCE.sub(replace, text)


def field_value(pod: Mapping[str, Any], path: str, pod_ip: str, host_ip: str) -> str:
    """The value of a ``fieldRef.fieldPath``. :raises ConfigError: an unsupported path."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    simple = {"metadata.name": meta.get("name"), "metadata.namespace": meta.get("namespace"),
              "metadata.uid": meta.get("uid"), "spec.nodeName": spec.get("nodeName"),
              "spec.serviceAccountName": spec.get("serviceAccountName"), "status.hostIP": host_ip,
              "status.hostIPs": host_ip, "status.podIP": pod_ip, "status.podIPs": pod_ip}
    if path in simple:
        return str(simple[path] or "")
    subscript = _SUBSCRIPT.match(path)
    if subscript:
        return str((meta.get(subscript.group(1)) or {}).get(subscript.group(2)) or "")
    raise ConfigError(f"unsupported fieldPath {path!r}")


def resource_value(container: Mapping[str, Any], ref: Mapping[str, Any]) -> str:
    """The value of a ``resourceFieldRef`` (of the container itself), as kubelet formats it."""
    kind, _, name = str(ref.get("resource") or "").partition(".")
    resources = container.get("resources") or {}
    raw = (resources.get(kind) or {}).get(name)
    if raw is None and kind == "requests":
        raw = (resources.get("limits") or {}).get(name)
    if raw is None:
        return "0"
    divisor = parse_quantity(ref.get("divisor") or "1")
    return str(math.ceil(parse_quantity(raw) / (divisor or 1)))


def _data_of(obj: Obj, kind: str) -> dict[str, str]:
    if kind == "secrets":
        return {k: base64.b64decode(v).decode("utf-8", "replace") for k, v in (obj.get("data") or {}).items()} \
            | dict(obj.get("stringData") or {})
    return {**{k: str(v) for k, v in (obj.get("data") or {}).items()},
            **{k: base64.b64decode(v).decode("utf-8", "replace") for k, v in (obj.get("binaryData") or {}).items()}}


async def _source(fetch: Fetch, kind: str, name: str, optional: bool) -> dict[str, str] | None:
    obj = await fetch(kind, name)
    if obj is None:
        if optional:
            return None
        raise ConfigError(f'{"secret" if kind == "secrets" else "configmap"} "{name}" not found')
    return _data_of(obj, kind)


async def _key_ref(fetch: Fetch, kind: str, ref: Mapping[str, Any]) -> str | None:
    optional = bool(ref.get("optional"))
    data = await _source(fetch, kind, str(ref.get("name") or ""), optional)
    if data is None:
        return None
    key = str(ref.get("key") or "")
    if key not in data:
        if optional:
            return None
        raise ConfigError(f'couldn\'t find key {key} in {"Secret" if kind == "secrets" else "ConfigMap"} '
                          f'{ref.get("name")}')
    return data[key]


async def resolve_env(pod: Mapping[str, Any], container: Mapping[str, Any], *, pod_ip: str, host_ip: str,
                      fetch: Fetch) -> dict[str, str]:
    """The container's environment (see the module docstring)."""
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        prefix = str(source.get("prefix") or "")
        for kind, key in (("configmaps", "configMapRef"), ("secrets", "secretRef")):
            ref = source.get(key)
            if ref:
                data = await _source(fetch, kind, str(ref.get("name") or ""), bool(ref.get("optional")))
                env.update({prefix + k: v for k, v in (data or {}).items()})
    for var in container.get("env") or []:
        name = str(var.get("name") or "")
        source = var.get("valueFrom")
        if not source:
            env[name] = expand(str(var.get("value") or ""), env)
            continue
        value: str | None
        if source.get("fieldRef"):
            value = field_value(pod, str(source["fieldRef"].get("fieldPath") or ""), pod_ip, host_ip)
        elif source.get("resourceFieldRef"):
            value = resource_value(container, source["resourceFieldRef"])
        elif source.get("configMapKeyRef"):
            value = await _key_ref(fetch, "configmaps", source["configMapKeyRef"])
        elif source.get("secretKeyRef"):
            value = await _key_ref(fetch, "secrets", source["secretKeyRef"])
        else:
            raise ConfigError(f"env {name}: unsupported valueFrom")
        if value is not None:
            env[name] = value
    env.setdefault("HOSTNAME", str((pod.get("metadata") or {}).get("name") or ""))
    return env


def expanded_container(container: Mapping[str, Any], env: Mapping[str, str]) -> Obj:
    """A copy of ``container`` with ``$(VAR)`` expanded in ``command`` and ``args``."""
    out = dict(container)
    for key in ("command", "args"):
        if out.get(key):
            out[key] = [expand(str(a), env) for a in out[key]]
    return out
