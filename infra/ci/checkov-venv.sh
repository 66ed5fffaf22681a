#!/usr/bin/env bash
# checkov (infrastructure-as-code scanner) in a virtualenv of its own: it pins boto3 and others
# below requirements.lock, so it cannot live in the project's .venv. Kept outside the checkout
# (CI clones afresh each run) and reused while infra/ci/checkov.lock is unchanged, so only the
# first run on a machine pays for the install. tests/integration/test_iac_scan.py runs it.
#   bash infra/ci/checkov-venv.sh            # prints the venv's path on stdout
set -euo pipefail
cd "$(dirname "$0")/../.."

venv="${FORESIGHT_CHECKOV_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/foresight/checkov-venv}"
lock=infra/ci/checkov.lock
stamp="$venv/.foresight-checkov-lock"

if [ -x "$venv/bin/checkov" ] && [ -f "$stamp" ] && cmp -s "$lock" "$stamp"; then
  echo "$venv"
  exit 0
fi

start=$(date +%s)
rm -rf "$venv"
mkdir -p "$(dirname "$venv")"
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check --no-compile --no-deps -r "$lock" >&2
cp "$lock" "$stamp"
echo "checkov-venv: installed $("$venv/bin/checkov" --version) in $(( $(date +%s) - start )) s at $venv" >&2
echo "$venv"
