// SPDX-License-Identifier: MIT OR LGPL-2.1
/*
 * libzchan: handing over the producer's own pages (kernel backend,
 * ZCHAN_FEAT_SEND_PAGES).  The producer's side pins its buffer through the
 * module and ring.c's zchan_send_pages() publishes a ZCHAN_DESC_PAGES
 * descriptor in an ordinary slot;
 * the consumer's side maps that transfer read-only when it takes the
 * message and unmaps it when it releases it, which completes the transfer.
 * See zchan_send_pages(3) and Documentation/module.rst.  Below ring.c: it
 * never calls ring.c.
 */
#include <string.h>
#include <unistd.h>

#include "zchan_int.h"

/* Only the module sets layout features (memfd's are 0, checked at attach). */
static bool pages_supported(const struct zchan *z)
{
	return z->layout.features & ZCHAN_FEAT_SEND_PAGES;
}

static bool page_aligned(uint64_t v)
{
	return !(v & ((uint64_t)sysconf(_SC_PAGESIZE) - 1));
}

/* A ZCHAN_DESC_PAGES descriptor as an honest producer writes it. */
bool __zchan_pages_desc_ok(const struct zchan *z, const struct zchan_desc *d)
{
	return pages_supported(z) && d->flags == ZCHAN_DESC_PAGES &&
	       d->off >= ZCHAN_OFF_PAGES &&
	       !((d->off - ZCHAN_OFF_PAGES) % ZCHAN_PAGES_MAX) &&
	       d->len && d->len <= ZCHAN_PAGES_MAX && page_aligned(d->len);
}

/*
 * Map the transfer @d names, before the message is taken: on failure it
 * stays in the ring.  @d->off becomes the mapping's offset from the pool
 * (__zchan_payload()).  The kernel checks the offset and length again.
 */
int __zchan_pages_map(struct zchan *z, struct zchan_desc *d)
{
	void *m;

	if (!(d->flags & ZCHAN_DESC_PAGES))
		return 0;
	m = __sys_mmap(NULL, d->len, PROT_READ, MAP_SHARED, z->fd,
		       (off_t)d->off);
	if (IS_ERR(m)) {
		/* the producer named no transfer of this length */
		if (PTR_ERR(m) != -EINVAL && PTR_ERR(m) != -EACCES)
			return (int)PTR_ERR(m);
		/* sticky, as ring.c's fail_sticky() */
		if (!z->err)
			z->err = -EPROTO;
		return z->err;
	}
	d->off = (uintptr_t)m - (uintptr_t)z->pool;
	return 0;
}

/* zchan_recv() of a transfer: a copy, and the transfer completes at once. */
int __zchan_pages_copy(struct zchan *z, struct zchan_desc *d, void *buf)
{
	int ret = __zchan_pages_map(z, d);

	if (ret)
		return ret;
	memcpy(buf, __zchan_payload(z, d->off), d->len);
	__sys_munmap(__zchan_payload(z, d->off), d->len);
	d->flags = 0;	/* taken as an ordinary message: nothing to unmap */
	return 0;
}

void __zchan_pages_unmap_slot(struct zchan *z, struct zchan_slot *s)
{
	__sys_munmap(__zchan_payload(z, s->off), s->len);
	s->pages = 0;
}

/* The consumer closes: unmap what it still borrows. */
void __zchan_pages_close(struct zchan *z)
{
	uint32_t i;

	if (z->role != ZCHAN_CONSUMER || !z->slots)
		return;
	for (i = z->c_head; i != z->c_read; i++) {
		struct zchan_slot *s = &z->slots[i & z->mask];

		if (s->pages)
			__zchan_pages_unmap_slot(z, s);
	}
}

/* zchan_send_pages()'s checks: 0, -EOPNOTSUPP or -EINVAL. */
int __zchan_pages_check(const struct zchan *p, const void *buf, size_t len)
{
	if (!pages_supported(p))
		return -EOPNOTSUPP;
	if (!buf || !len || len > ZCHAN_PAGES_MAX ||
	    !page_aligned((uintptr_t)buf) || !page_aligned(len))
		return -EINVAL;
	return 0;
}

/* Pin [@buf, @buf + @len) as a transfer: its mmap offset in @off. */
int __zchan_pages_pin(struct zchan *p, const void *buf, size_t len,
		    uint64_t cookie, uint64_t *off)
{
	struct zchan_send_pages sp = {
		.addr = (uintptr_t)buf, .len = len, .cookie = cookie,
	};
	int ret = __sys_ioctl(p->fd, ZCHAN_IOC_SEND_PAGES, &sp);

	if (ret < 0)
		return ret;
	*off = sp.offset;
	return 0;
}

ZCHAN_EXPORT
int zchan_reap(struct zchan *p, uint64_t *cookies, unsigned int n,
	       unsigned int flags)
{
	struct zchan_completion c[64];
	unsigned int got = 0, i;

	if (!p || p->role != ZCHAN_PRODUCER || flags || (!cookies && n) ||
	    n > INT32_MAX)
		return -EINVAL;
	if (!pages_supported(p))
		return -EOPNOTSUPP;
	while (got < n) {
		struct zchan_reap r = {
			.addr = (uintptr_t)c,
			.nr = n - got < 64 ? n - got : 64,
		};
		int ret = __sys_ioctl(p->fd, ZCHAN_IOC_REAP, &r);

		if (ret < 0)
			return got ? (int)got : ret;
		for (i = 0; i < (unsigned int)ret; i++)
			cookies[got + i] = c[i].cookie;
		got += ret;
		if ((unsigned int)ret < r.nr)
			break;
	}
	return (int)got;
}
