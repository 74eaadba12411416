// SPDX-License-Identifier: MIT OR LGPL-2.1
/*
 * The handle of one end: allocation, the checks on a layout that may come
 * from a hostile peer, and the mapping of the three shared regions.  The
 * same for both backends; kernel.c and memfd.c say where the fds come from.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "zchan_int.h"

/* A word at @off must lie inside a region of @size bytes. */
static bool word_ok(uint32_t off, uint64_t size, uint32_t align)
{
	return !(off % align) && (uint64_t)off + sizeof(uint32_t) <= size;
}

/* The layout may come from a hostile peer (memfd): check all of it. */
int __zchan_validate_layout(const struct zchan_layout *l)
{
	uint64_t ps = __zchan_page_size();

	if (!__zchan_is_pow2(l->ring_entries) ||
	    l->ring_entries > ZCHAN_RING_ENTRIES_MAX)
		return -EPROTO;
	if (!l->pool_size || l->pool_size % ps || l->pool_size > ZCHAN_POOL_SIZE_MAX)
		return -EPROTO;
	if (l->max_msg > l->pool_size / 2 || l->max_msg > ZCHAN_MSG_MAX)
		return -EPROTO;
	if (!l->prod_ring_size || l->prod_ring_size % ps ||
	    l->prod_ring_size > ZCHAN_POOL_SIZE_MAX ||
	    !l->cons_ring_size || l->cons_ring_size % ps ||
	    l->cons_ring_size > ZCHAN_POOL_SIZE_MAX)
		return -EPROTO;
	if (l->prod_ring_off % ps || l->cons_ring_off % ps || l->pool_off % ps)
		return -EPROTO;
	if (!word_ok(l->prod_tail, l->prod_ring_size, 4) ||
	    !word_ok(l->prod_head_seen, l->prod_ring_size, 4) ||
	    !word_ok(l->prod_need_wakeup, l->prod_ring_size, 4) ||
	    !word_ok(l->prod_closed, l->prod_ring_size, 4) ||
	    !word_ok(l->prod_alloc, l->prod_ring_size, 4) ||
	    !word_ok(l->cons_head, l->cons_ring_size, 4) ||
	    !word_ok(l->cons_read, l->cons_ring_size, 4) ||
	    !word_ok(l->cons_need_wakeup, l->cons_ring_size, 4) ||
	    !word_ok(l->cons_closed, l->cons_ring_size, 4))
		return -EPROTO;
	if (l->prod_descs % 8 ||
	    (uint64_t)l->prod_descs + (uint64_t)l->ring_entries *
	    sizeof(struct zchan_desc) > l->prod_ring_size)
		return -EPROTO;
	return 0;
}

struct zchan *__zchan_alloc(int role, const struct zchan_ops *ops)
{
	struct zchan *z;

	z = calloc(1, sizeof(*z));
	if (!z)
		return NULL;
	__zchan_hold_init(z);
	z->role = role;
	z->ops = ops;
	z->fd = -1;
	ops->init(z);
	z->prod_map = z->cons_map = MAP_FAILED;
	z->pool = MAP_FAILED;
	return z;
}

void __zchan_free(struct zchan *z)
{
	__zchan_uring_exit(z, __zchan_held_here(z));
	if (z->prod_map != MAP_FAILED)
		__sys_munmap(z->prod_map, z->layout.prod_ring_size);
	if (z->cons_map != MAP_FAILED)
		__sys_munmap(z->cons_map, z->layout.cons_ring_size);
	if (z->pool != MAP_FAILED)
		__sys_munmap(z->pool, z->layout.pool_size);
	z->ops->free(z);
	__zchan_close_fd(&z->fd);
	free(z->slots);
	free(z);
}

/* The mapping, or ERR_PTR(-error). */
static void *map_region(int fd, uint64_t off, uint64_t len, bool writable)
{
	int prot = PROT_READ | (writable ? PROT_WRITE : 0);

	return __sys_mmap(NULL, len, prot, MAP_SHARED, fd, (off_t)off);
}

/*
 * sysconf(_SC_NPROCESSORS_ONLN) reads /sys (three system calls): once per
 * process, for the spin default; a CPU brought online later is not seen.
 */
static long online_cpus(void)
{
	static long cached;
	long n = __atomic_load_n(&cached, __ATOMIC_RELAXED);

	if (!n) {
		n = sysconf(_SC_NPROCESSORS_ONLN);
		__atomic_store_n(&cached, n, __ATOMIC_RELAXED);
	}
	return n;
}

/*
 * Map the three regions (each end writes only its own ring; the pool is
 * written only by the producer), point at the words, set up the private
 * state; the private io_uring is the first sleep's to make.
 */
int __zchan_map(struct zchan *z, int prod_fd, int cons_fd, int pool_fd,
	      const struct zchan_layout *l)
{
	bool prod = z->role == ZCHAN_PRODUCER;
	unsigned char *pr, *cr;
	const char *wait;
	void *m;
	int ret;

	ret = __zchan_validate_layout(l);
	if (ret)
		return ret;
	z->layout = *l;
	m = map_region(prod_fd, l->prod_ring_off, l->prod_ring_size, prod);
	if (IS_ERR(m))
		return (int)PTR_ERR(m);
	z->prod_map = m;
	m = map_region(cons_fd, l->cons_ring_off, l->cons_ring_size, !prod);
	if (IS_ERR(m))
		return (int)PTR_ERR(m);
	z->cons_map = m;
	m = map_region(pool_fd, l->pool_off, l->pool_size, prod);
	if (IS_ERR(m))
		return (int)PTR_ERR(m);
	z->pool = m;

	pr = z->prod_map;
	cr = z->cons_map;
	z->tail = (uint32_t *)(pr + l->prod_tail);
	z->head_seen = (uint32_t *)(pr + l->prod_head_seen);
	z->prod_need_wakeup = (uint32_t *)(pr + l->prod_need_wakeup);
	z->prod_closed = (uint32_t *)(pr + l->prod_closed);
	z->descs = (struct zchan_desc *)(pr + l->prod_descs);
	z->head = (uint32_t *)(cr + l->cons_head);
	z->read = (uint32_t *)(cr + l->cons_read);
	z->cons_need_wakeup = (uint32_t *)(cr + l->cons_need_wakeup);
	z->cons_closed = (uint32_t *)(cr + l->cons_closed);
	if (prod) {
		z->own_need_wakeup = z->prod_need_wakeup;
		z->peer_need_wakeup = z->cons_need_wakeup;
		z->own_closed = z->prod_closed;
		z->peer_closed = z->cons_closed;
	} else {
		z->own_need_wakeup = z->cons_need_wakeup;
		z->peer_need_wakeup = z->prod_need_wakeup;
		z->own_closed = z->cons_closed;
		z->peer_closed = z->prod_closed;
	}
	z->pool_size = l->pool_size;
	z->entries = l->ring_entries;
	z->mask = l->ring_entries - 1;
	z->max_msg = l->max_msg;

	z->slots = calloc(z->entries, sizeof(*z->slots));
	if (!z->slots)
		return -ENOMEM;
	if (prod) {
		/* a fresh channel: every index equal */
		z->p_tail = z->p_alloc = z->p_seen = load_acquire(z->tail);
		z->p_alloc_pub = z->p_tail;
	} else {
		/* start where a previous consumer released everything */
		z->c_head = z->c_read = load_acquire(z->head);
		store_release(z->read, z->c_read);
	}

	z->spin_ns = online_cpus() > 1 ? ZCHAN_SPIN_NS : 0;
	wait = getenv("ZCHAN_SPIN_NS");
	if (wait && *wait)
		z->spin_ns = (uint32_t)strtoul(wait, NULL, 10);
	__zchan_uring_init(z);
	return 0;
}

