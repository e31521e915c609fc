"""Benchmark kapi-apiserver with the shared kbench harness (the one the reference figures came from).

Starts a real ``kapi-apiserver`` (TLS, static token in system:masters) on a loopback port for each
store, runs ``kbench.py`` against it, and prints kbench's summary table. Not a test: run it by hand.

    python tests/bench/bench_apiserver.py --stores memory,sqlite,etcd --phases create,get,update,list,watch,rss \
        [--kbench ../shared/bench/kbench.py] [--phase-seconds 10] [--workers 1]

Results land in ``bench-results/`` (git-ignored). Compare with ../shared/reference/kube-apiserver.md.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


@contextlib.contextmanager
def etcd_for(store: str, base: Path) -> Iterator[tuple[str, ...]]:
    """For ``--stores etcd``: a real one-member etcd with mutual TLS (the tests' helper) and the flags to use it."""
    if store != "etcd":
        yield ()
        return
    sys.path.insert(0, str(REPO))
    from tests.etcd_server import EtcdCluster

    with EtcdCluster.started(base / "etcd") as cluster:
        tls = cluster.pki.client_tls()
        yield ("--etcd-servers", ",".join(cluster.endpoints), "--etcd-cafile", tls["ca_file"],
               "--etcd-certfile", tls["cert_file"], "--etcd-keyfile", tls["key_file"])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(store: str, data_dir: Path, port: int, token_file: Path, workers: int,
          extra: tuple[str, ...] = ()) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-c", "from kapi.cli import apiserver_main; raise SystemExit(apiserver_main())",
           "--data-dir", str(data_dir), "--secure-port", str(port), "--storage-backend", store, *extra,
           "--token-auth-file", str(token_file), "--workers", str(workers),
           "--max-requests-inflight", "0", "--max-mutating-requests-inflight", "0"]
    log = (data_dir / "server.log").open("wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if "serving on" in (data_dir / "server.log").read_text(errors="replace"):
            return proc
        if proc.poll() is not None:
            raise SystemExit((data_dir / "server.log").read_text())
        time.sleep(0.05)
    proc.kill()
    raise SystemExit("server did not start")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stores", default="memory,sqlite")
    parser.add_argument("--phases", default="create,get,update,list,watch,rss")
    parser.add_argument("--kbench", default=str(REPO.parent / "shared" / "bench" / "kbench.py"))
    parser.add_argument("--phase-seconds", default="10")
    parser.add_argument("--repeat", default="1")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--port", type=int, default=0, help="default: a free loopback port")
    parser.add_argument("--loadgen", default="wrk" if os.path.exists("/usr/bin/wrk") else "python")
    args = parser.parse_args()
    out = REPO / "bench-results"
    out.mkdir(exist_ok=True)
    for store in args.stores.split(","):
        with tempfile.TemporaryDirectory(prefix=f"kapi-bench-{store}-") as tmp, etcd_for(store, Path(tmp)) as extra:
            data = Path(tmp)
            token = secrets.token_hex(16)
            token_file = data / "tokens.csv"
            token_file.write_text(f'{token},bench,bench-uid,"system:masters"\n')
            (data / "token").write_text(token)
            port = args.port or free_port()
            proc = start("etcd3" if store == "etcd" else store, data, port, token_file, args.workers, extra)
            try:
                print(f"== kapi-apiserver, {store} store, {args.workers} worker(s)", flush=True)
                subprocess.run([sys.executable, args.kbench, "--url", f"https://127.0.0.1:{port}",
                                "--token-file", str(data / "token"), "--cacert", str(data / "pki" / "ca.crt"),
                                "--out", str(out / store), "--pid", str(proc.pid), "--phases", args.phases,
                                "--phase-seconds", args.phase_seconds, "--repeat", args.repeat,
                                "--loadgen", args.loadgen], check=False)
            finally:
                proc.terminate()
                proc.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
