"""Authorization overhead, in process: GET requests per second with RBAC (and Node,RBAC) vs AlwaysAllow.

Not a test: run it by hand. The app runs on the memory store behind httpx's ASGI transport, so
the numbers measure the request pipeline (no TLS, no sockets), as requests per CPU-second of
this process so that other load on the machine does not skew the comparison. The caller is an ordinary user
bound to a Role through a RoleBinding among ``--bindings`` unrelated bindings, so RBAC does the
work it does for a real user (cluster-admin members of ``system:masters`` are allowed at once).

    python tests/bench/bench_authz.py [--requests 5000] [--bindings 2000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import time
from pathlib import Path

import httpx

import kapi
from kapi import RequestAttributes, UserInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.plugins.authz_support import binding, client, create, role, rule, running

URL = "/api/v1/namespaces/default/configmaps/bench"


async def prepare(app: kapi.App, modes: tuple[str, ...], bindings: int) -> None:
    """The object read, and for RBAC the caller's binding among ``bindings`` unrelated ones."""
    async with client(app) as admin:
        await admin.post("/api/v1/namespaces/default/configmaps", json={"metadata": {"name": "bench"}, "data": {}})
        if "RBAC" in modes:
            await create(admin, role("cm-reader", [rule(["get", "list"], ["configmaps"])], "default"))
            await create(admin, binding("jane", "cm-reader", [("User", "jane")], "default"))
            for i in range(bindings):
                await create(admin, binding(f"other-{i}", "view", [("User", f"user-{i}"), ("Group", f"g-{i}")],
                                            f"ns-{i % 50}", role_kind="ClusterRole"))
        await app.cache.sync()


async def decision_cost(app: kapi.App, n: int = 50000) -> float:
    """Microseconds per decision of the app's whole authorizer chain for jane's GET."""
    attributes = RequestAttributes(verb="get", path=URL, is_resource_request=True, api_version="v1",
                                   resource="configmaps", namespace="default", name="bench",
                                   user=UserInfo("jane", groups=("dev", "system:authenticated")))
    start = time.process_time()
    for _ in range(n):
        await app.authorize(attributes)
    return (time.process_time() - start) / n * 1e6


async def _burst(c: httpx.AsyncClient, n: int) -> None:
    for _ in range(n):
        response = await c.get(URL)
        if response.status_code != 200:
            raise SystemExit(f"unexpected {response.status_code}: {response.text}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--bindings", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    modes = (("AlwaysAllow",), ("RBAC",), ("Node", "RBAC"))
    rates: dict[tuple[str, ...], list[float]] = {m: [] for m in modes}
    costs: dict[tuple[str, ...], float] = {}
    async with contextlib.AsyncExitStack() as stack:
        clients = {}
        for mode in modes:
            app = await stack.enter_async_context(running(authorizers=mode))
            await prepare(app, mode, args.bindings)
            clients[mode] = await stack.enter_async_context(client(app, "jane|dev,system:authenticated"))
            await _burst(clients[mode], 200)
            costs[mode] = await decision_cost(app)
        for _ in range(args.rounds):  # interleaved, so load changes on the machine hit every mode alike
            for mode in modes:
                start = time.process_time()  # CPU time: other processes on the machine do not count
                await _burst(clients[mode], args.requests)
                rates[mode].append(args.requests / (time.process_time() - start))
    base = statistics.median(rates[modes[0]])
    print(f"{'mode':<14}{'req/s':>10}{'vs AlwaysAllow':>16}   decision")
    for mode in modes:
        value = statistics.median(rates[mode])
        spread = (max(rates[mode]) - min(rates[mode])) / 2
        print(f"{','.join(mode):<14}{value:>10.0f}{(value / base - 1) * 100:>+15.1f}%  (±{spread:.0f})"
              f"  {costs[mode]:.1f} µs")


if __name__ == "__main__":
    asyncio.run(main())
