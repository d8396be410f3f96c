/* Generated from schemas/context-request.schema.json by scripts/gen-types.mjs
 * (json-schema-to-typescript). Do not edit: run `npm run gen-types`. */

/**
 * 1..128 bytes of [A-Za-z0-9._@-].
 */
export type Id = string;

/**
 * Written by applications. Only request_id and user_id are required. Unknown fields are ignored by chatmem. Lengths in chatmem are counted in UTF-8 bytes; JSON Schema counts characters, so maxLength is a necessary bound only. Strings must not contain U+0000.
 */
export interface ContextRequest {
  /**
   * 1..128 bytes of [A-Za-z0-9._@:-]; the key of the reply.
   */
  request_id: string;
  user_id: Id;
  /**
   * 1..128 bytes of [A-Za-z0-9._@-].
   */
  conversation_id?: string;
  /**
   * A Kafka topic name; defaults to the configured reply topic (context.replies).
   */
  reply_to?: string;
  /**
   * Token budget of the context; defaults to the configuration.
   */
  max_tokens?: number;
  /**
   * Messages kept verbatim; defaults to the configuration.
   */
  recent?: number;
  /**
   * The message the application is about to answer. An empty query is no query.
   */
  query?: string;
  /**
   * Where recall searches: this conversation (session, the default) or every conversation of the user.
   */
  scope?: "session" | "user";
  /**
   * Inline history used instead of the stored messages, oldest first.
   *
   * @maxItems 10000
   */
  history?: {
    role: "user" | "assistant" | "system";
    content: string;
  }[];
  /**
   * What the application knows of the user (as in a profile.set event). Its fields win in this reply; the stored profile, then what the user says of themself in the inline history, fill what it lacks. Nothing is stored: send a profile.set event for that.
   */
  profile?: {
    /**
     * 1..256 UTF-8 bytes.
     */
    name?: string;
    /**
     * 1..256 UTF-8 bytes.
     */
    role?: string;
    /**
     * @maxItems 64
     *
     * Items: 1..256 UTF-8 bytes.
     */
    interests?: string[];
  };
  /**
   * false: the context is built from the request alone (its history and profile); nothing stored is read, and the reply is never degraded. Default true.
   */
  stored?: boolean;
}
