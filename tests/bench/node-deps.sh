#!/bin/sh
# Installs the npm tokenizers that chatmem's tokenizer is checked and
# measured against, at pinned versions whose tarball sha256 is checked,
# into build/node/ (quiet; nothing to do when they are there):
#
#   tests/bench/node-deps.sh   then   NODE_PATH=build/node/node_modules
#
# js-tiktoken: the pure-JS port, the reference of the exactness test.
# tiktoken: the WASM build of OpenAI's Rust tiktoken (also the source of
# the rank data, see ops/fetch-tokenizer-data.sh), for the benchmark.
set -eu

JS_TIKTOKEN_VERSION=1.0.21
JS_TIKTOKEN_SHA256=3b1f24b185565ca9a8d8f51466dfc4f99d67f1f05bc009258710ddb7a8d810fa
TIKTOKEN_VERSION=1.0.22
TIKTOKEN_SHA256=55c339e756fdb17604f7c7e3eb35d2bcbffe4d960e8096e50285d1cefa51dd90

here=$(cd "$(dirname "$0")/../.." && pwd)
cache=$here/build/npm
prefix=$here/build/node

die() {
	echo "node-deps: $*" >&2
	exit 1
}

installed() { # name version
	[ -f "$prefix/node_modules/$1/package.json" ] &&
		node -e 'process.exit(require(process.argv[1]).version ===
			process.argv[2] ? 0 : 1)' \
			"$prefix/node_modules/$1/package.json" "$2"
}

fetch() { # name version sha256
	tgz=$cache/$1-$2.tgz
	if [ ! -f "$tgz" ] ||
		[ "$(sha256sum "$tgz" | cut -d' ' -f1)" != "$3" ]; then
		rm -f "$tgz"
		(cd "$cache" && npm pack "$1@$2" --loglevel=error >/dev/null) ||
			die "cannot fetch npm package '$1@$2'"
		[ "$(sha256sum "$tgz" | cut -d' ' -f1)" = "$3" ] ||
			die "sha256 of '$tgz' is not $3"
	fi
}

command -v npm >/dev/null 2>&1 || die "'npm' is needed"
if installed js-tiktoken "$JS_TIKTOKEN_VERSION" &&
	installed tiktoken "$TIKTOKEN_VERSION"; then
	exit 0
fi
mkdir -p "$cache" "$prefix"
fetch js-tiktoken "$JS_TIKTOKEN_VERSION" "$JS_TIKTOKEN_SHA256"
fetch tiktoken "$TIKTOKEN_VERSION" "$TIKTOKEN_SHA256"
npm install --prefix "$prefix" --no-save --no-audit --no-fund \
	--loglevel=error \
	"$cache/js-tiktoken-$JS_TIKTOKEN_VERSION.tgz" \
	"$cache/tiktoken-$TIKTOKEN_VERSION.tgz" >/dev/null ||
	die "npm install into '$prefix' failed"
