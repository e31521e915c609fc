"""Leases and SelfSubjectAccessReviews."""

from __future__ import annotations

from kapi.kinds.misc import LeaseStrategy, SelfSubjectAccessReviewStrategy

from .helpers import ago, messages

LEASE = LeaseStrategy()
SSAR = SelfSubjectAccessReviewStrategy()


def test_lease() -> None:
    lease = {"metadata": {"name": "n1", "creationTimestamp": ago(days=1)},
             "spec": {"holderIdentity": "n1", "leaseDurationSeconds": 40}}
    assert LEASE.validate(lease) == []
    assert [c.name for c in LEASE.columns()] == ["Holder", "Age"]
    assert LEASE.cells(lease) == ["n1", "24h"]
    assert messages(LEASE.validate({"spec": {"leaseDurationSeconds": 0, "leaseTransitions": -1}})) == [
        "spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0",
        "spec.leaseTransitions: Invalid value: -1: must be greater than or equal to 0"]
    assert messages(LEASE.validate({"spec": {"strategy": "Newest"}})) == [
        'spec.strategy: Unsupported value: "Newest": supported values: "OldestEmulationVersion"']


def test_self_subject_access_review() -> None:
    ok = {"metadata": {"creationTimestamp": None}, "spec": {"resourceAttributes": {"verb": "get", "resource": "pods"}}}
    assert SSAR.validate(ok) == []
    assert messages(SSAR.validate({"spec": {}})) == [
        "spec.resourceAttributes: Invalid value: null: exactly one of nonResourceAttributes or resourceAttributes "
        "must be specified"]
    both = {"spec": {"resourceAttributes": {}, "nonResourceAttributes": {"path": "/x", "verb": "get"}}}
    assert messages(SSAR.validate(both))[0].startswith("spec.nonResourceAttributes: Invalid value:")
    named = {"metadata": {"name": "x"}, "spec": {"nonResourceAttributes": {"path": "/x", "verb": "get"}}}
    assert messages(SSAR.validate(named))[0].endswith("must be empty")
