/* SPDX-License-Identifier: MIT OR LGPL-2.1 */
/*
 * Payloads every test generates and checks the same way: message @seq of
 * stream @stream is a function of the two numbers and nothing else, so a
 * consumer in another process checks what it got without being told what
 * was sent, and a wrong message is told apart from a corrupted one.
 *
 * Byte i of payload (@stream, @seq):
 *   i < 8   byte i of @seq, little-endian (the payload says which it is);
 *   i >= 8  byte i % 8 of zc_mix64(key + i / 8), key from @stream and @seq.
 *
 * Every byte depends on its offset alone, so a range anywhere in the
 * payload (a page of a SEND_PAGES buffer, the tail of a message) is
 * filled and checked on its own with the _at() forms.  Lengths come from
 * zc_payload_len(), or from the test's own rule where the length is what
 * the test is about; zc_payload_check() says what is wrong, for a log.
 *
 * Also here: splitmix64 (zc_rand(), zc_below()) for seeded test choices,
 * and FNV-1a (zc_csum()).  No dependency beyond libc.
 */
#ifndef ZCHAN_TEST_PAYLOAD_H
#define ZCHAN_TEST_PAYLOAD_H

#include <endian.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* MurmurHash3's finaliser: every input bit moves every output bit. */
static inline uint64_t zc_mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

/* splitmix64: seeded, reproducible. */
static inline uint64_t zc_rand(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* A value in [0, n). */
static inline uint64_t zc_below(uint64_t *s, uint64_t n)
{
	return n ? zc_rand(s) % n : 0;
}

/* FNV-1a, to compare payloads by checksum as well as by content. */
static inline uint32_t zc_csum(const void *p, size_t len)
{
	const uint8_t *b = p;
	uint32_t h = 2166136261u;

	while (len--)
		h = (h ^ *b++) * 16777619u;
	return h;
}

static inline uint64_t __zc_payload_key(uint64_t stream, uint64_t seq)
{
	return zc_mix64(zc_mix64(stream) ^ seq);
}

/*
 * The one generator: bytes @from to @from + @len of payload (@stream,
 * @seq), written to @out, or compared with @in (true when equal).
 */
static inline bool __zc_payload(uint8_t *out, const uint8_t *in, size_t len,
				size_t from, uint64_t stream, uint64_t seq)
{
	uint64_t key = __zc_payload_key(stream, seq);
	size_t i = 0;

	while (i < len) {
		size_t pos = from + i, skip = pos % 8, n = 8 - skip;
		uint64_t k = pos / 8;
		uint64_t w = htole64(k ? zc_mix64(key + k) : seq);
		const uint8_t *bytes = (const uint8_t *)&w + skip;

		if (n > len - i)
			n = len - i;
		if (out)
			memcpy(out + i, bytes, n);
		else if (memcmp(in + i, bytes, n))
			return false;
		i += n;
	}
	return true;
}

/* @buf = bytes @from to @from + @len of payload (@stream, @seq). */
static inline void zc_payload_fill_at(void *buf, size_t len, size_t from,
				      uint64_t stream, uint64_t seq)
{
	__zc_payload(buf, NULL, len, from, stream, seq);
}

/* Does @buf hold bytes @from to @from + @len of payload (@stream, @seq)? */
static inline bool zc_payload_ok_at(const void *buf, size_t len, size_t from,
				    uint64_t stream, uint64_t seq)
{
	return __zc_payload(NULL, buf, len, from, stream, seq);
}

/* @buf = the first @len bytes of payload (@stream, @seq). */
static inline void zc_payload_fill(void *buf, size_t len, uint64_t stream,
				   uint64_t seq)
{
	zc_payload_fill_at(buf, len, 0, stream, seq);
}

/* Does @buf hold the first @len bytes of payload (@stream, @seq)? */
static inline bool zc_payload_ok(const void *buf, size_t len, uint64_t stream,
				 uint64_t seq)
{
	return zc_payload_ok_at(buf, len, 0, stream, seq);
}

/* Which message @buf says it is (as far as its @len bytes tell). */
static inline uint64_t zc_payload_seq(const void *buf, size_t len)
{
	uint64_t seq = 0;

	memcpy(&seq, buf, len < 8 ? len : 8);
	return le64toh(seq);
}

/*
 * 0 if @buf (@len bytes) is the whole of message @seq of @stream, which is
 * @want_len bytes long; else -EBADMSG, and what is wrong in @why.
 */
static inline int zc_payload_check(const void *buf, size_t len,
				   size_t want_len, uint64_t stream,
				   uint64_t seq, char *why, size_t wlen)
{
	unsigned long long got = zc_payload_seq(buf, len);
	size_t i;

	if (len >= 8 && got != seq) {
		snprintf(why, wlen, "expected message %llu, got %llu",
			 (unsigned long long)seq, got);
		return -EBADMSG;
	}
	if (len != want_len) {
		snprintf(why, wlen, "message %llu: %zu bytes, not %zu",
			 (unsigned long long)seq, len, want_len);
		return -EBADMSG;
	}
	for (i = 0; i < len; i++) {
		if (!zc_payload_ok_at((const uint8_t *)buf + i, 1, i, stream,
				      seq)) {
			snprintf(why, wlen, "message %llu: byte %zu of %zu wrong",
				 (unsigned long long)seq, i, len);
			return -EBADMSG;
		}
	}
	return 0;
}

/* A length in [@min, @max] for message @seq of @stream. */
static inline size_t zc_payload_len(uint64_t stream, uint64_t seq,
				    size_t min, size_t max)
{
	return min + zc_mix64(__zc_payload_key(stream, seq) ^ 0x5a) %
		     (max - min + 1);
}

#endif /* ZCHAN_TEST_PAYLOAD_H */
