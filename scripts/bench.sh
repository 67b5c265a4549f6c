#!/usr/bin/env bash
# npm run bench: measures mpgate next to nginx and the Node anchors with the shared harness
# (../shared/bench/proxy-bench.sh), then adds the table with the machine line to BENCHMARKS.md.
# Extra arguments go to the harness, e.g. `npm run bench -- --repeat 1 --cases small`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BENCH=../shared/bench
if [[ ! -x $BENCH/proxy-bench.sh && ! -f $BENCH/proxy-bench.sh ]]; then
  echo "bench: $BENCH/proxy-bench.sh not found; the harness lives in shared/ beside this project" >&2
  exit 2
fi
bash "$BENCH/setup.sh"            # nginx, wrk, curl (apt) and the Node anchors (npm ci)
npm run --silent build
mkdir -p .bench
stamp=$(date -u +%Y-%m-%dT%H-%M-%SZ)
json=.bench/$stamp.json
# Every anchor runs without an access log (the harness turns nginx's off too), so `mpgate` does as
# well; `mpgate-logged` writes its JSON access log to a file, to show what logging costs.
CMD='exec node dist/src/cli/main.js serve --listen "127.0.0.1:$PORT" --route "$HOST=$UPSTREAM" --log-level warn'
bash "$BENCH/proxy-bench.sh" --repeat "${REPEAT:-3}" --out "$json" --md ".bench/$stamp.md" \
  --candidate mpgate "$CMD --access-log off" \
  --candidate mpgate-logged "$CMD"' --access-log "$BENCH_WORK_DIR/mpgate-access.log"' \
  "$@"
node scripts/bench-report.mjs "$json" ".bench/$stamp.md" BENCHMARKS.md
echo "bench: results added to BENCHMARKS.md (raw: $json)"
# Then HTTPS and HTTP/2 next to nginx terminating TLS (scripts/bench-https.sh, about 4 more
# minutes with 3 rounds); BENCH_HTTPS=0 skips it.
if [[ ${BENCH_HTTPS:-1} != 0 ]]; then
  bash scripts/bench-https.sh --no-build --repeat "${REPEAT:-3}"
fi
