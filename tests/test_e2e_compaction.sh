#!/bin/bash
# context.prebuilt on Apache Kafka is log-compacted: a session.delete
# writes a tombstone (null value) for the session to it (DESIGN.md), and
# once the log cleaner has run, no context of the deleted session is left
# there, while the latest context of another session is.
# brokers: apache
. "$(dirname "$0")/lib.sh"

# Small segments and an eager cleaner, so that compaction happens within
# the test; tombstones themselves are kept for 60 s after it.
T_PREBUILT_CONFIG=segment.ms=200,min.cleanable.dirty.ratio=0.01,delete.retention.ms=60000,min.compaction.lag.ms=0
t_start_redis
t_start_broker 1
export CHATMEM_CONTEXT_PREBUILT_INTERVAL_MS=100
t_start_worker ingest ingest
t_start_worker context context
t_ingest_ready

# prebuilt KEY: prints "<value length>" of each message keyed KEY on
# context.prebuilt, oldest first (-1 for a tombstone).
prebuilt() {
	kcat -b "$CHATMEM_KAFKA_BROKERS" -C -t "$T_PREBUILT" -e -q -f '%k\t%S\n' 2>/dev/null |
		awk -F '\t' -v k="$1" '$1 == k { print $2 }'
}
# newest_has KEY TEXT: the newest message keyed KEY holds TEXT.
newest_has() {
	kcat -b "$CHATMEM_KAFKA_BROKERS" -C -t "$T_PREBUILT" -e -q -f '%k\t%s\n' 2>/dev/null |
		awk -F '\t' -v k="$1" '$1 == k { v = $0 } END { print v }' | grep -qF "$2"
}

# Three bursts to each session, each published as a context of its own
# (the cleaner may already compact the older ones away).
for burst in 1 2 3; do
	for s in keep gone; do
		"$BIN/chatmem" send --user "$s" --conv c --content "burst $burst to $s: I work on compilers." \
			2>>"$T_DIR/logs/send.log" || t_fail "send failed"
	done
	t_wait 30 newest_has keep:c "burst $burst to keep" || t_fail "no prebuilt context of burst $burst for keep:c"
	t_wait 30 newest_has gone:c "burst $burst to gone" || t_fail "no prebuilt context of burst $burst for gone:c"
done

"$BIN/chatmem" send --type session.delete --user gone --conv c 2>>"$T_DIR/logs/send.log" ||
	t_fail "send session.delete failed"
t_wait 30 sh -c "[ -z \"\$(redis-cli -p $T_REDIS_PORT --scan --pattern '*{gone:c}*')\" ]" ||
	t_fail "the session was not deleted from redis"
# The delete is applied (its keys are gone); a marker behind it on the one
# partition of the events proves ingest is past it.
t_ingest_marker
has_tombstone() { prebuilt gone:c | tail -1 | grep -qx -- -1; }
newest_of() {
	kcat -b "$CHATMEM_KAFKA_BROKERS" -C -t "$T_PREBUILT" -e -q -f '%k\t%s\n' 2>/dev/null |
		awk -F '\t' -v k="$1" '$1 == k { v = $2 } END { print v }'
}
t_wait 20 has_tombstone ||
	t_fail "no tombstone for gone:c on $T_PREBUILT after session.delete; the lengths of its messages: $(prebuilt gone:c | tr '\n' ' '), the newest: $(newest_of gone:c)"

# Roll the segment holding the tombstone (segment.ms) with one more
# context of keep:c, then wait for the cleaner, which leaves the active
# segment alone: of keep:c the contexts of bursts 1 and 2 are gone (the
# newest of the cleaned segments and the one in the active segment may
# remain), of gone:c everything but the tombstone.
sleep 0.3
"$BIN/chatmem" send --user keep --conv c --content "burst 4 to keep" 2>>"$T_DIR/logs/send.log" ||
	t_fail "send failed"
t_wait 30 newest_has keep:c "burst 4 to keep" || t_fail "no prebuilt context of burst 4 for keep:c"
compacted() {
	[ "$(prebuilt keep:c | grep -cv '^-1$')" -le 2 ] &&
		[ "$(prebuilt gone:c | grep -cv '^-1$')" = 0 ]
}
t_wait 60 compacted ||
	t_fail "not compacted: keep:c $(prebuilt keep:c | tr '\n' ' '), gone:c $(prebuilt gone:c | tr '\n' ' ')"
newest_has keep:c "burst 4 to keep" ||
	t_fail "the newest context of keep:c is not what compaction kept"
# user.delete: a tombstone for every conversation of the user.
for c in a b; do
	"$BIN/chatmem" send --user leaver --conv "$c" --content "Hi, I'm leaving soon." \
		2>>"$T_DIR/logs/send.log" || t_fail "send failed"
	t_wait 30 newest_has "leaver:$c" "leaving soon" || t_fail "no prebuilt context for leaver:$c"
done
"$BIN/chatmem" send --type user.delete --user leaver 2>>"$T_DIR/logs/send.log" ||
	t_fail "send user.delete failed"
tombstoned() { prebuilt "$1" | tail -1 | grep -qx -- -1; }
for c in a b; do
	t_wait 30 tombstoned "leaver:$c" ||
		t_fail "no tombstone for leaver:$c after user.delete: $(prebuilt "leaver:$c" | tr '\n' ' ')"
done
t_pass "context.prebuilt is compacted: after session.delete only a tombstone of the session is left; the other session keeps its newest context; user.delete tombstones every conversation"
