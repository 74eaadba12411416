# SPDX-License-Identifier: GPL-2.0
#
# The kernels zchan.ko is built for, shared by the top-level Makefile and
# tests/Makefile.
#
#   ZCHAN_KERNELS  one VERSION:DIR word per kernel zchan.ko is built and
#         tested for.  With KDIR given (command line or environment), that
#         kernel alone; otherwise every supported kernel installed here
#         (scripts/kernels.sh: Debian's linux-headers-VERSION-amd64 of the
#         6.1 and 6.12 series with /boot/vmlinuz-VERSION), oldest first:
#         all of them, whichever headers are newest.
#   KDIR  the one kernel build tree for what needs a single kernel (the
#         test modules of tests/vm-run/warn, O=): given, else the first
#         (oldest) of ZCHAN_KERNELS, Debian 12's own 6.1 and the kernel
#         scripts/vm-run boots by default, else the running kernel's
#         /lib/modules/$(uname -r)/build.
#   KVER  the release KDIR builds for, e.g. 6.1.0-57-amd64, as in the
#         modules' vermagic (Debian's include/config/kernel.release says
#         6.1.192); computed from KDIR unless given on the command line.
#   KDIR_GIVEN  1 when KDIR was given.

ifeq ($(strip $(KDIR)),)
KDIR_GIVEN :=
ZCHAN_KERNELS := $(shell $(TOP)/scripts/kernels.sh | tr ' ' ':')
KDIR := $(firstword $(foreach k,$(ZCHAN_KERNELS),$(word 2,$(subst :, ,$(k)))))
ifeq ($(KDIR),)
KDIR := $(shell d=/lib/modules/$$(uname -r)/build; [ -f $$d/Makefile ] && echo $$d)
endif
else
KDIR_GIVEN := 1
endif

ifneq ($(origin KVER),command line)
KVER := $(shell sed -n 's/.*UTS_RELEASE "\(.*\)"/\1/p' $(KDIR)/include/generated/utsrelease.h 2>/dev/null)
endif

# No supported kernel but a build tree for the running one: build for that.
ifneq ($(KDIR_GIVEN)$(if $(ZCHAN_KERNELS),,$(KDIR)),)
ZCHAN_KERNELS := $(KVER):$(KDIR)
endif
ZCHAN_KERNEL_VERSIONS := $(foreach k,$(ZCHAN_KERNELS),$(firstword $(subst :, ,$(k))))
