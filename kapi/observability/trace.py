"""Per-request pipeline traces: who authenticated the caller, who decided, what admission changed.

The outermost middleware opens a ``RequestTrace`` for every HTTP request and makes it current
(a context variable, so code deep in the request - ``kapi.hooks.invoke`` - finds it without
threading it through every call). Each plugin call of the request pipeline becomes a ``Step``:

* ``authenticate``: the plugin and whether it recognised the caller (the user name, never the
  credential);
* ``authorize``: each authorizer's answer; the first Allow/Deny is the request's ``decision``,
  with the reason the plugin gave through ``kapi.trace_note`` (e.g. the RBAC binding);
* ``mutate``: what each mutating admission plugin changed, as a JSON patch (RFC 6902);
* ``validate``: accepted, or rejected with the message.

Secrets stay out: patches of ``secrets`` carry ``<redacted>`` instead of values under
``/data`` and ``/stringData``, and no header, token or body is ever recorded.

Finished traces go to a bounded ring buffer per app (``TraceBuffer``), read by
``GET /debug/kapi/traces``; the audit log copies a summary into event annotations.
"""

from __future__ import annotations

import contextvars
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from kapi.errors import APIError
from kapi.types import Decision, UserInfo

REDACTED = "<redacted>"
SECRET_RESOURCES = frozenset({"secrets"})
SECRET_PATHS = ("/data", "/stringData")

_CURRENT: contextvars.ContextVar[RequestTrace | None] = contextvars.ContextVar("kapi_request_trace", default=None)

#: hook name -> trace stage
STAGES = {"kapi_authenticate": "authenticate", "kapi_authorize": "authorize", "kapi_mutate_admission": "mutate",
          "kapi_validate_admission": "validate"}

HookObserver = Callable[[str, "Step", Mapping[str, Any]], None]


class Step(NamedTuple):
    """One plugin call: ``stage`` (authenticate/authorize/mutate/validate), ``plugin``, ``outcome``
    (recognised, skipped, allow, deny, no-opinion, changed, unchanged, accepted, rejected, error),
    an optional human ``detail``, a JSON ``patch`` for mutations, and how long it took. Immutable;
    a named tuple rather than a frozen dataclass because one is built per plugin call (5x cheaper)."""

    stage: str
    plugin: str
    outcome: str
    detail: str = ""
    patch: tuple[Mapping[str, Any], ...] = ()
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"stage": self.stage, "plugin": self.plugin, "outcome": self.outcome,
                               "ms": round(self.seconds * 1000, 3)}
        if self.detail:
            out["detail"] = self.detail
        if self.patch:
            out["patch"] = list(self.patch)
        return out


@dataclass(slots=True)
class RequestTrace:
    """The trace of one request (see the module docstring). ``observer`` (metrics) is told of
    every plugin call as ``(hook, step, hook arguments)``."""

    audit_id: str
    method: str
    path: str
    started: float = field(default_factory=time.time)
    resource: str = ""
    user: str = ""
    code: int = 0
    seconds: float = 0.0
    steps: list[Step] = field(default_factory=list)
    decision: Step | None = None
    observer: HookObserver | None = None
    _note: str = ""

    # -- recording (called by kapi.hooks.invoke) -----------------------------------------------

    def before_call(self) -> None:
        """A plugin call starts: forget the previous call's note."""
        self._note = ""

    def note(self, message: str) -> None:
        """Attach ``message`` to the step of the plugin call now running."""
        self._note = message[:500]

    def record_call(self, hook: str, plugin: str, kwargs: Mapping[str, Any], result: Any,
                    error: BaseException | None, seconds: float) -> None:
        """Record one plugin call of ``hook`` that returned ``result`` or raised ``error``."""
        stage = STAGES.get(hook, hook.removeprefix("kapi_"))
        step = _step(stage, plugin, kwargs, result, error, seconds, self._note)
        self._note = ""
        self.steps.append(step)
        if stage == "authorize" and self.decision is None and step.outcome in ("allow", "deny"):
            self.decision = step
        if stage == "authenticate" and step.outcome == "recognised":
            self.user = result.name
        if self.observer is not None:
            self.observer(hook, step, kwargs)

    # -- reading -------------------------------------------------------------------------------

    @property
    def authenticator(self) -> str:
        """The plugin that recognised the caller ("" when none did)."""
        return next((s.plugin for s in self.steps if s.stage == "authenticate" and s.outcome == "recognised"), "")

    def to_dict(self) -> dict[str, Any]:
        """The trace as JSON-ready data (what the debug endpoint and the header show)."""
        out: dict[str, Any] = {"auditID": self.audit_id, "method": self.method, "path": self.path,
                               "user": self.user, "code": self.code, "ms": round(self.seconds * 1000, 3),
                               "steps": [s.to_dict() for s in self.steps]}
        if self.decision is not None:
            out["decision"] = {"plugin": self.decision.plugin, "decision": self.decision.outcome,
                               "reason": self.decision.detail}
        return out

    def annotations(self) -> dict[str, str]:
        """Audit event annotations: kube-apiserver's authorization ones and kapi's trace ones."""
        out: dict[str, str] = {}
        if self.decision is not None:
            out["authorization.k8s.io/decision"] = "allow" if self.decision.outcome == "allow" else "forbid"
            out["authorization.k8s.io/reason"] = self.decision.detail
            out["kapi.io/trace-authorizer"] = self.decision.plugin
        elif self.code == 403:
            out["authorization.k8s.io/decision"] = "forbid"
            out["authorization.k8s.io/reason"] = "no authorizer allowed the request"
        if self.authenticator:
            out["kapi.io/trace-authenticator"] = self.authenticator
        for step in self.steps:
            if step.stage == "mutate" and step.patch:
                import orjson

                out[f"kapi.io/trace-mutate-{step.plugin}"] = orjson.dumps(list(step.patch)).decode()
            elif step.stage in ("mutate", "validate") and step.outcome in ("rejected", "error"):
                out[f"kapi.io/trace-{step.stage}-{step.plugin}"] = f"{step.outcome}: {step.detail}"
        return out


def _step(stage: str, plugin: str, kwargs: Mapping[str, Any], result: Any, error: BaseException | None,
          seconds: float, note: str) -> Step:
    if error is not None:
        message = error.message if isinstance(error, APIError) else type(error).__name__
        outcome = "rejected" if isinstance(error, APIError) else "error"
        return Step(stage, plugin, outcome, note or message, (), seconds)
    if stage == "authenticate":
        if isinstance(result, UserInfo):
            return Step(stage, plugin, "recognised", note or f"user {result.name!r}", (), seconds)
        return Step(stage, plugin, "skipped", note, (), seconds)
    if stage == "authorize":
        outcome = {Decision.ALLOW: "allow", Decision.DENY: "deny"}.get(result, "no-opinion")
        return Step(stage, plugin, outcome, note, (), seconds)
    if stage == "mutate":
        request = kwargs.get("request")
        if result is None or request is None:
            return Step(stage, plugin, "unchanged", note, (), seconds)
        patch = tuple(json_patch(request.obj or {}, result))
        if request.resource in SECRET_RESOURCES:
            patch = tuple(redact_patch(patch))
        return Step(stage, plugin, "changed" if patch else "unchanged", note, patch, seconds)
    if stage == "validate":
        return Step(stage, plugin, "accepted", note, (), seconds)
    return Step(stage, plugin, "called", note, (), seconds)


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def json_patch(old: Any, new: Any, path: str = "") -> list[dict[str, Any]]:
    """An RFC 6902 patch that turns ``old`` into ``new`` (objects diffed by key, anything else
    replaced whole)."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        ops: list[dict[str, Any]] = []
        for key in old:
            if key not in new:
                ops.append({"op": "remove", "path": f"{path}/{_escape(key)}"})
        for key, value in new.items():
            where = f"{path}/{_escape(key)}"
            if key not in old:
                ops.append({"op": "add", "path": where, "value": value})
            elif old[key] != value:
                ops.extend(json_patch(old[key], value, where))
        return ops
    if old == new:
        return []
    return [{"op": "replace", "path": path, "value": new}]


def redact_patch(ops: Iterable[Mapping[str, Any]]) -> Iterable[dict[str, Any]]:
    """The patch with every value under a secret path replaced by ``<redacted>``."""
    for op in ops:
        copy = dict(op)
        path = str(copy.get("path", ""))
        if "value" in copy and (path in SECRET_PATHS or path.startswith(tuple(f"{p}/" for p in SECRET_PATHS))
                                or path == ""):
            copy["value"] = REDACTED
        elif "value" in copy and isinstance(copy["value"], Mapping):
            copy["value"] = redact_object(copy["value"])
        yield copy


def redact_object(obj: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a Secret-shaped object with the values of ``data`` and ``stringData`` replaced."""
    out = dict(obj)
    for key in ("data", "stringData"):
        if isinstance(out.get(key), Mapping):
            out[key] = dict.fromkeys(out[key], REDACTED)
    return out


class TraceBuffer:
    """The last ``capacity`` finished traces of one app (oldest dropped first)."""

    def __init__(self, capacity: int = 256) -> None:
        self._items: deque[RequestTrace] = deque(maxlen=capacity)

    def add(self, trace: RequestTrace) -> None:
        self._items.append(trace)

    def latest(self, limit: int) -> list[RequestTrace]:
        """Up to ``limit`` traces, newest first."""
        out: list[RequestTrace] = []
        for trace in reversed(self._items):
            if len(out) >= limit:
                break
            out.append(trace)
        return out


# -- the current trace ---------------------------------------------------------------------------


def current_trace() -> RequestTrace | None:
    """The trace of the request being served in this context, or None."""
    return _CURRENT.get()


def activate(trace: RequestTrace | None) -> contextvars.Token[RequestTrace | None]:
    """Make ``trace`` current (None: stop recording); undo with ``deactivate(token)``."""
    return _CURRENT.set(trace)


def deactivate(token: contextvars.Token[RequestTrace | None]) -> None:
    _CURRENT.reset(token)


def trace_note(message: str) -> None:
    """Explain the current plugin call's answer in the request's trace and audit annotations.

    Call it from a hook implementation (typically an authorizer: ``kapi.trace_note('allowed by
    ClusterRoleBinding "admins" of ClusterRole "cluster-admin"')``); it is attached to that call's
    step, and for the deciding authorizer becomes the ``authorization.k8s.io/reason`` annotation.
    Does nothing outside a request. Never pass credentials or secret data.
    """
    trace = _CURRENT.get()
    if trace is not None:
        trace.note(message)
