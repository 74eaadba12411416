// SPDX-License-Identifier: MIT OR LGPL-2.1
#include <string.h>

#include "hist.h"

static unsigned int hist_index(uint64_t v)
{
	unsigned int e, shift;

	if (v < 2 * HIST_SUB)
		return v;
	e = 63 - __builtin_clzll(v);		/* e > HIST_SUB_BITS */
	shift = e - HIST_SUB_BITS;
	return 2 * HIST_SUB + (e - HIST_SUB_BITS - 1) * HIST_SUB +
	       (unsigned int)((v >> shift) - HIST_SUB);
}

/* The highest value that lands in bucket idx. */
static uint64_t hist_value(unsigned int idx)
{
	unsigned int k, e;
	uint64_t sub;

	if (idx < 2 * HIST_SUB)
		return idx;
	k = idx - 2 * HIST_SUB;
	e = k / HIST_SUB + HIST_SUB_BITS + 1;
	sub = k % HIST_SUB + HIST_SUB;
	return (sub << (e - HIST_SUB_BITS)) +
	       ((1ULL << (e - HIST_SUB_BITS)) - 1);
}

void hist_init(struct hist *h)
{
	memset(h, 0, sizeof(*h));
	h->min = UINT64_MAX;
}

void hist_record(struct hist *h, uint64_t v)
{
	h->bucket[hist_index(v)]++;
	h->count++;
	h->sum += v;
	if (v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
}

/* @into counts what @h counted too: several pairs' round trips as one. */
void hist_merge(struct hist *into, const struct hist *h)
{
	unsigned int i;

	for (i = 0; i < HIST_BUCKETS; i++)
		into->bucket[i] += h->bucket[i];
	into->count += h->count;
	into->sum += h->sum;
	if (h->min < into->min)
		into->min = h->min;
	if (h->max > into->max)
		into->max = h->max;
}

uint64_t hist_percentile(const struct hist *h, double pct)
{
	uint64_t want, seen = 0;
	unsigned int i;

	if (!h->count)
		return 0;
	want = (uint64_t)(pct / 100.0 * (double)h->count + 0.999999);
	if (want < 1)
		want = 1;
	for (i = 0; i < HIST_BUCKETS; i++) {
		seen += h->bucket[i];
		if (seen >= want) {
			uint64_t v = hist_value(i);

			/* never report past what was actually seen */
			return v > h->max ? h->max : v < h->min ? h->min : v;
		}
	}
	return h->max;
}

void hist_summarize(const struct hist *h, struct hist_summary *s)
{
	memset(s, 0, sizeof(*s));
	s->count = h->count;
	if (!h->count)
		return;
	s->min = h->min;
	s->max = h->max;
	s->mean = (double)h->sum / (double)h->count;
	s->p50 = hist_percentile(h, 50.0);
	s->p90 = hist_percentile(h, 90.0);
	s->p99 = hist_percentile(h, 99.0);
	s->p999 = hist_percentile(h, 99.9);
}
