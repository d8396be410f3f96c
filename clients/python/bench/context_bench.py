#!/usr/bin/env python3
"""Open-loop context requests at a fixed rate through the Python client.

The method and the output of ``chatmem-bench context`` (tools/bench), so the
two can be put side by side: request ``i`` is due at ``t0 + i / rate`` and
is sent then however far behind the replies are (open loop); its latency
runs from that scheduled time to the receipt of its reply, so a client that
falls behind is charged for it (no coordinated omission). Sessions are
``<tag>u<n>:default`` for ``n = i % sessions`` (those ``chatmem-bench
ingest --tag <tag>`` fills); ``--query`` gives every request a question
about one of the session's topics. One request answered before the clock
starts warms the path; with ``--warmup W`` requests also go at the rate for
W seconds first, and their replies are awaited, not recorded.

The client is configured as an application would be: the brokers and
topics from ``CHATMEM_KAFKA_BROKERS`` and ``CHATMEM_TOPICS_*``, librdkafka
properties from ``CHATMEM_KAFKA_PROP_*`` (and ``--linger-ms``,
``--fetch-wait-ms``). ``--api futures`` (the default) takes each reply as
the client's reply thread completes its future; ``--api asyncio`` awaits
each request in a task of its own on an event loop (AsyncChatMem), as an
asyncio server would.

Progress goes to stderr; the result is one JSON line on stdout:
{"mode":"context_python","rate":..,"sent":..,"received":..,"missing":..,
"achieved_rps":..,"p50_us":..,"p90_us":..,"p99_us":..,"p999_us":..,
"max_us":.., ...}. Exit status 1 when the run could not be made (no fleet).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import threading
import time
from concurrent.futures import Future
from typing import Any, Callable, Dict, List, Optional, Tuple

from chatmem import ChatMem, ChatMemError, ChatMemTimeout, ReplyError
from chatmem.aio import AsyncChatMem

# The topics of chatmem-bench's conversations (tools/bench/conv.c).
TOPICS = [
    "async/await in JavaScript",
    "the event loop",
    "closures",
    "React hooks",
    "Node.js streams",
    "PostgreSQL indexes",
    "Docker layers",
    "JWT authentication",
]


class Recorder:
    """Latencies and counts, written by the thread that completes each
    request."""

    def __init__(self, total: int) -> None:
        self.lat_us: List[int] = []
        self.received = 0
        self.errors = 0
        self.timeouts = 0
        self.last = 0.0
        self.total = total
        self.lock = threading.Lock()

    def callback(self, due: float) -> Callable[[Future[Any]], None]:
        """A done-callback recording the future of the request due at due."""
        return lambda fut: self.done(due, fut.exception())

    def done(self, due: float, exc: Optional[BaseException]) -> None:
        now = time.monotonic()
        with self.lock:
            if isinstance(exc, ChatMemTimeout) or (exc is not None and not isinstance(exc, ReplyError)):
                self.timeouts += 1
                return
            self.lat_us.append(int((now - due) * 1e6))
            self.received += 1
            if exc is not None:
                self.errors += 1
            self.last = now


class Countdown:
    """Counts futures as they complete, without holding them: a held future
    holds its reply, and thousands of held replies made CPython's cyclic
    collector pause the whole process for a full collection (15 ms, at the
    start of the measured run) that found no garbage."""

    def __init__(self, count: int) -> None:
        self.left = count
        self.cond = threading.Condition()

    def done(self, _fut: Future[Any]) -> None:
        with self.cond:
            self.left -= 1
            if self.left <= 0:
                self.cond.notify_all()

    def wait(self, timeout: float) -> None:
        with self.cond:
            self.cond.wait_for(lambda: self.left <= 0, timeout)


def pct(sorted_us: List[int], p: float) -> int:
    """The p-th percentile: the smallest value with at least p % of the
    values at or below it (chatmem-bench's definition)."""
    if not sorted_us:
        return 0
    want = max(1, math.ceil(p / 100.0 * len(sorted_us)))
    return sorted_us[want - 1]


def request_args(o: argparse.Namespace, i: int) -> Dict[str, Any]:
    n = i % o.sessions
    args: Dict[str, Any] = {"user_id": f"{o.tag}u{n}", "timeout": o.duration + o.timeout}
    if o.query:
        args["query"] = f"Can you remind me what you said about {TOPICS[(n + i) % len(TOPICS)]}?"
    return args


def client_options(o: argparse.Namespace) -> Dict[str, Any]:
    kafka: Dict[str, Any] = {}
    if o.linger_ms is not None:
        kafka["linger.ms"] = o.linger_ms
    if o.fetch_wait_ms is not None:
        kafka["fetch.wait.max.ms"] = o.fetch_wait_ms
    opts: Dict[str, Any] = {"kafka": kafka, "client_id": "chatmem-python-bench"}
    if o.reply_topic:
        opts["reply_topic"] = o.reply_topic
    return opts


class Schedule:
    """The open loop of both APIs: request i is due at t0 + i / rate,
    whatever became of the ones before it; its latency counts from then."""

    def __init__(self, rate: int, total: int, rec: Optional[Recorder]) -> None:
        self.rate = rate
        self.total = total
        self.rec = rec
        self.sent = 0
        self.behind = 0.0
        self.t0 = self.t_prog = time.monotonic()

    def due(self) -> List[Tuple[int, float]]:
        """The requests due now, as (i, due time), counted as sent; prints
        the progress once a second."""
        now = time.monotonic()
        out = []
        while self.sent < self.total:
            due = self.t0 + self.sent / self.rate
            if due > now:
                break
            self.behind = max(self.behind, now - due)
            out.append((self.sent, due))
            self.sent += 1
        if self.rec is not None and now - self.t_prog >= 1.0:
            self.t_prog = now
            print(f"context_python: {self.sent}/{self.total} sent, {self.rec.received} replies", file=sys.stderr)
        return out

    def done(self) -> bool:
        return self.sent >= self.total

    def pause_s(self) -> float:
        """How long to sleep before the next request is due (at most 1 ms)."""
        return min(0.001, max(0.0, self.t0 + self.sent / self.rate - time.monotonic()))

    def result(self) -> Dict[str, float]:
        return {"t0": self.t0, "send_s": time.monotonic() - self.t0, "sent": self.sent, "behind_s": self.behind}


def run_futures(o: argparse.Namespace, rec: Recorder) -> Dict[str, float]:
    with ChatMem(**client_options(o)) as cm:
        cm.context(**request_args(o, 0))  # warm-up, not counted
        if o.warmup:
            warm = Schedule(o.rate, o.rate * o.warmup, None)
            left = Countdown(warm.total)
            while not warm.done():
                for i, _ in warm.due():
                    cm.context_future(**request_args(o, i)).add_done_callback(left.done)
                if not warm.done():
                    time.sleep(warm.pause_s())
            left.wait(o.timeout)
        print(f"context_python: {o.rate} req/s for {o.duration} s over {o.sessions} sessions", file=sys.stderr)
        sched = Schedule(o.rate, o.rate * o.duration, rec)
        while not sched.done():
            for i, due in sched.due():
                fut: Future[Any] = cm.context_future(**request_args(o, i))
                fut.add_done_callback(rec.callback(due))
            if not sched.done():
                time.sleep(sched.pause_s())
        res = sched.result()
        end = time.monotonic() + o.timeout
        while rec.received + rec.timeouts < sched.sent and time.monotonic() < end:
            time.sleep(0.01)
    return res


async def run_asyncio(o: argparse.Namespace, rec: Recorder) -> Dict[str, float]:
    loop = asyncio.get_running_loop()
    async with AsyncChatMem(**client_options(o)) as acm:
        await acm.context(**request_args(o, 0))  # warm-up, not counted
        if o.warmup:

            async def quiet(i: int) -> None:
                try:
                    await acm.context(**request_args(o, i))
                except ChatMemError:
                    pass

            warm = Schedule(o.rate, o.rate * o.warmup, None)
            pending: List[asyncio.Task[None]] = []
            while not warm.done():
                pending.extend(loop.create_task(quiet(i)) for i, _ in warm.due())
                await asyncio.sleep(warm.pause_s())
            if pending:
                await asyncio.wait(pending, timeout=o.timeout)
        print(f"context_python: {o.rate} req/s for {o.duration} s over {o.sessions} sessions", file=sys.stderr)

        async def one(i: int, due: float) -> None:
            try:
                await acm.context(**request_args(o, i))
                rec.done(due, None)
            except ChatMemError as e:
                rec.done(due, e)

        tasks = set()
        sched = Schedule(o.rate, o.rate * o.duration, rec)
        while not sched.done():
            for i, due in sched.due():
                task = loop.create_task(one(i, due))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            await asyncio.sleep(sched.pause_s())
        res = sched.result()
        if tasks:
            await asyncio.wait(tasks, timeout=o.timeout)
    return res


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rate", type=int, default=1000, help="requests per second (default 1000)")
    ap.add_argument("--duration", type=int, default=5, help="seconds of sending (default 5)")
    ap.add_argument("--sessions", type=int, default=1000, help="sessions asked for in turn (default 1000)")
    ap.add_argument("--tag", default="b", help='users are "<tag>u<n>" (default b)')
    ap.add_argument("--query", action="store_true", help="give every request a query (recall)")
    ap.add_argument("--warmup", type=int, default=0, help="seconds of requests at the rate before the clock starts (default 0)")
    ap.add_argument("--timeout", type=int, default=30, help="seconds to wait for the last replies (default 30)")
    ap.add_argument("--api", choices=("futures", "asyncio"), default="futures", help="how replies are taken")
    ap.add_argument("--linger-ms", type=int, help="linger.ms of the client's producer")
    ap.add_argument("--fetch-wait-ms", type=int, help="fetch.wait.max.ms of its reply consumer")
    ap.add_argument("--reply-topic", help="an existing reply topic (default: the client's own)")
    o = ap.parse_args(argv)
    if o.rate < 1 or o.duration < 1 or o.sessions < 1 or o.timeout < 1:
        ap.error("--rate, --duration, --sessions and --timeout must be >= 1")
    if o.warmup < 0:
        ap.error("--warmup must be >= 0")
    rec = Recorder(o.rate * o.duration)
    try:
        if o.api == "asyncio":
            run = asyncio.run(run_asyncio(o, rec))
        else:
            run = run_futures(o, rec)
    except ChatMemError as e:
        print(f"context_python: {e}", file=sys.stderr)
        return 1
    with rec.lock:
        lat = sorted(rec.lat_us)
        received, errors, last = rec.received, rec.errors, rec.last
    sent = int(run["sent"])
    span = max(run["send_s"], last - run["t0"])
    out = {
        "mode": "context_python",
        "api": o.api,
        "rate": o.rate,
        "duration_s": o.duration,
        "sent": sent,
        "received": received,
        "errors": errors,
        "missing": sent - received,
        "send_s": round(run["send_s"], 3),
        "achieved_rps": round(received / span) if span > 0 else 0,
        "sender_behind_max_us": int(run["behind_s"] * 1e6),
        "p50_us": pct(lat, 50),
        "p90_us": pct(lat, 90),
        "p99_us": pct(lat, 99),
        "p999_us": pct(lat, 99.9),
        "max_us": lat[-1] if lat else 0,
    }
    print(json.dumps(out, separators=(",", ":")), flush=True)
    print(
        f"context_python: {o.rate} req/s: p50 {out['p50_us'] / 1000:.2f} ms, p99 {out['p99_us'] / 1000:.2f} ms, "
        f"max {out['max_us'] / 1000:.2f} ms, {out['missing']} missing",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
