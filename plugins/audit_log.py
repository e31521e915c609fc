"""Audit logging (kube-apiserver's ``--audit-*`` flags): audit.k8s.io/v1 events to a file and/or a webhook.

Enabled by ``--audit-policy-file`` plus at least one backend, exactly as in kube-apiserver:

* ``--audit-policy-file PATH`` - an ``audit.k8s.io/v1`` ``Policy`` (YAML or JSON): ``rules`` tried
  in order, the first match sets the level (``None``, ``Metadata``, ``Request``,
  ``RequestResponse``; no match -> ``None``). A rule matches on ``users``, ``userGroups``,
  ``verbs``, ``resources`` (``group``, ``resources`` with ``pods``, ``pods/log``, ``*/status``,
  ``pods/*``, ``*``, and ``resourceNames``), ``namespaces`` (``""`` = cluster-scoped) or
  ``nonResourceURLs`` (``/healthz*``); ``omitStages`` (policy-wide and per rule) and
  ``omitManagedFields`` work as in kube.
* ``--audit-log-path PATH`` (``-`` = stdout): one JSON event per line. Rotation (lumberjack's
  rules): ``--audit-log-maxsize`` MB per file (0 = never rotate), ``--audit-log-maxbackup`` old
  files kept (0 = all), ``--audit-log-maxage`` days (0 = forever); rotated files are named
  ``NAME-2006-01-02T15-04-05.000.EXT``.
* ``--audit-webhook-config-file PATH`` - a kubeconfig naming the receiver (``server``, its CA,
  and a client certificate or token); events are POSTed as an ``EventList`` in batches of up to
  ``--audit-webhook-batch-max-size`` (400) events, at least every
  ``--audit-webhook-batch-max-wait`` (30s), retried with backoff from
  ``--audit-webhook-initial-backoff`` (10s), three tries.

Stages: ``RequestReceived`` (after authentication), ``ResponseStarted`` (watches only),
``ResponseComplete``, ``Panic`` (an unexpected error). Each event has ``auditID`` (the
``Audit-Id`` response header), ``user`` (and ``impersonatedUser``), ``sourceIPs``, ``userAgent``,
``objectRef``, ``responseStatus``, the kube-apiserver ``authorization.k8s.io/decision|reason``
annotations and kapi's pipeline trace (``kapi.io/trace-authenticator``, ``-authorizer``,
``-mutate-PLUGIN``, ``-validate-PLUGIN``); at ``Request`` and above ``requestObject``, at
``RequestResponse`` also ``responseObject`` (not for watches).

Secrets: at levels below ``RequestResponse`` the values of a Secret's ``data`` and ``stringData``
(and a TokenReview's ``spec.token``) in ``requestObject`` are replaced by ``<redacted>``, and
mutation patches are only recorded at ``Request`` and above. kube-apiserver writes Secret bodies
as they are at ``Request`` level; kapi does not, so a ``Request``-level catch-all rule cannot leak
them. At ``RequestResponse`` bodies are written whole, as in kube.

Embedders set the same things in ``config.plugin_options["audit_log"]``: ``policy_file`` or
``policy`` (the Policy as a dict), ``log_path``, ``log_maxsize`` (MB, may be fractional),
``log_maxbackup``, ``log_maxage``, ``webhook_config_file``, ``webhook_batch_max_size``,
``webhook_batch_max_wait`` and ``webhook_initial_backoff`` (seconds).

(One module by the one-plugin-one-module rule; it is long because policy, events and two
backends belong together.)
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime
import logging
import os
import ssl
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson
import yaml

import kapi

NAME = "audit_log"
LEVELS = ("None", "Metadata", "Request", "RequestResponse")
STAGES = ("RequestReceived", "ResponseStarted", "ResponseComplete", "Panic")
REDACTED = "<redacted>"
MAX_BODY = 3 * 1024 * 1024
log = logging.getLogger("kapi.audit")

Obj = dict[str, Any]

# ---------------------------------------------------------------------------------------------
# policy


@dataclass(frozen=True)
class GroupResources:
    group: str = ""
    resources: tuple[str, ...] = ()
    resource_names: tuple[str, ...] = ()

    def matches(self, attrs: kapi.RequestAttributes) -> bool:
        if self.group != attrs.api_group:
            return False
        if not self.resources:
            return True
        if self.resource_names and attrs.name not in self.resource_names:
            return False
        combined = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
        for res in self.resources:
            if res in (combined, "*") or (attrs.subresource and res == f"*/{attrs.subresource}"):
                return True
            if res.endswith("/*") and attrs.resource == res[:-2]:
                return True
        return False


@dataclass(frozen=True)
class Rule:
    level: str
    users: frozenset[str] = frozenset()
    user_groups: frozenset[str] = frozenset()
    verbs: frozenset[str] = frozenset()
    resources: tuple[GroupResources, ...] = ()
    namespaces: frozenset[str] | None = None
    non_resource_urls: tuple[str, ...] = ()
    omit_stages: frozenset[str] = frozenset()
    omit_managed_fields: bool | None = None

    def matches(self, attrs: kapi.RequestAttributes) -> bool:
        """kube-apiserver's ``ruleMatches``."""
        user = attrs.user
        if self.users and user.name not in self.users:
            return False
        if self.user_groups and not self.user_groups.intersection(user.groups):
            return False
        if self.verbs and attrs.verb not in self.verbs:
            return False
        if self.namespaces is not None or self.resources:
            if not attrs.is_resource_request:
                return False
            if self.namespaces is not None and attrs.namespace not in self.namespaces:
                return False
            return not self.resources or any(gr.matches(attrs) for gr in self.resources)
        if self.non_resource_urls:
            return not attrs.is_resource_request and any(_path_matches(attrs.path, spec)
                                                         for spec in self.non_resource_urls)
        return True


def _path_matches(path: str, spec: str) -> bool:
    return spec in ("*", path) or (spec.endswith("*") and path.startswith(spec.rstrip("*")))


@dataclass(frozen=True)
class Decision:
    """What the policy says about one request."""

    level: str
    omit_stages: frozenset[str] = frozenset()
    omit_managed_fields: bool = False


@dataclass(frozen=True)
class Policy:
    rules: tuple[Rule, ...]
    omit_stages: frozenset[str] = frozenset()
    omit_managed_fields: bool = False

    def evaluate(self, attrs: kapi.RequestAttributes) -> Decision:
        for rule in self.rules:
            if rule.matches(attrs):
                omit = rule.omit_managed_fields if rule.omit_managed_fields is not None else self.omit_managed_fields
                return Decision(rule.level, self.omit_stages | rule.omit_stages, omit)
        return Decision("None")


def _strings(raw: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = raw.get(key) or ()
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{where}.{key} must be a list of strings")
    return tuple(value)


def _stages(raw: Mapping[str, Any], where: str) -> frozenset[str]:
    stages = _strings(raw, "omitStages", where)
    unknown = set(stages) - set(STAGES)
    if unknown:
        raise ValueError(f"{where}.omitStages: unknown stage(s) {sorted(unknown)}; use {', '.join(STAGES)}")
    return frozenset(stages)


def parse_policy(doc: Any) -> Policy:
    """An audit.k8s.io/v1 Policy document -> ``Policy``. Raises ``ValueError`` naming the bad field."""
    if not isinstance(doc, Mapping) or doc.get("kind") != "Policy":
        raise ValueError("not an audit policy: expected kind: Policy (apiVersion: audit.k8s.io/v1)")
    if doc.get("apiVersion") not in ("audit.k8s.io/v1", None):
        raise ValueError(f"unsupported apiVersion {doc.get('apiVersion')!r}: use audit.k8s.io/v1")
    rules = []
    for index, raw in enumerate(doc.get("rules") or ()):
        where = f"rules[{index}]"
        if not isinstance(raw, Mapping):
            raise ValueError(f"{where} must be a mapping")
        level = raw.get("level")
        if level not in LEVELS:
            raise ValueError(f"{where}.level {level!r}: use one of {', '.join(LEVELS)}")
        resources = tuple(GroupResources(str(gr.get("group", "")), _strings(gr, "resources", where),
                                         _strings(gr, "resourceNames", where)) for gr in raw.get("resources") or ())
        namespaces = frozenset(_strings(raw, "namespaces", where)) if raw.get("namespaces") else None
        urls = _strings(raw, "nonResourceURLs", where)
        if urls and (resources or namespaces is not None):
            raise ValueError(f"{where}: nonResourceURLs cannot be combined with resources or namespaces")
        omf = raw.get("omitManagedFields")
        rules.append(Rule(level, frozenset(_strings(raw, "users", where)),
                          frozenset(_strings(raw, "userGroups", where)), frozenset(_strings(raw, "verbs", where)),
                          resources, namespaces, urls, _stages(raw, where), None if omf is None else bool(omf)))
    return Policy(tuple(rules), _stages(doc, "policy"), bool(doc.get("omitManagedFields", False)))


def load_policy(path: str) -> Policy:
    try:
        doc = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"--audit-policy-file {path}: {exc}") from exc
    try:
        return parse_policy(doc)
    except ValueError as exc:
        raise ValueError(f"--audit-policy-file {path}: {exc}") from exc


# ---------------------------------------------------------------------------------------------
# events


def timestamp(seconds: float) -> str:
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def redact(attrs: kapi.RequestAttributes, obj: Any) -> Any:
    """A request body as it may be logged below RequestResponse (see the module docstring)."""
    if not isinstance(obj, dict):
        return obj
    if attrs.resource == "secrets" or obj.get("kind") in ("Secret", "SecretList"):
        items = obj.get("items")
        out = {**obj, "items": [redact(attrs, item) for item in items]} if isinstance(items, list) else dict(obj)
        for key in ("data", "stringData"):
            if isinstance(out.get(key), dict):
                out[key] = dict.fromkeys(out[key], REDACTED)
        return out
    if attrs.resource == "tokenreviews" and isinstance(obj.get("spec"), dict) and "token" in obj["spec"]:
        return {**obj, "spec": {**obj["spec"], "token": REDACTED}}
    return obj


def without_managed_fields(obj: Any) -> Any:
    if not isinstance(obj, dict):
        return obj
    out = dict(obj)
    if isinstance(out.get("metadata"), dict) and "managedFields" in out["metadata"]:
        out["metadata"] = {k: v for k, v in out["metadata"].items() if k != "managedFields"}
    if isinstance(out.get("items"), list):
        out["items"] = [without_managed_fields(item) for item in out["items"]]
    return out


def _header(scope: Mapping[str, Any], name: bytes) -> str:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return ""


def source_ips(scope: Mapping[str, Any]) -> list[str]:
    ips = [ip.strip() for ip in _header(scope, b"x-forwarded-for").split(",") if ip.strip()]
    real = _header(scope, b"x-real-ip").strip()
    client = scope.get("client")
    for ip in (real, client[0] if client else ""):
        if ip and ip not in ips:
            ips.append(ip)
    return ips


def object_ref(attrs: kapi.RequestAttributes) -> Obj | None:
    if not attrs.is_resource_request:
        return None
    ref = {"resource": attrs.resource, "namespace": attrs.namespace, "name": attrs.name,
           "apiGroup": attrs.api_group, "apiVersion": attrs.api_version, "subresource": attrs.subresource}
    return {k: v for k, v in ref.items() if v}


@dataclass
class EventBuilder:
    """The facts of one audited request; ``event(stage)`` renders an audit.k8s.io/v1 Event."""

    decision: Decision
    attrs: kapi.RequestAttributes
    audit_id: str
    scope: Mapping[str, Any]
    received: float = field(default_factory=time.time)
    code: int = 0
    status: Obj | None = None
    request_body: bytes = b""
    response_body: bytes = b""
    response_json: bool = False

    def _body(self, raw: bytes) -> Any:
        if not raw:
            return None
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return None  # YAML/protobuf bodies are not copied
        return without_managed_fields(obj) if self.decision.omit_managed_fields else obj

    def event(self, stage: str, trace: Any) -> Obj:
        level = self.decision.level
        query = self.scope.get("query_string", b"").decode("latin-1")
        user = self.scope.get("kapi.impersonator") or self.attrs.user
        event: Obj = {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": level, "auditID": self.audit_id,
                      "stage": stage, "requestURI": self.attrs.path + (f"?{query}" if query else ""),
                      "verb": self.attrs.verb, "user": user.to_dict(), "sourceIPs": source_ips(self.scope),
                      "userAgent": _header(self.scope, b"user-agent")}
        if "kapi.impersonator" in self.scope:
            event["impersonatedUser"] = self.attrs.user.to_dict()
        ref = object_ref(self.attrs)
        if ref is not None and "name" not in ref and self.attrs.verb == "create" and self.request_body:
            body = self._body(self.request_body)
            meta = body.get("metadata") if isinstance(body, dict) else None
            name = meta.get("name") if isinstance(meta, dict) else None
            if isinstance(name, str) and name:
                ref["name"] = name  # as kube-apiserver, from the decoded object
        if ref:
            event["objectRef"] = ref
        if stage != "RequestReceived":
            event["responseStatus"] = self.status or {"metadata": {}, "code": self.code}
        if LEVELS.index(level) >= LEVELS.index("Request"):
            body = self._body(self.request_body)
            if body is not None:
                event["requestObject"] = body if level == "RequestResponse" else redact(self.attrs, body)
        if level == "RequestResponse" and stage == "ResponseComplete" and self.response_json:
            body = self._body(self.response_body)
            if body is not None:
                event["responseObject"] = body
        event["requestReceivedTimestamp"] = timestamp(self.received)
        event["stageTimestamp"] = timestamp(time.time())
        if trace is not None:
            annotations = trace.annotations()
            if level == "Metadata":
                annotations = {k: ("changed" if k.startswith("kapi.io/trace-mutate-") else v)
                               for k, v in annotations.items()}
            if annotations:
                event["annotations"] = annotations
        return event


# ---------------------------------------------------------------------------------------------
# backends


class LogBackend:
    """JSON lines to a file (rotated) or stdout."""

    def __init__(self, path: str, *, max_bytes: int = 0, max_backups: int = 0, max_age_days: float = 0) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.max_backups = max_backups
        self.max_age = max_age_days * 86400
        self._file: IO[bytes] | None = None
        self._size = 0

    def _open(self) -> IO[bytes]:
        if self._file is None:
            if self.path == "-":
                self._file = sys.stdout.buffer
            else:
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
                self._file = os.fdopen(fd, "ab")
                self._size = os.fstat(fd).st_size
        return self._file

    def write(self, events: Iterable[Obj]) -> None:
        data = b"".join(orjson.dumps(e) + b"\n" for e in events)
        out = self._open()
        if self.max_bytes and self.path != "-" and self._size and self._size + len(data) > self.max_bytes:
            self._rotate()
            out = self._open()
        out.write(data)
        out.flush()
        self._size += len(data)

    def _backups(self) -> list[Path]:
        target = Path(self.path)
        return sorted(target.parent.glob(f"{target.stem}-*{target.suffix}"))

    def _rotate(self) -> None:
        self.close()
        target = Path(self.path)
        now = datetime.datetime.now(datetime.UTC)
        stamp = now.strftime("%Y-%m-%dT%H-%M-%S.") + f"{now.microsecond // 1000:03d}"
        backup = target.with_name(f"{target.stem}-{stamp}{target.suffix}")
        n = 1
        while backup.exists():
            backup = target.with_name(f"{target.stem}-{stamp}-{n}{target.suffix}")
            n += 1
        target.rename(backup)
        backups = self._backups()
        doomed = set(backups[:-self.max_backups]) if self.max_backups else set()
        if self.max_age:
            cutoff = time.time() - self.max_age
            doomed |= {b for b in backups if b.stat().st_mtime < cutoff}
        for old in doomed:
            old.unlink(missing_ok=True)

    def close(self) -> None:
        if self._file is not None and self.path != "-":
            self._file.close()
        self._file = None
        self._size = 0


def _kubeconfig_target(path: str) -> tuple[str, ssl.SSLContext | None, dict[str, str], list[str]]:
    """(server URL, TLS context, headers, temporary files) from a webhook kubeconfig."""
    doc = yaml.safe_load(Path(path).read_text())
    try:
        cluster = doc["clusters"][0]["cluster"]
        user = (doc.get("users") or [{"user": {}}])[0].get("user") or {}
        server = str(cluster["server"])
    except (KeyError, IndexError, TypeError) as exc:
        raise ValueError(f"--audit-webhook-config-file {path}: needs clusters[0].cluster.server") from exc
    temps: list[str] = []

    def file_of(key: str) -> str | None:
        if user.get(key) or cluster.get(key):
            return str(user.get(key) or cluster.get(key))
        data = user.get(f"{key}-data") or cluster.get(f"{key}-data")
        if not data:
            return None
        fd, name = tempfile.mkstemp(prefix="kapi-audit-")
        with os.fdopen(fd, "wb") as fh:
            fh.write(base64.b64decode(data))
        temps.append(name)
        return name

    headers = {"Content-Type": "application/json"}
    if user.get("token"):
        headers["Authorization"] = f"Bearer {user['token']}"
    context = None
    if server.startswith("https://"):
        context = ssl.create_default_context(cafile=file_of("certificate-authority"))
        if cluster.get("insecure-skip-tls-verify"):
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        cert, key = file_of("client-certificate"), file_of("client-key")
        if cert and key:
            context.load_cert_chain(cert, key)
    return server, context, headers, temps


class WebhookBackend:
    """Batches events and POSTs them as an EventList (see the module docstring)."""

    def __init__(self, config_file: str, *, max_batch: int = 400, max_wait: float = 30.0,
                 initial_backoff: float = 10.0, tries: int = 3,
                 post: Callable[[bytes], None] | None = None) -> None:
        self.server, self.context, self.headers, self._temps = _kubeconfig_target(config_file)
        self.max_batch = max_batch
        self.max_wait = max_wait
        self.initial_backoff = initial_backoff
        self.tries = tries
        self.limit = max_batch * 10
        self.queue: asyncio.Queue[Obj | None] = asyncio.Queue()
        self._post = post or self._urllib_post
        self._task: asyncio.Task[None] | None = None

    def write(self, events: Iterable[Obj]) -> None:
        for event in events:
            if self.queue.qsize() >= self.limit:
                log.warning("audit webhook queue is full: event %s dropped", event.get("auditID"))
            else:
                self.queue.put_nowait(event)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="kapi-audit-webhook")

    async def _run(self) -> None:
        """Send batches until the ``None`` sentinel of ``close`` arrives (then the rest, and stop)."""
        loop = asyncio.get_running_loop()
        closing = False
        while not closing:
            first = await self.queue.get()
            if first is None:
                return
            batch = [first]
            deadline = loop.time() + self.max_wait
            while len(batch) < self.max_batch and (left := deadline - loop.time()) > 0:
                try:
                    event = await asyncio.wait_for(self.queue.get(), left)
                except TimeoutError:
                    break
                if event is None:
                    closing = True
                    break
                batch.append(event)
            await self._send(batch)

    def _urllib_post(self, body: bytes) -> None:
        request = urllib.request.Request(self.server, data=body, headers=self.headers, method="POST")
        with urllib.request.urlopen(request, context=self.context, timeout=10) as response:
            response.read()

    async def _send(self, batch: list[Obj]) -> None:
        body = orjson.dumps({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "metadata": {}, "items": batch})
        delay = self.initial_backoff
        for attempt in range(1, self.tries + 1):
            try:
                await asyncio.to_thread(self._post, body)
                return
            except Exception as exc:  # the receiver's problem must not take the server down
                if attempt == self.tries:
                    log.error("audit webhook %s failed %d times, %d events lost: %s", self.server, attempt,
                              len(batch), exc)
                    return
                await asyncio.sleep(delay)
                delay *= 2

    async def close(self, timeout: float = 10.0) -> None:
        """Send what is queued (bounded by ``timeout``), then stop."""
        if self._task is not None:
            self.queue.put_nowait(None)
            try:
                await asyncio.wait_for(self._task, timeout)
            except TimeoutError:
                log.error("audit webhook %s: %d events lost at shutdown", self.server, self.queue.qsize())
        for name in self._temps:
            Path(name).unlink(missing_ok=True)


@dataclass
class Auditor:
    """The policy and the backends of one app."""

    policy: Policy
    backends: list[Any]

    def emit(self, event: Obj, decision: Decision) -> None:
        if event["stage"] in decision.omit_stages:
            return
        for backend in self.backends:
            try:
                backend.write((event,))
            except Exception:
                log.exception("audit backend %s failed", type(backend).__name__)


# ---------------------------------------------------------------------------------------------
# middleware


class AuditMiddleware:
    """Audits each request the policy selects (position ``authenticated``)."""

    def __init__(self, app: Any, *, kapi_app: kapi.App) -> None:
        self.app = app
        self.kapi = kapi_app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        auditor: Auditor | None = self.kapi.plugin_state(NAME).get("auditor")
        attrs = kapi.request_attributes(scope) if scope["type"] == "http" else None
        if auditor is None or attrs is None:
            await self.app(scope, receive, send)
            return
        decision = auditor.policy.evaluate(attrs)
        if decision.level == "None":
            await self.app(scope, receive, send)
            return
        trace = kapi.request_trace(scope)
        builder = EventBuilder(decision, attrs, trace.audit_id if trace else "", scope)
        capture = LEVELS.index(decision.level) >= LEVELS.index("Request") or attrs.verb == "create"
        auditor.emit(builder.event("RequestReceived", trace), decision)
        long_running = attrs.verb == "watch"

        async def recording_receive() -> Any:
            message = await receive()
            if capture and message["type"] == "http.request" and len(builder.request_body) < MAX_BODY:
                builder.request_body += message.get("body", b"")
            return message

        async def recording_send(message: Any) -> None:
            if message["type"] == "http.response.start":
                builder.code = message["status"]
                builder.response_json = any(k == b"content-type" and v.startswith(b"application/json")
                                            for k, v in message.get("headers", ()))
                if long_running:
                    auditor.emit(builder.event("ResponseStarted", trace), decision)
            elif (message["type"] == "http.response.body" and decision.level == "RequestResponse"
                  and not long_running and len(builder.response_body) < MAX_BODY):
                builder.response_body += message.get("body", b"")
            await send(message)

        try:
            await self.app(scope, recording_receive, recording_send)
        except kapi.APIError as err:
            builder.code = err.code
            builder.status = err.status()
            if decision.level == "RequestResponse":
                builder.response_body, builder.response_json = err.body(), True
            auditor.emit(builder.event("ResponseComplete", trace), decision)
            raise
        except Exception:
            builder.code = 500
            builder.status = {"metadata": {}, "status": "Failure", "message": "an internal error occurred",
                              "reason": "InternalError", "code": 500}
            auditor.emit(builder.event("Panic", trace), decision)
            raise
        if builder.code >= 400 and builder.status is None and builder.response_json and builder.response_body:
            builder.status = _status_of(builder.response_body, builder.code)
        auditor.emit(builder.event("ResponseComplete", trace), decision)


def _status_of(body: bytes, code: int) -> Obj:
    try:
        status = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {"metadata": {}, "code": code}
    keep = {k: status[k] for k in ("status", "message", "reason", "details") if k in status}
    return {"metadata": {}, **keep, "code": code}


# ---------------------------------------------------------------------------------------------
# hooks


def _seconds(value: str) -> float:
    """``30s``, ``1m``, ``500ms`` or a plain number of seconds."""
    text = value.strip()
    for suffix, factor in (("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0)):
        if text.endswith(suffix) and text[:-len(suffix)].replace(".", "", 1).isdigit():
            return float(text[:-len(suffix)]) * factor
    return float(text)


@kapi.hookimpl
def kapi_add_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("audit (plugin audit_log)")
    group.add_argument("--audit-policy-file", default="", help="audit.k8s.io/v1 Policy; audit is on with this "
                       "and a backend (--audit-log-path, --audit-webhook-config-file)")
    group.add_argument("--audit-log-path", default="", help="write audit events here, one JSON per line ('-' = "
                       "stdout)")
    group.add_argument("--audit-log-maxsize", type=int, default=0, help="megabytes before the log is rotated "
                       "(0: never)")
    group.add_argument("--audit-log-maxbackup", type=int, default=0, help="rotated files to keep (0: all)")
    group.add_argument("--audit-log-maxage", type=int, default=0, help="days to keep rotated files (0: forever)")
    group.add_argument("--audit-webhook-config-file", default="", help="kubeconfig of the audit webhook receiver")
    group.add_argument("--audit-webhook-batch-max-size", type=int, default=400)
    group.add_argument("--audit-webhook-batch-max-wait", type=_seconds, default=30.0)
    group.add_argument("--audit-webhook-initial-backoff", type=_seconds, default=10.0)


@kapi.hookimpl
def kapi_read_options(args: argparse.Namespace) -> Mapping[str, Any] | None:
    if not getattr(args, "audit_policy_file", ""):
        if getattr(args, "audit_log_path", "") or getattr(args, "audit_webhook_config_file", ""):
            log.warning("an audit backend is configured without --audit-policy-file: no events will be recorded")
        return None
    load_policy(args.audit_policy_file)  # a bad policy stops the server at start, naming the flag
    if args.audit_webhook_config_file and not Path(args.audit_webhook_config_file).is_file():
        raise ValueError(f"--audit-webhook-config-file {args.audit_webhook_config_file}: no such file")
    return {"policy_file": args.audit_policy_file, "log_path": args.audit_log_path,
            "log_maxsize": args.audit_log_maxsize, "log_maxbackup": args.audit_log_maxbackup,
            "log_maxage": args.audit_log_maxage, "webhook_config_file": args.audit_webhook_config_file,
            "webhook_batch_max_size": args.audit_webhook_batch_max_size,
            "webhook_batch_max_wait": args.audit_webhook_batch_max_wait,
            "webhook_initial_backoff": args.audit_webhook_initial_backoff}


def _configured(app: kapi.App) -> Mapping[str, Any] | None:
    options = app.config.options_for(NAME)
    has_policy = options.get("policy") or options.get("policy_file")
    has_backend = options.get("log_path") or options.get("webhook_config_file")
    return options if has_policy and has_backend else None


@kapi.hookimpl
def kapi_middleware(app: kapi.App) -> list[tuple[Callable[[Any], Any], str]] | None:
    if _configured(app) is None:
        return None
    return [(lambda inner: AuditMiddleware(inner, kapi_app=app), "authenticated")]


@kapi.hookimpl
def kapi_startup(app: kapi.App) -> None:
    options = _configured(app)
    if options is None:
        return
    policy = parse_policy(options["policy"]) if options.get("policy") else load_policy(options["policy_file"])
    backends: list[Any] = []
    if options.get("log_path"):
        backends.append(LogBackend(str(options["log_path"]),
                                   max_bytes=int(float(options.get("log_maxsize") or 0) * 1024 * 1024),
                                   max_backups=int(options.get("log_maxbackup") or 0),
                                   max_age_days=float(options.get("log_maxage") or 0)))
    if options.get("webhook_config_file"):
        webhook = WebhookBackend(str(options["webhook_config_file"]),
                                 max_batch=int(options.get("webhook_batch_max_size") or 400),
                                 max_wait=float(options.get("webhook_batch_max_wait") or 30.0),
                                 initial_backoff=float(options.get("webhook_initial_backoff") or 10.0))
        webhook.start()
        backends.append(webhook)
    app.plugin_state(NAME)["auditor"] = Auditor(policy, backends)


@kapi.hookimpl
async def kapi_shutdown(app: kapi.App) -> None:
    auditor: Auditor | None = app.plugin_state(NAME).pop("auditor", None)
    if auditor is None:
        return
    for backend in auditor.backends:
        result = backend.close()
        if asyncio.iscoroutine(result):
            await result


__all__ = ["Auditor", "LogBackend", "Policy", "WebhookBackend", "load_policy", "parse_policy"]
