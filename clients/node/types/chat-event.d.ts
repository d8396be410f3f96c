/* Generated from schemas/chat-event.schema.json by scripts/gen-types.mjs
 * (json-schema-to-typescript). Do not edit: run `npm run gen-types`. */

/**
 * Written by applications, keyed by <user_id>:<conversation_id>. Unknown fields are ignored by chatmem (forward compatibility). Lengths in chatmem are counted in UTF-8 bytes; JSON Schema counts characters, so maxLength is a necessary bound only. Strings must not contain U+0000.
 */
export type ChatEvent = {
  /**
   * Defaults to message when absent.
   */
  type?: "message" | "profile.set" | "session.delete" | "user.delete";
  /**
   * Unique per event, chosen by the producer; used to drop duplicates.
   */
  event_id: string;
  user_id: Id;
  /**
   * 1..128 bytes of [A-Za-z0-9._@-].
   */
  conversation_id?: string;
  role?: Role;
  /**
   * At most limits.max_content_bytes UTF-8 bytes (default 65536); not empty.
   */
  content?: string;
  /**
   * Milliseconds since the epoch.
   */
  ts?: number;
  /**
   * Set by the application; wins over extracted values.
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
};
/**
 * 1..128 bytes of [A-Za-z0-9._@-].
 */
export type Id = string;
export type Role = "user" | "assistant" | "system";
