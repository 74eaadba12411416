/* SPDX-License-Identifier: MIT OR LGPL-2.1 */
/*
 * A hostile producer, for the tests of what a consumer does with it: the
 * producer end's own ring mapped writable a second time, to publish what
 * the library never would (descriptors out of the pool, a tail out of
 * range).  Part of the test helper library in tests/common (see
 * zchan_test_utils.h).
 *
 * The kernel backend's ring is mapped from the end's fd at the offset
 * INFO gives (a lane of a fan-in channel: its own); the memfd backend's
 * is found in /proc/self/maps, the writable shared mapping of a
 * "zchan-prod" memfd at offset 0: the calling process must have one
 * producer end only (a forked child that received its end over a socket
 * from a parent holding none has exactly that).
 */
#ifndef ZCHAN_TEST_FORGE_H
#define ZCHAN_TEST_FORGE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include <zchan.h>

#include "zchan_test_utils.h"

struct zc_forger {
	struct zchan_layout l;
	void *ring;		/* mapped by us (kernel) or the library's */
	bool own_map;
};

/* Map producer @p's ring (of @backend) for forging: 0, or -1. */
static inline int zc_forger_map(struct zc_forger *f, struct zchan *p,
				unsigned int backend)
{
	struct zchan_attr a;
	char line[512];
	FILE *maps;

	memset(f, 0, sizeof(*f));
	if (backend == ZCHAN_BACKEND_KERNEL) {
		struct zchan_info info;
		int fd = zchan_fd(p);

		if (_zc_info(fd, &info))
			return -1;
		f->l = info.layout;
		f->ring = mmap(NULL, f->l.prod_ring_size, PROT_READ | PROT_WRITE,
			       MAP_SHARED, fd, (off_t)f->l.prod_ring_off);
		if (f->ring == MAP_FAILED)
			return -1;
		f->own_map = true;
		return 0;
	}
	if (zchan_get_attr(p, &a))
		return -1;
	f->l.ring_entries = a.ring_entries;
	f->l.pool_size = a.pool_size;
	f->l.max_msg = a.max_msg;
	zchan_layout_set_words(&f->l);
	maps = fopen("/proc/self/maps", "r");
	if (!maps)
		return -1;
	while (fgets(line, sizeof(line), maps)) {
		unsigned long lo, hi, off;
		char perms[8];

		if (sscanf(line, "%lx-%lx %7s %lx", &lo, &hi, perms, &off) == 4 &&
		    !strcmp(perms, "rw-s") && !off && strstr(line, "zchan-prod"))
			f->ring = (void *)lo;
	}
	fclose(maps);
	return f->ring ? 0 : -1;
}

static inline void zc_forger_unmap(struct zc_forger *f)
{
	if (f->own_map)
		munmap(f->ring, f->l.prod_ring_size);
}

/* Publish {@off, @len, @flags} as the next message, as a raw producer would. */
static inline void zc_forge_publish(struct zc_forger *f, uint64_t off,
				    uint32_t len, uint32_t flags)
{
	uint32_t *tail = zc_word(f->ring, f->l.prod_tail);
	uint32_t t = __atomic_load_n(tail, __ATOMIC_RELAXED);
	struct zchan_desc *d = zc_desc(f->ring, &f->l, t);

	d->off = off;
	d->len = len;
	d->flags = flags;
	__atomic_store_n(tail, t + 1, __ATOMIC_RELEASE);
}

/* The newest descriptor published, to rewrite in place. */
static inline struct zchan_desc *zc_forge_last(struct zc_forger *f)
{
	uint32_t t = *zc_word(f->ring, f->l.prod_tail);

	return zc_desc(f->ring, &f->l, t - 1);
}

/* Move the tail beyond anything the ring can hold. */
static inline void zc_forge_tail(struct zc_forger *f)
{
	uint32_t *tail = zc_word(f->ring, f->l.prod_tail);

	__atomic_store_n(tail, __atomic_load_n(tail, __ATOMIC_RELAXED) +
			 f->l.ring_entries + 1, __ATOMIC_RELEASE);
}

#endif /* ZCHAN_TEST_FORGE_H */
