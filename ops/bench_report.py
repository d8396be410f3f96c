#!/usr/bin/python3
"""Turns the JSON lines of ops/bench.sh into bench.json, report.txt and
latency.dat (for gnuplot). Usage: bench_report.py RESULTS.jsonl OUTDIR CORES,
or bench_report.py --self-test (checks the client comparison's arithmetic)."""
import json
import os
import statistics
import sys


def rate_at_p99(points, q):
    """The highest rate a load generator sustains with p99 <= q, read off
    its own curve: points are its sustained (rate, p99), in any order;
    sorted by rate, the p99 made non-decreasing (a running max), then
    linearly interpolated between the last point within q and the next.
    The last rate when q is beyond the last point; None when q is below
    the first point (it cannot meet q even at its lowest rate)."""
    env = []
    for rate, p99 in sorted(points):
        env.append((rate, max(p99, env[-1][1]) if env else p99))
    if not env or q < env[0][1]:
        return None
    i = max(k for k, (_, p99) in enumerate(env) if p99 <= q)
    if i == len(env) - 1:
        return env[-1][0]
    (r0, q0), (r1, q1) = env[i], env[i + 1]  # q0 <= q < q1
    return r0 + (r1 - r0) * (q - q0) / (q1 - q0)


def same_p99_ratio(rate, c_rate):
    """A client's rate against chatmem-bench's at the same p99 bound, capped
    at 1; a client that cannot meet the bound (rate None) scores 0."""
    return min((rate or 0) / c_rate, 1.0)


def self_test():
    curve = [(1000, 20), (500, 10), (2000, 15), (3000, 40)]  # unsorted, a dip
    # envelope: (500, 10), (1000, 20), (2000, 20), (3000, 40)
    assert rate_at_p99(curve, 5) is None, "below the first point"
    assert rate_at_p99(curve, 10) == 500
    assert rate_at_p99(curve, 15) == 750, "interpolated 500..1000"
    assert rate_at_p99(curve, 17) == 850, "the dip counts at the p99 reached before it"
    assert rate_at_p99(curve, 20) == 2000, "the dip's rate, not 1000"
    assert rate_at_p99(curve, 30) == 2500, "interpolated 2000..3000"
    assert rate_at_p99(curve, 40) == 3000
    assert rate_at_p99(curve, 500) == 3000, "beyond the last point"
    assert rate_at_p99([], 50) is None
    assert rate_at_p99([(700, 30)], 30) == 700 and rate_at_p99([(700, 30)], 29) is None
    assert same_p99_ratio(700, 1000) == 0.7
    assert same_p99_ratio(1500, 1000) == 1.0, "capped at 1"
    assert same_p99_ratio(None, 1000) == 0.0, "cannot meet the bound"
    print("bench_report.py: self-test passed")


if sys.argv[1:] == ["--self-test"]:
    self_test()
    sys.exit(0)
res_path, out, cores = sys.argv[1], sys.argv[2], int(sys.argv[3])
rows = [json.loads(l) for l in open(res_path) if l.strip()]


def one(mode, **kw):
    for r in rows:
        if r["mode"] == mode and all(r.get(k) == v for k, v in kw.items()):
            return r
    return None


ing = {w: one("ingest", workers=w) for w in (1, 2)}
kcat = one("ref_kcat")
red = one("ref_redis")
mem = one("memory")
mems = one("memory_summarized")
build = one("build")
arch = sorted((r for r in rows if r["mode"] == "archive_memory"), key=lambda r: r["archived"])
codec = [r for r in rows if r["mode"] == "archive_codec"]
ctx = [r for r in rows if r["mode"] == "context"]
cost = [r for r in rows if r["mode"] == "cost"]
fleet = one("fleet") or {}
broker = fleet.get("broker", "devbroker")

# Maximum sustainable rate: the highest offered rate fully answered with
# p99 <= 5 ms.
ok = [r for r in ctx if r["missing"] == 0 and r["achieved_rps"] >= 0.9 * r["rate"]]
sust = [r for r in ok if r["p99_us"] <= 5000]
summary = {
    "cores": cores,
    "ingest_events_per_s": {str(w): (ing[w] or {}).get("events_per_s") for w in ing},
    "kcat_msgs_per_s": kcat and kcat["msgs_per_s"],
    "redis_rpush_ops_per_s": red and red["ops_per_s"],
    "context_max_rate_p99_le_5ms": max((r["rate"] for r in sust), default=None),
    "build_us": build and build["build_us"],
}
for w in (1, 2):
    if ing[w] and kcat and kcat["msgs_per_s"]:
        summary["ingest%d_vs_kcat" % w] = round(ing[w]["events_per_s"] / kcat["msgs_per_s"], 3)
    if ing[w] and red and red["ops_per_s"]:
        summary["ingest%d_vs_redis_rpush" % w] = round(ing[w]["events_per_s"] / red["ops_per_s"], 3)
if mem:
    per = mem["bytes_per_session_info"]
    summary["redis_bytes_per_session"] = per
    summary["redis_gb_for_1m_sessions"] = round(per * 1e6 / 1e9, 2)
if arch:
    summary["archive_bytes_per_msg"] = arch[-1]["bytes_per_msg"]
    summary["archive_gb_per_1m_sessions"] = {str(r["archived"]): r["gb_per_1m_sessions"] for r in arch}
json.dump({"summary": summary, "results": rows}, open(out + "/bench.json", "w"), indent=1)

L = []
p = L.append
p("chatmem benchmark on %s (%d cores; one machine runs broker, redis, workers and load)" % (broker, cores))
p("")
if any(ing.values()) or kcat or red:
    p("Ingest (produce -> acknowledged in Redis), ratios first")
    p("  %-10s %12s %10s %12s" % ("workers", "events/s", "vs kcat", "vs rpush-P32"))
    for w in (1, 2):
        r = ing[w]
        if r:
            p("  %-10d %12.0f %10s %12s" % (w, r["events_per_s"],
              summary.get("ingest%d_vs_kcat" % w, "-"), summary.get("ingest%d_vs_redis_rpush" % w, "-")))
    if kcat:
        p("  reference: kcat -C to /dev/null, same broker: %d msgs/s (%d msgs)" % (kcat["msgs_per_s"], kcat["messages"]))
    if red:
        p("  reference: redis-benchmark -P 32 -t rpush: %.0f ops/s" % red["ops_per_s"])
    if ing[1]:
        p("  (%d events over %d sessions per run)" % (ing[1]["events"], ing[1]["sessions"]))
        p("  where the CPU went, in microseconds per event (%d cores = %.0f us of CPU per event at the 2-worker rate):"
          % (cores, cores * 1e6 / (ing[2] or ing[1])["events_per_s"]))
        p("  %-10s %8s %10s %10s %10s %18s" % ("workers", "redis", "ingest", broker.split()[-1], "load gen", "redis cmds (INFO)"))
        for w in (1, 2):
            r = ing[w]
            if r and "redis_cpu_s" in r:
                n = r["events"] / 1e6
                p("  %-10d %8.1f %10.1f %10.1f %10.1f %18.1f" % (
                    w, r["redis_cpu_s"] / n, r["ingest_cpu_s"] / n, r["broker_cpu_s"] / n,
                    r.get("load_cpu_s", 0) / n, r["redis_cmd_us_per_event"]))
    p("")
if ctx:
    p("Context request/reply, open loop (latency from scheduled send to reply receipt)")
    p("  %8s %9s %8s %8s %8s %8s %8s %8s" % ("offered", "achieved", "missing", "p50 ms", "p90 ms", "p99 ms", "p99.9", "max ms"))
    with open(out + "/latency.dat", "w") as f:
        for r in ctx:
            p("  %8d %9.0f %8d %8.2f %8.2f %8.2f %8.2f %8.2f" % (
                r["rate"], r["achieved_rps"], r["missing"], r["p50_us"] / 1e3, r["p90_us"] / 1e3,
                r["p99_us"] / 1e3, r["p999_us"] / 1e3, r["max_us"] / 1e3))
            f.write("%d %.3f %.3f %.3f\n" % (r["rate"], r["p50_us"] / 1e3, r["p99_us"] / 1e3, r["p999_us"] / 1e3))
    p("  max sustainable rate with p99 <= 5 ms: %s req/s" % (summary["context_max_rate_p99_le_5ms"] or "none of the offered rates"))
    if ctx and "context_cpu_s" in ctx[0]:
        p("  where the CPU went, in microseconds per request (%d cores = %.0f us of CPU per request at the highest rate answered):"
          % (cores, cores * 1e6 / max(r["achieved_rps"] for r in ctx)))
        p("  %8s %10s %8s %10s" % ("offered", "context", "redis", broker.split()[-1]))
        for r in ctx:
            n = r["received"] if r.get("received") else r["sent"]
            p("  %8d %10.1f %8.1f %10.1f" % (r["rate"], r["context_cpu_s"] * 1e6 / n, r["redis_cpu_s"] * 1e6 / n,
              r["broker_cpu_s"] * 1e6 / n))
sweep = [r for r in rows if r["mode"] == "context_setting"]
if sweep:
    p("")
    p("Latency settings at %d req/s (every producer's linger.ms, every consumer's fetch.wait.max.ms)" % sweep[0]["rate"])
    p("  %9s %17s %9s %8s %8s %8s" % ("linger.ms", "fetch.wait.max.ms", "achieved", "p50 ms", "p99 ms", "p99.9"))
    for r in sweep:
        p("  %9d %17d %9.0f %8.2f %8.2f %8.2f" % (r["linger_ms"], r["fetch_wait_max_ms"], r["achieved_rps"],
          r["p50_us"] / 1e3, r["p99_us"] / 1e3, r["p999_us"] / 1e3))
clients = [r for r in rows if r["mode"] == "context_client"]
if clients:
    # The clients beside chatmem-bench. Each ran REPEAT times at each rate
    # (interleaved with the others); a (client, rate) point is the median of
    # its runs' achieved rate, p50 and p99, and is sustained when most of
    # its runs were (<= 1% missing, >= 90% of the rate answered). At each
    # p99 bound q of BENCH_CLIENT_P99_BOUNDS, every client's highest rate
    # within q is read off its own sustained points (rate_at_p99), and a
    # client's ratio is its rate against chatmem-bench's.
    bounds_ms = [float(b) for b in os.environ.get("BENCH_CLIENT_P99_BOUNDS", "10 20 50 100 200 500").split()]
    names = [n for n in ("c", "node", "python") if any(r["client"] == n for r in clients)]
    label = {"c": "chatmem-bench (C)", "node": "Node.js client", "python": "Python client"}

    def sustained(r):
        return r["missing"] <= r["sent"] // 100 and r["achieved_rps"] >= 0.9 * r["rate"]

    points = {}
    for n in names:
        points[n] = []
        for rate in sorted({r["rate"] for r in clients if r["client"] == n}):
            runs = [r for r in clients if r["client"] == n and r["rate"] == rate]
            p99s = [r["p99_us"] / 1e3 for r in runs]
            points[n].append({
                "rate": rate, "runs": len(runs),
                "achieved_rps": round(statistics.median(r["achieved_rps"] for r in runs)),
                "p50_ms": round(statistics.median(r["p50_us"] / 1e3 for r in runs), 2),
                "p99_ms": round(statistics.median(p99s), 2),
                "p99_min_ms": round(min(p99s), 2), "p99_max_ms": round(max(p99s), 2),
                "sustained": 2 * sum(1 for r in runs if sustained(r)) > len(runs)})

    def curve(n):
        return [(x["rate"], x["p99_ms"]) for x in points[n] if x["sustained"]]

    summary["clients"] = {}
    c_rates = {q: rate_at_p99(curve("c"), q) for q in bounds_ms}
    unreached = [q for q in bounds_ms if c_rates[q] is None]
    for n in names:
        bounds = []
        for q in bounds_ms:
            c_rate = c_rates[q]
            if c_rate is None:
                continue
            rate = rate_at_p99(curve(n), q)
            bounds.append({"p99_ms": q, "rate": rate if rate is None else round(rate), "c_rate": round(c_rate),
                           "ratio": round(same_p99_ratio(rate, c_rate), 3)})
        summary["clients"][n] = {"points": points[n], "bounds": bounds,
                                 "min_ratio": min((b["ratio"] for b in bounds), default=None)}
    repeat = max(x["runs"] for n in names for x in points[n])
    p("")
    p("Context round trips through the clients, beside chatmem-bench (same worker, same sessions, a query each;")
    p("open loop, latency from scheduled send to reply; at each rate the three ran in turn%s;" % (
        ", %d rounds" % repeat if repeat > 1 else ""))
    p("medians of the runs, and the range of their p99; * not sustained: most runs lost replies or fell below 90%)")
    p("  %8s %-18s %4s %9s %8s %8s %15s" % ("offered", "load generator", "runs", "achieved", "p50 ms", "p99 ms", "p99 range ms"))
    for rate in sorted({r["rate"] for r in clients}):
        for n in names:
            x = next((x for x in points[n] if x["rate"] == rate), None)
            if x:
                p(("  %8d %-18s %4d %8.0f%s %8.2f %8.2f %15s" % (
                    rate, label[n], x["runs"], x["achieved_rps"], " " if x["sustained"] else "*", x["p50_ms"],
                    x["p99_ms"], "%.1f..%.1f" % (x["p99_min_ms"], x["p99_max_ms"]) if x["runs"] > 1 else "")).rstrip())
    for n in names:
        if n == "c":
            continue
        b = summary["clients"][n]["bounds"]
        p("  %s against chatmem-bench at the same p99 (target 0.70): %s" % (
            label[n], ", ".join("p99<=%g ms: %s vs %d req/s %.2f" % (
                x["p99_ms"], "none" if x["rate"] is None else x["rate"], x["c_rate"], x["ratio"]) for x in b)
            + ", lowest %.2f" % summary["clients"][n]["min_ratio"] if b
            else "no p99 bound within chatmem-bench's sustained points"))
    if unreached:
        p("  (no comparison at p99<=%s ms: chatmem-bench sustained no rate within it)" % ", ".join("%g" % q for q in unreached))
    json.dump({"summary": summary, "results": rows}, open(out + "/bench.json", "w"), indent=1)
p("")
if build:
    p("Context build, in-process (%d-message session, profile + summary, %s)" % (build["messages"], build["tokenizer"]))
    p("  build only:             %7.2f us  (%d contexts/s)" % (build["build_us"], build["builds_per_s"]))
    p("  decode+build+encode:    %7.2f us  (%d contexts/s)" % (build["decode_build_encode_us"], build["per_s"]))
    p("")
if cost:
    c0 = cost[0]
    p("Cost model: %d users x %d messages/day x 30 days, $%.2f per 1M input tokens (%s)" % (
        c0["users"], c0["per_day"], c0["price_per_1m"], c0["tokenizer"]))
    p("  %8s %12s %12s %8s %14s %14s" % ("messages", "full tokens", "chatmem", "saving", "full $/month", "chatmem $/month"))
    for c in cost:
        p("  %8d %12d %12d %7.0f%% %14.0f %14.0f" % (c["messages"], c["full_tokens"], c["chatmem_tokens"],
          100 * c["saving"], c["monthly_full_usd"], c["monthly_chatmem_usd"]))
    p("")
if mem or arch:
    p("Redis memory")
if mem:
    s = mem["memory_usage_sample"]
    p("  %d sessions of %d unsummarized messages: INFO used_memory grew %d bytes = %d bytes/session"
      % (mem["sessions"], mem["messages_per_session"], mem["used_memory_delta"], mem["bytes_per_session_info"]))
    p("  MEMORY USAGE of one such session's keys (sample of %d): %d..%d bytes" % (len(s), min(s), max(s)))
    p("  extrapolated to 1M sessions: %.2f GB" % summary["redis_gb_for_1m_sessions"])
    if mems:
        s = mems["memory_usage_sample"]
        p("  summarized session (20-50 messages folded, summary + profile), MEMORY USAGE: %d..%d bytes,"
          " ~%.2f GB per 1M" % (min(s), max(s), sum(s) / len(s) * 1e6 / 1e9))
if arch:
    p("  archive of folded messages, written by the real fold path (synthetic chat, ~%.0f bytes of text"
      " per message), MEMORY USAGE:" % (codec[0]["content_bytes_per_msg"] if codec else 0))
    p("  %10s %8s %14s %12s %14s" % ("archived", "chunks", "bytes/session", "bytes/msg", "GB per 1M"))
    for r in arch:
        p("  %10d %8.0f %14.0f %12.1f %14.2f" % (r["archived"], r["chunks"], r["memory_usage_bytes"],
          r["bytes_per_msg"], r["gb_per_1m_sessions"]))
    p("  (the chunks alone: %.1f bytes per message at %d)" % (arch[-1]["chunk_bytes_per_msg"], arch[-1]["archived"]))
if codec:
    p("")
    p("Archive chunk codec, in-process: bytes per message (32-byte header included), by messages per chunk")
    levels = sorted({r["level"] for r in codec})
    sizes = sorted({r["chunk_msgs"] for r in codec})
    p("  %10s" % "zstd level" + "".join("%8d" % k for k in sizes))
    for lv in levels:
        p("  %10d" % lv + "".join("%8.1f" % r["bytes_per_msg"] for k in sizes for r in codec
                                   if r["chunk_msgs"] == k and r["level"] == lv))
    p("  encode / decode us per message at 64, level 3: %s" % ", ".join(
        "%.2f / %.2f" % (r["encode_us_per_msg"], r["decode_us_per_msg"]) for r in codec
        if r["chunk_msgs"] == 64 and r["level"] == 3))
open(out + "/report.txt", "w").write("\n".join(L) + "\n")
