# SPDX-License-Identifier: GPL-2.0
#
# The kernel build tree zchan.ko is built against, shared by the top-level
# Makefile and tests/Makefile.
#
#   KDIR  given on the command line or in the environment; else the running
#         kernel's /lib/modules/$(uname -r)/build; else (a host kernel
#         without a build tree, as in a container or on a custom kernel) the
#         newest Debian /usr/src/linux-headers-*-amd64 whose kernel is in
#         /boot (so tools/vm-run can boot it), else the newest one at all.
#   KVER  the release KDIR builds for, e.g. 6.1.0-56-amd64, as in the
#         modules' vermagic (Debian's include/config/kernel.release says
#         6.1.192); computed from KDIR unless given on the command line.

ifeq ($(strip $(KDIR)),)
KDIR := $(shell d=/lib/modules/$$(uname -r)/build; [ -f $$d/Makefile ] && echo $$d)
ifeq ($(KDIR),)
KDIR := $(shell best=; for d in $$(ls -d /usr/src/linux-headers-*-amd64 2>/dev/null | sort -V); do \
	[ -f $$d/Makefile ] || continue; v=$$(basename $$d | sed s/^linux-headers-//); \
	if [ -e /boot/vmlinuz-$$v ]; then best=$$d; elif [ -z "$$best" ]; then best=$$d; fi; \
	done; echo $$best)
ifneq ($(KDIR),)
$(shell echo "zchan: the running kernel $$(uname -r) has no build tree; building zchan.ko against $(KDIR)" >&2)
endif
endif
endif
export KDIR

ifneq ($(origin KVER),command line)
KVER := $(shell sed -n 's/.*UTS_RELEASE "\(.*\)"/\1/p' $(KDIR)/include/generated/utsrelease.h 2>/dev/null)
endif
