#!/usr/bin/env node
// The open-loop context benchmark of `chatmem-bench context`
// (tools/bench/context.c) through the Node.js client's context(): the
// same method, the same options and the same JSON line on stdout (mode
// "context_node"), so ops/bench.sh can set the two side by side.
//
//   node bench/context-bench.mjs --rate R --duration D --sessions S --tag T
//        [--query] [--timeout S] [--reply-topic TOPIC] [--req-prefix P]
//        [--linger-ms MS] [--fetch-wait-ms MS] [--warmup W]
//
// Requests go at a fixed rate R for D seconds to the sessions
// "<T>u<n>:default" (n = request number modulo S); every request has a
// scheduled send time, and its latency counts from that time to the
// receipt of its reply (so a sender that falls behind is not hidden:
// coordinated omission). One request is answered before the clock starts;
// with --warmup W requests also go at the rate for W seconds first (V8
// compiles the hot path meanwhile, as in a long-running application), and
// their replies are awaited, not recorded.
// With --query every request asks about one of the bench conversations'
// topics (recall), chosen as chatmem-bench chooses it for its request
// "<P><n>" (P: --req-prefix, default "q" as there; the client's own
// request ids are "<instance>-<n>"), so both ask the same questions.
// After the last request the run waits up to --timeout seconds (default
// 30) for the replies still missing. The replies come
// on --reply-topic, default "<replies topic>.bench-node", one topic for
// every run as chatmem-bench uses one (a topic per run would pile up on
// the devbroker, which cannot delete topics). Settings come from
// the environment like every chatmem program (CHATMEM_KAFKA_BROKERS,
// CHATMEM_TOPICS_*); --linger-ms and --fetch-wait-ms default to
// CHATMEM_KAFKA_PROP_LINGER_MS and CHATMEM_KAFKA_PROP_FETCH_WAIT_MAX_MS
// when set (the C side's settings), else to the client's defaults.
// Progress goes to stderr.
import { parseArgs } from 'node:util';
import { ChatMem, ChatMemReplyError } from '../src/index.js';

// The topics of tools/bench/conv.c, in its order.
const TOPICS = [
  'async/await in JavaScript',
  'the event loop',
  'closures',
  'React hooks',
  'Node.js streams',
  'PostgreSQL indexes',
  'Docker layers',
  'JWT authentication',
];

function die(msg) {
  process.stderr.write(`context-bench: ${msg}\n`);
  process.exit(2);
}

function intOpt(values, name, min, max, dflt) {
  const v = values[name];
  if (v === undefined) return dflt;
  if (!/^[0-9]+$/.test(v) || Number(v) < min || Number(v) > max) die(`--${name}: '${v}' is not a number in [${min}, ${max}]`);
  return Number(v);
}

const { values } = parseArgs({
  options: {
    rate: { type: 'string' },
    duration: { type: 'string' },
    sessions: { type: 'string' },
    tag: { type: 'string' },
    query: { type: 'boolean' },
    timeout: { type: 'string' },
    'reply-topic': { type: 'string' },
    'req-prefix': { type: 'string' },
    'linger-ms': { type: 'string' },
    'fetch-wait-ms': { type: 'string' },
    warmup: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  process.stdout.write(
    'usage: context-bench.mjs --rate R --duration D --sessions S --tag T [--query]\n' +
      '                         [--timeout S] [--reply-topic TOPIC] [--req-prefix P]\n' +
      '                         [--linger-ms MS] [--fetch-wait-ms MS] [--warmup W]\n',
  );
  process.exit(0);
}
const rate = intOpt(values, 'rate', 1, 10000000, 1000);
const duration = intOpt(values, 'duration', 1, 3600, 5);
const sessions = intOpt(values, 'sessions', 1, 100000000, 1000);
const timeoutS = intOpt(values, 'timeout', 1, 36000, 30);
const warmupS = intOpt(values, 'warmup', 0, 600, 0);
const tag = values.tag ?? 'b';
const reqPrefix = values['req-prefix'] ?? 'q';
const envInt = (name) => (process.env[name] !== undefined && /^[0-9]+$/.test(process.env[name]) ? process.env[name] : undefined);
values['linger-ms'] ??= envInt('CHATMEM_KAFKA_PROP_LINGER_MS');
values['fetch-wait-ms'] ??= envInt('CHATMEM_KAFKA_PROP_FETCH_WAIT_MAX_MS');
const lingerMs = intOpt(values, 'linger-ms', 0, 10000, undefined);
const fetchWaitMs = intOpt(values, 'fetch-wait-ms', 1, 10000, undefined);

const nowUs = () => Number(process.hrtime.bigint() / 1000n);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const cm = new ChatMem({
  clientId: 'chatmem-bench-node',
  replyTopic: values['reply-topic'] ?? `${process.env.CHATMEM_TOPICS_REPLIES || 'context.replies'}.bench-node`,
  lingerMs,
  fetchMaxWaitMs: fetchWaitMs,
  defaultTimeoutMs: (duration + timeoutS) * 1000,
});
let stopping = false;
process.on('SIGINT', () => (stopping = true));
process.on('SIGTERM', () => (stopping = true));

// The options of chatmem-bench's request "<P><id>" to user userN: with
// --query, a question about one of the session's topics, as it asks it.
function options(id, userN) {
  const o = {};
  if (values.query) o.query = `Can you remind me what you said about ${TOPICS[(userN + `${reqPrefix}${id}`.length) % TOPICS.length]}?`;
  return o;
}

// Open loop: request n is due at t0 + n / rate and is sent then (with
// every other one that is due), however far behind the replies are.
// send(n, due) sends it; with progress() (the replies so far), a line a
// second on stderr. Resolves {t0, sent, behindMax} (µs).
async function openLoop(count, send, progress = null) {
  const t0 = nowUs();
  let tProg = t0;
  let sent = 0;
  let behindMax = 0;
  while (sent < count && !stopping) {
    const now = nowUs();
    while (sent < count) {
      const due = t0 + Math.floor((sent * 1e6) / rate);
      if (due > now) break;
      if (now - due > behindMax) behindMax = now - due;
      send(sent, due);
      sent++;
    }
    if (progress && now - tProg >= 1e6) {
      tProg = now;
      process.stderr.write(`context: ${sent}/${count} sent, ${progress()} replies\n`);
    }
    await sleep(1);
  }
  return { t0, sent, behindMax };
}

const total = rate * duration;
const lat = new Float64Array(total);
let received = 0;
let errors = 0;
let lastUs = 0;

try {
  await cm.connect();
  // One request answered before the clock starts: the worker is in its
  // group and the reply path is warm.
  try {
    await cm.context(`${tag}u0`, { ...options('w', 0), timeoutMs: timeoutS * 1000 });
  } catch (e) {
    if (!(e instanceof ChatMemReplyError)) die(`warm-up: no reply within ${timeoutS} s; is chatmem-context running? (${e.message})`);
  }
  if (warmupS > 0) {
    // Counted, not kept: each warm-up reply is garbage at once, rather
    // than thousands of them held into the measured run for the collector.
    const count = rate * warmupS;
    let left = count;
    let allDone;
    const done = new Promise((r) => (allDone = r));
    const settle = () => --left === 0 && allDone();
    await openLoop(count, (n) => cm.context(`${tag}u${n % sessions}`, options(n, n % sessions)).then(settle, settle));
    let timer;
    await Promise.race([done, new Promise((r) => (timer = setTimeout(r, timeoutS * 1000)))]);
    clearTimeout(timer);
  }
  process.stderr.write(`context: ${rate} req/s for ${duration} s over ${sessions} sessions (node client)\n`);

  const cpu0 = process.cpuUsage();
  const record = (due, isError) => {
    const t = nowUs();
    lat[received++] = t - due;
    if (isError) errors++;
    lastUs = t;
  };
  const { t0, sent, behindMax } = await openLoop(
    total,
    (n, due) =>
      cm.context(`${tag}u${n % sessions}`, options(n, n % sessions)).then(
        () => record(due, false),
        (e) => {
          if (e instanceof ChatMemReplyError) record(due, true);
        },
      ),
    () => received,
  );
  const sendS = (nowUs() - t0) / 1e6;
  const deadline = Date.now() + timeoutS * 1000;
  while (received < sent && Date.now() < deadline && !stopping) await sleep(10);
  const cpu = process.cpuUsage(cpu0);

  const got = lat.subarray(0, received).sort();
  const pct = (p) => (got.length ? got[Math.max(1, Math.ceil((p / 100) * got.length)) - 1] : 0);
  const spanS = Math.max(sendS, (lastUs - t0) / 1e6);
  const out = {
    mode: 'context_node',
    rate,
    duration_s: duration,
    sent,
    received,
    errors,
    missing: sent - received,
    send_s: Number(sendS.toFixed(3)),
    achieved_rps: Math.round(received / spanS),
    sender_behind_max_us: behindMax,
    p50_us: pct(50),
    p90_us: pct(90),
    p99_us: pct(99),
    p999_us: pct(99.9),
    max_us: got.length ? got[got.length - 1] : 0,
    linger_ms: cm.settings.lingerMs,
    fetch_wait_ms: cm.fetchMaxWaitMs(),
    // This process's CPU (user + system) per reply received, over the run.
    cpu_us_per_req: received ? Math.round((cpu.user + cpu.system) / received) : 0,
  };
  process.stdout.write(`${JSON.stringify(out)}\n`);
  process.stderr.write(
    `context: ${rate} req/s: p50 ${(out.p50_us / 1000).toFixed(2)} ms, p99 ${(out.p99_us / 1000).toFixed(2)} ms, ` +
      `max ${(out.max_us / 1000).toFixed(2)} ms, ${out.missing} missing (node client)\n`,
  );
} finally {
  await cm.close();
}
