// SPDX-License-Identifier: MIT OR LGPL-2.1
/*
 * Message contents.  Word i of message seq is seq * GOLDEN + i: cheap to
 * produce, different in every message, and the first word doubles as the
 * sequence stamp the handoff and pingpong modes check.  The checksum is the
 * 64-bit sum of the little-endian words (a trailing partial word is zero
 * padded): it catches any single corrupted byte, vectorises well, and costs
 * the reader the same for every method.
 */
#include <string.h>

#include "bench.h"

#define GOLDEN 0x9e3779b97f4a7c15ULL

uint64_t msg_fill(void *buf, size_t len, uint64_t seq)
{
	uint64_t base = seq * GOLDEN, sum = 0, *w = buf;
	size_t i, words = len / 8;

	for (i = 0; i < words; i++) {
		w[i] = base + i;
		sum += base + i;
	}
	if (len % 8) {
		uint64_t tail = base + words, t = 0;

		memcpy((char *)buf + words * 8, &tail, len % 8);
		memcpy(&t, &tail, len % 8);
		sum += t;
	}
	return sum;
}

uint64_t msg_sum(const void *buf, size_t len)
{
	const uint64_t *w = buf;
	uint64_t sum = 0;
	size_t i, words = len / 8;

	for (i = 0; i < words; i++)
		sum += w[i];
	if (len % 8) {
		uint64_t t = 0;

		memcpy(&t, (const char *)buf + words * 8, len % 8);
		sum += t;
	}
	return sum;
}

void msg_stamp(void *buf, uint64_t seq)
{
	uint64_t v = seq * GOLDEN;

	memcpy(buf, &v, sizeof(v));
}

uint64_t msg_stamp_read(const void *buf)
{
	uint64_t v;

	memcpy(&v, buf, sizeof(v));
	return v * 0xf1de83e19937733dULL;	/* GOLDEN^-1 mod 2^64 */
}
