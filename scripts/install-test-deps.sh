#!/usr/bin/env bash
# Installs the Debian packages the tests drive (real clients and servers, never mocks).
# Safe to run again: installs only what is missing. Needs root (apt-get) when something is missing.
set -euo pipefail
need=()
command -v curl >/dev/null || need+=(curl)
command -v python3 >/dev/null || need+=(python3) # test/e2e/support.ts: a listener that never accepts
command -v openssl >/dev/null || need+=(openssl) # test/e2e/relay.test.ts: a private CA for the HTTPS backend
[[ -x /usr/bin/chromium ]] || need+=(chromium) # test/e2e/ocr-page.test.ts: the /ocr page in headless Chromium (playwright-core)
[[ -x /usr/sbin/nginx ]] || need+=(nginx) # test/e2e/nginx-*.test.ts: nginx -t and a live nginx on the exported config
command -v pebble >/dev/null || [[ -x /usr/bin/pebble ]] || need+=(pebble) # test/e2e/acme*.test.ts: a real ACME server on loopback
command -v nghttp >/dev/null || need+=(nghttp2-client) # HTTP/2 probes (nghttp) and the h2load benchmark
if ((${#need[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "tests need: ${need[*]} — install with: sudo apt-get install -y ${need[*]}" >&2
    exit 1
  fi
  echo "install-test-deps: apt-get install ${need[*]}"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >/dev/null
fi
