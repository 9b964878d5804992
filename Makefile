# keel — plain Makefile. `make` builds build/keel; `make test` runs every test;
# `make test SAN=1` builds into build-san/ with ASan+UBSan and runs the same suite;
# `make BUILD=dir` builds elsewhere (parallel work trees of objects).

CC      ?= cc
PKGS    := libh2o libuv libcurl jansson yaml-0.1 openssl
CFLAGS  ?= -O2 -g
WARN    := -Wall -Wextra -Werror -Wstrict-prototypes -Wno-unused-parameter -Wno-missing-field-initializers -Wno-format-truncation
DEFS    := -D_GNU_SOURCE
LIBS    := $(shell pkg-config --libs $(PKGS)) -lm

ifeq ($(SAN),1)
BUILD   := build-san
CFLAGS  := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
LDSAN   := -fsanitize=address,undefined
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

.PHONY: all test unit e2e demo lint clean fuzz bench
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

unit: $(UNIT_BIN) lint
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; $$t; done

# Each e2e file starts its own keel and keel sim on kernel-chosen loopback ports, so files may
# run in parallel. npm packages come from the committed lockfile only.
e2e: $(BUILD)/keel
	@[ -d tests/e2e/node_modules/openai ] || (cd tests/e2e && npm ci --no-audit --no-fund)
	KEEL_BIN=$(CURDIR)/$(BUILD)/keel node --test tests/e2e/*.test.mjs

test: unit e2e

demo: $(BUILD)/keel
	$(BUILD)/keel demo

lint:
	@tools/lint.sh

# speed is measured here, never asserted in a test (needs wrk and nginx: apt-get install wrk nginx)
bench: $(BUILD)/keel $(BUILD)/streams
	bench/bench.sh

# bench/streams: the stream-capacity load driver (bench only)
$(BUILD)/streams: bench/streams.c
	@mkdir -p $(dir $@)
	@$(CC) $(CFLAGS) $(WARN) $(DEFS) -o $@ $< $(shell pkg-config --cflags --libs libuv)

# libFuzzer drivers, one per parser (STYLE T4); needs clang. Not part of `make test`:
# `make fuzz FUZZ_SECONDS=60` runs each for that long on its corpus.
FUZZ_SECONDS ?= 20
FUZZ_SRC     := $(CORE_SRC) src/config.c src/log.c
fuzz:
	@mkdir -p build-fuzz
	@for f in sse config chunk json; do \
	  clang -g -O1 -D_GNU_SOURCE -Isrc -fsanitize=fuzzer,address,undefined -o build-fuzz/fuzz_$$f \
	    tests/fuzz/fuzz_$$f.c $(FUZZ_SRC) $(shell pkg-config --cflags --libs jansson yaml-0.1) || exit 1; \
	  mkdir -p build-fuzz/corpus-$$f; \
	  echo "== fuzz_$$f ($(FUZZ_SECONDS)s)"; \
	  build-fuzz/fuzz_$$f -max_total_time=$(FUZZ_SECONDS) -max_len=4096 build-fuzz/corpus-$$f tests/fuzz/corpus/$$f \
	    2>&1 | tail -2 || exit 1; \
	done

clean:
	rm -rf build build-san build-fuzz
