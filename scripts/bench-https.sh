#!/usr/bin/env bash
# npm run bench:https — mpgate's HTTPS listener (HTTP/1.1 and HTTP/2 over TLS) next to nginx
# terminating TLS with the same certificate, same machine, same run.
#
# Layout as in ../shared/bench (README.md there): the upstream nginx from the shared
# conf/upstream.nginx.conf on 127.0.0.1:19001 and every load generator run pinned to CPU 1; the
# candidate (nginx-tls or mpgate) pinned to CPU 0 on 127.0.0.1:19443, in a session of its own.
# Candidates alternate in rounds (nginx-tls mpgate nginx-tls mpgate ...); the report takes medians
# per candidate and case, and ratios mpgate ÷ nginx-tls from the same run only.
#
# Cases (all GET, Host/SNI a.test, 13-byte body unless said):
#   https-small      wrk, HTTP/1.1 over TLS, keep-alive, 64 connections, 1 thread
#   h2-small         h2load, HTTP/2, 16 connections × 10 concurrent streams, 1 thread
#   h2-64k           h2load as h2-small, GET /64k (65,536-byte body)
#   handshakes       wrk with "Connection: close": a new TCP + TLS connection per request, 64 at
#                    a time. wrk keeps the TLS session between reconnects (SSL_clear), so these are
#                    RESUMED handshakes (TLS 1.3 PSK with ECDHE, from the servers' session tickets)
#   handshakes-full  `openssl s_time -new`, 16 processes: a FULL handshake per connection (s_time
#                    never resumes with -new) and one GET / (HTTP/1.1, Connection: close). s_time
#                    sends no SNI: both candidates answer with their default (the same) certificate
#
# Usage: bash scripts/bench-https.sh [--repeat N] [--duration S] [--cases LIST] [--no-record] ...
# (--help lists all). Results: .bench/https-STAMP.{json,md}; a section in BENCHMARKS.md unless
# --no-record. Only 127.0.0.1 is targeted; only processes started here are stopped, by PID.
set -Eeuo pipefail

ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
SHARED=$(cd -- "$ROOT/../shared/bench" 2>/dev/null && pwd) || { echo "bench-https: ../shared/bench not found" >&2; exit 2; }

# ---- defaults -------------------------------------------------------------------------------------
ALL_CASES=https-small,h2-small,h2-64k,handshakes,handshakes-full
CASES=$ALL_CASES
REPEAT=${REPEAT:-3}
DURATION=4           # seconds per measurement (3 rounds × 3 candidates × 5 cases: ~6 min)
WARMUP=1             # seconds of discarded load before each measurement
CONNECTIONS=64       # wrk connections (https-small, handshakes)
H2_CLIENTS=16        # h2load connections
H2_STREAMS=10        # h2load concurrent streams per connection (-m)
STIME_PROCS=16       # parallel `openssl s_time -new` processes (handshakes-full)
KEY_TYPE=ec          # certificate key: ec (P-256, mpgate's default) or rsa (2048)
HTTPS_PORT=19443
PLAIN_PORT=19080     # mpgate's plain-HTTP listener (required by its config; not measured)
UPSTREAM_PORT=19001
HOST_NAME=a.test
PROXY_CPU=0
LOAD_CPU=1
QUIET_WAIT=5         # seconds to wait, per measurement, for other processes to go quiet
QUIET_PCT=10
START_TIMEOUT=20
RECORD=1
BUILD=1
KEEP=0
TARGET_MD=BENCHMARKS.md

usage() {
  cat <<EOF
Usage: bash scripts/bench-https.sh [options]      (npm run bench:https -- [options])

  --repeat N         rounds, candidates alternating (default $REPEAT; env REPEAT)
  --duration S       seconds per measurement (default $DURATION)
  --warmup S         seconds of discarded load before each measurement (default $WARMUP)
  --cases LIST       any of $ALL_CASES (default: all)
  --connections N    wrk connections for https-small and handshakes (default $CONNECTIONS)
  --h2-clients N     h2load connections (default $H2_CLIENTS)
  --h2-streams N     h2load concurrent streams per connection (default $H2_STREAMS)
  --stime-procs N    parallel s_time processes for handshakes-full (default $STIME_PROCS)
  --key-type T       ec (P-256, default) or rsa (2048-bit) certificate
  --quiet-wait S     wait up to S s before each measurement for other processes to
                     drop under 10% of a CPU (default $QUIET_WAIT; 0 = do not wait)
  --no-record        write .bench/https-STAMP.{json,md} only, not BENCHMARKS.md
  --no-build         do not run the TypeScript build first
  --keep             keep the scratch directory (configs, logs, raw tool output)
  -h, --help         this help

Needs nginx, wrk, h2load (Debian: nghttp2-client), openssl, curl, taskset; installed
with apt-get when missing and running as root. Ports $UPSTREAM_PORT, $PLAIN_PORT, $HTTPS_PORT on 127.0.0.1.
EOF
}

die() { echo "bench-https: $*" >&2; exit 2; }
log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
in_list() { [[ ",$2," == *",$1,"* ]]; }
is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }
json_str() {
  local s=${1//\\/\\\\}
  s=${s//\"/\\\"}
  s=$(printf '%s' "$s" | tr -d '\000-\037')
  printf '"%s"' "$s"
}

need() { (($1 >= 2)) || die "$2 needs a value"; }
while (($#)); do
  case $1 in
    --repeat) need $# "$1"; REPEAT=$2 ;;
    --duration) need $# "$1"; DURATION=$2 ;;
    --warmup) need $# "$1"; WARMUP=$2 ;;
    --cases) need $# "$1"; CASES=$2 ;;
    --connections) need $# "$1"; CONNECTIONS=$2 ;;
    --h2-clients) need $# "$1"; H2_CLIENTS=$2 ;;
    --h2-streams) need $# "$1"; H2_STREAMS=$2 ;;
    --stime-procs) need $# "$1"; STIME_PROCS=$2 ;;
    --key-type) need $# "$1"; KEY_TYPE=$2 ;;
    --quiet-wait) need $# "$1"; QUIET_WAIT=$2 ;;
    --no-record) RECORD=0; shift; continue ;;
    --no-build) BUILD=0; shift; continue ;;
    --keep) KEEP=1; shift; continue ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option: $1 (see --help)" ;;
  esac
  shift 2
done
for v in REPEAT DURATION WARMUP CONNECTIONS H2_CLIENTS H2_STREAMS STIME_PROCS QUIET_WAIT; do
  is_uint "${!v}" || die "$v must be a whole number, got '${!v}'"
done
((REPEAT >= 1 && DURATION >= 1 && CONNECTIONS >= 1 && H2_CLIENTS >= 1 && H2_STREAMS >= 1 && STIME_PROCS >= 1)) ||
  die "--repeat, --duration and the connection counts must be at least 1"
[[ $KEY_TYPE == ec || $KEY_TYPE == rsa ]] || die "--key-type: ec or rsa"
for c in ${CASES//,/ }; do in_list "$c" "$ALL_CASES" || die "unknown case '$c' ($ALL_CASES)"; done

# ---- tools ----------------------------------------------------------------------------------------
missing=()
for pair in nginx:nginx wrk:wrk h2load:nghttp2-client openssl:openssl curl:curl; do
  command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
done
if ((${#missing[@]})); then
  if ((EUID == 0)) && command -v apt-get >/dev/null; then
    log "apt-get install ${missing[*]}"
    apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2
  else
    die "missing: ${missing[*]}; install them (Debian: sudo apt-get install ${missing[*]})"
  fi
fi
# The undici-raw-tls anchor runs the harness's own anchor file, with the harness's pinned packages.
[[ -d $SHARED/node_modules/undici ]] || bash "$SHARED/setup.sh" >&2
for tool in nginx wrk h2load openssl curl node taskset setsid ss awk; do
  command -v "$tool" >/dev/null || die "'$tool' not found"
done
for cpu in "$PROXY_CPU" "$LOAD_CPU"; do
  taskset -c "$cpu" true 2>/dev/null || die "cannot pin to CPU $cpu (this machine has $(nproc) CPUs)"
done
port_busy() { [[ -n $(ss -Hltn "sport = :$1") ]]; }
for p in "$HTTPS_PORT" "$PLAIN_PORT" "$UPSTREAM_PORT"; do
  ! port_busy "$p" || die "port $p is already in use on this machine"
done

if ((BUILD)); then npm run --silent build >&2; fi
[[ -f dist/src/cli/main.js ]] || die "dist/src/cli/main.js missing: build first (npx tsc -p .)"

NGINX_VERSION=$(nginx -v 2>&1 | sed 's|^nginx version: nginx/||')
# nginx 1.25.1 replaced `listen ... http2` with the `http2 on;` directive.
if printf '%s\n' 1.25.1 "$NGINX_VERSION" | sort -V -C; then NGINX_H2=directive; else NGINX_H2=listen; fi

SELF_SID=$(ps -o sid= -p $$ | tr -d ' ')
CLK_TCK=$(getconf CLK_TCK)
RUN_DIR=$(mktemp -d -t bench-https.XXXXXX)
chmod 755 "$RUN_DIR"   # nginx workers may run as an unprivileged user
RESULTS=$RUN_DIR/results.jsonl
: >"$RESULTS"
mkdir -p "$ROOT/.bench"

# ---- processes (only those started here, by PID) --------------------------------------------------
UP_PID=""
CUR_PID=""
LOAD_PIDS=()

start_proc() {   # CPU LOGFILE CMD...: pinned, in a session of its own (stopped as one group)
  local cpu=$1 logfile=$2
  shift 2
  taskset -c "$cpu" setsid "$@" >"$logfile" 2>&1 </dev/null &
  STARTED_PID=$!
}
own_session() { [[ $({ ps -o sid= -p "$1" 2>/dev/null || true; } | tr -d ' ') == "$1" ]]; }
proc_alive() {
  if own_session "$1"; then ps -o stat= --sid "$1" 2>/dev/null | grep -qv '^Z'
  else ps -o stat= -p "$1" 2>/dev/null | grep -qv '^Z'; fi
}
stop_proc() {
  local pid=$1 target=$1 i
  own_session "$pid" && target=-$pid
  kill -TERM -- "$target" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do proc_alive "$pid" || break; sleep 0.1; done
  if proc_alive "$pid"; then
    log "  pid $pid still running 5 s after TERM; sending KILL"
    kill -KILL -- "$target" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  local rc=$? p
  trap - EXIT INT TERM
  for p in "${LOAD_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${LOAD_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  if [[ -n $CUR_PID ]]; then stop_proc "$CUR_PID"; fi
  if [[ -n $UP_PID ]]; then stop_proc "$UP_PID"; fi
  if ((KEEP)); then log "scratch directory kept: $RUN_DIR"; else rm -rf -- "$RUN_DIR"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'log "stopped: status $? at line $LINENO: $BASH_COMMAND"' ERR
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- certificate: a throwaway CA and a leaf for a.test --------------------------------------------
CERT_DIR=$RUN_DIR/cert
mkdir -p "$CERT_DIR"
newkey() {
  if [[ $KEY_TYPE == rsa ]]; then openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1" 2>/dev/null
  else openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; fi
}
newkey "$CERT_DIR/ca.key"
openssl req -x509 -new -key "$CERT_DIR/ca.key" -out "$CERT_DIR/ca.pem" -days 2 -subj "/CN=mpgate bench CA" \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign 2>/dev/null
newkey "$CERT_DIR/key.pem"
openssl req -new -key "$CERT_DIR/key.pem" -out "$CERT_DIR/leaf.csr" -subj "/CN=$HOST_NAME" 2>/dev/null
printf 'subjectAltName=DNS:%s\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature%s\nextendedKeyUsage=serverAuth\n' \
  "$HOST_NAME" "$([[ $KEY_TYPE == rsa ]] && echo ,keyEncipherment)" >"$CERT_DIR/leaf.ext"
openssl x509 -req -in "$CERT_DIR/leaf.csr" -CA "$CERT_DIR/ca.pem" -CAkey "$CERT_DIR/ca.key" -CAcreateserial \
  -days 2 -extfile "$CERT_DIR/leaf.ext" -out "$CERT_DIR/leaf.pem" 2>/dev/null
cat "$CERT_DIR/leaf.pem" "$CERT_DIR/ca.pem" >"$CERT_DIR/fullchain.pem"
chmod -R a+rX "$CERT_DIR"
CA=$CERT_DIR/ca.pem

# wrk takes SNI and the address from its URL. To send SNI a.test as clients do, wrk runs in a
# private mount namespace where /etc/hosts is a file of ours saying a.test is 127.0.0.1 (the
# machine's /etc/hosts is not touched). Without that (not root), wrk connects to 127.0.0.1 and
# sends SNI "127.0.0.1": both candidates then answer with their default (the same) certificate.
printf '127.0.0.1 %s\n' "$HOST_NAME" >"$RUN_DIR/hosts"
WRK_HOST=127.0.0.1
WRK_PREFIX=()
if unshare -m --propagation private sh -c 'mount --bind "$1" /etc/hosts && getent hosts "$2"' sh \
    "$RUN_DIR/hosts" "$HOST_NAME" 2>/dev/null | grep -q '^127\.0\.0\.1'; then
  WRK_HOST=$HOST_NAME
  WRK_PREFIX=(unshare -m --propagation private sh -c 'mount --bind "$0" /etc/hosts && exec "$@"' "$RUN_DIR/hosts")
fi
WRK_SNI=$WRK_HOST

# mpgate's TLS 1.2 cipher list and TLS 1.3 suites, so nginx negotiates the same suite.
SUITES=$(node --input-type=module -e "import('$ROOT/dist/src/tls/certificates.js').then((m) => console.log(m.DEFAULT_CIPHERS))" 2>/dev/null || true)
[[ -n $SUITES ]] || SUITES='TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305'
TLS13=$(tr ':' '\n' <<<"$SUITES" | grep '^TLS_' | paste -sd: -)
TLS12=$(tr ':' '\n' <<<"$SUITES" | grep -v '^TLS_' | paste -sd: -)

# ---- candidates -----------------------------------------------------------------------------------
# nginx-tls: the shared nginx anchor config (conf/nginx-proxy.conf: one worker, keepalive upstream,
# no access log, the same proxy headers and buffers), its two listen lines turned into TLS + h2
# listeners on the HTTPS port, and the TLS settings below.
render_nginx() {   # DIR
  local dir=$1 h2_listen="" h2_directive=""
  if [[ $NGINX_H2 == listen ]]; then h2_listen=" http2"; else h2_directive="    http2 on;"; fi
  mkdir -p "$dir/tmp"
  sed -e "s|{{PORT}}|$HTTPS_PORT|g" -e "s|{{HOST}}|$HOST_NAME|g" \
      -e "s|{{UPSTREAM_HOSTPORT}}|127.0.0.1:$UPSTREAM_PORT|g" \
      -e "s|^\( *listen 127\.0\.0\.1:$HTTPS_PORT\)\( default_server backlog=4096\)\{0,1\};|\1 ssl$h2_listen\2;|" \
      "$SHARED/conf/nginx-proxy.conf" >"$dir/nginx.conf.tmp"
  [[ $(grep -c "listen 127\.0\.0\.1:$HTTPS_PORT ssl" "$dir/nginx.conf.tmp") == 2 ]] ||
    die "could not turn the listen lines of $SHARED/conf/nginx-proxy.conf into TLS listeners"
  # TLS settings at http level, after "http {": the same certificate, TLS 1.2-1.3, mpgate's suites
  # with the server's order (mpgate sets honorCipherOrder), stock session handling (tickets on).
  awk -v h2="$h2_directive" -v tls12="$TLS12" -v tls13="$TLS13" -v dir="$CERT_DIR" '
    { print }
    /^http \{/ && !done {
      print "    ssl_certificate " dir "/fullchain.pem;"
      print "    ssl_certificate_key " dir "/key.pem;"
      print "    ssl_protocols TLSv1.2 TLSv1.3;"
      print "    ssl_ciphers " tls12 ";"
      print "    ssl_conf_command Ciphersuites " tls13 ";"
      print "    ssl_prefer_server_ciphers on;"
      if (h2 != "") print h2
      done = 1
    }' "$dir/nginx.conf.tmp" >"$dir/nginx.conf"
  chmod -R a+rX "$dir"
}

render_mpgate() {   # DIR
  cat >"$1/mpgate.yaml" <<EOF
listen: ["127.0.0.1:$PLAIN_PORT"]
https:
  listen: ["127.0.0.1:$HTTPS_PORT"]
accessLog: false
logLevel: warn
watch: false
sites:
  - hosts: [$HOST_NAME]
    upstream: http://127.0.0.1:$UPSTREAM_PORT
    tls: { cert: $CERT_DIR/fullchain.pem, key: $CERT_DIR/key.pem }
EOF
}

# undici-raw-tls: the shared harness's fastest plain Node anchor, unchanged, over node's TLS + h2
# (scripts/bench-anchors/undici-raw-tls.cjs): what a minimal Node proxy pays for TLS here.
CANDIDATES=(nginx-tls mpgate undici-raw-tls)
start_candidate() {   # NAME DIR -> CUR_PID
  local name=$1 dir=$2
  mkdir -p "$dir"
  chmod 755 "$dir"
  case $name in
    nginx-tls)
      render_nginx "$dir"
      start_proc "$PROXY_CPU" "$dir/output.log" nginx -p "$dir/" -c nginx.conf -g 'daemon off;' ;;
    mpgate)
      render_mpgate "$dir"
      start_proc "$PROXY_CPU" "$dir/output.log" node "$ROOT/dist/src/cli/main.js" serve --config "$dir/mpgate.yaml" ;;
    undici-raw-tls)
      start_proc "$PROXY_CPU" "$dir/output.log" env PORT="$HTTPS_PORT" HOST="$HOST_NAME" UPSTREAM="http://127.0.0.1:$UPSTREAM_PORT" \
        TLS_CERT="$CERT_DIR/fullchain.pem" TLS_KEY="$CERT_DIR/key.pem" ANCHOR="$SHARED/anchors/undici-raw.js" \
        node "$ROOT/scripts/bench-anchors/undici-raw-tls.cjs" ;;
  esac
  CUR_PID=$STARTED_PID
}

curl_tls() {   # curl over TLS to a.test on the HTTPS port, verifying against the throwaway CA
  curl -s --max-time 5 --cacert "$CA" --resolve "$HOST_NAME:$HTTPS_PORT:127.0.0.1" "$@"
}

wait_ready() {   # PID: 0 once GET / over TLS answers 200; 1 if the process exited; 2 on timeout
  local pid=$1 code deadline=$((SECONDS + START_TIMEOUT))
  while ((SECONDS < deadline)); do
    proc_alive "$pid" || return 1
    code=$(curl_tls --max-time 1 -o /dev/null -w '%{http_code}' "https://$HOST_NAME:$HTTPS_PORT/" || true)
    [[ $code == 200 ]] && return 0
    sleep 0.1
  done
  return 2
}

wait_port_free() {
  local i
  for ((i = 0; i < 50; i++)); do port_busy "$1" || return 0; sleep 0.1; done
  return 1
}

# check_candidate: sets CHECK ("ok" or warnings) and TLS_INFO; returns 1 when a body is wrong.
check_candidate() {
  local base=https://$HOST_NAME:$HTTPS_PORT got v warn=() sess=$RUN_DIR/session.pem
  CHECK=ok
  for v in 1.1 2; do
    got=$(curl_tls "--http$v" -o "$RUN_DIR/body" -w '%{http_code} %{http_version} %{size_download}' "$base/" || true)
    [[ $got == "200 $v 13" && $(cat "$RUN_DIR/body") == "hello, world" ]] ||
      { CHECK="HTTP/$v GET / answered '$got' '$(head -c 60 "$RUN_DIR/body")'"; return 1; }
    got=$(curl_tls "--http$v" -o /dev/null -w '%{http_code} %{size_download}' "$base/64k" || true)
    [[ $got == "200 65536" ]] || { CHECK="HTTP/$v GET /64k answered '$got'"; return 1; }
    got=$(curl_tls "--http$v" -o /dev/null -w '%{http_code}' -H 'Host: unknown.invalid' "$base/" || true)
    [[ $got == 404 ]] || warn+=("HTTP/$v Host unknown.invalid got $got, not 404")
  done
  # The handshakes-full request: no SNI, HTTP/1.1, Connection: close.
  got=$(printf 'GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$HOST_NAME" |
    timeout 5 openssl s_client -quiet -noservername -connect "127.0.0.1:$HTTPS_PORT" 2>/dev/null || true)
  [[ $got == *"hello, world"* ]] || { CHECK="no-SNI request (s_time's) answered '${got:0:60}'"; return 1; }
  # Session resumption (what wrk's reconnects get): a second connection offering the first's ticket.
  rm -f "$sess"
  printf 'GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$HOST_NAME" |
    timeout 5 openssl s_client -ign_eof -servername "$HOST_NAME" -connect "127.0.0.1:$HTTPS_PORT" \
      -sess_out "$sess" >"$RUN_DIR/s_client.1" 2>&1 || true
  RESUMES=no
  if [[ -s $sess ]] && printf 'GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$HOST_NAME" |
      timeout 5 openssl s_client -ign_eof -servername "$HOST_NAME" -connect "127.0.0.1:$HTTPS_PORT" \
        -sess_in "$sess" 2>&1 | grep -q '^Reused'; then
    RESUMES=yes
  fi
  TLS_INFO=$(awk -F': *' '/^ *Protocol *:/ { p = $2 } /^ *Cipher *:/ { c = $2 } /^Server Temp Key/ { k = $2 }
    END { printf "%s %s %s", p, c, k }' "$RUN_DIR/s_client.1")
  ((${#warn[@]} == 0)) || CHECK="warning: $(IFS=';'; echo "${warn[*]}")"
  return 0
}

# ---- measuring (as ../shared/bench/proxy-bench.sh) ------------------------------------------------
cpu_sample() {
  awk -v p="cpu$PROXY_CPU" -v l="cpu$LOAD_CPU" \
    '$1 == p || $1 == l { print $1, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9, $5 + $6, $9 }' /proc/stat | tr '\n' ' '
}
cpu_busy() {   # BEFORE AFTER cpuN|steal
  awk -v b="$1" -v a="$2" -v c="$3" 'BEGIN {
    n = split(b, B, " "); split(a, A, " ")
    for (i = 1; i <= n; i += 4) {
      dt = A[i + 1] - B[i + 1]; di = A[i + 2] - B[i + 2]; ds = A[i + 3] - B[i + 3]
      if (B[i] == c) printf "%.0f", (dt > 0 ? 100 * (dt - di) / dt : 0)
      st += ds; tt += dt
    }
    if (c == "steal") printf "%.1f", (tt > 0 ? 100 * st / tt : 0)
  }'
}
proc_sample() {   # "pid session ticks" of every user-space process (children reaped included)
  { cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk '{
    pid = $1; sub(/^.*\) /, ""); split($0, f, " ")
    if (f[2] != 2) print pid, f[4], f[12] + f[13] + f[14] + f[15]
  }'
}
proc_cpu() {   # BEFORE AFTER SECONDS -> "proxy other" in % of one CPU
  awk -v cand="${CUR_PID:--}" -v up="${UP_PID:--}" -v self="$SELF_SID" -v secs="$3" -v hz="$CLK_TCK" '
    NR == FNR { before[$1] = $3; next }
    {
      d = $3 - (($1 in before) ? before[$1] : 0); if (d < 0) d = 0
      if ($2 == cand) proxy += d
      else if ($2 != up && $2 != self) other += d
    }
    END { printf "%.1f %.0f", 100 * proxy / hz / secs, 100 * other / hz / secs }' "$1" "$2"
}
wait_quiet() {
  local start=$SECONDS use other
  QUIET_WAITED=0
  while :; do
    proc_sample >"$RUN_DIR/quiet.before"; sleep 0.5; proc_sample >"$RUN_DIR/quiet.after"
    use=$(proc_cpu "$RUN_DIR/quiet.before" "$RUN_DIR/quiet.after" 0.5)
    other=${use#* }
    ((other > QUIET_PCT)) || break
    if ((SECONDS - start >= QUIET_WAIT)); then log "  other processes use ${other}% of a CPU; measuring anyway"; break; fi
    sleep 1
  done
  QUIET_WAITED=$((SECONDS - start))
}
cpu_probe() {
  local t0=$EPOCHREALTIME
  taskset -c "$1" awk 'BEGIN { for (i = 0; i < 2000000; i++) s += i * i % 7 }'
  awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", (b - a) * 1000 }'
}
tcp_active_opens() {
  awk '$1 == "Tcp:" { if (!col) { for (i = 2; i <= NF; i++) if ($i == "ActiveOpens") col = i } else print $col }' /proc/net/snmp
}
session_rss_kib() { { ps -o rss= --sid "$1" || true; } | awk '{ s += $1 } END { print s + 0 }'; }

# The load generators. Each prints one JSON object on its last line ("BENCH_JSON {...}").
run_wrk() {   # SECONDS PATH [extra wrk args]
  local secs=$1 path=$2
  shift 2
  BENCH_BODY_BYTES=0 taskset -c "$LOAD_CPU" "${WRK_PREFIX[@]}" wrk -t 1 -c "$CONNECTIONS" -d "${secs}s" \
    --timeout 10s --latency -H "Host: $HOST_NAME" "$@" -s "$SHARED/lib/wrk-report.lua" \
    "https://$WRK_HOST:$HTTPS_PORT$path"
}
run_h2load() {   # SECONDS PATH WARMUP
  local warm=()
  (($3 > 0)) && warm=(--warm-up-time "$3")
  taskset -c "$LOAD_CPU" h2load -t 1 -c "$H2_CLIENTS" -m "$H2_STREAMS" -D "$1" "${warm[@]}" \
    --connect-to "127.0.0.1:$HTTPS_PORT" "https://$HOST_NAME:$HTTPS_PORT$2" 2>&1 |
    awk '
      function us(v) { if (v ~ /us$/) return v + 0; if (v ~ /ms$/) return v * 1000; if (v ~ /s$/) return v * 1e6; return v + 0 }
      { print }
      /^finished in/ { secs = $3 + 0; if ($3 ~ /ms,$/) secs /= 1000; rps = $4 + 0 }
      /^requests:/ { done_ = $6; ok = $8; failed = $10; errored = $12; timeout = $14 }
      /^status codes:/ { s2 = $3; s3 = $5; s4 = $7; s5 = $9 }
      /^traffic:/ { b = $3; gsub(/[()]/, "", b) }
      /^time for request:/ { mean = us($6); max = us($5) }
      /^Application protocol:/ { proto = $3 }
      END {
        if (rps == "") exit 1
        printf "BENCH_JSON {\"rps\":%s,\"duration_s\":%s,\"requests\":%d,\"succeeded\":%d,\"bytes\":%d,\"protocol\":\"%s\",", rps, secs, done_, ok, b, proto
        printf "\"errors\":{\"failed\":%d,\"errored\":%d,\"timeout\":%d,\"non_2xx\":%d},\"latency_us\":{\"mean\":%.1f,\"max\":%.1f}}\n", failed, errored, timeout, s3 + s4 + s5, mean, max
      }'
}
# handshakes-full: STIME_PROCS `openssl s_time -new` processes, each one connection at a time, each
# printing a '*' per completed connection (unbuffered via stdbuf); the stars counted across the
# measurement window, after the warm-up, give the rate.
STIME_REQ="/ HTTP/1.1"$'\r\n'"Host: $HOST_NAME"$'\r\n'"Connection: close"$'\r\n'"X-Bench:"   # s_time appends " HTTP/1.0\r\n\r\n"
stars() { local f n=0 c; for f in "$RUN_DIR"/stime.*.out; do c=$(tr -cd '*' <"$f" | wc -c); n=$((n + c)); done; echo "$n"; }
run_stime() {   # SECONDS WARMUP (meant to be called while the CPU/process samples are taken by measure)
  local i alive
  rm -f "$RUN_DIR"/stime.*.out
  LOAD_PIDS=()
  for ((i = 0; i < STIME_PROCS; i++)); do
    taskset -c "$LOAD_CPU" stdbuf -o0 openssl s_time -connect "127.0.0.1:$HTTPS_PORT" -new \
      -time $(($1 + $2 + 3)) -www "$STIME_REQ" >"$RUN_DIR/stime.$i.out" 2>&1 &
    LOAD_PIDS+=($!)
  done
}
stime_stop() {
  local p
  for p in "${LOAD_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${LOAD_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  LOAD_PIDS=()
}

record_failure() {   # NAME REASON
  local c
  for c in ${CASES//,/ }; do
    printf '{"candidate":%s,"case":"%s","round":%d,"error":%s}\n' "$(json_str "$1")" "$c" "$ROUND" "$(json_str "$2")" >>"$RESULTS"
  done
  log "  FAILED: $2"
}

measure() {   # NAME CASE PID
  local name=$1 case=$2 pid=$3 raw=$RUN_DIR/raw-$1-$2-$ROUND.txt tool
  wait_quiet
  local probe_proxy probe_load
  probe_proxy=$(cpu_probe "$PROXY_CPU")
  probe_load=$(cpu_probe "$LOAD_CPU")
  local before after p_before=$RUN_DIR/proc.before p_after=$RUN_DIR/proc.after t0 t1 secs_real use opens json="" n0 n1
  case $case in
    https-small|handshakes)
      local extra=()
      [[ $case == handshakes ]] && extra=(-H 'Connection: close')
      tool=wrk
      if ((WARMUP > 0)); then run_wrk "$WARMUP" / "${extra[@]}" >"$raw.warmup" 2>&1 || true; fi
      before=$(cpu_sample); proc_sample >"$p_before"; opens=$(tcp_active_opens); t0=$EPOCHREALTIME
      run_wrk "$DURATION" / "${extra[@]}" >"$raw" 2>&1 || true
      t1=$EPOCHREALTIME ;;
    h2-small|h2-64k)
      tool=h2load
      local path=/
      [[ $case == h2-64k ]] && path=/64k
      # h2load's own warm-up (--warm-up-time) runs on the same connections before the timed part;
      # the samples below cover both, so the CPU figures are for warm-up + measurement.
      before=$(cpu_sample); proc_sample >"$p_before"; opens=$(tcp_active_opens); t0=$EPOCHREALTIME
      run_h2load "$DURATION" "$path" "$WARMUP" >"$raw" 2>&1 || true
      t1=$EPOCHREALTIME ;;
    handshakes-full)
      tool=s_time
      run_stime "$DURATION" "$WARMUP"
      sleep "$((WARMUP > 0 ? WARMUP : 0)).5"
      before=$(cpu_sample); proc_sample >"$p_before"; opens=$(tcp_active_opens); n0=$(stars); t0=$EPOCHREALTIME
      sleep "$DURATION"
      n1=$(stars); t1=$EPOCHREALTIME ;;
  esac
  opens=$(($(tcp_active_opens) - opens))
  proc_sample >"$p_after"
  after=$(cpu_sample)
  secs_real=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
  use=$(proc_cpu "$p_before" "$p_after" "$secs_real")
  if [[ $tool == s_time ]]; then
    local failed=0 p
    for p in "${LOAD_PIDS[@]}"; do proc_alive "$p" || failed=$((failed + 1)); done   # s_time quits at its first error
    stime_stop
    cat "$RUN_DIR"/stime.*.out >"$raw"
    json=$(printf '{"connections":%d,"duration_us":%.0f,"processes":%d,"exited_early":%d}' "$((n1 - n0))" \
      "$(awk -v s="$secs_real" 'BEGIN { print s * 1e6 }')" "$STIME_PROCS" "$failed")
  else
    json=$(sed -n 's/^BENCH_JSON //p' "$raw" | tail -n 1)
  fi
  if [[ -z $json ]]; then
    printf '{"candidate":%s,"case":"%s","round":%d,"error":%s}\n' "$(json_str "$name")" "$case" "$ROUND" \
      "$(json_str "$tool failed: $(tail -n 3 "$raw")")" >>"$RESULTS"
    log "  $case: $tool failed: $(tail -n 1 "$raw")"
    return
  fi
  printf '{"candidate":%s,"case":"%s","round":%d,"tool":"%s","secs_real":%s,"cpu_pct":{"proxy_process":%s,"other_processes":%s,"proxy_cpu_busy":%s,"load_cpu_busy":%s,"steal":%s},"quiet_waited_s":%d,"cpu_probe_ms":{"proxy":%d,"load":%d},"rss_kib":%s,"tcp_connects":%d,"check":%s,"resumes":"%s","tls":%s,"raw":%s}\n' \
    "$(json_str "$name")" "$case" "$ROUND" "$tool" "$secs_real" "${use% *}" "${use#* }" \
    "$(cpu_busy "$before" "$after" "cpu$PROXY_CPU")" "$(cpu_busy "$before" "$after" "cpu$LOAD_CPU")" \
    "$(cpu_busy "$before" "$after" steal)" "$QUIET_WAITED" "$probe_proxy" "$probe_load" \
    "$(session_rss_kib "$pid")" "$opens" "$(json_str "$CHECK")" "$RESUMES" "$(json_str "$TLS_INFO")" "$json" >>"$RESULTS"
  node -e '
    const j = JSON.parse(process.argv[1]); const c = process.argv[2];
    const n = j.requests ?? j.connections; const s = j.duration_s ?? j.duration_us / 1e6;
    const rate = j.rps ?? n / s;
    const e = j.errors ? Object.values(j.errors).reduce((a, b) => a + b, 0) : j.exited_early;
    console.error(`  ${c.padEnd(16)} ${rate.toFixed(0).padStart(8)} /s   proxy CPU ${process.argv[3]}%   errors ${e}`);
  ' "$json" "$case" "${use% *}"
}

# ---- run ------------------------------------------------------------------------------------------
ncases=$(tr ',' '\n' <<<"$CASES" | grep -c .)
log "cases: $CASES; rounds: $REPEAT; about $(((REPEAT * 2 * (ncases * (WARMUP + DURATION + 2) + 3) + 59) / 60)) min"
log "proxy on CPU $PROXY_CPU; wrk/h2load/s_time and the upstream on CPU $LOAD_CPU; $KEY_TYPE certificate; wrk SNI $WRK_SNI"
STARTED_AT=$(date -u +%Y-%m-%dT%H:%M:%SZ)

up_dir=$RUN_DIR/upstream
mkdir -p "$up_dir/www" "$up_dir/tmp"
head -c 65536 /dev/urandom >"$up_dir/www/64k.bin"
chmod -R a+rX "$up_dir"
sed -e "s|{{UPSTREAM_PORT}}|$UPSTREAM_PORT|g" -e "s|{{SINK_SOCKET}}|$up_dir/sink.sock|g" \
  "$SHARED/conf/upstream.nginx.conf" >"$up_dir/nginx.conf"
start_proc "$LOAD_CPU" "$up_dir/output.log" nginx -p "$up_dir/" -c nginx.conf -g 'daemon off;'
UP_PID=$STARTED_PID
for ((i = 0; i < 100; i++)); do
  [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://127.0.0.1:$UPSTREAM_PORT/" || true) == 200 ]] && break
  proc_alive "$UP_PID" || break
  sleep 0.1
done
[[ $(curl -s --max-time 2 "http://127.0.0.1:$UPSTREAM_PORT/" || true) == "hello, world" ]] ||
  { tail -n 20 "$up_dir/output.log" "$up_dir/error.log" >&2 2>/dev/null || true; die "the upstream nginx did not come up on 127.0.0.1:$UPSTREAM_PORT"; }
log "upstream nginx up on 127.0.0.1:$UPSTREAM_PORT (pid $UP_PID)"

for ((ROUND = 1; ROUND <= REPEAT; ROUND++)); do
  for name in "${CANDIDATES[@]}"; do
    log "== $name (round $ROUND/$REPEAT)"
    if ! wait_port_free "$HTTPS_PORT" || ! wait_port_free "$PLAIN_PORT"; then
      record_failure "$name" "port $HTTPS_PORT or $PLAIN_PORT still in use before start"
      continue
    fi
    work=$RUN_DIR/cand-$name-$ROUND
    start_candidate "$name" "$work"
    ready=0
    wait_ready "$CUR_PID" || ready=$?
    if ((ready != 0)); then
      tail -n 20 "$work/output.log" "$work/error.log" >&2 2>/dev/null || true
      record_failure "$name" "$([[ $ready == 1 ]] && echo "exited before answering" || echo "no 200 within ${START_TIMEOUT}s") on https://127.0.0.1:$HTTPS_PORT"
    elif ! check_candidate; then
      record_failure "$name" "$CHECK"
    else
      log "  TLS: $TLS_INFO; session resumption: $RESUMES${CHECK/#ok/}"
      for c in ${CASES//,/ }; do measure "$name" "$c" "$CUR_PID"; done
      if grep -qiE 'error|exception' "$work/output.log" "$work/error.log" 2>/dev/null; then
        log "  $name logged errors (first lines):"
        grep -hiE 'error|exception' "$work/output.log" "$work/error.log" 2>/dev/null | head -n 3 >&2 || true
        cp "$work/output.log" "$ROOT/.bench/https-last-$name-output.log" 2>/dev/null || true
      fi
    fi
    stop_proc "$CUR_PID"
    CUR_PID=""
  done
done
stop_proc "$UP_PID"
UP_PID=""
FINISHED_AT=$(date -u +%Y-%m-%dT%H:%M:%SZ)

# ---- report ---------------------------------------------------------------------------------------
mkdir -p "$ROOT/.bench"
stamp=$(date -u +%Y-%m-%dT%H-%M-%SZ)
{
  printf '{"schema":"mpgate-bench-https/1","started_at":"%s","finished_at":"%s",' "$STARTED_AT" "$FINISHED_AT"
  printf '"machine":{"kernel":%s,"cpu_model":%s,"cpus":%d,"node":%s,"node_openssl":%s,"nginx":%s,"openssl":%s,"wrk":%s,"h2load":%s},' \
    "$(json_str "$(uname -r)")" "$(json_str "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)")" \
    "$(nproc)" "$(json_str "$(node -v)")" "$(json_str "$(node -p process.versions.openssl)")" \
    "$(json_str "nginx/$NGINX_VERSION")" "$(json_str "$(openssl version | awk '{ print $1 " " $2 }')")" \
    "$(json_str "$({ wrk -v 2>&1 || true; } | awk 'NR == 1 { print $2 }')")" \
    "$(json_str "$(h2load --version 2>&1 | awk '{ print $2 }')")"
  printf '"params":{"cases":"%s","repeat":%d,"duration_s":%d,"warmup_s":%d,"connections":%d,"h2_clients":%d,"h2_streams":%d,"stime_procs":%d,"key_type":"%s","wrk_sni":"%s","https_port":%d,"upstream_port":%d,"proxy_cpu":%d,"load_cpu":%d}}\n' \
    "$CASES" "$REPEAT" "$DURATION" "$WARMUP" "$CONNECTIONS" "$H2_CLIENTS" "$H2_STREAMS" "$STIME_PROCS" "$KEY_TYPE" \
    "$WRK_SNI" "$HTTPS_PORT" "$UPSTREAM_PORT" "$PROXY_CPU" "$LOAD_CPU"
} >"$RUN_DIR/meta.json"

report_args=(--meta "$RUN_DIR/meta.json" --results "$RESULTS" --out ".bench/https-$stamp.json" --md ".bench/https-$stamp.md")
((RECORD)) && report_args+=(--record "$TARGET_MD")
node scripts/bench-https-report.mjs "${report_args[@]}"
if ((RECORD)); then log "results added to $TARGET_MD (raw: .bench/https-$stamp.json)"
else log "not recorded (--no-record); raw: .bench/https-$stamp.json, table: .bench/https-$stamp.md"; fi
