#!/bin/sh
# Apache Kafka for tests, benchmarks and `make up KAFKA=apache`: a
# single-node KRaft broker (broker and controller in one JVM) of the
# official distribution, fetched as Maven artifacts (ops/kafka/pom.xml pins
# the version) and run with the machine's JDK.
#
#   ops/kafka.sh fetch
#       Copy the broker's jars into the cache (mvn), and compile
#       ops/kafka/Topics.java beside them, unless they are there already
#       (then quiet and quick).
#   ops/kafka.sh start [-d DIR] [-p PARTITIONS] [-f FILE]
#       Start a broker in the background on free ports and return once it
#       answers metadata requests; print its bootstrap address (and write it
#       to FILE). DIR holds its configuration, log directory, log file
#       (kafka.log) and pid (kafka.pid); without -d a throwaway directory is
#       made (and removed by stop). Started again with the DIR of a stopped
#       or killed broker, it restarts on the same data and the same ports.
#       PARTITIONS (default 8) is num.partitions, for auto-created topics.
#   ops/kafka.sh stop -d DIR
#       SIGTERM, then SIGKILL after 30 s; removes DIR if start made it.
#   ops/kafka.sh topics -b BOOTSTRAP [-p PARTITIONS] TOPIC[,key=value...]...
#       Create topics (PARTITIONS each, default 8, replication 1) in one
#       JVM; an existing topic is left as it is. Returns once every topic
#       has a leader. E.g. context.prebuilt,cleanup.policy=compact.
#   ops/kafka.sh home
#       Print the cache directory (libs/ holds the jars).
#
# Environment: CHATMEM_KAFKA_HOME (the cache, default
# ${XDG_CACHE_HOME:-$HOME/.cache}/chatmem/kafka-VERSION), JAVA (default
# java), CHATMEM_KAFKA_HEAP (default 256m), CHATMEM_KAFKA_JVM_OPTS (default
# "-XX:+UseSerialGC -XX:TieredStopAtLevel=1"), MVN (default mvn).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
POM=$here/kafka/pom.xml
VERSION=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$POM")
KHOME=${CHATMEM_KAFKA_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/chatmem/kafka-$VERSION}
JAVA=${JAVA:-java}
HEAP=${CHATMEM_KAFKA_HEAP:-256m}
# The broker's JVM flags: by default the quick-starting client compiler
# only (tests start brokers often); benchmarks want the full JIT.
JVM_OPTS=${CHATMEM_KAFKA_JVM_OPTS:--XX:+UseSerialGC -XX:TieredStopAtLevel=1}

die() {
	echo "kafka: $*" >&2
	exit 1
}

# The broker jar, the tool jars and Topics.class are the stamp of a
# complete fetch: they are moved in last.
fetched() {
	[ -f "$KHOME/libs/kafka_2.13-$VERSION.jar" ] && compiled
}

# Topics.java is compiled into a folder named by its checksum, so that
# checkouts of different versions can share the cache.
CLASSES=classes-$(sha256sum "$here/kafka/Topics.java" | cut -c1-16)
compiled() { [ -f "$KHOME/$CLASSES/Topics.class" ]; }

# Compiles ops/kafka/Topics.java against the jars in $1/libs into
# $1/$CLASSES.
compile_topics() {
	_tmp=$(mktemp -d "$1/classes.XXXXXX") || return 1
	javac -nowarn -cp "$1/libs/*" -d "$_tmp" "$here/kafka/Topics.java" ||
		{
			rm -rf "$_tmp"
			return 1
		}
	rm -rf "${1:?}/$CLASSES"
	mv "$_tmp" "$1/$CLASSES"
}

fetch() {
	fetched && return 0
	if [ -f "$KHOME/libs/kafka_2.13-$VERSION.jar" ]; then
		compile_topics "$KHOME" || die "cannot compile ops/kafka/Topics.java"
		return 0
	fi
	command -v mvn >/dev/null 2>&1 || command -v "${MVN:-mvn}" >/dev/null 2>&1 ||
		die "mvn is not installed (Apache Kafka is fetched with it from Maven Central)"
	command -v javac >/dev/null 2>&1 || die "javac (a JDK 17) is not installed"
	echo "kafka: fetching Apache Kafka $VERSION (org.apache.kafka:kafka_2.13) into $KHOME"
	mkdir -p "$KHOME"
	tmp=$(mktemp -d "$KHOME/fetch.XXXXXX")
	# shellcheck disable=SC2086
	if ! ${MVN:-mvn} -B -q -f "$POM" ${CHATMEM_KAFKA_M2:+-Dmaven.repo.local=$CHATMEM_KAFKA_M2} \
		dependency:copy-dependencies -DincludeScope=runtime \
		-DoutputDirectory="$tmp/libs" >"$tmp/mvn.log" 2>&1; then
		cat "$tmp/mvn.log" >&2
		rm -rf "$tmp"
		die "mvn could not fetch Apache Kafka $VERSION from Maven Central (output above)"
	fi
	compile_topics "$tmp" ||
		{
			rm -rf "$tmp"
			die "cannot compile ops/kafka/Topics.java"
		}
	rm -rf "$KHOME/libs" "${KHOME:?}/$CLASSES"
	mv "$tmp/libs" "$KHOME/libs"
	mv "$tmp/$CLASSES" "$KHOME/$CLASSES"
	rm -rf "$tmp"
}

# java with the broker's class path, a small heap, and a fast start on
# 2 cores (serial GC, C1 only).
kjava() {
	"$JAVA" -Xms64m -Xmx"$HEAP" -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
		-XX:-UsePerfData -Xss512k -Djava.awt.headless=true \
		-Dlog4j.configuration="file:$KHOME/log4j.properties" \
		-cp "$KHOME/libs/*:$KHOME/$CLASSES" "$@"
}

free_port() {
	/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Log4j: INFO and up to stdout (kafka.log), the request log off.
write_log4j() {
	[ -f "$KHOME/log4j.properties" ] && return 0
	cat >"$KHOME/log4j.properties.tmp" <<'LOG4J'
log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.org.apache.kafka.clients=WARN
log4j.logger.kafka.log.LogCleaner=INFO
LOG4J
	mv "$KHOME/log4j.properties.tmp" "$KHOME/log4j.properties"
}

# 22 characters of URL-safe base64 of 16 random bytes: a cluster id.
cluster_id() {
	head -c 16 /dev/urandom | base64 | tr '+/' '-_' | cut -c 1-22
}

# alive PID: the process runs (a zombie, killed and not yet reaped, does
# not).
alive() {
	case $(ps -o stat= -p "$1" 2>/dev/null) in
	"" | Z*) return 1 ;;
	esac
}

# Ready: the broker answers a metadata request and lists itself.
answers() {
	kcat -b "$1" -L -m 2 2>/dev/null | grep -q '^ *1 brokers:'
}

start() {
	dir=""
	partitions=8
	file=""
	while getopts d:p:f: opt; do
		case $opt in
		d) dir=$OPTARG ;;
		p) partitions=$OPTARG ;;
		f) file=$OPTARG ;;
		*) exit 2 ;;
		esac
	done
	fetched || die "Apache Kafka $VERSION is not fetched yet: run 'ops/kafka.sh fetch' (make deps does)"
	write_log4j
	if [ -z "$dir" ]; then
		dir=$(mktemp -d "${TMPDIR:-/tmp}/chatmem-kafka.XXXXXX")
		: >"$dir/throwaway"
	fi
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	if [ -f "$dir/kafka.pid" ] && alive "$(cat "$dir/kafka.pid")"; then
		die "a broker already runs on $dir (pid $(cat "$dir/kafka.pid"))"
	fi
	if [ ! -f "$dir/server.properties" ]; then
		port=$(free_port)
		cport=$(free_port)
		while [ "$cport" = "$port" ]; do cport=$(free_port); done
		cat >"$dir/server.properties.tmp" <<PROPS
# A single-node KRaft broker for chatmem's tests (ops/kafka.sh).
node.id=1
process.roles=broker,controller
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$dir/data
num.partitions=$partitions
auto.create.topics.enable=true
default.replication.factor=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=2
background.threads=2
num.recovery.threads.per.data.dir=1
log.cleaner.threads=1
log.cleaner.dedupe.buffer.size=8388608
log.segment.bytes=16777216
log.retention.hours=24
log.cleaner.backoff.ms=1000
delete.topic.enable=true
PROPS
		mv "$dir/server.properties.tmp" "$dir/server.properties"
	fi
	port=$(sed -n 's/^advertised.listeners=PLAINTEXT:\/\/127.0.0.1:\([0-9]*\)$/\1/p' "$dir/server.properties")
	bootstrap=127.0.0.1:$port
	if [ ! -f "$dir/data/meta.properties" ]; then
		kjava kafka.tools.StorageTool format -t "$(cluster_id)" \
			-c "$dir/server.properties" >>"$dir/kafka.log" 2>&1 ||
			{
				tail -20 "$dir/kafka.log" >&2
				die "cannot format $dir/data"
			}
	fi
	# setsid: the broker outlives this script and a test's process group
	# signals do not reach it; stop (or kill -9 of kafka.pid) ends it.
	# shellcheck disable=SC2086 # JVM_OPTS is a list of flags
	setsid "$JAVA" -Xms64m -Xmx"$HEAP" $JVM_OPTS \
		-XX:-UsePerfData -Djava.awt.headless=true \
		-Dlog4j.configuration="file:$KHOME/log4j.properties" \
		-Dkafka.logs.dir="$dir" \
		-cp "$KHOME/libs/*" kafka.Kafka "$dir/server.properties" \
		>>"$dir/kafka.log" 2>&1 </dev/null &
	pid=$!
	echo "$pid" >"$dir/kafka.pid"
	i=0
	until answers "$bootstrap"; do
		if ! alive "$pid"; then
			tail -20 "$dir/kafka.log" >&2
			die "the broker exited during start (log: $dir/kafka.log)"
		fi
		i=$((i + 1))
		if [ $i -gt 600 ]; then
			kill -KILL "$pid" 2>/dev/null || true
			die "the broker did not answer on $bootstrap within 60 s (log: $dir/kafka.log)"
		fi
		sleep 0.1
	done
	echo "$bootstrap" >"$dir/bootstrap"
	[ -f "$dir/throwaway" ] &&
		echo "kafka: broker in $dir; stop it with: ops/kafka.sh stop -d $dir" >&2
	if [ -n "$file" ]; then
		echo "$bootstrap" >"$file.tmp"
		mv "$file.tmp" "$file"
	fi
	echo "$bootstrap"
}

stop() {
	dir=""
	while getopts d: opt; do
		case $opt in
		d) dir=$OPTARG ;;
		*) exit 2 ;;
		esac
	done
	[ -n "$dir" ] || die "stop needs -d DIR"
	[ -d "$dir" ] || return 0
	if [ -f "$dir/kafka.pid" ]; then
		pid=$(cat "$dir/kafka.pid")
		if kill -TERM "$pid" 2>/dev/null; then
			i=0
			while alive "$pid" && [ $i -lt 300 ]; do
				sleep 0.1
				i=$((i + 1))
			done
			kill -KILL "$pid" 2>/dev/null || true
		fi
		rm -f "$dir/kafka.pid"
	fi
	[ -f "$dir/throwaway" ] && rm -rf "$dir"
	return 0
}

topics() {
	bootstrap=""
	partitions=8
	while getopts b:p:D opt; do
		case $opt in
		b) bootstrap=$OPTARG ;;
		p) partitions=$OPTARG ;;
		D) partitions=delete ;;
		*) exit 2 ;;
		esac
	done
	shift $((OPTIND - 1))
	[ -n "$bootstrap" ] && [ $# -gt 0 ] || die "usage: topics -b BOOTSTRAP [-p N | -D] TOPIC..."
	fetched || die "Apache Kafka $VERSION is not fetched yet: run 'ops/kafka.sh fetch'"
	write_log4j
	kjava -Dlog4j.configuration="file:$KHOME/log4j.properties" \
		-Dlog4j.rootLogger=WARN Topics "$bootstrap" "$partitions" "$@" 2>&1 |
		grep -v -e '^SLF4J' -e ' INFO ' >&2 || true
	[ "$partitions" = delete ] && return 0
	# The exit status of the pipeline's first command is lost in sh:
	# check the outcome with a metadata request instead.
	for t in "$@"; do
		kcat -b "$bootstrap" -L -t "${t%%,*}" -m 5 2>/dev/null |
			grep -q "topic \"${t%%,*}\" with [1-9]" ||
			die "topic '${t%%,*}' was not created"
	done
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case $cmd in
fetch) fetch ;;
start) start "$@" ;;
stop) stop "$@" ;;
topics) topics "$@" ;;
home) echo "$KHOME" ;;
*)
	echo "usage: $0 fetch | start [-d DIR] [-p N] [-f FILE] | stop -d DIR | topics -b BOOTSTRAP [-p N | -D] TOPIC... | home" >&2
	exit 2
	;;
esac
