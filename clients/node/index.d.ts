// Types of the chatmem client API (src/index.js). The wire shapes are
// generated from the contract's JSON schemas into types/ (npm run
// gen-types); this file is written by hand and imports them.
import type { KafkaConfig } from 'kafkajs';
import type { ContextPrebuilt } from './types/context-prebuilt.js';
import type { ContextReply, ErrorReply, Message, Metadata, Profile, Reply } from './types/context-reply.js';
import type { ChatEvent } from './types/chat-event.js';
import type { ContextRequest } from './types/context-request.js';

export type { ChatEvent, ContextPrebuilt, ContextReply, ContextRequest, ErrorReply, Message, Metadata, Profile, Reply };

/** The wire-contract version this client speaks (= the package version). */
export declare const CONTRACT_VERSION: string;

export type Role = 'user' | 'assistant' | 'system';

export interface Topics {
  /** chat.events (CHATMEM_TOPICS_EVENTS) */
  events: string;
  /** context.requests (CHATMEM_TOPICS_REQUESTS) */
  requests: string;
  /** context.replies (CHATMEM_TOPICS_REPLIES): the instance's reply topic is "<replies>.<instance id>" */
  replies: string;
  /** context.prebuilt (CHATMEM_TOPICS_PREBUILT) */
  prebuilt: string;
}

export interface ChatMemOptions {
  /** "host:port,host:port" or a list; default CHATMEM_KAFKA_BROKERS, else 127.0.0.1:9092. */
  brokers?: string | string[];
  /** A reply topic of the application's (inside the fleet's allow-list); default "<replies>.<instance id>", created on connect and deleted on close. */
  replyTopic?: string;
  /** Passed to kafkajs's Kafka constructor: ssl, sasl, connectionTimeout, retry, logLevel, logCreator... */
  kafka?: Partial<KafkaConfig>;
  /** Topic names; defaults from CHATMEM_TOPICS_*, else the contract's. */
  topics?: Partial<Topics>;
  /** Kafka client id (default "chatmem-node"). */
  clientId?: string;
  /** context() time-out when the call gives none (default 10000 ms). */
  defaultTimeoutMs?: number;
  /** The fleet's limits.max_content_bytes (default 65536): longer content is refused locally. */
  maxContentBytes?: number;
  /** How long a produced message may wait for others to share its batch (default 0: the current event-loop turn). */
  lingerMs?: number;
  /** How long a fetch of the reply topic waits for data (default 500 ms on a broker, 10 ms on the devbroker). */
  fetchMaxWaitMs?: number;
}

export interface HistoryMessage {
  role: Role;
  content: string;
}

/** A profile set by the application; null or absent fields are left out. */
export interface ProfileInput {
  name?: string | null;
  role?: string | null;
  interests?: string[] | null;
}

export interface SendMessage {
  userId: string;
  /** Default "default". */
  conversationId?: string;
  role: Role;
  content: string;
  /** Default: a fresh UUID. A repeated event id is dropped by ingest. */
  eventId?: string;
  /** Milliseconds since the epoch (or a Date); default now. */
  ts?: number | Date;
}

export interface SendResult {
  eventId: string;
}

export interface ContextOptions {
  /** Default "default". */
  conversationId?: string;
  /** The message the application is about to answer (recall). */
  query?: string;
  maxTokens?: number;
  recent?: number;
  /** Inline history, used instead of the stored messages. */
  history?: HistoryMessage[];
  scope?: 'session' | 'user';
  /** Profile fields that win in this reply. */
  profile?: ProfileInput;
  /** false: build from the request alone, read nothing stored. */
  stored?: boolean;
  /** Default: defaultTimeoutMs. */
  timeoutMs?: number;
}

export interface PrebuiltOptions {
  /** Read the topic from its start (default: from its end). */
  fromBeginning?: boolean;
  maxWaitMs?: number;
}

export interface PrebuiltEntry {
  /** "<user_id>:<conversation_id>" */
  key: string;
  userId: string;
  conversationId: string | null;
  /** The latest context of the session; null: a tombstone (the session was deleted). */
  context: ContextPrebuilt | null;
  partition: number;
  /** The Kafka offset (a decimal string). */
  offset: string;
}

export interface ChatMemStats {
  requests: number;
  replies: number;
  /** Replies that matched no pending request (late, or another instance's). */
  unmatched: number;
  pending: number;
}

export declare class ChatMem {
  constructor(options?: ChatMemOptions);
  readonly instanceId: string;
  readonly replyTopic: string;
  connect(): Promise<void>;
  close(): Promise<void>;
  send(message: SendMessage): Promise<SendResult>;
  profileSet(
    userId: string,
    profile: ProfileInput,
    options?: { conversationId?: string; eventId?: string },
  ): Promise<SendResult>;
  deleteSession(userId: string, conversationId: string, options?: { eventId?: string }): Promise<SendResult>;
  deleteUser(userId: string, options?: { eventId?: string }): Promise<SendResult>;
  context(userId: string, options?: ContextOptions): Promise<Reply>;
  prebuilt(options?: PrebuiltOptions): AsyncGenerator<PrebuiltEntry, void, undefined>;
  stats(): ChatMemStats;
}

export declare class ChatMemError extends Error {
  constructor(message: string, code?: string, options?: { cause?: unknown });
  /** 'invalid_argument', 'timeout', 'closed', 'not_connected', 'kafka', 'bad_reply', or an error reply's code. */
  code: string;
}
export declare class ChatMemValidationError extends ChatMemError {
  field?: string;
}
export declare class ChatMemTimeoutError extends ChatMemError {
  requestId: string;
  timeoutMs: number;
}
export declare class ChatMemReplyError extends ChatMemError {
  requestId: string;
}
export declare class ChatMemClosedError extends ChatMemError {}

/** The message key of a session: "<userId>:<conversationId>". */
export declare function sessionKey(userId: string, conversationId?: string): string;
/** The partition librdkafka's default partitioner (and so chatmem's daemons and CLI) picks for a key. */
export declare function partitionFor(key: string | Buffer, partitionCount: number): number;
/** The seed drop-in's event id of message `position` of a session. */
export declare function seedEventId(userId: string, conversationId: string, position: number): string;

export default ChatMem;
