# Build, test and run the CDN. `make run` and `make test` are the two
# commands a new user needs: both install missing Debian packages first.
#
#   make              bin/edge, bin/shield, bin/origin
#   make test         unit + integration tests (Criterion)
#   make test SANITIZE=address,undefined
#   make run          origin + edge on loopback with the embedded default config
#   make cdn          the default multi-region topology in the background (deploy/cdn)
#   make bench        cache-hit throughput vs nginx and Varnish (wrk), purges,
#                     image transforms, the rate limiter's cost

# `make` alone builds the programs (rules above `all:` must not become the default).
.DEFAULT_GOAL := all

CC      ?= cc
SANITIZE ?=
comma := ,
PKGS    := libuv libcurl lmdb jansson vips libcrypto
DEB_PKGS := libuv1-dev node-llhttp libcurl4-openssl-dev liblmdb-dev libjansson-dev libvips-dev \
            libssl-dev libcriterion-dev pkg-config chromium
# check-deploy: systemd-analyze (systemd) and yamllint.
DEB_PKGS += systemd yamllint
# cdnload's plots (offload.png, latency.png, rps.png next to its report).
DEB_PKGS += gnuplot-nox
LLHTTP_SRC := /usr/share/llhttp
LLHTTP_INC := /usr/share/include/llhttp

ifeq ($(SANITIZE),)
BUILD   := build/release
BIN     := bin
SANFLAGS :=
else
BUILD   := build/san-$(subst $(comma),-,$(SANITIZE))
BIN     := $(BUILD)/bin
SANFLAGS := -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
endif
# pkg-config is queried lazily so `make deps` works before the packages exist.
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CRIT_LIBS  = $(shell pkg-config --libs criterion 2>/dev/null)

CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter \
           -Iinclude -I$(LLHTTP_INC) -MMD -MP -pthread $(SANFLAGS) $(PKG_CFLAGS)
# clang (make fuzz) also flags positional initialisers that leave trailing
# fields zero, which the tables rely on; gcc does not.
ifneq ($(findstring clang,$(CC)),)
CFLAGS  += -Wno-missing-field-initializers
endif
LDFLAGS += -pthread $(SANFLAGS)
LDLIBS  = $(PKG_LIBS) -lm

CORE_SRC   := $(wildcard core/*.c) $(wildcard policies/*.c)
# The status page (core/status_page.html) is compiled in as a byte array.
GEN_OBJ    := $(BUILD)/gen/status_page.o
CORE_OBJ   := $(CORE_SRC:%.c=$(BUILD)/%.o) $(GEN_OBJ)
LLHTTP_OBJ := $(BUILD)/llhttp/llhttp.o $(BUILD)/llhttp/api.o $(BUILD)/llhttp/http.o
EDGE_OBJ   := $(patsubst %.c,$(BUILD)/%.o,$(wildcard edge/*.c))
SHIELD_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(wildcard shield/*.c))
SYNTH_OBJ  := $(patsubst %.c,$(BUILD)/%.o,$(wildcard loadtest/synth.c))
ORIGIN_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(wildcard loadtest/origin*.c)) $(SYNTH_OBJ)
# The load generator's parts (scenario, Zipf draws, plots), unit-tested on their own.
CDNLOAD_LIB_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(wildcard loadtest/cdnload_*.c))
UNIT_OBJ   := $(patsubst %.c,$(BUILD)/%.o,$(wildcard tests/unit/*/*.c))
# Fuzzing (docs/FUZZING.md): one libFuzzer target per parser,
# tests/fuzz/fuzz_NAME.c, its seeds and past crashes in tests/fuzz/corpus/NAME/.
FUZZ_NAMES := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
INTEG_OBJ  := $(patsubst %.c,$(BUILD)/%.o,$(wildcard tests/integration/*.c))
# include/ is the engine's API. The origin's headers (origin.h, synth.h)
# live in loadtest/ and the test harness's in tests/: only their own
# objects and the tests see them, so the engine cannot include them.
$(BUILD)/loadtest/%.o: XINC := -Iloadtest
$(BUILD)/tests/%.o:    XINC := -Itests/integration -Iloadtest
# The git revision (core/version.c: build info, the status page); "unknown"
# outside git. $(BUILD)/gen/revision changes only when the revision does,
# so version.o is rebuilt (and the programs relinked) exactly then.
CDN_REVISION := $(shell git describe --always --dirty 2>/dev/null || echo unknown)
REVISION_FILE := $(BUILD)/gen/revision
$(shell mkdir -p $(BUILD)/gen && { [ "$$(cat $(REVISION_FILE) 2>/dev/null)" = "$(CDN_REVISION)" ] || echo "$(CDN_REVISION)" > $(REVISION_FILE); })
$(BUILD)/core/version.o: $(REVISION_FILE)
$(BUILD)/core/version.o: XINC := -DCDN_REVISION='"$(CDN_REVISION)"'

.PHONY: all deps deps-check test unit integration run bench clean readme-table check-readme check-layers fuzz fuzz-replay \
        check-deploy cdn cdn-down check-cdn loadtest
all: $(BIN)/edge $(BIN)/shield $(BIN)/origin $(BIN)/cdnload

$(BIN)/edge: $(EDGE_OBJ) $(CORE_OBJ) $(LLHTTP_OBJ)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BIN)/shield: $(SHIELD_OBJ) $(CORE_OBJ) $(LLHTTP_OBJ)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BIN)/origin: $(ORIGIN_OBJ) $(CORE_OBJ) $(LLHTTP_OBJ)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The load generator links the engine's base parts (buf, config parsing)
# and the origin's content (synth) it checks every body against.
$(BIN)/cdnload: $(BUILD)/loadtest/cdnload.o $(CDNLOAD_LIB_OBJ) $(SYNTH_OBJ) $(CORE_OBJ) $(LLHTTP_OBJ)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The in-process yardstick of the image benchmark: the engine's own
# image_transform, linked like bin/origin, so it measures the edge's code.
$(BIN)/image-bench: $(BUILD)/loadtest/bench_image.o $(CORE_OBJ) $(LLHTTP_OBJ)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/unit-tests: $(UNIT_OBJ) $(CORE_OBJ) $(LLHTTP_OBJ) $(SYNTH_OBJ) $(CDNLOAD_LIB_OBJ)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(CRIT_LIBS)

# A fuzz target with a plain main that replays files (tests/fuzz/replay.c):
# what make test runs, with gcc, under the build's sanitizers.
$(BUILD)/fuzz/replay-%: $(BUILD)/tests/fuzz/fuzz_%.o $(BUILD)/tests/fuzz/replay.o $(CORE_OBJ) $(LLHTTP_OBJ)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Kept: make would delete them as intermediates of the pattern rules.
.SECONDARY: $(FUZZ_NAMES:%=$(BUILD)/tests/fuzz/fuzz_%.o) $(BUILD)/tests/fuzz/replay.o

# The same target linked with libFuzzer (make fuzz: CC=clang, the build's
# objects instrumented with SANITIZE=fuzzer-no-link,address,undefined).
$(BUILD)/fuzz/fuzz-%: $(BUILD)/tests/fuzz/fuzz_%.o $(CORE_OBJ) $(LLHTTP_OBJ)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -fsanitize=fuzzer -o $@ $^ $(LDLIBS)

$(BUILD)/tests/integration-tests: $(INTEG_OBJ) $(CORE_OBJ) $(LLHTTP_OBJ) $(SYNTH_OBJ)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(CRIT_LIBS)

$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(XINC) -c -o $@ $<

# The page as bytes, with od and sed only (no xxd): " 3c 21" -> "0x3c,0x21,".
$(BUILD)/gen/status_page.c: core/status_page.html
	@mkdir -p $(@D)
	@{ echo '/* Generated from core/status_page.html by the Makefile: do not edit. */'; \
	  echo '#include <stddef.h>'; \
	  echo 'extern const unsigned char status_page_html[];'; \
	  echo 'extern const size_t status_page_html_len;'; \
	  echo 'const unsigned char status_page_html[] = {'; \
	  od -An -v -tx1 $< | sed 's/ *\([0-9a-f][0-9a-f]\)/0x\1,/g'; \
	  echo '};'; \
	  echo 'const size_t status_page_html_len = sizeof status_page_html;'; } > $@.tmp && mv $@.tmp $@

$(BUILD)/gen/%.o: $(BUILD)/gen/%.c
	$(CC) $(CFLAGS) -c -o $@ $<


# llhttp is generated code: compiled from the Debian package's sources with
# its own (looser) warning set.
$(BUILD)/llhttp/%.o: $(LLHTTP_SRC)/%.c
	@mkdir -p $(@D)
	$(CC) -O2 -g -I$(LLHTTP_INC) $(SANFLAGS) -c -o $@ $<

# Installs the Debian packages the build, tests and demo need.
deps:
	@missing=""; for p in $(DEB_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  echo "installing:$$missing"; \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q $$missing; \
	else echo "dependencies present"; fi

# Cheap check used by run/test: calls `deps` only when something is missing.
deps-check:
	@pkg-config --exists $(PKGS) criterion vips 2>/dev/null && [ -f $(LLHTTP_SRC)/llhttp.c ] \
	  && command -v chromium >/dev/null && command -v gnuplot >/dev/null \
	  && command -v systemd-analyze >/dev/null && command -v yamllint >/dev/null \
	  || $(MAKE) --no-print-directory deps

test: deps-check
	@$(MAKE) --no-print-directory check-layers check-deploy unit integration check-cdn check-readme fuzz-replay

# Every corpus through its target, always under AddressSanitizer and
# UndefinedBehaviorSanitizer (a plain make test builds that variant too):
# an over-read that does not crash must still fail.
ifeq ($(SANITIZE),)
fuzz-replay:
	@$(MAKE) --no-print-directory SANITIZE=address,undefined fuzz-replay
else
fuzz-replay: $(FUZZ_NAMES:%=$(BUILD)/fuzz/replay-%)
	@for n in $(FUZZ_NAMES); do $(BUILD)/fuzz/replay-$$n tests/fuzz/corpus/$$n || exit 1; done
endif

# libFuzzer, bounded: every target FUZZ_TIME seconds (default 60), FUZZ_JOBS
# at once (default 2), on its seeds plus what earlier runs found (var/fuzz/).
# FUZZ_TARGETS chooses some. Needs clang (installed here if missing).
FUZZ_TIME ?= 60
FUZZ_JOBS ?= 2
FUZZ_TARGETS ?= $(FUZZ_NAMES)
FUZZ_SAN := fuzzer-no-link,address,undefined
fuzz: deps-check
	@command -v clang >/dev/null || { SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q clang; }
	@$(MAKE) --no-print-directory CC=clang SANITIZE=$(FUZZ_SAN) \
	  $(patsubst %,build/san-$(subst $(comma),-,$(FUZZ_SAN))/fuzz/fuzz-%,$(FUZZ_TARGETS))
	@./tests/fuzz/run.sh build/san-$(subst $(comma),-,$(FUZZ_SAN))/fuzz $(FUZZ_TIME) $(FUZZ_JOBS) $(FUZZ_TARGETS)

# Leaks of the test framework's own runner are not ours (tests/lsan.supp);
# the programs the tests start inherit the setting, which names only it.
LSAN_ENV := LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp:print_suppressions=0

unit: $(BUILD)/tests/unit-tests
	$(LSAN_ENV) $(BUILD)/tests/unit-tests --jobs 2

integration: $(BUILD)/tests/integration-tests $(BIN)/edge $(BIN)/shield $(BIN)/origin $(BIN)/cdnload
	$(LSAN_ENV) CDN_BIN=$(abspath $(BIN)) CDN_SRC=$(CURDIR) $(BUILD)/tests/integration-tests --jobs 2

run: deps-check
	@$(MAKE) --no-print-directory all
	@./deploy/run-local.sh $(BIN)

# The default topology (deploy/topology.default) in the background: up,
# print the URLs, return. `make cdn-down` (or deploy/cdn down) stops it.
# The default topology, the default scenario through it, the report in
# var/loadtest/, the topology down again (about a minute).
loadtest: deps-check
	@$(MAKE) --no-print-directory all
	@./loadtest/run-loadtest.sh $(BIN)

cdn: deps-check
	@$(MAKE) --no-print-directory all
	@CDN_BIN=$(abspath $(BIN)) ./deploy/cdn up
	@echo "  stop it with: make cdn-down (or deploy/cdn down)"

cdn-down:
	@./deploy/cdn down

# deploy/cdn up/status/down on a small topology in a temporary directory.
check-cdn: $(BIN)/edge $(BIN)/shield $(BIN)/origin
	@CDN_BIN=$(abspath $(BIN)) ./tests/check-cdn.sh

bench: deps-check
	@$(MAKE) --no-print-directory all $(BIN)/image-bench
	@./loadtest/bench.sh $(BIN)
	@./loadtest/bench_purge.sh $(BIN)
	@./loadtest/bench_image.sh $(BIN)
	@./loadtest/bench_ratelimit.sh $(BIN)

# The README's tables are generated from the settings tables: the node's
# (--config-markdown) and the [rule] sections' (--rule-markdown).
README_TABLES = awk -v t1="$$t1" -v t2="$$t2" \
	'/<!-- config-table:begin -->/{print; print t1; skip=1; next} \
	 /<!-- rule-table:begin -->/{print; print t2; skip=1; next} \
	 /<!-- (config|rule)-table:end -->/{skip=0} !skip' README.md

readme-table: $(BIN)/edge
	@t1="$$($(BIN)/edge --config-markdown)"; t2="$$($(BIN)/edge --rule-markdown)"; \
	  $(README_TABLES) > README.md.tmp && mv README.md.tmp README.md

check-readme: $(BIN)/edge
	@t1="$$($(BIN)/edge --config-markdown)"; t2="$$($(BIN)/edge --rule-markdown)"; \
	  $(README_TABLES) | cmp -s - README.md \
	  || { echo "README.md settings tables are stale: run make readme-table"; exit 1; }
	@echo "README settings tables are current"

# The layering (docs/ARCHITECTURE.md): base <- policies <- engine core <-
# programs. Fails when policies/ includes more than policy_*.h, the base
# headers and system headers, or when include/ holds a header that only
# loadtest/ or the tests use.
check-layers:
	@./tests/check-layers.sh

# deploy/: the systemd units (systemd-analyze verify), the Kubernetes
# manifests (yamllint, the nodes' own --check-config), the Dockerfile
# (hadolint when installed) and the settings they must agree on.
check-deploy: $(BIN)/edge $(BIN)/shield
	@CDN_DEB_PKGS="$(DEB_PKGS)" ./tests/check-deploy.sh $(BIN)

clean:
	rm -rf build bin var

-include $(shell find build -name '*.d' 2>/dev/null)
