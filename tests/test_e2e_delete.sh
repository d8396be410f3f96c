#!/bin/bash
# profile.set overrides extracted fields; session.delete forgets one
# conversation, its archive of folded messages included; user.delete
# forgets every conversation (archives included) and the profile, leaving
# no key of the user (checked with SCAN); both are idempotent.
#
# Each step waits until ingest's counters in Redis cover every event sent
# so far (they are added after a batch's writes are acknowledged), then
# checks what Redis holds, so that a late effect of an event cannot slip
# past a check.
. "$(dirname "$0")/lib.sh"

t_start_redis
t_start_broker 4
t_start_worker ingest ingest
t_start_worker summarizer summarizer

sent=0
send() {
	"$BIN/chatmem" send "$@" 2>>"$T_DIR/logs/send.log" || t_fail "send $* failed"
	sent=$((sent + 1))
}
all_consumed() { t_wait 30 t_stats_reach "$sent" || t_fail "ingest consumed fewer than the $sent events sent: $(t_stats)"; }

for c in c1 c2 c3; do
	send --user gone --conv $c --content "Hi, I'm Grace Hopper, I work as a software engineer"
	send --user gone --conv $c --role assistant --content "Hello Grace!"
done
send --user stays --content "Hi, I'm Alan, a mathematician"
send --user stays --role assistant --content "I'm Claude, an AI assistant made by Anthropic. I work as a helper."
all_consumed
for c in c1 c2 c3; do
	[ "$(t_rcli llen "chatmem:{gone:$c}:msgs")" = 2 ] || t_fail "events did not arrive in gone:$c"
done
[ "$(t_rcli hget 'chatmem:{gone}:profile' name)" = 'Grace Hopper' ] ||
	t_fail "name not extracted: $(t_rcli hgetall 'chatmem:{gone}:profile')"

# profile.set wins over extraction, also over later statements.
send --user gone --type profile.set --profile '{"name":"Rear Admiral Hopper","interests":["COBOL"]}'
send --user gone --conv c1 --content "I'm Grace, by the way"
all_consumed
[ "$(t_rcli llen 'chatmem:{gone:c1}:msgs')" = 3 ] || t_fail "the later message did not arrive"
[ "$(t_rcli hget 'chatmem:{gone}:profile' name)" = "Rear Admiral Hopper" ] ||
	t_fail "profile.set did not override, or a later extraction replaced it: $(t_rcli hgetall 'chatmem:{gone}:profile')"

# Enough messages in every conversation for the summarizer to fold them
# into the conversation's archive.
for s in gone:c1 gone:c2 gone:c3 stays:default; do
	for i in 1 2 3 4 5 6 7 8; do
		send --user "${s%%:*}" --conv "${s#*:}" --content "The build on node $i took $((i * 7)) seconds."
	done
done
all_consumed
archived() { [ "$(t_rcli exists "chatmem:{$1}:archive")" = 1 ]; }
for s in gone:c1 gone:c2 gone:c3 stays:default; do
	t_wait 30 archived "$s" || t_fail "the summarizer did not archive $s: $(t_rcli llen "chatmem:{$s}:msgs") messages in its list"
done
[ "$(t_archive_keys | wc -l)" = 4 ] || t_fail "archive keys: $(t_archive_keys)"

# session.delete, twice.
send --user gone --conv c2 --type session.delete
send --user gone --conv c2 --type session.delete
all_consumed
[ "$(t_rcli exists 'chatmem:{gone:c2}:msgs')" = 0 ] || t_fail "session.delete did not delete"
[ -z "$(t_archive_keys 'gone:c2')" ] || t_fail "session.delete left the archive: $(t_archive_keys 'gone:c2')"
[ "$(t_rcli hget 'chatmem:{gone:c1}:meta' total)" = 11 ] || t_fail "session.delete removed another conversation"
archived gone:c1 || t_fail "session.delete removed another conversation's archive"

# user.delete, twice.
send --user gone --type user.delete
send --user gone --type user.delete
all_consumed
gone_keys() { $PY - "$T_REDIS_PORT" <<'PYEOF'
import sys
sys.path.insert(0, "tests")
from resp import Redis
keys = Redis(int(sys.argv[1])).scan_all("*gone*")
print("\n".join(k.decode() for k in keys))
sys.exit(1 if keys else 0)
PYEOF
}
cd "$T_SRC"
gone_keys >/dev/null || t_fail "keys of the user remain after user.delete: $(gone_keys)"
[ -z "$(t_archive_keys gone)" ] || t_fail "user.delete left archives: $(t_archive_keys gone)"
[ "$(t_rcli hget 'chatmem:{stays:default}:meta' total)" = 10 ] || t_fail "user.delete touched another user"
[ "$(t_archive_keys)" = 'chatmem:{stays:default}:archive' ] || t_fail "user.delete touched another user's archive: $(t_archive_keys)"
[ "$(t_rcli hget 'chatmem:{stays}:profile' name)" = "Alan" ] || t_fail "another user's profile changed (or an assistant's 'I'm Claude' was taken)"
[ "$(t_rcli hget 'chatmem:{stays}:profile' role)" = "mathematician" ] || t_fail "the role of 'stays' is wrong: $(t_rcli hget 'chatmem:{stays}:profile' role)"
t_pass "profile.set overrides; session.delete and user.delete (twice each) leave no key of the user, no archive (SCAN)"
