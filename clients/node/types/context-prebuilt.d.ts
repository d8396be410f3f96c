/* Generated from schemas/context-prebuilt.schema.json by scripts/gen-types.mjs
 * (json-schema-to-typescript). Do not edit: run `npm run gen-types`. */

/**
 * 1..128 bytes of [A-Za-z0-9._@-].
 */
export type Id = string;

/**
 * The reply shape without request_id: the latest context of a changed session.
 */
export interface ContextPrebuilt {
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
   * Microseconds spent building the reply.
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
