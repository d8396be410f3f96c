// chatmem/seed: a drop-in for the seed application's conversationManager
// (backend/ai/memory/conversationManager.js). An application moves over
// by changing one import and setting CHATMEM_KAFKA_BROKERS:
//
//   import conversationManager from 'chatmem/seed';
//   const { context, metadata } = await conversationManager
//     .buildConversationContext(userId, conversationId, history, userProfile);
//
// The singleton connects on first use with the settings of the
// environment (CHATMEM_KAFKA_BROKERS, CHATMEM_TOPICS_*).
import { ChatMem } from './index.js';
import { ChatMemValidationError } from './errors.js';
import { DEFAULT_CONVERSATION, DEFAULT_MAX_CONTENT_BYTES, seedEventId, sessionKey } from './wire.js';

// A request above this many bytes of JSON goes without its inline
// history (the history's events were sent; the worker then reads the
// stored session). Kafka's default message.max.bytes is about 1 MB.
const MAX_REQUEST_BYTES = 900 * 1024;
// Sessions whose sent-message count this process remembers (LRU).
const MAX_TRACKED_SESSIONS = 100000;
// Sessions getSessionStats() counts at most.
const MAX_ACTIVE_SESSIONS = 1000000;
// The user id of extractUserProfile's requests: they read nothing stored.
const PROFILE_USER = 'chatmem-seed-profile';

/** A Map that forgets its least recently used entries beyond max. */
class Lru {
  constructor(max) {
    this.max = max;
    this.map = new Map();
  }
  get(k) {
    if (!this.map.has(k)) return undefined;
    const v = this.map.get(k);
    this.map.delete(k);
    this.map.set(k, v);
    return v;
  }
  set(k, v) {
    this.map.delete(k);
    this.map.set(k, v);
    if (this.map.size > this.max) this.map.delete(this.map.keys().next().value);
  }
}

// Cuts a string to at most max UTF-8 bytes, on a character boundary.
function cutBytes(s, max) {
  if (Buffer.byteLength(s, 'utf8') <= max) return s;
  let out = Buffer.from(s, 'utf8').subarray(0, max).toString('utf8');
  if (out.endsWith('\ufffd')) out = out.slice(0, -1); // a cut character
  return out;
}

/**
 * The seed's messages as chatmem takes them: role user and system as
 * they are, any other role as assistant (the seed printed every non-user
 * message as "Assistant:"); content as text, without U+0000, lone
 * surrogates replaced, cut to limits.max_content_bytes.
 */
function normalizeHistory(history, maxBytes) {
  if (!Array.isArray(history)) throw new ChatMemValidationError('conversationHistory: must be an array of {role, content}', 'conversationHistory');
  return history.map((m) => {
    const role = m?.role === 'user' || m?.role === 'system' ? m.role : 'assistant';
    const raw = m?.content === undefined || m?.content === null ? '' : String(m.content);
    return { role, content: cutBytes(raw.replaceAll('\u0000', '').toWellFormed(), maxBytes) };
  });
}

// {name, role, interests} with only usable fields; null when empty.
function normalizeProfile(p) {
  if (!p || typeof p !== 'object') return null;
  const out = {};
  for (const k of ['name', 'role']) {
    if (typeof p[k] === 'string' && p[k].trim()) out[k] = cutBytes(p[k].trim(), 256);
  }
  if (Array.isArray(p.interests)) {
    const list = p.interests.filter((s) => typeof s === 'string' && s.trim()).map((s) => cutBytes(s.trim(), 256));
    if (list.length) out.interests = list.slice(0, 64);
  }
  return Object.keys(out).length ? out : null;
}

export class ConversationManager {
  /**
   * options: those of ChatMem (brokers, topics, kafka, ...), defaults from
   * the environment. The singleton (the default export) takes none.
   */
  constructor(options = {}) {
    this.options = options;
    // As the seed's config; null = the fleet's configuration
    // (context.max_tokens, context.recent_verbatim). sessionTTL is the
    // window of getSessionStats().activeSessions.
    this.config = {
      maxTokensPerContext: null,
      recentMessagesVerbatim: null,
      sessionTTL: 3600,
      timeoutMs: 10000,
    };
    this.cm = null;
    this.ready = null;
    this.sentCounts = new Lru(MAX_TRACKED_SESSIONS); // session -> messages known stored or sent
    this.sentProfiles = new Lru(MAX_TRACKED_SESSIONS); // user -> JSON of the last profile sent
    this.built = new Map(); // session -> time of its last context (ms)
    this.locks = new Map(); // session -> tail of its queue of calls
    this.lastAnswered = false;
  }

  /** The connected client, connecting it on first use. */
  client() {
    if (!this.ready) {
      const cm = new ChatMem({ clientId: 'chatmem-seed', ...this.options });
      this.cm = cm;
      this.ready = cm.connect().then(
        () => cm,
        (e) => {
          this.cm = null;
          this.ready = null;
          throw e;
        },
      );
    }
    return this.ready;
  }

  // Runs fn after the calls for the same session before it: the count of
  // messages sent stays exact when one session's calls overlap.
  async serial(key, fn) {
    const before = this.locks.get(key) ?? Promise.resolve();
    let release;
    const mine = new Promise((r) => (release = r));
    const tail = before.then(() => mine);
    this.locks.set(key, tail);
    await before;
    try {
      return await fn();
    } finally {
      release();
      if (this.locks.get(key) === tail) this.locks.delete(key);
    }
  }

  requestOptions() {
    const o = { timeoutMs: this.config.timeoutMs };
    if (this.config.maxTokensPerContext != null) o.maxTokens = this.config.maxTokensPerContext;
    if (this.config.recentMessagesVerbatim != null) o.recent = this.config.recentMessagesVerbatim;
    return o;
  }

  async track(promise) {
    try {
      const r = await promise;
      this.lastAnswered = true;
      return r;
    } catch (e) {
      this.lastAnswered = false;
      throw e;
    }
  }

  /**
   * The seed's call. Sends the history's messages chatmem does not have
   * yet as events (event id "seed-<16 hex of sha256(user:conv)>-<n>" for
   * message n, so a repeat is dropped by ingest), then asks for the
   * context with the history inline (the reply never waits for ingest);
   * the newest user message is the query, userProfile (when given) the
   * request's profile. Returns {context, metadata: {totalMessages,
   * summarized, cached, estimatedTokens}}; estimatedTokens is the
   * context's exact BPE token count.
   */
  async buildConversationContext(userId, conversationId, conversationHistory, userProfile = null) {
    const conv = conversationId || DEFAULT_CONVERSATION;
    const cm = await this.client();
    const maxBytes = cm.settings.maxContentBytes ?? DEFAULT_MAX_CONTENT_BYTES;
    const history = normalizeHistory(conversationHistory ?? [], maxBytes);
    const profile = normalizeProfile(userProfile);
    const key = sessionKey(userId, conv);

    await this.serial(key, () => this.syncSession(cm, userId, conv, key, history));
    if (profile) {
      const json = JSON.stringify(profile);
      if (this.sentProfiles.get(userId) !== json) {
        await cm.profileSet(userId, profile, { conversationId: conv });
        this.sentProfiles.set(userId, json);
      }
    }

    const opts = { ...this.requestOptions(), conversationId: conv, history };
    for (let i = history.length - 1; i >= 0; i--) {
      if (history[i].role === 'user' && history[i].content) {
        opts.query = history[i].content;
        break;
      }
    }
    if (profile) opts.profile = profile;
    // Too large for one Kafka message with its history: without it, the
    // worker reads the stored session (the events just sent may still be
    // on their way through ingest).
    if (Buffer.byteLength(JSON.stringify(history), 'utf8') + 4096 > MAX_REQUEST_BYTES) delete opts.history;

    const reply = await this.track(cm.context(userId, opts));
    this.built.delete(key); // oldest first: getSessionStats stops at the first live one
    this.built.set(key, Date.now());
    if (this.built.size > MAX_ACTIVE_SESSIONS) this.built.delete(this.built.keys().next().value);
    return {
      context: reply.context,
      metadata: {
        totalMessages: history.length,
        summarized: reply.metadata.summarized,
        cached: reply.metadata.cached,
        estimatedTokens: reply.metadata.tokens,
      },
    };
  }

  // Sends history[n..] as message events, n being what chatmem already
  // holds: remembered by this process, else asked (a restarted
  // application neither sends the whole history again nor loses it).
  async syncSession(cm, userId, conv, key, history) {
    let known = this.sentCounts.get(key);
    if (known === undefined) {
      const r = await this.track(cm.context(userId, { conversationId: conv, recent: 0, maxTokens: 1, timeoutMs: this.config.timeoutMs }));
      known = r.metadata.total_messages;
    }
    const sends = [];
    for (let i = known; i < history.length; i++) {
      if (!history[i].content) continue; // an event needs content
      sends.push(
        cm.send({ userId, conversationId: conv, role: history[i].role, content: history[i].content, eventId: seedEventId(userId, conv, i) }),
      );
    }
    await Promise.all(sends);
    this.sentCounts.set(key, Math.max(known, history.length));
  }

  /**
   * The seed's call: {name, role, interests} of the history's user
   * messages, extracted by chatmem (a context request with the history
   * inline and stored: false, so nothing stored is read).
   */
  async extractUserProfile(conversationHistory) {
    const cm = await this.client();
    const history = normalizeHistory(conversationHistory ?? [], cm.settings.maxContentBytes ?? DEFAULT_MAX_CONTENT_BYTES);
    const reply = await this.track(
      cm.context(PROFILE_USER, { history, stored: false, recent: 0, timeoutMs: this.config.timeoutMs }),
    );
    const p = reply.profile ?? {};
    return { name: p.name ?? null, role: p.role ?? null, interests: Array.isArray(p.interests) ? p.interests : [] };
  }

  /**
   * The seed's call: {activeSessions, cacheEnabled}. activeSessions counts
   * the sessions this process built a context for within the last
   * config.sessionTTL seconds (the client talks to Kafka only, not to
   * Redis: other processes' sessions are not counted); cacheEnabled is
   * true while connected and the last request was answered.
   */
  async getSessionStats() {
    const since = Date.now() - this.config.sessionTTL * 1000;
    for (const [k, t] of this.built) {
      if (t >= since) break;
      this.built.delete(k);
    }
    return {
      activeSessions: this.built.size,
      cacheEnabled: Boolean(this.cm && this.cm.state === 'connected' && this.lastAnswered),
    };
  }

  /** Closes the connection; the next call connects again. */
  async close() {
    const cm = this.cm;
    this.cm = null;
    this.ready = null;
    this.lastAnswered = false;
    if (cm) await cm.close();
  }
}

const conversationManager = new ConversationManager();
export default conversationManager;
