// Type-checked by `tsc --noEmit -p test/tsconfig.json` (never run): the
// API as an application written in TypeScript uses it, through the
// package's own exports map ("chatmem", "chatmem/seed").
import ChatMemDefault, {
  CONTRACT_VERSION,
  ChatMem,
  ChatMemError,
  ChatMemReplyError,
  ChatMemTimeoutError,
  type ContextPrebuilt,
  type PrebuiltEntry,
  type Reply,
  type ContextRequest,
  type ChatEvent,
} from 'chatmem';
import conversationManager, { ConversationManager, type ConversationContext } from 'chatmem/seed';

export async function app(): Promise<void> {
  const cm: ChatMem = new ChatMemDefault({ brokers: '127.0.0.1:9092', kafka: { connectionTimeout: 3000 } });
  await cm.connect();
  const sent: { eventId: string } = await cm.send({ userId: 'u1', role: 'user', content: "Hi, I'm Sumit" });
  await cm.profileSet('u1', { name: 'Sumit', interests: ['React'] }, { conversationId: 'c1' });
  await cm.deleteSession('u1', 'c1');
  await cm.deleteUser('u1');
  const reply: Reply = await cm.context('u1', {
    conversationId: 'default',
    query: 'what is my name?',
    maxTokens: 500,
    recent: 3,
    history: [{ role: 'user', content: 'hello' }],
    scope: 'user',
    profile: { name: 'Sumit Pandya', role: null },
    stored: false,
    timeoutMs: 2000,
  });
  const tokens: number = reply.metadata.tokens;
  const name: string | undefined = reply.profile.name;
  const recent: { role: 'user' | 'assistant' | 'system'; content: string }[] = reply.recent;
  console.log(CONTRACT_VERSION, sent.eventId, tokens, name, recent.length, cm.stats().pending);
  try {
    await cm.context('u1', { timeoutMs: 1 });
  } catch (e) {
    if (e instanceof ChatMemReplyError) console.log(e.code, e.requestId);
    else if (e instanceof ChatMemTimeoutError) console.log(e.timeoutMs);
    else if (e instanceof ChatMemError) console.log(e.code);
  }
  for await (const entry of cm.prebuilt({ fromBeginning: true })) {
    const e: PrebuiltEntry = entry;
    const ctx: ContextPrebuilt | null = e.context;
    if (ctx === null) console.log('deleted', e.key);
    else console.log(e.userId, e.conversationId, ctx.metadata.total_messages, e.offset.length);
    break;
  }
  await cm.close();

  const req: ContextRequest = { request_id: 'r-1', user_id: 'u1', history: [{ role: 'user', content: 'x' }] };
  const ev: ChatEvent = { event_id: 'e-1', user_id: 'u1', role: 'user', content: 'x' };
  console.log(req.request_id, ev.event_id);

  const built: ConversationContext = await conversationManager.buildConversationContext(
    'u1',
    'default',
    [{ role: 'user', content: "Hi, I'm Sumit Pandya" }],
    { name: 'Sumit Pandya', role: 'developer', interests: ['React'] },
  );
  const est: number = built.metadata.estimatedTokens;
  const p = await conversationManager.extractUserProfile([{ role: 'user', content: 'hi' }]);
  const pname: string | null = p.name;
  const stats = await conversationManager.getSessionStats();
  const n: number = stats.activeSessions;
  const own = new ConversationManager({ brokers: ['127.0.0.1:9092'] });
  own.config.maxTokensPerContext = 1000;
  console.log(est, pname, n, built.context.length);
  await own.close();
  await conversationManager.close();
}

// @ts-expect-error: role must be user, assistant or system
void ({ userId: 'u', role: 'bot', content: 'x' } satisfies Parameters<ChatMem['send']>[0]);
