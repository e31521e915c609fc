"""Schemathesis against a live kapi-apiserver's own ``/openapi/v3`` documents (admin credentials):
every generated request must be answered without a 5xx. The default run is a smoke (a few cases
per operation on ConfigMaps, Secrets and Services); ``pytest -m slow`` fuzzes every group-version harder."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings

from tests.e2e.conftest import Server, kubeconfig_files, serving
from tests.reliability.support import client

pytestmark = pytest.mark.e2e

#: streams and connection upgrades, which a request/response fuzzer cannot drive
#: the default run fuzzes these resources only
SMOKE = ("/configmaps", "/secrets", "/services")
SKIPPED = ("/watch/", "/proxy", "/exec", "/attach", "/portforward", "/log")


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with serving(tmp_path_factory.mktemp("fuzz")) as server:
        yield server


def fuzz(server: Server, group_versions: list[str], examples: int, only: tuple[str, ...] = ()) -> tuple[int, list[str]]:
    """Run ``examples`` generated cases per operation (of paths containing one of ``only``, when
    given); returns (cases tried, 5xx descriptions)."""
    tried, failures = 0, []
    ca = str(server.data_dir / "pki" / "ca.crt")
    cert = kubeconfig_files(server)
    session = requests.Session()
    session.verify, session.cert = ca, cert
    for gv in group_versions:
        with client(server) as http:
            raw: dict[str, Any] = http.get(f"/openapi/v3/{gv}").json()
        schema = schemathesis.openapi.from_dict(raw)
        schema.config.update(base_url=server.url)
        for result in schema.get_all_operations():
            operation = result.ok()
            if any(part in operation.path for part in SKIPPED) or (only and not any(p in operation.path for p in only)):
                continue

            @settings(max_examples=examples, deadline=None, database=None, phases=[Phase.generate],
                      suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy())
            def run(case: Any) -> None:
                nonlocal tried
                tried += 1
                try:
                    response = case.call(base_url=server.url, session=session, timeout=3)
                except requests.RequestException:
                    return  # a stream the fuzzer opened (watch=true ...) and could not finish: not a 5xx
                if response.status_code >= 500:
                    failures.append(f"{case.method} {case.formatted_path} -> {response.status_code}: "
                                    f"{response.text[:200]}")

            run()
    return tried, failures


def test_openapi_smoke(live: Server) -> None:
    tried, failures = fuzz(live, ["api/v1"], 3, SMOKE)
    print(f"schemathesis: {tried} cases, {len(failures)} 5xx")
    assert not failures, failures[:10]


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_openapi_fuzz(live: Server) -> None:
    with client(live) as http:
        versions = sorted(http.get("/openapi/v3").json()["paths"])
    tried, failures = fuzz(live, versions, 10)
    print(f"schemathesis: {tried} cases over {len(versions)} group-versions, {len(failures)} 5xx")
    assert not failures, failures[:20]
