# keel — plain Makefile. `make` builds build/keel; `make test` runs every test;
# `make test SAN=1` builds into build-san/ with ASan+UBSan and runs the same suite;
# `make BUILD=dir` builds elsewhere (parallel work trees of objects).

CC      ?= cc
PKGS    := libuv libcurl jansson yaml-0.1 openssl hiredis
CFLAGS  ?= -O2 -g
WARN    := -Wall -Wextra -Werror -Wstrict-prototypes -Wno-unused-parameter -Wno-missing-field-initializers -Wno-format-truncation
DEFS    := -D_GNU_SOURCE
LIBS    := $(shell pkg-config --libs $(PKGS)) -lm -pthread

ifeq ($(SAN),1)
BUILD   := build-san
CFLAGS  := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
LDSAN   := -fsanitize=address,undefined
else ifeq ($(SAN),thread)
# `make SAN=thread build-tsan/keel`: ThreadSanitizer, for the workers' shared state (README "Many cores")
BUILD   := build-tsan
CFLAGS  := -O1 -g -fno-omit-frame-pointer -fsanitize=thread
LDSAN   := -fsanitize=thread
else
BUILD   ?= build
LDSAN   :=
endif

ALL_CFLAGS := $(CFLAGS) $(WARN) $(DEFS) -Isrc $(shell pkg-config --cflags $(PKGS))

CORE_SRC := $(wildcard src/core/*.c)
IO_SRC   := $(wildcard src/io/*.c)
APP_SRC  := $(filter-out src/main.c,$(wildcard src/*.c))
CORE_OBJ := $(CORE_SRC:src/%.c=$(BUILD)/%.o)
OBJ      := $(CORE_OBJ) $(IO_SRC:src/%.c=$(BUILD)/%.o) $(APP_SRC:src/%.c=$(BUILD)/%.o) $(BUILD)/ui_html.o

UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: all test unit e2e demo lint clean fuzz bench bench-proxy bench-state bench-workers
all: $(BUILD)/keel

$(BUILD)/keel: $(OBJ) $(BUILD)/main.o
	@echo "  LD      $@"
	@$(CC) $(LDSAN) -o $@ $^ $(LIBS)

$(BUILD)/%.o: src/%.c $(wildcard src/*.h src/core/*.h src/io/*.h) Makefile
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(ALL_CFLAGS) -c -o $@ $<

# The status page is one HTML file compiled into the binary.
$(BUILD)/embed: tools/embed.c
	@mkdir -p $(dir $@)
	@$(CC) -O1 -o $@ $<

$(BUILD)/ui_html.c: src/ui.html $(BUILD)/embed
	@$(BUILD)/embed keel_ui_html $< $@

$(BUILD)/ui_html.o: $(BUILD)/ui_html.c
	@echo "  CC      $<"
	@$(CC) $(CFLAGS) -c -o $@ $<

# Unit tests link the whole program minus main.c, so they test modules through their headers.
$(BUILD)/tests/%: tests/unit/%.c $(OBJ)
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	@$(CC) $(ALL_CFLAGS) $(LDSAN) -o $@ $< $(OBJ) $(LIBS) -lcmocka

unit: $(UNIT_BIN) lint corpus
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; $$t; done

# The fuzz drivers' committed corpora run as unit tests: each driver built plainly (no libFuzzer)
# with a main() that feeds it every file of tests/fuzz/corpus/X once; SAN=1 checks them too.
CORPUS_BIN := $(patsubst tests/fuzz/fuzz_%.c,$(BUILD)/tests/corpus_%,$(wildcard tests/fuzz/fuzz_*.c))
.PHONY: corpus
$(BUILD)/tests/corpus_%: tests/fuzz/fuzz_%.c tests/fuzz/standalone.c $(OBJ)
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	@$(CC) $(ALL_CFLAGS) $(LDSAN) -o $@ $< tests/fuzz/standalone.c $(OBJ) $(LIBS)

corpus: $(CORPUS_BIN)
	@set -e; for t in $(CORPUS_BIN); do echo "== $$t"; $$t tests/fuzz/corpus/$${t##*/corpus_}; done

# Each e2e file starts its own keel and keel sim on kernel-chosen loopback ports, so files may
# run in parallel. npm packages come from the committed lockfile only.
e2e: $(BUILD)/keel
	@[ -d tests/e2e/node_modules/openai ] && [ -d tests/e2e/node_modules/@anthropic-ai/sdk ] || (cd tests/e2e && npm ci --no-audit --no-fund)
	KEEL_BIN=$(CURDIR)/$(BUILD)/keel node --test tests/e2e/*.test.mjs

test: unit e2e

demo: $(BUILD)/keel
	$(BUILD)/keel demo

lint:
	@tools/lint.sh

# speed is measured here, never asserted in a test (needs wrk and nginx: apt-get install wrk nginx)
bench: $(BUILD)/keel $(BUILD)/streams
	bench/bench.sh

# the proxy's own cost per request against a canned upstream (part 0 of bench): nginx vs keel,
# audit log off and on (bench/proxy.sh [SECONDS] [RUNS]; KEEL=BINARY measures another build)
bench-proxy: $(BUILD)/keel
	bench/proxy.sh

# what state: redis costs on the hot path, and how fast a trip reaches another instance
# keel with workers: 1 and 2 beside nginx with 1 and 2 workers, and the lock's cost per request
# with the model of many cores it gives (bench/workers.sh [SECONDS] [RUNS])
bench-workers: $(BUILD)/keel
	bench/workers.sh

bench-state: $(BUILD)/keel
	bench/state.sh

# bench/streams: the stream-capacity load driver (bench only)
$(BUILD)/streams: bench/streams.c
	@mkdir -p $(dir $@)
	@$(CC) $(CFLAGS) $(WARN) $(DEFS) -o $@ $< $(shell pkg-config --cflags --libs libuv)

# slow and hostile clients held against keel while normal traffic's latency is measured (bench
# only, never in `make test`; about 5 minutes). `make hostile HOSTILE_ARGS="10 1 600"` for a short run.
.PHONY: hostile
hostile: $(BUILD)/keel $(BUILD)/hostile $(BUILD)/hostile-shim.so
	BUILD=$(BUILD) bench/hostile.sh $(HOSTILE_ARGS)

$(BUILD)/hostile: bench/hostile.c
	@mkdir -p $(dir $@)
	@$(CC) $(CFLAGS) $(WARN) $(DEFS) -o $@ $< $(shell pkg-config --cflags --libs libuv)

$(BUILD)/hostile-shim.so: bench/hostile-shim.c
	@mkdir -p $(dir $@)
	@$(CC) $(CFLAGS) $(WARN) -shared -fPIC -o $@ $< -ldl

# libFuzzer drivers (STYLE T4): the parsers, an upstream's answer through classification and
# relay (upstream), a client's bytes through the server and the request handler (request). Needs
# clang; not part of `make test` (their committed corpora are: see `corpus`). `make fuzz` runs
# each driver FUZZ_SECONDS (`make fuzz FUZZ_SECONDS=600` is the long run) on its corpus, its
# output in build-fuzz/fuzz_X.log, and fails on any finding (crash, leak, timeout, OOM) after
# naming the reproducer. Objects are clang-built with coverage into build-fuzz/obj, archived so a
# driver links only the modules it reaches.
FUZZ_SECONDS ?= 20
FUZZ_DRIVERS := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS  := -g -O1 -fno-omit-frame-pointer $(FUZZ_SAN) $(DEFS) -Isrc $(shell pkg-config --cflags $(PKGS))
FUZZ_OBJ     := $(patsubst $(BUILD)/%,build-fuzz/obj/%,$(OBJ))

build-fuzz/obj/%.o: src/%.c $(wildcard src/*.h src/core/*.h src/io/*.h) Makefile
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	@clang $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

build-fuzz/obj/ui_html.o: src/ui.html tools/embed.c
	@mkdir -p $(dir $@)
	@clang -O1 -o build-fuzz/embed tools/embed.c
	@build-fuzz/embed keel_ui_html src/ui.html build-fuzz/ui_html.c
	@clang -O1 -c -o $@ build-fuzz/ui_html.c

build-fuzz/libkeel.a: $(FUZZ_OBJ)
	@rm -f $@
	@ar rcs $@ $^

build-fuzz/fuzz_%: tests/fuzz/fuzz_%.c build-fuzz/libkeel.a
	@echo "  LD      $@"
	@clang $(FUZZ_CFLAGS) $(WARN) -Wno-unknown-warning-option -fsanitize=fuzzer -o $@ $< build-fuzz/libkeel.a $(LIBS)

fuzz: $(FUZZ_DRIVERS:%=build-fuzz/fuzz_%)
	@failed=""; for f in $(FUZZ_DRIVERS); do \
	  log=build-fuzz/fuzz_$$f.log; art=build-fuzz/findings-$$f/; \
	  mkdir -p build-fuzz/corpus-$$f $$art; \
	  case $$f in request) len=16384;; *) len=4096;; esac; \
	  dict=; [ -f tests/fuzz/$$f.dict ] && dict=-dict=tests/fuzz/$$f.dict; \
	  echo "== fuzz_$$f ($(FUZZ_SECONDS)s, log $$log)"; \
	  build-fuzz/fuzz_$$f -max_total_time=$(FUZZ_SECONDS) -max_len=$$len -timeout=30 $$dict \
	    -artifact_prefix=$$art build-fuzz/corpus-$$f tests/fuzz/corpus/$$f >$$log 2>&1; rc=$$?; \
	  grep -E '^#[0-9]+.*cov:' $$log | tail -n 1; grep -E '^Done [0-9]+ runs' $$log; \
	  if [ $$rc -ne 0 ]; then \
	    failed="$$failed $$f"; \
	    echo "fuzz_$$f: FAILED (exit $$rc); reproducer: $$(sed -n 's/.*Test unit written to \([^ ]*\).*/\1/p' $$log | tail -n 1)"; \
	    grep -m 1 -E '^SUMMARY|invariant broken|^==[0-9]+== ERROR: libFuzzer' $$log | sed 's/^/  /'; \
	    echo "  replay: build-fuzz/fuzz_$$f <reproducer>; details in $$log"; \
	  fi; \
	done; \
	if [ -n "$$failed" ]; then echo "make fuzz: findings in:$$failed"; exit 1; fi

# The soak (bench/soak.sh, bench/soak.mjs; bench only, never in `make test`): 100k requests
# through 3-deep chains of `keel sim` chaos targets, each checked; about 10 minutes. SAN=1 runs
# the ASan+UBSan build with 10k. SOAK_REQUESTS, SOAK_RATE, SOAK_SEED, SOAK_RESULTS: see soak.sh.
.PHONY: soak
soak: $(BUILD)/keel
	BUILD=$(BUILD) SOAK_SAN=$(SAN) bench/soak.sh

clean:
	rm -rf build build-san build-fuzz
