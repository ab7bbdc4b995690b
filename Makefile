# cmig - plain GNU Makefile, dependencies found with pkg-config.
#
#   make                     build both programs
#   make check               every test (unit, CLI, interop, fuzz corpus replay)
#                            database faults and random kills included (tests/integration)
#   make SANITIZE=address,undefined check
#   make valgrind            CLI and integration suites under memcheck (not in check-all)
#   make install PREFIX=/usr/local DESTDIR=
#   make attack              mutation campaign, allocation and I/O failures
#                            (ASan+UBSan, in build-asan; several minutes)
#   make fuzz FUZZ_SECONDS=60 FUZZ_JOBS=2  (clang, libFuzzer; N targets at a time)
#   make bench               benchmarks (not part of check)
#   make lint                clang-format check, cppcheck, clang-tidy (CI runs it)
#   make WERROR=0            for packagers

VERSION   := 0.1.0
PREFIX    ?= /usr/local
BINDIR    ?= $(PREFIX)/bin
MANDIR    ?= $(PREFIX)/share/man
DESTDIR   ?=
CC        ?= cc
PKG_CONFIG ?= pkg-config
B         ?= build
WERROR    ?= 1
SANITIZE  ?=
FUZZ_SECONDS ?= 60
FUZZ_JOBS ?= 1

WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wvla -Wformat=2 \
        -Wno-format-nonliteral
ifeq ($(WERROR),1)
WARN += -Werror
endif

OPT ?= -O2 -g
HARDEN := -D_FORTIFY_SOURCE=2 -fstack-protector-strong
ifneq ($(SANITIZE),)
OPT := -O1 -g -fno-omit-frame-pointer
HARDEN :=
SAN := -fsanitize=$(SANITIZE) -fno-sanitize-recover=all
endif

# libbson: cmig-bundle parses MongoDB (JSON) migrations at build time.
FORMAT_PKGS := libarchive libsodium sqlite3 zlib libbson-1.0
PKG_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(FORMAT_PKGS))
PKG_LIBS   := $(shell $(PKG_CONFIG) --libs $(FORMAT_PKGS))

CFLAGS   ?=
CPPFLAGS += -Iformat/include -DCMIG_VERSION='"$(VERSION)"' -D_GNU_SOURCE
ALL_CFLAGS = -std=c11 $(OPT) $(HARDEN) $(SAN) $(WARN) $(PKG_CFLAGS) $(CFLAGS)
ALL_LDFLAGS = $(SAN) $(LDFLAGS)

FORMAT_SRC  := $(sort $(wildcard format/*.c))
FORMAT_OBJ  := $(FORMAT_SRC:%.c=$(B)/%.o)
FORMAT_LIB  := $(B)/libcmigformat.a
BUNDLER_SRC := $(sort $(wildcard bundler/*.c))
BUNDLER_OBJ := $(BUNDLER_SRC:%.c=$(B)/%.o)
BUNDLER     := $(B)/cmig-bundle

# cmig-run links Debian's static libarchive, libsodium, SQLite and zlib: of
# libarchive only the tar and gzip readers are pulled in, so the runner does
# not load its dependency closure (libxml2, ICU, lzma, zstd, ...), and a pod
# start maps no shared object but libc and libm before the database's own
# client library (a SQLite no-op: 19.2 -> 17.4 M instructions). The price:
# a security update of one of those four needs a rebuild of cmig-run.
# RUNNER_STATIC=0 links them dynamically (ARCHIVE_STATIC=0: libarchive only).
RUNNER_STATIC ?= 1
ARCHIVE_STATIC ?= 1
ifeq ($(RUNNER_STATIC),1)
RUNNER_LIBS := -Wl,-Bstatic -larchive -lsodium -lsqlite3 -lz -Wl,-Bdynamic -lm
else ifeq ($(ARCHIVE_STATIC),1)
RUNNER_LIBS := -Wl,-Bstatic -larchive -Wl,-Bdynamic $(shell $(PKG_CONFIG) --libs libsodium sqlite3 zlib)
else
RUNNER_LIBS := $(shell $(PKG_CONFIG) --libs libarchive libsodium sqlite3 zlib)
endif
RUNNER_SRC  := $(sort $(filter-out runner/drv_postgres.c runner/drv_mongo.c runner/drv_util.c,$(wildcard runner/*.c)))
RUNNER_OBJ  := $(RUNNER_SRC:%.c=$(B)/%.o)
RUNNER      := $(B)/cmig-run
# Database client libraries are loaded only for the URL in use: each driver
# but SQLite is a shared object next to cmig-run (drivers/NAME.so).
PLUGIN_FORMAT_SRC := format/err.c format/sqlscan.c format/sqlstream.c format/utf8.c
PG_PLUGIN   := $(B)/drivers/postgres.so
PG_CFLAGS   := $(shell $(PKG_CONFIG) --cflags libpq)
PG_LIBS     := $(shell $(PKG_CONFIG) --libs libpq)
# The MongoDB driver: libmongoc, and libbson to parse the migrations with
# the same code as cmig-bundle (format/json_check.c). cmig-run itself never
# links either.
MONGO_PLUGIN := $(B)/drivers/mongodb.so
MONGO_CFLAGS := $(shell $(PKG_CONFIG) --cflags libmongoc-1.0)
MONGO_LIBS   := $(shell $(PKG_CONFIG) --libs libmongoc-1.0 libbson-1.0 libsodium) -lpthread
MONGO_OBJ    := $(B)/pic/runner/drv_mongo.o $(B)/pic/runner/drv_util.o $(B)/pic/format/json_check.o \
                $(B)/pic/format/err.o
MONGO_CMD    := $(B)/tests/mongo-cmd

UNIT_SRC    := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN    := $(UNIT_SRC:tests/unit/%.c=$(B)/tests/%)
TOOL_SRC    := $(sort $(wildcard tests/tools/*.c))
TOOL_BIN    := $(TOOL_SRC:tests/tools/%.c=$(B)/tests/tools/%)
FUZZ_SRC    := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_REPLAY := $(FUZZ_SRC:tests/fuzz/%.c=$(B)/tests/replay_%)
FUZZ_BIN    := $(FUZZ_SRC:tests/fuzz/%.c=$(B)/fuzz/%)
FUZZ_HDR    := $(wildcard tests/fuzz/*.h)
FUZZ_CC     ?= clang
FUZZ_CC_FLAGS := -std=c11 -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
                 -fno-sanitize-recover=all $(WARN) $(PKG_CFLAGS)
FUZZ_FORMAT_OBJ := $(FORMAT_SRC:%.c=$(B)/fuzz/obj/%.o)


# A fault injector preloaded into the programs (tests/attack/fault.c), and
# the mutation campaign's driver.
FAULT_SO    := $(B)/tests/attack/fault.so
MUTATE      := $(B)/tests/attack/mutate
ATTACK_B    ?= build-asan

.PHONY: all check check-all attack attack-bins demo unit test-bins install uninstall clean fuzz \
        fuzz-bins bench format-check lint valgrind

all: $(BUNDLER) $(RUNNER) $(PG_PLUGIN) $(MONGO_PLUGIN)

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

$(FORMAT_LIB): $(FORMAT_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUNDLER): $(BUNDLER_OBJ) $(FORMAT_LIB)
	$(CC) $(ALL_LDFLAGS) -o $@ $(BUNDLER_OBJ) $(FORMAT_LIB) $(PKG_LIBS)

$(RUNNER): $(RUNNER_OBJ) $(FORMAT_LIB)
	$(CC) $(ALL_LDFLAGS) -o $@ $(RUNNER_OBJ) $(FORMAT_LIB) $(RUNNER_LIBS) -ldl

$(B)/pic/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC -fPIC $<"
	@$(CC) $(CPPFLAGS) -Irunner $(ALL_CFLAGS) $(PG_CFLAGS) -fPIC -fvisibility=hidden -MMD -MP -c $< -o $@

$(PG_PLUGIN): $(B)/pic/runner/drv_postgres.o $(B)/pic/runner/drv_util.o $(PLUGIN_FORMAT_SRC:%.c=$(B)/pic/%.o)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -shared -o $@ $^ $(PG_LIBS)

$(B)/pic/runner/drv_mongo.o: runner/drv_mongo.c
	@mkdir -p $(dir $@)
	@echo "  CC -fPIC $<"
	@$(CC) $(CPPFLAGS) -Irunner $(ALL_CFLAGS) $(MONGO_CFLAGS) -fPIC -fvisibility=hidden -MMD -MP -c $< -o $@

$(MONGO_PLUGIN): $(MONGO_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -shared -o $@ $^ $(MONGO_LIBS)

# A small MongoDB client for the integration tests (no mongosh here).
$(MONGO_CMD): tests/integration/mongo-cmd.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) $(MONGO_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(MONGO_LIBS)

$(B)/tests/test_%: tests/unit/test_%.c tests/unit/harness.h $(FORMAT_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Itests/unit $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(FORMAT_LIB) $(PKG_LIBS)

# Unit tests of runner code include its source.
$(B)/tests/test_redact: runner/log.c runner/log.h

$(B)/tests/tools/%: tests/tools/%.c $(FORMAT_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(FORMAT_LIB) $(PKG_LIBS)

# Fuzz targets replayed over their corpus by a plain main() (any compiler).
# A target that reaches into cmig-run links the runner objects it names;
# one that checks against a database client's own parser links that
# client (the FUZZ_* variables below).
$(B)/tests/replay_%: tests/fuzz/%.c tests/fuzz/replay_main.c $(FUZZ_HDR) $(FORMAT_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Irunner $(ALL_CFLAGS) $(FUZZ_CFLAGS_$*) $(ALL_LDFLAGS) -o $@ $< \
	    tests/fuzz/replay_main.c $(filter %.o,$^) $(FORMAT_LIB) $(PKG_LIBS) $(FUZZ_LIBS_$*)

test-bins: $(BUNDLER) $(RUNNER) $(PG_PLUGIN) $(MONGO_PLUGIN) $(MONGO_CMD) $(UNIT_BIN) $(TOOL_BIN) $(FUZZ_REPLAY) \
           $(FAULT_SO)

# Not sanitized itself: it is preloaded ahead of the sanitizer runtime and
# hands every allocation on to it (tests/attack/fault.c).
$(FAULT_SO): tests/attack/fault.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -std=c11 -O2 -g $(WARN) $(CFLAGS) -fPIC -shared -o $@ $< -ldl

$(MUTATE): tests/attack/mutate.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(PKG_LIBS)

attack-bins: test-bins $(MUTATE)

check: test-bins
	B=$(B) tests/run-all

# The CLI, interop and integration suites with every cmig-bundle and
# cmig-run process under valgrind's memcheck: a memory error or a definite
# leak fails it (tests/run-all lists the suites it leaves out, and why).
# VALGRIND_DIRS: only the suites in those directories (CI: tests/cli
# tests/interop).
VALGRIND_DIRS ?=
valgrind: test-bins
	CMIG_VALGRIND=1 B=$(B) tests/run-all $(VALGRIND_DIRS)

# The suites in tests/attack, always under ASan+UBSan (their figures count
# sanitizer reports) in $(ATTACK_B). Not part of check: they run cmig-run
# some 45,000 times (docs/SECURITY.md has the durations).
attack:
	$(MAKE) B=$(ATTACK_B) SANITIZE=address,undefined attack-bins
	B=$(ATTACK_B) tests/run-all tests/attack

# What CI runs (.ci/run, after check-containers), within its 30 minutes:
# lint; the whole suite (random kills 100/100/50); the suite again under
# ASan+UBSan (kills 10/10/5); every fuzz target for CI_FUZZ_SECONDS (but
# any in CI_FUZZ_SKIP); a 1-in-40 sample of the mutation campaign and the
# allocation sweep of cmig-run verify; the refusal paths (tamper.sh) and
# the secrets suite under valgrind. The full campaigns take about 10
# (make attack) and 12 minutes (make valgrind).
CI_FUZZ_SECONDS ?= 60
# Targets to leave out of CI's timed run (none now): for one with an open
# finding, until it is fixed; it would still run in make fuzz, its corpus
# in check.
CI_FUZZ_SKIP ?=
# Each build goes first, on every core (the tests then find it up to date).
check-all:
	$(MAKE) lint
	$(MAKE) -j$$(nproc) test-bins
	$(MAKE) check
	$(MAKE) -j$$(nproc) B=build-asan SANITIZE=address,undefined attack-bins
	KILL_TRIALS_PG=$${KILL_TRIALS_PG:-10} KILL_TRIALS_SQLITE=$${KILL_TRIALS_SQLITE:-10} \
	KILL_TRIALS_MONGO=$${KILL_TRIALS_MONGO:-5} \
	    $(MAKE) check B=build-asan SANITIZE=address,undefined
	$(MAKE) -j$$(nproc) fuzz-bins
	$(MAKE) fuzz FUZZ_SECONDS=$(CI_FUZZ_SECONDS) FUZZ_JOBS=$$(nproc) FUZZ_SKIP="$(CI_FUZZ_SKIP)"
	MUTATE_STRIDE=40 ALLOC_ONLY="run_verify" $(MAKE) attack
	$(MAKE) valgrind VALGRIND_DIRS="tests/cli/tamper.sh tests/integration/secrets.sh"

# The Dockerfile's images, examples/app and deploy/kubernetes, for real with
# podman (as root: installs podman, buildah, runc and debootstrap if missing;
# caches the Debian base image and the npm checkers under $(B)/containers).
.PHONY: check-containers
check-containers:
	B=$(B) tests/containers/run

demo: all
	B=$(B) examples/demo

unit: $(UNIT_BIN)
	@for t in $(UNIT_BIN); do $$t || exit 1; done

# libFuzzer builds: clang only, objects of their own (coverage-instrumented,
# under ASan and UBSan), compiled once and shared by every target. A
# sanitizer report must end the run, so nothing recovers.
$(B)/fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  FUZZCC  $<"
	@$(FUZZ_CC) $(CPPFLAGS) -Irunner $(FUZZ_CC_FLAGS) -fsanitize=fuzzer-no-link -MMD -MP \
	    -c $< -o $@

$(B)/fuzz/%: tests/fuzz/%.c $(FUZZ_HDR) $(FUZZ_FORMAT_OBJ)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CPPFLAGS) -Irunner $(FUZZ_CC_FLAGS) $(FUZZ_CFLAGS_$*) -fsanitize=fuzzer \
	    -o $@ $< $(filter %.o,$^) $(PKG_LIBS) $(FUZZ_LIBS_$*)

# What each target needs beyond the format library.
$(B)/fuzz/fuzz_config: $(B)/fuzz/obj/runner/config.o
$(B)/tests/replay_fuzz_config: $(B)/runner/config.o
$(B)/fuzz/fuzz_redact: $(B)/fuzz/obj/runner/log.o
$(B)/tests/replay_fuzz_redact: $(B)/runner/log.o
FUZZ_CFLAGS_fuzz_redact := $(PG_CFLAGS) $(MONGO_CFLAGS)
FUZZ_LIBS_fuzz_redact := $(PG_LIBS) $(shell $(PKG_CONFIG) --libs libmongoc-1.0)

# Shared by every target: kept, not rebuilt for each.
.SECONDARY: $(FUZZ_FORMAT_OBJ)

fuzz-bins: $(FUZZ_BIN)

# FUZZ_JOBS targets run at a time, each for FUZZ_SECONDS.
fuzz: $(FUZZ_BIN)
	FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_JOBS=$(FUZZ_JOBS) B=$(B) tests/fuzz/run-fuzz

# Reports, never asserts: see bench/all (BENCH_QUICK=1 for a short run).
bench: all
	B=$(B) bench/all

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(PREFIX)/lib/cmig/drivers
	install -m 0755 $(BUNDLER) $(DESTDIR)$(BINDIR)/cmig-bundle
	install -m 0755 $(RUNNER) $(DESTDIR)$(BINDIR)/cmig-run
	install -m 0644 $(PG_PLUGIN) $(DESTDIR)$(PREFIX)/lib/cmig/drivers/postgres.so
	install -m 0644 $(MONGO_PLUGIN) $(DESTDIR)$(PREFIX)/lib/cmig/drivers/mongodb.so
	install -m 0644 docs/man/cmig-bundle.1 $(DESTDIR)$(MANDIR)/man1/cmig-bundle.1
	install -m 0644 docs/man/cmig-run.1 $(DESTDIR)$(MANDIR)/man1/cmig-run.1

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/cmig-bundle $(DESTDIR)$(BINDIR)/cmig-run
	rm -f $(DESTDIR)$(PREFIX)/lib/cmig/drivers/postgres.so
	rm -f $(DESTDIR)$(PREFIX)/lib/cmig/drivers/mongodb.so
	rm -f $(DESTDIR)$(MANDIR)/man1/cmig-bundle.1 $(DESTDIR)$(MANDIR)/man1/cmig-run.1
	-rmdir $(DESTDIR)$(PREFIX)/lib/cmig/drivers $(DESTDIR)$(PREFIX)/lib/cmig

# make lint = the three checks CI runs: clang-format (layout, .clang-format),
# cppcheck and clang-tidy (.clang-tidy says which checks and why some are
# off). Each fails on any finding. LINT_JOBS clang-tidy processes at a time.
LINT_SRC   := $(FORMAT_SRC) $(BUNDLER_SRC) $(sort $(wildcard runner/*.c))
LINT_HDR   := $(sort $(wildcard format/include/cmig/*.h format/*.h bundler/*.h runner/*.h))
STYLE_SRC  := $(LINT_SRC) $(LINT_HDR) $(sort $(wildcard tests/*/*.c tests/*/*.h bench/*/*.c))
LINT_JOBS  ?= 2
LINT_FLAGS := -std=c11 $(CPPFLAGS) -Ibundler -Irunner $(PKG_CFLAGS) $(PG_CFLAGS) $(MONGO_CFLAGS)

format-check:
	clang-format --dry-run --Werror $(STYLE_SRC)

TIDY_OK    := $(LINT_SRC:%.c=$(B)/tidy/%.ok)

# One stamp per file, so that a second run checks only what changed.
$(B)/tidy/%.ok: %.c .clang-tidy $(LINT_HDR)
	@mkdir -p $(dir $@)
	@echo "  TIDY    $<"
	@clang-tidy --quiet $< -- $(LINT_FLAGS) && touch $@

lint: format-check
	cppcheck --quiet --error-exitcode=1 --enable=warning,portability,performance --inline-suppr \
	    --std=c11 -Iformat/include -Ibundler -Irunner $(LINT_SRC) $(TOOL_SRC) bench/runner/*.c
	$(MAKE) -j$(LINT_JOBS) $(TIDY_OK)

clean:
	rm -rf $(B)

-include $(FORMAT_OBJ:.o=.d) $(BUNDLER_OBJ:.o=.d) $(RUNNER_OBJ:.o=.d) $(MONGO_OBJ:.o=.d) \
         $(wildcard $(B)/fuzz/obj/*/*.d)
