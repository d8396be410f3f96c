/* Generated from schemas/context-reply.schema.json by scripts/gen-types.mjs
 * (json-schema-to-typescript). Do not edit: run `npm run gen-types`. */

/**
 * Exactly one reply per request with a readable request_id: the context, or an error.
 */
export type ContextReply = Reply | ErrorReply;
/**
 * 1..128 bytes of [A-Za-z0-9._@:-].
 */
export type RequestId = string;
/**
 * 1..128 bytes of [A-Za-z0-9._@-].
 */
export type Id = string;

/**
 * The context for the session named in the request.
 */
export interface Reply {
  request_id: RequestId;
  user_id: Id;
  conversation_id: Id;
  /**
   * The context text (profile, interests, summary, recent messages).
   */
  context: string;
  profile: Profile;
  /**
   * The running summary as kept in the context; "" when none.
   */
  summary: string;
  /**
   * Messages kept verbatim, oldest first.
   */
  recent: Message[];
  metadata: Metadata;
}
/**
 * What is known about the user: name and role only when known; interests always, possibly empty.
 */
export interface Profile {
  name?: string;
  role?: string;
  interests: string[];
}
export interface Message {
  role: "user" | "assistant" | "system";
  content: string;
}
export interface Metadata {
  /**
   * Messages ever stored in the session.
   */
  total_messages: number;
  /**
   * Whether older messages are folded into the summary.
   */
  summarized: boolean;
  /**
   * Whether the reply came from the in-process cache.
   */
  cached: boolean;
  /**
   * Tokens of context, never more than the request's max_tokens.
   */
  tokens: number;
  /**
   * Tokens the whole history would take.
   */
  full_history_tokens: number;
  /**
   * Built without Redis (inline history or cache).
   */
  degraded: boolean;
  /**
   * Microseconds from the request being taken from Kafka to its reply built, the wait for Redis included: within context.deadline_ms.
   */
  build_us: number;
  /**
   * Earlier messages included for the query (Relevant Earlier Messages).
   */
  recalled?: number;
  /**
   * Microseconds spent recalling them.
   */
  recall_us?: number;
}
/**
 * The reply to a bad request. request_id is absent only when it could not be read.
 */
export interface ErrorReply {
  request_id?: RequestId;
  error: {
    /**
     * Machine-readable, e.g. invalid_request.
     */
    code: string;
    /**
     * One line naming the field and the reason.
     */
    message: string;
  };
}
