/* SPDX-License-Identifier: MIT OR LGPL-2.1 */
/*
 * Log-linear latency histogram in the manner of HdrHistogram: values below
 * 2 * HIST_SUB are exact, above that each power of two is split into
 * HIST_SUB linear sub-buckets, so any recorded value is known to within
 * 1/HIST_SUB (1.6%) at a fixed cost of 30 KiB and O(1) per record.
 */
#ifndef ZCHAN_BENCH_HIST_H
#define ZCHAN_BENCH_HIST_H

#include <stdint.h>

#define HIST_SUB_BITS	6
#define HIST_SUB	(1u << HIST_SUB_BITS)
#define HIST_BUCKETS	(2 * HIST_SUB + (63 - HIST_SUB_BITS) * HIST_SUB)

struct hist {
	uint64_t count;
	uint64_t min, max;
	uint64_t sum;
	uint64_t bucket[HIST_BUCKETS];
};

struct hist_summary {
	uint64_t count;
	uint64_t min, max;
	double mean;
	uint64_t p50, p90, p99, p999;
};

void hist_init(struct hist *h);
void hist_record(struct hist *h, uint64_t v);
void hist_merge(struct hist *into, const struct hist *h);
uint64_t hist_percentile(const struct hist *h, double pct);
void hist_summarize(const struct hist *h, struct hist_summary *s);

#endif
