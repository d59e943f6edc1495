#!/usr/bin/env bash
# The full test suite: installs the real peers the tests need (OpenLDAP, PostgreSQL, the PyPI
# scim2-server, the PyPI scim2-cli for the scim2-tester compliance run, and wrk for the
# benchmarks' smoke run) when they are missing, then runs every test in the workspace, real-peer
# tests and every benchmark at a smoke size included. The test harness
# would install the peers itself; doing it up front makes a missing package fail fast with a
# clear message instead of inside a test.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v slapd >/dev/null 2>&1 || [ -x /usr/sbin/slapd ] || need_apt+=(slapd ldap-utils)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
command -v psql >/dev/null 2>&1 || need_apt+=(postgresql-client)
# The benchmarks' smoke run (every benchmark once, at a tiny size) loads the server with wrk.
command -v wrk >/dev/null 2>&1 || need_apt+=(wrk)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "test.sh: installing ${need_apt[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need_apt[@]}"
fi

venv="${TENURE_TESTKIT_VENV:-${TMPDIR:-/tmp}/tenure-testkit-venv}"
if [ ! -x "$venv/bin/scim2-server" ] || [ ! -x "$venv/bin/scim2" ]; then
  echo "test.sh: installing scim2-server and scim2-cli into $venv"
  [ -x "$venv/bin/pip" ] || python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check scim2-server scim2-cli
fi
export TENURE_TESTKIT_VENV="$venv"

cargo fmt --all -- --check
# The production build (no `demo` feature) links no test kit and no installer code.
if cargo tree -e normal -p tenure --no-default-features --locked | grep -q "tenure-testkit"; then
  echo "test.sh: the production build of tenure depends on tenure-testkit" >&2
  exit 1
fi
cargo test --workspace --locked "$@"
