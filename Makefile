# SPDX-License-Identifier: GPL-2.0
#
# zchan: kernel module, library, tools and tests.  `make help` lists the
# targets; README.md explains the quick start.
#
# Variables: KDIR (kernel build tree, see scripts/kdir.mk), O=DIR (build
# zchan.ko out of tree, in DIR), V=1 (full commands), PREFIX, DESTDIR,
# LIBDIR, INCLUDEDIR, BINDIR (install), SANITIZE=1 (ASan/UBSan userspace).

SHELL := /bin/bash
TOP := $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))
include $(TOP)/scripts/kdir.mk
include $(TOP)/scripts/deb.mk

PREFIX ?= /usr/local
export PREFIX

# O= selects where zchan.ko is built; it must not reach the kernel's own
# Makefile, where it would mean the kernel's output directory.
MODULE_DIR := $(if $(O),$(abspath $(O)),$(TOP))
override MAKEOVERRIDES := $(filter-out O=%,$(MAKEOVERRIDES))
KBUILD := $(MAKE) -C $(KDIR) M=$(MODULE_DIR)
ZCHAN_KO := $(MODULE_DIR)/module/zchan.ko

BUILD := $(TOP)/build
KSFT_INC := $(BUILD)/ksft
KSFT_HDRS := $(KSFT_INC)/kselftest_harness.h $(KSFT_INC)/kselftest.h
CHECKPATCH := $(BUILD)/checkpatch/checkpatch.pl
LINUX_SOURCE_TAR ?= /usr/src/linux-source-6.1.tar.xz

# Files checkpatch.pl checks; CHECKPATCH_FLAGS adds options (e.g. --strict).
# Generated files (*.mod.c, module/compat.h) are not checked.
LINT_FILES = $(filter-out %.mod.c $(TOP)/module/compat.h, \
	$(wildcard $(TOP)/module/*.c $(TOP)/module/*.h) \
	$(TOP)/include/uapi/linux/zchan.h \
	$(wildcard $(TOP)/tests/vm-run/warn/*.c))
CHECKPATCH_FLAGS ?=

# Run `make -C DIR TARGET` when DIR has a Makefile; skip it with a note
# otherwise, so the tree builds while parts are still being written.
define submake
	+@if [ -f $(TOP)/$(1)/Makefile ]; then \
		$(MAKE) -C $(TOP)/$(1) TOP=$(TOP) $(2); \
	else \
		echo "  SKIP    $(1)/: no Makefile yet" >&2; \
	fi
endef

.PHONY: all module lib tools tests check lint install bench clean distclean \
	fuzz check-debug \
	help kernel-files module-tree check-kdir sparse checkpatch

all: module lib tools tests

check-kdir:
	@if [ -z "$(KDIR)" ] || [ ! -f "$(KDIR)/Makefile" ]; then \
		echo "zchan: no kernel build tree (KDIR='$(KDIR)'): install linux-headers-amd64 (scripts/install-deps.sh) or set KDIR" >&2; \
		exit 1; \
	fi

module: check-kdir $(if $(O),module-tree)
	+@if [ -f $(MODULE_DIR)/module/Kbuild ]; then \
		$(KBUILD) modules; \
	else \
		echo "  SKIP    module/: no Kbuild yet" >&2; \
	fi

# O=DIR: kbuild (6.1) builds external modules next to their sources, so
# DIR gets a tree of symlinks to the sources and the objects land there.
module-tree:
	@$(TOP)/scripts/module-tree.sh $(TOP) $(MODULE_DIR)

lib:
	$(call submake,userspace,all)

# SANITIZE=1 builds libzchan with ASan/UBSan: whatever links it must link
# the sanitizer runtimes too.
ifeq ($(SANITIZE),1)
TOOLS_SANITIZE := LDFLAGS="$(LDFLAGS) -fsanitize=address,undefined"
endif

tools: lib
	$(call submake,tools,all $(TOOLS_SANITIZE))

tests: lib $(KSFT_HDRS)
	$(call submake,tests,all)

# The kselftest harness and checkpatch.pl come from Debian's linux-source.
kernel-files: $(KSFT_HDRS) $(CHECKPATCH)
$(KSFT_HDRS) $(CHECKPATCH) &:
	@$(TOP)/scripts/extract-kernel-files.sh $(LINUX_SOURCE_TAR) $(BUILD)

# checkpatch.pl --no-tree -f and sparse (C=2) over the module: any warning
# fails.  No --ignore: fix the code instead.
lint: checkpatch sparse

checkpatch: $(CHECKPATCH)
	@echo "  CHECKPATCH $(patsubst $(TOP)/%,%,$(LINT_FILES))"
	@perl $(CHECKPATCH) --no-tree -f --quiet --show-types $(CHECKPATCH_FLAGS) $(LINT_FILES)

sparse: check-kdir
	@command -v sparse >/dev/null || { echo "zchan: sparse not found (scripts/install-deps.sh)" >&2; exit 1; }
	@mkdir -p $(BUILD)
	@set -o pipefail; $(MAKE) -C $(KDIR) M=$(TOP) C=2 modules 2>&1 | tee $(BUILD)/sparse.log
	@if grep -E '(warning|error):' $(BUILD)/sparse.log >/dev/null; then \
		echo "zchan: sparse/compiler warnings (full log in build/sparse.log)" >&2; exit 1; \
	fi

check:
	@$(TOP)/scripts/install-deps.sh --quiet
	@if ! $(MAKE) --no-print-directory all; then \
		echo "build: FAILED (make all)"; echo "0 passed, 1 failed"; exit 1; \
	fi
	+@$(TOP)/tests/run-tests.sh

# The long reliability pass: a million fuzzer calls, 1000 producer and 1000
# consumer kills, exits with waits in flight, then the leak check.
fuzz: all
	@$(TOP)/tests/fuzz/run-long.sh

# The whole guest suite on a KASAN/lockdep/kmemleak 6.1 kernel, built once
# from linux-source-6.1 into ~/.cache/zchan (about an hour on 2 CPUs).
# One vCPU: qemu's TCG code patching races with perf_event_open on two.
check-debug: all
	@$(TOP)/scripts/install-deps.sh --quiet
	@k=$$($(TOP)/scripts/debug-kernel/build.sh) || exit 1; \
	ZCHAN_VM_KERNEL=$$k ZCHAN_VM_ARGS="--append no5lvl --smp 1" \
	ZCHAN_GUEST_TIMEOUT=5400 ZCHAN_GUEST_TEST_TIMEOUT=2400 \
		$(TOP)/tests/run-tests.sh --no-lint --no-native

install: all
	@if [ -f $(ZCHAN_KO) ]; then \
		echo "  INSTALL $(DESTDIR)/lib/modules/$(KVER)/extra/zchan.ko"; \
		install -D -m 0644 $(ZCHAN_KO) $(DESTDIR)/lib/modules/$(KVER)/extra/zchan.ko; \
		if [ -z "$(DESTDIR)" ] && command -v depmod >/dev/null; then depmod -a $(KVER) || true; fi; \
	fi
	@echo "  INSTALL $(DESTDIR)/lib/udev/rules.d/60-zchan.rules"
	@install -D -m 0644 $(TOP)/udev/60-zchan.rules $(DESTDIR)/lib/udev/rules.d/60-zchan.rules
	$(call submake,userspace,install)
	$(call submake,tools,install)

# The main job: install what is missing, build, compare zchan with pipe
# and socketpair (tools/run-bench loads the module where it can, or runs
# in a throwaway guest).
bench:
	@$(TOP)/scripts/install-deps.sh --quiet
	@$(MAKE) --no-print-directory all
	@if [ -x $(TOP)/tools/run-bench ]; then \
		$(TOP)/tools/run-bench; \
	elif [ -x $(TOP)/tools/zchan-bench/zchan-bench ]; then \
		echo "zchan: tools/run-bench does not exist yet: running zchan-bench natively" >&2; \
		$(TOP)/tools/zchan-bench/zchan-bench; \
	else \
		echo "zchan: no benchmark built yet (tools/run-bench, tools/zchan-bench)" >&2; \
	fi

clean:
	@if [ -n "$(KDIR)" ] && [ -f $(KDIR)/Makefile ]; then $(KBUILD) clean; fi
	$(call submake,userspace,clean)
	$(call submake,tools,clean)
	$(call submake,tests,clean)
	rm -rf $(BUILD)/module-*

# Also the caches: extracted kernel files and vm-run's initramfs/vmlinux.
distclean: clean
	rm -rf $(BUILD)

help:
	@echo "Targets:"
	@echo "  all (default)  zchan.ko, libzchan, tools and tests"
	@echo "  module         zchan.ko only (KDIR=..., O=DIR for an out-of-tree build)"
	@echo "  lib, tools, tests"
	@echo "  check          install missing packages, build, lint, run every test"
	@echo "                 (native, then one qemu guest): prints 'N passed, N failed'"
	@echo "  lint           checkpatch.pl and sparse over the module"
	@echo "  fuzz           long fuzzer and peer-kill pass in a guest (~1 h)"
	@echo "  check-debug    guest suite on a KASAN/lockdep/kmemleak kernel"
	@echo "  bench          install missing packages, build, run the benchmarks"
	@echo "  install        module, udev rule, library, headers, tools"
	@echo "                 (PREFIX=$(PREFIX) DESTDIR=)"
	@echo "  clean, distclean (also the caches in build/)"
	@echo "Kernel: KDIR=$(KDIR) KVER=$(KVER)"
