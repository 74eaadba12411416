# SPDX-License-Identifier: GPL-2.0
#
# Build rules shared by zchan-top and zchan-lat, included by their
# Makefiles after setting TOOL (zchan-top) and TOOL_BPF (zchan_top): the
# libbpf-tools layout, TOOL_BPF.bpf.c + TOOL_BPF.c + TOOL_BPF.h, with
# tools/lib/obs/obs.c shared.
#
# The BPF object is built with clang -target bpf against the kernel's UAPI
# headers (linux-libc-dev) and libbpf-dev's bpf_helpers.h: no vmlinux.h,
# because the programs read only zchan's tracepoint records
# (tools/lib/obs/zchan_tp.h).  The skeleton comes from `bpftool gen skeleton`;
# Debian's libbpf-dev is linked, never a copy.  Without clang, bpftool or
# libbpf-dev the tool is skipped with a note, so the rest of the tree
# builds.

OBS_DIR := $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))
TOP ?= $(abspath $(OBS_DIR)/../../..)
PREFIX ?= /usr/local
SBINDIR ?= $(PREFIX)/sbin

CC ?= cc
CLANG ?= clang
BPFTOOL ?= $(or $(shell command -v bpftool 2>/dev/null),/usr/sbin/bpftool)
CFLAGS ?= -O2 -g
OUTPUT := .output
ARCH := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')
MULTIARCH := $(shell $(CC) -dumpmachine)

BPF_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -Wall \
	-I/usr/include/$(MULTIARCH) -I$(OBS_DIR) -I.
TOOL_CFLAGS := -std=gnu11 -Wall -Wextra -Wno-unused-parameter \
	-I$(OUTPUT) -I$(OBS_DIR) -I. -MMD -MP
TOOL_LIBS := $(or $(shell pkg-config --libs libbpf 2>/dev/null),-lbpf -lelf -lz)

MISSING := $(if $(shell command -v $(CLANG) 2>/dev/null),,$(CLANG)) \
	$(if $(wildcard $(BPFTOOL)),,bpftool) \
	$(if $(wildcard /usr/include/bpf/libbpf.h),,libbpf-dev)
MISSING := $(strip $(MISSING))

ifeq ($(V),1)
Q :=
quiet = @:
else
Q := @
quiet = @printf '  %-7s %s\n'
endif

.PHONY: all install clean

ifeq ($(MISSING),)
all: $(TOOL)
else
all:
	@echo "  SKIP    $(TOOL): needs $(MISSING) (scripts/install-deps.sh)" >&2
endif

$(OUTPUT):
	$(Q)mkdir -p $@

# bpftool gen object links the object and drops its DWARF, keeping BTF.
$(OUTPUT)/$(TOOL_BPF).bpf.o: $(TOOL_BPF).bpf.c $(TOOL_BPF).h \
		$(OBS_DIR)/zchan_tp.h $(OBS_DIR)/zchan_wait.bpf.h | $(OUTPUT)
	$(quiet) BPF $@
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@.tmp.o && \
		$(BPFTOOL) gen object $@ $@.tmp.o && rm -f $@.tmp.o

$(OUTPUT)/$(TOOL_BPF).skel.h: $(OUTPUT)/$(TOOL_BPF).bpf.o
	$(quiet) GEN-SKEL $@
	$(Q)$(BPFTOOL) gen skeleton $< > $@.tmp && mv $@.tmp $@

$(OUTPUT)/$(TOOL_BPF).o: $(TOOL_BPF).c $(OUTPUT)/$(TOOL_BPF).skel.h
	$(quiet) CC $@
	$(Q)$(CC) $(CFLAGS) $(TOOL_CFLAGS) -c -o $@ $<

$(OUTPUT)/obs.o: $(OBS_DIR)/obs.c | $(OUTPUT)
	$(quiet) CC $@
	$(Q)$(CC) $(CFLAGS) $(TOOL_CFLAGS) -c -o $@ $<

$(TOOL): $(OUTPUT)/$(TOOL_BPF).o $(OUTPUT)/obs.o
	$(quiet) LD $@
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(TOOL_LIBS)

# The man page (Documentation/man/TOOL.8.rst) is installed with the
# library's pages by userspace/Makefile.
install: all
	$(if $(MISSING),,install -D -m 0755 $(TOOL) $(DESTDIR)$(SBINDIR)/$(TOOL))

clean:
	rm -rf $(OUTPUT) $(TOOL)

-include $(OUTPUT)/*.d
