// SPDX-License-Identifier: GPL-2.0
/*
 * zchan-top: wait durations per channel (both roles in one histogram),
 * read and cleared by user space at every refresh.
 */
#include "zchan_wait.bpf.h"
#include "zchan_top.h"

SEC("tracepoint/zchan/zchan_wait_begin")
int zchan_top_wait_begin(struct zchan_tp_wait_begin *ctx)
{
	zchan_wait_started(ctx);
	return 0;
}

SEC("tracepoint/zchan/zchan_wait_end")
int zchan_top_wait_end(struct zchan_tp_wait_end *ctx)
{
	__u64 ns = zchan_wait_ended(ctx, bpf_ktime_get_ns());

	if (ns)
		zchan_hist_add(ctx->id, ZCHAN_TOP_BOTH_ROLES, ns / 1000);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
