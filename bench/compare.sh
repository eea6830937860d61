#!/usr/bin/env bash
# Side-by-side benchmark of latch against HAProxy, nginx and Caddy (and
# Traefik when TRAEFIK=/path/to/traefik is given) on one machine, in one run.
#
#   bench/compare.sh            # two full runs, 5 head-to-head pairs, 12 pairs of dials and 8 held to 30% of a core, about 10 minutes
#   QUICK=1 bench/compare.sh    # shorter phases, no 9,000-tunnel hold, 3 pairs, 5 of dials and 4 held, about 4 minutes
#   PAIRS=0 bench/compare.sh    # no head-to-head pairs
#   bench/compare.sh --table RESULTS.tsv   # reprint the table of an earlier run
#   TRAEFIK=/usr/local/bin/traefik bench/compare.sh
#   PROXIES="latch haproxy" bench/compare.sh
#
# The load generator and both backends run on CPU 0, the proxy alone on
# CPU 1, each proxy with one worker (GOMAXPROCS=1, nbthread 1,
# worker_processes 1). The second run goes through the proxies in reverse
# order; every cell is the mean of both runs with their spread. Then latch
# and HAProxy alternate in short pairs on the figures whose targets are
# ratios near 1 (CPU per request, p99 at 3,000 req/s, connect rate), and a
# second table gives each pair's ratio and their median. The connect rate
# is measured twice more in pairs: the dials alone, and the dials with the
# proxy held to 30% of its core by a CPU cgroup, where the proxy rather
# than the load generator's core bounds the rate.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

# print_table RESULTS.tsv PROXIES: the table from a results file.
print_table() {
	python3 - "$1" "$2" <<'PY'
import sys, collections
res = sys.argv[1]
d = collections.defaultdict(list)
for line in open(res):
    run, p, k, v = line.rstrip("\n").split("\t")
    try: d[(p, k)].append(float(v))
    except ValueError: pass
present = {p for p, _ in d}
proxies = [p for p in sys.argv[2].split() if p in present]
holds = sorted({k[len("kb_per_tunnel_hold"):] for _, k in d if k.startswith("kb_per_tunnel_hold")}, key=int)
cols = [("RPS (closed, 50 conns)", "rps_closed", "%.0f", True),
        ("CPU us/req", "cpu_us_per_req_closed", "%.1f", False),
        ("p50 us @3k/s", "p50_us_rate", "%.0f", False),
        ("p99 us @3k/s", "p99_us_rate", "%.0f", False),
        ("WS connects/s", "connect_rate_hold5000", "%.0f", True),
        ("CPU us/connect", "connect_cpu_us_hold5000", "%.0f", False),
        ("CPU 0 busy @connects", "core0_busy_pct_hold5000", "%.0f%%", False),
        ("echo p50 us", "echo_p50_us_echo", "%.0f", False),
        ("echo p99 us", "echo_p99_us_echo", "%.0f", False)]
for n in holds:
    cols.append(("KB/tunnel @%s" % n, "kb_per_tunnel_hold%s" % n, "%.1f", False))
    if n == "5000":
        cols.append(("KB/tunnel @5000, 2nd round", "kb_per_tunnel_churn5000", "%.1f", False))
def cell(p, k, fmt):
    v = d.get((p, k))
    if not v: return "-"
    m = sum(v) / len(v)
    spread = (max(v) - min(v)) / 2 / m * 100 if m else 0
    return (fmt % m) + " ±%.0f%%" % spread
def errors(p):
    keys = ["errors_closed", "errors_rate", "failures_echo", "errors_churn5000"] + ["errors_hold%s" % n for n in holds]
    return "%d" % sum(sum(d.get((p, k), [0])) for k in keys)
def sticky(p):
    v = d.get((p, "stayed_pct_closed"), [])
    return "%.1f%%" % min(v) if v else "-"
hdr = ["proxy"] + [c[0] for c in cols] + ["errors", "sticky"]
print("| " + " | ".join(hdr) + " |")
print("|" + "---|" * len(hdr))
for p in proxies:
    print("| " + " | ".join([p] + [cell(p, c[1], c[2]) for c in cols] + [errors(p), sticky(p)]) + " |")
if "latch" in proxies and "haproxy" in proxies:
    row = ["latch / haproxy"]
    for _, k, _, higher in cols:
        a, b = d.get(("latch", k)), d.get(("haproxy", k))
        if a and b and sum(b):
            row.append("%.2fx" % ((sum(a) / len(a)) / (sum(b) / len(b))))
        else:
            row.append("-")
    print("| " + " | ".join(row + ["", ""]) + " |")
print()
print("Cells: mean of %d runs ± half their spread. RPS and connects/s: higher is better; the rest lower."
      % len({l.split('\t')[0] for l in open(res)}))
print("errors: HTTP errors (I/O or status >= 400) + WebSocket dial/echo failures + tunnels lost during the hold, both runs.")
print("sticky: the lowest share, over both runs, of requests that stayed on their client's first backend.")
print("CPU 0 busy @connects: the load generator's core (with both backends) during the 5,000 dials; near 100%,"
      " the connect rate is the load generator's rather than the proxy's.")
PY
}
# print_h2h H2H.tsv: the head-to-head table, from the alternating pairs.
print_h2h() {
	python3 - "$1" <<'PY'
import sys, collections, statistics
d = collections.defaultdict(dict)
for line in open(sys.argv[1]):
    run, p, k, v = line.rstrip("\n").split("\t")
    try: d[(run, p, k)] = float(v)
    except ValueError: pass
# Runs "hN" are the full pairs; "dN" the pairs of dials alone, which
# only the connect rows use.
pairs = sorted({r for r, _, _ in d}, key=lambda r: (r[0] != "h", int(r[1:])))
full = [r for r in pairs if r[0] == "h"]
rows = [("CPU us/req (closed loop)", "cpu_us_per_req_closed", "at most 1.0x"),
        ("p99 us @3k/s", "p99_us_rate", "at most 1.0x"),
        ("WS connects/s (5,000 dials)", "connect_rate_hold5000", "at least 1.0x"),
        ("CPU us/connect (5,000 dials)", "connect_cpu_us_hold5000", ""),
        ("CPU 0 busy @connects", "core0_busy_pct_hold5000", ""),
        ("WS connects/s, proxy held to 30% of CPU 1", "connect_rate_capped", "at least 1.0x"),
        ("CPU us/connect, held to 30%", "connect_cpu_us_capped", ""),
        ("CPU 0 busy @connects, held to 30%", "core0_busy_pct_capped", ""),
        ("RPS (closed loop)", "rps_closed", "")]
print("| figure | latch (median) | haproxy (median) | latch / haproxy per pair | median ratio | pairs meeting the target |")
print("|---|---|---|---|---|---|")
for name, k, target in rows:
    a = [d.get((r, "latch", k)) for r in pairs]
    b = [d.get((r, "haproxy", k)) for r in pairs]
    ratios = [x / y for x, y in zip(a, b) if x and y]
    if not ratios:
        continue
    if target.startswith("at most"): met = "%d of %d" % (sum(q <= 1.0 for q in ratios), len(ratios))
    elif target.startswith("at least"): met = "%d of %d" % (sum(q >= 1.0 for q in ratios), len(ratios))
    else: met = "-"
    print("| %s | %.1f | %.1f | %s | %.2fx | %s |" % (name, statistics.median([x for x in a if x]),
          statistics.median([y for y in b if y]), " ".join("%.2f" % q for q in ratios), statistics.median(ratios), met))
print()
print("%d pairs, latch and HAProxy alternating (odd pairs latch first), each a fresh process: 1 s warm-up and 3 s"
      " closed loop, 1 s and 3 s at 3,000 req/s, then 5,000 WebSocket dials. A pair's two measurements are seconds"
      " apart, so the machine's drift, which moves whole runs by a fifth, mostly cancels in its ratio." % len(full))
dials = [r for r in pairs if r[0] == "d"]
capped = [r for r in pairs if r[0] == "c"]
if dials:
    print("The connect rows add %d pairs of the 5,000 dials alone, in the same alternation." % len(dials))
if capped:
    print("The rows held to 30%%: %d more pairs of the dials with the proxy held to 3 ms of CPU in every 10 ms"
          " (a CPU cgroup), so that the proxy bounds the connect rate rather than the load generator's core." % len(capped))
PY
}
if [[ ${1:-} == --table ]]; then
	print_table "$2" "${PROXIES:-latch haproxy nginx caddy traefik}"
	if [[ -s $(dirname "$2")/h2h.tsv ]]; then
		echo
		print_h2h "$(dirname "$2")/h2h.tsv"
	fi
	exit 0
fi

QUICK=${QUICK:-0}
PROXIES=${PROXIES:-"latch haproxy nginx caddy"}
if [[ -n ${TRAEFIK:-} ]]; then PROXIES="$PROXIES traefik"; fi
PORT=18000 APORT=18080 B1=19001 B2=19002
if [[ $QUICK == 1 ]]; then
	DUR=3s WARM=1s WSC=200 WSM=5 HOLD=2s HOLDS="5000" PAIRS=${PAIRS:-3} DIAL_PAIRS=${DIAL_PAIRS:-5} CAP_PAIRS=${CAP_PAIRS:-4}
else
	DUR=8s WARM=2s WSC=500 WSM=20 HOLD=6s HOLDS="5000 9000" PAIRS=${PAIRS:-5} DIAL_PAIRS=${DIAL_PAIRS:-12} CAP_PAIRS=${CAP_PAIRS:-8}
fi
CONNS=50 RATE=3000

log() { printf '%s %s\n' "$(date -u +%T)" "$*" >&2; }

# --- tools -------------------------------------------------------------------
missing=()
for t in haproxy nginx caddy wrk taskset python3; do
	command -v "$t" >/dev/null || missing+=("$t")
done
if ((${#missing[@]})); then
	log "installing ${missing[*]}"
	pkgs=("${missing[@]/taskset/util-linux}")
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >/dev/null
fi
# Debian starts the packaged services where systemd runs; they would share
# the CPUs with the run, so stop them when present (no-op in a container).
command -v systemctl >/dev/null && systemctl stop haproxy nginx caddy 2>/dev/null || true

go build -o bin/latch ./cmd/latch
go build -o bin/loadgen ./bench/loadgen

W=$(mktemp -d /tmp/latch-bench.XXXXXX)
RES=$W/results.tsv
: >"$RES"
PIDS=()
CG=""
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	if [[ -n $CG ]]; then rmdir "$CG" 2>/dev/null || true; fi
}
trap cleanup EXIT
LG=(taskset -c 0 bin/loadgen)

wait_port() {
	local i
	for ((i = 0; i < 100; i++)); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.1
	done
	log "nothing listens on port $1"
	return 1
}

# --- backends (CPU 0) ----------------------------------------------------------
ports_free $B1 $B2 $PORT $APORT || exit 1
"${LG[@]}" backend --listen 127.0.0.1:$B1 --name b1 >"$W/b1.log" 2>&1 &
PIDS+=($!)
"${LG[@]}" backend --listen 127.0.0.1:$B2 --name b2 >"$W/b2.log" 2>&1 &
PIDS+=($!)
wait_port $B1 && wait_port $B2
# Warm the backends directly, so that the first proxy measured does not pay
# for their cold start (goroutine stacks, heap growth) in its figures.
for bp in "$B1:${PIDS[0]}" "$B2:${PIDS[1]}"; do
	"${LG[@]}" http --url "http://127.0.0.1:${bp%%:*}/" --conns $CONNS --duration 1s --warmup 0s >/dev/null
	"${LG[@]}" ws-hold --url "ws://127.0.0.1:${bp%%:*}/ws" --conns 5000 --hold 0s --pid "${bp##*:}" >/dev/null
done

# --- proxy configurations -----------------------------------------------------
haproxy_cfg $PORT $B1 $B2 >"$W/haproxy.cfg"

mkdir -p "$W/nginx"
cat >"$W/nginx.conf" <<CFG
daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile 20000;
error_log $W/nginx/error.log error;
pid $W/nginx/nginx.pid;
events { worker_connections 19500; }
http {
	access_log off;
	client_body_temp_path $W/nginx/body;
	proxy_temp_path $W/nginx/proxy;
	fastcgi_temp_path $W/nginx/fastcgi;
	uwsgi_temp_path $W/nginx/uwsgi;
	scgi_temp_path $W/nginx/scgi;
	keepalive_timeout 90s;
	keepalive_requests 1000000;
	map \$http_upgrade \$connection_upgrade { default upgrade; '' ''; }
	# Open-source nginx cannot insert a sticky cookie: it hashes the
	# client's own "cid" cookie, which every load-generator client sends.
	upstream b {
		hash \$cookie_cid consistent;
		server 127.0.0.1:$B1;
		server 127.0.0.1:$B2;
		keepalive 64;
		keepalive_requests 1000000;
	}
	server {
		listen 127.0.0.1:$PORT;
		location / {
			proxy_pass http://b;
			proxy_http_version 1.1;
			proxy_set_header Host \$host;
			# The X-Forwarded-* headers latch, Caddy and Traefik set by default.
			proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
			proxy_set_header X-Forwarded-Proto \$scheme;
			proxy_set_header X-Forwarded-Host \$host;
			proxy_set_header Upgrade \$http_upgrade;
			proxy_set_header Connection \$connection_upgrade;
			proxy_read_timeout 1h;
			proxy_send_timeout 1h;
		}
	}
}
CFG

cat >"$W/Caddyfile" <<CFG
{
	admin off
	auto_https off
}
http://127.0.0.1:$PORT {
	bind 127.0.0.1
	reverse_proxy 127.0.0.1:$B1 127.0.0.1:$B2 {
		lb_policy cookie lb
	}
}
CFG

cat >"$W/traefik.yml" <<CFG
entryPoints:
  web:
    address: "127.0.0.1:$PORT"
    transport:
      respondingTimeouts: {readTimeout: 1h, idleTimeout: 90s}
providers:
  file: {filename: "$W/traefik-dynamic.yml"}
log: {level: ERROR}
CFG
cat >"$W/traefik-dynamic.yml" <<CFG
http:
  routers:
    all: {rule: "PathPrefix(\`/\`)", service: b, entryPoints: [web]}
  services:
    b:
      loadBalancer:
        sticky: {cookie: {name: lb}}
        servers: [{url: "http://127.0.0.1:$B1"}, {url: "http://127.0.0.1:$B2"}]
CFG

# start_proxy NAME: starts it alone on CPU 1 and sets PROXY_PID.
start_proxy() {
	local name=$1
	case $name in
	latch)
		GOMAXPROCS=1 taskset -c 1 bin/latch serve \
			--entrypoint web=127.0.0.1:$PORT --admin 127.0.0.1:$APORT \
			--service b=127.0.0.1:$B1,127.0.0.1:$B2 \
			--route 'PathPrefix(`/`) -> b; cookie=lb' \
			--tunnel-idle-timeout 1h --log-level warn ${LATCH_FLAGS:-} >>"$W/latch.log" 2>&1 &
		;;
	haproxy) taskset -c 1 haproxy -db -f "$W/haproxy.cfg" >>"$W/haproxy.log" 2>&1 & ;;
	nginx) taskset -c 1 nginx -p "$W/nginx" -c "$W/nginx.conf" >>"$W/nginx.log" 2>&1 & ;;
	caddy)
		GOMAXPROCS=1 HOME=$W XDG_DATA_HOME=$W XDG_CONFIG_HOME=$W taskset -c 1 \
			caddy run --config "$W/Caddyfile" --adapter caddyfile >>"$W/caddy.log" 2>&1 &
		;;
	traefik)
		GOMAXPROCS=1 taskset -c 1 "$TRAEFIK" --configFile="$W/traefik.yml" >>"$W/traefik.log" 2>&1 &
		;;
	esac
	PROXY_PID=$!
	PIDS+=("$PROXY_PID")
	wait_port $PORT
	sleep 0.3
}

stop_proxy() {
	kill "$PROXY_PID" 2>/dev/null || true
	wait "$PROXY_PID" 2>/dev/null || true
	# the port must be free before the next proxy binds it
	local i
	for ((i = 0; i < 50; i++)); do
		(exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null || return 0
		sleep 0.1
	done
}

# record RUN PROXY [SUFFIX [FILE]]: reads RESULT lines on stdin into the
# results file (or FILE).
record() {
	local run=$1 proxy=$2 suffix=${3:-} file=${4:-$RES}
	grep '^RESULT' | tr ' ' '\n' | grep = | grep -v '^mode=' |
		while IFS== read -r k v; do printf '%s\t%s\t%s%s\t%s\n' "$run" "$proxy" "$k" "$suffix" "$v"; done >>"$file"
}

measure() {
	local run=$1 p=$2 out
	log "run $run: $p"
	if ! start_proxy "$p"; then
		log "$p did not start; see $W/$p.log"
		stop_proxy
		return 0
	fi
	out=$("${LG[@]}" http --url "http://127.0.0.1:$PORT/" --conns $CONNS --duration $DUR --warmup $WARM --pid "$PROXY_PID")
	echo "$out" | sed "s/^/  [$p closed] /" >&2
	echo "$out" | record "$run" "$p" _closed
	out=$("${LG[@]}" http --url "http://127.0.0.1:$PORT/" --conns $CONNS --duration $DUR --warmup $WARM --rate $RATE --pid "$PROXY_PID")
	echo "$out" | sed "s/^/  [$p rate] /" >&2
	echo "$out" | record "$run" "$p" _rate
	out=$("${LG[@]}" ws-echo --url "ws://127.0.0.1:$PORT/ws" --conns $WSC --messages $WSM)
	echo "$out" | sed "s/^/  [$p ws-echo] /" >&2
	echo "$out" | record "$run" "$p" _echo
	stop_proxy
	local n
	for n in $HOLDS; do
		# A fresh process per level, warmed by one small echo round.
		start_proxy "$p" || { stop_proxy; continue; }
		"${LG[@]}" ws-echo --url "ws://127.0.0.1:$PORT/ws" --conns 100 --messages 2 >/dev/null
		sleep 0.5
		out=$("${LG[@]}" ws-hold --url "ws://127.0.0.1:$PORT/ws" --conns "$n" --hold $HOLD --pid "$PROXY_PID")
		echo "$out" | sed "s/^/  [$p ws-hold $n] /" >&2
		echo "$out" | record "$run" "$p" "_hold$n"
		if [[ $n == 5000 ]]; then
			# The same number again in the same process, counted from the
			# first base: what a process that has already opened and closed
			# tunnels holds (freed memory is reused, and zeroed, not returned).
			local base
			base=$(echo "$out" | grep -o 'rss_base_kb=[0-9]*' | cut -d= -f2)
			sleep 1
			out=$("${LG[@]}" ws-hold --url "ws://127.0.0.1:$PORT/ws" --conns "$n" --hold $HOLD --pid "$PROXY_PID" --base-kb "$base")
			echo "$out" | sed "s/^/  [$p ws-hold $n again] /" >&2
			echo "$out" | record "$run" "$p" "_churn$n"
		fi
		stop_proxy
	done
}

# cap_cgroup: a CPU cgroup that holds a process to CAP_US of CPU in every
# 10 ms (cgroup v1's cpu controller, or v2's), made once; sets CG, or
# leaves it empty and says why when this machine has none to offer.
CAP_US=3000
cap_cgroup() {
	local d=/sys/fs/cgroup/cpu
	if [[ -w $d/cgroup.procs && -e $d/cpu.cfs_quota_us ]]; then
		CG=$d/latch-bench-$$
		mkdir "$CG" && echo 10000 >"$CG/cpu.cfs_period_us" && echo $CAP_US >"$CG/cpu.cfs_quota_us" && return 0
	elif d=/sys/fs/cgroup && grep -qw cpu $d/cgroup.controllers 2>/dev/null; then
		CG=$d/latch-bench-$$
		echo +cpu >"$d/cgroup.subtree_control" 2>/dev/null
		mkdir "$CG" && echo "$CAP_US 10000" >"$CG/cpu.max" && return 0
	fi
	log "no writable CPU cgroup: the capped dials are skipped"
	[[ -n $CG ]] && rmdir "$CG" 2>/dev/null
	CG=""
	return 1
}

# pair_order I: the proxies of pair I, latch first in odd pairs.
pair_order() {
	if (($1 % 2)); then echo "latch haproxy"; else echo "haproxy latch"; fi
}

# dial_pairs TAG N SUFFIX WHAT [CGROUP]: N pairs of the 5,000 dials alone,
# each a fresh process warmed by 100 WebSockets and moved into CGROUP when
# one is given. Results go to $W/h2h.tsv, run TAG followed by the pair.
dial_pairs() {
	local tag=$1 n=$2 suffix=$3 what=$4 cg=${5:-} i p out
	for ((i = 1; i <= n; i++)); do
		for p in $(pair_order $i); do
			log "$what, pair $i: $p"
			start_proxy "$p" || { stop_proxy; continue; }
			[[ -z $cg ]] || echo "$PROXY_PID" >"$cg/cgroup.procs"
			"${LG[@]}" ws-echo --url "ws://127.0.0.1:$PORT/ws" --conns 100 --messages 2 >/dev/null
			out=$("${LG[@]}" ws-hold --url "ws://127.0.0.1:$PORT/ws" --conns 5000 --hold 0s --pid "$PROXY_PID")
			echo "$out" | record "$tag$i" "$p" "$suffix" "$W/h2h.tsv"
			stop_proxy
		done
	done
}

# head_to_head: latch and HAProxy alternating, PAIRS times, on the figures
# whose targets are ratios near 1: each pair's two measurements are seconds
# apart rather than minutes, so their ratio carries little of the machine's
# drift. Results go to $W/h2h.tsv, run "hN" for pair N.
head_to_head() {
	local i p out
	for ((i = 1; i <= PAIRS; i++)); do
		for p in $(pair_order $i); do
			log "head to head $i: $p"
			start_proxy "$p" || { stop_proxy; continue; }
			out=$("${LG[@]}" http --url "http://127.0.0.1:$PORT/" --conns $CONNS --duration 3s --warmup 1s --pid "$PROXY_PID")
			echo "$out" | record "h$i" "$p" _closed "$W/h2h.tsv"
			out=$("${LG[@]}" http --url "http://127.0.0.1:$PORT/" --conns $CONNS --duration 3s --warmup 1s --rate $RATE --pid "$PROXY_PID")
			echo "$out" | record "h$i" "$p" _rate "$W/h2h.tsv"
			"${LG[@]}" ws-echo --url "ws://127.0.0.1:$PORT/ws" --conns 100 --messages 2 >/dev/null
			out=$("${LG[@]}" ws-hold --url "ws://127.0.0.1:$PORT/ws" --conns 5000 --hold 0s --pid "$PROXY_PID")
			echo "$out" | record "h$i" "$p" _hold5000 "$W/h2h.tsv"
			stop_proxy
		done
	done
	# The connect rate swings most from one measurement to the next (it is
	# bound by the load generator's core, which the machine's other work
	# slows by turns), so more pairs of the dials alone follow: run "dN".
	dial_pairs d "$DIAL_PAIRS" _hold5000 dials
	# Then the dials with the proxy held to 30% of its core, so that the
	# proxy, not the load generator's core, bounds the connect rate: its
	# cost per connect is what sets the rate there. Run "cN".
	((CAP_PAIRS > 0)) && cap_cgroup || return 0
	dial_pairs c "$CAP_PAIRS" _capped "dials at 30% of CPU 1" "$CG"
}

START=$(date +%s)
log "workdir $W; proxies: $PROXIES; QUICK=$QUICK"
for p in $PROXIES; do measure 1 "$p"; done
REV=$(echo "$PROXIES" | tr ' ' '\n' | tac | tr '\n' ' ')
for p in $REV; do measure 2 "$p"; done
H2H=0
if [[ " $PROXIES " == *" latch "* && " $PROXIES " == *" haproxy "* && $PAIRS -gt 0 ]]; then
	H2H=1
	head_to_head
fi
log "done in $(($(date +%s) - START))s"

print_table "$RES" "$PROXIES"
if [[ $H2H == 1 ]]; then
	echo
	print_h2h "$W/h2h.tsv"
fi
echo "raw results: $RES" >&2
