// The wire contract, without Kafka: settings from the environment, the
// local checks, the JSON of events and requests with their message keys,
// the partitioner and the ids the client derives. Pure functions, tested
// without a broker (test/unit.test.js).
import { createHash, randomBytes } from 'node:crypto';
import { ChatMemValidationError } from './errors.js';

/** The wire-contract version this client speaks (= the package version). */
export const CONTRACT_VERSION = '1.0.0';

export const DEFAULT_BROKERS = '127.0.0.1:9092';
export const DEFAULT_TOPICS = Object.freeze({
  events: 'chat.events',
  requests: 'context.requests',
  replies: 'context.replies',
  prebuilt: 'context.prebuilt',
});
export const DEFAULT_CONVERSATION = 'default';
/** limits.max_content_bytes of the contract's default configuration. */
export const DEFAULT_MAX_CONTENT_BYTES = 65536;
const PROFILE_STR_MAX = 256;
const PROFILE_INTERESTS_MAX = 64;
const HISTORY_MAX = 10000;

const ID_RE = /^[A-Za-z0-9._@-]{1,128}$/;
const EVENT_ID_RE = /^[A-Za-z0-9._@:-]{1,128}$/;
const TOPIC_RE = /^[A-Za-z0-9._-]{1,249}$/;
const ROLES = new Set(['user', 'assistant', 'system']);
const SCOPES = new Set(['session', 'user']);

/** Splits "host:port,host:port" (or takes an array) into broker addresses. */
export function parseBrokers(brokers) {
  const list = Array.isArray(brokers) ? brokers : String(brokers).split(',');
  const out = list.map((b) => String(b).trim()).filter(Boolean);
  if (out.length === 0) throw new ChatMemValidationError('brokers: no broker address given', 'brokers');
  return out;
}

/**
 * The settings of a client: options win, then the environment variables
 * the daemons read (CHATMEM_KAFKA_BROKERS, CHATMEM_TOPICS_EVENTS,
 * _REQUESTS, _REPLIES, _PREBUILT), then the contract's defaults.
 */
export function resolveSettings(options = {}, env = process.env) {
  const topics = {
    events: options.topics?.events ?? env.CHATMEM_TOPICS_EVENTS ?? DEFAULT_TOPICS.events,
    requests: options.topics?.requests ?? env.CHATMEM_TOPICS_REQUESTS ?? DEFAULT_TOPICS.requests,
    replies: options.topics?.replies ?? env.CHATMEM_TOPICS_REPLIES ?? DEFAULT_TOPICS.replies,
    prebuilt: options.topics?.prebuilt ?? env.CHATMEM_TOPICS_PREBUILT ?? DEFAULT_TOPICS.prebuilt,
  };
  for (const [k, t] of Object.entries(topics)) checkTopic(t, `topics.${k}`);
  if (options.replyTopic !== undefined) checkTopic(options.replyTopic, 'replyTopic');
  return {
    brokers: parseBrokers(options.brokers ?? env.CHATMEM_KAFKA_BROKERS ?? DEFAULT_BROKERS),
    topics,
    replyTopic: options.replyTopic,
    clientId: options.clientId ?? 'chatmem-node',
    defaultTimeoutMs: positiveInt(options.defaultTimeoutMs ?? 10000, 'defaultTimeoutMs'),
    maxContentBytes: positiveInt(options.maxContentBytes ?? DEFAULT_MAX_CONTENT_BYTES, 'maxContentBytes'),
    lingerMs: nonNegativeInt(options.lingerMs ?? 0, 'lingerMs'),
    fetchMaxWaitMs: options.fetchMaxWaitMs === undefined ? undefined : positiveInt(options.fetchMaxWaitMs, 'fetchMaxWaitMs'),
  };
}

function positiveInt(v, field) {
  if (!Number.isSafeInteger(v) || v < 1) throw new ChatMemValidationError(`${field}: must be a positive integer`, field);
  return v;
}

function nonNegativeInt(v, field) {
  if (!Number.isSafeInteger(v) || v < 0) throw new ChatMemValidationError(`${field}: must be a non-negative integer`, field);
  return v;
}

export function checkTopic(t, field) {
  if (typeof t !== 'string' || !TOPIC_RE.test(t) || t === '.' || t === '..')
    throw new ChatMemValidationError(`${field}: not a Kafka topic name: ${JSON.stringify(t)}`, field);
  return t;
}

/** userId / conversationId: 1..128 bytes of [A-Za-z0-9._@-]. */
export function checkId(v, field) {
  if (typeof v !== 'string' || !ID_RE.test(v))
    throw new ChatMemValidationError(`${field}: must be 1..128 characters of [A-Za-z0-9._@-], got ${describe(v)}`, field);
  return v;
}

export function checkEventId(v, field = 'eventId') {
  if (typeof v !== 'string' || !EVENT_ID_RE.test(v))
    throw new ChatMemValidationError(`${field}: must be 1..128 characters of [A-Za-z0-9._@:-], got ${describe(v)}`, field);
  return v;
}

export function checkRole(v, field = 'role') {
  if (!ROLES.has(v)) throw new ChatMemValidationError(`${field}: must be user, assistant or system, got ${describe(v)}`, field);
  return v;
}

/** Text chatmem accepts: a well-formed string without U+0000. */
function checkText(v, field, { nonEmpty = false, maxBytes = Infinity } = {}) {
  if (typeof v !== 'string') throw new ChatMemValidationError(`${field}: must be a string, got ${describe(v)}`, field);
  if (nonEmpty && v.length === 0) throw new ChatMemValidationError(`${field}: must not be empty`, field);
  if (v.includes('\u0000')) throw new ChatMemValidationError(`${field}: must not contain U+0000`, field);
  if (!v.isWellFormed()) throw new ChatMemValidationError(`${field}: holds a lone surrogate (not valid UTF-16)`, field);
  if (maxBytes !== Infinity && Buffer.byteLength(v, 'utf8') > maxBytes)
    throw new ChatMemValidationError(`${field}: ${Buffer.byteLength(v, 'utf8')} bytes is over the limit of ${maxBytes}`, field);
  return v;
}

function describe(v) {
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v);
  return v === null ? 'null' : typeof v;
}

/** The message key of a session: "<user_id>:<conversation_id>". */
export function sessionKey(userId, conversationId = DEFAULT_CONVERSATION) {
  return `${userId}:${conversationId}`;
}

/** Splits a session key at its first ':' (ids hold no ':'). */
export function splitSessionKey(key) {
  const i = key.indexOf(':');
  if (i < 0) return { userId: key, conversationId: null };
  return { userId: key.slice(0, i), conversationId: key.slice(i + 1) };
}

export function newEventId() {
  return globalThis.crypto.randomUUID();
}

/**
 * A chat message event. Returns {key, value, eventId}; value is the JSON
 * text. Throws ChatMemValidationError before anything is produced.
 */
export function encodeMessage(msg, maxContentBytes = DEFAULT_MAX_CONTENT_BYTES) {
  if (msg === null || typeof msg !== 'object') throw new ChatMemValidationError('send: the message must be an object', 'message');
  const userId = checkId(msg.userId, 'userId');
  const conversationId = checkId(msg.conversationId ?? DEFAULT_CONVERSATION, 'conversationId');
  const role = checkRole(msg.role);
  const content = checkText(msg.content, 'content', { nonEmpty: true, maxBytes: maxContentBytes });
  const eventId = msg.eventId === undefined ? newEventId() : checkEventId(msg.eventId);
  const ts = msg.ts === undefined ? Date.now() : msg.ts instanceof Date ? msg.ts.getTime() : msg.ts;
  if (!Number.isSafeInteger(ts) || ts < 0) throw new ChatMemValidationError('ts: must be milliseconds since the epoch (a non-negative integer) or a Date', 'ts');
  const ev = { type: 'message', event_id: eventId, user_id: userId, conversation_id: conversationId, role, content, ts };
  return { key: sessionKey(userId, conversationId), value: JSON.stringify(ev), eventId };
}

/** The wire profile {name?, role?, interests?} of {name, role, interests}: unset (null/undefined) fields are left out. */
export function encodeProfile(profile, field = 'profile') {
  if (profile === null || typeof profile !== 'object' || Array.isArray(profile))
    throw new ChatMemValidationError(`${field}: must be an object {name, role, interests}`, field);
  const out = {};
  for (const k of ['name', 'role']) {
    if (profile[k] === undefined || profile[k] === null) continue;
    out[k] = checkText(profile[k], `${field}.${k}`, { nonEmpty: true, maxBytes: PROFILE_STR_MAX });
  }
  if (profile.interests !== undefined && profile.interests !== null) {
    if (!Array.isArray(profile.interests)) throw new ChatMemValidationError(`${field}.interests: must be an array of strings`, `${field}.interests`);
    if (profile.interests.length > PROFILE_INTERESTS_MAX)
      throw new ChatMemValidationError(`${field}.interests: at most ${PROFILE_INTERESTS_MAX} entries`, `${field}.interests`);
    out.interests = profile.interests.map((s, i) =>
      checkText(s, `${field}.interests[${i}]`, { nonEmpty: true, maxBytes: PROFILE_STR_MAX }),
    );
  }
  return out;
}

/** A profile.set event, keyed by the session it names (conversation "default" unless given). */
export function encodeProfileSet(userId, profile, { conversationId, eventId } = {}) {
  checkId(userId, 'userId');
  const conv = checkId(conversationId ?? DEFAULT_CONVERSATION, 'conversationId');
  const id = eventId === undefined ? newEventId() : checkEventId(eventId);
  const ev = { type: 'profile.set', event_id: id, user_id: userId, conversation_id: conv, profile: encodeProfile(profile) };
  return { key: sessionKey(userId, conv), value: JSON.stringify(ev), eventId: id };
}

/** A session.delete event: forget the conversation. */
export function encodeSessionDelete(userId, conversationId, { eventId } = {}) {
  checkId(userId, 'userId');
  checkId(conversationId, 'conversationId');
  const id = eventId === undefined ? newEventId() : checkEventId(eventId);
  const ev = { type: 'session.delete', event_id: id, user_id: userId, conversation_id: conversationId };
  return { key: sessionKey(userId, conversationId), value: JSON.stringify(ev), eventId: id };
}

/** A user.delete event: forget every conversation and the profile. Keyed by "<user>:default". */
export function encodeUserDelete(userId, { eventId } = {}) {
  checkId(userId, 'userId');
  const id = eventId === undefined ? newEventId() : checkEventId(eventId);
  const ev = { type: 'user.delete', event_id: id, user_id: userId };
  return { key: sessionKey(userId, DEFAULT_CONVERSATION), value: JSON.stringify(ev), eventId: id };
}

/** History items {role, content}, checked and copied (other fields dropped). */
export function encodeHistory(history, maxContentBytes = DEFAULT_MAX_CONTENT_BYTES, field = 'history') {
  if (!Array.isArray(history)) throw new ChatMemValidationError(`${field}: must be an array of {role, content}`, field);
  if (history.length > HISTORY_MAX) throw new ChatMemValidationError(`${field}: at most ${HISTORY_MAX} messages`, field);
  return history.map((m, i) => {
    if (m === null || typeof m !== 'object') throw new ChatMemValidationError(`${field}[${i}]: must be an object {role, content}`, `${field}[${i}]`);
    return {
      role: checkRole(m.role, `${field}[${i}].role`),
      content: checkText(m.content, `${field}[${i}].content`, { maxBytes: maxContentBytes }),
    };
  });
}

/**
 * A context request. opts: {conversationId, query, maxTokens, recent,
 * history, scope, profile, stored}. Ids, roles and types are checked
 * here; the ranges of numbers are the worker's to judge (it answers
 * invalid_request). Returns {key, value, request} (request: the object).
 */
export function encodeRequest(requestId, replyTo, userId, opts = {}, maxContentBytes = DEFAULT_MAX_CONTENT_BYTES) {
  checkEventId(requestId, 'requestId');
  checkId(userId, 'userId');
  if (opts === null || typeof opts !== 'object') throw new ChatMemValidationError('context: options must be an object', 'options');
  const conv = checkId(opts.conversationId ?? DEFAULT_CONVERSATION, 'conversationId');
  const req = { request_id: requestId, user_id: userId, conversation_id: conv, reply_to: replyTo };
  for (const [opt, wire] of [['maxTokens', 'max_tokens'], ['recent', 'recent']]) {
    if (opts[opt] === undefined) continue;
    if (!Number.isSafeInteger(opts[opt])) throw new ChatMemValidationError(`${opt}: must be an integer`, opt);
    req[wire] = opts[opt];
  }
  if (opts.query !== undefined) req.query = checkText(opts.query, 'query', { maxBytes: maxContentBytes });
  if (opts.scope !== undefined) {
    if (!SCOPES.has(opts.scope)) throw new ChatMemValidationError(`scope: must be session or user, got ${describe(opts.scope)}`, 'scope');
    req.scope = opts.scope;
  }
  if (opts.history !== undefined) req.history = encodeHistory(opts.history, maxContentBytes);
  if (opts.profile !== undefined && opts.profile !== null) req.profile = encodeProfile(opts.profile);
  if (opts.stored !== undefined) {
    if (typeof opts.stored !== 'boolean') throw new ChatMemValidationError('stored: must be a boolean', 'stored');
    req.stored = opts.stored;
  }
  return { key: sessionKey(userId, conv), value: JSON.stringify(req), request: req };
}

/** A fresh instance id: 12 hex digits (part of the reply topic and the request ids). */
export function newInstanceId() {
  return randomBytes(6).toString('hex');
}

/**
 * The seed drop-in's event id of message number `position` (0-based) of
 * a session's history: "seed-<16 hex of sha256(user:conv)>-<position>".
 * Stable across processes, so a message sent twice is dropped by ingest.
 */
export function seedEventId(userId, conversationId, position) {
  const h = createHash('sha256').update(sessionKey(userId, conversationId)).digest('hex').slice(0, 16);
  return `seed-${h}-${position}`;
}

/**
 * A table-driven reflected CRC of 32 bits with the (reversed) polynomial
 * poly: crc(buf, start = 0, end = buf.length) is the unsigned CRC of
 * buf[start, end); crc.table is its byte table.
 */
export function crcFunction(poly) {
  const t = new Int32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? poly ^ (c >>> 1) : c >>> 1;
    t[n] = c;
  }
  const crc = (buf, start = 0, end = buf.length) => {
    let c = -1;
    for (let i = start; i < end; i++) c = t[(c ^ buf[i]) & 0xff] ^ (c >>> 8);
    return (c ^ -1) >>> 0;
  };
  crc.table = t;
  return crc;
}

// CRC-32 (IEEE 802.3, as zlib and librdkafka's rd_crc32).
export const crc32 = crcFunction(0xedb88320);
const CRC_TABLE = crc32.table;

/**
 * The partition of a keyed message, as librdkafka's default partitioner
 * (consistent_random) chooses it: crc32(key) % partitions. So the C
 * daemons and CLI and this client put one session on one partition.
 * Unkeyed messages go to a random partition.
 */
export function partitionFor(key, partitionCount) {
  if (key === null || key === undefined || key.length === 0) return Math.floor(Math.random() * partitionCount);
  if (Buffer.isBuffer(key)) return crc32(key) % partitionCount;
  const str = String(key);
  // An ASCII key (every chatmem key: ids are ASCII) is its own UTF-8: no
  // Buffer per message.
  let c = -1;
  for (let i = 0; i < str.length; i++) {
    const ch = str.charCodeAt(i);
    if (ch >= 0x80) return crc32(Buffer.from(str, 'utf8')) % partitionCount;
    c = CRC_TABLE[(c ^ ch) & 0xff] ^ (c >>> 8);
  }
  return ((c ^ -1) >>> 0) % partitionCount;
}

/** The reply object of a reply message's value, or null when it is not JSON. */
export function decodeJson(value) {
  if (value === null || value === undefined) return null;
  try {
    return JSON.parse(value.toString('utf8'));
  } catch {
    return undefined;
  }
}
