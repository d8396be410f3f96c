#!/bin/sh
# A local chatmem fleet for development: redis-server on a free port with a
# throwaway directory, a broker, and one worker of each kind.
#
# The broker is the devbroker, or with CHATMEM_KAFKA=apache (make up
# KAFKA=apache) Apache Kafka (ops/kafka.sh, data in run/kafka/), on which
# chatmem's six topics are created first (context.prebuilt compacted).
#
#   ops/fleet.sh up     start it and keep it running (make up)
#   ops/fleet.sh down   stop it (make down)
#   ops/fleet.sh demo   start a fresh one, play the seed conversation, print
#                       the context that comes back, stop (make demo)
#
# State lives in $CHATMEM_RUN_DIR (default ./run): run/env holds
# CHATMEM_KAFKA_BROKERS=… and CHATMEM_REDIS_URL=… as shell variables, logs
# are in run/logs/, pids in run/pids/.
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
BIN=${CHATMEM_BIN:-$here/bin}
RUN=${CHATMEM_RUN_DIR:-$here/run}

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

running() {
	[ -f "$RUN/pids/$1" ] && kill -0 "$(cat "$RUN/pids/$1")" 2>/dev/null
}

start_bg() { # name command...
	name=$1
	shift
	"$@" >>"$RUN/logs/$name.log" 2>&1 &
	echo $! >"$RUN/pids/$name"
}

wait_file() { # file seconds
	i=0
	while [ ! -s "$1" ]; do
		i=$((i + 1))
		if [ "$i" -gt $(($2 * 10)) ]; then
			echo "fleet: timed out waiting for $1" >&2
			return 1
		fi
		sleep 0.1
	done
}

up() {
	if running devbroker || running kafka; then
		echo "fleet: already running (see $RUN/env); 'make down' first" >&2
		exit 1
	fi
	case ${CHATMEM_KAFKA:-dev} in
	dev | apache) ;;
	*)
		echo "fleet: CHATMEM_KAFKA (KAFKA=) is dev or apache, not '$CHATMEM_KAFKA'" >&2
		exit 2
		;;
	esac
	rm -rf "$RUN"
	mkdir -p "$RUN/logs" "$RUN/pids" "$RUN/redis"
	rport=$(free_port)
	redis-server --port "$rport" --bind 127.0.0.1 --dir "$RUN/redis" \
		--save '' --appendonly no --daemonize yes \
		--pidfile "$RUN/pids/redis-server" \
		--logfile "$RUN/logs/redis-server.log"
	if [ "${CHATMEM_KAFKA:-dev}" = apache ]; then
		kind="apache kafka $(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$here/ops/kafka/pom.xml"), data in $RUN/kafka"
		"$here/ops/kafka.sh" start -d "$RUN/kafka" -p 8 -f "$RUN/bootstrap" \
			>"$RUN/logs/kafka-start.log" 2>&1 || {
			cat "$RUN/logs/kafka-start.log" >&2
			down
			exit 1
		}
		cp "$RUN/kafka/kafka.pid" "$RUN/pids/kafka"
		"$here/ops/kafka.sh" topics -b "$(cat "$RUN/bootstrap")" -p 8 \
			chat.events chat.compaction chat.dlq context.requests \
			context.replies context.prebuilt,cleanup.policy=compact || {
			down
			exit 1
		}
	else
		kind="devbroker: in memory, for development only"
		start_bg devbroker "$BIN/chatmem-devbroker" -f "$RUN/bootstrap"
		wait_file "$RUN/bootstrap" 10
	fi
	brokers=$(cat "$RUN/bootstrap")
	cat >"$RUN/env" <<ENV
CHATMEM_KAFKA_BROKERS=$brokers
CHATMEM_REDIS_URL=redis://127.0.0.1:$rport
ENV
	# Workers read their settings from the environment written above.
	set -a
	. "$RUN/env"
	set +a
	for w in "$BIN"/chatmem-*; do
		name=$(basename "$w")
		case $name in chatmem-devbroker | chatmem-bench) continue ;; esac
		start_bg "$name" "$w"
	done
	sleep 0.5
	for f in "$RUN"/pids/chatmem-*; do
		if ! kill -0 "$(cat "$f")" 2>/dev/null; then
			echo "fleet: $(basename "$f") did not start:" >&2
			tail -5 "$RUN/logs/$(basename "$f").log" >&2
			down
			exit 1
		fi
	done
	echo "chatmem fleet is up"
	echo "  kafka bootstrap: $brokers   ($kind)"
	echo "  redis:           redis://127.0.0.1:$rport"
	echo "  environment:     $RUN/env  (use: set -a; . $RUN/env; set +a)"
	echo "  logs:            $RUN/logs/"
}

down() {
	[ -d "$RUN/pids" ] || return 0
	# Workers first (they finish their batch and commit), then the broker,
	# then Redis.
	for f in "$RUN"/pids/chatmem-*; do
		[ -f "$f" ] || continue
		[ "$(basename "$f")" = chatmem-devbroker ] && continue
		kill -TERM "$(cat "$f")" 2>/dev/null || true
	done
	for f in "$RUN"/pids/chatmem-* "$RUN/pids/devbroker"; do
		[ -f "$f" ] || continue
		pid=$(cat "$f")
		[ "$f" = "$RUN/pids/devbroker" ] && kill -TERM "$pid" 2>/dev/null
		i=0
		while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do
			sleep 0.1
			i=$((i + 1))
		done
		kill -KILL "$pid" 2>/dev/null || true
		rm -f "$f"
	done
	# Apache Kafka stops by itself in a few seconds (ops/kafka.sh stop).
	if [ -f "$RUN/pids/kafka" ]; then
		"$here/ops/kafka.sh" stop -d "$RUN/kafka"
		rm -f "$RUN/pids/kafka"
	fi
	if [ -f "$RUN/pids/redis-server" ]; then
		kill -TERM "$(cat "$RUN/pids/redis-server")" 2>/dev/null || true
		rm -f "$RUN/pids/redis-server"
	fi
	echo "chatmem fleet is down"
}

demo() {
	RUN=$(mktemp -d /tmp/chatmem-demo.XXXXXX)
	trap 'down >/dev/null 2>&1; rm -rf "$RUN"' EXIT INT TERM
	up
	set -a
	. "$RUN/env"
	set +a
	echo
	echo "== playing the seed conversation (11 messages) into chat.events"
	sed 's/.*"role":"\([a-z]*\)","content":"\(.*\)"}$/  \1: \2/' \
		"$here/ops/seed-conversation.jsonl"
	"$BIN/chatmem" send <"$here/ops/seed-conversation.jsonl"
	# Wait until ingest has stored all 11 and the summarizer has folded
	# the old ones (it is asked to once more than 3 + 5 are unsummarized).
	meta='chatmem:{sumit:default}:meta'
	i=0
	until [ "$(redis-cli -u "$CHATMEM_REDIS_URL" hget "$meta" total)" = 11 ] &&
		[ -z "$(redis-cli -u "$CHATMEM_REDIS_URL" hget "$meta" cjob)" ]; do
		i=$((i + 1))
		if [ $i -gt 300 ]; then
			echo "demo: the conversation did not reach redis" >&2
			tail -20 "$RUN/logs/chatmem-ingest.log" >&2
			exit 1
		fi
		sleep 0.1
	done
	echo
	echo "== chatmem session show sumit   (what redis holds)"
	"$BIN/chatmem" session show sumit
	echo
	echo "== chatmem context sumit --query 'Do you remember my name?'"
	"$BIN/chatmem" context sumit --query "Do you remember my name?"
	echo
	down
}

case "${1:-}" in
up) up ;;
down) down ;;
demo) demo ;;
*)
	echo "usage: $0 up|down|demo" >&2
	exit 2
	;;
esac
