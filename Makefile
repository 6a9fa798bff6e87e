# dfmdispatch - build, test, install.
#
#   make            the library (build/lib/libdfmdispatch.so) and examples
#   make run        the Kit-like host example
#   make test       every test; ends with "N passed, M failed"
#   make bench      the benchmark beside its peers; writes docs/PERFORMANCE.md
#   make soak       the stress tests for minutes (SOAK_SECONDS, default 300)
#   make fuzz       the fuzzers for a bounded time (FUZZ_SECONDS each, 120)
#   make install PREFIX=/usr/local
#   make clean

SWIFT     ?= $(shell command -v swift 2>/dev/null || echo /opt/swift/usr/bin/swift)
CC        ?= cc
PREFIX    ?= /usr/local
BUILD     := build
LIBDIR    := $(BUILD)/lib
LIB       := $(LIBDIR)/libdfmdispatch.so
CWARN     := -Wall -Wextra -pedantic -Werror
CFLAGS    ?= -O2 -g
ALL_CFLAGS = -std=c99 $(CWARN) $(CFLAGS) -Iinclude -pthread
LINK_LIB   = -L$(LIBDIR) -ldfmdispatch -Wl,-rpath,'$$ORIGIN/../lib'

SWIFT_SOURCES := $(shell find Sources -name '*.swift' -o -name '*.c' -o -name '*.h') Package.swift
EXAMPLES  := $(basename $(notdir $(wildcard examples/c/*.c)))
EXAMPLE_BINS := $(addprefix $(BUILD)/examples/,$(EXAMPLES))

all: $(LIB) examples

# lld with scripts/hot-symbols.txt as its symbol order puts the functions
# a host runs together, so that fewer 64 KiB windows of the statically
# linked runtime are mapped into each host (scripts/hot_symbols.py).
#
# The Swift runtime's `-lstdc++` finds $(STDCXX_SCRIPT) first (swiftc's -L
# directories come before the compiler's): a linker script that names
# libstdc++.a, so the few C++ library functions the runtime calls are
# linked in, hidden, and a host does not load libstdc++.so at all.
STDCXX_DIR    := $(BUILD)/link
STDCXX_SCRIPT := $(STDCXX_DIR)/libstdc++.so

$(STDCXX_SCRIPT):
	@archive=$$($(CC) -print-file-name=libstdc++.a); \
	case "$$archive" in /*) ;; *) \
	    echo "libstdc++.a not found: install g++ (scripts/deps.sh)" >&2; \
	    exit 1;; esac; \
	mkdir -p $(STDCXX_DIR); \
	echo "INPUT($$archive)" >$@

# SwiftPM does not track the files that linker flags name (the symbol
# order, the version script, the libstdc++ script), so the recipe removes
# its copy of the library to make it link again.
$(LIB): $(SWIFT_SOURCES) dfmdispatch.map include/dfmdispatch.h \
    scripts/hot-symbols.txt $(STDCXX_SCRIPT)
	rm -f "$$($(SWIFT) build -c release --show-bin-path)/libdfmdispatch.so"
	$(SWIFT) build -c release --product dfmdispatch -Xswiftc -static-stdlib \
	    -Xswiftc -use-ld=lld -Xswiftc -L$(CURDIR)/$(STDCXX_DIR) \
	    -Xlinker --symbol-ordering-file=$(CURDIR)/scripts/hot-symbols.txt \
	    -Xlinker --no-warn-symbol-ordering \
	    -Xlinker --version-script=$(CURDIR)/dfmdispatch.map -Xlinker --no-export-dynamic
	mkdir -p $(LIBDIR)
	cp "$$($(SWIFT) build -c release --show-bin-path)/libdfmdispatch.so" $@

lib: $(LIB)

examples: $(EXAMPLE_BINS)

$(BUILD)/examples/%: examples/c/%.c examples/c/common.h $(LIB)
	mkdir -p $(BUILD)/examples
	$(CC) $(ALL_CFLAGS) -o $@ $< $(LINK_LIB)

run: deps $(BUILD)/examples/kit_loop
	$(BUILD)/examples/kit_loop

deps:
	@scripts/deps.sh

test: deps
	@scripts/test.sh

bench: deps
	scripts/bench.sh

soak: deps lib
	scripts/reliability.sh --soak $${SOAK_SECONDS:-300}

fuzz: deps lib
	scripts/reliability.sh --fuzz $${FUZZ_SECONDS:-120}

PKGCONFIG := $(BUILD)/dfmdispatch.pc

$(PKGCONFIG): FORCE
	mkdir -p $(BUILD)
	version=$$(sed -n 's/^#define DFM_VERSION_STRING "\(.*\)"/\1/p' include/dfmdispatch.h); \
	printf '%s\n' "prefix=$(PREFIX)" 'libdir=$${prefix}/lib' \
	    'includedir=$${prefix}/include' '' 'Name: dfmdispatch' \
	    'Description: deliver pipeline results from worker threads to the host thread' \
	    "Version: $$version" 'Libs: -L$${libdir} -ldfmdispatch' \
	    'Cflags: -I$${includedir}' > $@

install: $(LIB) $(PKGCONFIG)
	install -d $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include \
	    $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 755 $(LIB) $(DESTDIR)$(PREFIX)/lib/
	install -m 644 include/dfmdispatch.h $(DESTDIR)$(PREFIX)/include/
	install -m 644 $(PKGCONFIG) $(DESTDIR)$(PREFIX)/lib/pkgconfig/

clean:
	rm -rf $(BUILD) .build

.PHONY: all lib examples run deps test bench soak fuzz install clean FORCE

FORCE:
