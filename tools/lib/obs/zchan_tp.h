/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The records of zchan.ko's tracepoints (module/zchan_trace.h) as classic
 * "tracepoint/zchan/..." BPF programs see them, for the BPF programs of
 * zchan-top and zchan-lat and for their user-space halves, which check
 * every offset below against tracefs events/zchan/NAME/format before
 * loading (obs_check_formats()).
 *
 * Classic tracepoints rather than tp_btf: tp_btf needs the module's BTF,
 * which a module built against Debian's 6.1 headers does not have (they
 * ship no vmlinux to base it on).  The programs read nothing but these
 * records, whose layout the module fixes, so one binary runs on every
 * kernel without BTF or CO-RE relocations.
 */
#ifndef ZCHAN_TP_H
#define ZCHAN_TP_H

#include <linux/types.h>

/* Wait kinds, wait outcomes: the ZCHAN_TRACE_* of module/zchan_trace.h. */
#define ZCHAN_TP_WAIT_IOCTL	1
#define ZCHAN_TP_WAIT_URING	2
#define ZCHAN_TP_END_DATA	1
#define ZCHAN_TP_END_ROOM	2
#define ZCHAN_TP_END_HANGUP	3
#define ZCHAN_TP_END_TIMEOUT	4
#define ZCHAN_TP_END_SIGNAL	5
#define ZCHAN_TP_END_CANCEL	6

/* Roles (ZCHAN_ROLE_* of the UAPI); "wake" is zchan-lat's kick-to-wake. */
#define ZCHAN_TP_PRODUCER	1
#define ZCHAN_TP_CONSUMER	2
#define ZCHAN_TP_WAKE		3
#define ZCHAN_TP_NR_ROLES	4

/* The common header every trace record starts with. */
struct zchan_tp_common {
	__u16 type;
	__u8 flags;
	__u8 preempt_count;
	__s32 pid;
};

struct zchan_tp_wait_begin {
	struct zchan_tp_common common;
	__u64 id;
	__u64 cookie;
	__u32 role;
	__u32 kind;
};

struct zchan_tp_wait_end {
	struct zchan_tp_common common;
	__u64 id;
	__u64 cookie;
	__u32 role;
	__u32 kind;
	__u32 reason;
	__u32 revents;
	__s32 err;
	__u32 resv;
};

struct zchan_tp_kick {
	struct zchan_tp_common common;
	__u64 id;
	__u32 role;
	__u32 armed;
};

/* log2 histogram slots: slot i counts values in [2^(i-1), 2^i). */
#define ZCHAN_HIST_SLOTS	32

struct zchan_hist {
	__u32 slots[ZCHAN_HIST_SLOTS];
};

/* Histogram map key: a channel (0: all of them) and a role. */
struct zchan_hist_key {
	__u64 id;
	__u32 role;
	__u32 pad;
};

/* A wait in progress, by cookie. */
struct zchan_wait_start {
	__u64 ts;
	__u64 id;
	__u32 role;
	__u32 kind;
};

#endif /* ZCHAN_TP_H */
