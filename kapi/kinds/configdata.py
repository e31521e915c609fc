"""ConfigMaps and Secrets: key formats, size limit, ``immutable``, secret types.

Secret ``data`` values travel as base64 strings and are stored as given; validation rejects a
value that is not valid base64 (kube fails to decode it). ``stringData`` is folded into ``data``
on write, as the v1 conversion does, and never stored.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson

from kapi.errors import Cause
from kapi.kinds import fielderrors as fe
from kapi.kinds.access import as_dict
from kapi.kinds.formats import is_config_map_key
from kapi.kinds.printing import AGE, age
from kapi.resources import ALL_VERBS, Column, ResourceType, Strategy

Obj = dict[str, Any]

MAX_SIZE = 1024 * 1024
REDACTED = "<secret contents redacted>"
_B64_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")


def decode_base64(value: str) -> bytes:
    """Go's ``base64.StdEncoding`` decoding as encoding/json applies it to ``[]byte`` fields.

    :raises ValueError: ``illegal base64 data at input byte N``.
    """
    compact = value.replace("\r", "").replace("\n", "")
    for i, ch in enumerate(compact):
        if ch not in _B64_ALPHABET:
            raise ValueError(f"illegal base64 data at input byte {i}")
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"illegal base64 data at input byte {max(len(compact) - 1, 0)}") from None


def _validate_keys(values: Any, path: str, other: Any, other_name: str) -> tuple[list[Cause], int]:
    errs: list[Cause] = []
    size = 0
    other = as_dict(other)
    for k, v in as_dict(values).items():
        p = fe.key(path, k)
        errs.extend(fe.each_invalid(p, k, is_config_map_key(k)))
        if k in other:
            errs.append(fe.invalid(p, k, f"duplicate of key present in {other_name}"))
        size += len(v) if isinstance(v, str) else 0
    return errs, size


def _validate_immutable(obj: Obj, old: Obj, fields: tuple[str, ...]) -> list[Cause]:
    if not old.get("immutable"):
        return []
    errs = []
    if not obj.get("immutable"):
        errs.append(fe.forbidden("immutable", "field is immutable when `immutable` is set"))
    errs.extend(fe.forbidden(name, "field is immutable when `immutable` is set")
                for name in fields if as_dict(obj.get(name)) != as_dict(old.get(name)))
    return errs


class ConfigMapStrategy(Strategy):
    """ConfigMaps (``configMapStrategy``)."""

    def validate(self, obj: Obj) -> list[Cause]:
        errs, size = _validate_keys(obj.get("data"), "data", obj.get("binaryData"), "binaryData")
        more, binary_size = _validate_keys(obj.get("binaryData"), "binaryData", obj.get("data"), "data")
        errs.extend(more)
        if size + binary_size * 3 // 4 > MAX_SIZE:
            errs.append(fe.too_long("", MAX_SIZE))
        return errs

    def validate_update(self, obj: Obj, old: Obj) -> list[Cause]:
        return [*self.validate(obj), *_validate_immutable(obj, old, ("data", "binaryData"))]

    def columns(self) -> list[Column]:
        return [Column("Data", description="Data contains the configuration data. Each key must consist of "
                                           "alphanumeric characters, '-', '_' or '.'."), AGE]

    def cells(self, obj: Obj) -> list[Any]:
        return [len(as_dict(obj.get("data"))) + len(as_dict(obj.get("binaryData"))), age(obj)]


# kube's secret types and the data keys each one requires
_TLS = ("tls.crt", "tls.key")


def _validate_secret_type(obj: Obj, data: dict[str, Any]) -> list[Cause]:
    kind = obj.get("type") or "Opaque"
    if kind == "kubernetes.io/service-account-token":
        annotations = as_dict(as_dict(obj.get("metadata")).get("annotations"))
        if not annotations.get("kubernetes.io/service-account.name"):
            return [fe.required("metadata.annotations[kubernetes.io/service-account.name]")]
    elif kind in ("kubernetes.io/dockercfg", "kubernetes.io/dockerconfigjson"):
        key = ".dockercfg" if kind.endswith("dockercfg") else ".dockerconfigjson"
        if key not in data:
            return [fe.required(f"data[{key}]")]
        try:
            parsed = orjson.loads(decode_base64(str(data[key])))
        except (ValueError, orjson.JSONDecodeError) as exc:
            return [fe.invalid(f"data[{key}]", REDACTED, str(exc))]
        if not isinstance(parsed, dict):
            return [fe.invalid(f"data[{key}]", REDACTED, "json: cannot unmarshal into map[string]interface {}")]
    elif kind == "kubernetes.io/basic-auth":
        if "username" not in data and "password" not in data:
            return [fe.required("data[username]"), fe.required("data[password]")]
    elif kind == "kubernetes.io/ssh-auth":
        if not data.get("ssh-privatekey"):
            return [fe.required("data[ssh-privatekey]")]
    elif kind == "kubernetes.io/tls":
        return [fe.required(f"data[{k}]") for k in _TLS if k not in data]
    return []


class SecretStrategy(Strategy):
    """Secrets (``secretStrategy``)."""

    def default(self, obj: Obj) -> None:
        if not obj.get("type"):
            obj["type"] = "Opaque"
        string_data = obj.pop("stringData", None)
        if isinstance(string_data, dict) and string_data:
            data: dict[str, Any] = obj["data"] if isinstance(obj.get("data"), dict) else {}
            for k, v in string_data.items():
                data[k] = base64.b64encode(str(v).encode()).decode()
            obj["data"] = data

    def validate(self, obj: Obj) -> list[Cause]:
        data = as_dict(obj.get("data"))
        errs: list[Cause] = []
        size = 0
        for k, v in data.items():
            p = fe.key("data", k)
            errs.extend(fe.each_invalid(p, k, is_config_map_key(k)))
            try:
                size += len(decode_base64(v if isinstance(v, str) else ""))
            except ValueError as exc:
                errs.append(fe.invalid(p, REDACTED, str(exc)))
        if size > MAX_SIZE:
            errs.append(fe.too_long("data", MAX_SIZE))
        errs.extend(_validate_secret_type(obj, data))
        return errs

    def validate_update(self, obj: Obj, old: Obj) -> list[Cause]:
        errs = self.validate(obj)
        if (obj.get("type") or "Opaque") != (old.get("type") or "Opaque"):
            errs.append(fe.immutable("type", obj.get("type") or ""))
        return [*errs, *_validate_immutable(obj, old, ("data",))]

    def field_values(self, obj: Obj) -> dict[str, str]:
        return {"type": str(obj.get("type") or "")}

    def columns(self) -> list[Column]:
        return [Column("Type", description="Used to facilitate programmatic handling of secret data."),
                Column("Data", description="Data contains the secret data."), AGE]

    def cells(self, obj: Obj) -> list[Any]:
        return [str(obj.get("type") or ""), len(as_dict(obj.get("data"))), age(obj)]


def resources() -> list[ResourceType]:
    return [
        ResourceType("", "v1", "ConfigMap", "configmaps", "configmap", True, short_names=("cm",), verbs=ALL_VERBS,
                     storage_resource="configmaps", strategy=ConfigMapStrategy()),
        ResourceType("", "v1", "Secret", "secrets", "secret", True, verbs=ALL_VERBS, storage_resource="secrets",
                     strategy=SecretStrategy()),
    ]
