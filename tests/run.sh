#!/usr/bin/env bash
# The test command (README's second set-up command; CI runs it through .ci/run).
# Installs what the tests need on a fresh Debian machine, then runs the whole suite.
# Extra arguments go to pytest (e.g. `bash tests/run.sh -m slow` for the soak and fuzz runs).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v etcd >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
    # Debian's etcd server, for the etcd storage tests (started by the tests on loopback ports).
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server etcd-client) \
        >/dev/null 2>&1 || echo "warning: could not install etcd-server; etcd tests will be skipped" >&2
fi
log=$(mktemp)
if ! python3 -m pip install -q --disable-pip-version-check -e '.[test]' >"$log" 2>&1; then
    cat "$log" >&2
    exit 1
fi
rm -f "$log"
python3 -c "import kapi, kapi_plugins, kapi_certs"
exec python3 -m pytest -q "$@"
