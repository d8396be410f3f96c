// The seed README's "Mock Conversation Test" and "Load Testing" snippets
// (test/seed-snippets/, verbatim but for the import) through the drop-in
// chatmem/seed, against the fleet of tests/test_e2e_client_node.sh; their
// console output is captured and asserted.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { format } from 'node:util';
import conversationManager from 'chatmem/seed';

after(() => conversationManager.close());

// Runs a snippet module and returns the lines it logged.
async function run(path) {
  const lines = [];
  const log = console.log;
  console.log = (...args) => lines.push(...format(...args).split('\n'));
  try {
    await import(path);
  } finally {
    console.log = log;
  }
  log(lines.map((l) => `    | ${l}`).join('\n'));
  return lines;
}

test('the seed README: Mock Conversation Test', { timeout: 30000 }, async () => {
  const lines = await run('./seed-snippets/mock-conversation.mjs');
  const i = lines.findIndex((l) => l.startsWith('Context: '));
  assert.ok(i >= 0, 'a Context: line');
  assert.match(lines[i], /^Context: User Profile: Sumit Pandya\b/, 'the profile name is known');
  assert.ok(lines.includes('User: Do you remember my name?'), 'the newest message is in the context');
  const tokens = lines.find((l) => l.startsWith('Tokens saved: '));
  assert.match(tokens, /^Tokens saved: [1-9][0-9]* \/ 800$/);
  assert.match(lines.find((l) => l.startsWith('Reduction: ')) ?? '', /^Reduction: -?[0-9]+\.[0-9]%$/, 'the reduction, as a percentage');
});

test('the seed README: Load Testing (1000 concurrent users)', { timeout: 60000 }, async () => {
  const lines = await run('./seed-snippets/load-testing.mjs');
  assert.ok(lines.some((l) => /^1000 users processed in [0-9]+ms$/.test(l)), '1000 users processed');
  assert.ok(lines.some((l) => /^Average: [0-9.]+ms per user$/.test(l)));
  const stats = await conversationManager.getSessionStats();
  assert.equal(stats.activeSessions, 1001, 'test-user and user-0..user-999');
  assert.equal(stats.cacheEnabled, true);
});

test('the seed: extractUserProfile reads the history alone', { timeout: 30000 }, async () => {
  const profile = await conversationManager.extractUserProfile([
    { role: 'user', content: "Hi, I'm Sumit Pandya" },
    { role: 'assistant', content: 'Nice to meet you!' },
    { role: 'user', content: "I'm a full stack developer" },
  ]);
  assert.equal(profile.name, 'Sumit Pandya');
  assert.equal(profile.role, 'full stack developer');
  assert.ok(Array.isArray(profile.interests));
  // Nothing stored was read: test-user's stored session is not in it.
  const none = await conversationManager.extractUserProfile([{ role: 'user', content: 'hello' }]);
  assert.deepEqual(none, { name: null, role: null, interests: [] });
});

test('the seed: a second build of a session sends only the new messages', { timeout: 30000 }, async () => {
  // What test-user's first build sent is stored once each (ingest's
  // dedupe would drop a repeat anyway); a longer history adds its tail.
  const history = [
    { role: 'user', content: "Hi, I'm Sumit Pandya" },
    { role: 'assistant', content: 'Nice to meet you!' },
    { role: 'user', content: "I'm a full stack developer" },
    { role: 'assistant', content: 'Great! How can I help?' },
    { role: 'user', content: 'Do you remember my name?' },
    { role: 'assistant', content: 'Yes, you are Sumit Pandya.' },
    { role: 'user', content: 'What did I say I work as?' },
  ];
  const r = await conversationManager.buildConversationContext('test-user', 'test-conversation', history);
  assert.equal(r.metadata.totalMessages, 7);
  assert.match(r.context, /User: What did I say I work as\?/);
  // Another process (a new manager) asks chatmem how many it holds: 7
  // once ingest has them all, and then sends nothing.
  const { ConversationManager } = await import('chatmem/seed');
  const other = new ConversationManager();
  try {
    const cm = await other.client();
    let stored = 0;
    for (let i = 0; i < 200 && stored < 7; i++) {
      stored = (await cm.context('test-user', { conversationId: 'test-conversation' })).metadata.total_messages;
      if (stored < 7) await new Promise((res) => setTimeout(res, 50));
    }
    assert.equal(stored, 7, 'each message stored once');
    const sent = [];
    const send = cm.send.bind(cm);
    cm.send = (m) => (sent.push(m), send(m));
    await other.buildConversationContext('test-user', 'test-conversation', history);
    assert.equal(sent.length, 0, 'a restarted application sends nothing chatmem has');
  } finally {
    await other.close();
  }
});
