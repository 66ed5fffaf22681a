#!/usr/bin/env bash
# `make test`: every test, in two pytest processes side by side. The end-to-end tests (`-m e2e`:
# whole pipelines, a few minutes each, mostly waiting on their own servers, workers and
# subprocesses) run beside the rest, so both cores stay busy; each process has its own Prefect home,
# ports and databases (tests/conftest.py, tests/support). The end-to-end output follows the rest's.
# Both must pass.
#   bash infra/ci/test-shards.sh PYTHON [pytest args...]
set -uo pipefail
py="$1"
shift
e2e_log="$(mktemp)"
trap 'rm -f "$e2e_log"' EXIT

"$py" -m pytest -m e2e -p no:cacheprovider "$@" >"$e2e_log" 2>&1 &
e2e_pid=$!
"$py" -m pytest -m "not e2e" "$@"
rest=$?
wait "$e2e_pid"
e2e=$?

echo
echo "==================== end-to-end tests (ran beside the others) ===================="
cat "$e2e_log"
echo "make test: end-to-end exit ${e2e}, others exit ${rest}"
# 5 is pytest's "no test selected": a shard that arguments narrowed to nothing, not a failure.
[ "$rest" -eq 0 ] || [ "$rest" -eq 5 ] || exit "$rest"
[ "$e2e" -eq 0 ] || [ "$e2e" -eq 5 ] || exit "$e2e"
