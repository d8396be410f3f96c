// chatmem: the Node.js client of chatmem's Kafka contract (DESIGN.md):
// send chat events, ask for a context (request/reply correlated by
// request_id on a reply topic of the instance's own), read prebuilt
// contexts. README.md is the user's guide.
import net from 'node:net';
import tls from 'node:tls';
import kafkajs from 'kafkajs';
import { Batcher } from './batcher.js';
import { Producer } from './producer.js';
import {
  ChatMemClosedError,
  ChatMemError,
  ChatMemReplyError,
  ChatMemTimeoutError,
  ChatMemValidationError,
} from './errors.js';
import { TopicReader } from './reader.js';
import { fixedRequestQueue } from './requestqueue.js';
import {
  CONTRACT_VERSION,
  decodeJson,
  encodeMessage,
  encodeProfileSet,
  encodeRequest,
  encodeSessionDelete,
  encodeUserDelete,
  newInstanceId,
  resolveSettings,
  splitSessionKey,
} from './wire.js';

const { Kafka, logLevel } = kafkajs;

// kafkajs's connections without their idle 1 ms timer loop (requestqueue.js).
fixedRequestQueue();

export {
  CONTRACT_VERSION,
  ChatMemClosedError,
  ChatMemError,
  ChatMemReplyError,
  ChatMemTimeoutError,
  ChatMemValidationError,
};
export { partitionFor, seedEventId, sessionKey } from './wire.js';

// How many prebuilt entries an iterator holds before its reader waits.
const PREBUILT_HIGH_WATER = 1000;

// kafkajs's socket factory, with Nagle's algorithm off: requests are small
// and several may be in flight on one connection (the request producer),
// where Nagle would hold a request back until the broker acknowledged the
// one before (up to its delayed-ACK time, tens of milliseconds).
function socketFactory({ host, port, ssl, onConnect }) {
  const socket = ssl
    ? tls.connect({ host, port, ...(net.isIP(host) ? {} : { servername: host }), ...ssl }, onConnect)
    : net.connect({ host, port }, onConnect);
  socket.setKeepAlive(true, 60000);
  socket.setNoDelay(true);
  return socket;
}

function kafkaError(e, what) {
  if (e instanceof ChatMemError) return e;
  return new ChatMemError(`${what}: ${e?.message ?? e}`, 'kafka', { cause: e });
}

/**
 * A client of one chatmem fleet. new ChatMem(options); await connect();
 * send / profileSet / deleteSession / deleteUser / context / prebuilt;
 * await close().
 */
export class ChatMem {
  constructor(options = {}) {
    this.settings = resolveSettings(options);
    this.instanceId = newInstanceId();
    this.replyTopic = this.settings.replyTopic ?? `${this.settings.topics.replies}.${this.instanceId}`;
    this.ownsReplyTopic = this.settings.replyTopic === undefined;
    this.kafka = new Kafka({
      clientId: this.settings.clientId,
      logLevel: logLevel.WARN,
      socketFactory,
      ...(options.kafka ?? {}),
      brokers: options.kafka?.brokers ?? this.settings.brokers,
    });
    this.state = 'new';
    this.pending = new Map(); // request_id -> {resolve, reject, timer}
    this.counter = 0;
    this.iterators = new Set();
    this.adminApi = false;
    this.counts = { requests: 0, replies: 0, unmatched: 0 };
  }

  /**
   * Connects: creates the reply topic when missing (one partition), the
   * producers, and positions the reply reader at the end of the reply
   * topic; a reply to any request sent after connect() resolved is seen.
   */
  connect() {
    if (this.state === 'connected') return Promise.resolve();
    if (this.state === 'connecting') return this.connecting;
    if (this.state !== 'new') return Promise.reject(new ChatMemClosedError());
    this.state = 'connecting';
    this.connecting = this.doConnect().then(
      () => {
        if (this.state === 'connecting') this.state = 'connected';
      },
      async (e) => {
        await this.teardown();
        this.state = 'new';
        throw kafkaError(e, `cannot connect to Kafka at ${this.settings.brokers.join(',')}`);
      },
    );
    return this.connecting;
  }

  async doConnect() {
    const admin = this.kafka.admin();
    this.admin = admin;
    await admin.connect();
    // A cluster whose metadata names no controller among its brokers
    // (the devbroker: librdkafka's mock cluster) has no admin API that
    // kafkajs can reach, and kafkajs cannot get a producer id there
    // either: topics are then auto-created, the producer is not
    // idempotent (ingest's event_id dedupe still drops duplicates).
    const cluster = await admin.describeCluster();
    this.adminApi = cluster.brokers.some((b) => b.nodeId === cluster.controller);
    if (this.adminApi) {
      try {
        await admin.createTopics({
          topics: [{ topic: this.replyTopic, numPartitions: 1 }],
          waitForLeaders: true,
          timeout: 10000,
        });
      } catch (e) {
        // Not allowed to create topics (ACLs): the topic must exist or
        // be auto-created; the reader says so if it cannot be read.
        this.kafka.logger().warn(`chatmem: cannot create reply topic ${this.replyTopic}: ${e.message}`);
      }
    }
    // Events: idempotent where the broker grants a producer id. Requests:
    // not (a request asked twice is answered twice; the second reply
    // matches no pending request).
    const logger = this.kafka.logger();
    this.eventsProducer = new Producer({ kafka: this.kafka, idempotent: true, logger });
    this.requestsProducer = new Producer({ kafka: this.kafka, logger });
    await Promise.all([this.eventsProducer.connect(), this.requestsProducer.connect()]);
    this.events = new Batcher(this.eventsProducer, { lingerMs: this.settings.lingerMs });
    // One batch in flight per producer: under load the next batch gathers
    // behind it, so a request costs a fraction of a Produce request (each
    // costs far more CPU in kafkajs than a message in it).
    this.requests = new Batcher(this.requestsProducer, { lingerMs: this.settings.lingerMs });
    this.reader = new TopicReader({
      kafka: this.kafka,
      topic: this.replyTopic,
      fromBeginning: false,
      maxWaitMs: this.fetchMaxWaitMs(),
      onMessages: (_partition, msgs) => this.onReplies(msgs),
      logger: this.kafka.logger(),
    });
    await this.reader.start();
  }

  // How long a fetch waits for data: fetchMaxWaitMs when given; else
  // 500 ms on a real broker, which answers a waiting fetch as soon as data
  // arrives, and 10 ms (the daemons' fetch.wait.max.ms) on the devbroker,
  // which always waits the whole time.
  fetchMaxWaitMs() {
    return this.settings.fetchMaxWaitMs ?? (this.adminApi ? 500 : 10);
  }

  ensureOpen() {
    if (this.state === 'connected') return;
    if (this.state === 'new' || this.state === 'connecting')
      throw new ChatMemError('not connected: await connect() first', 'not_connected');
    throw new ChatMemClosedError();
  }

  // A reply's key is its request_id (the contract): the pending request
  // is looked up by the key, and only its reply is parsed; a late reply,
  // another instance's or one that is not a reply costs no JSON.parse.
  // A reply without a key is matched by the request_id of its JSON.
  onReplies(msgs) {
    const pending = this.pending;
    for (let i = 0; i < msgs.length; i++) {
      const m = msgs[i];
      let rid;
      let obj;
      if (m.key) {
        rid = m.key.toString('latin1');
      } else {
        obj = decodeJson(m.value);
        if (obj && typeof obj.request_id === 'string') rid = obj.request_id;
      }
      const p = rid !== undefined ? pending.get(rid) : undefined;
      if (!p) {
        // Late (timed out), another instance's on a shared reply topic,
        // or not a reply at all.
        this.counts.unmatched++;
        continue;
      }
      this.counts.replies++;
      pending.delete(rid);
      clearTimeout(p.timer);
      if (m.key) obj = decodeJson(m.value);
      if (!obj || typeof obj !== 'object') p.reject(new ChatMemError(`request ${rid}: unreadable reply`, 'bad_reply'));
      else if (obj.error) p.reject(new ChatMemReplyError(obj.error.code ?? 'error', obj.error.message ?? '', rid));
      else p.resolve(obj);
    }
  }

  /**
   * Sends a chat message event {userId, conversationId?, role, content,
   * eventId?, ts?} keyed "<user>:<conversation>". Resolves {eventId}
   * once Kafka acknowledged it.
   */
  async send(message) {
    const ev = encodeMessage(message, this.settings.maxContentBytes);
    return this.produceEvent(ev);
  }

  /** A profile.set event: {name, role, interests} set by the application (wins over extracted values). */
  async profileSet(userId, profile, options = {}) {
    return this.produceEvent(encodeProfileSet(userId, profile, options));
  }

  /** A session.delete event: chatmem forgets the conversation (and tombstones its prebuilt context). */
  async deleteSession(userId, conversationId, options = {}) {
    return this.produceEvent(encodeSessionDelete(userId, conversationId, options));
  }

  /** A user.delete event: every conversation and the profile of the user. */
  async deleteUser(userId, options = {}) {
    return this.produceEvent(encodeUserDelete(userId, options));
  }

  async produceEvent({ key, value, eventId }) {
    this.ensureOpen();
    try {
      await this.events.send(this.settings.topics.events, key, value);
    } catch (e) {
      throw kafkaError(e, `cannot send event ${eventId}`);
    }
    return { eventId };
  }

  /**
   * Asks for the context of a session. options: {conversationId, query,
   * maxTokens, recent, history, scope, profile, stored, timeoutMs}.
   * Resolves to the reply (the wire shape, snake_case); rejects with
   * ChatMemReplyError (an error reply), ChatMemTimeoutError,
   * ChatMemValidationError or ChatMemClosedError.
   */
  context(userId, options = {}) {
    try {
      const requestId = `${this.instanceId}-${++this.counter}`;
      const { key, value } = encodeRequest(requestId, this.replyTopic, userId, options, this.settings.maxContentBytes);
      const timeoutMs = options?.timeoutMs ?? this.settings.defaultTimeoutMs;
      if (!Number.isFinite(timeoutMs) || timeoutMs <= 0)
        throw new ChatMemValidationError('timeoutMs: must be a positive number', 'timeoutMs');
      this.ensureOpen();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          this.pending.delete(requestId);
          reject(new ChatMemTimeoutError(`request ${requestId}: no reply within ${timeoutMs} ms`, requestId, timeoutMs));
        }, timeoutMs);
        this.pending.set(requestId, { resolve, reject, timer });
        this.counts.requests++;
        this.requests.send(this.settings.topics.requests, key, value).catch((e) => {
          const p = this.pending.get(requestId);
          if (!p) return;
          this.pending.delete(requestId);
          clearTimeout(p.timer);
          reject(kafkaError(e, `cannot send request ${requestId}`));
        });
      });
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * An async iterator over context.prebuilt: {key, userId,
   * conversationId, context (the reply shape without request_id, or null
   * for a tombstone: the session was deleted), partition, offset}. From
   * the end of the topic, or its start with fromBeginning. Leaving the
   * loop (break, return, throw) stops its reader.
   */
  prebuilt({ fromBeginning = false, maxWaitMs } = {}) {
    this.ensureOpen();
    return this.prebuiltIterator(fromBeginning, maxWaitMs ?? this.fetchMaxWaitMs());
  }

  async *prebuiltIterator(fromBeginning, maxWaitMs) {
    const queue = [];
    let wake = null;
    let drained = [];
    const it = { stopped: false, stop: () => {} };
    const reader = new TopicReader({
      kafka: this.kafka,
      topic: this.settings.topics.prebuilt,
      fromBeginning,
      maxWaitMs,
      logger: this.kafka.logger(),
      onMessages: async (partition, msgs) => {
        for (const m of msgs) {
          const key = m.key ? m.key.toString('utf8') : '';
          const context = decodeJson(m.value);
          if (context === undefined) continue; // not JSON: not chatmem's
          const { userId, conversationId } = splitSessionKey(key);
          queue.push({ key, userId, conversationId, context, partition, offset: String(m.offset) });
        }
        if (wake) wake();
        while (queue.length > PREBUILT_HIGH_WATER && !it.stopped) await new Promise((r) => drained.push(r));
      },
    });
    it.stop = () => {
      it.stopped = true;
      if (wake) wake();
      drained.forEach((r) => r());
      drained = [];
    };
    this.iterators.add(it);
    try {
      await reader.start();
      for (;;) {
        while (queue.length === 0 && !it.stopped) await new Promise((r) => (wake = r));
        wake = null;
        if (it.stopped) return;
        const item = queue.shift();
        if (queue.length <= PREBUILT_HIGH_WATER / 2 && drained.length) {
          drained.forEach((r) => r());
          drained = [];
        }
        yield item;
      }
    } finally {
      it.stop();
      this.iterators.delete(it);
      await reader.stop();
    }
  }

  /** Counters of this instance: requests sent, replies matched, replies matching no pending request, pending requests. */
  stats() {
    return { ...this.counts, pending: this.pending.size };
  }

  /**
   * Closes: pending context() calls reject with ChatMemClosedError,
   * prebuilt iterators end, events already given to send() are flushed,
   * a generated reply topic is deleted (best-effort). Idempotent.
   */
  close() {
    if (this.closing) return this.closing;
    const wasConnecting = this.state === 'connecting' ? this.connecting : null;
    this.state = 'closing';
    this.closing = (async () => {
      if (wasConnecting) await wasConnecting.catch(() => {});
      await this.teardown();
      this.state = 'closed';
    })();
    return this.closing;
  }

  async teardown() {
    const closed = new ChatMemClosedError();
    for (const [, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(closed);
    }
    this.pending.clear();
    for (const it of this.iterators) it.stop();
    this.requests?.abort(closed);
    if (this.events) await this.events.drain();
    if (this.reader) await this.reader.stop();
    if (this.admin && this.adminApi && this.ownsReplyTopic) {
      await this.admin.deleteTopics({ topics: [this.replyTopic], timeout: 5000 }).catch(() => {});
    }
    await Promise.all(
      [this.eventsProducer, this.requestsProducer, this.admin].filter(Boolean).map((c) => c.disconnect().catch(() => {})),
    );
    this.eventsProducer = this.requestsProducer = this.admin = this.reader = null;
    this.events = this.requests = null;
  }
}

export default ChatMem;
