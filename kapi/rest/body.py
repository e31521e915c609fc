"""Reading and decoding request bodies, within kube-apiserver's limits.

* Bodies over ``max_bytes`` (3 MiB by default, as kube-apiserver) are refused with 413 - from the
  Content-Length header before reading, or as soon as the streamed body passes the limit.
* JSON is decoded with orjson; nesting deeper than orjson allows (1024) is a 400, never a crash.
* YAML (``application/yaml``) uses the safe loader and refuses alias bombs: at most
  ``MAX_YAML_ALIASES`` aliases, and at most ``MAX_YAML_NODES`` nodes once aliases are expanded.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import yaml
from starlette.requests import Request

from kapi import errors, protobuf

MAX_YAML_ALIASES = 10000
MAX_YAML_NODES = 200_000
JSON_TYPES = frozenset({"application/json", "", "application/json-patch+json", "application/merge-patch+json",
                        "application/strategic-merge-patch+json"})
YAML_TYPES = frozenset({"application/yaml", "application/x-yaml", "text/yaml", "application/apply-patch+yaml"})


async def read_body(request: Request, max_bytes: int, timeout: float = 60.0) -> bytes:
    """The whole body, or 413 as soon as it exceeds ``max_bytes``, or 504 when it has not fully
    arrived within ``timeout`` seconds (a client dripping its body cannot hold a request forever)."""
    try:
        return await asyncio.wait_for(_read_body(request, max_bytes), timeout)
    except TimeoutError:
        raise errors.timeout(f"the request body did not arrive within {timeout:g}s") from None


async def _read_body(request: Request, max_bytes: int) -> bytes:
    length = request.headers.get("content-length")
    if length is not None:
        try:
            declared = int(length)
        except ValueError:
            raise errors.bad_request("invalid Content-Length header") from None
        if declared > max_bytes:
            raise errors.too_large(f"the request body is {declared} bytes; the limit is {max_bytes} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise errors.too_large(f"the request body is larger than the limit of {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


class _GuardedLoader(yaml.SafeLoader):
    """SafeLoader that refuses documents with many aliases (exponential expansion)."""

    aliases_seen = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self.aliases_seen += 1
            if self.aliases_seen > MAX_YAML_ALIASES:
                raise yaml.YAMLError(f"too many YAML aliases (more than {MAX_YAML_ALIASES})")
        return super().compose_node(parent, index)


def expanded_size(value: Any, limit: int) -> int:
    """How many nodes ``value`` has once shared (aliased) sub-documents are counted every time they
    appear; stops counting past ``limit``. Memoised by identity, so it costs one pass."""
    sizes: dict[int, int] = {}

    def size(node: Any) -> int:
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            return 1
        known = sizes.get(id(node))
        if known is not None:
            return known
        total = 1
        for child in children:
            total += size(child)
            if total > limit:
                break
        sizes[id(node)] = total
        return total

    return size(value)


def _load_yaml(data: bytes) -> Any:
    loader = _GuardedLoader(data)
    try:
        value = loader.get_single_data()
    finally:
        loader.dispose()
    if loader.aliases_seen and expanded_size(value, MAX_YAML_NODES) > MAX_YAML_NODES:
        raise yaml.YAMLError("the document contains excessive aliasing")
    return value


def media_type(content_type: str) -> str:
    """``application/json; charset=utf-8`` -> ``application/json``."""
    return content_type.split(";", 1)[0].strip().lower()


def decode(data: bytes, content_type: str) -> Any:
    """Decode a JSON or YAML body (any JSON value); 400 with the parser's reason when malformed."""
    kind = media_type(content_type)
    if kind not in JSON_TYPES and kind not in YAML_TYPES:
        raise errors.unsupported_media_type(
            f'the body of the request was in an unknown format ("{kind}") - accepted media types include: '
            f"application/json, application/yaml")
    if not data.strip():
        raise errors.bad_request("the request body is empty")
    if kind in YAML_TYPES:
        try:
            return _load_yaml(data)
        except (yaml.YAMLError, RecursionError) as exc:
            raise errors.bad_request(f"the body is not valid YAML: {str(exc)[:300]}") from None
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise errors.bad_request(f"the body is not valid JSON: {str(exc)[:300]}") from None


def decode_object(data: bytes, content_type: str) -> dict[str, Any]:
    """Decode a body that must be one object: a JSON/YAML mapping, or a Kubernetes protobuf
    envelope (what kubectl's typed clients send; 415 for kinds kapi has no wire schema for)."""
    if protobuf.is_protobuf(content_type):
        try:
            return protobuf.decode_object(data)
        except protobuf.UnsupportedProtobuf as exc:
            raise errors.unsupported_media_type(f"{exc}; send the object as application/json") from None
        except ValueError as exc:
            raise errors.bad_request(f"the body is not a valid Kubernetes protobuf object: {exc}") from None
    obj = decode(data, content_type)
    if not isinstance(obj, dict):
        raise errors.bad_request("the body must be an object (a JSON or YAML mapping)")
    return obj
