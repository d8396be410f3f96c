#!/usr/bin/python3
"""Offline checks of the deployment files in ops/: the Kubernetes manifests
(ops/k8s/chatmem.yaml), the compose file (ops/compose.yaml) and the Grafana
dashboard (ops/grafana/chatmem.json) parse and have what they need; the
dashboard's queries name only metrics the workers export (given as a file
of /metrics scrapes). Prints what is wrong and exits 1, or exits 0.

usage: check_deploy.py SRC METRICS_TEXT CONF_OUT"""
import json
import re
import sys

import yaml

src, metrics_path, conf_out = sys.argv[1], sys.argv[2], sys.argv[3]
errors = []


def need(cond, what):
    if not cond:
        errors.append(what)


WORKERS = {"ingest": "chat.events", "summarizer": "chat.compaction",
           "context": "context.requests"}

# --- Kubernetes ---------------------------------------------------------
docs = [d for d in yaml.safe_load_all(open(src + "/ops/k8s/chatmem.yaml")) if d]
by_kind = {}
for d in docs:
    by_kind.setdefault(d["kind"], []).append(d)
cms = by_kind.get("ConfigMap", [])
need(len(cms) == 1 and "chatmem.conf" in cms[0].get("data", {}),
     "k8s: one ConfigMap with chatmem.conf")
if cms:
    open(conf_out, "w").write(cms[0]["data"]["chatmem.conf"])
secrets = by_kind.get("Secret", [])
need(secrets and "CHATMEM_REDIS_URL" in secrets[0].get("stringData", {}),
     "k8s: a Secret with CHATMEM_REDIS_URL")
need(secrets and "CHATMEM_LLM_API_KEY" in secrets[0].get("stringData", {}),
     "k8s: a Secret with CHATMEM_LLM_API_KEY")
deps = {d["metadata"]["name"]: d for d in by_kind.get("Deployment", [])}
pdbs = {d["spec"]["selector"]["matchLabels"].get("app.kubernetes.io/component")
        for d in by_kind.get("PodDisruptionBudget", [])}
for w in WORKERS:
    d = deps.get("chatmem-" + w)
    need(d is not None, "k8s: no Deployment chatmem-%s" % w)
    if not d:
        continue
    sel = d["spec"]["selector"]["matchLabels"]
    need(sel.items() <= d["spec"]["template"]["metadata"]["labels"].items(),
         "k8s: %s: the selector does not match the pod labels" % w)
    c = d["spec"]["template"]["spec"]["containers"][0]
    need(c["command"][0] == "/usr/local/bin/chatmem-" + w,
         "k8s: %s runs %s" % (w, c["command"][0]))
    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        g = c.get(probe, {}).get("httpGet", {})
        need(g.get("path") == path and g.get("port") in ports,
             "k8s: %s: %s must GET %s on a declared port" % (w, probe, path))
    need(any(e.get("secretRef", {}).get("name") == secrets[0]["metadata"]["name"]
             for e in c.get("envFrom", [])) if secrets else False,
         "k8s: %s does not read the Secret" % w)
    need(d["spec"]["template"]["spec"].get("terminationGracePeriodSeconds", 30) > 10,
         "k8s: %s: the grace period must exceed the 10 s SIGTERM budget" % w)
    need(w in pdbs, "k8s: no PodDisruptionBudget for %s" % w)
for so in by_kind.get("ScaledObject", []):
    target = so["spec"]["scaleTargetRef"]["name"]
    need(target in deps, "k8s: ScaledObject targets unknown %s" % target)
    w = target.replace("chatmem-", "")
    for t in so["spec"]["triggers"]:
        need(t["type"] == "kafka" and t["metadata"]["consumerGroup"] == "chatmem-" + w
             and t["metadata"]["topic"] == WORKERS.get(w),
             "k8s: ScaledObject %s: kafka trigger on group chatmem-%s, topic %s"
             % (target, w, WORKERS.get(w)))
need(len(by_kind.get("ScaledObject", [])) >= 1, "k8s: no KEDA ScaledObject")

# --- compose --------------------------------------------------------------
comp = yaml.safe_load(open(src + "/ops/compose.yaml"))
svc = comp.get("services", {})
for s in ("kafka", "redis") + tuple(WORKERS):
    need(s in svc, "compose: no service %s" % s)
need("appendonly" in " ".join(svc.get("redis", {}).get("command", [])),
     "compose: redis without AOF")
for w in WORKERS:
    s = svc.get(w, {})
    need(s.get("entrypoint", [""])[0] == "/usr/local/bin/chatmem-" + w,
         "compose: %s runs %s" % (w, s.get("entrypoint")))
    env = s.get("environment", {})
    need("CHATMEM_KAFKA_BROKERS" in env and "CHATMEM_REDIS_URL" in env,
         "compose: %s lacks the Kafka or Redis address" % w)

# --- Grafana ----------------------------------------------------------------
exported = set()
for line in open(metrics_path):
    m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)", line)
    if m and not line.startswith("#"):
        exported.add(m.group(1))
dash = json.load(open(src + "/ops/grafana/chatmem.json"))
exprs = [t["expr"] for p in dash.get("panels", []) for t in p.get("targets", [])]
need(len(exprs) >= 5, "grafana: fewer than 5 queries")
for e in exprs:
    names = set(re.findall(r"\b(chatmem_[a-z0-9_]+)", e))
    need(names, "grafana: query names no chatmem metric: %s" % e)
    for n in names:
        need(n in exported, "grafana: %s is not exported (query %s)" % (n, e))

for e in errors:
    print("deploy: " + e)
sys.exit(1 if errors else 0)
