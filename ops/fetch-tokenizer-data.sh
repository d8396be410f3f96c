#!/bin/sh
# Builds the data of the exact BPE tokenizers (common/tokens.c):
#
#   ops/fetch-tokenizer-data.sh OUTDIR
#
# writes OUTDIR/cl100k_base.bin and OUTDIR/o200k_base.bin. Run by make when
# they are missing; quiet when it succeeds.
#
# The rank data comes from the MIT-licensed npm package "tiktoken" at a
# pinned version: `npm pack` fetches its tarball (kept in build/npm/, so a
# rebuild works offline), its sha256 is checked, and encoders/<enc>.json is
# converted by /usr/bin/python3 to the binary form below. The JSON's
# "bpe_ranks" is one or more lines "<tag> <first rank> <base64 token>...":
# the tokens of a line have consecutive ranks from <first rank>.
#
# The Unicode classes the pre-tokenizer needs (\p{L}, \p{N}, \s, and the
# two letter classes of o200k) are taken from Node's own RegExp engine, the
# engine js-tiktoken runs on, so that both agree on every code point even
# where Debian's Unicode data (Python, PCRE2) is older.
#
# File format (little-endian), checked by the loader in common/tokens.c:
#   char  magic[8]     "CMTOKBIN"
#   u32   version      1
#   u32   n_tokens     ranks are 0 .. n_tokens-1
#   u32   blob_size
#   u32   n_blocks     Unicode class blocks of 256 code points
#   char  encoding[16], unicode[16], source[32]   NUL-padded
#   u16   stage1[0x1100]          block of each 256 code points
#   u8    stage2[n_blocks * 256]  class bits: 1 L, 2 N, 4 \s,
#                                 8 [LuLtLmLoM], 16 [LlLmLoM]
#   u32   offsets[n_tokens + 1]   token r is blob[offsets[r]..offsets[r+1])
#   u8    blob[blob_size]
set -eu

TIKTOKEN_VERSION=1.0.22
TIKTOKEN_SHA256=55c339e756fdb17604f7c7e3eb35d2bcbffe4d960e8096e50285d1cefa51dd90
ENCODINGS="cl100k_base o200k_base"

[ $# -eq 1 ] || {
	echo "usage: $0 OUTDIR" >&2
	exit 2
}
here=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$1"
out=$(cd "$1" && pwd)
cache=$here/build/npm
tgz=$cache/tiktoken-$TIKTOKEN_VERSION.tgz

die() {
	echo "fetch-tokenizer-data: $*" >&2
	exit 1
}

for tool in node npm /usr/bin/python3 sha256sum tar; do
	command -v "$tool" >/dev/null 2>&1 || die "'$tool' is needed"
done

sha_ok() {
	[ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]
}

mkdir -p "$cache"
if ! sha_ok "$tgz" "$TIKTOKEN_SHA256"; then
	rm -f "$tgz"
	(cd "$cache" && npm pack "tiktoken@$TIKTOKEN_VERSION" \
		--loglevel=error >/dev/null) ||
		die "cannot fetch npm package 'tiktoken@$TIKTOKEN_VERSION'"
	sha_ok "$tgz" "$TIKTOKEN_SHA256" ||
		die "sha256 of '$tgz' is not $TIKTOKEN_SHA256"
fi

work=$(mktemp -d "$out/.fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT
files=""
for enc in $ENCODINGS; do
	files="$files package/encoders/$enc.json"
done
# shellcheck disable=SC2086
tar -xzf "$tgz" -C "$work" $files

# One byte of class bits per code point, from Node's RegExp engine.
node - "$work/classes" >"$work/unicode-version" <<'EOF'
const fs = require('fs');
const re = [/\p{L}/u, /\p{N}/u, /\s/u, /[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]/u,
            /[\p{Ll}\p{Lm}\p{Lo}\p{M}]/u];
const out = Buffer.alloc(0x110000);
for (let cp = 0; cp < 0x110000; cp++) {
  if (cp >= 0xd800 && cp <= 0xdfff) continue; /* never in UTF-8 text */
  const s = String.fromCodePoint(cp);
  let bits = 0;
  for (let k = 0; k < re.length; k++)
    if (re[k].test(s)) bits |= 1 << k;
  out[cp] = bits;
}
fs.writeFileSync(process.argv[2], out);
process.stdout.write(process.versions.unicode);
EOF

# shellcheck disable=SC2086
/usr/bin/python3 - "$work" "$out" "tiktoken@$TIKTOKEN_VERSION" $ENCODINGS <<'EOF'
import base64, json, os, struct, sys

work, out, source, encodings = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]

# The pre-tokenizer of each encoding is hand-written in common/tokens.c;
# refuse data whose pattern it does not implement.
PATTERNS = {
    "cl100k_base": r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+""",
    "o200k_base": r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+""",
}

def die(msg):
    sys.exit("fetch-tokenizer-data: " + msg)

with open(os.path.join(work, "classes"), "rb") as f:
    classes = f.read()
with open(os.path.join(work, "unicode-version")) as f:
    unicode_version = f.read().strip()
if len(classes) != 0x110000:
    die("bad Unicode class table")
blocks, index, stage1 = [], {}, []
for b in range(0x1100):
    blk = classes[b * 256:(b + 1) * 256]
    if blk not in index:
        index[blk] = len(blocks)
        blocks.append(blk)
    stage1.append(index[blk])

def fixed(s, n):
    b = s.encode()
    if len(b) >= n:
        die("'%s' is too long" % s)
    return b + b"\0" * (n - len(b))

for enc in encodings:
    with open(os.path.join(work, "package", "encoders", enc + ".json")) as f:
        data = json.load(f)
    if data.get("pat_str") != PATTERNS.get(enc):
        die("%s: unexpected pre-tokenization pattern" % enc)
    # Same reading as js-tiktoken's: a later duplicate would win.
    ranks = {}
    for line in data["bpe_ranks"].split("\n"):
        if not line:
            continue
        fields = line.split(" ")
        first = int(fields[1])
        for i, tok in enumerate(fields[2:]):
            ranks[base64.b64decode(tok, validate=True)] = first + i
    by_rank = sorted((r, t) for t, r in ranks.items())
    if [r for r, _ in by_rank] != list(range(len(by_rank))):
        die("%s: ranks are not 0..n-1" % enc)
    if any(not 1 <= len(t) <= 255 for _, t in by_rank):
        die("%s: a token is empty or longer than 255 bytes" % enc)
    offsets, blob = [0], bytearray()
    for _, tok in by_rank:
        blob += tok
        offsets.append(len(blob))
    parts = [
        b"CMTOKBIN",
        struct.pack("<IIII", 1, len(by_rank), len(blob), len(blocks)),
        fixed(enc, 16), fixed(unicode_version, 16), fixed(source, 32),
        struct.pack("<%dH" % len(stage1), *stage1),
        b"".join(blocks),
        struct.pack("<%dI" % len(offsets), *offsets),
        bytes(blob),
    ]
    tmp = os.path.join(out, "." + enc + ".bin.tmp")
    with open(tmp, "wb") as f:
        f.write(b"".join(parts))
    os.replace(tmp, os.path.join(out, enc + ".bin"))
EOF
