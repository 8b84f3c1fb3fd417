# parkpulse — plain GNU make build.
#
#   make            build the daemon, the collectors and the client into build/
#   make check      install missing packages, build, run every test (also under ASan/UBSan)
#   make security   floods and hostile probes at full size (a few minutes; tests/security/run.py)
#   make fuzz       libFuzzer harnesses (clang), FUZZ_SECONDS each (README "Fuzzing")
#   make run        install missing packages, build, start the demo in the foreground
#   make install    PREFIX=/usr/local DESTDIR= (staged installs honoured)
#   make deb        build/deb/parkpulse_$(VERSION)_amd64.deb with debhelper, checked by lintian
#   make deb-test   the package installed with apt-get, run, purged (as root; README)
#
# Layout: daemon/*.c except main.c form libparkpulse.a, which the daemon, the
# client and every Check suite link; collectors/*.c each become a shared object;
# tests/check_*.c each become one Check suite.

PREFIX     ?= /usr/local
SYSCONFDIR ?= /etc
BINDIR     ?= $(PREFIX)/bin
SBINDIR    ?= $(PREFIX)/sbin
LIBDIR     ?= $(PREFIX)/lib
DATADIR    ?= $(PREFIX)/share
MANDIR     ?= $(DATADIR)/man
UNITDIR    ?= /lib/systemd/system

CC       ?= cc
CFLAGS   ?= -O2 -g
WARN     := -std=c11 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
            -Wmissing-prototypes -Wno-unused-parameter
VERSION  := 0.1
CPPFLAGS += -D_GNU_SOURCE -Idaemon -Icollectors -DPARKPULSE_VERSION='"$(VERSION)"' \
            -DPP_PLUGIN_DIR='"$(LIBDIR)/parkpulse/collectors"' \
            -DPP_DASHBOARD_DIR='"$(DATADIR)/parkpulse/dashboards"'
PKGS     := librrd libconfuse libzmq libmicrohttpd
# Excel workbooks (daemon/workbook.c): libzip (the .xlsx container), libxml2's
# streaming reader (its XML parts) and libfreexl (.xls, BIFF8); see README
PKGS     += libzip libxml-2.0 freexl
# the 通报 workbook (daemon/report_xlsx.c): libxlsxwriter; see README
PKGS     += xlsxwriter
# the PNG writer under librrd's graphs (daemon/pngout.c): libpng
PKGS     += libpng
# the client only: libcurl (HTTP client) and jansson (strict JSON parser); see README
CLIENT_PKGS := libcurl jansson
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) $(CLIENT_PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CHECK_LIBS = $(shell pkg-config --libs check 2>/dev/null)
LDLIBS   += $(PKG_LIBS) -ldl -lpthread -lm

# BUILD selects the output directory; SAN adds sanitizer flags (make check uses both).
BUILD ?= build
SAN   ?=
ALL_CFLAGS = $(WARN) $(CFLAGS) $(SAN) $(PKG_CFLAGS) -fPIC -MMD -MP

LIB_SRC   := $(filter-out daemon/main.c,$(wildcard daemon/*.c))
LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/%.o)
COLL_SRC  := $(wildcard collectors/*.c)
COLL_SO   := $(COLL_SRC:collectors/%.c=$(BUILD)/collectors/%.so)
TOOL_SRC  := $(wildcard tools/*.c)
NOTIFY_SRC := $(wildcard notify/*.c)
TEST_SRC  := $(wildcard tests/check_*.c)
TEST_BIN  := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
LIBPP     := $(BUILD)/libparkpulse.a
DAEMON    := $(BUILD)/parkpulsed
CLIENT    := $(BUILD)/parkpulse
NOTIFIER  := $(BUILD)/parkpulse-notify

DEB_PKGS := build-essential pkg-config librrd-dev libconfuse-dev libzmq3-dev \
            libmicrohttpd-dev check rrdtool fonts-wqy-zenhei libcurl4-openssl-dev \
            libjansson-dev python3 python3-zmq curl chromium systemd prometheus python3-yaml \
            debhelper dpkg-dev lintian libzip-dev libxml2-dev libfreexl-dev \
            libxlsxwriter-dev python3-openpyxl libpng-dev

.PHONY: all programs deps check unit integration asan run install uninstall clean bench torture torture-run \
        security deb deb-test fuzz fuzz-replay workbook-fixtures
all: programs $(TEST_BIN)

# programs: what is installed (no test suite): the daemon, the client, the
# notifier, the collectors
programs: $(DAEMON) $(if $(TOOL_SRC),$(CLIENT)) $(NOTIFIER) $(COLL_SO)

# Objects are kept between runs (make would delete the collectors' and the
# test suites' objects as intermediates, and the next run compile them again).
.SECONDARY:

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -c -o $@ $<

# The pages live in the binary: every file of dashboards/ but its README,
# turned into a C table by daemon/embed_pages.sh (dashboard_dir only overrides
# or adds files; dashboards/README.md).
PAGES_FILES := $(shell find dashboards -type f ! -name README.md 2>/dev/null | LC_ALL=C sort)
PAGES_OBJ   := $(BUILD)/gen/pages_data.o
$(BUILD)/gen/pages_data.c: daemon/embed_pages.sh $(PAGES_FILES)
	@mkdir -p $(dir $@)
	sh daemon/embed_pages.sh dashboards $(PAGES_FILES) > $@.tmp && mv $@.tmp $@
$(PAGES_OBJ): $(BUILD)/gen/pages_data.c
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -c -o $@ $<

$(LIBPP): $(LIB_OBJ) $(PAGES_OBJ)
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^

$(DAEMON): $(BUILD)/daemon/main.o $(LIBPP)
	$(CC) $(ALL_CFLAGS) -rdynamic -o $@ $^ $(LDFLAGS) $(LDLIBS)

$(CLIENT): $(TOOL_SRC:%.c=$(BUILD)/%.o) $(LIBPP)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDFLAGS) $(shell pkg-config --libs $(CLIENT_PKGS)) $(LDLIBS)

# parkpulse-notify (notify/*.c): libcurl, jansson and libzmq; never linked into the daemon
$(NOTIFIER): $(NOTIFY_SRC:%.c=$(BUILD)/%.o) $(LIBPP)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDFLAGS) $(shell pkg-config --libs $(CLIENT_PKGS)) $(LDLIBS)

$(BUILD)/collectors/%.so: $(BUILD)/collectors/%.o
	$(CC) $(ALL_CFLAGS) -shared -o $@ $^ $(LDFLAGS) -lpthread

$(BUILD)/tests/%: $(BUILD)/tests/%.o $(LIBPP)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDFLAGS) $(CHECK_LIBS) $(LDLIBS)

# check_fault fails the allocations of libparkpulse.a one by one (tests/check_fault.c).
$(BUILD)/tests/check_fault: LDFLAGS += -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc \
                                       -Wl,--wrap=strdup,--wrap=strndup

# check_spool interposes renameat2() and linkat() on the plugin it dlopens (race tests).
$(BUILD)/tests/check_spool: LDFLAGS += -Wl,--export-dynamic-symbol=renameat2 \
                                       -Wl,--export-dynamic-symbol=linkat

# deps: install the Debian packages that are missing (as root), else print the line.
deps:
	@missing=""; for p in $(DEB_PKGS) $(EXTRA_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then echo "deps: all packages present"; \
	elif [ "$$(id -u)" = 0 ]; then echo "deps: installing$$missing"; \
	  (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	else echo "deps: missing packages; run as root:"; echo "  sudo apt-get install -y$$missing"; exit 1; fi

unit: all
	@BUILD=$(BUILD) sh tests/run-unit.sh $(TEST_BIN)

integration: all
	@BUILD=$(BUILD) /usr/bin/python3 tests/integration/run.py

# security: floods, slow clients, bus abuse and hostile probes against the
# real daemon on loopback, at the sizes of the original report. Their short
# form (tests/integration/test_security.py) is part of `integration`, so
# `make check` runs it too.
security: deps all
	@BUILD=$(BUILD) /usr/bin/python3 tests/security/run.py

# check: the whole suite twice — once plain, once under AddressSanitizer and UBSan —
# then a short torture run (3 kill -9 rounds and the disk-full cases) on the plain build,
# then the Debian package: built, lintian, installed, run and purged (about a minute).
check: deps
	$(MAKE) unit integration fuzz-replay
	$(MAKE) BUILD=build/asan SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
	    CFLAGS="-O1 -g" unit integration fuzz-replay
	$(MAKE) torture-run ROUNDS=3
	$(MAKE) deb-test

# torture: kill -9 rounds with concurrent feeders, and full disks (tests/torture/torture.py,
# README "Fault injection"); ROUNDS=100 for a longer run, SEED=n replays one.
ROUNDS ?= 20
torture: deps
	$(MAKE) torture-run

torture-run: all
	BUILD=$(BUILD) /usr/bin/python3 tests/torture/torture.py --rounds $(ROUNDS) $(if $(SEED),--seed $(SEED))


# fuzz: the libFuzzer harnesses of tests/fuzz/ built with clang into build/fuzz/,
# each run FUZZ_SECONDS on its corpus, new inputs merged back into
# tests/fuzz/corpus/<harness>/ (see README "Fuzzing"). fuzz-replay (part of
# check): every corpus and crash file through each harness, built with $(CC)
# and a plain main (tests/fuzz/replay_main.c): no clang needed.
FUZZ_SECONDS ?= 60
FUZZ_HARNESSES := csv period text api xlsx journal
FUZZ_DIR := build/fuzz
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_LIBS = $(shell pkg-config --libs jansson)
.PRECIOUS: $(FUZZ_DIR)/obj/%.o $(BUILD)/tests/fuzz/%.o
fuzz:
	$(MAKE) deps EXTRA_PKGS="clang libclang-rt-14-dev"
	$(MAKE) $(FUZZ_HARNESSES:%=$(FUZZ_DIR)/fuzz_%)
	sh tests/fuzz/run.sh $(FUZZ_DIR) $(FUZZ_SECONDS) $(FUZZ_HARNESSES)

$(FUZZ_DIR)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	clang $(CPPFLAGS) $(WARN) -O1 -g $(FUZZ_SAN) -fsanitize=fuzzer-no-link $(PKG_CFLAGS) -MMD -MP -c -o $@ $<

# the built-in pages (pages.c needs their table), generated as for the daemon
$(FUZZ_DIR)/obj/gen/pages_data.o: $(BUILD)/gen/pages_data.c
	@mkdir -p $(dir $@)
	clang $(CPPFLAGS) $(WARN) -O1 -g $(FUZZ_SAN) -fsanitize=fuzzer-no-link $(PKG_CFLAGS) -c -o $@ $<

$(FUZZ_DIR)/libparkpulse.a: $(LIB_SRC:%.c=$(FUZZ_DIR)/obj/%.o) $(FUZZ_DIR)/obj/gen/pages_data.o
	$(AR) rcs $@ $^

$(FUZZ_DIR)/fuzz_api: $(FUZZ_DIR)/obj/tests/fuzz/json_check.o
$(FUZZ_DIR)/fuzz_%: $(FUZZ_DIR)/obj/tests/fuzz/fuzz_%.o $(FUZZ_DIR)/libparkpulse.a
	clang $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $^ $(LDFLAGS) $(FUZZ_LIBS) $(LDLIBS)

fuzz-replay: $(FUZZ_HARNESSES:%=$(BUILD)/fuzz-replay/fuzz_%)
	@sh tests/fuzz/replay.sh $(BUILD)/fuzz-replay $(FUZZ_HARNESSES)

$(BUILD)/fuzz-replay/fuzz_api: $(BUILD)/tests/fuzz/json_check.o
$(BUILD)/fuzz-replay/fuzz_%: $(BUILD)/tests/fuzz/fuzz_%.o $(BUILD)/tests/fuzz/replay_main.o $(LIBPP)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDFLAGS) $(FUZZ_LIBS) $(LDLIBS)

# bench: the daemon and the baselines built with -O2 and no sanitizers into
# build/bench, then bench/bench.py (a few minutes; see README "Performance").
BENCH_BUILD := build/bench
bench:
	$(MAKE) deps EXTRA_PKGS="wrk python3-openpyxl"
	$(MAKE) BUILD=$(BENCH_BUILD) CFLAGS=-O2 SAN= all $(BENCH_BUILD)/bench/rrd_loop $(BENCH_BUILD)/bench/mhd_ceiling \
	    $(BENCH_BUILD)/bench/gen_journal
	BUILD=$(BENCH_BUILD) /usr/bin/python3 bench/bench.py

$(BUILD)/bench/rrd_loop: bench/rrd_loop.c bench/month_end.h
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(WARN) $(CFLAGS) $(shell pkg-config --cflags librrd) -o $@ $< $(shell pkg-config --libs librrd)

$(BUILD)/bench/gen_journal: bench/gen_journal.c bench/month_end.h
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(WARN) $(CFLAGS) -o $@ $< -lz

$(BUILD)/bench/mhd_ceiling: bench/mhd_ceiling.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(WARN) $(CFLAGS) $(shell pkg-config --cflags libmicrohttpd) -o $@ $< \
	    $(shell pkg-config --libs libmicrohttpd) -lpthread

# workbook-fixtures: regenerates tests/fixtures/workbooks/ with LibreOffice Calc
# and python3-openpyxl (installed here only; the tests read the committed files).
workbook-fixtures:
	$(MAKE) deps EXTRA_PKGS="libreoffice-calc python3-openpyxl"
	/usr/bin/python3 tests/fixtures/workbooks/make-fixtures.py

# run: only what the demo runs (not the test suites), in parallel on every core
DEMO_DIR := demo
NPROC    := $(shell nproc 2>/dev/null || echo 2)
run: deps
	@$(MAKE) --no-print-directory -j$(NPROC) $(DAEMON) $(CLIENT) $(NOTIFIER) $(COLL_SO)
	@sh config/demo.sh $(BUILD) $(DEMO_DIR)

# deb: the Debian package (README, "The Debian package"). dpkg-buildpackage
# runs on a copy of the tree in build/deb/src/ (it writes its results into the
# parent of the tree it builds, which must stay inside build/, and the objects
# are compiled there with PREFIX=/usr), without network and as any user; then
# lintian checks the .deb (warnings fail; overrides are justified in
# debian/parkpulse.lintian-overrides). debian/changelog must name $(VERSION).
DEB_ARCH := $(shell dpkg --print-architecture 2>/dev/null || echo amd64)
DEB_DIR  := build/deb
DEB_SRC  := $(DEB_DIR)/src/parkpulse-$(VERSION)
DEB      := $(DEB_DIR)/parkpulse_$(VERSION)_$(DEB_ARCH).deb
deb: deps
	@v=$$(dpkg-parsechangelog -S Version); [ "$$v" = "$(VERSION)" ] || \
	    { echo "deb: debian/changelog is at $$v, the Makefile's VERSION at $(VERSION)"; exit 1; }
	rm -rf $(DEB_DIR)
	mkdir -p $(DEB_SRC)
	tar -cf - Makefile README.md daemon collectors tools notify config man dashboards debian | tar -xf - -C $(DEB_SRC)
	cd $(DEB_SRC) && dpkg-buildpackage -us -uc -b -J$(NPROC)
	mv $(DEB_DIR)/src/parkpulse_$(VERSION)_$(DEB_ARCH).deb $(DEB)
	lintian --fail-on error,warning $(DEB)
	@echo "deb: $(DEB)"

# deb-test: the package built above installed on this machine with apt-get,
# parkpulsed started from the installed files, fed, read, stopped, purged
# (tests/integration/test_deb.py; as root).
deb-test: deb
	cd tests/integration && PP_DEB_TEST=1 BUILD=$(abspath $(BUILD)) /usr/bin/python3 -m unittest -v test_deb

install: programs
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR)/parkpulse/collectors \
	    $(DESTDIR)$(SYSCONFDIR)/parkpulse $(DESTDIR)$(DATADIR)/parkpulse/dashboards \
	    $(DESTDIR)$(UNITDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8
	install -m 755 $(DAEMON) $(DESTDIR)$(SBINDIR)/parkpulsed
	install -m 755 $(CLIENT) $(DESTDIR)$(BINDIR)/parkpulse
	install -m 755 $(NOTIFIER) $(DESTDIR)$(BINDIR)/parkpulse-notify
	install -m 644 $(COLL_SO) $(DESTDIR)$(LIBDIR)/parkpulse/collectors/
	install -m 644 config/indicators.conf $(DESTDIR)$(SYSCONFDIR)/parkpulse/indicators.conf
	sed -e 's|/usr/lib/parkpulse/collectors|$(LIBDIR)/parkpulse/collectors|' \
	    -e 's|/usr/share/parkpulse/dashboards|$(DATADIR)/parkpulse/dashboards|' \
	    config/parkpulse.conf > $(DESTDIR)$(SYSCONFDIR)/parkpulse/parkpulse.conf.example
	[ -e $(DESTDIR)$(SYSCONFDIR)/parkpulse/parkpulse.conf ] || \
	    cp $(DESTDIR)$(SYSCONFDIR)/parkpulse/parkpulse.conf.example $(DESTDIR)$(SYSCONFDIR)/parkpulse/parkpulse.conf
	cp -R dashboards/. $(DESTDIR)$(DATADIR)/parkpulse/dashboards/
	sed 's|/usr/sbin/parkpulsed|$(SBINDIR)/parkpulsed|' config/parkpulsed.service > $(DESTDIR)$(UNITDIR)/parkpulsed.service
	chmod 644 $(DESTDIR)$(UNITDIR)/parkpulsed.service
	sed 's|/usr/bin/parkpulse-notify|$(BINDIR)/parkpulse-notify|' config/parkpulse-notify.service \
	    > $(DESTDIR)$(UNITDIR)/parkpulse-notify.service
	chmod 644 $(DESTDIR)$(UNITDIR)/parkpulse-notify.service
	install -d $(DESTDIR)$(PREFIX)/lib/sysusers.d $(DESTDIR)$(PREFIX)/lib/tmpfiles.d
	install -m 644 config/parkpulse.sysusers $(DESTDIR)$(PREFIX)/lib/sysusers.d/parkpulse.conf
	install -m 644 config/parkpulse.tmpfiles $(DESTDIR)$(PREFIX)/lib/tmpfiles.d/parkpulse.conf
	for m in man/*.1; do [ -f "$$m" ] && install -m 644 $$m $(DESTDIR)$(MANDIR)/man1/ || true; done
	for m in man/*.5; do [ -f "$$m" ] && install -m 644 $$m $(DESTDIR)$(MANDIR)/man5/ || true; done
	for m in man/*.8; do [ -f "$$m" ] && install -m 644 $$m $(DESTDIR)$(MANDIR)/man8/ || true; done

uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/parkpulsed $(DESTDIR)$(BINDIR)/parkpulse $(DESTDIR)$(BINDIR)/parkpulse-notify
	rm -f $(DESTDIR)$(UNITDIR)/parkpulse-notify.service $(DESTDIR)$(MANDIR)/man8/parkpulse-notify.8
	rm -rf $(DESTDIR)$(LIBDIR)/parkpulse $(DESTDIR)$(DATADIR)/parkpulse
	rm -f $(DESTDIR)$(UNITDIR)/parkpulsed.service $(DESTDIR)$(PREFIX)/lib/sysusers.d/parkpulse.conf \
	      $(DESTDIR)$(PREFIX)/lib/tmpfiles.d/parkpulse.conf
	rm -f $(DESTDIR)$(MANDIR)/man1/parkpulse.1 $(DESTDIR)$(MANDIR)/man5/parkpulse.conf.5 \
	      $(DESTDIR)$(MANDIR)/man8/parkpulsed.8
	rm -f $(DESTDIR)$(SYSCONFDIR)/parkpulse/parkpulse.conf.example $(DESTDIR)$(SYSCONFDIR)/parkpulse/indicators.conf

clean:
	rm -rf build

# (-type f: build/deb/ holds directories such as usr/lib/tmpfiles.d)
-include $(shell find build -name '*.d' -type f 2>/dev/null)
