#!/bin/bash
# make bench: chatmem's benchmark on this machine, against references
# measured in the same run. Starts its own fleet (redis-server on a free
# port with a throwaway directory, the devbroker, the workers), stops
# everything it started on exit, and writes to OUT (default build/bench):
#   report.txt   the plain-text report
#   bench.json   every result, machine-readable
#   latency.png  context latency (p50/p99/p99.9) against the offered rate
#
# Settings (environment):
#   BENCH_EVENTS=1000000    ingest events per run
#   BENCH_SESSIONS=10000    ingest sessions (also the memory sample size)
#   BENCH_PARTITIONS=16     partitions per topic in the devbroker
#   BENCH_WINDOW=50000      max events produced but not yet in Redis (keeps
#                           the consumers within the devbroker's ~5 MB per
#                           partition retention)
#   BENCH_CTX_SESSIONS=2000 sessions of 20-50 messages for the context run
#   BENCH_RATES="1000 2000 5000 10000 15000 20000 40000"  offered req/s, stops at
#                           saturation (replies missing or rate not reached)
#   BENCH_DURATION=5        seconds per rate
#   BENCH_SWEEP="0:1 2:1 5:1 0:10 2:10"  linger.ms:fetch.wait.max.ms pairs
#                           measured at BENCH_SWEEP_RATE (default 2000 req/s)
#                           for BENCH_SWEEP_DURATION s (default 3) each
#   BENCH_PRICE=0.15        $ per 1M input tokens for the cost model
#   BENCH_LINGER_MS         linger.ms of every producer (bench and workers);
#                           unset: chatmem's defaults (0 on the request/reply
#                           path, 2 elsewhere)
#   CHATMEM_KAFKA=apache    run on Apache Kafka (ops/kafka.sh; make bench
#                           KAFKA=apache) instead of the devbroker
#   BENCH_FETCH_WAIT_MS=1   fetch.wait.max.ms of every consumer (10 on Apache
#                           Kafka, the workers' default). Not chatmem's
#                           default (10): the devbroker (librdkafka's mock
#                           cluster) holds a fetch that finds no data for the
#                           full fetch.wait.max.ms even when data arrives
#                           meanwhile, where a real broker answers at once;
#                           1 ms keeps that artefact out of the latencies.
#   BENCH_ARCHIVE_SIZES="100 1000 10000"  archived messages per session
#                           for the archive's memory figures
#   BENCH_ARCHIVE_SAMPLES=3 sessions measured per archive size
#   BENCH_CLIENT_RATES="500 1000 1500 2000 2500 3000 4000 5000 6000"  offered req/s
#                           of the client comparison: chatmem-bench, the
#                           Node.js client and the Python client in turn at
#                           each rate, each until it saturates
#   BENCH_CLIENTS="node python"  the clients compared ("": none)
#   BENCH_FLEET_WARMUP=20   seconds of context requests at
#                           BENCH_FLEET_WARMUP_RATE (default 1000 req/s)
#                           through the context worker before its figures
#                           (not recorded): the broker's JIT and the
#                           worker's recall cache are cold before them
#   BENCH_CLIENT_WARMUP=3   seconds each client run sends at its rate
#                           before its clock starts (not recorded)
#   BENCH_CLIENT_REPEAT=3   runs of each client at each rate, interleaved
#                           (c node python c node python ...); the report
#                           takes their medians, and a client saturates at
#                           a rate when most of its runs there were not
#                           sustained (1 under BENCH_SMOKE)
#   BENCH_CLIENT_P99_BOUNDS="10 20 50 100 200 500"  p99 bounds (ms) of the
#                           comparison: at each, each client's highest rate
#                           within it against chatmem-bench's, both read off
#                           their own curves (the target is 70%)
#   BENCH_ONLY=archive      only the archive's figures (codec and memory;
#                           needs no broker traffic, ~20 s), then the report
#   BENCH_ONLY=clients      only the client comparison (the fleet, the
#                           prefilled sessions, then 4c; ~13 min), then the
#                           report
#   BENCH_SMOKE=1           tiny sizes, for the test suite (~10 s)
set -eu -o pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
BIN=${CHATMEM_BIN:-$here/bin}
OUT=${1:-$here/build/bench}
PY=/usr/bin/python3

if [ "${BENCH_SMOKE:-0}" = 1 ]; then
	: "${BENCH_EVENTS:=2000}" "${BENCH_SESSIONS:=200}"
	: "${BENCH_CTX_SESSIONS:=50}" "${BENCH_RATES:=200 400}"
	: "${BENCH_DURATION:=1}" "${BENCH_PARTITIONS:=4}"
	: "${BENCH_RPUSH_N:=20000}" "${BENCH_BUILD_N:=2000}"
	: "${BENCH_SWEEP:=0:1}" "${BENCH_SWEEP_RATE:=200}" "${BENCH_SWEEP_DURATION:=1}"
	: "${BENCH_ARCHIVE_SIZES:=100 1000}" "${BENCH_ARCHIVE_SAMPLES:=1}"
	: "${BENCH_CLIENT_RATES:=200}" "${BENCH_CLIENT_REPEAT:=1}"
	: "${BENCH_FLEET_WARMUP:=1}" "${BENCH_FLEET_WARMUP_RATE:=200}" "${BENCH_CLIENT_WARMUP:=1}"
fi
EVENTS=${BENCH_EVENTS:-1000000}
SESSIONS=${BENCH_SESSIONS:-10000}
PARTS=${BENCH_PARTITIONS:-16}
WINDOW=${BENCH_WINDOW:-50000}
CTX_SESSIONS=${BENCH_CTX_SESSIONS:-2000}
RATES=${BENCH_RATES:-1000 2000 5000 10000 15000 20000 40000}
DURATION=${BENCH_DURATION:-5}
SWEEP=${BENCH_SWEEP:-0:1 2:1 5:1 0:10 2:10}
SWEEP_RATE=${BENCH_SWEEP_RATE:-2000}
SWEEP_DURATION=${BENCH_SWEEP_DURATION:-3}
PRICE=${BENCH_PRICE:-0.15}
RPUSH_N=${BENCH_RPUSH_N:-1000000}
BUILD_N=${BENCH_BUILD_N:-50000}
ARCHIVE_SIZES=${BENCH_ARCHIVE_SIZES:-100 1000 10000}
ARCHIVE_SAMPLES=${BENCH_ARCHIVE_SAMPLES:-3}
CLIENT_RATES=${BENCH_CLIENT_RATES:-500 1000 1500 2000 2500 3000 4000 5000 6000}
CLIENTS=${BENCH_CLIENTS-node python}
CLIENT_REPEAT=${BENCH_CLIENT_REPEAT:-3}
CLIENT_WARMUP=${BENCH_CLIENT_WARMUP:-3}
FLEET_WARMUP=${BENCH_FLEET_WARMUP:-20}
FLEET_WARMUP_RATE=${BENCH_FLEET_WARMUP_RATE:-1000}
CLIENT_PY=${BENCH_CLIENT_PY:-$here/build/py-client/bin/python}
[ -n "${BENCH_LINGER_MS:-}" ] && export CHATMEM_KAFKA_PROP_LINGER_MS=$BENCH_LINGER_MS
export CHATMEM_KAFKA_PROP_FETCH_WAIT_MAX_MS=${BENCH_FETCH_WAIT_MS:-1}

rm -rf "$OUT"
mkdir -p "$OUT/logs" "$OUT/redis"
RES=$OUT/results.jsonl
: >"$RES"
PIDS=""
RPORT=""
KDIR=""

say() { echo "bench: $*" >&2; }

cleanup() {
	for p in $PIDS; do
		kill -TERM "$p" 2>/dev/null || true
	done
	for p in $PIDS; do
		i=0
		while kill -0 "$p" 2>/dev/null && [ $i -lt 50 ]; do
			sleep 0.1
			i=$((i + 1))
		done
		kill -KILL "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	[ -n "$RPORT" ] && redis-cli -p "$RPORT" shutdown nosave >/dev/null 2>&1 || true
	[ -n "$KDIR" ] && "$here/ops/kafka.sh" stop -d "$KDIR" >/dev/null 2>&1 || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
	$PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_for() { # seconds command...
	n=$(($1 * 10))
	shift
	until "$@" >/dev/null 2>&1; do
		n=$((n - 1))
		[ $n -le 0 ] && return 1
		sleep 0.1
	done
}

start() { # logname command...
	log=$1
	shift
	"$@" >>"$OUT/logs/$log.log" 2>&1 &
	LAST=$!
	PIDS="$PIDS $LAST"
}

stop() { # pid...
	for p in "$@"; do
		kill -TERM "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
		PIDS=$(echo "$PIDS" | tr ' ' '\n' | grep -vx "$p" | tr '\n' ' ')
	done
}

rcli() { redis-cli -p "$RPORT" "$@"; }

# result JSON_LINE: keeps a result line (stdout of chatmem-bench or ours).
bench() { # mode args...: its JSON lines on stdout, progress indented
	"$BIN/chatmem-bench" "$@" 2> >(sed -u 's/^/  /' >&2)
}

used_memory() { rcli info memory | sed -n 's/^used_memory:\([0-9]*\).*/\1/p'; }

# CPU seconds (user + system) used so far by the given pids, summed.
cpu_s() {
	t=0
	for p in "$@"; do
		v=$(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)
		t=$((t + v))
	done
	awk -v t="$t" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.3f", t / hz }'
}

# Microseconds Redis spent executing commands so far (INFO commandstats).
redis_cmd_us() {
	rcli info commandstats | sed -n 's/.*,usec=\([0-9]*\),.*/\1/p' |
		awk '{ t += $1 } END { printf "%d", t }'
}

# ingest_run TAG WORKERS PIDS...: one timed ingest run, with where the CPU
# went (redis, the ingest workers, the devbroker, the load generator).
ingest_run() {
	tag=$1 workers=$2
	shift 2
	r0=$(cpu_s "$RPID") w0=$(cpu_s "$@") b0=$(cpu_s "$BPID") u0=$(redis_cmd_us)
	line=$(bench ingest --tag "$tag" --events "$EVENTS" --sessions "$SESSIONS" \
		--window "$WINDOW" --timeout 600)
	r1=$(cpu_s "$RPID") w1=$(cpu_s "$@") b1=$(cpu_s "$BPID") u1=$(redis_cmd_us)
	echo "$line" | $PY -c '
import json, sys
d = json.loads(sys.stdin.read())
w, r0, r1, w0, w1, b0, b1, u0, u1 = sys.argv[1:]
d.update(mode="ingest", workers=int(w), redis_cpu_s=round(float(r1) - float(r0), 3),
         ingest_cpu_s=round(float(w1) - float(w0), 3), broker_cpu_s=round(float(b1) - float(b0), 3),
         redis_cmd_us_per_event=round((int(u1) - int(u0)) / d["events"], 2))
print(json.dumps(d))' "$workers" "$r0" "$r1" "$w0" "$w1" "$b0" "$b1" "$u0" "$u1" >>"$RES.tmp"
}

# The report: report.txt, bench.json and latency.png from the results.
report() {
	$PY "$here/ops/bench_report.py" "$RES" "$OUT" "$(nproc)"
	if command -v gnuplot >/dev/null 2>&1 && [ -s "$OUT/latency.dat" ]; then
		gnuplot <<GP 2>>"$OUT/logs/gnuplot.log" || say "gnuplot failed (see $OUT/logs/gnuplot.log)"
set terminal png size 800,500
set output "$OUT/latency.png"
set title "chatmem-context: latency vs offered rate ($(nproc) cores)"
set xlabel "offered rate (req/s)"
set ylabel "latency (ms)"
set logscale y
set key top left
set grid
plot "$OUT/latency.dat" using 1:2 with linespoints title "p50", \
     "" using 1:3 with linespoints title "p99", \
     "" using 1:4 with linespoints title "p99.9"
GP
	fi
	cat "$OUT/report.txt"
	say "wrote $OUT/report.txt, $OUT/bench.json${OUT:+, $OUT/latency.png}"
}

# --- fleet -----------------------------------------------------------
RPORT=$(free_port)
redis-server --port "$RPORT" --bind 127.0.0.1 --dir "$OUT/redis" \
	--save '' --appendonly no --daemonize yes \
	--pidfile "$OUT/redis.pid" --logfile "$OUT/logs/redis.log"
wait_for 10 redis-cli -p "$RPORT" ping || {
	say "redis did not start"
	exit 1
}
export CHATMEM_REDIS_URL=redis://127.0.0.1:$RPORT
RPID=$(cat "$OUT/redis.pid")
if [ "${CHATMEM_KAFKA:-}" = apache ]; then
	# Apache Kafka (make bench KAFKA=apache): a KRaft broker on a log
	# directory under OUT, topics auto-created with PARTS partitions.
	BROKER="apache kafka"
	KDIR=$OUT/kafka
	# Steady state matters here, not start-up: the full JIT, a bigger heap,
	# all of it from the start, with a fixed young generation. A heap that
	# grows from kafka.sh's 64 MB lets the parallel collector resize it
	# with full collections (one of 145 ms in the first 90 s of a fleet,
	# by -Xlog:gc), and such a pause decides the p99 of the run it falls
	# in; with the heap fixed, the pauses after start-up were young
	# collections of 4-6 ms.
	kheap=${CHATMEM_KAFKA_HEAP:-1g}
	CHATMEM_KAFKA_BROKERS=$(CHATMEM_KAFKA_JVM_OPTS=${CHATMEM_KAFKA_JVM_OPTS:--XX:+UseParallelGC -Xms$kheap -Xmn256m} \
		CHATMEM_KAFKA_HEAP=$kheap \
		"$here/ops/kafka.sh" start -d "$KDIR" -p "$PARTS") || {
		say "apache kafka did not start (see $KDIR/kafka.log)"
		exit 1
	}
	BPID=$(cat "$KDIR/kafka.pid")
	# The topics now, with their partitions, before any client asks.
	"$here/ops/kafka.sh" topics -b "$CHATMEM_KAFKA_BROKERS" -p "$PARTS" \
		chat.events chat.compaction chat.dlq context.requests \
		context.replies context.prebuilt,cleanup.policy=compact >/dev/null
	# A real broker answers a fetch as soon as data arrives: the workers'
	# own default applies, not the devbroker's work-around below.
	export CHATMEM_KAFKA_PROP_FETCH_WAIT_MAX_MS=${BENCH_FETCH_WAIT_MS:-10}
else
	BROKER=devbroker
	start devbroker "$BIN/chatmem-devbroker" -p "$PARTS" -f "$OUT/bootstrap"
	BPID=$LAST
	wait_for 10 test -s "$OUT/bootstrap" || {
		say "devbroker did not start"
		exit 1
	}
	CHATMEM_KAFKA_BROKERS=$(cat "$OUT/bootstrap")
fi
export CHATMEM_KAFKA_BROKERS
export CHATMEM_LOG_LEVEL=${CHATMEM_LOG_LEVEL:-warn}
say "fleet: redis :$RPORT, $BROKER $CHATMEM_KAFKA_BROKERS ($PARTS partitions)"
echo "{\"mode\":\"fleet\",\"broker\":\"$BROKER\",\"partitions\":$PARTS}" >>"$RES.tmp"
say "machine: $(nproc) cores, $(uname -m), $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)"

ONLY=${BENCH_ONLY:-}
case $ONLY in "" | archive | clients) ;; *)
	say "BENCH_ONLY: '$ONLY' is not archive or clients"
	exit 2
	;;
esac

# --- 0. the archive: bytes per archived message --------------------------
# The codec in-process, then archives of ARCHIVE_SIZES messages written to
# Redis by the real fold path (tools/bench/archive.c), MEMORY USAGE each.
if [ "$ONLY" != clients ]; then
	say "[0/7] archive: codec, and Redis memory at $ARCHIVE_SIZES archived messages per session"
	bench archive --sizes "$(echo $ARCHIVE_SIZES | tr ' ' ,)" \
		--samples "$ARCHIVE_SAMPLES" --tag ar >>"$RES.tmp"
	if [ "$ONLY" = archive ]; then
		cat "$RES.tmp" >>"$RES"
		rm -f "$RES.tmp"
		report
		exit 0
	fi
	# Its sessions go, so that the later memory figures are the ingest's alone.
	rcli --scan --pattern 'chatmem:{ar*' | xargs -r -n 500 redis-cli -p "$RPORT" del >/dev/null
fi

# --- 1. ingest, 1 worker, then memory at SESSIONS sessions -------------
if [ "$ONLY" = clients ]; then
	# The client comparison alone: one ingest worker for the prefill.
	start ingest1 "$BIN/chatmem-ingest"
	W1=$LAST W2=""
else
	say "[1/7] ingest with 1 worker: $EVENTS events over $SESSIONS sessions"
	mem0=$(used_memory)
	start ingest1 "$BIN/chatmem-ingest"
	W1=$LAST
	ingest_run i1 1 "$W1"
	mem1=$(used_memory)
	sample=""
	for i in 0 1 2 3 4 5 6 7 8 9; do
		s=0
		for k in "chatmem:{i1u$i:default}:msgs" "chatmem:{i1u$i:default}:meta" \
			"chatmem:{i1u$i:default}:eids" "chatmem:{i1u$i}:profile" \
			"chatmem:{i1u$i}:convs"; do
			v=$(rcli memory usage "$k" samples 0)
			s=$((s + ${v:-0}))
		done
		sample="$sample $s"
	done
	echo "{\"mode\":\"memory\",\"sessions\":$SESSIONS,\"messages_per_session\":$((EVENTS / SESSIONS)),\"used_memory_delta\":$((mem1 - mem0)),\"bytes_per_session_info\":$(((mem1 - mem0) / SESSIONS)),\"memory_usage_sample\":[$(echo $sample | tr ' ' ',')]}" >>"$RES.tmp"

	# --- 2. references: kcat and redis-benchmark --------------------------
	say "[2/7] reference: kcat consuming chat.events to /dev/null"
	t0=$($PY -c 'import time; print(time.time())')
	n=$(kcat -b "$CHATMEM_KAFKA_BROKERS" -C -t chat.events -o beginning -e -q \
		-f '\n' 2>>"$OUT/logs/kcat.log" | wc -l)
	t1=$($PY -c 'import time; print(time.time())')
	$PY -c 'import json,sys; n,t0,t1=int(sys.argv[1]),float(sys.argv[2]),float(sys.argv[3]); print(json.dumps({"mode":"ref_kcat","messages":n,"seconds":round(t1-t0,3),"msgs_per_s":round(n/(t1-t0))}))' "$n" "$t0" "$t1" | tee -a "$RES.tmp" | sed -u 's/^/  /' >&2
	say "[3/7] reference: redis-benchmark -P 32 -t rpush -n $RPUSH_N"
	rps=$(redis-benchmark -p "$RPORT" -P 32 -t rpush -n "$RPUSH_N" -q --csv 2>/dev/null |
		sed -n 's/^"RPUSH","\([0-9.]*\)".*/\1/p')
	echo "{\"mode\":\"ref_redis\",\"command\":\"rpush -P 32\",\"ops_per_s\":${rps:-0}}" >>"$RES.tmp"
	say "  redis-benchmark rpush: $rps ops/s"
	rcli del mylist >/dev/null

	# --- 3. ingest, 2 workers ---------------------------------------------
	say "[4/7] ingest with 2 workers: $EVENTS events over $SESSIONS sessions"
	start ingest2 "$BIN/chatmem-ingest"
	W2=$LAST
	sleep 2 # the group rebalances over both
	ingest_run i2 2 "$W1" "$W2"
fi

# --- 4. context, open loop ----------------------------------------------
say "[5/7] context: prefill $CTX_SESSIONS sessions of 20-50 messages, wait for summaries"
start summarizer "$BIN/chatmem-summarizer"
bench ingest --tag c --events 0 --sessions "$CTX_SESSIONS" --msgs-min 20 \
	--msgs-max 50 --wait-summary "$CTX_SESSIONS" --window "$WINDOW" \
	--timeout 600 | sed 's/"mode":"ingest"/"mode":"prefill"/' >>"$RES.tmp"
csample=""
for i in 0 1 2 3 4 5 6 7 8 9; do
	s=0
	for k in "chatmem:{cu$i:default}:msgs" "chatmem:{cu$i:default}:meta" \
		"chatmem:{cu$i:default}:eids" "chatmem:{cu$i:default}:summary" \
		"chatmem:{cu$i}:profile" "chatmem:{cu$i}:convs"; do
		v=$(rcli memory usage "$k" samples 0)
		s=$((s + ${v:-0}))
	done
	csample="$csample $s"
done
echo "{\"mode\":\"memory_summarized\",\"memory_usage_sample\":[$(echo $csample | tr ' ' ',')]}" >>"$RES.tmp"
stop "$W1" $W2
# --- 4b. latency settings, measured -------------------------------------
# The same open-loop run at one rate with each linger.ms:fetch.wait.max.ms
# pair, applied to every producer and consumer (the context worker's and
# the load generator's): the figures behind chatmem's defaults.
[ "$ONLY" = clients ] && SWEEP=""
for pair in $SWEEP; do
	l=${pair%%:*} f=${pair##*:}
	say "  linger.ms=$l fetch.wait.max.ms=$f at $SWEEP_RATE req/s for $SWEEP_DURATION s"
	CHATMEM_KAFKA_PROP_LINGER_MS=$l CHATMEM_KAFKA_PROP_FETCH_WAIT_MAX_MS=$f \
		start "context-$l-$f" "$BIN/chatmem-context"
	sleep 2
	CHATMEM_KAFKA_PROP_LINGER_MS=$l CHATMEM_KAFKA_PROP_FETCH_WAIT_MAX_MS=$f \
		"$BIN/chatmem-bench" context --tag c --sessions "$CTX_SESSIONS" \
		--rate 200 --duration 1 --req-prefix "w$l-$f-" --timeout 30 \
		>/dev/null 2>&1 || true
	line=$(CHATMEM_KAFKA_PROP_LINGER_MS=$l CHATMEM_KAFKA_PROP_FETCH_WAIT_MAX_MS=$f \
		"$BIN/chatmem-bench" context --tag c --sessions "$CTX_SESSIONS" \
		--rate "$SWEEP_RATE" --duration "$SWEEP_DURATION" --req-prefix "s$l-$f-" \
		--timeout 30 2> >(sed -u 's/^/    /' >&2))
	echo "$line" | sed "s/\"mode\":\"context\"/\"mode\":\"context_setting\",\"linger_ms\":$l,\"fetch_wait_max_ms\":$f/" >>"$RES.tmp"
	stop "$LAST"
done

start context "$BIN/chatmem-context"
CTXPID=$LAST
sleep 2
# Warm-up, not recorded: the group assignment, the first fetches, and
# then load on the request/reply path. A broker just started (Apache
# Kafka's JVM compiles its hot paths under load) and a recall cache
# that holds no session yet made the first runs after the prefill the
# slowest of the whole comparison, for every load generator alike (p99
# at 500 req/s: 6-175 ms in the first of three rounds, 3.4-18 ms in the
# third): those runs measured the warm-up, not the load.
say "  warm-up: $FLEET_WARMUP_RATE req/s for $FLEET_WARMUP s (not recorded)"
"$BIN/chatmem-bench" context --tag c --sessions "$CTX_SESSIONS" \
	--rate "$FLEET_WARMUP_RATE" --duration "$FLEET_WARMUP" --req-prefix w- \
	--query --timeout 30 >/dev/null 2>&1 || true
# Every request of the sweep has a query: recall over the session's
# archive and earlier messages is part of what is measured.
[ "$ONLY" = clients ] && RATES=""
for r in $RATES; do
	say "  rate $r req/s for $DURATION s"
	c0=$(cpu_s "$CTXPID") r0=$(cpu_s "$RPID") b0=$(cpu_s "$BPID")
	line=$("$BIN/chatmem-bench" context --tag c --sessions "$CTX_SESSIONS" \
		--rate "$r" --duration "$DURATION" --req-prefix "q$r-" --query \
		--timeout 30 2> >(sed -u 's/^/    /' >&2))
	c1=$(cpu_s "$CTXPID") r1=$(cpu_s "$RPID") b1=$(cpu_s "$BPID")
	line=$(echo "$line" | $PY -c '
import json, sys
d = json.loads(sys.stdin.read())
c0, c1, r0, r1, b0, b1 = map(float, sys.argv[1:])
d.update(context_cpu_s=round(c1 - c0, 3), redis_cpu_s=round(r1 - r0, 3), broker_cpu_s=round(b1 - b0, 3))
print(json.dumps(d))' "$c0" "$c1" "$r0" "$r1" "$b0" "$b1")
	echo "$line" >>"$RES.tmp"
	# Saturated: replies missing, or fewer than 90% of the rate answered.
	if ! echo "$line" | $PY -c 'import json,sys; d=json.loads(sys.stdin.read()); sys.exit(0 if d["missing"] <= d["sent"]//100 and d["achieved_rps"] >= 0.9*d["rate"] else 1)'; then
		say "  saturated at $r req/s; stopping the sweep"
		break
	fi
done

# --- 4c. the clients, beside the C load generator ------------------------
# The same open-loop run (same sessions, a query on every request, same
# method and output: clients/node/bench/context-bench.mjs,
# clients/python/bench/context_bench.py) through the Node.js and Python
# clients and through chatmem-bench, against the same worker. At each rate
# the three run one after another, CLIENT_REPEAT times over (c node python
# c node python ...), so that the machine's noise hits them alike; every
# run's line is kept ("rep": its number) for the report's medians. A client
# saturates at a rate once most of its runs there were not sustained (the
# rest of them would not change that), and is not run at higher rates; a
# run that gives no result stops its client at once. Each run first sends
# at its rate for CLIENT_WARMUP s, not recorded: every run is a new
# process, and V8 (and, less, CPython) compiles its hot path in the first
# seconds, which a long-running application has behind it (the Node.js
# client's CPU per round trip at 1,000 req/s was 398-434 us after 1 s of
# warm-up, 328-364 after 3 s and 351-353 after 5: 3 s reach the steady
# state).
if [ -n "$CLIENTS" ]; then
	say "[5b/7] clients at $CLIENT_RATES req/s ($CLIENT_REPEAT rounds): c $CLIENTS"
	saturated=""
	for r in $CLIENT_RATES; do
		missed="" # a word per run at this rate that was not sustained
		k=1
		while [ "$k" -le "$CLIENT_REPEAT" ]; do
			for c in c $CLIENTS; do
				case " $saturated " in *" $c "*) continue ;; esac
				say "  $c at $r req/s for $DURATION s (run $k of $CLIENT_REPEAT)"
				case $c in
				c) line=$("$BIN/chatmem-bench" context --tag c --sessions "$CTX_SESSIONS" \
					--rate "$r" --duration "$DURATION" --req-prefix "k$r-$k-" --query \
					--warmup "$CLIENT_WARMUP" --timeout 30 2> >(sed -u 's/^/    /' >&2)) || line="" ;;
				node) line=$(node "$here/clients/node/bench/context-bench.mjs" --tag c \
					--req-prefix "k$r-$k-" --sessions "$CTX_SESSIONS" --rate "$r" \
					--duration "$DURATION" --warmup "$CLIENT_WARMUP" --query \
					2> >(sed -u 's/^/    /' >&2)) || line="" ;;
				python) line=$("$CLIENT_PY" "$here/clients/python/bench/context_bench.py" \
					--tag c --sessions "$CTX_SESSIONS" --rate "$r" --duration "$DURATION" \
					--warmup "$CLIENT_WARMUP" --query 2> >(sed -u 's/^/    /' >&2)) || line="" ;;
				esac
				line=$(echo "$line" | tail -1)
				if [ -z "$line" ]; then
					say "  $c failed at $r req/s"
					saturated="$saturated $c"
					continue
				fi
				echo "$line" | $PY -c '
import json, sys
d = json.loads(sys.stdin.read())
d.update(mode="context_client", client=sys.argv[1], rep=int(sys.argv[2]))
print(json.dumps(d))' "$c" "$k" >>"$RES.tmp"
				if ! echo "$line" | $PY -c 'import json,sys; d=json.loads(sys.stdin.read()); sys.exit(0 if d["missing"] <= d["sent"]//100 and d["achieved_rps"] >= 0.9*d["rate"] else 1)'; then
					missed="$missed $c"
				fi
				n=$(printf '%s\n' $missed | grep -cx "$c" || true)
				if [ $((2 * n)) -ge "$CLIENT_REPEAT" ]; then
					say "  $c saturated at $r req/s ($n of $CLIENT_REPEAT runs not sustained)"
					saturated="$saturated $c"
				fi
			done
			k=$((k + 1))
		done
	done
fi

# --- 5. build cost, cost model ------------------------------------------
if [ "$ONLY" != clients ]; then
	say "[6/7] context build in-process, cost model"
	"$BIN/chatmem-bench" build --iterations "$BUILD_N" 2>/dev/null >>"$RES.tmp"
	"$BIN/chatmem-bench" cost --price "$PRICE" 2>/dev/null >>"$RES.tmp"
fi
cat "$RES.tmp" >>"$RES"
rm -f "$RES.tmp"

# --- 6. report ---------------------------------------------------------
say "[7/7] report"
report
