# SPDX-License-Identifier: GPL-2.0
#
# Observability tests (included by tests/Makefile, cwd = tests/).
#
# obs/chanstat-test.sh (guest): debugfs zchan/chanstat and the fdinfo of
# channel files, with obs/zchan_obs_stream running.  Reads only: safe in
# the main two-vCPU guest.
#
# obs/obs-tools-test.sh (native), for each kernel of the guest suite,
# boots a guest of its own with ONE vCPU and runs obs/guest-tools.sh
# there: the tracepoints through tracefs, then zchan-top and zchan-lat.
# Enabling a tracepoint or attaching BPF patches kernel text, which under
# multi-threaded TCG wedged a vCPU; with one vCPU it cannot.
# $ZCHAN_VM_KERNEL picks the kernels as for the main guest runs.

OBS_TOOLS := $(TOP)/tools/zchan-top/zchan-top $(TOP)/tools/zchan-lat/zchan-lat

GUEST_TESTS += obs/chanstat-test.sh
NATIVE_TESTS += obs/obs-tools-test.sh
TEST_CLEAN += obs/zchan_obs_stream

obs/chanstat-test.sh: obs/zchan_obs_stream
obs/obs-tools-test.sh: obs/zchan_obs_stream $(OBS_TOOLS)

obs/zchan_obs_stream: obs/zchan_obs_stream.c $(LIBZCHAN_A) $(TOP)/include/zchan.h
	$(call quiet_cmd,CC,$@)
	$(Q)$(CC) $(CFLAGS) -std=gnu11 -Wall -Wextra $(SANITIZE_CFLAGS) $(ZCHAN_CFLAGS) \
		-o $@ $< $(LIBZCHAN_A) -luring

# tools/Makefile builds them (and says what is missing to build them).
$(OBS_TOOLS): obs-tools-force | $(LIBZCHAN_A)
	$(Q)$(MAKE) --no-print-directory -C $(TOP)/tools TOP=$(TOP) obs

.PHONY: obs-tools-force
obs-tools-force:
