"""Events, in ``v1`` and ``events.k8s.io/v1``: one stored object, two representations.

Both resources share the storage prefix ``events`` and kube stores them as core ``v1`` Events,
so the REST layer should store ``to_core(obj)`` for writes through ``events.k8s.io`` and answer
reads through it with ``from_core(stored)``. The field mapping (``pkg/apis/events/v1``
conversion)::

    core v1            events.k8s.io/v1
    involvedObject  <-> regarding
    message         <-> note
    source          <-> deprecatedSource
    firstTimestamp  <-> deprecatedFirstTimestamp
    lastTimestamp   <-> deprecatedLastTimestamp
    count           <-> deprecatedCount
    reportingComponent <-> reportingController
    (same name)         reason, type, action, related, reportingInstance, eventTime, series

Validation is kube's ``ValidateEventCreate``/``Update``: lenient for ``v1`` (legacy rules only),
strict for ``events.k8s.io`` (eventTime required, deprecated fields unset, most fields
immutable); field paths are the core ones, as in kube.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kapi.errors import Cause
from kapi.kinds import fielderrors as fe
from kapi.kinds.access import as_dict
from kapi.kinds.formats import is_dns1123_subdomain, is_qualified_name
from kapi.kinds.printing import UNKNOWN, human_age, utcnow
from kapi.resources import ALL_VERBS, Column, ResourceType, Strategy

Obj = dict[str, Any]

CORE_API_VERSION = "v1"
EVENTS_API_VERSION = "events.k8s.io/v1"

#: core field -> events.k8s.io field (fields with the same name are copied as they are)
CORE_TO_EVENTS = {"involvedObject": "regarding", "message": "note", "source": "deprecatedSource",
                  "firstTimestamp": "deprecatedFirstTimestamp", "lastTimestamp": "deprecatedLastTimestamp",
                  "count": "deprecatedCount", "reportingComponent": "reportingController"}
EVENTS_TO_CORE = {v: k for k, v in CORE_TO_EVENTS.items()}

REASON_LIMIT = ACTION_LIMIT = INSTANCE_LIMIT = 128
NOTE_LIMIT = 1024
IMMUTABLE_FIELDS = ("involvedObject", "reason", "message", "source", "firstTimestamp", "lastTimestamp", "count",
                    "type", "eventTime", "action", "related", "reportingComponent", "reportingInstance")


def _convert(obj: Mapping[str, Any], names: Mapping[str, str], api_version: str) -> Obj:
    out: Obj = {"apiVersion": api_version, "kind": "Event"}
    for key, value in obj.items():
        if key in ("apiVersion", "kind"):
            continue
        out[names.get(key, key)] = value
    return out


def to_core(obj: Mapping[str, Any]) -> Obj:
    """An ``events.k8s.io/v1`` Event as the core ``v1`` Event kube stores (a new dict)."""
    return _convert(obj, EVENTS_TO_CORE, CORE_API_VERSION)


def from_core(obj: Mapping[str, Any]) -> Obj:
    """A stored core ``v1`` Event as ``events.k8s.io/v1`` (a new dict)."""
    return _convert(obj, CORE_TO_EVENTS, EVENTS_API_VERSION)


# ---------------------------------------------------------------------------------------------
# validation (on the core representation)


def _too_long(path: str, value: Any, limit: int) -> list[Cause]:
    if isinstance(value, str) and len(value) > limit:
        return [fe.invalid(path, "", f"can have at most {limit} characters")]
    return []


def validate_legacy(event: Obj, strict: bool) -> list[Cause]:
    """``legacyValidateEvent``: namespace agreement, and for new-style events (eventTime set) the
    reporting fields. ``strict`` names the controller field ``reportingController``."""
    namespace = str(as_dict(event.get("metadata")).get("namespace") or "")
    involved_ns = str(as_dict(event.get("involvedObject")).get("namespace") or "")
    controller_field = "reportingController" if strict else "reportingComponent"
    errs: list[Cause] = []
    mismatch = fe.invalid("involvedObject.namespace", involved_ns, "does not match event.namespace")
    if not event.get("eventTime"):
        if (not involved_ns and namespace not in ("", "default")) or (involved_ns and namespace != involved_ns):
            errs.append(mismatch)
    else:
        if not involved_ns and namespace not in ("default", "kube-system"):
            errs.append(mismatch)
        controller = str(event.get("reportingComponent") or "")
        if not controller:
            errs.append(fe.required(controller_field))
        errs.extend(fe.each_invalid(controller_field, controller, is_qualified_name(controller)))
        instance = event.get("reportingInstance") or ""
        if not instance:
            errs.append(fe.required("reportingInstance"))
        errs.extend(_too_long("reportingInstance", instance, INSTANCE_LIMIT))
        action = event.get("action") or ""
        if not action:
            errs.append(fe.required("action"))
        errs.extend(_too_long("action", action, ACTION_LIMIT))
        reason = event.get("reason") or ""
        if not reason:
            errs.append(fe.required("reason"))
        errs.extend(_too_long("reason", reason, REASON_LIMIT))
        errs.extend(_too_long("message", event.get("message"), NOTE_LIMIT))
    errs.extend(fe.each_invalid("namespace", namespace, is_dns1123_subdomain(namespace)))
    return errs


def validate_strict_create(event: Obj) -> list[Cause]:
    """The extra rules for events created through ``events.k8s.io``."""
    errs: list[Cause] = []
    series = as_dict(event.get("series"))
    if event.get("series") is not None:
        if (series.get("count") or 0) < 2:
            errs.append(fe.invalid("series.count", "", "should be at least 2"))
        if not series.get("lastObservedTime"):
            errs.append(fe.required("series.lastObservedTime"))
    if not event.get("eventTime"):
        errs.append(fe.required("eventTime"))
    if event.get("type") not in ("Normal", "Warning"):
        errs.append(fe.invalid("type", "", f"has invalid value: {event.get('type') or ''}"))
    for name in ("firstTimestamp", "lastTimestamp", "count"):
        if event.get(name):
            errs.append(fe.invalid(name, "", "needs to be unset"))
    source = as_dict(event.get("source"))
    if source.get("component") or source.get("host"):
        errs.append(fe.invalid("source", "", "needs to be unset"))
    return errs


def _normalized(value: Any) -> Any:
    return value if value not in (None, "", {}, [], 0) else None


class EventStrategy(Strategy):
    """Core ``v1`` Events (``eventStrategy``; legacy validation)."""

    name_column_first = False
    strict = False

    def core(self, obj: Obj) -> Obj:
        """The core representation of an object of this resource."""
        return obj

    def default(self, obj: Obj) -> None:
        for name in ("reportingComponent", "reportingInstance"):
            obj.setdefault(name, "")
        for name in ("involvedObject", "source"):
            if not isinstance(obj.get(name), dict):
                obj[name] = {}
        for name in ("firstTimestamp", "lastTimestamp", "eventTime"):
            obj.setdefault(name, None)

    def validate(self, obj: Obj) -> list[Cause]:
        event = self.core(obj)
        errs = validate_legacy(event, self.strict)
        if self.strict:
            errs.extend(validate_strict_create(event))
        return errs

    def validate_update(self, obj: Obj, old: Obj) -> list[Cause]:
        event = self.core(obj)
        errs = validate_legacy(event, self.strict)
        if self.strict:
            before = self.core(old)
            errs.extend(fe.immutable(name, event.get(name)) for name in IMMUTABLE_FIELDS
                        if _normalized(event.get(name)) != _normalized(before.get(name)))
        return errs

    def field_values(self, obj: Obj) -> dict[str, str]:
        event = self.core(obj)
        involved = as_dict(event.get("involvedObject"))
        values = {f"involvedObject.{k}": str(involved.get(k) or "")
                  for k in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")}
        values.update({
            "reason": str(event.get("reason") or ""),
            "reportingComponent": str(event.get("reportingComponent") or ""),
            "source": str(as_dict(event.get("source")).get("component") or event.get("reportingComponent") or ""),
            "type": str(event.get("type") or ""),
        })
        return values

    def columns(self) -> list[Column]:
        return list(EVENT_COLUMNS)

    def cells(self, obj: Obj) -> list[Any]:
        return event_cells(self.core(obj))


class EventsV1Strategy(EventStrategy):
    """``events.k8s.io/v1`` Events: the core strategy applied to ``to_core(obj)``, strict validation,
    and field selectors under the events.k8s.io names."""

    strict = True
    converts = True

    def to_storage(self, obj: Obj) -> Obj:
        return to_core(obj)

    def from_storage(self, obj: Obj) -> Obj:
        return from_core(obj)

    def core(self, obj: Obj) -> Obj:
        return to_core(obj)

    def default(self, obj: Obj) -> None:
        if not isinstance(obj.get("regarding"), dict):
            obj["regarding"] = {}
        obj.setdefault("eventTime", None)

    def field_values(self, obj: Obj) -> dict[str, str]:
        core = super().field_values(obj)
        values = {f"regarding.{k.split('.', 1)[1]}": v for k, v in core.items() if k.startswith("involvedObject.")}
        values.update({"reason": core["reason"], "reportingController": core["reportingComponent"],
                       "type": core["type"]})
        return values


def _source(event: Obj) -> str:
    """``formatEventSource``: component (or reportingController), then host (or reportingInstance)."""
    source = as_dict(event.get("source"))
    component = source.get("component") or event.get("reportingComponent") or ""
    host = source.get("host") or event.get("reportingInstance") or ""
    return f"{component}, {host}" if host else str(component)


def event_cells(event: Obj) -> list[Any]:
    """``printEvent`` (wide) on a core Event."""
    now = utcnow()
    first = human_age(event.get("firstTimestamp"), now) if event.get("firstTimestamp") else \
        human_age(event.get("eventTime"), now)
    last = human_age(event.get("lastTimestamp"), now) if event.get("lastTimestamp") else first
    count = event.get("count") or 0
    series = event.get("series")
    if isinstance(series, dict):
        last = human_age(series.get("lastObservedTime"), now) if series.get("lastObservedTime") else UNKNOWN
        count = series.get("count") or 0
    elif not count:
        count = 1
    involved = as_dict(event.get("involvedObject"))
    kind = str(involved.get("kind") or "").lower()
    target = f"{kind}/{involved['name']}" if involved.get("name") else kind
    return [last, str(event.get("type") or ""), str(event.get("reason") or ""), target,
            str(involved.get("fieldPath") or ""), _source(event), str(event.get("message") or "").strip(), first,
            count, str(as_dict(event.get("metadata")).get("name") or "")]


EVENT_COLUMNS = (
    Column("Last Seen", description="The time at which the most recent occurrence of this event was recorded."),
    Column("Type", description="Type of this event (Normal, Warning), new types could be added in the future"),
    Column("Reason", description="This should be a short, machine understandable string that gives the reason for "
                                 "the transition into the object's current status."),
    Column("Object", description="The object that this event is about."),
    Column("Subobject", priority=1, description="If referring to a piece of an object instead of an entire object, "
                                                "this string should contain a valid JSON/Go field access statement."),
    Column("Source", priority=1, description="The component reporting this event. Should be a short machine "
                                             "understandable string."),
    Column("Message", description="A human-readable description of the status of this operation."),
    Column("First Seen", priority=1, description="The time at which the event was first recorded. (Time of server "
                                                 "receipt is in TypeMeta.)"),
    Column("Count", priority=1, description="The number of times this event has occurred."),
    Column("Name", priority=1, format="name", description="Name of the event object."),
)


def resources() -> list[ResourceType]:
    return [
        ResourceType("", "v1", "Event", "events", "event", True, short_names=("ev",), verbs=ALL_VERBS,
                     storage_resource="events", strategy=EventStrategy()),
        ResourceType("events.k8s.io", "v1", "Event", "events", "event", True, short_names=("ev",), verbs=ALL_VERBS,
                     storage_resource="events", strategy=EventsV1Strategy()),
    ]
