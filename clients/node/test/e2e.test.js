// The client against a fleet (tests/test_e2e_client_node.sh starts it:
// Redis, a broker, ingest, summarizer and context workers; the env names
// the brokers and topics). Waits are bounded loops on outcomes, never
// fixed sleeps or timed assertions.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, test } from 'node:test';
import {
  ChatMem,
  ChatMemClosedError,
  ChatMemReplyError,
  ChatMemTimeoutError,
  partitionFor,
} from 'chatmem';

const run = process.pid.toString(36);
const partitions = Number(process.env.CHATMEM_TEST_PARTITIONS || 0);
const cm = new ChatMem();

before(() => cm.connect());
after(() => cm.close());

// Calls fn until it returns a truthy value (at most `tries` times, 50 ms
// apart); returns that value, or fails naming `what`.
async function eventually(what, fn, tries = 400) {
  let last;
  for (let i = 0; i < tries; i++) {
    last = await fn();
    if (last) return last;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`${what}: not reached (last: ${JSON.stringify(last)?.slice(0, 300)})`);
}

test('send, then context: the sent messages are in the reply', { timeout: 30000 }, async () => {
  const user = `send-${run}`;
  const msgs = [
    ['user', "Hi, I'm Ada Lovelace, a mathematician"],
    ['assistant', 'Nice to meet you, Ada!'],
    ['user', 'I like analytical engines.'],
  ];
  for (const [role, content] of msgs) {
    const r = await cm.send({ userId: user, conversationId: 'c1', role, content });
    assert.match(r.eventId, /^[0-9a-f-]{36}$/);
  }
  // A repeated event id is dropped by ingest: still three messages.
  await cm.send({ userId: user, conversationId: 'c1', role: 'user', content: 'a duplicate', eventId: `dup-${run}` });
  await cm.send({ userId: user, conversationId: 'c1', role: 'user', content: 'a duplicate', eventId: `dup-${run}` });
  const reply = await eventually('four messages stored', async () => {
    const r = await cm.context(user, { conversationId: 'c1' });
    return r.metadata.total_messages === 4 && r;
  });
  assert.equal(reply.user_id, user);
  assert.equal(reply.conversation_id, 'c1');
  assert.match(reply.request_id, new RegExp(`^${cm.instanceId}-[0-9]+$`));
  assert.deepEqual(reply.recent.map((m) => m.content), [msgs[1][1], msgs[2][1], 'a duplicate']);
  assert.equal(reply.profile.name, 'Ada Lovelace');
  for (const [, content] of msgs.slice(1)) assert.ok(reply.context.includes(content));
  assert.ok(reply.metadata.tokens > 0 && reply.metadata.tokens <= 2000);

  // profile.set wins over what was extracted; user.delete forgets it all.
  await cm.profileSet(user, { name: 'Augusta Ada King', interests: ['poetry'] }, { conversationId: 'c1' });
  await eventually('the profile set', async () => {
    const r = await cm.context(user, { conversationId: 'c1' });
    return r.profile.name === 'Augusta Ada King' && r.profile.interests.includes('poetry');
  });
  await cm.deleteUser(user);
  await eventually('the user deleted', async () => {
    const r = await cm.context(user, { conversationId: 'c1' });
    return r.metadata.total_messages === 0 && r.profile.name === undefined;
  });
});

test('1,000 concurrent context requests, each answered to its own call', { timeout: 30000 }, async () => {
  const n = 1000;
  const replies = await Promise.all(
    Array.from({ length: n }, (_, i) => cm.context(`many-${run}-${i}`, { conversationId: `c${i % 7}`, maxTokens: 200 })),
  );
  const ids = new Set();
  replies.forEach((r, i) => {
    assert.equal(r.user_id, `many-${run}-${i}`);
    assert.equal(r.conversation_id, `c${i % 7}`);
    assert.ok(r.request_id.startsWith(`${cm.instanceId}-`));
    ids.add(r.request_id);
  });
  assert.equal(ids.size, n, 'request ids are unique');
  assert.equal(cm.stats().pending, 0);
});

test('time-out: no consumer of the requests topic; a closed client rejects what is pending', { timeout: 30000 }, async () => {
  const requests = `${process.env.CHATMEM_TOPICS_REQUESTS || 'context.requests'}.nobody`;
  // The topic is auto-created by the first request (kafkajs logs the
  // broker's first "unknown topic" answer: silenced here).
  const lone = new ChatMem({ topics: { requests }, kafka: { logLevel: 0 } });
  await lone.connect();
  try {
    await assert.rejects(lone.context('u', { timeoutMs: 500 }), (e) => {
      assert.ok(e instanceof ChatMemTimeoutError);
      assert.equal(e.code, 'timeout');
      assert.equal(e.timeoutMs, 500);
      return true;
    });
    assert.equal(lone.stats().pending, 0);
    const pending = lone.context('u', { timeoutMs: 60000 });
    const closing = lone.close();
    await assert.rejects(pending, ChatMemClosedError);
    await closing;
  } finally {
    await lone.close();
  }
});

test('time-out: a late reply is dropped and the client goes on', { timeout: 30000 }, async () => {
  const before = cm.stats().unmatched;
  await assert.rejects(cm.context(`late-${run}`, { timeoutMs: 1 }), ChatMemTimeoutError);
  const r = await cm.context(`late-${run}`);
  assert.equal(r.user_id, `late-${run}`);
  await eventually('the late reply seen and dropped', () => cm.stats().unmatched > before);
});

test('an error reply rejects with ChatMemReplyError', { timeout: 30000 }, async () => {
  await assert.rejects(cm.context(`err-${run}`, { maxTokens: 0 }), (e) => {
    assert.ok(e instanceof ChatMemReplyError);
    assert.equal(e.code, 'invalid_request');
    assert.match(e.message, /max_tokens/);
    assert.match(e.requestId, new RegExp(`^${cm.instanceId}-`));
    return true;
  });
});

test('prebuilt: a session context, then its tombstone after deleteSession', { timeout: 30000 }, async () => {
  const user = `pb-${run}`;
  const key = `${user}:gone`;
  await cm.send({ userId: user, conversationId: 'gone', role: 'user', content: 'remember this for a moment' });
  let seen = null;
  let checked = 0;
  for await (const e of cm.prebuilt({ fromBeginning: true })) {
    // The context worker's librdkafka put each session where the
    // client's partitioner puts it.
    if (partitions) {
      assert.equal(e.partition, partitionFor(e.key, partitions), `partition of ${e.key}`);
      checked++;
    }
    if (e.key !== key) continue;
    assert.equal(e.userId, user);
    assert.equal(e.conversationId, 'gone');
    assert.match(e.offset, /^[0-9]+$/);
    if (e.context !== null && seen === null) {
      assert.equal(e.context.user_id, user);
      assert.equal(e.context.recent.at(-1).content, 'remember this for a moment');
      assert.equal(e.context.request_id, undefined);
      seen = e;
      await cm.deleteSession(user, 'gone');
    } else if (e.context === null) {
      assert.ok(seen, 'the tombstone comes after the context');
      assert.ok(BigInt(e.offset) > BigInt(seen.offset));
      break;
    }
  }
  assert.ok(seen);
  if (partitions) assert.ok(checked > 0);
});

test('bench/context-bench.mjs: a short open-loop run prints its JSON line', { timeout: 30000 }, () => {
  const r = spawnSync(
    process.execPath,
    [new URL('../bench/context-bench.mjs', import.meta.url).pathname, '--rate', '200', '--duration', '1', '--sessions', '20', '--tag', `bench-${run}`, '--query', '--timeout', '20'],
    { encoding: 'utf8', timeout: 28000 },
  );
  assert.equal(r.status, 0, r.stderr);
  const d = JSON.parse(r.stdout.trim().split('\n').at(-1));
  assert.equal(d.mode, 'context_node');
  assert.equal(d.rate, 200);
  assert.equal(d.sent, 200);
  assert.equal(d.received + d.missing, d.sent);
  for (const k of ['achieved_rps', 'p50_us', 'p90_us', 'p99_us', 'p999_us', 'max_us']) assert.ok(Number.isInteger(d[k]), k);
  assert.ok(d.p50_us <= d.p99_us && d.p99_us <= d.max_us);
});
