# chatmem — one plain Makefile.
#
#   make            build everything (says which packages are missing; it
#                   never installs: `make deps` does)
#   make deps       install the missing Debian packages (apt-get)
#   make test       install what is missing (Apache Kafka included), build,
#                   check the formatting, run the unit and integration tests
#                   (E2E_BROKERS="dev apache" by default)
#   make demo       start a local fleet, play the seed conversation, stop
#   make up / down  keep a local fleet running for manual use
#                   (KAFKA=apache: on Apache Kafka instead of the devbroker)
#   make SANITIZE=1 build (and test) with ASan/UBSan
#   make fuzz       run each libFuzzer target of tests/fuzz for FUZZ_SECONDS
#                   (default 60) with clang, ASan and UBSan (ops/fuzz.sh)
#   make V=1        show the commands
#   make valgrind   every worker and the CLI under valgrind (leaks, invalid
#                   accesses) through a short scenario
#   make bench-tokenizer  tokenizer speed against the npm tiktokens
#   make bench-summarize  extractive summarizer speed
#   make bench-recall     recall latency on a 700-turn session
#   make soak       the fault-injection soak on Apache Kafka (minutes)

OPT      ?= -O2
CC       ?= cc
# Libraries, through pkg-config (recursive variables: evaluated after
# `make deps` installed them).
PKGS      = rdkafka hiredis json-c libconfig libcurl libzstd libmicrohttpd
CFLAGS_BASE = -std=c11 -D_GNU_SOURCE -g $(OPT) -Wall -Wextra \
	      -Wstrict-prototypes -Wshadow -Wno-missing-field-initializers \
	      -Werror -MMD -MP -Icommon \
	      -DCM_TOKENIZER_DATA_DIR='"$(CURDIR)/$(DATA_DIR)"'
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS))
LDLIBS    = $(shell pkg-config --libs $(PKGS)) -lm -lpthread

ifeq ($(FUZZ),1)
# The library and the fuzz targets for `make fuzz`: clang's libFuzzer
# (linked into the targets only), ASan and UBSan.
CC        = clang-14
VARIANT   = fuzz
SANFLAGS  = -fsanitize=fuzzer-no-link,address,undefined \
	    -fno-omit-frame-pointer -fno-sanitize-recover=undefined
BIN       = build/fuzz/bin
else ifeq ($(SANITIZE),1)
VARIANT   = san
SANFLAGS  = -fsanitize=address,undefined -fno-omit-frame-pointer \
	    -fno-sanitize-recover=undefined
BIN       = build/san/bin
else
VARIANT   = rel
SANFLAGS  =
BIN       = bin
endif

BUILD     = build/$(VARIANT)
# Tokenizer data (rank tables), made from a pinned npm package; not in git.
DATA_DIR   = build/data
TOKEN_DATA = $(DATA_DIR)/cl100k_base.bin $(DATA_DIR)/o200k_base.bin
CFLAGS   += $(CFLAGS_BASE) $(PKG_CFLAGS) $(SANFLAGS)
LDFLAGS  += $(SANFLAGS)

ifeq ($(V),1)
Q =
else
Q = @
endif

COMMON_SRC = $(wildcard common/*.c)
COMMON_OBJ = $(COMMON_SRC:%.c=$(BUILD)/%.o)
LIB        = $(BUILD)/libchatmem.a

WORKERS    = $(notdir $(wildcard workers/*))
WORKER_BIN = $(WORKERS:%=$(BIN)/chatmem-%)
TOOL_BIN   = $(BIN)/chatmem $(BIN)/chatmem-devbroker $(BIN)/chatmem-bench
ALL_BIN    = $(WORKER_BIN) $(TOOL_BIN)

UNIT_SRC   = $(wildcard tests/test_*.c)
UNIT_BIN   = $(UNIT_SRC:tests/%.c=$(BUILD)/tests/%)
E2E        = $(sort $(wildcard tests/test_e2e_*.sh))
# Fuzz targets (tests/fuzz/fuzz_<name>.c), each also linked with
# tests/fuzz/replay.c into a replay of its committed inputs.
FUZZ_NAMES = $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
REPLAY_BIN = $(FUZZ_NAMES:%=$(BUILD)/tests/fuzz/replay_%)

.PHONY: all deps check-deps test unit e2e demo up down clean format \
	fmt-check bench-tokenizer bench-summarize bench-recall token-table \
	fuzz fuzz-build
.DEFAULT_GOAL := all

all: check-deps
	$(Q)$(MAKE) --no-print-directory build

.PHONY: build
build: $(ALL_BIN) $(UNIT_BIN) $(REPLAY_BIN) $(TOKEN_DATA)

$(TOKEN_DATA) &: ops/fetch-tokenizer-data.sh
	@$(if $(Q),echo "  GEN     $(TOKEN_DATA)")
	$(Q)ops/fetch-tokenizer-data.sh $(DATA_DIR)

deps:
	$(Q)ops/install-deps.sh

check-deps:
	$(Q)ops/install-deps.sh check

# Every program links the same way; tests add cmocka.
define link
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
endef

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) -c -o $@ $<

# The Redis Lua scripts (common/lua/*.lua), embedded in the store as C
# strings with their SHA1, generated under build/ (never in git).
LUA_SRC = $(sort $(wildcard common/lua/*.lua))
LUA_GEN = $(BUILD)/gen/lua_scripts.h
$(LUA_GEN): $(LUA_SRC) ops/embed-lua.py
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  GEN     $@")
	$(Q)/usr/bin/python3 ops/embed-lua.py $@ $(LUA_SRC)
$(BUILD)/common/store.o: $(LUA_GEN)
$(BUILD)/common/store.o: CFLAGS += -I$(BUILD)/gen

$(LIB): $(COMMON_OBJ)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

$(BIN)/chatmem-%: $(BUILD)/workers/%/main.o $(LIB)
	$(link)

# What the CLI and the bench share (tools/shared), on their include path.
TOOL_SHARED_OBJ  = $(patsubst %.c,$(BUILD)/%.o,$(wildcard tools/shared/*.c))
$(BUILD)/tools/%.o: CFLAGS += -Itools/shared
TOOL_CHATMEM_OBJ = $(patsubst %.c,$(BUILD)/%.o,$(wildcard tools/chatmem/*.c)) \
		   $(TOOL_SHARED_OBJ)
$(BIN)/chatmem: $(TOOL_CHATMEM_OBJ) $(LIB)
	$(link)

$(BIN)/chatmem-devbroker: $(BUILD)/tools/devbroker/main.o $(LIB)
	$(link)

$(UNIT_BIN): LDLIBS += $(shell pkg-config --libs cmocka)
$(BUILD)/tests/%: $(BUILD)/tests/%.o $(LIB)
	$(link)

$(BUILD)/tests/fuzz/replay_%: $(BUILD)/tests/fuzz/replay.o \
			      $(BUILD)/tests/fuzz/fuzz_%.o $(LIB)
	$(link)

# Tests: units first (fast, no services), then the integration scripts, each
# of which starts its own redis-server on a free port, on a devbroker of its
# own and/or the run's Apache Kafka (tests/run-e2e.sh, tests/lib.sh).
E2E_BROKERS ?= dev apache
test:
	$(Q)ops/install-deps.sh kafka
	$(Q)$(MAKE) --no-print-directory build
	$(Q)$(MAKE) --no-print-directory fmt-check unit clients e2e

# Both client libraries' dependencies and broker-less tests (their fleet
# tests are tests/test_e2e_client_*.sh).
.PHONY: clients
clients: node-client python-client

unit: $(UNIT_BIN) $(REPLAY_BIN) $(TOKEN_DATA)
	$(Q)set -e; for t in $(UNIT_BIN); do echo "== $$t"; \
	    CHATMEM_SRC=$(CURDIR) $$t; done
	$(Q)set -e; for n in $(FUZZ_NAMES); do \
	    $(BUILD)/tests/fuzz/replay_$$n tests/fuzz/corpus/$$n \
	    tests/fuzz/regressions/$$n; done
	$(Q)set -e; for s in schemas/*.schema.json; do \
	    f=tests/fixtures/$$(basename $$s .schema.json); echo "== $$s"; \
	    /usr/bin/python3 tests/validate_schema.py $$s $$f-valid.jsonl; \
	    /usr/bin/python3 tests/validate_schema.py --invalid $$s \
	    $$f-invalid.jsonl; done

# Fuzzing (not part of `make test`): the targets built with clang
# (FUZZ=1 above, into build/fuzz), then each run for FUZZ_SECONDS on a copy
# of its corpus under build/fuzz/corpus (ops/fuzz.sh).
FUZZ_SECONDS ?= 60
fuzz: $(TOKEN_DATA)
	$(Q)ops/install-deps.sh fuzz
	$(Q)$(MAKE) --no-print-directory FUZZ=1 fuzz-build
	$(Q)ops/fuzz.sh $(FUZZ_SECONDS) $(FUZZ_NAMES)

fuzz-build: $(FUZZ_NAMES:%=$(BIN)/fuzz_%)
$(BIN)/fuzz_%: LDFLAGS += -fsanitize=fuzzer
$(BIN)/fuzz_%: $(BUILD)/tests/fuzz/fuzz_%.o $(LIB)
	$(link)

e2e: $(ALL_BIN)
	$(Q)CHATMEM_BIN=$(CURDIR)/$(BIN) CHATMEM_E2E_BROKERS='$(E2E_BROKERS)' \
	    tests/run-e2e.sh $(E2E)

demo: deps
	$(Q)$(MAKE) --no-print-directory build
	$(Q)CHATMEM_BIN=$(CURDIR)/$(BIN) ops/fleet.sh demo

KAFKA ?= dev
up:
	$(Q)ops/install-deps.sh $(if $(filter apache,$(KAFKA)),kafka)
	$(Q)$(MAKE) --no-print-directory build
	$(Q)CHATMEM_BIN=$(CURDIR)/$(BIN) CHATMEM_KAFKA=$(KAFKA) ops/fleet.sh up

down:
	$(Q)ops/fleet.sh down

# Tokenizer speed: chatmem's C against js-tiktoken and the WASM tiktoken,
# side by side in one run (tests/bench/tokenizer.js prints the table).
BENCH_TOKENS = $(BUILD)/tests/bench/bench_tokens
$(BENCH_TOKENS): $(BUILD)/tests/bench/bench_tokens.o $(LIB)
	$(link)

bench-tokenizer: deps
	$(Q)$(MAKE) --no-print-directory build $(BENCH_TOKENS)
	$(Q)tests/bench/node-deps.sh
	$(Q)NODE_PATH=$(CURDIR)/build/node/node_modules node \
	    tests/bench/tokenizer.js $(BENCH_TOKENS) $(CURDIR) $(BUILD)/bench

# Extractive summarizer speed: one fold of ten typical messages
# (tests/bench/bench_summarize.c, linked by the rule of the unit tests);
# prints microseconds per fold.
BENCH_SUMMARIZE = $(BUILD)/tests/bench/bench_summarize
bench-summarize: $(BENCH_SUMMARIZE) $(TOKEN_DATA)
	$(Q)$(BENCH_SUMMARIZE)

# Recall latency: index build, search and the context build with and
# without recall on a synthetic 700-turn session
# (tests/bench/bench_recall.c); prints p50/p99 microseconds.
BENCH_RECALL = $(BUILD)/tests/bench/bench_recall
bench-recall: $(BENCH_RECALL) $(TOKEN_DATA)
	$(Q)$(BENCH_RECALL)

# Token reduction on the seed-style conversation (tests/seed50.py), exact
# cl100k_base counts: full history against chatmem's context.
TOKEN_TABLE = $(BUILD)/tests/bench/token_table
$(TOKEN_TABLE): $(BUILD)/tests/bench/token_table.o $(LIB)
	$(link)

token-table: $(TOKEN_TABLE) $(TOKEN_DATA)
	@mkdir -p $(BUILD)/bench
	$(Q)/usr/bin/python3 tests/seed50.py >$(BUILD)/bench/seed50.jsonl
	$(Q)$(TOKEN_TABLE) $(BUILD)/bench/seed50.jsonl

C_FILES = $(wildcard common/*.[ch] workers/*/*.c tools/*/*.[ch] tests/*.c \
	  tests/bench/*.c tests/eval/*.c tests/fuzz/*.[ch])
format:
	clang-format -i $(C_FILES)

fmt-check:
	@$(if $(Q),echo "  FMT     $(words $(C_FILES)) files")
	$(Q)clang-format --dry-run -Werror $(C_FILES)

# Evaluation of profile extraction and the extractive summarizer on real
# dialogue beside the repository (not part of `make test`); says so and
# passes when the data is absent.
EVAL_DATA ?= ../shared/data/synthetic-persona-chat/valid.csv
.PHONY: eval
eval: $(BUILD)/tests/eval/eval_profile
	$(Q)$(BUILD)/tests/eval/eval_profile $(EVAL_DATA)

$(BUILD)/tests/eval/eval_profile: $(BUILD)/tests/eval/eval_profile.o $(LIB)
	$(link)

# Answer retention of the fleet's contexts on LoCoMo's very long
# conversations beside the repository, against the last-N-tokens and BM25
# baselines (tests/eval/eval_memory.c); ops/eval-memory.sh starts and stops
# its own redis-server, devbroker and workers (EVAL_MEMORY_* settings
# there). Not part of `make test`; says so and passes when the data is
# absent. Report: build/eval/memory.json.
EVAL_MEMORY_DATA ?= ../shared/data/locomo-dev/locomo-dev.json
EVAL_MEMORY     = $(BUILD)/tests/eval/eval_memory
EVAL_MEMORY_OBJ = $(patsubst %,$(BUILD)/tests/eval/%.o,eval_memory \
		  memory_data memory_baseline memory_fleet)
$(EVAL_MEMORY_OBJ): CFLAGS += -Itools/shared
$(EVAL_MEMORY): $(EVAL_MEMORY_OBJ) $(TOOL_SHARED_OBJ) $(LIB)
	$(link)

.PHONY: eval-memory
eval-memory: $(ALL_BIN) $(EVAL_MEMORY) $(TOKEN_DATA)
	$(Q)CHATMEM_BIN=$(CURDIR)/$(BIN) EVAL_MEMORY_DATA='$(EVAL_MEMORY_DATA)' \
	    ops/eval-memory.sh $(CURDIR)/$(EVAL_MEMORY) $(CURDIR)/build/eval

# Every worker and the CLI under valgrind through a short scenario
# (tests/valgrind.sh): fails on any leak (definitely or indirectly lost)
# or invalid access. Not part of `make test` (about a minute). Uses the
# plain build (valgrind and ASan do not mix).
.PHONY: valgrind
valgrind:
	$(Q)$(MAKE) --no-print-directory build SANITIZE=
	$(Q)CHATMEM_BIN=$(CURDIR)/bin tests/valgrind.sh

clean:
	rm -rf build bin


# The Node.js client (clients/node, the npm package chatmem): its pinned
# dependencies (clients/node/scripts/install-deps.sh: npm ci from the npm
# registry, only when missing or package-lock.json changed), then its
# broker-less tests: the wire types in clients/node/types/ regenerated from
# schemas/ and compared, tsc --noEmit over test/types-check.ts, the unit
# tests. tests/test_e2e_client_node.sh runs it against a fleet.
.PHONY: node-client
node-client:
	$(Q)clients/node/scripts/install-deps.sh
	$(Q)cd clients/node && node --test test/unit.test.js test/protocol.test.js test/types.test.js

# Load generator for `make bench` (tools/bench), and the benchmark itself:
# its own fleet, ingest/context/build/cost/memory, a report under
# build/bench/ (ops/bench.sh documents the BENCH_* settings).
TOOL_BENCH_OBJ = $(patsubst %.c,$(BUILD)/%.o,$(wildcard tools/bench/*.c)) \
		 $(TOOL_SHARED_OBJ)
$(BIN)/chatmem-bench: $(TOOL_BENCH_OBJ) $(LIB)
	$(link)

.PHONY: bench
bench:
	$(Q)ops/install-deps.sh bench
	$(Q)$(MAKE) --no-print-directory build python-client-env
	$(Q)clients/node/scripts/install-deps.sh
	$(Q)CHATMEM_BIN=$(CURDIR)/$(BIN) CHATMEM_KAFKA=$(KAFKA) \
	    ops/bench.sh $(CURDIR)/build/bench

# The fault-injection soak on Apache Kafka (tests/soak.sh: SOAK_EVENTS,
# SOAK_SESSIONS, SOAK_SECONDS, SOAK_RATE); its report is in
# tests/out/soak.apache/report.txt. A shorter one runs in `make test`.
.PHONY: soak
soak:
	$(Q)ops/install-deps.sh kafka
	$(Q)$(MAKE) --no-print-directory build
	$(Q)CHATMEM_BIN=$(CURDIR)/$(BIN) T_BROKER=apache tests/soak.sh

# Header dependencies (-MMD) of every object this Makefile knows.
ALL_OBJ = $(COMMON_OBJ) $(WORKERS:%=$(BUILD)/workers/%/main.o) \
	  $(TOOL_CHATMEM_OBJ) $(TOOL_BENCH_OBJ) \
	  $(BUILD)/tools/devbroker/main.o $(UNIT_BIN:%=%.o) \
	  $(BENCH_TOKENS).o $(TOKEN_TABLE).o $(BENCH_SUMMARIZE).o $(BENCH_RECALL).o \
	  $(BUILD)/tests/eval/eval_profile.o $(EVAL_MEMORY_OBJ) \
	  $(BUILD)/tests/fuzz/replay.o $(FUZZ_NAMES:%=$(BUILD)/tests/fuzz/fuzz_%.o)
-include $(ALL_OBJ:.o=.d)

# The Python client (clients/python): a virtualenv in build/py-client with
# the package installed from clients/python as a user would (not
# editable), and its test tools, at the versions of
# clients/python/constraints.txt; refreshed when the package changes
# (setuptools' in-tree build directories are removed, so that a file
# deleted from the package cannot linger in it).
# `make python-client` also checks it with mypy --strict and runs its
# broker-less unit tests;
# tests/test_e2e_client_python.sh runs the others against a fleet.
PY_CLIENT     = clients/python
PY_CLIENT_ENV = build/py-client
PY_CLIENT_IN  = $(PY_CLIENT)/pyproject.toml $(PY_CLIENT)/constraints.txt \
		$(PY_CLIENT)/README.md $(wildcard $(PY_CLIENT)/src/chatmem/*)
.PHONY: python-client python-client-env
python-client: $(PY_CLIENT_ENV)/.installed
	$(Q)$(PY_CLIENT_ENV)/bin/python -m mypy --config-file $(PY_CLIENT)/pyproject.toml \
	    --cache-dir $(PY_CLIENT_ENV)/mypy-cache $(PY_CLIENT)/src/chatmem $(PY_CLIENT)/bench
	$(Q)cd $(PY_CLIENT) && $(CURDIR)/$(PY_CLIENT_ENV)/bin/python -m pytest \
	    -q -p no:cacheprovider tests/unit

python-client-env: $(PY_CLIENT_ENV)/.installed

$(PY_CLIENT_ENV)/.installed: $(PY_CLIENT_IN)
	@$(if $(Q),echo "  PIP     $(PY_CLIENT_ENV)")
	$(Q)test -x $(PY_CLIENT_ENV)/bin/python || /usr/bin/python3 -m venv $(PY_CLIENT_ENV)
	$(Q)rm -rf $(PY_CLIENT)/build $(PY_CLIENT)/src/*.egg-info
	$(Q)$(PY_CLIENT_ENV)/bin/python -m pip install -q --disable-pip-version-check \
	    -c $(PY_CLIENT)/constraints.txt "./$(PY_CLIENT)[dev]"
	$(Q)rm -rf $(PY_CLIENT)/build $(PY_CLIENT)/src/*.egg-info
	$(Q)touch $@
