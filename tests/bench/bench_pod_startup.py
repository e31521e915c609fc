"""Pod startup latency and scheduler throughput on a ``kapi up`` cluster of fake nodes.

Starts ``kapi up --fake-nodes N --nodes 0`` (API server, scheduler and one process running N
fake kubelets, each its own process with its own certificate, over mutual TLS), then creates
PODS pods (``--concurrency`` in flight, or ``--rate`` per second) in a fresh namespace while
watching them, and reports, from the client's clock:

* create -> Running (the Kubernetes pod startup SLO: p99 <= 5 s, without image pulls),
* create -> scheduled (``spec.nodeName`` seen),
* scheduler throughput: pods bound per second between the first create and the last binding,
* create throughput.

Not a test: run it by hand (about half a minute)::

    python tests/bench/bench_pod_startup.py [--pods 1000] [--nodes 100] [--concurrency 50] [--rate 0]
        [--apiserver-arg=--storage-backend=memory]

The figures are printed and written to ``bench-results/pod-startup.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_cluster(data_dir: Path, nodes: int, extra: list[str]) -> subprocess.Popen[bytes]:
    out = (data_dir / "up.out").open("wb")
    cmd = [sys.executable, "-m", "kapi.components", "up", f"--data-dir={data_dir}", f"--secure-port={free_port()}",
           "--nodes=0", f"--fake-nodes={nodes}", "--no-controller-manager", "--timeout=120",
           *[f"--apiserver-arg={a}" for a in extra]]
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 150
    while "The cluster is up" not in (data_dir / "up.out").read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise SystemExit((data_dir / "up.out").read_text(errors="replace"))
        time.sleep(0.1)
    return proc


def cpu_seconds(parent: int) -> dict[str, float]:
    """CPU time used so far by each component process of ``kapi up`` (children of ``parent``)."""
    import os

    out: dict[str, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    children = subprocess.run(["pgrep", "-P", str(parent)], capture_output=True, text=True).stdout.split()
    for pid in children:
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        name = "kube-apiserver" if any(b"apiserver" in a for a in argv) else next(
            (a.decode() for a in argv if a in (b"scheduler", b"kubelet", b"controller-manager")), "?")
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def pod(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"bench": "startup"}},
            "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10",
                                     "resources": {"requests": {"cpu": "10m", "memory": "10Mi"}}}]}}


async def measure(kubeconfig: Path, count: int, concurrency: int, rate: float) -> dict[str, Any]:
    from kapi.client import Client, path_for

    namespace = f"bench-{int(time.time())}"
    created: dict[str, float] = {}
    scheduled: dict[str, float] = {}
    running: dict[str, float] = {}
    async with Client.from_kubeconfig(kubeconfig) as client, Client.from_kubeconfig(kubeconfig) as watcher:
        await client.create(path_for("", "v1", "namespaces"),
                            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
        pods_path = path_for("", "v1", "pods", namespace)
        listed = await watcher.list(pods_path)
        done = asyncio.Event()

        async def watch() -> None:
            async for event in watcher.watch(pods_path, listed["metadata"]["resourceVersion"]):
                obj = event.get("object") or {}
                name = (obj.get("metadata") or {}).get("name")
                now = time.monotonic()
                if not name:
                    continue
                if (obj.get("spec") or {}).get("nodeName") and name not in scheduled:
                    scheduled[name] = now
                if (obj.get("status") or {}).get("phase") == "Running" and name not in running:
                    running[name] = now
                    if len(running) == count:
                        done.set()
                        return

        watching = asyncio.create_task(watch())
        gate = asyncio.Semaphore(concurrency)
        started = time.monotonic()

        async def create(i: int) -> None:
            if rate > 0:
                await asyncio.sleep(max(0.0, started + i / rate - time.monotonic()))
            name = f"p-{i:05d}"
            async with gate:
                created[name] = time.monotonic()
                await client.create(pods_path, pod(name))

        await asyncio.gather(*(create(i) for i in range(count)))
        created_all = time.monotonic()
        try:
            await asyncio.wait_for(done.wait(), max(120.0, count * 0.5))
        finally:
            watching.cancel()
    startup = [running[n] - created[n] for n in running]
    binding = [scheduled[n] - created[n] for n in scheduled]
    first_create = min(created.values())
    last_bind = max(scheduled.values())
    return {
        "pods": count, "running": len(running),
        "create_to_running_s": {"p50": percentile(startup, 50), "p90": percentile(startup, 90),
                                "p99": percentile(startup, 99), "max": max(startup), "mean": statistics.mean(startup)},
        "create_to_scheduled_s": {"p50": percentile(binding, 50), "p99": percentile(binding, 99),
                                  "max": max(binding)},
        "scheduler_pods_per_s": len(scheduled) / (last_bind - first_create),
        "create_pods_per_s": count / (created_all - first_create),
        "total_s": max(running.values()) - first_create,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pods", type=int, default=1000)
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=50, help="creates in flight")
    parser.add_argument("--rate", type=float, default=0.0, help="creates per second (0: as fast as possible)")
    parser.add_argument("--apiserver-arg", action="append", default=[])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kapi-bench-") as tmp:
        data_dir = Path(tmp)
        proc = start_cluster(data_dir, args.nodes, args.apiserver_arg)
        try:
            before = cpu_seconds(proc.pid)
            result = asyncio.run(measure(data_dir / "admin.kubeconfig", args.pods, args.concurrency, args.rate))
            after = cpu_seconds(proc.pid)
            result["cpu_seconds"] = {k: round(after[k] - before.get(k, 0.0), 2) for k in after}
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(60)
    result.update(nodes=args.nodes, concurrency=args.concurrency, rate=args.rate, apiserver_args=args.apiserver_arg)
    latency, binding = result["create_to_running_s"], result["create_to_scheduled_s"]
    print(f"{result['running']}/{result['pods']} pods Running on {args.nodes} fake nodes in {result['total_s']:.2f}s")
    print(f"create -> Running   p50 {latency['p50'] * 1000:7.0f} ms  p90 {latency['p90'] * 1000:7.0f} ms  "
          f"p99 {latency['p99'] * 1000:7.0f} ms  max {latency['max'] * 1000:7.0f} ms")
    print(f"create -> scheduled p50 {binding['p50'] * 1000:7.0f} ms  p99 {binding['p99'] * 1000:7.0f} ms")
    print(f"scheduler {result['scheduler_pods_per_s']:.0f} pods/s, creates {result['create_pods_per_s']:.0f} pods/s")
    print("CPU seconds during the run: " + ", ".join(f"{k} {v:.1f}" for k, v in sorted(result["cpu_seconds"].items())))
    out = REPO / "bench-results"
    out.mkdir(exist_ok=True)
    (out / "pod-startup.json").write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
