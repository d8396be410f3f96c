#!/bin/sh
# Installs the Debian packages chatmem needs to build, run and test, when
# they are missing. Silent and quick when everything is present; runs
# apt-get update first otherwise (a fresh machine knows no package before).
#
#   ops/install-deps.sh         build and run (make demo, make up)
#   ops/install-deps.sh kafka   also Apache Kafka for the tests (make test):
#                               a JDK and Maven when missing, then the broker
#                               fetched from Maven Central into a cache
#                               (ops/kafka.sh fetch; quiet when it is there)
#   ops/install-deps.sh bench   kafka, and gnuplot-nox for make bench's plot
#   ops/install-deps.sh fuzz    also clang 14 and its libFuzzer and sanitizer
#                               runtimes for make fuzz (make test needs none)
#   ops/install-deps.sh check   install nothing: name what is missing and
#                               fail (plain `make`)
set -eu

PKGS="build-essential pkg-config librdkafka-dev libhiredis-dev libjson-c-dev
libconfig-dev libcurl4-openssl-dev libzstd-dev libmicrohttpd-dev libcmocka-dev
redis-server redis-tools
kcat python3 python3-jsonschema python3-yaml python3-venv clang-format curl systemd"
[ "${1:-}" = bench ] && PKGS="$PKGS gnuplot-nox"
[ "${1:-}" = fuzz ] && PKGS="$PKGS clang-14 libclang-rt-14-dev"
# Apache Kafka runs on any JDK >= 17 and is fetched with Maven; Debian's
# packages only when none is there.
kafka=""
case ${1:-} in kafka | bench) kafka=1 ;; esac
if [ -n "$kafka" ]; then
	command -v javac >/dev/null 2>&1 || PKGS="$PKGS openjdk-17-jdk-headless"
	command -v mvn >/dev/null 2>&1 || PKGS="$PKGS maven"
fi
fetch_kafka() {
	[ -z "$kafka" ] || "$(dirname "$0")/kafka.sh" fetch
}

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
		grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done
# Node.js and npm build the tokenizer data (ops/fetch-tokenizer-data.sh)
# and run the exactness test; any node >= 18 will do, from Debian or not.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
	missing="$missing nodejs npm"
fi
if [ -z "$missing" ]; then
	fetch_kafka
	exit 0
fi
if [ "${1:-}" = check ]; then
	echo "missing packages:$missing" >&2
	echo "install them with 'make deps' (make test and make demo do it too)" >&2
	exit 1
fi

echo "install-deps: installing:$missing"
if [ "$(id -u)" = 0 ]; then
	SUDO=""
elif command -v sudo >/dev/null 2>&1; then
	SUDO="sudo"
else
	echo "install-deps: need root or sudo to install:$missing" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fetch_kafka
