/*
 * make bench-tokenizer: chatmem's tokenizers against js-tiktoken and the
 * WASM tiktoken, in the same run, on the same documents.
 *
 *   NODE_PATH=build/node/node_modules node tests/bench/tokenizer.js \
 *       BENCH_BIN SRC_DIR OUT_DIR
 *
 * The corpus is built deterministically from text every machine of the
 * project has: English prose (the license texts in /usr/share/common-
 * licenses, the READMEs), chat turns (the seed conversation and chat-API
 * JSON), code (this repository's C, Python's standard library) and a share
 * of other scripts. It is cut into chat-message-sized documents, each
 * tokenized on its own, as chatmem does with messages. BENCH_BIN
 * (tests/bench/bench_tokens.c) times chatmem's side; this script times the
 * npm packages, checks that every implementation counts the same number of
 * tokens, and prints the table.
 */
'use strict';
const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');
const { getEncoding } = require('js-tiktoken');
const wasm = require('tiktoken');

const [bin, src, outDir] = process.argv.slice(2);
const ENCODINGS = ['cl100k_base', 'o200k_base'];
const MIN_SECONDS = 1.5;

let seed = 0xbe7c4;
function rand() { /* mulberry32 */
  seed = (seed + 0x6d2b79f5) | 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const pick = (a) => a[Math.floor(rand() * a.length)];

const read = (f) => { try { return fs.readFileSync(f, 'utf8'); } catch { return ''; } };
const docs = []; /* [category, text] */

/* Paragraph groups of 200..2000 bytes. */
function cut(category, text, lo = 200, hi = 2000) {
  let cur = '';
  for (const para of text.split(/\n\s*\n/)) {
    cur += (cur ? '\n\n' : '') + para;
    if (cur.length >= lo + rand() * (hi - lo)) {
      docs.push([category, cur]);
      cur = '';
    }
  }
  if (cur) docs.push([category, cur]);
}

/* English prose. */
for (const f of ['Apache-2.0', 'Artistic', 'BSD', 'CC0-1.0', 'GFDL-1.2', 'GFDL-1.3', 'GPL-1', 'GPL-2', 'GPL-3', 'LGPL-2', 'LGPL-2.1', 'LGPL-3', 'MPL-1.1', 'MPL-2.0'])
  cut('prose', read('/usr/share/common-licenses/' + f));
for (const f of [path.join(src, 'README.md'), ...['js-tiktoken', 'tiktoken', 'base64-js'].map((p) => path.join(src, 'build/node/node_modules', p, 'README.md'))])
  cut('prose', read(f));

/* Chat: the seed conversation, and chat-API requests built from it. */
const seedLines = read(path.join(src, 'ops/seed-conversation.jsonl')).split('\n').filter(Boolean).map((l) => JSON.parse(l));
for (let rep = 0; rep < 30; rep++)
  for (const m of seedLines) docs.push(['chat', m.content]);
for (let i = 0; i < 300; i++) {
  const n = 2 + Math.floor(rand() * 8);
  const start = Math.floor(rand() * (seedLines.length - 1));
  const messages = [{ role: 'system', content: 'You are a helpful assistant. The user is ' + pick(['Sumit, a full stack developer', 'a student', 'an SRE on call']) + '.' }];
  for (let k = 0; k < n; k++) {
    const m = seedLines[(start + k) % seedLines.length];
    messages.push({ role: m.role, content: m.content });
  }
  docs.push(['json', JSON.stringify(rand() < 0.5 ? { model: 'gpt-4o', messages, max_tokens: 512 } : { messages }, null, rand() < 0.5 ? 2 : 0)]);
}

/* Code. */
for (const dir of ['common', 'tools/chatmem', 'workers/ingest', 'workers/context', 'workers/summarizer'])
  for (const f of (fs.existsSync(path.join(src, dir)) ? fs.readdirSync(path.join(src, dir)) : []).sort())
    if (/\.[ch]$/.test(f)) cut('code', read(path.join(src, dir, f)), 300, 3000);
for (const f of ['json/decoder.py', 'json/encoder.py', 'textwrap.py', 'csv.py', 'dataclasses.py'])
  cut('code', read('/usr/lib/python3.11/' + f), 300, 3000);

/* Other scripts: about 5% of the bytes. */
const intl = [
  '\u6211\u4eec\u660e\u5929\u4e0a\u5348\u5341\u70b9\u5f00\u4f1a\uff0c\u8bf7\u51c6\u5907\u597d\u4e0a\u5468\u7684\u9500\u552e\u62a5\u544a\u3002',
  '\u4eca\u65e5\u306f\u3044\u3044\u5929\u6c17\u3067\u3059\u306d\u3002\u6563\u6b69\u306b\u884c\u304d\u307e\u305b\u3093\u304b\uff1f',
  '\ud55c\uad6d\uc5b4\ub85c \ub300\ub2f5\ud574 \uc8fc\uc138\uc694. \uac10\uc0ac\ud569\ub2c8\ub2e4!',
  '\u0645\u0631\u062d\u0628\u0627\u060c \u0643\u064a\u0641 \u064a\u0645\u0643\u0646\u0646\u064a \u0645\u0633\u0627\u0639\u062f\u062a\u0643 \u0627\u0644\u064a\u0648\u0645\u061f',
  '\u041f\u0440\u0438\u0432\u0435\u0442! \u041a\u0430\u043a \u043d\u0430\u0441\u0442\u0440\u043e\u0438\u0442\u044c async/await \u0432 Node.js?',
  '\u0928\u092e\u0938\u094d\u0924\u0947, \u0906\u092a \u0915\u0948\u0938\u0947 \u0939\u0948\u0902? \u092e\u0941\u091d\u0947 React \u0938\u0940\u0916\u0928\u093e \u0939\u0948\u0964',
  'Gr\u00fc\u00dfe aus M\u00fcnchen! \u00c7a va tr\u00e8s bien, merci. \u00bfQu\u00e9 tal est\u00e1s? \ud83d\ude00\ud83d\udc4d',
];
const asciiBytes = docs.reduce((a, d) => a + Buffer.byteLength(d[1]), 0);
let intlBytes = 0;
while (intlBytes < asciiBytes / 19) {
  let s = '';
  for (let k = 1 + Math.floor(rand() * 6); k > 0; k--) s += pick(intl) + pick([' ', '\n', ' ']);
  docs.push(['intl', s]);
  intlBytes += Buffer.byteLength(s);
}

/* Shuffle, so no implementation benefits from runs of similar text. */
for (let i = docs.length - 1; i > 0; i--) {
  const j = Math.floor(rand() * (i + 1));
  [docs[i], docs[j]] = [docs[j], docs[i]];
}
const texts = docs.map((d) => d[1]);
const totalBytes = texts.reduce((a, t) => a + Buffer.byteLength(t), 0);
fs.mkdirSync(outDir, { recursive: true });
const corpusFile = path.join(outDir, 'corpus.bin');
fs.writeFileSync(corpusFile, Buffer.concat(docs.flatMap(([c, t], i) => [Buffer.from((i ? '\0' : '') + c + '\x01'), Buffer.from(t)])));

/* chatmem: the C bench. */
const c = {};
for (const line of execFileSync(bin, [corpusFile, String(MIN_SECONDS)], { encoding: 'utf8' }).trim().split('\n')) {
  const [enc, mode, cat, bytes, tokens, secs] = line.split(' ');
  c[`${enc} ${mode} ${cat}`] = { bytes: +bytes, tokens: +tokens, secs: +secs };
}

/* The npm tokenizers: best of 3 timed passes, after one warm-up pass. */
function time(encode) {
  let tokens = 0;
  for (const t of texts) tokens += encode(t).length;
  let best = Infinity;
  for (let run = 0; run < 3; run++) {
    const t0 = process.hrtime.bigint();
    let passes = 0, s;
    do {
      for (const t of texts) encode(t);
      passes++;
      s = Number(process.hrtime.bigint() - t0) / 1e9;
    } while (s < MIN_SECONDS);
    best = Math.min(best, s / passes);
  }
  return { bytes: totalBytes, tokens, secs: best };
}

const version = (pkg) => JSON.parse(fs.readFileSync(path.join(process.env.NODE_PATH, pkg, 'package.json'))).version;
const jsVersion = version('js-tiktoken');
const wasmVersion = version('tiktoken');
const rows = [];
let agree = true;
for (const enc of ENCODINGS) {
  const js = getEncoding(enc);
  const w = wasm.get_encoding(enc);
  const r = {
    count: c[`${enc} count all`],
    encode: c[`${enc} encode all`],
    js: time((t) => js.encode(t, [], [])),
    wasm: time((t) => w.encode_ordinary(t)),
  };
  w.free();
  for (const k of ['encode', 'js', 'wasm'])
    if (r[k].tokens !== r.count.tokens) agree = false;
  rows.push([enc, r]);
}

const mbs = (m) => m.bytes / m.secs / 1e6;
const pad = (s, n) => String(s).padEnd(n);
const lpad = (s, n) => String(s).padStart(n);
const cats = {};
for (const [cat, t] of docs) cats[cat] = (cats[cat] || 0) + Buffer.byteLength(t);
console.log(`tokenizer benchmark: ${(totalBytes / 1e6).toFixed(2)} MB in ${docs.length} documents (` +
  Object.entries(cats).map(([k, v]) => `${k} ${Math.round(100 * v / totalBytes)}%`).join(', ') +
  `), each tokenized on its own; one core; best of 3 runs of >= ${MIN_SECONDS} s`);
console.log('');
console.log(pad('encoding', 13) + pad('implementation', 26) + lpad('MB/s', 8) + lpad('Mtok/s', 9) + lpad('tokens', 10) + lpad('vs js-tiktoken', 16) + lpad('vs WASM', 9));
for (const [enc, r] of rows) {
  const impls = [
    ['chatmem (count)', r.count], ['chatmem (encode, ids)', r.encode],
    [`js-tiktoken ${jsVersion}`, r.js], [`tiktoken ${wasmVersion} (WASM)`, r.wasm],
  ];
  for (const [name, m] of impls)
    console.log(pad(enc, 13) + pad(name, 26) + lpad(mbs(m).toFixed(1), 8) +
      lpad((m.tokens / m.secs / 1e6).toFixed(2), 9) + lpad(m.tokens, 10) +
      lpad((mbs(m) / mbs(r.js)).toFixed(1) + 'x', 16) + lpad((mbs(m) / mbs(r.wasm)).toFixed(1) + 'x', 9));
}
console.log('');
console.log('chatmem (count) by kind of text, MB/s:');
for (const enc of ENCODINGS)
  console.log('  ' + pad(enc, 13) + Object.keys(cats).sort().map((k) => `${k} ${mbs(c[`${enc} count ${k}`]).toFixed(1)}`).join('  '));
if (!agree) {
  console.log('\nFAIL: the implementations do not count the same number of tokens');
  process.exit(1);
}
