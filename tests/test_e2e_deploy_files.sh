#!/bin/bash
# The deployment files in ops/, checked offline: the systemd units with
# systemd-analyze verify (their ExecStart pointed at this build); the
# Kubernetes manifests and the compose file parsed and checked for what
# they need (probes, secrets, budgets, scaling on lag, AOF); the chatmem.conf
# of the ConfigMap accepted by a worker; and every query of the Grafana
# dashboard naming only metrics the workers export, scraped from a running
# fleet's /metrics.
. "$(dirname "$0")/lib.sh"

# systemd
mkdir -p "$T_DIR/units"
for u in "$T_SRC"/ops/systemd/*.service; do
	sed "s|/usr/local/bin/|$BIN/|" "$u" >"$T_DIR/units/$(basename "$u")"
done
[ "$(ls "$T_DIR/units" | wc -l)" = 3 ] || t_fail "expected 3 systemd units"
out=$(systemd-analyze verify "$T_DIR"/units/*.service 2>&1) || t_fail "systemd-analyze verify failed: $out"
[ -z "$out" ] || t_fail "systemd-analyze verify: $out"
for u in "$T_DIR"/units/*.service; do
	for k in Restart=on-failure DynamicUser=yes ProtectSystem=strict NoNewPrivileges=yes; do
		grep -qx "$k" "$u" || t_fail "$(basename "$u") lacks $k"
	done
done

# A fleet with metrics on, scraped for the dashboard check.
t_start_redis
t_start_broker 2
for w in ingest summarizer context; do
	port=$(t_free_port)
	CHATMEM_METRICS_LISTEN=127.0.0.1:$port t_start_worker "$w" "$w"
	eval "port_$w=$port"
done
# Some work for each, so that each has consumed (its lag is known).
$PY "$T_SRC/tests/gen_events.py" 1 20 d | "$BIN/chatmem" send 2>>"$T_DIR/logs/send.log" || t_fail "send failed"
t_wait 30 sh -c "[ \"\$(redis-cli -p $T_REDIS_PORT hget 'chatmem:{u0-d:c0}:summary' upto)\" != '' ]" ||
	t_fail "no fold happened"
"$BIN/chatmem" context u0-d c0 >/dev/null 2>>"$T_DIR/logs/send.log" || t_fail "no context reply"
: >"$T_DIR/metrics.txt"
for w in ingest summarizer context; do
	eval "port=\$port_$w"
	t_wait 20 curl -fsS -o /dev/null "http://127.0.0.1:$port/healthz" || t_fail "$w serves no /healthz"
	# Lag gauges appear with the first statistics after the assignment.
	lagged() { curl -fsS "http://127.0.0.1:$1/metrics" | grep -q '_consumer_lag_messages{'; }
	t_wait 20 lagged "$port" || t_fail "$w exports no consumer lag"
	curl -fsS "http://127.0.0.1:$port/metrics" >>"$T_DIR/metrics.txt" || t_fail "$w serves no /metrics"
done
$PY "$T_SRC/tests/check_deploy.py" "$T_SRC" "$T_DIR/metrics.txt" "$T_DIR/k8s.conf" ||
	t_fail "the deployment files are wrong"

# The ConfigMap's chatmem.conf is accepted (a bad key stops a worker at
# once with exit 1); the addresses come from this test's environment.
CHATMEM_METRICS_LISTEN=127.0.0.1:$(t_free_port) t_start_worker ingest ingest-k8s -c "$T_DIR/k8s.conf"
k8s_pid=$T_LAST_PID
sleep 2
t_pid_gone "$k8s_pid" && t_fail "the ConfigMap's chatmem.conf was refused: $(tail -3 "$T_DIR/logs/ingest-k8s.log")"
t_stop_pid "$k8s_pid"
t_pass "systemd units verify; k8s manifests, compose file and ConfigMap config are complete; the dashboard's queries name exported metrics"
