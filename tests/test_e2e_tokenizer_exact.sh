#!/bin/bash
# Proves that chatmem's BPE tokenizers give exactly js-tiktoken's token ids,
# for cl100k_base and o200k_base, string by string.
#
# 1. Installs the pinned npm js-tiktoken into build/node/ (tests/bench/
#    node-deps.sh).
# 2. Node builds a deterministic corpus (seeded generator): English prose,
#    contractions, code (also this repository's own sources), JSON, URLs,
#    numbers, whitespace runs, emoji, CJK, Arabic and other scripts,
#    combining marks, special-token text, long pieces, invalid UTF-8, dense
#    mixes of the characters the patterns tell apart, the
#    seed conversation, random Unicode, and a sweep over every assigned code
#    point (a sample of the unassigned and private-use ones) in several
#    contexts. For
#    each string it writes the bytes and js-tiktoken's ids for both
#    encodings; invalid UTF-8 reaches js-tiktoken as WHATWG TextDecoder
#    (replacement, BOM kept) decodes it, which is chatmem's documented
#    behaviour.
# 3. The unit test binary test_tokens, given the file in
#    CHATMEM_TOKENS_REF, encodes every string with the C tokenizer and fails
#    on the first mismatches (it prints them).
# 4. `chatmem tokens --ids` and `chatmem tokens` are checked on a sample.
# Needs no services.
. "$(dirname "$0")/lib.sh"

case "$BIN" in
*/build/san/bin) UNIT=${BIN%/bin}/tests ;;
*) UNIT=$T_SRC/build/rel/tests ;;
esac
[ -x "$UNIT/test_tokens" ] || t_fail "no '$UNIT/test_tokens' (run make)"

"$T_SRC/tests/bench/node-deps.sh" || t_fail "cannot install js-tiktoken"
REF=$T_DIR/reference.tsv

t_log "generating the corpus and js-tiktoken's ids"
NODE_PATH=$T_SRC/build/node/node_modules node - "$T_SRC" "$REF" <<'EOF' ||
const fs = require('fs');
const path = require('path');
const { getEncoding } = require('js-tiktoken');

const [src, out] = process.argv.slice(2);

/* mulberry32: a small seeded generator, so the corpus is the same on every
 * run and every machine. */
let seed = 0x5eed1234;
function rand() {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const int = (n) => Math.floor(rand() * n);
const pick = (a) => a[int(a.length)];
const cp = (c) => String.fromCodePoint(c);

const corpus = []; /* [label, Buffer] */
const add = (label, s) => corpus.push([label, Buffer.from(s, 'utf8')]);
const addBytes = (label, bytes) => corpus.push([label, Buffer.from(bytes)]);

/* --- English prose ------------------------------------------------- */
const prose = [
  "The quick brown fox jumps over the lazy dog.",
  "It's a truth universally acknowledged, that a single man in possession of a good fortune, must be in want of a wife.",
  "I'm sure you'll agree: we've tried everything, and they're still not done. Isn't it odd? I'd say so!",
  "CONTEXT WINDOWS ARE FINITE; TOKENS COST MONEY. Don't waste them.",
  "Mr. O'Neil paid $1,234.56 on 2024-03-15 at 10:45am (GMT+5:30) -- roughly 3.5% more than last year's bill.",
  "Hello world\nhello World\nHELLO WORLD\n\nhello   world\t\thello\r\nworld",
  "She said, \"You can't be serious,\" and walked out... 'Really?' he asked.",
  "async/await is syntax over Promises: an async function returns a Promise, and await pauses it until that Promise settles.",
  "Dear Sir/Madam,\n\nPlease find attached the Q3 report (v2.1-final).\n\nKind regards,\nJane",
  "e.g. i.e. etc. vs. a.m. p.m. U.S.A. Ph.D. 3rd 21st 42nd 100th",
];
const words = ("the of and to in is you that it he was for on are as with his they I at be this have from or one had by word but not what all were we when your can said there use an each which she do how their if will up other about out many then them these so some her would make like him into time has look two more write go see number no way could people my than first water been call who oil its now find long down day did get come made may part").split(' ');
const contr = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE", "'Re", "'rE", "'VE", "'M", "'LL", "'lL", "'D", "n't", "'x", "'", "\u2019s", "'\u017f"];
prose.forEach((p, i) => add('prose', p));
for (let i = 0; i < 400; i++) {
  let s = '';
  const n = 1 + int(40);
  for (let k = 0; k < n; k++) {
    let w = pick(words);
    const r = rand();
    if (r < 0.1) w = w.toUpperCase();
    else if (r < 0.2) w = w[0].toUpperCase() + w.slice(1);
    else if (r < 0.25) w = w + pick(words)[0].toUpperCase() + pick(words).slice(1);
    if (rand() < 0.08) w += pick(contr);
    s += (k ? pick([' ', ' ', ' ', ', ', '. ', '\n', '  ', ' (', ') ', '; ', ' - ', '\t', '? ', '! ', ' "', '" ', '...', ':']) : '') + w;
  }
  add('prose', s + pick(['.', '', '\n', ' ', '!', '?\n\n', '  ']));
}

/* --- contractions and apostrophes ---------------------------------- */
for (const c of contr)
  for (const ctx of ['', 'x', 'X', ' ', 'it', 'IT', "'", '1', '\n', '.', '\u00e9', '\u0301'])
    for (const tail of ['', 'x', ' y', "'s", '\n'])
      add('contraction', ctx + c + tail);

/* --- code ----------------------------------------------------------- */
const snippets = [
  "int main(int argc, char **argv)\n{\n\treturn argc > 1 ? 0 : 1;\n}\n",
  "for (let i = 0; i < arr.length; i++) {\n    if (arr[i] !== undefined) total += arr[i] * 2;\n}",
  "def fib(n: int) -> int:\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n\nprint([fib(i) for i in range(10)])\n",
  "SELECT u.id, COUNT(*) AS n FROM users u JOIN orders o ON o.user_id = u.id WHERE o.total >= 100.00 GROUP BY u.id;",
  "#include <stdio.h>\n#define MAX(a, b) ((a) > (b) ? (a) : (b))\nstatic const char *s = \"\\x1b[31m%s\\x1b[0m\\n\";",
  "const fetchUser = async (id) => { const res = await fetch(`/api/users/${id}`); return res.json(); };",
  "fn main() { let v: Vec<u32> = (0..10).map(|x| x * x).collect(); println!(\"{:?}\", v); }",
  "    <div className=\"App\"><h1>{title}</h1>{items.map(i => <Item key={i.id} {...i} />)}</div>",
  "if [ -z \"$HOME\" ]; then echo 'no home' >&2; exit 1; fi\nfor f in *.c; do cc -O2 -c \"$f\"; done",
  "x+=1;y-=2;z*=3;w/=4;a%=5;b<<=6;c>>=7;d&=8;e|=9;f^=10;g=!h&&i||j;k=l?m:n;o=p->q;r=s::t;u=v.w;",
  "// TODO(fixme): handle the edge case\n/* multi-line\n * comment */\n#pragma once\n",
  "matrix = [[1, 2, 3],\n          [4, 5, 6]]\n\t\t\t\tindented_with_tabs = True\n        eight_spaces = None",
];
snippets.forEach((s) => add('code', s));
const codeFiles = [];
for (const dir of ['common', 'tools/chatmem', 'workers/ingest', 'workers/context', 'ops', 'tests'])
  for (const f of (fs.existsSync(path.join(src, dir)) ? fs.readdirSync(path.join(src, dir)) : []).sort())
    if (/\.(c|h|sh|py)$/.test(f)) codeFiles.push(path.join(src, dir, f));
let chunks = 0;
for (const f of codeFiles) {
  const text = fs.readFileSync(f, 'utf8');
  for (const part of text.split(/\n\n+/)) {
    if (part.length > 20 && part.length < 3000 && chunks < 600 && rand() < 0.5) {
      add('code', part + (rand() < 0.5 ? '\n' : ''));
      chunks++;
    }
  }
}

/* --- JSON ------------------------------------------------------------ */
function jsonValue(depth) {
  const r = rand();
  if (depth > 3 || r < 0.3) return pick([0, -1, 3.14159, 1e21, 123456789, true, false, null, 'x', 'Hello, world', 'caf\u00e9', '\u65e5\u672c', '\ud83d\ude00', 'a\nb\t"c"', '']);
  if (r < 0.6) return Array.from({ length: int(5) }, () => jsonValue(depth + 1));
  const o = {};
  for (let i = 0; i < 1 + int(5); i++) o[pick(words) + (rand() < 0.3 ? '_id' : '')] = jsonValue(depth + 1);
  return o;
}
for (let i = 0; i < 150; i++) {
  const v = jsonValue(0);
  add('json', rand() < 0.5 ? JSON.stringify(v) : JSON.stringify(v, null, pick([2, 4, '\t'])));
}
add('json', JSON.stringify({ message: 'caf\u00e9 \u65e5\u672c \ud83d\ude00' }).replace(/[\u0080-\uffff]/g, (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0')));

/* --- URLs ------------------------------------------------------------- */
for (let i = 0; i < 100; i++) {
  const host = pick(['example.com', 'api.github.com', 'www.wikipedia.org', 'localhost:8080', '127.0.0.1', 'xn--bcher-kva.example', 'sub.domain.co.uk']);
  const p = Array.from({ length: int(5) }, () => pick(words) + (rand() < 0.3 ? int(1000) : '')).join('/');
  const q = rand() < 0.5 ? '?' + Array.from({ length: 1 + int(3) }, () => pick(words) + '=' + encodeURIComponent(pick(words) + ' ' + pick(['\u00e9', '&', '/', '1']))).join('&') : '';
  add('url', pick(['https://', 'http://', 'ftp://', '']) + host + '/' + p + q + (rand() < 0.2 ? '#section-' + int(9) : ''));
}

/* --- numbers ---------------------------------------------------------- */
const digitSets = ['0123456789', '\u0660\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669', '\uff10\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18\uff19', '\u0966\u0967\u0968\u0969\u096a\u096b\u096c\u096d\u096e\u096f'];
for (let i = 0; i < 150; i++) {
  const ds = i < 100 ? '0123456789' : pick(digitSets);
  const digits = [...ds];
  let s = Array.from({ length: 1 + int(14) }, () => pick(digits)).join('');
  const r = rand();
  if (r < 0.2) s = Number(s.slice(0, 9) || '0').toLocaleString('en-US');
  else if (r < 0.3) s = s + '.' + int(1000);
  else if (r < 0.4) s = '-' + s + 'e' + int(40);
  else if (r < 0.5) s = s.replace(/(\d{3})/g, '$1 ');
  add('number', pick(['', ' ', '$', 'x', 'v', '#', '(']) + s + pick(['', ' ', '%', 'km', '.', ')', '\n']));
}
for (const s of ['\u216b \u2167', '\u00bd \u00be \u2153', 'x\u00b2 + y\u00b3', '\u2460\u2461\u2462', '1\u00bd', '3\u20444', '12345678901234567890', '0.000001', '1,000,000', '\u0661\u0662\u0663abc', '\ud835\udfce\ud835\udfcf'])
  add('number', s);

/* --- whitespace ------------------------------------------------------- */
const ws = [' ', ' ', ' ', '\t', '\n', '\r', '\r\n', '\u000b', '\u000c', '\u00a0', '\u1680', '\u2000', '\u2007', '\u200a', '\u2028', '\u2029', '\u202f', '\u205f', '\u3000', '\ufeff', '\u0085', '\u180e', '\u200b'];
const after = ['', 'a', 'A', '1', '.', '\u00e9', '\u4e2d', '\u0301', '\ud83d\ude00', "'s", '/', '\n'];
for (let i = 0; i < 300; i++) {
  const s = Array.from({ length: 1 + int(8) }, () => pick(ws)).join('');
  add('whitespace', pick(['', 'x', '.', '1', ' ']) + s + pick(after) + (rand() < 0.3 ? s : ''));
}
for (const n of [1, 2, 3, 10, 64, 65, 200])
  for (const w of [' ', '\t', '\n', '\r\n', '\u3000', ' \n'])
    for (const a of ['', 'x'])
      add('whitespace', w.repeat(n) + a);

/* --- emoji -------------------------------------------------------------- */
const emoji = ['\ud83d\ude00', '\ud83d\udc4d\ud83c\udffd', '\ud83d\udc68\u200d\ud83d\udc69\u200d\ud83d\udc67\u200d\ud83d\udc66', '\ud83c\uddfa\ud83c\uddf8', '\ud83c\uddee\ud83c\uddf3', '1\ufe0f\u20e3', '\u2764\ufe0f', '\u263a', '\ud83e\udd16', '\ud83d\udd25', '\ud83c\udff3\ufe0f\u200d\ud83c\udf08', '\ud83e\uddd1\u200d\ud83d\udcbb', '\u00a9\ufe0f', '\ud83d\ude4f\ud83c\udffb'];
for (let i = 0; i < 150; i++) {
  let s = '';
  for (let k = 0; k < 1 + int(10); k++) s += pick([pick(emoji), pick(emoji), ' ', pick(words), '!', '\n', ':)']);
  add('emoji', s);
}

/* --- scripts: CJK, Arabic, Hebrew, Devanagari, Thai, Cyrillic, Greek ----- */
const scripts = {
  cjk: ['\u6211\u7231\u5317\u4eac\u5929\u5b89\u95e8\u3002', '\u4eca\u65e5\u306f\u3044\u3044\u5929\u6c17\u3067\u3059\u306d\u3002', '\u30ab\u30bf\u30ab\u30ca\u3068\u3072\u3089\u304c\u306a', '\ud55c\uad6d\uc5b4 \ubb38\uc7a5\uc785\ub2c8\ub2e4.', '\u6771\u4eac\u90fd\u6e0b\u8c37\u533a\uff11\u2212\uff12\u2212\uff13', '\u300c\u3053\u3093\u306b\u3061\u306f\u300d\u3068\u8a00\u3063\u305f\u3002', '\u4e2d\u6587\uff0c\u82f1\u6587\uff1aEnglish\uff01'],
  arabic: ['\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645', '\u0627\u0644\u0633\u0651\u064e\u0644\u0627\u0645\u064f \u0639\u064e\u0644\u064e\u064a\u0652\u0643\u064f\u0645\u0652', '\u0627\u0644\u0639\u062f\u062f \u0661\u0662\u0663 \u0648 456', '\u0643\u064a\u0641 \u062d\u0627\u0644\u0643\u061f'],
  hebrew: ['\u05e9\u05dc\u05d5\u05dd \u05e2\u05d5\u05dc\u05dd', '\u05d1\u05b0\u05bc\u05e8\u05b5\u05d0\u05e9\u05b4\u05c1\u05d9\u05ea'],
  devanagari: ['\u0928\u092e\u0938\u094d\u0924\u0947 \u0926\u0941\u0928\u093f\u092f\u093e', '\u0939\u093f\u0928\u094d\u0926\u0940 \u092e\u0947\u0902 \u0932\u093f\u0916\u093e \u0939\u0948\u0964'],
  thai: ['\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35\u0e04\u0e23\u0e31\u0e1a', '\u0e20\u0e32\u0e29\u0e32\u0e44\u0e17\u0e22'],
  cyrillic: ['\u041f\u0440\u0438\u0432\u0435\u0442, \u043c\u0438\u0440!', '\u0412\u0421\u0401 \u0425\u041e\u0420\u041e\u0428\u041e \u0438 \u0432\u0441\u0451 \u043f\u043b\u043e\u0445\u043e'],
  greek: ['\u039a\u03b1\u03bb\u03b7\u03bc\u03ad\u03c1\u03b1 \u03ba\u03cc\u03c3\u03bc\u03b5', '\u1f08\u03c1\u03c7\u1f74 \u1f26\u03bd \u1f41 \u03bb\u03cc\u03b3\u03bf\u03c2'],
  latin: ['na\u00efve caf\u00e9 r\u00e9sum\u00e9 \u00fcber Stra\u00dfe', '\u0141\u00f3d\u017a \u017b\u00f3\u0142\u0107', '\u01c5 \u01c8 \u01cb \u1e9e\u1e9e \u0130stanbul', 'Dvo\u0159\u00e1k \u00c5ngstr\u00f6m \u212b \u212a'],
};
for (const [name, list] of Object.entries(scripts)) {
  list.forEach((s) => add(name, s));
  for (let i = 0; i < 40; i++)
    add(name, Array.from({ length: 1 + int(8) }, () => pick(list)).join(pick([' ', '', '\n', '. ', ', '])));
}
add('cjk', '\u4e2d'.repeat(100) + '\u6587\u5b57\u5316\u3051'.repeat(30));
add('arabic', '\u0645\u0631\u062d\u0628\u0627'.repeat(40));

/* --- combining marks ------------------------------------------------- */
const marks = ['\u0300', '\u0301', '\u0302', '\u0303', '\u0308', '\u030a', '\u0327', '\u0336', '\u0351', '\u036f', '\u0489', '\u20dd', '\u0903', '\u093f', '\u0e31', '\ufe0f', '\u200d', '\udb40\udd00'];
for (let i = 0; i < 200; i++) {
  let s = '';
  for (let k = 0; k < 1 + int(12); k++) {
    s += pick(['a', 'A', 'e', 'E', 'i', ' ', '1', '.', '\u00e9', '\u03a9', '\u03c9', '\u5b57', '', '\n', "'", 'x', 'X']);
    for (let m = int(4); m > 0; m--) s += pick(marks);
  }
  add('marks', s);
}
add('marks', 'Z\u0351\u036b\u0343\u036a\u0302\u036b\u033d\u034f\u0334\u0319\u0324\u031e\u0349\u035a\u032f\u031e\u0320\u034dA\u036b\u0357\u0334\u0362\u0335\u031c\u0330\u0354L\u0368\u0367\u0369\u0358\u0320G\u0311\u0357\u030e\u0305\u035b\u0341\u0334\u033b\u0348\u034d\u0354\u0339O\u0342\u030c\u030c\u0358\u0328\u0335\u0339\u033b\u031d\u0333');

/* --- special tokens are text ---------------------------------------- */
for (const t of ['<|endoftext|>', '<|fim_prefix|>', '<|fim_middle|>', '<|fim_suffix|>', '<|endofprompt|>', '<|im_start|>', '<|endoftext|'])
  for (const ctx of ['', 'hello ', 'a', '\n'])
    add('special', ctx + t + ctx + t);

/* --- long pieces (past the C code's short-merge limit of 64 bytes) ---- */
for (const [s, n] of [['a', 200], ['a', 1000], ['ab', 150], ['xyz', 90], ['-', 300], ['=', 129], ['.', 70], ['0', 500], ['\u00e9', 120], ['\ud83d\ude00', 40], ['\u0301', 80], ['Ab', 100], ['aB', 100], ['Supercalifragilisticexpialidocious', 8], ['\u4e2d\u6587', 60], ['\u0410\u0431', 80], ['_', 257], ['\t', 100], ['!?', 64], ['ab\u00e9', 50]])
  add('long', s.repeat(n));
for (let i = 0; i < 30; i++) {
  const alphabet = pick(['abcdefghijklmnopqrstuvwxyz', 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', '\u00e9\u00e8\u00ea\u00eb\u00e0\u00e2', '!@#$%^&*()[]{}<>?/\\|~`', '\u65e5\u672c\u8a9e\u6f22\u5b57', 'aeiouAEIOU\u0301']);
  add('long', Array.from({ length: 65 + int(400) }, () => pick([...alphabet])).join(''));
}

/* --- invalid UTF-8 ------------------------------------------------------ */
const bad = [[0x80], [0xbf], [0xc0, 0x80], [0xc1, 0xbf], [0xc2], [0xe0, 0x80, 0x80], [0xe0, 0xa0], [0xed, 0xa0, 0x80], [0xed, 0xbf, 0xbf], [0xef, 0xbf], [0xf0, 0x80, 0x80, 0x80], [0xf0, 0x90, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xf5, 0x80, 0x80, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80], [0xfe], [0xff], [0xef, 0xbb, 0xbf], [0xe2, 0x82], [0xf0, 0x9f, 0x98]];
for (const b of bad) {
  addBytes('invalid', b);
  addBytes('invalid', [...Buffer.from('ab '), ...b, ...Buffer.from('cd')]);
  addBytes('invalid', [...b, ...b, ...Buffer.from('\'s x1')]);
}
for (let i = 0; i < 200; i++) {
  const bytes = [];
  for (let k = 0; k < 1 + int(40); k++) {
    const r = rand();
    if (r < 0.3) bytes.push(...pick(bad));
    else if (r < 0.5) bytes.push(int(256));
    else if (r < 0.8) bytes.push(...Buffer.from(pick(words) + pick([' ', '', '\n'])));
    else bytes.push(...Buffer.from(pick(['\u00e9', '\u4e2d', '\ud83d\ude00', '\u0301', ' ', '1'])));
  }
  addBytes('invalid', bytes);
}

/* --- the seed conversation -------------------------------------------- */
const seed_file = fs.readFileSync(path.join(src, 'ops', 'seed-conversation.jsonl'), 'utf8');
add('seed', seed_file);
for (const line of seed_file.split('\n').filter(Boolean)) {
  add('seed', line);
  add('seed', JSON.parse(line).content);
}

/* --- random Unicode ----------------------------------------------------- */
const ranges = [[0x20, 0x7e, 30], [0x09, 0x0d, 3], [0xa0, 0x24f, 8], [0x250, 0x2ff, 2], [0x300, 0x36f, 5], [0x370, 0x4ff, 5], [0x530, 0x8ff, 5], [0x900, 0xdff, 5], [0xe00, 0xfff, 3], [0x1000, 0x1fff, 3], [0x2000, 0x206f, 4], [0x2070, 0x2bff, 4], [0x2c00, 0x2fff, 2], [0x3000, 0x30ff, 4], [0x3100, 0x9fff, 5], [0xa000, 0xd7ff, 3], [0xe000, 0xf8ff, 1], [0xf900, 0xffff, 3], [0x10000, 0x1ffff, 5], [0x1f300, 0x1faff, 4], [0x20000, 0x3ffff, 2], [0xe0000, 0xe01ef, 1], [0x0, 0x10ffff, 3]];
const weight = ranges.reduce((a, r) => a + r[2], 0);
function randomCp() {
  let w = int(weight);
  for (const [lo, hi, rw] of ranges) {
    if (w < rw) {
      for (;;) {
        const c = lo + int(hi - lo + 1);
        if (c < 0xd800 || c > 0xdfff) return c;
      }
    }
    w -= rw;
  }
}
for (let i = 0; i < 700; i++) {
  let s = '';
  const n = 1 + int(i < 600 ? 40 : 300);
  for (let k = 0; k < n; k++) s += cp(randomCp());
  add('random', s);
}

/* --- dense mixes of the characters the two patterns tell apart ------ */
const dense = ['A', 'B', 'a', 'b', 's', 'S', 't', 'T', 'l', 'L', 'e', 'E', 'r', 'R', 'v', 'V', 'm', 'd', 'D', '\u01c5', '\u02b0', '\u4e2d', '\u3042', '\u0301', '\u0903', '\u20dd', '1', '9', '\u0661', '\u00bd', '\u2167', ' ', ' ', ' ', '\t', '\n', '\r', '\u00a0', '\u3000', '\ufeff', '\u0085', '\u180e', '\u2028', "'", "'", "'", '/', '.', '-', '\u2019', '\ud83d\ude00', '\u00e9', '\u00c9', '\u017f', '\u212a', '\u0345', '\u1f88', '\u0130', '\u00df'];
for (let i = 0; i < 1500; i++)
  add('dense', Array.from({ length: 1 + int(16) }, () => pick(dense)).join(''));

/* --- every code point, in context ---------------------------------------- */
const sweep = [];
const unassigned = /[\p{Cn}\p{Co}]/u;
for (let c = 0; c < 0x110000; c++) {
  if (c >= 0xd800 && c <= 0xdfff) continue;
  if (!unassigned.test(cp(c)) || c % 31 === 0) sweep.push(c);
}
for (let i = 0; i < sweep.length; i += 1024) {
  let s = '';
  for (const c of sweep.slice(i, i + 1024)) {
    const ch = cp(c);
    s += 'A' + ch + 'a ' + ch + '1' + ch + ' ' + "'" + ch + "s\n";
  }
  add('sweep', s);
}

/* --- reference -------------------------------------------------------- */
const encs = ['cl100k_base', 'o200k_base'].map((e) => getEncoding(e));
const dec = new TextDecoder('utf-8', { ignoreBOM: true });
const lines = [];
for (const [label, bytes] of corpus) {
  const text = dec.decode(bytes);
  const ids = encs.map((e) => e.encode(text, [], []).join(' '));
  lines.push([label, bytes.toString('hex'), ...ids].join('\t'));
}
fs.writeFileSync(out, lines.join('\n') + '\n');
const counts = {};
for (const [label] of corpus) counts[label] = (counts[label] || 0) + 1;
console.log(`${corpus.length} strings (` +
  Object.entries(counts).map(([k, v]) => `${k} ${v}`).join(', ') + ')');
EOF
	t_fail "reference generation failed"

t_log "comparing with chatmem's tokenizer"
CHATMEM_TOKENS_REF=$REF "$UNIT/test_tokens" >"$T_DIR/unit.log" 2>&1 ||
	{ cat "$T_DIR/unit.log"; t_fail "token ids differ from js-tiktoken's"; }
grep -F 'reference:' "$T_DIR/unit.log" || t_fail "the reference was not read"

t_log "checking 'chatmem tokens' on a sample"
n=0
checked=0
while IFS=$'\t' read -r label hex cl o2; do
	n=$((n + 1))
	[ $((n % 50)) -eq 1 ] || { [ "$label" = invalid ] && [ $((n % 5)) -eq 0 ]; } ||
		continue
	[ ${#hex} -lt 4000 ] || continue
	$PY -c 'import sys; sys.stdout.buffer.write(bytes.fromhex(sys.argv[1]))' \
		"$hex" >"$T_DIR/in"
	got=$("$BIN/chatmem" tokens --ids <"$T_DIR/in") || t_fail "chatmem tokens failed"
	[ "$got" = "$cl" ] || t_fail "line $n ($label): cl100k_base ids differ"
	got=$("$BIN/chatmem" tokens -e o200k_base --ids <"$T_DIR/in")
	[ "$got" = "$o2" ] || t_fail "line $n ($label): o200k_base ids differ"
	want=$(echo "$cl" | wc -w)
	got=$("$BIN/chatmem" tokens <"$T_DIR/in")
	[ "$got" = "$want" ] || t_fail "line $n ($label): count $got, expected $want"
	checked=$((checked + 1))
done <"$REF"
[ "$checked" -ge 100 ] || t_fail "only $checked strings checked with the CLI"
t_log "ok: the CLI agrees on $checked strings"
