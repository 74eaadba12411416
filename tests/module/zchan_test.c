// SPDX-License-Identifier: GPL-2.0
/*
 * zchan.ko selftests: every UAPI error path, the mappings, the wait and
 * kick paths (ioctl, poll, io_uring), peer death, limits and module
 * lifetime.  Runs as root in the test guest with zchan.ko loaded.
 *
 * The streaming tests speak the ring protocol through the raw UAPI with a
 * minimal producer and consumer written here, not through libzchan.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stddef.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include <liburing.h>
#include <linux/zchan.h>

#include "kselftest_harness.h"
#include "../common/zchan_test_utils.h"

static long page_size;

/* Before any test: the page size, and debugfs for the introspection tests. */
static void __attribute__((constructor)) zc_test_init(void)
{
	page_size = sysconf(_SC_PAGESIZE);
	zc_debugfs_ready();
}

/* A name unique to this test process. */
static void zc_name(char *buf, const char *tag)
{
	snprintf(buf, ZCHAN_NAME_MAX, "zt-%s-%d", tag, getpid());
}

static short zc_poll(int fd, short events)
{
	struct pollfd p = { .fd = fd, .events = events };

	if (poll(&p, 1, 0) < 0)
		return -1;
	return p.revents;
}

/* ---------------------------------------------------------------------
 * A minimal ring protocol user, reaching every shared word through the
 * layout's offsets as libzchan does (see <linux/zchan.h>).
 */
struct zc_end {
	int fd;
	bool producer;
	struct zchan_layout l;
	void *prod;		/* producer ring mapping */
	void *cons;		/* consumer ring mapping */
	uint8_t *pool;
	/* producer's private accounting */
	uint64_t *slot_end;	/* pool position after each slot's message */
	uint64_t pool_pos;	/* next free byte, free-running */
	uint64_t pool_free;	/* bytes below this position are reclaimed */
	uint32_t tail, head_seen;
	/* consumer */
	uint32_t read;
};

/* Shared words of end @e: PROD(e, tail), CONS(e, need_wakeup)... */
#define PROD(e, word)	ZC_PROD_WORD((e)->prod, &(e)->l, word)
#define CONS(e, word)	ZC_CONS_WORD((e)->cons, &(e)->l, word)

static int zc_map(struct zc_end *e)
{
	int rw = PROT_READ | PROT_WRITE;

	e->prod = mmap(NULL, e->l.prod_ring_size,
		       e->producer ? rw : PROT_READ, MAP_SHARED, e->fd,
		       e->l.prod_ring_off);
	e->cons = mmap(NULL, e->l.cons_ring_size,
		       e->producer ? PROT_READ : rw, MAP_SHARED, e->fd,
		       e->l.cons_ring_off);
	e->pool = mmap(NULL, e->l.pool_size, e->producer ? rw : PROT_READ,
		       MAP_SHARED, e->fd, e->l.pool_off);
	if (e->prod == MAP_FAILED || e->cons == MAP_FAILED ||
	    e->pool == MAP_FAILED)
		return -errno;
	if (e->producer) {
		e->slot_end = calloc(e->l.ring_entries, sizeof(*e->slot_end));
		if (!e->slot_end)
			return -ENOMEM;
	}
	return 0;
}

static void zc_unmap(struct zc_end *e)
{
	if (e->prod && e->prod != MAP_FAILED)
		munmap(e->prod, e->l.prod_ring_size);
	if (e->cons && e->cons != MAP_FAILED)
		munmap(e->cons, e->l.cons_ring_size);
	if (e->pool && e->pool != (void *)MAP_FAILED)
		munmap(e->pool, e->l.pool_size);
	free(e->slot_end);
	e->prod = NULL;
	e->cons = NULL;
	e->pool = NULL;
	e->slot_end = NULL;
}

/* Producer: publish one message, waiting for room; -EPIPE if peer gone. */
static int zc_send(struct zc_end *e, const void *buf, uint32_t len)
{
	uint64_t size = e->l.pool_size, pos, off;
	struct zchan_desc *d;
	__u32 revents;
	int ret;

	for (;;) {
		uint32_t head;

		if (__atomic_load_n(&CONS(e, closed), __ATOMIC_ACQUIRE))
			return -EPIPE;
		head = __atomic_load_n(&CONS(e, head), __ATOMIC_ACQUIRE);
		if ((uint32_t)(head - e->head_seen) >
		    (uint32_t)(e->tail - e->head_seen))
			return -EPROTO;
		while (e->head_seen != head)
			e->pool_free = e->slot_end[e->head_seen++ &
						   (e->l.ring_entries - 1)];
		__atomic_store_n(&PROD(e, head_seen), head, __ATOMIC_RELAXED);

		pos = e->pool_pos;
		off = pos % size;
		if (off + len > size) {
			pos += size - off;
			off = 0;
		}
		if (e->tail - e->head_seen < e->l.ring_entries &&
		    pos + len - e->pool_free <= size)
			break;
		ret = _zc_wait(e->fd, -1, &revents);
		if (ret)
			return ret;
	}
	memcpy(e->pool + off, buf, len);
	d = zc_desc(e->prod, &e->l, e->tail);
	d->off = off;
	d->len = len;
	d->flags = 0;
	e->slot_end[e->tail & (e->l.ring_entries - 1)] = pos + len;
	e->pool_pos = pos + len;
	__atomic_store_n(&PROD(e, tail), ++e->tail, __ATOMIC_RELEASE);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (__atomic_load_n(&CONS(e, need_wakeup), __ATOMIC_RELAXED))
		return _zc_kick(e->fd);
	return 0;
}

/* Consumer: copy out one message (SKIP slots skipped); -EPIPE at the end. */
static int zc_recv(struct zc_end *e, void *buf, uint32_t *len)
{
	struct zchan_desc d;
	uint32_t tail;
	__u32 revents;
	int ret;

	for (;;) {
		tail = __atomic_load_n(&PROD(e, tail), __ATOMIC_ACQUIRE);
		if ((uint32_t)(tail - e->read) > e->l.ring_entries)
			return -EPROTO;
		if (tail != e->read) {
			memcpy(&d, zc_desc(e->prod, &e->l, e->read), sizeof(d));
			if (!(d.flags & ZCHAN_DESC_SKIP))
				break;
			e->read++;
			__atomic_store_n(&CONS(e, read), e->read, __ATOMIC_RELEASE);
			__atomic_store_n(&CONS(e, head), e->read, __ATOMIC_RELEASE);
			continue;
		}
		if (__atomic_load_n(&PROD(e, closed), __ATOMIC_ACQUIRE)) {
			tail = __atomic_load_n(&PROD(e, tail), __ATOMIC_ACQUIRE);
			if (tail == e->read)
				return -EPIPE;
			continue;
		}
		ret = _zc_wait(e->fd, -1, &revents);
		if (ret)
			return ret;
	}
	if (d.len > e->l.max_msg || d.off > e->l.pool_size ||
	    d.len > e->l.pool_size - d.off || d.flags & ~ZCHAN_DESC_SKIP)
		return -EPROTO;
	memcpy(buf, e->pool + d.off, d.len);
	*len = d.len;
	e->read++;
	__atomic_store_n(&CONS(e, read), e->read, __ATOMIC_RELEASE);
	__atomic_store_n(&CONS(e, head), e->read, __ATOMIC_RELEASE);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (__atomic_load_n(&PROD(e, need_wakeup), __ATOMIC_RELAXED))
		return _zc_kick(e->fd);
	return 0;
}

/* Message @i: a length in [1, max] and payload (0, @i). */
static uint32_t zc_msg(uint32_t i, uint32_t max, uint8_t *buf)
{
	uint32_t len = zc_payload_len(0, i, 1, max);

	zc_payload_fill(buf, len, 0, i);
	return len;
}

/* Receive @n messages and check each; returns 0 or a small error code. */
static int zc_recv_check(struct zc_end *e, uint32_t first, uint32_t n)
{
	uint8_t *got = malloc(e->l.max_msg);
	uint32_t i, len;
	int ret = 0;

	for (i = first; i < first + n && !ret; i++) {
		ret = zc_recv(e, got, &len);
		if (ret)
			break;
		if (len != zc_payload_len(0, i, 1, e->l.max_msg) ||
		    !zc_payload_ok(got, len, 0, i))
			ret = -EBADMSG;
	}
	free(got);
	return ret;
}

static int zc_send_n(struct zc_end *e, uint32_t first, uint32_t n)
{
	uint8_t *buf = malloc(e->l.max_msg);
	uint32_t i, len;
	int ret = 0;

	for (i = first; i < first + n && !ret; i++) {
		len = zc_msg(i, e->l.max_msg, buf);
		ret = zc_send(e, buf, len);
	}
	free(buf);
	return ret;
}

/* ---------------------------------------------------------------------
 * Fixture: a named channel with both ends open and mapped.
 */
FIXTURE(chan) {
	char name[ZCHAN_NAME_MAX];
	struct zc_end p, c;
};

FIXTURE_SETUP(chan)
{
	ASSERT_EQ(0, access(ZC_DEV, R_OK | W_OK));
	zc_name(self->name, "fx");
	self->p.producer = true;
	self->p.fd = zc_open();
	ASSERT_LE(0, self->p.fd);
	zc_cmd_create(self->p.fd, self->name, 16 * page_size, 16, 0, 0600,
		      &self->p.l);
	self->c.fd = zc_open();
	ASSERT_LE(0, self->c.fd);
	zc_cmd_attach(self->c.fd, self->name, &self->c.l);
	ASSERT_EQ(0, zc_map(&self->p));
	ASSERT_EQ(0, zc_map(&self->c));
}

FIXTURE_TEARDOWN(chan)
{
	zc_unmap(&self->p);
	zc_unmap(&self->c);
	if (self->p.fd >= 0)
		close(self->p.fd);
	if (self->c.fd >= 0)
		close(self->c.fd);
}

/* ---------------------------------------------------------------------
 * Device and ioctl validation.
 */
TEST(device_mode_0666)
{
	struct stat st;

	ASSERT_EQ(0, stat(ZC_DEV, &st));
	ASSERT_TRUE(S_ISCHR(st.st_mode));
	ASSERT_EQ(0666, st.st_mode & 0777);
}

TEST(unknown_ioctl_enotty)
{
	struct zchan_kick k = { 0 };
	char big[512] = { 0 };
	int fd = zc_open();

	ASSERT_LE(0, fd);
	ASSERT_EQ(-ENOTTY, zc_ioctl(fd, _IOWR('Z', 0x7f, struct zchan_kick), &k));
	/* A known number with another size is another command. */
	ASSERT_EQ(-ENOTTY, zc_ioctl(fd, _IOWR('Z', 0x01, char[8]), big));
	ASSERT_EQ(-ENOTTY, zc_ioctl(fd, _IOWR('Y', 0x01, struct zchan_create), big));
	close(fd);
}

/*
 * compat_ptr_ioctl() hands 32-bit callers' structures over unchanged: every
 * __u64 must sit at an 8-byte offset and every size be a multiple of 8, so
 * that i386 (4-byte aligned __u64) lays them out as x86_64 does.
 */
#define ZC_ALIGNED(type, field) (offsetof(type, field) % 8 == 0)
_Static_assert(sizeof(struct zchan_layout) % 8 == 0 &&
	       ZC_ALIGNED(struct zchan_layout, prod_ring_off) &&
	       ZC_ALIGNED(struct zchan_layout, pool_off) &&
	       ZC_ALIGNED(struct zchan_layout, reserved), "zchan_layout");
_Static_assert(sizeof(struct zchan_create) % 8 == 0 &&
	       ZC_ALIGNED(struct zchan_create, layout) &&
	       ZC_ALIGNED(struct zchan_create, reserved), "zchan_create");
_Static_assert(sizeof(struct zchan_attach) % 8 == 0 &&
	       ZC_ALIGNED(struct zchan_attach, layout) &&
	       ZC_ALIGNED(struct zchan_attach, reserved), "zchan_attach");
_Static_assert(sizeof(struct zchan_info) % 8 == 0 &&
	       ZC_ALIGNED(struct zchan_info, layout) &&
	       ZC_ALIGNED(struct zchan_info, published) &&
	       ZC_ALIGNED(struct zchan_info, reserved), "zchan_info");
_Static_assert(sizeof(struct zchan_peer_fd) % 8 == 0 &&
	       sizeof(struct zchan_kick) % 8 == 0 &&
	       sizeof(struct zchan_wait) % 8 == 0 &&
	       sizeof(struct zchan_desc) == 16 &&
	       sizeof(struct zchan_uring_cmd) == 16 &&
	       sizeof(struct zchan_use) % 8 == 0, "small structs");
/* The 1.0 sizes: new fields came out of reserved space, never appended. */
_Static_assert(sizeof(struct zchan_layout) == 128 &&
	       sizeof(struct zchan_create) == 248 &&
	       sizeof(struct zchan_attach) == 232 &&
	       sizeof(struct zchan_info) == 272 &&
	       sizeof(struct zchan_peer_fd) == 24 &&
	       sizeof(struct zchan_kick) == 24 &&
	       sizeof(struct zchan_wait) == 32 &&
	       sizeof(struct zchan_use) == 24 &&
	       sizeof(struct zchan_prod_ring) == 192 &&
	       sizeof(struct zchan_cons_ring) == 192, "UAPI sizes");

TEST(create_bad_args)
{
	char name[ZCHAN_NAME_MAX];
	struct zchan_create c;
	int fd = zc_open();

	ASSERT_LE(0, fd);
	zc_name(name, "bad");

#define RESET_CREATE() do { memset(&c, 0, sizeof(c)); c.mode = 0600; } while (0)
	RESET_CREATE();
	c.flags = ZCHAN_CREATE_BROADCAST << 1;	/* the first unknown */
	zc_err_ioctl(EINVAL, fd, ZCHAN_IOC_CREATE, &c);
	RESET_CREATE();
	c.flags = 1U << 31;
	zc_err_ioctl(EINVAL, fd, ZCHAN_IOC_CREATE, &c);
	RESET_CREATE();
	c.mode = 01000;
	zc_err_ioctl(EINVAL, fd, ZCHAN_IOC_CREATE, &c);
	RESET_CREATE();
	c.reserved[2] = 1;
	zc_err_ioctl(EINVAL, fd, ZCHAN_IOC_CREATE, &c);
	RESET_CREATE();
	c.ring_entries = 3;
	zc_err_ioctl(EINVAL, fd, ZCHAN_IOC_CREATE, &c);
	RESET_CREATE();
	c.ring_entries = ZCHAN_RING_ENTRIES_MAX << 1;
	zc_err_ioctl(EINVAL, fd, ZCHAN_IOC_CREATE, &c);
	RESET_CREATE();
	c.pool_size = 4 * page_size;
	c.max_msg = 2 * page_size + 1;
	zc_err_ioctl(EINVAL, fd, ZCHAN_IOC_CREATE, &c);
	RESET_CREATE();
	c.pool_size = 1ULL << 62;
	zc_err_ioctl(ENOMEM, fd, ZCHAN_IOC_CREATE, &c);
	RESET_CREATE();
	memset(c.name, 'x', sizeof(c.name));	/* not NUL-terminated */
	zc_err_ioctl(EINVAL, fd, ZCHAN_IOC_CREATE, &c);
	zc_err_ioctl(EFAULT, fd, ZCHAN_IOC_CREATE, (void *)8);

	/* None of that gave the fd a role. */
	RESET_CREATE();
	zc_set_name(c.name, name);
	zc_cmd_ioctl(fd, ZCHAN_IOC_CREATE, &c);
	/* A second CREATE on a producer fd. */
	RESET_CREATE();
	zc_err_ioctl(EINVAL, fd, ZCHAN_IOC_CREATE, &c);
	close(fd);
#undef RESET_CREATE
}

TEST(create_defaults_and_layout)
{
	struct zchan_layout l;
	int fd = zc_open();

	ASSERT_LE(0, fd);
	/* Zero fields take the UAPI's defaults, libzchan's too. */
	zc_cmd_create(fd, NULL, 0, 0, 0, 0600, &l);
	EXPECT_EQ(ZCHAN_DEFAULT_POOL_SIZE, l.pool_size);
	EXPECT_EQ(ZCHAN_DEFAULT_POOL_SIZE / 4, l.max_msg);
	close(fd);
	fd = zc_open();
	ASSERT_LE(0, fd);
	zc_cmd_create(fd, NULL, 5000, 0, 0, 0600, &l);
	/* The pool is page-rounded; max_msg defaults to a quarter of it. */
	EXPECT_EQ(0, l.pool_size % page_size);
	EXPECT_LE(5000, l.pool_size);
	EXPECT_EQ(l.pool_size / 4, l.max_msg);
	EXPECT_EQ(ZCHAN_DEFAULT_RING_ENTRIES, l.ring_entries);
	EXPECT_EQ(ZCHAN_OFF_PROD_RING, l.prod_ring_off);
	EXPECT_EQ(ZCHAN_OFF_CONS_RING, l.cons_ring_off);
	EXPECT_EQ(ZCHAN_OFF_POOL, l.pool_off);
	EXPECT_EQ(0, l.prod_ring_size % page_size);
	EXPECT_LE(l.prod_descs + l.ring_entries * sizeof(struct zchan_desc),
		  l.prod_ring_size);
	EXPECT_EQ(0, l.prod_descs % 8);
	EXPECT_EQ(0, l.cons_ring_size % page_size);
	EXPECT_LE(l.cons_closed + 4, l.cons_ring_size);
	{
		/* The words sit where the UAPI's zchan_layout_set_words() says. */
		struct zchan_layout w = l;

		zchan_layout_set_words(&w);
		EXPECT_EQ(0, memcmp(&w, &l, sizeof(w)));
	}
	/* Every feature of this module, and nothing else. */
#define ZC_FEATS (ZCHAN_FEAT_USE | ZCHAN_FEAT_PUBLISH_ON_CLOSE |		\
		  ZCHAN_FEAT_SEND_PAGES | ZCHAN_FEAT_WAIT_SPIN |		\
		  ZCHAN_FEAT_RUN_STATE | ZCHAN_FEAT_FANIN)
	EXPECT_EQ(ZC_FEATS, l.features & ZC_FEATS);
	EXPECT_TRUE(l.features & ZCHAN_FEAT_URING_CMD);
	EXPECT_EQ(0, l.features & ~(ZCHAN_FEAT_URING_CMD | ZCHAN_FEAT_URING_CANCEL |
				    ZC_FEATS));
#undef ZC_FEATS
	EXPECT_EQ(offsetof(struct zchan_cons_ring, lanes), l.cons_lanes);
	EXPECT_EQ(0, l.reserved[0] | l.reserved[1]);
	close(fd);

	/* max_msg == pool / 2 is the largest allowed. */
	fd = zc_open();
	ASSERT_LE(0, fd);
	zc_cmd_create(fd, NULL, 4 * page_size, 1, 2 * page_size, 0600, &l);
	EXPECT_EQ(1, l.ring_entries);
	close(fd);
}

TEST(name_taken_and_freed)
{
	char name[ZCHAN_NAME_MAX];
	int a = zc_open(), b = zc_open();

	ASSERT_LE(0, a);
	ASSERT_LE(0, b);
	zc_name(name, "taken");
	zc_cmd_create(a, name, 0, 0, 0, 0600, NULL);
	zc_err_create(EEXIST, b, name, 0, 0, 0, 0600);
	/* The failed CREATE left b without a role: it can still attach. */
	EXPECT_EQ(0, _zc_attach(b, name, NULL));
	close(a);
	close(b);
	/* Both ends gone: the name is free again. */
	a = zc_open();
	ASSERT_LE(0, a);
	zc_err_attach(ENOENT, a, name);
	EXPECT_EQ(0, _zc_create(a, name, 0, 0, 0, 0600, NULL));
	close(a);
}

TEST(name_freed_when_producer_leaves_unattached)
{
	char name[ZCHAN_NAME_MAX];
	int a = zc_open(), b = zc_open();

	ASSERT_LE(0, a);
	ASSERT_LE(0, b);
	zc_name(name, "unatt");
	zc_cmd_create(a, name, 0, 0, 0, 0600, NULL);
	close(a);
	zc_err_attach(ENOENT, b, name);
	close(b);
}

TEST(attach_bad_args)
{
	char name[ZCHAN_NAME_MAX];
	struct zchan_attach a;
	int p = zc_open(), c = zc_open(), c2 = zc_open();

	ASSERT_LE(0, p);
	ASSERT_LE(0, c);
	ASSERT_LE(0, c2);
	zc_name(name, "att");
	zc_cmd_create(p, name, 0, 0, 0, 0600, NULL);

	memset(&a, 0, sizeof(a));
	zc_err_ioctl(EINVAL, c, ZCHAN_IOC_ATTACH, &a);	/* empty name */
	memset(a.name, 'y', sizeof(a.name));
	zc_err_ioctl(EINVAL, c, ZCHAN_IOC_ATTACH, &a);	/* no NUL */
	memset(&a, 0, sizeof(a));
	zc_set_name(a.name, name);
	a.flags = 1;
	zc_err_ioctl(EINVAL, c, ZCHAN_IOC_ATTACH, &a);
	a.flags = 0;
	a.role = ZCHAN_ROLE_CONSUMER + 1;	/* the first unknown role */
	zc_err_ioctl(EINVAL, c, ZCHAN_IOC_ATTACH, &a);
	a.role = ~0U;
	zc_err_ioctl(EINVAL, c, ZCHAN_IOC_ATTACH, &a);
	a.role = 0;
	a.reserved[0] = 1;
	zc_err_ioctl(EINVAL, c, ZCHAN_IOC_ATTACH, &a);
	zc_err_attach(ENOENT, c, "zt-no-such-channel");
	/* The producer fd already has a role. */
	zc_err_attach(EINVAL, p, name);

	zc_cmd_attach(c, name, NULL);
	zc_err_attach(EBUSY, c2, name);
	zc_err_attach(EINVAL, c, name);
	zc_err_create(EINVAL, c, NULL, 0, 0, 0, 0600);
	/* The consumer end is taken once, even after it is released. */
	close(c);
	zc_err_attach(EBUSY, c2, name);
	close(c2);
	close(p);
}

TEST(efault_leaves_nothing)
{
	long long pages = zc_stat("pages");
	char name[ZCHAN_NAME_MAX];
	struct zchan_create *c;
	struct zchan_attach *a;
	int p = zc_open(), q = zc_open();
	void *ro;

	ASSERT_LE(0, p);
	ASSERT_LE(0, q);
	zc_name(name, "efault");
	/* Arguments the kernel can read but not write back to. */
	ro = mmap(NULL, page_size, PROT_READ | PROT_WRITE,
		  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, ro);
	c = ro;
	c->mode = 0600;
	zc_set_name(c->name, name);
	a = (void *)((char *)ro + page_size / 2);
	zc_set_name(a->name, name);
	ASSERT_EQ(0, mprotect(ro, page_size, PROT_READ));

	zc_err_ioctl(EFAULT, p, ZCHAN_IOC_CREATE, c);
	EXPECT_EQ(pages, zc_stat("pages"));
	zc_err_attach(ENOENT, q, name);	/* name not taken */
	zc_cmd_create(p, name, 0, 0, 0, 0600, NULL);
	zc_err_ioctl(EFAULT, q, ZCHAN_IOC_ATTACH, a);
	/* The failed ATTACH neither took the consumer end nor a role. */
	EXPECT_EQ(0, _zc_attach(q, name, NULL));
	close(p);
	close(q);

	/* PEER_FD: no descriptor, and the consumer end is still free. */
	p = zc_open();
	ASSERT_LE(0, p);
	zc_cmd_create(p, NULL, 0, 0, 0, 0600, NULL);
	q = dup(p);	/* the lowest free descriptor number */
	close(q);
	zc_err_ioctl(EFAULT, p, ZCHAN_IOC_PEER_FD, (char *)ro + page_size / 4);
	EXPECT_EQ(-1, fcntl(q, F_GETFD));
	{
		struct zchan_peer_fd pf = { 0 };

		EXPECT_EQ(0, zc_ioctl(p, ZCHAN_IOC_PEER_FD, &pf));
		close(pf.fd);
	}
	munmap(ro, page_size);
	close(p);
}

struct attach_as {
	const char *name;
	uid_t uid;
	gid_t gid;
};

static int attach_as_child(void *arg)
{
	const struct attach_as *a = arg;
	int fd;

	if (setgroups(0, NULL) || setresgid(a->gid, a->gid, a->gid) ||
	    setresuid(a->uid, a->uid, a->uid))
		return 200;
	fd = zc_open();
	if (fd < 0)
		return 201;
	return -_zc_attach(fd, a->name, NULL);
}

/* Attach from another user in a child; returns the child's -errno. */
static int attach_as(const char *name, uid_t uid, gid_t gid)
{
	struct attach_as a = { .name = name, .uid = uid, .gid = gid };
	pid_t pid = zc_spawn(attach_as_child, &a);
	int st;

	if (pid < 0)
		return -1000;
	st = zc_child_wait(pid, -1);
	if (st < 0 || st >= ZC_SIGNALLED(0))
		return -1001;
	return -st;
}

TEST(attach_permissions)
{
	static const struct {
		__u32 mode;
		uid_t uid;
		gid_t gid;
		int expect;
	} cases[] = {
		{ 0600, 65534, 65534, -EACCES },	/* other, no bits */
		{ 0606, 65534, 65534, 0 },		/* other rw */
		{ 0604, 65534, 65534, -EACCES },	/* other read only */
		{ 0660, 65534, 0, 0 },			/* group rw */
		{ 0660, 65534, 65534, -EACCES },	/* not in the group */
		{ 0066, 0, 0, 0 },			/* root: CAP_IPC_OWNER */
	};
	char name[ZCHAN_NAME_MAX];
	unsigned int i;

	ASSERT_EQ(0, getuid());
	zc_name(name, "perm");
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		int p = zc_open();

		ASSERT_LE(0, p);
		zc_cmd_create(p, name, 0, 0, 0, cases[i].mode, NULL);
		EXPECT_EQ(cases[i].expect,
			  attach_as(name, cases[i].uid, cases[i].gid)) {
			TH_LOG("case %u: mode %o uid %d", i, cases[i].mode,
			       cases[i].uid);
		}
		close(p);
	}
}

TEST(names_per_ipc_namespace)
{
	char name[ZCHAN_NAME_MAX];
	int p = zc_open();
	pid_t pid;

	ASSERT_LE(0, p);
	zc_name(name, "ns");
	zc_cmd_create(p, name, 0, 0, 0, 0666, NULL);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		int a = zc_open(), b = zc_open();

		if (unshare(CLONE_NEWIPC))
			_exit(10);
		if (_zc_attach(a, name, NULL) != -ENOENT)
			_exit(11);
		/* The same name is free in the new namespace. */
		if (_zc_create(b, name, 0, 0, 0, 0600, NULL))
			_exit(12);
		if (_zc_attach(a, name, NULL))
			_exit(13);
		_exit(0);
	}
	zc_child_exits(pid, 0);
	/* And the original is still there for us. */
	p = zc_open();
	EXPECT_EQ(0, _zc_attach(p, name, NULL));
	close(p);
}

TEST(peer_fd)
{
	struct zchan_peer_fd pf = { 0 };
	struct zchan_info info;
	int p = zc_open(), c = zc_open(), fd2;

	ASSERT_LE(0, p);
	ASSERT_LE(0, c);
	/* No role yet. */
	zc_err_ioctl(EINVAL, p, ZCHAN_IOC_PEER_FD, &pf);
	zc_cmd_create(p, NULL, 0, 0, 0, 0600, NULL);
	pf.flags = 2;
	zc_err_ioctl(EINVAL, p, ZCHAN_IOC_PEER_FD, &pf);
	pf.flags = 0;
	pf.reserved[0] = 1;
	zc_err_ioctl(EINVAL, p, ZCHAN_IOC_PEER_FD, &pf);
	pf.reserved[0] = 0;
	pf.resv = 1;
	zc_err_ioctl(EINVAL, p, ZCHAN_IOC_PEER_FD, &pf);
	pf.resv = 0;
	pf.role = ZCHAN_ROLE_CONSUMER + 1;
	zc_err_ioctl(EINVAL, p, ZCHAN_IOC_PEER_FD, &pf);
	pf.role = 0;
	pf.flags = ZCHAN_PEER_FD_CLOEXEC;
	zc_cmd_ioctl(p, ZCHAN_IOC_PEER_FD, &pf);
	EXPECT_EQ(FD_CLOEXEC, fcntl(pf.fd, F_GETFD) & FD_CLOEXEC);
	zc_cmd_info(pf.fd, &info);
	EXPECT_EQ(ZCHAN_ROLE_CONSUMER, info.role);
	EXPECT_EQ(ZCHAN_STATE_PRODUCER_OPEN | ZCHAN_STATE_CONSUMER_OPEN,
		  info.state);
	/* The consumer end is taken; a consumer cannot make peers. */
	fd2 = pf.fd;
	zc_err_ioctl(EBUSY, p, ZCHAN_IOC_PEER_FD, &pf);
	zc_err_ioctl(EINVAL, fd2, ZCHAN_IOC_PEER_FD, &pf);
	close(fd2);
	close(p);
	close(c);

	/* Without CLOEXEC. */
	p = zc_open();
	zc_cmd_create(p, NULL, 0, 0, 0, 0600, NULL);
	memset(&pf, 0, sizeof(pf));
	zc_cmd_ioctl(p, ZCHAN_IOC_PEER_FD, &pf);
	EXPECT_EQ(0, fcntl(pf.fd, F_GETFD) & FD_CLOEXEC);
	close(pf.fd);
	close(p);
}

TEST(peer_fd_scm_rights_handover)
{
	struct zc_end p = { .producer = true };
	struct zchan_peer_fd pf = { .flags = ZCHAN_PEER_FD_CLOEXEC };
	int sv[2];
	pid_t pid;

	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		struct zc_end c = { .producer = false };
		struct zchan_info info;

		close(sv[0]);
		c.fd = zc_recv_fd(sv[1]);
		if (c.fd < 0)
			_exit(20);
		if (_zc_info(c.fd, &info) || info.role != ZCHAN_ROLE_CONSUMER)
			_exit(21);
		c.l = info.layout;
		if (zc_map(&c))
			_exit(22);
		if (zc_recv_check(&c, 0, 100))
			_exit(23);
		_exit(0);
	}
	close(sv[1]);
	p.fd = zc_open();
	ASSERT_LE(0, p.fd);
	zc_cmd_create(p.fd, NULL, 8 * page_size, 8, 0, 0600, &p.l);
	zc_cmd_ioctl(p.fd, ZCHAN_IOC_PEER_FD, &pf);
	ASSERT_EQ(0, zc_send_fd(sv[0], pf.fd));
	close(pf.fd);
	ASSERT_EQ(0, zc_map(&p));
	EXPECT_EQ(0, zc_send_n(&p, 0, 100));
	zc_child_exits(pid, 0);
	zc_unmap(&p);
	close(p.fd);
	close(sv[0]);
}

TEST(kick_wait_info_bad_args)
{
	struct zchan_kick k = { 0 };
	struct zchan_wait w = { 0 };
	struct zchan_info info;
	int fd = zc_open();

	ASSERT_LE(0, fd);
	/* No role. */
	zc_err_ioctl(EINVAL, fd, ZCHAN_IOC_KICK, &k);
	zc_err_ioctl(EINVAL, fd, ZCHAN_IOC_WAIT, &w);
	zc_cmd_info(fd, &info);
	EXPECT_EQ(ZCHAN_ROLE_NONE, info.role);
	EXPECT_EQ(0, info.state);

	zc_cmd_create(fd, NULL, 0, 0, 0, 0600, NULL);
	k.flags = 1;
	zc_err_ioctl(EINVAL, fd, ZCHAN_IOC_KICK, &k);
	k.flags = 0;
	k.resv = 1;
	zc_err_ioctl(EINVAL, fd, ZCHAN_IOC_KICK, &k);
	k.resv = 0;
	k.reserved[1] = 1;
	zc_err_ioctl(EINVAL, fd, ZCHAN_IOC_KICK, &k);
	k.reserved[1] = 0;
	EXPECT_EQ(0, zc_ioctl(fd, ZCHAN_IOC_KICK, &k));

	w.flags = ZCHAN_WAIT_SPIN << 1;
	zc_err_ioctl(EINVAL, fd, ZCHAN_IOC_WAIT, &w);
	w.flags = 0;
	w.reserved[0] = 1;
	zc_err_ioctl(EINVAL, fd, ZCHAN_IOC_WAIT, &w);

	memset(&info, 0, sizeof(info));
	info.flags = 1;
	zc_err_ioctl(EINVAL, fd, ZCHAN_IOC_INFO, &info);
	info.flags = 0;
	info.reserved[0] = 1;
	zc_err_ioctl(EINVAL, fd, ZCHAN_IOC_INFO, &info);
	close(fd);
}

/* ---------------------------------------------------------------------
 * Mappings.
 */
TEST_F(chan, mmap_bad_offsets_sizes_and_flags)
{
	size_t ps = self->p.l.pool_size;
	int fd = zc_open();
	void *m;

	/* Unknown offsets. */
	m = mmap(NULL, page_size, PROT_READ, MAP_SHARED, self->p.fd, 0x30000000);
	EXPECT_EQ(MAP_FAILED, m);
	EXPECT_EQ(EINVAL, errno);
	m = mmap(NULL, page_size, PROT_READ, MAP_SHARED, self->p.fd,
		 ZCHAN_OFF_POOL + page_size);
	EXPECT_EQ(MAP_FAILED, m);
	EXPECT_EQ(EINVAL, errno);
	m = mmap(NULL, page_size, PROT_READ, MAP_SHARED, self->p.fd, page_size);
	EXPECT_EQ(MAP_FAILED, m);
	EXPECT_EQ(EINVAL, errno);
	/* Sizes must match the region. */
	m = mmap(NULL, ps - page_size, PROT_READ, MAP_SHARED, self->p.fd,
		 ZCHAN_OFF_POOL);
	EXPECT_EQ(MAP_FAILED, m);
	EXPECT_EQ(EINVAL, errno);
	m = mmap(NULL, ps + page_size, PROT_READ, MAP_SHARED, self->p.fd,
		 ZCHAN_OFF_POOL);
	EXPECT_EQ(MAP_FAILED, m);
	EXPECT_EQ(EINVAL, errno);
	m = mmap(NULL, self->p.l.cons_ring_size + page_size, PROT_READ,
		 MAP_SHARED, self->p.fd, ZCHAN_OFF_CONS_RING);
	EXPECT_EQ(MAP_FAILED, m);
	EXPECT_EQ(EINVAL, errno);
	/* Private mappings are refused, even read-only ones. */
	m = mmap(NULL, ps, PROT_READ | PROT_WRITE, MAP_PRIVATE, self->p.fd,
		 ZCHAN_OFF_POOL);
	EXPECT_EQ(MAP_FAILED, m);
	EXPECT_EQ(EINVAL, errno);
	m = mmap(NULL, ps, PROT_READ, MAP_PRIVATE, self->c.fd, ZCHAN_OFF_POOL);
	EXPECT_EQ(MAP_FAILED, m);
	EXPECT_EQ(EINVAL, errno);
	/* A file without a role maps nothing. */
	ASSERT_LE(0, fd);
	m = mmap(NULL, page_size, PROT_READ, MAP_SHARED, fd, ZCHAN_OFF_PROD_RING);
	EXPECT_EQ(MAP_FAILED, m);
	EXPECT_EQ(EINVAL, errno);
	close(fd);
}

TEST_F(chan, mmap_write_protection)
{
	int rw = PROT_READ | PROT_WRITE;
	void *m;

	/* The consumer may not write the pool or the producer ring. */
	m = mmap(NULL, self->c.l.pool_size, rw, MAP_SHARED, self->c.fd,
		 ZCHAN_OFF_POOL);
	EXPECT_EQ(MAP_FAILED, m);
	EXPECT_EQ(EACCES, errno);
	m = mmap(NULL, self->c.l.prod_ring_size, rw, MAP_SHARED, self->c.fd,
		 ZCHAN_OFF_PROD_RING);
	EXPECT_EQ(MAP_FAILED, m);
	EXPECT_EQ(EACCES, errno);
	/* The producer may not write the consumer ring. */
	m = mmap(NULL, self->p.l.cons_ring_size, rw, MAP_SHARED, self->p.fd,
		 ZCHAN_OFF_CONS_RING);
	EXPECT_EQ(MAP_FAILED, m);
	EXPECT_EQ(EACCES, errno);
	/* Read-only views cannot be upgraded. */
	EXPECT_EQ(-1, mprotect(self->c.pool, self->c.l.pool_size, rw));
	EXPECT_EQ(EACCES, errno);
	EXPECT_EQ(-1, mprotect(self->c.prod, self->c.l.prod_ring_size, rw));
	EXPECT_EQ(EACCES, errno);
	EXPECT_EQ(-1, mprotect(self->p.cons, self->p.l.cons_ring_size, rw));
	EXPECT_EQ(EACCES, errno);
	/* The writers' own views are writable and shared. */
	self->p.pool[self->p.l.pool_size - 1] = 0x5a;
	EXPECT_EQ(0x5a, self->c.pool[self->c.l.pool_size - 1]);
	*zc_word(self->c.cons, self->c.l.cons_read + 4) = 7;
	EXPECT_EQ(7, *zc_word(self->p.cons, self->p.l.cons_read + 4));
}

TEST_F(chan, fresh_pages_are_zero)
{
	size_t i;

	for (i = 0; i < self->c.l.pool_size; i++)
		if (self->c.pool[i])
			break;
	EXPECT_EQ(self->c.l.pool_size, i);
	for (i = 0; i < self->c.l.prod_ring_size; i++)
		if (((uint8_t *)self->c.prod)[i])
			break;
	EXPECT_EQ(self->c.l.prod_ring_size, i);
	for (i = 0; i < self->p.l.cons_ring_size; i++)
		if (((uint8_t *)self->p.cons)[i])
			break;
	EXPECT_EQ(self->p.l.cons_ring_size, i);
}

TEST_F(chan, pool_pages_work_with_gup)
{
	size_t len = self->p.l.pool_size;
	uint8_t *buf = malloc(len);
	struct iovec local = { .iov_base = buf, .iov_len = len };
	struct iovec remote = { .iov_base = self->c.pool, .iov_len = len };
	struct iovec vs = { .iov_base = self->c.pool, .iov_len = page_size };
	int pfd[2];

	ASSERT_NE(NULL, buf);
	zc_payload_fill(self->p.pool, len, 0, 1);
	/* process_vm_readv() pins the consumer's read-only pool pages. */
	ASSERT_EQ((ssize_t)len, process_vm_readv(getpid(), &local, 1, &remote,
						  1, 0));
	EXPECT_EQ(0, memcmp(buf, self->p.pool, len));
	/* vmsplice() takes references to them with get_user_pages_fast(). */
	ASSERT_EQ(0, pipe(pfd));
	ASSERT_EQ(page_size, vmsplice(pfd[1], &vs, 1, 0));
	memset(buf, 0, page_size);
	ASSERT_EQ(page_size, read(pfd[0], buf, page_size));
	EXPECT_EQ(0, memcmp(buf, self->p.pool, page_size));
	close(pfd[0]);
	close(pfd[1]);
	free(buf);
}

TEST_F(chan, mapping_outlives_fd)
{
	struct zchan_info info;

	/*
	 * The end is used by this process, so closing its last descriptor
	 * ends it (see the use tests); the mapping stays valid, and the
	 * pages stay until the last mapping goes.
	 */
	self->p.pool[0] = 42;
	close(self->p.fd);
	self->p.fd = -1;
	zc_cmd_info(self->c.fd, &info);
	EXPECT_FALSE(info.state & ZCHAN_STATE_PRODUCER_OPEN);
	EXPECT_EQ(1, PROD(&self->c, closed));
	EXPECT_EQ(42, self->c.pool[0]);
	EXPECT_EQ(42, self->p.pool[0]);
	self->p.pool[1] = 43;
	EXPECT_EQ(43, self->c.pool[1]);
	zc_unmap(&self->p);
	/* The survivor's pages stay. */
	EXPECT_EQ(42, self->c.pool[0]);

	/* An end nobody used yet is held by its file, mappings included. */
	{
		int p = zc_open(), c;
		void *m;

		ASSERT_LE(0, p);
		zc_cmd_create(p, NULL, 0, 0, 0, 0600, NULL);
		c = _zc_peer_fd(p, ZCHAN_PEER_FD_CLOEXEC);
		ASSERT_LE(0, c);
		zc_cmd_info(c, &info);
		m = mmap(NULL, info.layout.cons_ring_size, PROT_READ | PROT_WRITE,
			 MAP_SHARED, c, info.layout.cons_ring_off);
		ASSERT_NE(MAP_FAILED, m);
		/* The mmap() made this process its user: the close ends it. */
		close(c);
		EXPECT_EQ(ZCHAN_STATE_PRODUCER_OPEN, zc_state(p));
		munmap(m, info.layout.cons_ring_size);
		close(p);
	}
}

TEST(large_pool_and_no_growth)
{
	struct zc_end p = { .producer = true }, c = { .producer = false };
	char name[ZCHAN_NAME_MAX];
	size_t last;
	void *m;

	zc_name(name, "large");
	p.fd = zc_open();
	c.fd = zc_open();
	ASSERT_LE(0, p.fd);
	ASSERT_LE(0, c.fd);
	/* 32 MiB of order-0 pages behind a kvmalloc'ed page array. */
	zc_cmd_create(p.fd, name, 32 << 20, 0, 0, 0600, &p.l);
	zc_cmd_attach(c.fd, name, &c.l);
	ASSERT_EQ(0, zc_map(&p));
	ASSERT_EQ(0, zc_map(&c));
	last = p.l.pool_size - 1;
	EXPECT_EQ(0, c.pool[last]);
	p.pool[last] = 0xa5;
	p.pool[0] = 0x5a;
	EXPECT_EQ(0xa5, c.pool[last]);
	EXPECT_EQ(0x5a, c.pool[0]);
	/* Mappings cannot grow past their region. */
	m = mremap(c.pool, c.l.pool_size, c.l.pool_size + page_size,
		   MREMAP_MAYMOVE);
	EXPECT_EQ(MAP_FAILED, m);
	zc_unmap(&p);
	zc_unmap(&c);
	close(p.fd);
	close(c.fd);
}

/* ---------------------------------------------------------------------
 * Waiting and kicking.
 */
TEST_F(chan, poll_masks)
{
	/* Fresh: the producer has room, the consumer has nothing. */
	EXPECT_EQ(POLLOUT, zc_poll(self->p.fd, POLLOUT | POLLIN));
	EXPECT_EQ(0, zc_poll(self->c.fd, POLLIN | POLLOUT));
	/* Polling armed need_wakeup on both ends. */
	EXPECT_EQ(1, CONS(&self->c, need_wakeup));
	EXPECT_EQ(1, PROD(&self->p, need_wakeup));

	ASSERT_EQ(0, zc_send_n(&self->p, 0, 2));
	EXPECT_EQ(POLLIN, zc_poll(self->c.fd, POLLIN));
	/* Ring not drained and nothing released: no room news. */
	__atomic_store_n(&PROD(&self->p, head_seen), self->p.head_seen,
			 __ATOMIC_RELAXED);
	EXPECT_EQ(0, zc_poll(self->p.fd, POLLOUT));
	ASSERT_EQ(0, zc_recv_check(&self->c, 0, 1));
	/* The consumer released a slot the producer has not seen yet. */
	EXPECT_EQ(POLLOUT, zc_poll(self->p.fd, POLLOUT));
	EXPECT_EQ(POLLIN, zc_poll(self->c.fd, POLLIN));

	/* Producer gone: HUP, and IN while a message remains. */
	zc_unmap(&self->p);
	close(self->p.fd);
	self->p.fd = -1;
	EXPECT_EQ(POLLIN | POLLHUP, zc_poll(self->c.fd, POLLIN));
	ASSERT_EQ(0, zc_recv_check(&self->c, 1, 1));
	EXPECT_EQ(POLLHUP, zc_poll(self->c.fd, POLLIN));
}

TEST_F(chan, poll_producer_sees_consumer_death)
{
	zc_unmap(&self->c);
	close(self->c.fd);
	self->c.fd = -1;
	EXPECT_EQ(POLLOUT | POLLERR | POLLHUP,
		  zc_poll(self->p.fd, POLLOUT));
	EXPECT_EQ(1, CONS(&self->p, closed));
	EXPECT_EQ(-EPIPE, zc_send_n(&self->p, 0, 1));
}

TEST_F(chan, wait_timeout_and_ready)
{
	__u32 revents = 0;

	EXPECT_EQ(-ETIMEDOUT, _zc_wait(self->c.fd, 0, &revents));
	EXPECT_EQ(-ETIMEDOUT, _zc_wait(self->c.fd, 1000000, &revents));
	EXPECT_EQ(1, CONS(&self->c, need_wakeup));
	/* The producer is ready at once on a fresh channel. */
	zc_cmd_wait(self->p.fd, -1, &revents);
	EXPECT_EQ(EPOLLOUT | EPOLLWRNORM, revents);
	ASSERT_EQ(0, zc_send_n(&self->p, 0, 1));
	zc_cmd_wait(self->c.fd, 0, &revents);
	EXPECT_EQ(EPOLLIN | EPOLLRDNORM, revents);
}

struct waiter {
	int fd;
	int ret;
	__u32 revents;
};

static void *waiter_fn(void *arg)
{
	struct waiter *w = arg;

	w->ret = _zc_wait(w->fd, -1, &w->revents);
	return NULL;
}

TEST_F(chan, wait_woken_by_kick)
{
	struct waiter w = { .fd = self->c.fd };
	struct zchan_info info;
	pthread_t t;

	ASSERT_EQ(0, pthread_create(&t, NULL, waiter_fn, &w));
	/* The waiter arms need_wakeup; the producer's send kicks it. */
	while (!__atomic_load_n(&CONS(&self->p, need_wakeup), __ATOMIC_ACQUIRE))
		usleep(1000);
	ASSERT_EQ(0, zc_send_n(&self->p, 0, 1));
	ASSERT_EQ(0, pthread_join(t, NULL));
	EXPECT_EQ(0, w.ret);
	EXPECT_EQ(EPOLLIN | EPOLLRDNORM, w.revents);
	zc_cmd_info(self->c.fd, &info);
	EXPECT_LE(1, info.kicks);
	/* The waiter re-armed before it saw the message; a kick clears it. */
	EXPECT_EQ(1, CONS(&self->p, need_wakeup));
	zc_cmd_kick(self->p.fd);
	EXPECT_EQ(0, CONS(&self->p, need_wakeup));
}

TEST_F(chan, wait_woken_by_peer_death)
{
	struct waiter w = { .fd = self->p.fd };
	pthread_t t;

	uint8_t byte = 1;
	unsigned int i;

	/* Fill the ring so that the producer has to wait. */
	for (i = 0; i < self->p.l.ring_entries; i++)
		ASSERT_EQ(0, zc_send(&self->p, &byte, 1));
	__atomic_store_n(&PROD(&self->p, head_seen), self->p.head_seen,
			 __ATOMIC_RELAXED);
	ASSERT_EQ(0, pthread_create(&t, NULL, waiter_fn, &w));
	while (!__atomic_load_n(&PROD(&self->p, need_wakeup), __ATOMIC_ACQUIRE))
		usleep(1000);
	zc_unmap(&self->c);
	close(self->c.fd);
	self->c.fd = -1;
	ASSERT_EQ(0, pthread_join(t, NULL));
	EXPECT_EQ(0, w.ret);
	EXPECT_EQ(EPOLLERR | EPOLLHUP, w.revents);
}

TEST_F(chan, epoll_edge_triggered)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLET };
	int ep = epoll_create1(EPOLL_CLOEXEC);

	ASSERT_LE(0, ep);
	ASSERT_EQ(0, epoll_ctl(ep, EPOLL_CTL_ADD, self->c.fd, &ev));
	EXPECT_EQ(0, epoll_wait(ep, &ev, 1, 0));
	/* Adding the fd polled it, which armed need_wakeup: the send kicks. */
	EXPECT_EQ(1, CONS(&self->p, need_wakeup));
	ASSERT_EQ(0, zc_send_n(&self->p, 0, 1));
	ASSERT_EQ(1, epoll_wait(ep, &ev, 1, -1));
	EXPECT_TRUE(ev.events & EPOLLIN);
	/* Edge-triggered: no new edge until something changes. */
	EXPECT_EQ(0, epoll_wait(ep, &ev, 1, 0));
	ASSERT_EQ(0, zc_recv_check(&self->c, 0, 1));
	/* The producer leaving is an edge: EPOLLHUP. */
	zc_unmap(&self->p);
	close(self->p.fd);
	self->p.fd = -1;
	ASSERT_EQ(1, epoll_wait(ep, &ev, 1, -1));
	EXPECT_TRUE(ev.events & EPOLLHUP);
	close(ep);
}

TEST_F(chan, hostile_words_are_only_compared)
{
	struct zchan_info info;
	__u32 revents, i;

	/* A consumer scribbles over its ring, "closed" word included. */
	CONS(&self->c, head) = 0xdeadbeef;
	CONS(&self->c, read) = 0x7fffffff;
	CONS(&self->c, closed) = 1;
	memset(zc_word(self->c.cons, self->c.l.cons_read + 4), 0xff,
	       self->c.l.cons_need_wakeup - self->c.l.cons_read - 4);
	/* A producer publishes garbage descriptors and a wild tail. */
	memset(zc_desc(self->p.prod, &self->p.l, 0), 0xff,
	       self->p.l.ring_entries * sizeof(struct zchan_desc));
	/* Garbage flags, but not SKIP: a skipped slot holds no bytes. */
	for (i = 0; i < self->p.l.ring_entries; i++)
		zc_desc(self->p.prod, &self->p.l, i)->flags = ~ZCHAN_DESC_SKIP;
	PROD(&self->p, tail) = 0x80000000;
	PROD(&self->p, head_seen) = 12345;

	/* The kernel only compares the words; its own state decides HUP. */
	EXPECT_EQ(POLLOUT, zc_poll(self->p.fd, POLLOUT));
	EXPECT_EQ(POLLIN, zc_poll(self->c.fd, POLLIN));
	zc_cmd_wait(self->p.fd, 0, &revents);
	EXPECT_EQ(EPOLLOUT | EPOLLWRNORM, revents);
	zc_cmd_info(self->p.fd, &info);
	EXPECT_EQ(ZCHAN_STATE_PRODUCER_OPEN | ZCHAN_STATE_CONSUMER_OPEN |
		  ZCHAN_STATE_NAMED, info.state);
	EXPECT_EQ(0x80000000, info.published);
	EXPECT_EQ(0xdeadbeef, info.released);
	/* The walk over garbage lengths stops after one ring's worth. */
	EXPECT_EQ(self->p.l.ring_entries * 0xffffffffULL, info.queued_bytes);
	/* Skipped slots (placeholders, dropped loans) hold no bytes. */
	for (i = 0; i < self->p.l.ring_entries; i++)
		zc_desc(self->p.prod, &self->p.l, i)->flags = ZCHAN_DESC_SKIP;
	zc_cmd_info(self->p.fd, &info);
	EXPECT_EQ(0, info.queued_bytes);
	EXPECT_EQ(0, _zc_kick(self->p.fd));
	EXPECT_EQ(0, _zc_kick(self->c.fd));
	/* The real departure is still reported. */
	zc_unmap(&self->c);
	close(self->c.fd);
	self->c.fd = -1;
	EXPECT_EQ(POLLOUT | POLLERR | POLLHUP, zc_poll(self->p.fd, POLLOUT));
}

TEST_F(chan, info_contents)
{
	struct zchan_info pi, ci;

	ASSERT_EQ(0, zc_send_n(&self->p, 0, 3));
	ASSERT_EQ(0, zc_recv_check(&self->c, 0, 2));
	zc_cmd_kick(self->p.fd);
	zc_cmd_info(self->p.fd, &pi);
	zc_cmd_info(self->c.fd, &ci);
	EXPECT_EQ(ZCHAN_ROLE_PRODUCER, pi.role);
	EXPECT_EQ(ZCHAN_ROLE_CONSUMER, ci.role);
	EXPECT_EQ(ZCHAN_STATE_PRODUCER_OPEN | ZCHAN_STATE_CONSUMER_OPEN |
		  ZCHAN_STATE_NAMED, pi.state);
	EXPECT_EQ(pi.state, ci.state);
	EXPECT_EQ(0, memcmp(&pi.layout, &self->p.l, sizeof(pi.layout)));
	EXPECT_EQ(0, memcmp(&ci.layout, &self->p.l, sizeof(ci.layout)));
	EXPECT_EQ(3, pi.published);
	EXPECT_EQ(2, pi.released);
	EXPECT_EQ(zc_desc(self->p.prod, &self->p.l, 2)->len, pi.queued_bytes);
	EXPECT_EQ(pi.queued_bytes, ci.queued_bytes);
	EXPECT_LE(1, pi.kicks);
	EXPECT_EQ(pi.kicks, ci.kicks);
	EXPECT_STREQ(self->name, (char *)pi.name);
	EXPECT_EQ(0, pi.resv);
	/* A 1:1 channel: one end of each role, at most one. */
	EXPECT_EQ(1, pi.producers);
	EXPECT_EQ(1, pi.consumers);
	EXPECT_EQ(1, pi.max_producers);
	EXPECT_EQ(1, pi.max_consumers);
	EXPECT_EQ(0, memcmp(&pi.producers, &ci.producers, 4 * sizeof(__u32)));
	EXPECT_EQ(0, pi.reserved[0]);
}

TEST_F(chan, debugfs_lists_channel)
{
	char line[512];
	bool found = false;
	FILE *f = fopen(ZC_DEBUGFS "/channels", "r");

	ASSERT_NE(NULL, f);
	while (fgets(line, sizeof(line), f))
		if (strstr(line, self->name) && strstr(line, " open open "))
			found = true;
	fclose(f);
	EXPECT_TRUE(found);
	EXPECT_LE(1, zc_stat("channels"));
	EXPECT_LE(3, zc_stat("pages"));
}

/* ---------------------------------------------------------------------
 * io_uring: URING_CMD WAIT/KICK and POLL_ADD.
 */
TEST_F(chan, uring_cmd_bad_args)
{
	struct io_uring ring;
	int fd = zc_open();

	ASSERT_EQ(0, io_uring_queue_init(8, &ring, 0));
	ASSERT_EQ(0, zc_submit_zcmd(&ring, self->c.fd, ZCHAN_URING_CMD_WAIT, 1, 0, 1));
	EXPECT_EQ(-EINVAL, zc_reap(&ring, NULL));
	ASSERT_EQ(0, zc_submit_zcmd(&ring, self->c.fd, ZCHAN_URING_CMD_WAIT, 0, 1, 2));
	EXPECT_EQ(-EINVAL, zc_reap(&ring, NULL));
	/* Unknown commands, and the bare values of old headers. */
	ASSERT_EQ(0, zc_submit_zcmd(&ring, self->c.fd, 0x77, 0, 0, 3));
	EXPECT_EQ(-ENOTTY, zc_reap(&ring, NULL));
	ASSERT_EQ(0, zc_submit_zcmd(&ring, self->c.fd, 0x01, 0, 0, 3));
	EXPECT_EQ(-ENOTTY, zc_reap(&ring, NULL));
	ASSERT_EQ(0, zc_submit_zcmd(&ring, self->p.fd, 0x02, 0, 0, 3));
	EXPECT_EQ(-ENOTTY, zc_reap(&ring, NULL));
	/* The same number with another size or direction is another command. */
	ASSERT_EQ(0, zc_submit_zcmd(&ring, self->c.fd,
				    _IOR('Z', 0x20, struct zchan_uring_cmd), 0, 0, 3));
	EXPECT_EQ(-ENOTTY, zc_reap(&ring, NULL));
	ASSERT_EQ(0, zc_submit_zcmd(&ring, self->c.fd, _IOWR('Z', 0x21, __u64),
				    0, 0, 3));
	EXPECT_EQ(-ENOTTY, zc_reap(&ring, NULL));
	/* Reserved fields are checked first: a bad command word is -EINVAL. */
	ASSERT_EQ(0, zc_submit_zcmd(&ring, self->c.fd, 0x01, 1, 0, 3));
	EXPECT_EQ(-EINVAL, zc_reap(&ring, NULL));
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, zc_submit_zcmd(&ring, fd, ZCHAN_URING_CMD_KICK, 0, 0, 4));
	EXPECT_EQ(-EINVAL, zc_reap(&ring, NULL));
	close(fd);
	io_uring_queue_exit(&ring);
}

TEST_F(chan, uring_cmd_wait_and_kick)
{
	struct io_uring cring, pring;
	__u64 data = 0;
	int res;

	ASSERT_EQ(0, io_uring_queue_init(8, &cring, 0));
	ASSERT_EQ(0, io_uring_queue_init(8, &pring, 0));

	/* Ready at once: the producer's WAIT completes with EPOLLOUT. */
	ASSERT_EQ(0, zc_submit_zcmd(&pring, self->p.fd, ZCHAN_URING_CMD_WAIT, 0, 0, 5));
	EXPECT_EQ(EPOLLOUT | EPOLLWRNORM, zc_reap(&pring, &data));
	EXPECT_EQ(5, data);

	/* The consumer's WAIT stays pending and arms need_wakeup. */
	ASSERT_EQ(0, zc_submit_zcmd(&cring, self->c.fd, ZCHAN_URING_CMD_WAIT, 0, 0, 6));
	EXPECT_FALSE(zc_cqe_pending(&cring));
	EXPECT_EQ(1, CONS(&self->p, need_wakeup));

	/* A kick with nothing published: still pending, and re-armed. */
	ASSERT_EQ(0, zc_submit_zcmd(&pring, self->p.fd, ZCHAN_URING_CMD_KICK, 0, 0, 7));
	EXPECT_EQ(0, zc_reap(&pring, &data));
	EXPECT_EQ(7, data);
	EXPECT_FALSE(zc_cqe_pending(&cring));
	EXPECT_EQ(1, CONS(&self->p, need_wakeup));

	/* Publish; zc_send sees need_wakeup and kicks (ioctl). */
	ASSERT_EQ(0, zc_send_n(&self->p, 0, 1));
	res = zc_reap(&cring, &data);
	EXPECT_EQ(EPOLLIN | EPOLLRDNORM, res);
	EXPECT_EQ(6, data);

	/* Kick through io_uring: publish by hand, then URING_CMD KICK. */
	ASSERT_EQ(0, zc_recv_check(&self->c, 0, 1));
	ASSERT_EQ(0, zc_submit_zcmd(&cring, self->c.fd, ZCHAN_URING_CMD_WAIT, 0, 0, 8));
	EXPECT_FALSE(zc_cqe_pending(&cring));
	*zc_desc(self->p.prod, &self->p.l, 1) =
		(struct zchan_desc){ .off = 0, .len = 1 };
	__atomic_store_n(&PROD(&self->p, tail), 2, __ATOMIC_RELEASE);
	ASSERT_EQ(0, zc_submit_zcmd(&pring, self->p.fd, ZCHAN_URING_CMD_KICK, 0, 0, 9));
	EXPECT_EQ(0, zc_reap(&pring, NULL));
	EXPECT_EQ(EPOLLIN | EPOLLRDNORM, zc_reap(&cring, &data));
	EXPECT_EQ(8, data);

	io_uring_queue_exit(&cring);
	io_uring_queue_exit(&pring);
}

TEST_F(chan, uring_cmd_defer_taskrun)
{
	struct io_uring_params params = {
		.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
	};
	struct io_uring ring;

	/* Completions land on the ring's local list, run by its issuer. */
	ASSERT_EQ(0, io_uring_queue_init_params(8, &ring, &params));
	ASSERT_EQ(0, zc_submit_zcmd(&ring, self->c.fd, ZCHAN_URING_CMD_WAIT, 0, 0, 1));
	EXPECT_FALSE(zc_cqe_pending(&ring));
	ASSERT_EQ(0, zc_send_n(&self->p, 0, 1));
	EXPECT_EQ(EPOLLIN | EPOLLRDNORM, zc_reap(&ring, NULL));
	/* And a cancellation through ->flush. */
	{
		int dup_fd = dup(self->c.fd);

		ASSERT_LE(0, dup_fd);
		ASSERT_EQ(0, zc_recv_check(&self->c, 0, 1));
		ASSERT_EQ(0, zc_submit_zcmd(&ring, dup_fd, ZCHAN_URING_CMD_WAIT, 0, 0, 2));
		EXPECT_FALSE(zc_cqe_pending(&ring));
		close(dup_fd);
		EXPECT_EQ(-ECANCELED, zc_reap(&ring, NULL));
	}
	io_uring_queue_exit(&ring);
}

TEST_F(chan, uring_cmd_wait_peer_death)
{
	struct io_uring ring;

	ASSERT_EQ(0, io_uring_queue_init(8, &ring, 0));
	ASSERT_EQ(0, zc_submit_zcmd(&ring, self->c.fd, ZCHAN_URING_CMD_WAIT, 0, 0, 1));
	EXPECT_FALSE(zc_cqe_pending(&ring));
	zc_unmap(&self->p);
	close(self->p.fd);
	self->p.fd = -1;
	EXPECT_EQ(EPOLLHUP, zc_reap(&ring, NULL));
	io_uring_queue_exit(&ring);
}

TEST_F(chan, uring_cmd_wait_cancelled_by_close)
{
	struct io_uring ring;
	int dup_fd = dup(self->c.fd);

	/* Closing a descriptor of the channel cancels this table's waits. */
	ASSERT_LE(0, dup_fd);
	ASSERT_EQ(0, io_uring_queue_init(8, &ring, 0));
	ASSERT_EQ(0, zc_submit_zcmd(&ring, dup_fd, ZCHAN_URING_CMD_WAIT, 0, 0, 1));
	EXPECT_FALSE(zc_cqe_pending(&ring));
	close(dup_fd);
	EXPECT_EQ(-ECANCELED, zc_reap(&ring, NULL));
	io_uring_queue_exit(&ring);
}

TEST_F(chan, uring_poll_add)
{
	struct io_uring ring;
	struct io_uring_sqe *sqe;

	ASSERT_EQ(0, io_uring_queue_init(8, &ring, 0));
	sqe = io_uring_get_sqe(&ring);
	io_uring_prep_poll_add(sqe, self->c.fd, POLLIN);
	ASSERT_EQ(1, io_uring_submit(&ring));
	EXPECT_FALSE(zc_cqe_pending(&ring));
	EXPECT_EQ(1, CONS(&self->p, need_wakeup));
	ASSERT_EQ(0, zc_send_n(&self->p, 0, 1));
	EXPECT_EQ(POLLIN, zc_reap(&ring, NULL) & (POLLIN | POLLHUP | POLLERR));
	io_uring_queue_exit(&ring);
}

/* ---------------------------------------------------------------------
 * Two processes, the raw protocol, and peer death.
 */
#ifndef ZC_STREAM_MSGS
#define ZC_STREAM_MSGS 10000
#endif

TEST(stream_10000_random_messages)
{
	struct zc_end p = { .producer = true };
	char name[ZCHAN_NAME_MAX];
	pid_t pid;

	zc_name(name, "stream");
	p.fd = zc_open();
	ASSERT_LE(0, p.fd);
	/* A small pool and ring: both wrap and both sides wait often. */
	zc_cmd_create(p.fd, name, 8 * page_size, 32, 2048, 0600, &p.l);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		struct zc_end c = { .producer = false };
		uint8_t buf[2048];
		uint32_t len;
		int ret;

		/* The producer's fd must not live on in this process. */
		close(p.fd);
		c.fd = zc_open();
		if (c.fd < 0 || _zc_attach(c.fd, name, &c.l) || zc_map(&c))
			_exit(30);
		ret = zc_recv_check(&c, 0, ZC_STREAM_MSGS);
		if (ret)
			_exit(ret == -EBADMSG ? 31 : 32);
		/* Producer done: the channel reads as ended. */
		if (zc_recv(&c, buf, &len) != -EPIPE)
			_exit(33);
		_exit(0);
	}
	ASSERT_EQ(0, zc_map(&p));
	EXPECT_EQ(0, zc_send_n(&p, 0, ZC_STREAM_MSGS));
	zc_unmap(&p);
	close(p.fd);
	zc_child_exits(pid, 0);
}

TEST(producer_sigkill_with_messages_in_flight)
{
	struct zc_end c = { .producer = false };
	char name[ZCHAN_NAME_MAX];
	struct zchan_info info;
	int ready[2];
	__u32 revents;
	pid_t pid;

	zc_name(name, "pkill");
	ASSERT_EQ(0, pipe(ready));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		struct zc_end p = { .producer = true };

		p.fd = zc_open();
		if (p.fd < 0 ||
		    _zc_create(p.fd, name, 32 * page_size, 64, 256, 0600, &p.l) ||
		    zc_map(&p))
			_exit(40);
		if (zc_send_n(&p, 0, 50))
			_exit(41);
		zc_signal(ready[1]);
		/* Keep publishing until killed: the ring fills up. */
		zc_send_n(&p, 50, 1000000);
		pause();
		_exit(42);
	}
	ASSERT_EQ(0, zc_await(ready[0]));
	c.fd = zc_open();
	ASSERT_LE(0, c.fd);
	zc_cmd_attach(c.fd, name, &c.l);
	ASSERT_EQ(0, zc_map(&c));
	ASSERT_EQ(0, kill(pid, SIGKILL));
	zc_child_killed(pid, SIGKILL);

	/* Everything committed is still there, in order, intact. */
	zc_cmd_wait(c.fd, -1, &revents);
	EXPECT_TRUE(revents & EPOLLHUP);
	EXPECT_TRUE(revents & EPOLLIN);
	EXPECT_EQ(1, PROD(&c, closed));
	zc_cmd_info(c.fd, &info);
	EXPECT_EQ(ZCHAN_STATE_CONSUMER_OPEN | ZCHAN_STATE_NAMED, info.state);
	EXPECT_LE(50, info.published);
	EXPECT_EQ(0, zc_recv_check(&c, 0, info.published));
	/* Then the end. */
	EXPECT_EQ(-EPIPE, zc_recv_check(&c, info.published, 1));
	zc_cmd_wait(c.fd, -1, &revents);
	EXPECT_EQ(EPOLLHUP, revents);
	/* The name went with the producer's death once we leave too. */
	zc_unmap(&c);
	close(c.fd);
	c.fd = zc_open();
	zc_err_attach(ENOENT, c.fd, name);
	close(c.fd);
}

TEST(consumer_sigkill)
{
	struct zc_end p = { .producer = true };
	char name[ZCHAN_NAME_MAX];
	int ready[2];
	__u32 revents;
	pid_t pid;

	zc_name(name, "ckill");
	p.fd = zc_open();
	ASSERT_LE(0, p.fd);
	zc_cmd_create(p.fd, name, 8 * page_size, 8, 0, 0600, &p.l);
	ASSERT_EQ(0, zc_map(&p));
	ASSERT_EQ(0, pipe(ready));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		struct zc_end c = { .producer = false };

		c.fd = zc_open();
		if (c.fd < 0 || _zc_attach(c.fd, name, &c.l) || zc_map(&c))
			_exit(50);
		if (zc_recv_check(&c, 0, 5))
			_exit(51);
		zc_signal(ready[1]);
		pause();
		_exit(52);
	}
	ASSERT_EQ(0, zc_send_n(&p, 0, 5));
	ASSERT_EQ(0, zc_await(ready[0]));
	ASSERT_EQ(0, kill(pid, SIGKILL));
	zc_child_killed(pid, SIGKILL);
	zc_cmd_wait(p.fd, -1, &revents);
	EXPECT_TRUE(revents & EPOLLHUP);
	EXPECT_TRUE(revents & EPOLLERR);
	EXPECT_EQ(-EPIPE, zc_send_n(&p, 5, 1));
	zc_unmap(&p);
	close(p.fd);
}

/* Poll @fd until POLLHUP, giving asynchronous teardown a bounded time. */
static bool wait_hup(int fd)
{
	int i;

	for (i = 0; i < 2000; i++) {
		if (zc_poll(fd, POLLOUT | POLLIN) & POLLHUP)
			return true;
		usleep(10000);
	}
	return false;
}

TEST(exit_with_pending_uring_waits)
{
	struct zc_end p = { .producer = true };
	long long channels_before = zc_stat("channels");
	char name[ZCHAN_NAME_MAX];
	struct zchan_info info;
	int ready[2];
	pid_t pid;

	ASSERT_LE(0, channels_before);
	zc_name(name, "uexit");
	p.fd = zc_open();
	ASSERT_LE(0, p.fd);
	zc_cmd_create(p.fd, name, 0, 0, 0, 0600, &p.l);
	ASSERT_EQ(0, pipe(ready));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		struct io_uring ring, sqring, dring;
		struct io_uring_params params = {
			.flags = IORING_SETUP_SQPOLL,
			.sq_thread_idle = 1000,
		};
		struct io_uring_params dparams = {
			.flags = IORING_SETUP_SINGLE_ISSUER |
				 IORING_SETUP_DEFER_TASKRUN,
		};
		int c = zc_open(), i;

		if (c < 0 || _zc_attach(c, name, NULL))
			_exit(60);
		if (io_uring_queue_init(8, &ring, 0) ||
		    io_uring_queue_init_params(8, &sqring, &params) ||
		    io_uring_queue_init_params(8, &dring, &dparams))
			_exit(61);
		for (i = 0; i < 3; i++)
			if (zc_submit_zcmd(&ring, c, ZCHAN_URING_CMD_WAIT, 0, 0, i))
				_exit(62);
		if (zc_submit_zcmd(&dring, c, ZCHAN_URING_CMD_WAIT, 0, 0, 8))
			_exit(62);
		if (zc_submit_zcmd(&sqring, c, ZCHAN_URING_CMD_WAIT, 0, 0, 9))
			_exit(63);
		/*
		 * Wait until the SQPOLL thread has issued its WAIT too: that
		 * thread holds the file table and waits for its requests
		 * before it exits, so ->flush alone would never run.
		 */
		for (i = 0; i < 3000; i++) {
			struct zchan_info info;

			if (_zc_info(c, &info))
				_exit(64);
			if (info.waits >= 5)
				break;
			usleep(1000);
		}
		zc_signal(ready[1]);
		pause();
		_exit(65);
	}
	ASSERT_EQ(0, zc_await(ready[0]));
	/* The waits are pending. */
	zc_cmd_info(p.fd, &info);
	EXPECT_TRUE(info.state & ZCHAN_STATE_CONSUMER_OPEN);
	EXPECT_EQ(5, info.waits);
	EXPECT_EQ(5, zc_stat("uring_waits"));
	ASSERT_EQ(0, kill(pid, SIGKILL));
	/* The killed process is reaped; the harness timeout catches a hang. */
	zc_child_killed(pid, SIGKILL);
	/* Its waits were completed, so its end is released. */
	EXPECT_TRUE(wait_hup(p.fd));
	zc_cmd_info(p.fd, &info);
	EXPECT_FALSE(info.state & ZCHAN_STATE_CONSUMER_OPEN);
	EXPECT_LE(3, info.waits);
	close(p.fd);
	/*
	 * The end went with the process's descriptors; its file goes when
	 * the dying rings drop their requests, asynchronously.
	 */
	EXPECT_TRUE(zc_stat_becomes("channels", channels_before, 30));
	EXPECT_TRUE(zc_stat_becomes("uring_waits", 0, 30));
}

TEST(exec_with_pending_uring_wait)
{
	struct zc_end p = { .producer = true };
	pid_t pid;

	p.fd = zc_open();
	ASSERT_LE(0, p.fd);
	zc_cmd_create(p.fd, NULL, 0, 0, 0, 0600, &p.l);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		struct zchan_peer_fd pf = { .flags = ZCHAN_PEER_FD_CLOEXEC };
		struct io_uring ring;

		if (zc_ioctl(p.fd, ZCHAN_IOC_PEER_FD, &pf) ||
		    io_uring_queue_init(8, &ring, 0) ||
		    zc_submit_zcmd(&ring, pf.fd, ZCHAN_URING_CMD_WAIT, 0, 0, 1))
			_exit(70);
		/* execve() cancels the task's io_uring requests first. */
		execl("/bin/true", "true", (char *)NULL);
		_exit(71);
	}
	/* The exec goes through (the harness timeout catches a hang). */
	zc_child_exits(pid, 0);
	close(p.fd);
}

/* ---------------------------------------------------------------------
 * Limits.
 */
struct saved_param {
	const char *name;
	char val[64];
};

FIXTURE(limits) {
	struct saved_param params[3];
	long long pages_before, channels_before;
};

FIXTURE_SETUP(limits)
{
	static const char * const names[] = {
		"max_channels_per_user", "max_pool_bytes", "max_user_pool_bytes",
	};
	int i;

	for (i = 0; i < 3; i++) {
		self->params[i].name = names[i];
		ASSERT_EQ(0, zc_param_get(names[i], self->params[i].val,
					  sizeof(self->params[i].val)));
	}
	self->pages_before = zc_stat("pages");
	self->channels_before = zc_stat("channels");
	ASSERT_LE(0, self->pages_before);
}

FIXTURE_TEARDOWN(limits)
{
	int i;

	for (i = 0; i < 3; i++)
		zc_param_set(self->params[i].name, self->params[i].val);
}

TEST_F(limits, channels_per_user)
{
	char name[ZCHAN_NAME_MAX];
	int fds[3], i;

	zc_name(name, "lim");
	ASSERT_EQ(0, zc_param_set("max_channels_per_user", "2"));
	for (i = 0; i < 3; i++) {
		fds[i] = zc_open();
		ASSERT_LE(0, fds[i]);
	}
	zc_cmd_create(fds[0], NULL, 0, 0, 0, 0600, NULL);
	zc_cmd_create(fds[1], NULL, 0, 0, 0, 0600, NULL);
	zc_err_create(ENOSPC, fds[2], name, 0, 0, 0, 0600);
	/* Nothing of the refused channel is left: not its name either. */
	close(fds[0]);
	EXPECT_EQ(0, _zc_create(fds[2], name, 0, 0, 0, 0600, NULL));
	close(fds[1]);
	close(fds[2]);
	EXPECT_EQ(self->pages_before, zc_stat("pages"));
	EXPECT_EQ(self->channels_before, zc_stat("channels"));
}

TEST_F(limits, pool_bytes)
{
	char val[64];
	int a = zc_open(), b = zc_open();

	ASSERT_LE(0, a);
	ASSERT_LE(0, b);
	snprintf(val, sizeof(val), "%ld", 16 * page_size);
	ASSERT_EQ(0, zc_param_set("max_pool_bytes", val));
	zc_err_create(ENOMEM, a, NULL, 16 * page_size + 1, 0, 0, 0600);
	snprintf(val, sizeof(val), "%ld", 24 * page_size);
	ASSERT_EQ(0, zc_param_set("max_user_pool_bytes", val));
	zc_cmd_create(a, NULL, 16 * page_size, 0, 0, 0600, NULL);
	zc_err_create(ENOMEM, b, NULL, 16 * page_size, 0, 0, 0600);
	EXPECT_EQ(0, _zc_create(b, NULL, 8 * page_size, 0, 0, 0600, NULL));
	close(a);
	close(b);
	EXPECT_EQ(self->pages_before, zc_stat("pages"));
	EXPECT_EQ(self->channels_before, zc_stat("channels"));
}

/*
 * The UAPI's limits hold whatever the parameters say, and a pool too large
 * is -ENOMEM (never -EINVAL from a derived max_msg).  Nothing here is
 * allocated: every case fails in the geometry check.
 */
TEST_F(limits, uapi_limits)
{
	int fd = zc_open();

	ASSERT_LE(0, fd);
	/* 16 GiB with the default max_msg: above max_pool_bytes. */
	zc_err_create(ENOMEM, fd, NULL, 16ULL << 30, 0, 0, 0600);
	ASSERT_EQ(0, zc_param_set("max_pool_bytes", "4611686018427387904"));
	zc_err_create(ENOMEM, fd, NULL, ZCHAN_POOL_SIZE_MAX + 1, 0, 0, 0600);
	zc_err_create(ENOMEM, fd, NULL, ~0ULL, 0, 0, 0600);
	zc_err_create(EINVAL, fd, NULL, 4ULL << 30, 0, ZCHAN_MSG_MAX + 1, 0600);
	zc_err_create(EINVAL, fd, NULL, 0, ZCHAN_RING_ENTRIES_MAX << 1, 0,
		      0600);
	/* The largest ring is allowed. */
	zc_cmd_create(fd, NULL, 0, ZCHAN_RING_ENTRIES_MAX, 0, 0600, NULL);
	close(fd);
}

/*
 * Pool pages are in no process's RSS: the default limits must be a share of
 * RAM, so one user cannot make the OOM killer shoot unrelated processes.
 */
TEST_F(limits, defaults_are_a_share_of_ram)
{
	unsigned long long ram, pool, user;
	struct sysinfo si;
	char val[64];

	ASSERT_EQ(0, sysinfo(&si));
	ram = (unsigned long long)si.totalram * si.mem_unit;
	ASSERT_EQ(0, zc_param_get("max_pool_bytes", val, sizeof(val)));
	pool = strtoull(val, NULL, 10);
	ASSERT_EQ(0, zc_param_get("max_user_pool_bytes", val, sizeof(val)));
	user = strtoull(val, NULL, 10);
	EXPECT_LT(0ULL, pool);
	EXPECT_LE(pool, ram / 8);
	EXPECT_LE(pool, 1ULL << 30);
	EXPECT_LT(0ULL, user);
	EXPECT_LE(user, ram / 4);
	EXPECT_LE(user, 4ULL << 30);
}

/* ---------------------------------------------------------------------
 * Who keeps an end open: the processes that use it (ZCHAN_IOC_USE).
 */
TEST(use_bad_args)
{
	struct zchan_use u = { 0 };
	int fd = zc_open(), c;

	ASSERT_LE(0, fd);
	/* No role yet. */
	zc_err_use(EINVAL, fd, 0);
	zc_cmd_create(fd, NULL, 0, 0, 0, 0600, NULL);
	zc_err_use(EINVAL, fd, ZCHAN_USE_END << 1);
	zc_err_use(EINVAL, fd, 1U << 31);
	u.resv = 1;
	zc_err_ioctl(EINVAL, fd, ZCHAN_IOC_USE, &u);
	u.resv = 0;
	u.reserved[1] = 1;
	zc_err_ioctl(EINVAL, fd, ZCHAN_IOC_USE, &u);
	zc_err_ioctl(EFAULT, fd, ZCHAN_IOC_USE, (void *)8);
	/* CREATE made us a user already; saying so again is harmless. */
	zc_cmd_use(fd, 0);
	EXPECT_TRUE(zc_state(fd) & ZCHAN_STATE_PRODUCER_OPEN);
	/* A peer file nobody used: ending a use that never began is a no-op. */
	c = _zc_peer_fd(fd, ZCHAN_PEER_FD_CLOEXEC);
	ASSERT_LE(0, c);
	zc_cmd_use(c, ZCHAN_USE_END);
	EXPECT_TRUE(zc_state(fd) & ZCHAN_STATE_CONSUMER_OPEN);
	/* The last user stops: released although its descriptor is open. */
	zc_cmd_use(fd, ZCHAN_USE_END);
	EXPECT_EQ(ZCHAN_STATE_CONSUMER_OPEN, zc_state(fd));
	EXPECT_TRUE(zc_poll(c, POLLIN) & POLLHUP);
	/* A released end cannot be used again; stopping again is a no-op. */
	zc_err_use(EPIPE, fd, 0);
	zc_cmd_use(fd, ZCHAN_USE_END);
	close(c);
	close(fd);

	/* Nor can it make a consumer. */
	fd = zc_open();
	ASSERT_LE(0, fd);
	zc_cmd_create(fd, NULL, 0, 0, 0, 0600, NULL);
	zc_cmd_use(fd, ZCHAN_USE_END);
	zc_err_peer_fd(EPIPE, fd, 0);
	close(fd);
}

TEST(use_ends_with_the_last_descriptor_of_the_table)
{
	int p = zc_open(), c, d;

	ASSERT_LE(0, p);
	zc_cmd_create(p, NULL, 0, 0, 0, 0600, NULL);
	c = _zc_peer_fd(p, ZCHAN_PEER_FD_CLOEXEC);
	ASSERT_LE(0, c);
	d = dup(p);
	ASSERT_LE(0, d);
	/* Another descriptor of the end remains: still in use. */
	close(p);
	EXPECT_TRUE(zc_state(c) & ZCHAN_STATE_PRODUCER_OPEN);
	EXPECT_FALSE(zc_poll(c, POLLIN) & POLLHUP);
	/* The last one: released at once. */
	close(d);
	EXPECT_FALSE(zc_state(c) & ZCHAN_STATE_PRODUCER_OPEN);
	EXPECT_TRUE(zc_poll(c, POLLIN) & POLLHUP);
	close(c);
}

/* A child that holds inherited copies and never uses them (S1). */
TEST_F(chan, use_inherited_unused_copy_does_not_hold)
{
	int go[2];
	pid_t pid;

	ASSERT_EQ(0, pipe(go));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		close(go[1]);
		zc_await(go[0]);	/* EOF: the parent is done */
		_exit(0);
	}
	close(go[0]);
	/* The producer sends, then closes; its child still holds copies. */
	ASSERT_EQ(0, zc_send_n(&self->p, 0, 3));
	zc_unmap(&self->p);
	close(self->p.fd);
	self->p.fd = -1;
	EXPECT_FALSE(zc_state(self->c.fd) & ZCHAN_STATE_PRODUCER_OPEN);
	EXPECT_EQ(0, zc_recv_check(&self->c, 0, 3));
	EXPECT_EQ(-EPIPE, zc_recv_check(&self->c, 3, 1));
	ASSERT_EQ(0, kill(pid, 0));	/* the copies were still there */
	close(go[1]);
	zc_child_exits(pid, 0);
}

/* A child closes, or exits with, the copies it inherited (S2). */
TEST_F(chan, use_inherited_copy_closed_or_exited_ends_nothing)
{
	pid_t pid;

	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		close(self->p.fd);	/* ... and exits holding the consumer */
		_exit(0);
	}
	zc_child_exits(pid, 0);
	EXPECT_EQ(ZCHAN_STATE_PRODUCER_OPEN | ZCHAN_STATE_CONSUMER_OPEN |
		  ZCHAN_STATE_NAMED, zc_state(self->p.fd));
	ASSERT_EQ(0, zc_send_n(&self->p, 0, 3));
	EXPECT_EQ(0, zc_recv_check(&self->c, 0, 3));
}

/* The parent hands the end to a child that uses it, then closes (S4). */
TEST_F(chan, use_child_that_uses_keeps_the_end)
{
	int ready[2], go[2];
	pid_t pid;

	ASSERT_EQ(0, pipe(ready));
	ASSERT_EQ(0, pipe(go));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		if (_zc_use(self->p.fd, 0))
			_exit(10);
		zc_signal(ready[1]);
		if (zc_await(go[0]))
			_exit(11);
		/* The inherited mappings carry the stream on. */
		_exit(zc_send_n(&self->p, 0, 20) ? 12 : 0);
	}
	ASSERT_EQ(0, zc_await(ready[0]));
	zc_unmap(&self->p);
	close(self->p.fd);
	self->p.fd = -1;
	EXPECT_TRUE(zc_state(self->c.fd) & ZCHAN_STATE_PRODUCER_OPEN);
	zc_signal(go[1]);
	EXPECT_EQ(0, zc_recv_check(&self->c, 0, 20));
	/* When the child is done (exit), the stream ends. */
	EXPECT_EQ(-EPIPE, zc_recv_check(&self->c, 20, 1));
	zc_child_exits(pid, 0);
}

/* The producer is killed while a child of it holds its copies (S3). */
TEST(use_sigkill_with_child_holding_copies)
{
	struct zc_end c = { .producer = false };
	char name[ZCHAN_NAME_MAX];
	int ready[2], go[2];
	pid_t pid, holder;

	zc_name(name, "kill");
	ASSERT_EQ(0, prctl(PR_SET_CHILD_SUBREAPER, 1));
	ASSERT_EQ(0, pipe(ready));
	ASSERT_EQ(0, pipe(go));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		struct zc_end p = { .producer = true };

		p.fd = zc_open();
		if (p.fd < 0 || _zc_create(p.fd, name, 0, 16, 0, 0600, &p.l) ||
		    zc_map(&p))
			_exit(20);
		holder = fork();
		if (holder < 0)
			_exit(21);
		if (!holder) {
			pause();	/* holds every inherited copy */
			_exit(22);
		}
		if (write(ready[1], &holder, sizeof(holder)) != sizeof(holder) ||
		    zc_await(go[0]) || zc_send_n(&p, 0, 5))
			_exit(23);
		zc_signal(ready[1]);
		pause();
		_exit(24);
	}
	ASSERT_EQ(sizeof(holder), read(ready[0], &holder, sizeof(holder)));
	c.fd = zc_open();
	ASSERT_LE(0, c.fd);
	zc_cmd_attach(c.fd, name, &c.l);
	ASSERT_EQ(0, zc_map(&c));
	zc_signal(go[1]);
	ASSERT_EQ(0, zc_await(ready[0]));
	ASSERT_EQ(0, kill(pid, SIGKILL));
	zc_child_killed(pid, SIGKILL);
	/* Everything sent, then the end (the harness timeout catches a hang). */
	EXPECT_EQ(0, zc_recv_check(&c, 0, 5));
	EXPECT_EQ(-EPIPE, zc_recv_check(&c, 5, 1));
	EXPECT_EQ(0, kill(holder, 0));
	ASSERT_EQ(0, kill(holder, SIGKILL));
	zc_child_killed(holder, SIGKILL);
	zc_unmap(&c);
	close(c.fd);
	prctl(PR_SET_CHILD_SUBREAPER, 0);
}

/*
 * execve(): a close-on-exec descriptor is closed, which ends the use; a
 * descriptor kept across exec keeps it (the new image holds it).
 */
static void exec_consumer(struct __test_metadata *_metadata, bool cloexec)
{
	struct zc_end p = { .producer = true };
	char name[ZCHAN_NAME_MAX];
	int ready[2];
	pid_t pid;

	zc_name(name, cloexec ? "exec1" : "exec0");
	p.fd = zc_open();
	ASSERT_LE(0, p.fd);
	zc_cmd_create(p.fd, name, 0, 0, 0, 0600, &p.l);
	ASSERT_EQ(0, pipe2(ready, O_CLOEXEC));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		int c = zc_open();

		close(ready[0]);
		if (c < 0 || _zc_attach(c, name, NULL))
			_exit(30);
		if (!cloexec && fcntl(c, F_SETFD, 0))
			_exit(31);
		/* ready[1] closes on a successful exec: EOF for the parent */
		execl("/bin/sleep", "sleep", "600", (char *)NULL);
		_exit(32);
	}
	close(ready[1]);
	EXPECT_EQ(-1, zc_await(ready[0]));	/* EOF: exec'd */
	if (cloexec) {
		EXPECT_TRUE(wait_hup(p.fd));
	} else {
		EXPECT_EQ(ZCHAN_STATE_PRODUCER_OPEN | ZCHAN_STATE_CONSUMER_OPEN |
			  ZCHAN_STATE_NAMED, zc_state(p.fd));
	}
	ASSERT_EQ(0, kill(pid, 0));	/* the exec'd image still runs */
	ASSERT_EQ(0, kill(pid, SIGKILL));
	zc_child_killed(pid, SIGKILL);
	EXPECT_TRUE(wait_hup(p.fd));
	close(ready[0]);
	close(p.fd);
}

TEST(use_exec_closes_cloexec_use)
{
	exec_consumer(_metadata, true);
}

TEST(use_exec_keeps_inherited_use)
{
	exec_consumer(_metadata, false);
}

/* ---------------------------------------------------------------------
 * ZCHAN_CREATE_PUBLISH_ON_CLOSE: nothing committed is lost at the
 * producer's release, whatever loans are outstanding.
 *
 * ops: S = send (commit a message), L = take a loan (a SKIP placeholder
 * below alloc), H = a hostile alloc word.  The producer then closes, or
 * is killed; the consumer must get every message sent, in order.
 */
FIXTURE(poc) {
	char name[ZCHAN_NAME_MAX];
};

FIXTURE_VARIANT(poc) {
	const char *ops;
	bool flag;		/* ZCHAN_CREATE_PUBLISH_ON_CLOSE */
	bool kill;		/* SIGKILL instead of close() */
	unsigned int expect;	/* bit i: message i arrives */
};

FIXTURE_VARIANT_ADD(poc, send_loan_send_close) {
	.ops = "SLS", .flag = true, .expect = 0x5,
};
FIXTURE_VARIANT_ADD(poc, loan_send_send_close) {
	.ops = "LSS", .flag = true, .expect = 0x6,
};
FIXTURE_VARIANT_ADD(poc, send_send_loan_close) {
	.ops = "SSL", .flag = true, .expect = 0x3,
};
FIXTURE_VARIANT_ADD(poc, loans_between_sends_kill) {
	.ops = "SLSLLS", .flag = true, .kill = true, .expect = 0x25,
};
FIXTURE_VARIANT_ADD(poc, loan_only_kill) {
	.ops = "L", .flag = true, .kill = true, .expect = 0,
};
FIXTURE_VARIANT_ADD(poc, hostile_alloc_publishes_nothing_more) {
	.ops = "SLSH", .flag = true, .expect = 0x1,
};
FIXTURE_VARIANT_ADD(poc, without_the_flag_alloc_is_ignored) {
	.ops = "SLS", .flag = false, .expect = 0x1,
};

FIXTURE_SETUP(poc)
{
	zc_name(self->name, "poc");
}

FIXTURE_TEARDOWN(poc)
{
}

/* The producer side of a variant, in a child: runs the ops, then ends. */
static void poc_producer(const FIXTURE_VARIANT(poc) *v, const char *name,
			 int ready, int go)
{
	struct zc_end p = { .producer = true };
	uint32_t tail = 0, alloc = 0, i;
	bool loaned[16] = { false };
	uint8_t msg[64];

	p.fd = zc_open();
	if (p.fd < 0 || _zc_create_flags(p.fd, name, 16 * 64, 16, 64, 0600,
					 v->flag ? ZCHAN_CREATE_PUBLISH_ON_CLOSE : 0,
					 &p.l) || zc_map(&p))
		_exit(40);
	zc_signal(ready);
	if (zc_await(go))
		_exit(41);
	for (i = 0; v->ops[i]; i++) {
		struct zchan_desc *d = zc_desc(p.prod, &p.l, alloc);

		if (v->ops[i] == 'H') {
			__atomic_store_n(&PROD(&p, alloc), tail + 17, __ATOMIC_RELEASE);
			continue;
		}
		d->off = alloc * 64;
		if (v->ops[i] == 'S') {
			d->len = zc_msg(i, sizeof(msg), msg);
			memcpy(p.pool + d->off, msg, d->len);
			__atomic_store_n(&d->flags, 0, __ATOMIC_RELEASE);
		} else {
			d->len = 0;
			__atomic_store_n(&d->flags, ZCHAN_DESC_SKIP, __ATOMIC_RELEASE);
			loaned[alloc] = true;
		}
		__atomic_store_n(&PROD(&p, alloc), ++alloc, __ATOMIC_RELEASE);
		/* Publish up to the first outstanding loan. */
		while (tail != alloc && !loaned[tail])
			tail++;
		__atomic_store_n(&PROD(&p, tail), tail, __ATOMIC_RELEASE);
	}
	if (_zc_kick(p.fd))
		_exit(42);
	if (v->kill) {
		zc_signal(ready);
		pause();
	}
	zc_unmap(&p);
	close(p.fd);
	_exit(0);
}

TEST_F(poc, committed_messages_survive_the_producer)
{
	struct zc_end c = { .producer = false };
	uint8_t got[64], want[64];
	int ready[2], go[2], ret;
	uint32_t i, len;
	pid_t pid;

	ASSERT_EQ(0, pipe(ready));
	ASSERT_EQ(0, pipe(go));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid)
		poc_producer(variant, self->name, ready[1], go[0]);
	ASSERT_EQ(0, zc_await(ready[0]));
	c.fd = zc_open();
	ASSERT_LE(0, c.fd);
	zc_cmd_attach(c.fd, self->name, &c.l);
	ASSERT_EQ(0, zc_map(&c));
	zc_signal(go[1]);
	if (variant->kill) {
		ASSERT_EQ(0, zc_await(ready[0]));
		ASSERT_EQ(0, kill(pid, SIGKILL));
	}
	if (variant->kill)
		zc_child_killed(pid, SIGKILL);
	else
		zc_child_exits(pid, 0);
	/* The messages sent arrive in order, loans are skipped, then EPIPE. */
	for (i = 0; variant->ops[i]; i++) {
		if (!(variant->expect & (1U << i)))
			continue;
		ASSERT_EQ(0, zc_recv(&c, got, &len)) TH_LOG("message %u", i);
		ASSERT_EQ(zc_msg(i, sizeof(want), want), len);
		EXPECT_EQ(0, memcmp(got, want, len));
	}
	ret = zc_recv(&c, got, &len);
	EXPECT_EQ(-EPIPE, ret);
	zc_unmap(&c);
	close(c.fd);
}

/* io_uring cancels a pending WAIT when its ring goes, where it can. */
TEST_F(chan, uring_cmd_wait_and_ring_exit)
{
	long long before = zc_stat("uring_waits");
	struct zchan_info info;
	struct io_uring ring;
	int dup_fd;

	zc_cmd_info(self->c.fd, &info);
	ASSERT_EQ(0, io_uring_queue_init(8, &ring, 0));
	ASSERT_EQ(0, zc_submit_zcmd(&ring, self->c.fd, ZCHAN_URING_CMD_WAIT, 0, 0, 1));
	EXPECT_EQ(before + 1, zc_stat("uring_waits"));
	io_uring_queue_exit(&ring);
	if (info.layout.features & ZCHAN_FEAT_URING_CANCEL) {
		EXPECT_TRUE(zc_stat_becomes("uring_waits", before, 30));
		return;
	}
	/* Without cancelable commands the WAIT stays until a close. */
	EXPECT_EQ(before + 1, zc_stat("uring_waits"));
	dup_fd = dup(self->c.fd);
	ASSERT_LE(0, dup_fd);
	close(dup_fd);
	EXPECT_TRUE(zc_stat_becomes("uring_waits", before, 30));
}

TEST(features_in_create_attach_and_info)
{
	struct zchan_layout pl, cl;
	char name[ZCHAN_NAME_MAX];
	struct zchan_info info;
	int p = zc_open(), c = zc_open(), none = zc_open();

	ASSERT_LE(0, p);
	ASSERT_LE(0, c);
	ASSERT_LE(0, none);
	zc_name(name, "feat");
	zc_cmd_create(p, name, 0, 0, 0, 0600, &pl);
	zc_cmd_attach(c, name, &cl);
	EXPECT_TRUE(pl.features & ZCHAN_FEAT_USE);
	EXPECT_EQ(pl.features, cl.features);
	zc_cmd_info(p, &info);
	EXPECT_EQ(pl.features, info.layout.features);
	/* Also without a role: a program can look before it creates. */
	zc_cmd_info(none, &info);
	EXPECT_EQ(ZCHAN_ROLE_NONE, info.role);
	EXPECT_EQ(pl.features, info.layout.features);
	EXPECT_EQ(0, info.layout.pool_size);
	close(none);
	close(c);
	close(p);
}

/* ---------------------------------------------------------------------
 * Module lifetime: keep this last, it unloads and reloads zchan.ko.
 */
static int delete_module(const char *name, int flags)
{
	return syscall(__NR_delete_module, name, flags) ? -errno : 0;
}

static int load_module(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), ret;

	if (fd < 0)
		return -errno;
	ret = syscall(__NR_finit_module, fd, "", 0) ? -errno : 0;
	close(fd);
	return ret;
}

/* $ZCHAN_KO, or the zchan.ko of this test's tree: TOP/module/zchan.ko. */
static int module_path(char *buf, size_t len)
{
	char exe[3800], *slash;
	const char *env = getenv("ZCHAN_KO");
	ssize_t n;
	int i;

	if (env && *env) {
		snprintf(buf, len, "%s", env);
		return 0;
	}
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n < 0)
		return -1;
	exe[n] = 0;
	for (i = 0; i < 3; i++) {	/* TOP/tests/module/zchan_test */
		slash = strrchr(exe, '/');
		if (!slash)
			return -1;
		*slash = 0;
	}
	snprintf(buf, len, "%s/module/zchan.ko", exe);
	return 0;
}

TEST(rmmod_refused_while_open)
{
	char ko[4096];
	int fd, ret, i;

	ASSERT_EQ(0, module_path(ko, sizeof(ko)));
	ASSERT_EQ(0, access(ko, R_OK)) {
		TH_LOG("no module at %s", ko);
	}
	fd = zc_open();
	ASSERT_LE(0, fd);
	ret = delete_module("zchan", O_NONBLOCK);
	EXPECT_TRUE(ret == -EBUSY || ret == -EAGAIN) {
		TH_LOG("delete_module while open: %d", ret);
	}
	/* A channel and a mapping, without the fd. */
	{
		struct zchan_layout l;
		void *m;

		zc_cmd_create(fd, NULL, 0, 0, 0, 0600, &l);
		m = mmap(NULL, l.pool_size, PROT_READ, MAP_SHARED, fd,
			 ZCHAN_OFF_POOL);
		ASSERT_NE(MAP_FAILED, m);
		close(fd);
		ret = delete_module("zchan", O_NONBLOCK);
		EXPECT_TRUE(ret == -EBUSY || ret == -EAGAIN);
		munmap(m, l.pool_size);
	}
	/* Earlier tests' io_uring teardown is asynchronous: allow for it. */
	for (i = 0; i < 500; i++) {
		ret = delete_module("zchan", O_NONBLOCK);
		if (ret != -EBUSY && ret != -EAGAIN)
			break;
		usleep(10000);
	}
	ASSERT_EQ(0, ret);
	EXPECT_NE(0, access(ZC_DEV, F_OK));
	ASSERT_EQ(0, load_module(ko));
	for (i = 0; i < 500 && access(ZC_DEV, F_OK); i++)
		usleep(10000);
	fd = zc_open();
	ASSERT_LE(0, fd);
	EXPECT_EQ(0, _zc_create(fd, NULL, 0, 0, 0, 0600, NULL));
	close(fd);
}

/* ---------------------------------------------------------------------
 * ZCHAN_IOC_SEND_PAGES: the producer's own pages, mapped read-only by the
 * consumer, unpinned when it unmaps them, completed through REAP.
 */

TEST_F(chan, send_pages_bad_args)
{
	struct zchan_send_pages sp = { 0 };
	struct zchan_completion comp;
	struct zchan_reap r = { 0 };
	uint8_t *buf = zc_payload_pages(2, 0);
	__u64 off;
	void *m;

	ASSERT_NE(NULL, buf);
	EXPECT_TRUE(self->p.l.features & ZCHAN_FEAT_SEND_PAGES);
	sp.addr = (uintptr_t)buf;
	sp.len = page_size;
	sp.flags = 1;
	zc_err_ioctl(EINVAL, self->p.fd, ZCHAN_IOC_SEND_PAGES, &sp);
	sp.flags = 0;
	sp.resv = 1;
	zc_err_ioctl(EINVAL, self->p.fd, ZCHAN_IOC_SEND_PAGES, &sp);
	sp.resv = 0;
	sp.reserved[2] = 1;
	zc_err_ioctl(EINVAL, self->p.fd, ZCHAN_IOC_SEND_PAGES, &sp);
	sp.reserved[2] = 0;
	sp.offset = 1;
	zc_err_ioctl(EINVAL, self->p.fd, ZCHAN_IOC_SEND_PAGES, &sp);
	zc_err_send_pages(EINVAL, self->p.fd, buf + 1, page_size, 0);
	zc_err_send_pages(EINVAL, self->p.fd, buf, page_size - 1, 0);
	zc_err_send_pages(EINVAL, self->p.fd, buf, 0, 0);
	zc_err_send_pages(EINVAL, self->p.fd, buf, ZCHAN_PAGES_MAX + page_size,
			  0);
	zc_err_send_pages(EINVAL, self->c.fd, buf, page_size, 0);
	/* Unmapped memory pins nothing. */
	ASSERT_EQ(0, munmap(buf + page_size, page_size));
	zc_err_send_pages(EFAULT, self->p.fd, buf, 2 * page_size, 0);
	EXPECT_EQ(0, zc_stat("pinned"));
	zc_err_ioctl(EFAULT, self->p.fd, ZCHAN_IOC_SEND_PAGES, (void *)8);

	r.addr = (uintptr_t)&comp;
	r.nr = 1;
	r.flags = 1;
	zc_err_ioctl(EINVAL, self->p.fd, ZCHAN_IOC_REAP, &r);
	r.flags = 0;
	r.reserved[1] = 1;
	zc_err_ioctl(EINVAL, self->p.fd, ZCHAN_IOC_REAP, &r);
	r.reserved[1] = 0;
	zc_err_ioctl(EINVAL, self->c.fd, ZCHAN_IOC_REAP, &r);
	EXPECT_EQ(0, _zc_reap(self->p.fd, &comp, 1));

	/* Only the consumer maps a transfer: read-only, whole, once. */
	zc_cmd_send_pages(self->p.fd, buf, page_size, 7, &off);
	EXPECT_LE(ZCHAN_OFF_PAGES, off);
	EXPECT_EQ(MAP_FAILED, mmap(NULL, page_size, PROT_READ, MAP_SHARED,
				   self->p.fd, off));
	EXPECT_EQ(MAP_FAILED, mmap(NULL, page_size, PROT_READ | PROT_WRITE,
				   MAP_SHARED, self->c.fd, off));
	EXPECT_EQ(MAP_FAILED, mmap(NULL, page_size, PROT_READ, MAP_PRIVATE,
				   self->c.fd, off));
	EXPECT_EQ(MAP_FAILED, mmap(NULL, 2 * page_size, PROT_READ, MAP_SHARED,
				   self->c.fd, off));
	EXPECT_EQ(MAP_FAILED, mmap(NULL, page_size, PROT_READ, MAP_SHARED,
				   self->c.fd, off + page_size));
	EXPECT_EQ(MAP_FAILED, mmap(NULL, page_size, PROT_READ, MAP_SHARED,
				   self->c.fd, off + ZCHAN_PAGES_MAX));
	m = mmap(NULL, page_size, PROT_READ, MAP_SHARED, self->c.fd, off);
	ASSERT_NE(MAP_FAILED, m);
	EXPECT_EQ(MAP_FAILED, mmap(NULL, page_size, PROT_READ, MAP_SHARED,
				   self->c.fd, off));
	EXPECT_EQ(0, munmap(m, page_size));
	ASSERT_EQ(1, _zc_reap(self->p.fd, &comp, 1));
	EXPECT_EQ(7, comp.cookie);
	EXPECT_EQ(0, comp.flags);
	munmap(buf, page_size);
}

TEST_F(chan, send_pages_read_only_mapping_and_completion)
{
	long before = zc_stat("pinned"), n = 4;
	uint8_t *buf = zc_payload_pages(n, 3);
	struct zchan_completion comp[4];
	__u64 off;
	uint8_t *m;

	ASSERT_NE(NULL, buf);
	zc_cmd_send_pages(self->p.fd, buf, n * page_size, 42, &off);
	EXPECT_EQ(before + n, zc_stat("pinned"));
	m = mmap(NULL, n * page_size, PROT_READ, MAP_SHARED, self->c.fd, off);
	ASSERT_NE(MAP_FAILED, m);
	EXPECT_TRUE(zc_payload_ok(m, n * page_size, 0, 3));
	/* The same pages, not a copy: the producer's later writes show. */
	buf[5] = 0xee;
	EXPECT_EQ(0xee, m[5]);
	/* Never writable. */
	EXPECT_TRUE(zc_write_segfaults(m + page_size));
	EXPECT_EQ(-1, mprotect(m, n * page_size, PROT_READ | PROT_WRITE));
	EXPECT_EQ(EACCES, errno);
	EXPECT_EQ(-1, madvise(m, n * page_size, MADV_DOFORK));
	/* Nothing completes while any piece is mapped. */
	ASSERT_EQ(0, munmap(m, page_size));
	EXPECT_EQ(0, zc_poll(self->p.fd, POLLPRI) & POLLPRI);
	EXPECT_EQ(0, _zc_reap(self->p.fd, comp, 4));
	EXPECT_TRUE(zc_payload_ok_at(m + 2 * page_size, page_size, 2 * page_size, 0, 3));
	ASSERT_EQ(0, munmap(m + 2 * page_size, page_size));
	EXPECT_EQ(0, _zc_reap(self->p.fd, comp, 4));
	EXPECT_EQ(before + n, zc_stat("pinned"));
	ASSERT_EQ(0, munmap(m + page_size, page_size));
	ASSERT_EQ(0, munmap(m + 3 * page_size, page_size));
	EXPECT_EQ(before, zc_stat("pinned"));
	/* A completion waits: EPOLLPRI on the producer's fd until reaped. */
	EXPECT_EQ(POLLPRI, zc_poll(self->p.fd, POLLPRI) & POLLPRI);
	EXPECT_EQ(0, zc_poll(self->c.fd, POLLPRI) & POLLPRI);
	ASSERT_EQ(1, _zc_reap(self->p.fd, comp, 4));
	EXPECT_EQ(0, zc_poll(self->p.fd, POLLPRI) & POLLPRI);
	EXPECT_EQ(42, comp[0].cookie);
	EXPECT_EQ(0, comp[0].flags);
	EXPECT_EQ(0, _zc_reap(self->p.fd, comp, 4));
	munmap(buf, n * page_size);
}

/* The producer unmaps its buffer, then dies: the consumer's view holds. */
TEST(send_pages_producer_unmaps_and_dies)
{
	long before = zc_stat("pinned"), n = 3;
	char name[ZCHAN_NAME_MAX];
	int offp[2], go[2], c;
	__u64 off;
	uint8_t *m;
	pid_t pid;

	zc_name(name, "spdie");
	ASSERT_EQ(0, pipe(offp));
	ASSERT_EQ(0, pipe(go));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		uint8_t *buf = zc_payload_pages(n, 9);
		int p = zc_open();

		if (!buf || p < 0 || _zc_create(p, name, 0, 0, 0, 0600, NULL))
			_exit(50);
		if (_zc_send_pages(p, buf, n * page_size, 1, &off))
			_exit(51);
		/* The pin holds the pages, not the producer's mapping. */
		memset(buf, 0, n * page_size);
		munmap(buf, n * page_size);
		if (write(offp[1], &off, sizeof(off)) != sizeof(off))
			_exit(52);
		zc_await(go[0]);
		_exit(0);
	}
	ASSERT_EQ(sizeof(off), read(offp[0], &off, sizeof(off)));
	c = zc_open();
	ASSERT_LE(0, c);
	zc_cmd_attach(c, name, NULL);
	m = mmap(NULL, n * page_size, PROT_READ, MAP_SHARED, c, off);
	ASSERT_NE(MAP_FAILED, m);
	/* The producer zeroed the pages before it let go of them. */
	EXPECT_EQ(0, m[0]);
	EXPECT_EQ(0, m[n * page_size - 1]);
	zc_signal(go[1]);
	zc_child_exits(pid, 0);
	EXPECT_EQ(before + n, zc_stat("pinned"));
	EXPECT_EQ(0, m[page_size]);
	EXPECT_EQ(0, munmap(m, n * page_size));
	close(c);
	EXPECT_TRUE(zc_stat_becomes("pinned", before, 10));
}

/*
 * The producer forks after the handover: the child's writes go to its own
 * copy (pinned pages are copied for the child at fork), so the consumer
 * sees the parent's pages, and the parent's writes.
 */
TEST_F(chan, send_pages_producer_forks)
{
	struct zchan_completion comp;
	uint8_t *buf = zc_payload_pages(2, 4);
	__u64 off;
	uint8_t *m;
	pid_t pid;

	ASSERT_NE(NULL, buf);
	zc_cmd_send_pages(self->p.fd, buf, 2 * page_size, 5, &off);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		memset(buf, 0xff, 2 * page_size);
		_exit(0);
	}
	zc_child_exits(pid, 0);
	m = mmap(NULL, 2 * page_size, PROT_READ, MAP_SHARED, self->c.fd, off);
	ASSERT_NE(MAP_FAILED, m);
	EXPECT_TRUE(zc_payload_ok(m, 2 * page_size, 0, 4));
	buf[page_size] = 0xee;
	EXPECT_EQ(0xee, m[page_size]);
	ASSERT_EQ(0, munmap(m, 2 * page_size));
	ASSERT_EQ(1, _zc_reap(self->p.fd, &comp, 1));
	EXPECT_EQ(5, comp.cookie);
	EXPECT_EQ(0, comp.flags);
	munmap(buf, 2 * page_size);
}

/* The consumer dies holding one transfer and never mapping another. */
TEST(send_pages_consumer_dies)
{
	long before = zc_stat("pinned");
	struct zchan_completion comp[4];
	char name[ZCHAN_NAME_MAX];
	uint8_t *buf = zc_payload_pages(2, 1);
	int ready[2], p, i;
	struct pollfd pf;
	__u64 off[2];
	pid_t pid;

	ASSERT_NE(NULL, buf);
	zc_name(name, "spckill");
	p = zc_open();
	ASSERT_LE(0, p);
	zc_cmd_create(p, name, 0, 0, 0, 0600, NULL);
	zc_cmd_send_pages(p, buf, page_size, 10, &off[0]);
	zc_cmd_send_pages(p, buf + page_size, page_size, 11, &off[1]);
	ASSERT_EQ(0, pipe(ready));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		int c = zc_open();
		uint8_t *m;

		if (c < 0 || _zc_attach(c, name, NULL))
			_exit(50);
		m = mmap(NULL, page_size, PROT_READ, MAP_SHARED, c, off[0]);
		if (m == MAP_FAILED || !zc_payload_ok(m, page_size, 0, 1))
			_exit(51);
		zc_signal(ready[1]);
		pause();
		_exit(52);
	}
	ASSERT_EQ(0, zc_await(ready[0]));
	EXPECT_EQ(0, _zc_reap(p, comp, 4));
	ASSERT_EQ(0, kill(pid, SIGKILL));
	zc_child_killed(pid, SIGKILL);
	EXPECT_TRUE(zc_stat_becomes("pinned", before, 10));
	pf.fd = p;
	pf.events = POLLPRI;
	EXPECT_EQ(1, poll(&pf, 1, 10000));
	EXPECT_TRUE(pf.revents & POLLPRI);
	ASSERT_EQ(2, _zc_reap(p, comp, 4));
	for (i = 0; i < 2; i++) {
		EXPECT_TRUE(comp[i].cookie == 10 || comp[i].cookie == 11);
		EXPECT_EQ(ZCHAN_COMPL_ABORTED, comp[i].flags);
	}
	EXPECT_NE(comp[0].cookie, comp[1].cookie);
	zc_err_send_pages(EPIPE, p, buf, page_size, 12);
	EXPECT_EQ(before, zc_stat("pinned"));
	close(p);
	munmap(buf, 2 * page_size);
}

/* Transfers left when the channel goes are unpinned with it. */
TEST(send_pages_unmapped_freed_with_channel)
{
	long before = zc_stat("pinned");
	uint8_t *buf = zc_payload_pages(2, 0);
	int p = zc_open();

	ASSERT_NE(NULL, buf);
	ASSERT_LE(0, p);
	zc_cmd_create(p, NULL, 0, 0, 0, 0600, NULL);
	zc_cmd_send_pages(p, buf, 2 * page_size, 1, NULL);
	zc_cmd_send_pages(p, buf, page_size, 2, NULL);
	EXPECT_EQ(before + 3, zc_stat("pinned"));
	close(p);
	EXPECT_TRUE(zc_stat_becomes("pinned", before, 10));
	munmap(buf, 2 * page_size);
}

TEST_F(limits, pinned_bytes_and_transfers)
{
	long before = zc_stat("pinned");
	uint8_t *buf = zc_payload_pages(4, 0);
	struct zchan_completion comp[16];
	char val[64], saved[64];
	int p = zc_open(), i;

	ASSERT_NE(NULL, buf);
	ASSERT_LE(0, p);
	ASSERT_EQ(0, zc_param_get("max_user_pinned_bytes", saved, sizeof(saved)));
	zc_cmd_create(p, NULL, 0, 16, 0, 0600, NULL);
	snprintf(val, sizeof(val), "%ld", 4 * page_size);
	ASSERT_EQ(0, zc_param_set("max_user_pinned_bytes", val));
	zc_cmd_send_pages(p, buf, 3 * page_size, 1, NULL);
	zc_err_send_pages(ENOBUFS, p, buf, 2 * page_size, 2);
	EXPECT_EQ(before + 3, zc_stat("pinned"));
	zc_cmd_send_pages(p, buf, page_size, 3, NULL);
	zc_err_send_pages(ENOBUFS, p, buf, page_size, 4);
	ASSERT_EQ(0, zc_param_set("max_user_pinned_bytes", saved));
	/* At most ring_entries transfers not yet reaped. */
	for (i = 2; i < 16; i++)
		zc_cmd_send_pages(p, buf, page_size, 5, NULL);
	zc_err_send_pages(ENOBUFS, p, buf, page_size, 6);
	EXPECT_EQ(before + 3 + 15, zc_stat("pinned"));
	EXPECT_EQ(0, _zc_reap(p, comp, 16));
	close(p);
	EXPECT_TRUE(zc_stat_becomes("pinned", before, 10));
	EXPECT_EQ(self->channels_before, zc_stat("channels"));
	munmap(buf, 4 * page_size);
}

TEST_HARNESS_MAIN
