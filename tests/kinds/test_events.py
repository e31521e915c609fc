"""Events in v1 and events.k8s.io/v1: conversion, validation, field selectors and the table."""

from __future__ import annotations

import copy
from typing import Any

from kapi.kinds.events import EventStrategy, EventsV1Strategy, from_core, to_core

from .helpers import ago, messages

CORE = EventStrategy()
V1 = EventsV1Strategy()


def core_event(**fields: Any) -> dict[str, Any]:
    event = {"apiVersion": "v1", "kind": "Event",
             "metadata": {"name": "web.1", "namespace": "default", "creationTimestamp": ago(minutes=10)},
             "involvedObject": {"kind": "Pod", "name": "web", "namespace": "default", "uid": "u1",
                                "apiVersion": "v1", "fieldPath": "spec.containers{web}"},
             "reason": "Pulled", "message": "Pulled image ", "type": "Normal",
             "source": {"component": "kubelet", "host": "node-1"},
             "firstTimestamp": ago(minutes=10), "lastTimestamp": ago(minutes=2), "count": 3}
    event.update(fields)
    return event


def new_event(**fields: Any) -> dict[str, Any]:
    event = {"apiVersion": "events.k8s.io/v1", "kind": "Event",
             "metadata": {"name": "web.2", "namespace": "default", "creationTimestamp": ago(minutes=1)},
             "eventTime": "2024-01-01T00:00:00.000000Z", "reportingController": "example.com/ctl",
             "reportingInstance": "ctl-1", "action": "Scale", "reason": "Scaled", "type": "Warning",
             "regarding": {"kind": "Deployment", "name": "web", "namespace": "default"}, "note": "scaled up"}
    event.update(fields)
    return event


def test_conversion_round_trip() -> None:
    core = core_event()
    converted = from_core(core)
    assert converted["apiVersion"] == "events.k8s.io/v1"
    assert converted["regarding"] == core["involvedObject"] and converted["note"] == core["message"]
    assert converted["deprecatedSource"] == core["source"] and converted["deprecatedCount"] == 3
    assert to_core(converted) == core
    v1 = new_event()
    assert from_core(to_core(v1)) == v1
    assert to_core(v1)["reportingComponent"] == "example.com/ctl"


def test_core_validation_is_lenient() -> None:
    assert CORE.validate(core_event()) == []
    other_ns = core_event(involvedObject={"kind": "Pod", "name": "x", "namespace": "other"})
    assert messages(CORE.validate(other_ns)) == [
        'involvedObject.namespace: Invalid value: "other": does not match event.namespace']
    new_style = core_event(eventTime="2024-01-01T00:00:00.000000Z")
    found = messages(CORE.validate(new_style))
    assert found[0] == "reportingComponent: Required value"
    assert found[1] == 'reportingComponent: Invalid value: "": name part must be non-empty'  # kube repeats it too
    assert found[-2:] == ["reportingInstance: Required value", "action: Required value"]


def test_events_v1_validation_is_strict() -> None:
    assert V1.validate(new_event()) == []
    assert messages(V1.validate(new_event(eventTime=None, deprecatedCount=2, type="Odd"))) == [
        "eventTime: Required value", 'type: Invalid value: "": has invalid value: Odd',
        'count: Invalid value: "": needs to be unset']
    missing = new_event(reportingController="")
    assert messages(V1.validate(missing))[0] == "reportingController: Required value"
    old = new_event()
    new = copy.deepcopy(old)
    new["note"] = "changed"
    assert messages(V1.validate_update(new, old)) == ['message: Invalid value: "changed": field is immutable']
    assert V1.validate_update(copy.deepcopy(old), old) == []


def test_field_values() -> None:
    values = CORE.field_values(core_event())
    assert values["involvedObject.kind"] == "Pod" and values["involvedObject.uid"] == "u1"
    assert values["source"] == "kubelet" and values["reason"] == "Pulled" and values["type"] == "Normal"
    assert set(CORE.field_values({})) == set(values)
    v1_values = V1.field_values(new_event())
    assert v1_values["regarding.kind"] == "Deployment" and v1_values["reportingController"] == "example.com/ctl"
    assert "involvedObject.kind" not in v1_values and "source" not in v1_values
    assert set(V1.field_values({})) == set(v1_values)


def test_table() -> None:
    assert [(c.name, c.priority) for c in CORE.columns()] == [
        ("Last Seen", 0), ("Type", 0), ("Reason", 0), ("Object", 0), ("Subobject", 1), ("Source", 1),
        ("Message", 0), ("First Seen", 1), ("Count", 1), ("Name", 1)]
    assert not CORE.name_column_first
    assert CORE.cells(core_event())[:9] == ["2m", "Normal", "Pulled", "pod/web", "spec.containers{web}",
                                            "kubelet, node-1", "Pulled image", "10m", 3]
    series = new_event(series={"count": 4, "lastObservedTime": ago(seconds=30)}, eventTime=ago(minutes=3))
    cells = V1.cells(series)
    assert cells[:4] == ["30s", "Warning", "Scaled", "deployment/web"] and cells[5] == "example.com/ctl, ctl-1"
    assert cells[7:9] == ["3m", 4]
    assert CORE.cells({}) == ["<unknown>", "", "", "", "", "", "", "<unknown>", 1, ""]


def test_core_defaults_match_kube_serialisation() -> None:
    event = {"metadata": {"name": "e"}}
    CORE.default(event)
    assert event == {"metadata": {"name": "e"}, "reportingComponent": "", "reportingInstance": "",
                     "involvedObject": {}, "source": {}, "firstTimestamp": None, "lastTimestamp": None,
                     "eventTime": None}
