// SPDX-License-Identifier: GPL-2.0
/*
 * zchan-lat: wait durations (arm to wake) per role, for all channels or
 * per channel, and the time from a kick of the consumer (right after the
 * producer's commit) to the end of the consumer's ZCHAN_IOC_WAIT.
 */
#include "zchan_wait.bpf.h"
#include "zchan_lat.h"

const volatile __s32 targ_tgid;		/* -p: only this process's waits */
const volatile __u8 filter_ids;		/* -c: only the channels in ids */
const volatile __u8 per_channel;	/* -C: a histogram per channel */

/* Channel ids -c selected (user space refreshes it from chanstat). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, ZCHAN_LAT_MAX_IDS);
	__type(key, __u64);
	__type(value, __u8);
} ids SEC(".maps");

/* When each channel's consumer was last kicked. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, ZCHAN_MAX_HISTS);
	__type(key, __u64);
	__type(value, __u64);
} kicks SEC(".maps");

static __always_inline int wanted(__u64 id)
{
	return !filter_ids || bpf_map_lookup_elem(&ids, &id);
}

SEC("tracepoint/zchan/zchan_wait_begin")
int zchan_lat_wait_begin(struct zchan_tp_wait_begin *ctx)
{
	if (targ_tgid && (__s32)(bpf_get_current_pid_tgid() >> 32) != targ_tgid)
		return 0;
	if (wanted(ctx->id))
		zchan_wait_started(ctx);
	return 0;
}

SEC("tracepoint/zchan/zchan_wait_end")
int zchan_lat_wait_end(struct zchan_tp_wait_end *ctx)
{
	__u64 now = bpf_ktime_get_ns();
	__u64 ns = zchan_wait_ended(ctx, now);
	__u64 id = ctx->id, key_id = per_channel ? ctx->id : 0;
	__u64 *kicked;

	if (!ns)
		return 0;
	zchan_hist_add(key_id, ctx->role, ns / 1000);

	/* A uring wait ends when the kicker completes it: only the ioctl
	 * waiter's own wake-up measures the consumer's wake latency.
	 */
	if (ctx->role != ZCHAN_TP_CONSUMER || ctx->kind != ZCHAN_TP_WAIT_IOCTL ||
	    ctx->reason != ZCHAN_TP_END_DATA)
		return 0;
	kicked = bpf_map_lookup_elem(&kicks, &id);
	if (kicked && now > *kicked)
		zchan_hist_add(key_id, ZCHAN_TP_WAKE, (now - *kicked) / 1000);
	bpf_map_delete_elem(&kicks, &id);
	return 0;
}

SEC("tracepoint/zchan/zchan_kick")
int zchan_lat_kick(struct zchan_tp_kick *ctx)
{
	__u64 id = ctx->id, now;

	if (ctx->role != ZCHAN_TP_CONSUMER || !ctx->armed || !wanted(id))
		return 0;
	now = bpf_ktime_get_ns();
	bpf_map_update_elem(&kicks, &id, &now, BPF_ANY);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
