#!/usr/bin/env bash
# npm run bench:paired — mpgate against one Node anchor (default undici-raw), in alternating pairs.
#
# Why: on a shared VM the CPU's speed drifts by 20-40 % over minutes, which swamps single runs. Each
# pair runs the anchor, then mpgate, back to back; each reports the CPU time its process used per
# request (utime+stime from /proc ÷ requests). The median of the per-pair ratios (mpgate ÷ anchor)
# is steady where req/s is not. Below 1.00: mpgate needs less CPU per request.
#
# Usage: bash scripts/bench-paired.sh [small|64k|post1m] [pairs] [seconds]
# Needs what `npm run bench` sets up (nginx, wrk, ../shared/bench/node_modules).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
CASE=${1:-small}
PAIRS=${2:-8}
SECS=${3:-3}
ANCHOR=${ANCHOR:-undici-raw}
BENCH=$(cd ../shared/bench && pwd)
PORT=19080
UP=19001
WORK=$(mktemp -d)
chmod 755 "$WORK"
trap 'nginx -p "$WORK/" -c nginx.conf -s stop 2>/dev/null || true; rm -rf "$WORK"' EXIT

bash "$BENCH/setup.sh" >/dev/null
npm run --silent build

# The upstream: the harness's own nginx config (13-byte /, 64 KiB /64k, /upload read in full).
mkdir -p "$WORK/www" "$WORK/tmp"
head -c 65536 /dev/urandom >"$WORK/www/64k.bin"
chmod -R a+rX "$WORK"
sed -e "s#{{UPSTREAM_PORT}}#$UP#g" -e "s#{{SINK_SOCKET}}#$WORK/sink.sock#g" \
  "$BENCH/conf/upstream.nginx.conf" >"$WORK/nginx.conf"
taskset -c 1 nginx -p "$WORK/" -c nginx.conf -g 'daemon on;'

case $CASE in
  small) PATH_=/; CONNS=64; WRK_EXTRA=() ;;
  64k) PATH_=/64k; CONNS=64; WRK_EXTRA=() ;;
  post1m) PATH_=/upload; CONNS=16; WRK_EXTRA=(-s "$BENCH/lib/wrk-report.lua"); export BENCH_BODY_BYTES=1048576 ;;
  *) echo "case: small, 64k or post1m" >&2; exit 2 ;;
esac

# One measurement: start the proxy pinned to CPU 0, warm up, measure; prints "req/s cpu-µs-per-request".
measure() {
  bash -c "$1" &
  local pid=$!
  for _ in $(seq 50); do curl -s -o /dev/null -H 'Host: a.test' "http://127.0.0.1:$PORT/" && break; sleep 0.1; done
  local npid
  npid=$(pgrep -P "$pid" node || echo "$pid")
  taskset -c 1 wrk -t1 -c"$CONNS" "${WRK_EXTRA[@]}" -d1s -H 'Host: a.test' "http://127.0.0.1:$PORT$PATH_" >/dev/null
  local t0 t1 out
  t0=$(awk '{print $14+$15}' "/proc/$npid/stat")
  out=$(taskset -c 1 wrk -t1 -c"$CONNS" "${WRK_EXTRA[@]}" -d"${SECS}s" -H 'Host: a.test' "http://127.0.0.1:$PORT$PATH_")
  t1=$(awk '{print $14+$15}' "/proc/$npid/stat")
  kill -INT "$npid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  local reqs rps
  reqs=$(awk '/requests in/{print $1}' <<<"$out")
  rps=$(awk '/Requests\/sec/{print int($2)}' <<<"$out")
  # clock ticks are 10 ms: µs per request = ticks × 10000 / requests
  echo "$rps $(awk -v d="$((t1 - t0))" -v n="$reqs" 'BEGIN{printf "%.1f", d*10000/n}')"
  sleep 0.3
}

A="cd '$BENCH' && PORT=$PORT HOST=a.test UPSTREAM=http://127.0.0.1:$UP exec taskset -c 0 node anchors/$ANCHOR.js"
B="exec taskset -c 0 node dist/src/cli/main.js serve --listen 127.0.0.1:$PORT --route a.test=http://127.0.0.1:$UP --log-level warn --access-log off"

ratios=()
printf '%-6s %22s %22s %8s\n' pair "$ANCHOR req/s, µs/req" "mpgate req/s, µs/req" ratio
for i in $(seq "$PAIRS"); do
  read -r ar ac < <(measure "$A")
  read -r br bc < <(measure "$B")
  r=$(awk -v a="$ac" -v b="$bc" 'BEGIN{printf "%.3f", b/a}')
  ratios+=("$r")
  printf '%-6s %22s %22s %8s\n' "$i" "$ar, $ac" "$br, $bc" "$r"
done
median=$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{v[NR]=$1} END{print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}')
echo "case $CASE: median CPU per request, mpgate ÷ $ANCHOR = $median over $PAIRS pairs (below 1: mpgate cheaper)"
