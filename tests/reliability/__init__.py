"""Reliability and security tests (issue 9): lost updates, durability, watch integrity, hostile input,
load and access checks. Long runs are marked ``slow`` (``pytest -m slow tests/reliability``)."""
