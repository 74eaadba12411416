# SPDX-License-Identifier: GPL-2.0
#
# Debian packages.  Included by the top-level Makefile; debian/rules uses
# it on its own (make -f scripts/deb.mk TOP=. dkms-source DKMS_SRC=DIR).
#
#   make deb       zchan-dkms, libzchan1, libzchan-dev and zchan-tools:
#                  dpkg-buildpackage in a copy of the tree under build/deb/
#                  (the .debs land there, never in ..), then lintian, whose
#                  errors fail the target (scripts/deb.sh -h for options)
#   make dkms-source DKMS_SRC=DIR
#                  copy into DIR what DKMS builds zchan.ko from: dkms.conf,
#                  the Kbuild files, module/ and the UAPI header; the
#                  zchan-dkms package and tests/pkg/dkms-test.sh use it

DEB_MK_TOP := $(patsubst %/scripts/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))
TOP ?= $(DEB_MK_TOP)

DKMS_VERSION := $(shell sed -n 's/^PACKAGE_VERSION="\(.*\)"$$/\1/p' $(TOP)/dkms.conf)
# Not what a build generated here (compat.h, *.mod.c: for one kernel).
DKMS_SOURCES := dkms.conf Kbuild include/uapi/linux/zchan.h \
	$(filter-out module/compat.h %.mod.c,$(patsubst $(TOP)/%,%, \
		$(wildcard $(TOP)/module/Kbuild $(TOP)/module/*.sh \
			$(TOP)/module/*.[ch])))

# Included at the top of a Makefile: do not become its default goal.
deb_mk_default_goal := $(.DEFAULT_GOAL)

.PHONY: deb dkms-source

deb:
	@$(TOP)/scripts/deb.sh

dkms-source:
	@if [ -z "$(DKMS_SRC)" ]; then \
		echo "zchan: make dkms-source needs DKMS_SRC=DIR" >&2; exit 1; \
	fi
	@cd $(TOP) && for f in $(DKMS_SOURCES); do \
		install -D -m "$$(stat -c %a "$$f")" "$$f" "$(DKMS_SRC)/$$f" || exit 1; \
	done

.DEFAULT_GOAL := $(deb_mk_default_goal)
