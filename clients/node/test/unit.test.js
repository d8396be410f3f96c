// Broker-less tests: settings, local checks, the JSON of events and
// requests, the partitioner, the derived ids, the batcher and the seed
// drop-in's bookkeeping (against a stand-in for the client).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import {
  CONTRACT_VERSION,
  ChatMem,
  ChatMemClosedError,
  ChatMemError,
  ChatMemValidationError,
  partitionFor,
  seedEventId,
  sessionKey,
} from 'chatmem';
import { ConversationManager } from 'chatmem/seed';
import { Batcher } from '../src/batcher.js';
import {
  crc32,
  encodeMessage,
  encodeProfileSet,
  encodeRequest,
  encodeSessionDelete,
  encodeUserDelete,
  resolveSettings,
  splitSessionKey,
} from '../src/wire.js';
import pkg from '../package.json' with { type: 'json' };

test('the package version is the wire contract version (schemas/VERSION)', () => {
  const contract = readFileSync(new URL('../../../schemas/VERSION', import.meta.url), 'utf8').trim();
  assert.equal(CONTRACT_VERSION, contract);
  assert.equal(pkg.version, contract);
});

test('settings: options win over the environment, which wins over the defaults', () => {
  const env = {
    CHATMEM_KAFKA_BROKERS: 'k1:9092, k2:9093',
    CHATMEM_TOPICS_EVENTS: 'ns.chat.events',
    CHATMEM_TOPICS_REPLIES: 'ns.context.replies',
  };
  const s = resolveSettings({}, env);
  assert.deepEqual(s.brokers, ['k1:9092', 'k2:9093']);
  assert.equal(s.topics.events, 'ns.chat.events');
  assert.equal(s.topics.requests, 'context.requests');
  assert.equal(s.topics.replies, 'ns.context.replies');
  assert.equal(s.topics.prebuilt, 'context.prebuilt');
  const o = resolveSettings({ brokers: ['b:1'], topics: { events: 'e' } }, env);
  assert.deepEqual(o.brokers, ['b:1']);
  assert.equal(o.topics.events, 'e');
  assert.deepEqual(resolveSettings({}, {}).brokers, ['127.0.0.1:9092']);
  assert.throws(() => resolveSettings({ replyTopic: 'bad topic' }, {}), ChatMemValidationError);
  assert.throws(() => resolveSettings({ defaultTimeoutMs: 0 }, {}), ChatMemValidationError);
});

test('a client gets a reply topic of its own inside the default allow-list', () => {
  const a = new ChatMem({ brokers: 'x:1', topics: { replies: 'context.replies' } });
  const b = new ChatMem({ brokers: 'x:1', topics: { replies: 'context.replies' } });
  assert.match(a.replyTopic, /^context\.replies\.[0-9a-f]{12}$/);
  assert.notEqual(a.replyTopic, b.replyTopic);
  const c = new ChatMem({ brokers: 'x:1', replyTopic: 'context.replies.mine' });
  assert.equal(c.replyTopic, 'context.replies.mine');
});

test('message events: shape, key, generated event id and ts', () => {
  const { key, value, eventId } = encodeMessage({ userId: 'u42', role: 'user', content: "Hi, I'm Sumit" });
  const ev = JSON.parse(value);
  assert.equal(key, 'u42:default');
  assert.match(eventId, /^[0-9a-f-]{36}$/);
  assert.deepEqual(Object.keys(ev), ['type', 'event_id', 'user_id', 'conversation_id', 'role', 'content', 'ts']);
  assert.equal(ev.type, 'message');
  assert.equal(ev.event_id, eventId);
  assert.equal(ev.conversation_id, 'default');
  assert.ok(Number.isSafeInteger(ev.ts) && ev.ts > 0);
  const given = encodeMessage({ userId: 'u', conversationId: 'c.1', role: 'assistant', content: 'x', eventId: 'e:1', ts: 5 });
  assert.equal(given.key, 'u:c.1');
  assert.deepEqual(JSON.parse(given.value), {
    type: 'message', event_id: 'e:1', user_id: 'u', conversation_id: 'c.1', role: 'assistant', content: 'x', ts: 5,
  });
  assert.equal(JSON.parse(encodeMessage({ userId: 'u', role: 'user', content: 'x', ts: new Date(7) }).value).ts, 7);
});

test('message events: ids, role and content are checked before anything is sent', () => {
  const ok = { userId: 'u', role: 'user', content: 'x' };
  const bad = [
    { ...ok, userId: '' },
    { ...ok, userId: 'a b' },
    { ...ok, userId: 'a:b' },
    { ...ok, userId: 'x'.repeat(129) },
    { ...ok, userId: 'é' },
    { ...ok, userId: 42 },
    { ...ok, conversationId: 'c/1' },
    { ...ok, role: 'bot' },
    { ...ok, role: undefined },
    { ...ok, content: '' },
    { ...ok, content: 7 },
    { ...ok, content: 'a\u0000b' },
    { ...ok, content: 'a\ud800b' },
    { ...ok, content: 'x'.repeat(65537) },
    { ...ok, eventId: 'has space' },
    { ...ok, ts: -1 },
    { ...ok, ts: 1.5 },
  ];
  for (const m of bad) assert.throws(() => encodeMessage(m), ChatMemValidationError, JSON.stringify(m).slice(0, 80));
  assert.ok(encodeMessage({ ...ok, userId: 'x'.repeat(128), content: 'é'.repeat(32768) }));
  const e = (() => {
    try {
      encodeMessage({ ...ok, role: 'bot' });
    } catch (err) {
      return err;
    }
  })();
  assert.ok(e instanceof ChatMemError);
  assert.equal(e.code, 'invalid_argument');
  assert.equal(e.field, 'role');
});

test('profile.set, session.delete and user.delete events', () => {
  const p = encodeProfileSet('u', { name: 'Sumit Pandya', role: null, interests: ['React', 'Node.js'] }, { conversationId: 'c' });
  assert.equal(p.key, 'u:c');
  const pe = JSON.parse(p.value);
  assert.equal(pe.type, 'profile.set');
  assert.deepEqual(pe.profile, { name: 'Sumit Pandya', interests: ['React', 'Node.js'] });
  assert.throws(() => encodeProfileSet('u', { name: '' }), ChatMemValidationError);
  assert.throws(() => encodeProfileSet('u', { interests: 'React' }), ChatMemValidationError);
  assert.throws(() => encodeProfileSet('u', { interests: Array(65).fill('x') }), ChatMemValidationError);
  const s = encodeSessionDelete('u', 'c');
  assert.equal(s.key, 'u:c');
  assert.deepEqual(JSON.parse(s.value), { type: 'session.delete', event_id: s.eventId, user_id: 'u', conversation_id: 'c' });
  const d = encodeUserDelete('u');
  assert.equal(d.key, 'u:default');
  assert.deepEqual(JSON.parse(d.value), { type: 'user.delete', event_id: d.eventId, user_id: 'u' });
});

test('context requests: fields in the wire names, history copied, checks', () => {
  const { key, value } = encodeRequest('i-1', 'context.replies.i', 'u', {
    conversationId: 'c',
    query: 'name?',
    maxTokens: 500,
    recent: 2,
    scope: 'user',
    history: [{ role: 'user', content: 'hi', ts: 5, extra: true }],
    profile: { name: 'S', role: null },
    stored: false,
  });
  assert.equal(key, 'u:c');
  assert.deepEqual(JSON.parse(value), {
    request_id: 'i-1',
    user_id: 'u',
    conversation_id: 'c',
    reply_to: 'context.replies.i',
    max_tokens: 500,
    recent: 2,
    query: 'name?',
    scope: 'user',
    history: [{ role: 'user', content: 'hi' }],
    profile: { name: 'S' },
    stored: false,
  });
  // The worker judges ranges (it answers invalid_request): only types here.
  assert.equal(JSON.parse(encodeRequest('i-2', 't', 'u', { maxTokens: 0 }).value).max_tokens, 0);
  for (const o of [{ maxTokens: 1.5 }, { recent: '3' }, { scope: 'all' }, { history: [{ role: 'x', content: '' }] },
    { history: 'hi' }, { stored: 'no' }, { conversationId: '' }, { query: 5 }]) {
    assert.throws(() => encodeRequest('i-3', 't', 'u', o), ChatMemValidationError, JSON.stringify(o));
  }
  assert.throws(() => encodeRequest('i-4', 't', 'bad user', {}), ChatMemValidationError);
});

test('keys: a session key splits back at its first colon', () => {
  assert.equal(sessionKey('u'), 'u:default');
  assert.deepEqual(splitSessionKey('u.1:conv:x'), { userId: 'u.1', conversationId: 'conv:x' });
});

test('partitions: crc32 of the key, as librdkafka picks them', () => {
  assert.equal(crc32(Buffer.from('123456789')), 0xcbf43926);
  // Partitions librdkafka (kcat, the CLI) chose for these keys among 4.
  assert.equal(partitionFor('u1:default', 4), 3);
  assert.equal(partitionFor('alice:c1', 4), 3);
  assert.equal(partitionFor('test-user:test-conversation', 4), 1);
  assert.equal(partitionFor('user-7:default', 4), 0);
  assert.equal(partitionFor(Buffer.from('u1:default'), 4), 3);
  // A string key that is not ASCII is hashed as its UTF-8 bytes.
  for (const k of ['\u00e9t\u00e9:x', 'a\u{1f600}:b'])
    assert.equal(partitionFor(k, 1000003), crc32(Buffer.from(k, 'utf8')) % 1000003);
});

test('the seed event id is stable, per session and position', () => {
  assert.equal(seedEventId('test-user', 'test-conversation', 0), 'seed-fedfc6974d441f2f-0');
  assert.equal(seedEventId('test-user', 'test-conversation', 12), 'seed-fedfc6974d441f2f-12');
  assert.notEqual(seedEventId('test-user', 'other', 0), seedEventId('test-user', 'test-conversation', 0));
  assert.match(seedEventId('u', 'c', 9999), /^seed-[0-9a-f]{16}-9999$/);
});

test('a client not connected refuses calls; close is idempotent; no connect after close', async () => {
  const cm = new ChatMem({ brokers: '127.0.0.1:1' });
  await assert.rejects(cm.context('u'), (e) => e instanceof ChatMemError && e.code === 'not_connected');
  await assert.rejects(cm.send({ userId: 'u', role: 'user', content: 'x' }), { code: 'not_connected' });
  await assert.rejects(cm.send({ userId: 'u', role: 'nobody', content: 'x' }), ChatMemValidationError);
  await assert.rejects(cm.context('u', { scope: 'everywhere' }), ChatMemValidationError);
  await cm.close();
  await cm.close();
  await assert.rejects(cm.connect(), ChatMemClosedError);
  await assert.rejects(cm.context('u'), ChatMemClosedError);
});

// A stand-in for the client's producer: records each send.
function fakeProducer({ fail = false, delayMs = 5 } = {}) {
  const batches = [];
  return {
    batches,
    send: (topicMessages) =>
      new Promise((resolve, reject) =>
        setTimeout(() => {
          batches.push(topicMessages);
          if (fail) reject(new Error('broker down'));
          else resolve([]);
        }, delayMs),
      ),
  };
}

test('batcher: concurrent sends share batches, in order, one batch in flight', async () => {
  const p = fakeProducer();
  const b = new Batcher(p);
  const first = Array.from({ length: 10 }, (_, i) => b.send('t', 'k', `m${i}`));
  await new Promise((r) => setImmediate(r));
  // The first batch is in flight; these gather behind it.
  const second = Array.from({ length: 20 }, (_, i) => b.send(i % 2 ? 't' : 'u', 'k', `n${i}`));
  await Promise.all([...first, ...second]);
  assert.equal(p.batches.length, 2);
  assert.deepEqual(p.batches[0][0].messages.map((m) => m.value), first.map((_, i) => `m${i}`));
  assert.deepEqual(p.batches[1].map((t) => t.topic), ['u', 't']);
  assert.equal(p.batches[1][0].messages.length + p.batches[1][1].messages.length, 20);
  await b.drain();
});

test('batcher: a failed batch rejects each of its sends; abort fails the queued ones', async () => {
  const b = new Batcher(fakeProducer({ fail: true }));
  const r = await Promise.allSettled([b.send('t', 'k', '1'), b.send('t', 'k', '2')]);
  assert.deepEqual(r.map((x) => x.status), ['rejected', 'rejected']);
  const c = new Batcher(fakeProducer(), { lingerMs: 1000 });
  const q = c.send('t', 'k', 'x');
  c.abort(new ChatMemClosedError());
  await assert.rejects(q, ChatMemClosedError);
  await c.drain();
});

// A stand-in for a connected ChatMem: records what the seed drop-in
// sends and answers context requests with `stored` messages.
function fakeClient(stored = 0) {
  const calls = [];
  return {
    calls,
    state: 'connected',
    settings: { maxContentBytes: 65536 },
    send: async (m) => {
      calls.push(['send', m]);
      return { eventId: m.eventId };
    },
    profileSet: async (u, p, o) => {
      calls.push(['profileSet', u, p, o]);
      return { eventId: 'p' };
    },
    context: async (u, o) => {
      calls.push(['context', u, o]);
      return {
        context: `ctx of ${u}`,
        profile: { name: 'Sumit Pandya', interests: [] },
        metadata: { total_messages: stored, summarized: true, cached: false, tokens: 42 },
      };
    },
    close: async () => {},
  };
}

function seedWith(client) {
  const m = new ConversationManager({ brokers: '127.0.0.1:1' });
  m.cm = client;
  m.ready = Promise.resolve(client);
  return m;
}

const HISTORY = [
  { role: 'user', content: "Hi, I'm Sumit Pandya" },
  { role: 'assistant', content: 'Nice to meet you!' },
  { role: 'user', content: "I'm a full stack developer" },
  { role: 'ai', content: 'Great! How can I help?' },
];

test('seed: sends what chatmem lacks, by stable event ids, then asks with the history inline', async () => {
  const c = fakeClient(1); // chatmem holds the first message already
  const m = seedWith(c);
  const r = await m.buildConversationContext('u', 'c', HISTORY, { name: 'Sumit Pandya', role: '', interests: ['React'] });
  assert.deepEqual(r, { context: 'ctx of u', metadata: { totalMessages: 4, summarized: true, cached: false, estimatedTokens: 42 } });
  const kinds = c.calls.map((x) => x[0]);
  assert.deepEqual(kinds, ['context', 'send', 'send', 'send', 'profileSet', 'context']);
  assert.equal(c.calls[0][2].history, undefined, 'the count request has no history');
  assert.deepEqual(
    c.calls.filter((x) => x[0] === 'send').map((x) => [x[1].eventId, x[1].role]),
    [[seedEventId('u', 'c', 1), 'assistant'], [seedEventId('u', 'c', 2), 'user'], [seedEventId('u', 'c', 3), 'assistant']],
  );
  assert.deepEqual(c.calls[4][2], { name: 'Sumit Pandya', interests: ['React'] });
  const req = c.calls[5][2];
  assert.equal(req.conversationId, 'c');
  assert.equal(req.query, "I'm a full stack developer", 'the newest user message is the query');
  assert.equal(req.history.length, 4);
  assert.equal(req.history[3].role, 'assistant');
  assert.deepEqual(req.profile, { name: 'Sumit Pandya', interests: ['React'] });

  // Next turn: only the new messages; the same profile is not sent again.
  c.calls.length = 0;
  await m.buildConversationContext('u', 'c', [...HISTORY, { role: 'user', content: 'And my name?' }], {
    name: 'Sumit Pandya', interests: ['React'],
  });
  assert.deepEqual(c.calls.map((x) => x[0]), ['send', 'context']);
  assert.equal(c.calls[0][1].eventId, seedEventId('u', 'c', 4));
  assert.deepEqual(await m.getSessionStats(), { activeSessions: 1, cacheEnabled: true });
});

test('seed: a history too large for one request goes without it', async () => {
  const c = fakeClient(0);
  const m = seedWith(c);
  const big = Array.from({ length: 20 }, (_, i) => ({ role: i % 2 ? 'assistant' : 'user', content: 'x'.repeat(60000) }));
  await m.buildConversationContext('u', undefined, big);
  const req = c.calls.at(-1)[2];
  assert.equal(req.history, undefined);
  assert.equal(req.conversationId, 'default');
  assert.equal(c.calls.filter((x) => x[0] === 'send').length, 20);
});

test('seed: extractUserProfile maps the reply profile to the seed shape', async () => {
  const c = fakeClient(0);
  const m = seedWith(c);
  assert.deepEqual(await m.extractUserProfile(HISTORY), { name: 'Sumit Pandya', role: null, interests: [] });
  assert.equal(c.calls[0][2].stored, false);
  assert.equal(c.calls[0][2].history.length, 4);
});

test('a connect that fails rejects with a kafka error, and may be tried again', async () => {
  // A port nobody listens on: refused at once; no retries.
  const cm = new ChatMem({ brokers: '127.0.0.1:1', kafka: { retry: { retries: 0 }, connectionTimeout: 500, logLevel: 0 } });
  await assert.rejects(cm.connect(), (e) => e instanceof ChatMemError && e.code === 'kafka' && /127\.0\.0\.1:1/.test(e.message));
  await assert.rejects(cm.connect(), { code: 'kafka' });
  await cm.close();
});
