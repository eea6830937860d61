#!/usr/bin/env bash
# CPU per proxied keep-alive request of latch (its event loops, and with
# --http-goroutines fasthttp's goroutine per connection), of bench/ceiling
# (an epoll loop in Go that does only the work any HTTP path must: a lower
# bound, see its doc comment) and of HAProxy, taken in turns on the same minutes, as in compare.sh:
# load generator and backends on CPU 0, the proxy alone on CPU 1.
#
#   bench/ceiling.sh               # 5 rounds of 4 s closed-loop runs, about 2 minutes
#   REPS=9 DUR=6s bench/ceiling.sh
#
# Needs haproxy (bench/compare.sh installs it); without it the HAProxy
# column is left out.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
REPS=${REPS:-5} DUR=${DUR:-4s}
PORT=18000 B1=19001 B2=19002

go build -o bin/latch ./cmd/latch
go build -o bin/loadgen ./bench/loadgen
go build -o bin/ceiling ./bench/ceiling
PROXIES=${PROXIES:-"latch latch-goroutines ceiling"}
if command -v haproxy >/dev/null && [[ $PROXIES != *haproxy* ]]; then PROXIES="$PROXIES haproxy"; fi

W=$(mktemp -d /tmp/latch-ceiling.XXXXXX)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
}
trap cleanup EXIT
ports_free $B1 $B2 $PORT || exit 1
LG=(taskset -c 0 bin/loadgen)
"${LG[@]}" backend --listen 127.0.0.1:$B1 --name b1 >/dev/null 2>&1 &
PIDS+=($!)
"${LG[@]}" backend --listen 127.0.0.1:$B2 --name b2 >/dev/null 2>&1 &
PIDS+=($!)
haproxy_cfg $PORT $B1 $B2 >"$W/haproxy.cfg"

start() {
	case $1 in
	latch | latch-goroutines)
		GOMAXPROCS=1 exec taskset -c 1 bin/latch serve --entrypoint web=127.0.0.1:$PORT --admin '' \
			--service b=127.0.0.1:$B1,127.0.0.1:$B2 --route 'PathPrefix(`/`) -> b; cookie=lb' --log-level warn \
			$([[ $1 == latch-goroutines ]] && echo --http-goroutines) ;;
	ceiling) GOMAXPROCS=1 exec taskset -c 1 bin/ceiling --listen 127.0.0.1:$PORT --backends 127.0.0.1:$B1,127.0.0.1:$B2 ;;
	haproxy) exec taskset -c 1 haproxy -db -f "$W/haproxy.cfg" ;;
	esac
}
# ticks P: the process's user and system clock ticks.
ticks() { awk '{print $14, $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
: >"$W/runs.tsv"
for ((rep = 1; rep <= REPS; rep++)); do
	for p in $PROXIES; do
		start "$p" >"$W/$p.log" 2>&1 &
		P=$!
		for ((i = 0; i < 100; i++)); do
			(exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
			sleep 0.05
		done
		"${LG[@]}" http --url http://127.0.0.1:$PORT/ --conns 50 --duration 1s --warmup 0s >/dev/null
		read -r u0 s0 < <(ticks $P)
		out=$("${LG[@]}" http --url http://127.0.0.1:$PORT/ --conns 50 --duration "$DUR" --warmup 0s | grep RESULT)
		read -r u1 s1 < <(ticks $P)
		kill $P
		wait $P 2>/dev/null || true
		n=$(grep -oE 'requests=[0-9]+' <<<"$out" | cut -d= -f2)
		errs=$(grep -oE 'errors=[0-9]+' <<<"$out" | cut -d= -f2)
		printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$rep" "$p" "$n" "$(((u1 - u0)))" "$(((s1 - s0)))" "${errs:-?}" >>"$W/runs.tsv"
		awk -v hz="$hz" -F'\t' 'END{printf "round %s %-8s %8d requests  user %5.2f  sys %5.2f  total %5.2f us/req  errors %s\n",
			$1, $2, $3, $4*1e6/hz/$3, $5*1e6/hz/$3, ($4+$5)*1e6/hz/$3, $6}' "$W/runs.tsv"
		sleep 0.3
	done
done
python3 - "$W/runs.tsv" "$hz" <<'PY'
import sys, statistics, collections
hz = float(sys.argv[2])
runs = collections.defaultdict(dict)
for line in open(sys.argv[1]):
    rep, p, n, u, s, _ = line.split("\t")
    n = int(n)
    runs[p][rep] = (int(u) * 1e6 / hz / n, int(s) * 1e6 / hz / n)
print()
print("| proxy | user us/req | system us/req | total us/req | total / latch's, per round (median) |")
print("|---|---|---|---|---|")
for p, r in runs.items():
    med = lambda i: statistics.median(v[i] for v in r.values())
    tot = statistics.median(sum(v) for v in r.values())
    ratios = [sum(r[k]) / sum(runs["latch"][k]) for k in r if k in runs["latch"]]
    print("| %s | %.2f | %.2f | %.2f | %.2fx |" % (p, med(0), med(1), tot, statistics.median(ratios)))
print("\nMedians of %d rounds; in each round the proxies ran one after the other, each a fresh process." % len(runs["latch"]))
PY
