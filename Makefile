# SPDX-License-Identifier: GPL-2.0
#
# zchan: kernel module, library, tools and tests.  `make help` lists the
# targets; README.md explains the quick start.
#
# Variables: KDIR (one kernel build tree instead of every supported one,
# see scripts/kdir.mk), O=DIR (build zchan.ko out of tree, in DIR), V=1
# (full commands), PREFIX, DESTDIR, LIBDIR, INCLUDEDIR, BINDIR (install),
# SANITIZE=1 (ASan/UBSan userspace).

SHELL := /bin/bash
TOP := $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))
include $(TOP)/scripts/kdir.mk
include $(TOP)/scripts/deb.mk

PREFIX ?= /usr/local
export PREFIX

BUILD := $(TOP)/build

# Without KDIR and O, zchan.ko is built for each kernel of ZCHAN_KERNELS
# into build/module-VERSION/ (by a sub-make given that KDIR and O); with
# KDIR, for that kernel only, in the tree (module/zchan.ko) or in O=DIR.
EACH_KERNEL := $(if $(KDIR_GIVEN)$(O),,1)
each_module_dir = $(BUILD)/module-$(1)
each_kdir = $(patsubst $(1):%,%,$(filter $(1):%,$(ZCHAN_KERNELS)))

# O= selects where zchan.ko is built; it must not reach the kernel's own
# Makefile, where it would mean the kernel's output directory.
MODULE_DIR := $(if $(O),$(abspath $(O)),$(TOP))
override MAKEOVERRIDES := $(filter-out O=%,$(MAKEOVERRIDES))
KBUILD := $(MAKE) -C $(KDIR) M=$(MODULE_DIR)
ZCHAN_KO := $(MODULE_DIR)/module/zchan.ko
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

.PHONY: all module lib tools tests python check lint install bench clean distclean \
	fuzz check-debug \
	help kernel-files module-tree check-kdir sparse checkpatch print-kernels

all: module lib tools tests python

check-kdir:
	@if [ -z "$(ZCHAN_KERNELS)" ] || [ ! -f "$(KDIR)/Makefile" ]; then \
		echo "zchan: no kernel build tree (KDIR='$(KDIR)'): install the kernel headers and images (scripts/install-deps.sh) or set KDIR" >&2; \
		exit 1; \
	fi

ifneq ($(EACH_KERNEL),)
# One sub-make per kernel; with -j they run side by side.
module: $(addprefix module@,$(ZCHAN_KERNEL_VERSIONS)) | check-kdir
sparse: $(addprefix sparse@,$(ZCHAN_KERNEL_VERSIONS)) | check-kdir
$(addprefix module@,$(ZCHAN_KERNEL_VERSIONS)): module@%:
	+@$(MAKE) --no-print-directory module KDIR=$(call each_kdir,$*) O=$(call each_module_dir,$*) || \
		{ echo "zchan: building zchan.ko for $* ($(call each_kdir,$*)) FAILED" >&2; exit 1; }
$(addprefix sparse@,$(ZCHAN_KERNEL_VERSIONS)): sparse@%:
	+@$(MAKE) --no-print-directory sparse KDIR=$(call each_kdir,$*) O=$(call each_module_dir,$*) || \
		{ echo "zchan: sparse for $* ($(call each_kdir,$*)) FAILED" >&2; exit 1; }
else
module: check-kdir $(if $(O),module-tree)
	+@if [ -f $(MODULE_DIR)/module/Kbuild ]; then \
		$(KBUILD) modules; \
	else \
		echo "  SKIP    module/: no Kbuild yet" >&2; \
	fi

sparse: check-kdir $(if $(O),module-tree)
	@command -v sparse >/dev/null || { echo "zchan: sparse not found (scripts/install-deps.sh)" >&2; exit 1; }
	@mkdir -p $(BUILD)
	@echo "  SPARSE  zchan.ko for $(KVER)"
	+@set -o pipefail; $(KBUILD) C=2 modules 2>&1 | tee $(BUILD)/sparse-$(KVER).log
	@if grep -E '(warning|error):' $(BUILD)/sparse-$(KVER).log >/dev/null; then \
		echo "zchan: sparse/compiler warnings for $(KVER) (full log in build/sparse-$(KVER).log)" >&2; exit 1; \
	fi
	@# The module's files call each other one way only (module.rst, Source map).
	@$(TOP)/module/callgraph.sh $(MODULE_DIR)/module > $(BUILD)/callgraph-$(KVER).txt || \
		{ echo "zchan: module/ files call each other both ways (build/callgraph-$(KVER).txt)" >&2; exit 1; }
endif

# The kernels zchan.ko is built for, "VERSION DIR" a line (tests/run-tests.sh).
print-kernels:
	@$(foreach k,$(ZCHAN_KERNELS),echo "$(subst :, ,$(k))";) true

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

# After tools: tests/bench and tests/obs make the tools' binaries through
# tools/Makefile too, which must not run twice at once.
tests: lib tools $(KSFT_HDRS)
	$(call submake,tests,all)

python:
	$(call submake,python,all)

# The kselftest harness and checkpatch.pl come from Debian's linux-source.
kernel-files: $(KSFT_HDRS) $(CHECKPATCH)
$(KSFT_HDRS) $(CHECKPATCH) &:
	@$(TOP)/scripts/extract-kernel-files.sh $(LINUX_SOURCE_TAR) $(BUILD)

# checkpatch.pl --no-tree -f and sparse (C=2) over the module, for each
# kernel: any warning fails.  No --ignore: fix the code instead.
lint: checkpatch sparse

checkpatch: $(CHECKPATCH)
	@echo "  CHECKPATCH $(patsubst $(TOP)/%,%,$(LINT_FILES))"
	@perl $(CHECKPATCH) --no-tree -f --quiet --show-types $(CHECKPATCH_FLAGS) $(LINT_FILES)

# zchan.ko is built by tests/run-tests.sh, for each kernel in turn, each
# build one result: a kernel it does not build for fails there, and the
# others are still tested.
check:
	@$(TOP)/scripts/install-deps.sh --quiet
	+@if ! $(MAKE) --no-print-directory lib tools tests; then \
		echo "build: FAILED (make lib tools tests)"; echo "0 passed, 1 failed"; exit 1; \
	fi
	+@$(TOP)/tests/run-tests.sh

# The long reliability pass: a million fuzzer calls, 1000 producer and 1000
# consumer kills, exits with waits in flight, then the leak check.
fuzz: all
	@$(TOP)/tests/fuzz/run-long.sh

# The whole guest suite on a KASAN/lockdep/kmemleak kernel of each
# supported series (DEBUG_KERNEL_SERIES=6.1 for one), each built once from
# linux-source-SERIES into ~/.cache/zchan/debug-kernel-SERIES (about an
# hour of both CPUs each), the series' one-vCPU guests side by side
# (scripts/debug-kernel/check.sh).
DEBUG_KERNEL_SERIES ?= $(shell $(TOP)/scripts/kernels.sh --series)
check-debug: lib tools tests
	@$(TOP)/scripts/install-deps.sh --quiet
	+@$(TOP)/scripts/debug-kernel/check.sh $(DEBUG_KERNEL_SERIES)

# zchan.ko of each kernel it was built for (KDIR: that one).
INSTALL_KOS := $(if $(EACH_KERNEL),$(foreach v,$(ZCHAN_KERNEL_VERSIONS),$(v):$(call each_module_dir,$(v))/module/zchan.ko),$(KVER):$(ZCHAN_KO))
install: all
	@for vk in $(INSTALL_KOS); do \
		v=$${vk%%:*} ko=$${vk#*:}; \
		[ -f $$ko ] || continue; \
		echo "  INSTALL $(DESTDIR)/lib/modules/$$v/extra/zchan.ko"; \
		install -D -m 0644 $$ko $(DESTDIR)/lib/modules/$$v/extra/zchan.ko || exit 1; \
		if [ -z "$(DESTDIR)" ] && command -v depmod >/dev/null; then depmod -a $$v || true; fi; \
	done
	@echo "  INSTALL $(DESTDIR)/lib/udev/rules.d/60-zchan.rules"
	@install -D -m 0644 $(TOP)/udev/60-zchan.rules $(DESTDIR)/lib/udev/rules.d/60-zchan.rules
	$(call submake,userspace,install)
	$(call submake,tools,install)

# The main job: install what is missing, build, compare zchan with pipe
# and socketpair (scripts/run-bench loads the module where it can, or runs
# in a throwaway guest).
bench:
	@$(TOP)/scripts/install-deps.sh --quiet
	@$(MAKE) --no-print-directory all
	@$(TOP)/scripts/run-bench

clean:
	@if [ -n "$(KDIR)" ] && [ -f $(KDIR)/Makefile ]; then $(KBUILD) clean; fi
	$(call submake,userspace,clean)
	$(call submake,tools,clean)
	$(call submake,tests,clean)
	$(call submake,python,clean)
	rm -rf $(BUILD)/module-*

# Also the caches: extracted kernel files and vm-run's initramfs/vmlinux.
distclean: clean
	rm -rf $(BUILD)

HELP_KERNELS_FROM := $(if $(KDIR_GIVEN),KDIR,every Debian 6.1 and 6.12 kernel with headers and image installed)
help_kernel = $(1): $(patsubst $(TOP)/%,%,$(if $(EACH_KERNEL),$(call each_module_dir,$(1))/module/zchan.ko,$(ZCHAN_KO))), against $(2)
help:
	@echo "Targets:"
	@echo "  all (default)  zchan.ko, libzchan, tools and tests"
	@echo "  module         zchan.ko only: for each kernel below, or KDIR=... only"
	@echo "                 (in the tree, or in O=DIR)"
	@echo "  lib, tools, tests, python (the zchan module, built in place in python/)"
	@echo "  check          install missing packages, build, lint, run every test"
	@echo "                 (native, then the guest suite in a qemu guest per kernel):"
	@echo "                 prints 'N passed, N failed'"
	@echo "  lint           checkpatch.pl and sparse over the module, for each kernel"
	@echo "  fuzz           long fuzzer and peer-kill pass in a guest (~1 h)"
	@echo "  check-debug    guest suite on a KASAN/lockdep/kmemleak kernel of each"
	@echo "                 series (built once, ~1 h each; DEBUG_KERNEL_SERIES=$(DEBUG_KERNEL_SERIES))"
	@echo "  bench          install missing packages, build, run the benchmarks"
	@echo "  install        module, udev rule, library, headers, tools"
	@echo "                 (PREFIX=$(PREFIX) DESTDIR=)"
	@echo "  deb            Debian packages in build/deb/, checked by lintian"
	@echo "  dkms-source    the module's DKMS source tree (DKMS_SRC=DIR)"
	@echo "  clean, distclean (also the caches in build/)"
	@echo "Kernels zchan.ko is built and tested for ($(HELP_KERNELS_FROM)):"
	@$(foreach k,$(ZCHAN_KERNELS),echo "  $(call help_kernel,$(firstword $(subst :, ,$(k))),$(lastword $(subst :, ,$(k))))";) \
		$(if $(ZCHAN_KERNELS),true,echo "  none: run scripts/install-deps.sh")
