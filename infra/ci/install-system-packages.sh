#!/usr/bin/env bash
# Debian packages the integration tests start as real servers: Prometheus (with promtool),
# node_exporter and pushgateway; and the headless Chromium that renders the HTML report as a
# browser shows it (tests/integration/test_report_in_browser.py), with a font for its text.
# Idempotent; needs root and apt. The tests run the binaries directly, so package post-install
# scripts are not allowed to start services.
set -euo pipefail

missing=()
for bin in prometheus promtool prometheus-node-exporter prometheus-pushgateway chromium-headless-shell; do
  command -v "$bin" >/dev/null 2>&1 || missing+=("$bin")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "missing ${missing[*]}: install Debian's prometheus, prometheus-node-exporter," \
       "prometheus-pushgateway and chromium-headless-shell (the tests that need them skip with a reason)" >&2
  exit 0
fi

if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  prometheus prometheus-node-exporter prometheus-pushgateway chromium-headless-shell fonts-dejavu-core >/dev/null
