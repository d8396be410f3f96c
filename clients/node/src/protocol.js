// The Kafka wire format of the two requests on the client's hot path,
// Produce and Fetch, and of the record batches they carry (message format
// v2), written for this client: each context round trip is one produced
// request and one fetched reply, and kafkajs's general encoders and
// decoders cost several times the rest of the round trip in CPU. kafkajs
// still owns the connections (TLS, SASL, correlation ids, timeouts),
// metadata and the admin API: these requests go through its connection
// as {request: {apiKey, apiVersion, apiName, encode}, response: {decode,
// parse}} objects, the shape its own protocol modules have.
//
// Versions: Produce v3..v7 and Fetch v4..v11, the highest the broker
// offers in those ranges (every Kafka since 0.11 and up to 4.x, and
// librdkafka's mock cluster). Offsets are JavaScript numbers: exact below
// 2^53.
import zlib from 'node:zlib';
import { crcFunction } from './wire.js';

export const API_PRODUCE = 0;
export const API_FETCH = 1;
export const API_INIT_PRODUCER_ID = 22;
export const PRODUCE_VERSIONS = [3, 7];
export const FETCH_VERSIONS = [4, 11];

const TWO_32 = 4294967296;

/** CRC-32C (Castagnoli) of buf[start, end): the checksum of a v2 record batch. */
export const crc32c = crcFunction(0x82f63b78);

// --- writing -------------------------------------------------------------

/** A growing big-endian buffer writer. */
export class Writer {
  constructor(size = 1024) {
    this.buf = Buffer.allocUnsafe(size);
    this.pos = 0;
  }

  reserve(n) {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const b = Buffer.allocUnsafe(size);
    this.buf.copy(b, 0, 0, this.pos);
    this.buf = b;
  }

  int8(v) {
    this.reserve(1);
    this.buf.writeInt8(v, this.pos);
    this.pos += 1;
    return this;
  }

  int16(v) {
    this.reserve(2);
    this.buf.writeInt16BE(v, this.pos);
    this.pos += 2;
    return this;
  }

  int32(v) {
    this.reserve(4);
    this.buf.writeInt32BE(v, this.pos);
    this.pos += 4;
    return this;
  }

  /** A signed 64-bit integer from a number (exact below 2^53). */
  int64(v) {
    this.reserve(8);
    const hi = Math.floor(v / TWO_32);
    this.buf.writeInt32BE(hi, this.pos);
    this.buf.writeUInt32BE(v - hi * TWO_32, this.pos + 4);
    this.pos += 8;
    return this;
  }

  /** A zigzag varint of a 32-bit signed integer. */
  varint(v) {
    let u = ((v << 1) ^ (v >> 31)) >>> 0;
    this.reserve(5);
    while (u >= 0x80) {
      this.buf[this.pos++] = (u & 0x7f) | 0x80;
      u >>>= 7;
    }
    this.buf[this.pos++] = u;
    return this;
  }

  /** A nullable string with an int16 length (null: -1). */
  string(s) {
    if (s === null || s === undefined) return this.int16(-1);
    const n = Buffer.byteLength(s);
    this.int16(n);
    this.reserve(n);
    this.buf.write(s, this.pos, n, 'utf8');
    this.pos += n;
    return this;
  }

  /** Bytes (a Buffer, or a string as UTF-8) with a varint length; null: -1. */
  varBytes(b) {
    if (b === null || b === undefined) return this.varint(-1);
    if (typeof b === 'string') {
      const n = Buffer.byteLength(b);
      this.varint(n);
      this.reserve(n);
      this.buf.write(b, this.pos, n, 'utf8');
      this.pos += n;
      return this;
    }
    this.varint(b.length);
    this.raw(b);
    return this;
  }

  raw(b) {
    this.reserve(b.length);
    b.copy(this.buf, this.pos);
    this.pos += b.length;
    return this;
  }

  /** The bytes written (a view: valid until the next write). */
  bytes() {
    return this.buf.subarray(0, this.pos);
  }
}

// zigzag varint length of a record's fields, for the record's length prefix
function varintSize(v) {
  let u = ((v << 1) ^ (v >> 31)) >>> 0;
  let n = 1;
  while (u >= 0x80) {
    u >>>= 7;
    n++;
  }
  return n;
}

function byteLength(b) {
  if (b === null || b === undefined) return -1;
  return typeof b === 'string' ? Buffer.byteLength(b) : b.length;
}

/**
 * Writes one v2 record batch of messages [{key, value}] (Buffers or
 * strings, null allowed) with timestamp ts (ms). producer: {id, epoch,
 * sequence} of an idempotent producer, or null.
 */
export function writeRecordBatch(w, messages, ts, producer = null) {
  const start = w.pos;
  w.int64(0); // base offset: the broker assigns it
  const lengthAt = w.pos;
  w.int32(0); // batch length, below
  w.int32(-1); // partition leader epoch
  w.int8(2); // magic
  const crcAt = w.pos;
  w.int32(0); // crc, below
  const crcFrom = w.pos;
  w.int16(0); // attributes: no compression, create time, not transactional
  w.int32(messages.length - 1); // last offset delta
  w.int64(ts);
  w.int64(ts);
  w.int64(producer ? producer.id : -1);
  w.int16(producer ? producer.epoch : -1);
  w.int32(producer ? producer.sequence : -1);
  w.int32(messages.length);
  for (let i = 0; i < messages.length; i++) {
    const { key, value } = messages[i];
    const kl = byteLength(key);
    const vl = byteLength(value);
    // attributes, timestamp delta 0, offset delta, key, value, no headers
    const len = 1 + 1 + varintSize(i) + varintSize(kl) + Math.max(kl, 0) + varintSize(vl) + Math.max(vl, 0) + 1;
    w.varint(len);
    w.int8(0);
    w.varint(0);
    w.varint(i);
    w.varBytes(key);
    w.varBytes(value);
    w.varint(0);
  }
  w.buf.writeInt32BE(w.pos - lengthAt - 4, lengthAt);
  w.buf.writeUInt32BE(crc32c(w.buf, crcFrom, w.pos), crcAt);
  return w.pos - start;
}

// --- reading -------------------------------------------------------------

/** A big-endian buffer reader; reads past the end throw RangeError. */
export class Reader {
  constructor(buf, pos = 0, end = buf.length) {
    this.buf = buf;
    this.pos = pos;
    this.end = end;
  }

  need(n) {
    if (this.pos + n > this.end) throw new RangeError('kafka response: truncated');
  }

  int8() {
    this.need(1);
    return this.buf.readInt8(this.pos++);
  }

  int16() {
    this.need(2);
    const v = this.buf.readInt16BE(this.pos);
    this.pos += 2;
    return v;
  }

  int32() {
    this.need(4);
    const v = this.buf.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  int64() {
    this.need(8);
    const v = this.buf.readInt32BE(this.pos) * TWO_32 + this.buf.readUInt32BE(this.pos + 4);
    this.pos += 8;
    return v;
  }

  varint() {
    let u = 0;
    let shift = 0;
    for (;;) {
      this.need(1);
      const b = this.buf[this.pos++];
      if (shift === 28) {
        u += (b & 0x0f) * 2 ** 28;
        if (b & 0x80) throw new RangeError('kafka record: varint too long');
        break;
      }
      u |= (b & 0x7f) << shift;
      if (!(b & 0x80)) break;
      shift += 7;
    }
    u >>>= 0;
    return (u >>> 1) ^ -(u & 1);
  }

  /** A zigzag varlong, as a number (exact below 2^53). */
  varlong() {
    let u = 0;
    let mul = 1;
    for (let i = 0; ; i++) {
      this.need(1);
      const b = this.buf[this.pos++];
      u += (b & 0x7f) * mul;
      if (!(b & 0x80)) break;
      if (i >= 9) throw new RangeError('kafka record: varlong too long');
      mul *= 128;
    }
    return u % 2 === 0 ? u / 2 : -(u + 1) / 2;
  }

  string() {
    const n = this.int16();
    if (n < 0) return null;
    this.need(n);
    const s = this.buf.toString('utf8', this.pos, this.pos + n);
    this.pos += n;
    return s;
  }

  /** n bytes as a view of the response (no copy). */
  view(n) {
    this.need(n);
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }

  varBytes() {
    const n = this.varint();
    return n < 0 ? null : this.view(n);
  }
}

const ATTR_COMPRESSION = 0x07;
const ATTR_TRANSACTIONAL = 0x10;
const ATTR_CONTROL = 0x20;
const COMPRESSION_GZIP = 1;
const COMPRESSION_NAMES = ['none', 'gzip', 'snappy', 'lz4', 'zstd'];

/** An error of the data itself (a codec the client lacks, a bad checksum). */
export class RecordError extends Error {}

/**
 * The records of a fetched partition's record set (v2 batches; a last
 * batch cut off by the fetch size is left out), in offset order, from
 * offset `from` on: [{offset, timestamp, key, value, headers}] (key and
 * value Buffers or null, viewing the response; headers an object of
 * Buffers). Control records (transaction markers) and the records of
 * aborted transactions are left out. Returns {records, next}: next is the
 * offset after the last complete batch (the position to fetch next, also
 * when every record was left out), or -1 when no batch was complete.
 */
export function decodeRecordSet(buf, from, aborted = null) {
  const records = [];
  let next = -1;
  let pos = 0;
  // aborted: [{producerId, firstOffset}] sorted by firstOffset
  let abortedIdx = 0;
  const abortedPids = new Set();
  while (buf.length - pos >= 17) {
    const r = new Reader(buf, pos);
    const baseOffset = r.int64();
    const batchLength = r.int32();
    const batchEnd = pos + 12 + batchLength;
    if (batchEnd > buf.length) break; // cut off by the fetch size
    r.int32(); // partition leader epoch
    const magic = r.int8();
    if (magic !== 2)
      throw new RecordError(`message format v${magic} at offset ${baseOffset}: this client reads v2 (Kafka 0.11 and later)`);
    // The CRC is not checked: TCP's checksums and the broker's own check
    // at produce cover the path (librdkafka's check.crcs is off by default).
    r.int32();
    const attributes = r.int16();
    const lastOffsetDelta = r.int32();
    const baseTimestamp = r.int64();
    r.int64(); // max timestamp
    const producerId = r.int64();
    r.int16(); // producer epoch
    r.int32(); // base sequence
    const count = r.int32();
    pos = batchEnd;
    next = baseOffset + lastOffsetDelta + 1;
    if (attributes & ATTR_TRANSACTIONAL && aborted) {
      while (abortedIdx < aborted.length && aborted[abortedIdx].firstOffset <= baseOffset)
        abortedPids.add(aborted[abortedIdx++].producerId);
      if (attributes & ATTR_CONTROL) {
        // The marker ends the producer's transaction here.
        abortedPids.delete(producerId);
        continue;
      }
      if (abortedPids.has(producerId)) continue;
    }
    if (attributes & ATTR_CONTROL) continue;
    if (next <= from) continue; // wholly before the position
    let rr = r;
    const codec = attributes & ATTR_COMPRESSION;
    if (codec === COMPRESSION_GZIP) {
      const plain = zlib.gunzipSync(buf.subarray(r.pos, batchEnd));
      rr = new Reader(plain);
    } else if (codec !== 0) {
      throw new RecordError(`record batch at offset ${baseOffset}: ${COMPRESSION_NAMES[codec] ?? codec} compression is not supported (gzip is)`);
    } else {
      rr.end = batchEnd;
    }
    for (let i = 0; i < count; i++) {
      const len = rr.varint();
      const recEnd = rr.pos + len;
      rr.int8(); // attributes
      const tsDelta = rr.varlong();
      const offset = baseOffset + rr.varint();
      const key = rr.varBytes();
      const value = rr.varBytes();
      const nh = rr.varint();
      let headers = null;
      for (let h = 0; h < nh; h++) {
        const hk = rr.varBytes();
        const hv = rr.varBytes();
        (headers ??= {})[hk ? hk.toString('utf8') : ''] = hv;
      }
      rr.pos = recEnd;
      if (offset >= from) records.push({ offset, timestamp: baseTimestamp + tsDelta, key, value, headers: headers ?? {} });
    }
  }
  return { records, next };
}

// --- the requests --------------------------------------------------------

/** The highest version both this client and the broker speak, or -1. */
export function pickVersion(versions, apiKey, [min, max]) {
  const v = versions?.[apiKey];
  if (!v) return -1;
  const hi = Math.min(max, v.maxVersion);
  return hi >= Math.max(min, v.minVersion) ? hi : -1;
}

// What kafkajs's request framing takes from encode(): its Encoder's
// buf and buffer (the bytes written).
function prebuilt(w) {
  return { buf: w.buf, buffer: w.bytes() };
}

/**
 * A Produce request: topics [{topic, partitions: [{partition, messages,
 * producer}]}] (producer as in writeRecordBatch). Resolves to
 * [{topic, partition, errorCode, baseOffset}].
 */
export function produceRequest(version, { acks, timeoutMs, topics, timestamp = Date.now() }) {
  return {
    request: {
      apiKey: API_PRODUCE,
      apiVersion: version,
      apiName: 'Produce',
      expectResponse: () => acks !== 0,
      encode: async () => {
        const w = new Writer(4096);
        w.string(null); // transactional id
        w.int16(acks);
        w.int32(timeoutMs);
        w.int32(topics.length);
        for (const t of topics) {
          w.string(t.topic);
          w.int32(t.partitions.length);
          for (const p of t.partitions) {
            w.int32(p.partition);
            const lenAt = w.pos;
            w.int32(0);
            const n = writeRecordBatch(w, p.messages, timestamp, p.producer ?? null);
            w.buf.writeInt32BE(n, lenAt);
          }
        }
        return prebuilt(w);
      },
    },
    response: {
      decode: async (buf) => buf,
      parse: async (buf) => {
        const r = new Reader(buf);
        const out = [];
        for (let nt = r.int32(); nt > 0; nt--) {
          const topic = r.string();
          for (let np = r.int32(); np > 0; np--) {
            const partition = r.int32();
            const errorCode = r.int16();
            const baseOffset = r.int64();
            r.int64(); // log append time
            if (version >= 5) r.int64(); // log start offset
            out.push({ topic, partition, errorCode, baseOffset });
          }
        }
        return out;
      },
    },
  };
}

/**
 * A Fetch request of one topic's partitions [{partition, offset}].
 * Resolves to {errorCode, partitions: [{partition, errorCode,
 * highWatermark, records, next}]} (records and next as decodeRecordSet
 * gives them, from the requested offset).
 */
export function fetchRequest(version, { topic, partitions, maxWaitMs, minBytes, maxBytes, partitionMaxBytes, isolationLevel }) {
  const from = new Map(partitions.map((p) => [p.partition, p.offset]));
  return {
    request: {
      apiKey: API_FETCH,
      apiVersion: version,
      apiName: 'Fetch',
      encode: async () => {
        const w = new Writer(256);
        w.int32(-1); // replica id
        w.int32(maxWaitMs);
        w.int32(minBytes);
        w.int32(maxBytes);
        w.int8(isolationLevel);
        if (version >= 7) w.int32(0).int32(-1); // no fetch session
        w.int32(1);
        w.string(topic);
        w.int32(partitions.length);
        for (const p of partitions) {
          w.int32(p.partition);
          if (version >= 9) w.int32(-1); // current leader epoch: unknown
          w.int64(p.offset);
          if (version >= 5) w.int64(-1); // log start offset (followers only)
          w.int32(partitionMaxBytes);
        }
        if (version >= 7) w.int32(0); // forgotten topics
        if (version >= 11) w.string('');
        return prebuilt(w);
      },
    },
    response: {
      decode: async (buf) => buf,
      parse: async (buf) => {
        const r = new Reader(buf);
        r.int32(); // throttle time
        let errorCode = 0;
        if (version >= 7) {
          errorCode = r.int16();
          r.int32(); // session id
        }
        const out = [];
        for (let nt = r.int32(); nt > 0; nt--) {
          const name = r.string();
          for (let np = r.int32(); np > 0; np--) {
            const partition = r.int32();
            const perr = r.int16();
            const highWatermark = r.int64();
            r.int64(); // last stable offset
            if (version >= 5) r.int64(); // log start offset
            const na = r.int32();
            let aborted = null;
            for (let i = 0; i < na; i++) (aborted ??= []).push({ producerId: r.int64(), firstOffset: r.int64() });
            if (aborted) aborted.sort((a, b) => a.firstOffset - b.firstOffset);
            if (version >= 11) r.int32(); // preferred read replica
            const n = r.int32();
            const set = n > 0 ? r.view(n) : null;
            if (name !== topic || !from.has(partition)) continue;
            const { records, next } = set ? decodeRecordSet(set, from.get(partition), aborted) : { records: [], next: -1 };
            out.push({ partition, errorCode: perr, highWatermark, records, next });
          }
        }
        return { errorCode, partitions: out };
      },
    },
  };
}

/** An InitProducerId request (idempotent producer, no transaction): resolves to {errorCode, id, epoch}. */
export function initProducerIdRequest(version) {
  return {
    request: {
      apiKey: API_INIT_PRODUCER_ID,
      apiVersion: version,
      apiName: 'InitProducerId',
      encode: async () => prebuilt(new Writer(16).string(null).int32(60000)),
    },
    response: {
      decode: async (buf) => buf,
      parse: async (buf) => {
        const r = new Reader(buf);
        r.int32(); // throttle time
        return { errorCode: r.int16(), id: r.int64(), epoch: r.int16() };
      },
    },
  };
}
