"""kapi.kinds.quota, scheduling and admissionregistration: quantities, defaults, table cells."""

from __future__ import annotations

from fractions import Fraction

import pytest

from kapi.kinds import admissionregistration, quota, scheduling


@pytest.mark.parametrize(("value", "binary", "text"), [
    (Fraction(0), False, "0"), (Fraction(1, 2), False, "500m"), (Fraction(3, 2), False, "1500m"),
    (Fraction(2000), False, "2k"), (Fraction(1), False, "1"), (Fraction(1, 10**4), False, "100u"),
    (Fraction(2**20 * 3), True, "3Mi"), (Fraction(1500), True, "1500"), (Fraction(-2), False, "-2"),
])
def test_format_quantity(value: Fraction, binary: bool, text: str) -> None:
    assert quota.format_quantity(value, binary) == text


def test_pod_totals_sum_containers_and_raise_to_init() -> None:
    spec = {"containers": [{"resources": {"requests": {"cpu": "250m", "memory": "64Mi"}}},
                           {"resources": {"requests": {"cpu": "250m"}}}],
            "initContainers": [{"resources": {"requests": {"cpu": "2"}}}]}
    totals, binary = quota.pod_totals(spec, "requests")
    assert totals == {"cpu": Fraction(2), "memory": Fraction(64 * 2**20)} and binary == {"memory"}


def test_limit_range_defaults() -> None:
    item = {"type": "Container", "max": {"cpu": "2"}, "min": {"memory": "1Mi"}}
    quota.default_limit_range_item(item)
    assert item["default"] == {"cpu": "2"} and item["defaultRequest"] == {"cpu": "2", "memory": "1Mi"}


def test_quota_cells() -> None:
    status = {"hard": {"pods": "10", "limits.cpu": "4"}, "used": {"pods": "3"}}
    assert quota.quota_usage_cells(status) == ("pods: 3/10", "limits.cpu: 0/4")


def test_system_priority_classes_validate() -> None:
    strategy = scheduling.PriorityClassStrategy()
    for name in scheduling.SYSTEM_PRIORITY_CLASSES:
        assert strategy.validate(scheduling.system_priority_class(name)) == []


def test_webhook_defaults() -> None:
    config = {"webhooks": [{"name": "a.b.c", "rules": [{}], "clientConfig": {"service": {"name": "s",
                                                                                       "namespace": "n"}}}]}
    admissionregistration.WebhookConfigurationStrategy(True).default(config)
    hook = config["webhooks"][0]
    assert (hook["failurePolicy"], hook["matchPolicy"], hook["timeoutSeconds"], hook["reinvocationPolicy"]) == (
        "Fail", "Equivalent", 10, "Never")
    assert hook["namespaceSelector"] == hook["objectSelector"] == {} and hook["rules"] == [{"scope": "*"}]
    assert hook["clientConfig"]["service"]["port"] == 443


def test_binding_param_ref_cell() -> None:
    assert admissionregistration.param_ref_cell({"paramRef": {"name": "p"}}) == "*/p"
    assert admissionregistration.param_ref_cell({"paramRef": {"name": "p", "namespace": "n"}}) == "n/p"
    assert admissionregistration.param_ref_cell({}) == "<unset>"
