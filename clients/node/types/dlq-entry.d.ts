/* Generated from schemas/dlq-entry.schema.json by scripts/gen-types.mjs
 * (json-schema-to-typescript). Do not edit: run `npm run gen-types`. */

/**
 * A message that failed validation, with where it came from and why. Key and payload are kept as strings when they are valid UTF-8, otherwise base64-encoded (RFC 4648, padded) under key_base64 / payload_base64.
 */
export type DlqEntry = {
  [k: string]: unknown;
} & {
  /**
   * The topic the message was read from.
   */
  topic: string;
  partition: number;
  offset: number;
  /**
   * null when the message had no key.
   */
  key?: string | null;
  key_base64?: Base64;
  payload?: string;
  payload_base64?: Base64;
  /**
   * Why the message was refused.
   */
  error: string;
  /**
   * Present when the key was longer than the entry keeps (1024 bytes): key or key_base64 holds its first bytes only.
   */
  key_truncated?: true;
  /**
   * With key_truncated: the length of the whole key.
   */
  key_bytes?: number;
  /**
   * Present when the payload was longer than the entry keeps (65536 bytes): payload or payload_base64 holds its first bytes only, text cut on a character boundary.
   */
  payload_truncated?: true;
  /**
   * With payload_truncated: the length of the whole payload.
   */
  payload_bytes?: number;
};
export type Base64 = string;
