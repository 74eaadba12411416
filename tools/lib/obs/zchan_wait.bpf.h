/* SPDX-License-Identifier: GPL-2.0 */
/*
 * BPF side shared by zchan-top and zchan-lat: pair each zchan_wait_begin
 * with its zchan_wait_end (by cookie) and count wait durations in log2
 * histograms of microseconds, one per (channel, role) key.
 */
#ifndef ZCHAN_WAIT_BPF_H
#define ZCHAN_WAIT_BPF_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "zchan_tp.h"

#define ZCHAN_MAX_WAITS		10240	/* waits in progress */
#define ZCHAN_MAX_HISTS		4096	/* (channel, role) histograms */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, ZCHAN_MAX_WAITS);
	__type(key, __u64);
	__type(value, struct zchan_wait_start);
} waits SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, ZCHAN_MAX_HISTS);
	__type(key, struct zchan_hist_key);
	__type(value, struct zchan_hist);
} hists SEC(".maps");

static __always_inline __u32 zchan_log2_slot(__u64 v)
{
	__u32 slot = 0;

	while (v && slot < ZCHAN_HIST_SLOTS - 1) {
		v >>= 1;
		slot++;
	}
	return slot;
}

/* Count @usecs in the histogram of (@id, @role). */
static __always_inline void zchan_hist_add(__u64 id, __u32 role, __u64 usecs)
{
	struct zchan_hist_key key = { .id = id, .role = role };
	static const struct zchan_hist zero;
	struct zchan_hist *h;
	__u32 slot;

	h = bpf_map_lookup_elem(&hists, &key);
	if (!h) {
		bpf_map_update_elem(&hists, &key, &zero, BPF_NOEXIST);
		h = bpf_map_lookup_elem(&hists, &key);
		if (!h)
			return;
	}
	slot = zchan_log2_slot(usecs);
	if (slot < ZCHAN_HIST_SLOTS)
		__sync_fetch_and_add(&h->slots[slot], 1);
}

static __always_inline void zchan_wait_started(const struct zchan_tp_wait_begin *ctx)
{
	struct zchan_wait_start s = {
		.ts = bpf_ktime_get_ns(),
		.id = ctx->id,
		.role = ctx->role,
		.kind = ctx->kind,
	};
	__u64 cookie = ctx->cookie;

	bpf_map_update_elem(&waits, &cookie, &s, BPF_ANY);
}

/* The duration of the wait @ctx ends in ns, 0 if its begin was not seen. */
static __always_inline __u64 zchan_wait_ended(const struct zchan_tp_wait_end *ctx,
					      __u64 now)
{
	__u64 cookie = ctx->cookie;
	struct zchan_wait_start *s;
	__u64 delta;

	s = bpf_map_lookup_elem(&waits, &cookie);
	if (!s)
		return 0;
	delta = now > s->ts ? now - s->ts : 1;
	bpf_map_delete_elem(&waits, &cookie);
	return delta;
}

#endif /* ZCHAN_WAIT_BPF_H */
