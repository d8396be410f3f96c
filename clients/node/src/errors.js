// The errors the client throws or rejects with. Every one is a
// ChatMemError with a machine-readable .code:
//   ChatMemValidationError  'invalid_argument'  rejected locally, nothing sent
//   ChatMemTimeoutError     'timeout'           no reply within timeoutMs
//   ChatMemReplyError       the reply's code    the worker answered with an
//                                               error object (e.g.
//                                               'invalid_request')
//   ChatMemClosedError      'closed'            the client is closed (or
//                                               closing) or not connected
//   ChatMemError            'kafka'             Kafka failed (cause: the
//                                               kafkajs error)
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
// kafkajs's table of Kafka's error codes (names, texts, retriable).
const { createErrorFromCode } = require('kafkajs/src/protocol/error');

export class ChatMemError extends Error {
  constructor(message, code = 'error', options = undefined) {
    super(message, options);
    this.name = 'ChatMemError';
    this.code = code;
  }
}

export class ChatMemValidationError extends ChatMemError {
  constructor(message, field = undefined) {
    super(message, 'invalid_argument');
    this.name = 'ChatMemValidationError';
    this.field = field;
  }
}

export class ChatMemTimeoutError extends ChatMemError {
  constructor(message, requestId, timeoutMs) {
    super(message, 'timeout');
    this.name = 'ChatMemTimeoutError';
    this.requestId = requestId;
    this.timeoutMs = timeoutMs;
  }
}

export class ChatMemReplyError extends ChatMemError {
  constructor(code, message, requestId) {
    super(message, code);
    this.name = 'ChatMemReplyError';
    this.requestId = requestId;
  }
}

export class ChatMemClosedError extends ChatMemError {
  constructor(message = 'the ChatMem client is closed') {
    super(message, 'closed');
    this.name = 'ChatMemClosedError';
  }
}

/**
 * A Kafka error code of a response as a ChatMemError 'kafka' saying where
 * and what (kafkajs's name and text for the code); .retriable as Kafka
 * defines it for the code.
 */
export function kafkaCodeError(code, where) {
  const cause = createErrorFromCode(code);
  const e = new ChatMemError(`${where}: ${cause.type ?? 'error'} (${cause.message})`, 'kafka', { cause });
  e.retriable = cause.retriable === true;
  return e;
}
