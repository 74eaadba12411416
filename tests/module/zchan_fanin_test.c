// SPDX-License-Identifier: GPL-2.0
/*
 * zchan.ko selftests of many-ended channels at the ioctl level: CREATE's
 * max_producers/max_consumers, ATTACH's and PEER_FD's role, INFO's counts
 * of ends, the lanes of a fan-in channel (ZCHAN_IOC_LANE, their mappings
 * and who may write them, wakeups from any lane, the end of the stream,
 * a killed producer's commits, limits) and every error path of them.
 * Runs as root in the test guest with zchan.ko loaded.
 *
 * The lanes are driven through the raw UAPI by a minimal ring user
 * written here (one message per slot, at the slot's place in the pool),
 * every word reached through the layout's offsets.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <linux/zchan.h>
#include <zchan.h>

#include "kselftest_harness.h"

/* TCG guests are slow: room for the streams. */
#undef TEST_TIMEOUT_DEFAULT
#define TEST_TIMEOUT_DEFAULT 180
#include "../common/zchan_test_utils.h"
#include "../common/zchan_test_proc.h"

static long page_size;

static void __attribute__((constructor)) zf_test_init(void)
{
	page_size = sysconf(_SC_PAGESIZE);
	zc_debugfs_ready();
}

/* A name unique to this test process. */
static void zf_name(char *buf, const char *tag)
{
	snprintf(buf, ZCHAN_NAME_MAX, "zf-%s-%d", tag, getpid());
}

/* CREATE with the many-ended fields: 0 or -errno. */
static int zf_create(int fd, const char *name, __u32 max_producers,
		     __u32 max_consumers, __u32 flags,
		     struct zchan_layout *l)
{
	struct zchan_create c;
	int ret;

	memset(&c, 0, sizeof(c));
	c.pool_size = 16 * page_size;
	c.ring_entries = 16;
	c.mode = 0600;
	c.flags = flags;
	c.max_producers = max_producers;
	c.max_consumers = max_consumers;
	if (name)
		zc_set_name(c.name, name);
	ret = zc_ioctl(fd, ZCHAN_IOC_CREATE, &c);
	if (!ret && l)
		*l = c.layout;
	return ret;
}

/* ATTACH with a role: 0 or -errno. */
static int zf_attach(int fd, const char *name, __u32 role,
		     struct zchan_layout *l)
{
	struct zchan_attach a;
	int ret;

	memset(&a, 0, sizeof(a));
	a.role = role;
	zc_set_name(a.name, name);
	ret = zc_ioctl(fd, ZCHAN_IOC_ATTACH, &a);
	if (!ret && l)
		*l = a.layout;
	return ret;
}

/* PEER_FD with a role: the new fd, or -errno. */
static int zf_peer_fd(int fd, __u32 role)
{
	struct zchan_peer_fd pf;
	int ret;

	memset(&pf, 0, sizeof(pf));
	pf.flags = ZCHAN_PEER_FD_CLOEXEC;
	pf.role = role;
	ret = zc_ioctl(fd, ZCHAN_IOC_PEER_FD, &pf);
	return ret ? ret : (int)pf.fd;
}

/* The poll(2) events of @fd now, without sleeping. */
static short zc_poll_revents(int fd, short events)
{
	struct pollfd pfd = { .fd = fd, .events = events };

	return poll(&pfd, 1, 0) < 0 ? -1 : pfd.revents;
}

static struct zchan_info zf_info(int fd)
{
	struct zchan_info info;

	memset(&info, 0, sizeof(info));
	if (zc_ioctl(fd, ZCHAN_IOC_INFO, &info))
		info.role = ~0U;
	return info;
}

TEST(create_ends_bad_args)
{
	struct zchan_info info;
	int fd = zc_open();

	ASSERT_LE(0, fd);
	EXPECT_EQ(-EINVAL, zf_create(fd, NULL, ZCHAN_ENDS_MAX + 1, 0, 0, NULL));
	EXPECT_EQ(-EINVAL, zf_create(fd, NULL, 0, ZCHAN_ENDS_MAX + 1, 0, NULL));
	EXPECT_EQ(-EINVAL, zf_create(fd, NULL, ~0U, ~0U, 0, NULL));
	/* Known but not built: after every -EINVAL. */
	EXPECT_EQ(-EOPNOTSUPP, zf_create(fd, NULL, 0, 2, 0, NULL));
	EXPECT_EQ(-EOPNOTSUPP, zf_create(fd, NULL, 0, ZCHAN_ENDS_MAX, 0, NULL));
	EXPECT_EQ(-EOPNOTSUPP,
		  zf_create(fd, NULL, 0, 0, ZCHAN_CREATE_BROADCAST, NULL));
	EXPECT_EQ(-EINVAL, zf_create(fd, NULL, 0, ZCHAN_ENDS_MAX + 1,
				     ZCHAN_CREATE_BROADCAST, NULL));
	EXPECT_EQ(-EINVAL, zf_create(fd, NULL, 0, 2,
				     ZCHAN_CREATE_BROADCAST << 1, NULL));
	/* None of that gave the fd a role. */
	info = zf_info(fd);
	EXPECT_EQ(ZCHAN_ROLE_NONE, info.role);
	/* 1 is 0: a 1:1 channel. */
	ASSERT_EQ(0, zf_create(fd, NULL, 1, 1, 0, NULL));
	info = zf_info(fd);
	EXPECT_EQ(1, info.max_producers);
	EXPECT_EQ(1, info.max_consumers);
	close(fd);
}

/* An old caller's zeroed fields: one end of each role, reported. */
TEST(info_counts_ends_of_a_1to1_channel)
{
	struct zchan_info info;
	int p = zc_open(), c;

	ASSERT_LE(0, p);
	ASSERT_EQ(0, zf_create(p, NULL, 0, 0, 0, NULL));
	info = zf_info(p);
	EXPECT_EQ(1, info.producers);
	EXPECT_EQ(0, info.consumers);
	EXPECT_EQ(1, info.max_producers);
	EXPECT_EQ(1, info.max_consumers);
	c = zf_peer_fd(p, 0);
	ASSERT_LE(0, c);
	info = zf_info(c);
	EXPECT_EQ(ZCHAN_ROLE_CONSUMER, info.role);
	EXPECT_EQ(1, info.producers);
	EXPECT_EQ(1, info.consumers);
	close(p);
	info = zf_info(c);
	EXPECT_EQ(0, info.producers);
	EXPECT_EQ(1, info.consumers);
	close(c);
	/* A file without a role counts nothing. */
	p = zc_open();
	info = zf_info(p);
	EXPECT_EQ(0, info.producers | info.consumers | info.max_producers |
		     info.max_consumers);
	close(p);
}

/*
 * The roles of a 1:1 channel are taken once: a second consumer is -EBUSY
 * (as before roles), a second producer -EUSERS (a full role), by name or
 * by PEER_FD, even after the first has gone.
 */
TEST(roles_of_a_1to1_channel_are_taken_once)
{
	char name[ZCHAN_NAME_MAX];
	int p = zc_open(), c = zc_open(), x = zc_open(), fd;

	ASSERT_LE(0, p);
	ASSERT_LE(0, c);
	ASSERT_LE(0, x);
	zf_name(name, "once");
	ASSERT_EQ(0, zf_create(p, name, 0, 0, 0, NULL));
	EXPECT_EQ(-EINVAL, zf_attach(x, name, ZCHAN_ROLE_CONSUMER + 1, NULL));
	EXPECT_EQ(-EINVAL, zf_attach(x, name, ZCHAN_ROLE_NONE + 3, NULL));
	EXPECT_EQ(-EUSERS, zf_attach(x, name, ZCHAN_ROLE_PRODUCER, NULL));
	EXPECT_EQ(-EUSERS, zf_peer_fd(p, ZCHAN_ROLE_PRODUCER));
	EXPECT_EQ(-EINVAL, zf_peer_fd(p, ZCHAN_ROLE_CONSUMER + 1));
	/* ZCHAN_ROLE_CONSUMER is 0's meaning, said. */
	ASSERT_EQ(0, zf_attach(c, name, ZCHAN_ROLE_CONSUMER, NULL));
	EXPECT_EQ(ZCHAN_ROLE_CONSUMER, zf_info(c).role);
	EXPECT_EQ(-EBUSY, zf_attach(x, name, 0, NULL));
	EXPECT_EQ(-EBUSY, zf_peer_fd(p, ZCHAN_ROLE_CONSUMER));
	/* A consumer makes no consumer; a producer of a 1:1 is taken. */
	EXPECT_EQ(-EINVAL, zf_peer_fd(c, ZCHAN_ROLE_CONSUMER));
	EXPECT_EQ(-EUSERS, zf_peer_fd(c, ZCHAN_ROLE_PRODUCER));
	close(c);
	EXPECT_EQ(-EBUSY, zf_attach(x, name, ZCHAN_ROLE_CONSUMER, NULL));
	/* Nothing above gave x a role. */
	EXPECT_EQ(ZCHAN_ROLE_NONE, zf_info(x).role);
	fd = zf_peer_fd(p, 0);
	EXPECT_EQ(-EBUSY, fd);
	close(x);
	close(p);
}

/* ---------------------------------------------------------------------
 * Lanes: a minimal ring user.
 */
#define ZF_ENTRIES	16U
#define ZF_MSG		64U	/* a message per slot, at slot * ZF_MSG */

struct zf_lane {
	struct zchan_layout l;
	void *prod;
	void *cons;
	uint8_t *pool;
};

/* Map a lane as the producer (@producer) or the consumer maps it. */
static int zf_map(int fd, const struct zchan_layout *l, bool producer,
		  struct zf_lane *m)
{
	int rw = PROT_READ | PROT_WRITE;

	m->l = *l;
	m->prod = mmap(NULL, l->prod_ring_size, producer ? rw : PROT_READ,
		       MAP_SHARED, fd, l->prod_ring_off);
	m->cons = mmap(NULL, l->cons_ring_size, producer ? PROT_READ : rw,
		       MAP_SHARED, fd, l->cons_ring_off);
	m->pool = mmap(NULL, l->pool_size, producer ? rw : PROT_READ,
		       MAP_SHARED, fd, l->pool_off);
	if (m->prod == MAP_FAILED || m->cons == MAP_FAILED ||
	    m->pool == MAP_FAILED)
		return -errno;
	return 0;
}

static void zf_unmap(struct zf_lane *m)
{
	munmap(m->prod, m->l.prod_ring_size);
	munmap(m->cons, m->l.cons_ring_size);
	munmap(m->pool, m->l.pool_size);
}

#define ZF_PROD(m, word)	ZC_PROD_WORD((m)->prod, &(m)->l, word)
#define ZF_CONS(m, word)	ZC_CONS_WORD((m)->cons, &(m)->l, word)

/* Write message (@who, @seq) into slot @i; publish it unless @hold. */
static void zf_write(struct zf_lane *m, uint32_t i, uint32_t who,
		     uint32_t seq)
{
	struct zchan_desc *d = zc_desc(m->prod, &m->l, i);
	uint32_t slot = i & (m->l.ring_entries - 1);
	uint32_t *payload = (uint32_t *)(m->pool + slot * ZF_MSG);

	payload[0] = who;
	payload[1] = seq;
	d->off = slot * ZF_MSG;
	d->len = 2 * sizeof(uint32_t);
	d->flags = 0;
}

/*
 * Send @n messages (@who, 0..n-1) on a producer's lane, waiting for room
 * with ZCHAN_IOC_WAIT and kicking the consumer when it waits: 0 or -errno.
 */
static int zf_send(int fd, struct zf_lane *m, uint32_t who, uint32_t n)
{
	uint32_t tail = ZF_PROD(m, tail), seq, head;
	int ret;

	for (seq = 0; seq < n; seq++) {
		while (tail - (head = __atomic_load_n(&ZF_CONS(m, head),
						      __ATOMIC_ACQUIRE)) >=
		       m->l.ring_entries) {
			/* Woken when the consumer's head moves past this. */
			__atomic_store_n(&ZF_PROD(m, head_seen), head,
					 __ATOMIC_RELEASE);
			ret = _zc_wait(fd, -1, NULL);
			if (ret)
				return ret;
			if (__atomic_load_n(&ZF_CONS(m, closed),
					    __ATOMIC_ACQUIRE))
				return -EPIPE;
		}
		zf_write(m, tail, who, seq);
		__atomic_store_n(&ZF_PROD(m, tail), ++tail, __ATOMIC_RELEASE);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		if (__atomic_load_n(&ZF_CONS(m, need_wakeup), __ATOMIC_RELAXED)) {
			ret = _zc_kick(fd);
			if (ret)
				return ret;
		}
	}
	return 0;
}

/* The consumer's lane @i (ZCHAN_IOC_LANE): 0 or -errno. */
static int zf_lane_info(int fd, uint32_t i, struct zchan_lane_info *li)
{
	memset(li, 0, sizeof(*li));
	li->index = i;
	return zc_ioctl(fd, ZCHAN_IOC_LANE, li);
}

static int zf_kick_lane(int fd, uint32_t lane)
{
	struct zchan_kick k = { .flags = ZCHAN_KICK_LANE, .lane = lane };

	return zc_ioctl(fd, ZCHAN_IOC_KICK, &k);
}

/* A fan-in channel's consumer, as the raw UAPI makes one. */
struct zf_consumer {
	int fd;
	uint32_t nr;			/* lanes mapped */
	struct zf_lane lanes[ZCHAN_ENDS_MAX * 2];
	uint32_t next_seq[ZCHAN_ENDS_MAX * 2];	/* by producer id */
	uint32_t got;
};

/* Map the lanes the consumer's lanes word counts beyond those known. */
static int zf_adopt(struct zf_consumer *c)
{
	uint32_t n = __atomic_load_n(&ZF_CONS(&c->lanes[0], lanes),
				     __ATOMIC_ACQUIRE);
	struct zchan_lane_info li;
	int ret;

	if (n > ZCHAN_ENDS_MAX * 2)
		return -E2BIG;
	while (c->nr < n) {
		ret = zf_lane_info(c->fd, c->nr, &li);
		if (ret)
			return ret;
		ret = zf_map(c->fd, &li.layout, false, &c->lanes[c->nr]);
		if (ret)
			return ret;
		c->nr++;
	}
	return 0;
}

/*
 * Take every message published in every lane, checking each producer's
 * order (message (who, seq) comes after (who, seq - 1)); release them and
 * kick the lanes whose producer waits.  How many were taken, or -errno.
 */
static int zf_drain(struct zf_consumer *c)
{
	uint32_t i, tail, read, who, seq, got = 0;
	struct zchan_desc *d;
	struct zf_lane *m;
	uint32_t *payload;
	int ret;

	ret = zf_adopt(c);
	if (ret)
		return ret;
	for (i = 0; i < c->nr; i++) {
		m = &c->lanes[i];
		tail = __atomic_load_n(&ZF_PROD(m, tail), __ATOMIC_ACQUIRE);
		read = ZF_CONS(m, read);
		if (tail - read > m->l.ring_entries)
			return -EPROTO;
		for (; read != tail; read++, got++) {
			d = zc_desc(m->prod, &m->l, read);
			if (d->flags & ZCHAN_DESC_SKIP)
				continue;
			if (d->len < 8 || d->len > m->l.max_msg ||
			    d->off > m->l.pool_size - d->len)
				return -EPROTO;
			payload = (uint32_t *)(m->pool + d->off);
			who = payload[0];
			seq = payload[1];
			if (who >= ZCHAN_ENDS_MAX * 2 || seq != c->next_seq[who])
				return -EILSEQ;
			c->next_seq[who]++;
			c->got++;
		}
		ZF_CONS(m, read) = read;
		__atomic_store_n(&ZF_CONS(m, head), read, __ATOMIC_RELEASE);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		if (__atomic_load_n(&ZF_PROD(m, need_wakeup), __ATOMIC_RELAXED)) {
			ret = zf_kick_lane(c->fd, i);
			if (ret)
				return ret;
		}
	}
	return got;
}

/*
 * Receive until the end of the stream: wait on the one fd (poll, or
 * ZCHAN_IOC_WAIT with @ioctl_wait) for any lane, drain; the end is
 * EPOLLHUP seen, then one more drain (lanes made before it included)
 * that finds nothing.  0 or -errno.
 */
static int zf_recv_all(struct zf_consumer *c, bool ioctl_wait)
{
	struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
	__u32 revents = 0;
	bool hup = false;
	int ret;

	for (;;) {
		ret = zf_drain(c);
		if (ret < 0)
			return ret;
		if (ret)
			continue;
		if (hup)
			return 0;
		if (ioctl_wait) {
			ret = _zc_wait(c->fd, -1, &revents);
			if (ret)
				return ret;
		} else {
			if (poll(&pfd, 1, -1) < 0)
				return -errno;
			revents = pfd.revents;
		}
		hup = revents & POLLHUP;
	}
}

static void zf_consumer_init(struct zf_consumer *c, int fd,
			     const struct zchan_layout *l)
{
	memset(c, 0, sizeof(*c));
	c->fd = fd;
	c->nr = 1;
	/* Lane 0 at the 1:1 offsets: mapped by the caller into lanes[0]. */
	c->lanes[0].l = *l;
}

static void zf_consumer_unmap(struct zf_consumer *c)
{
	uint32_t i;

	for (i = 0; i < c->nr; i++)
		zf_unmap(&c->lanes[i]);
}

/* A fan-in channel with a consumer: the producer's and consumer's fds. */
static void zf_fanin(struct __test_metadata *_metadata, const char *name,
		     __u32 max_producers, __u32 flags, int *p, int *c,
		     struct zchan_layout *l)
{
	*p = zc_open();
	ASSERT_LE(0, *p);
	ASSERT_EQ(0, zf_create(*p, name, max_producers, 0, flags, l));
	*c = zf_peer_fd(*p, ZCHAN_ROLE_CONSUMER);
	ASSERT_LE(0, *c);
}

TEST(fanin_feature_and_lane_words)
{
	struct zchan_lane_info li;
	struct zchan_layout l;
	struct zchan_info info;
	int p, c;

	zf_fanin(_metadata, NULL, 4, 0, &p, &c, &l);
	EXPECT_TRUE(l.features & ZCHAN_FEAT_FANIN);
	EXPECT_EQ(offsetof(struct zchan_cons_ring, lanes), l.cons_lanes);
	info = zf_info(c);
	EXPECT_EQ(4, info.max_producers);
	EXPECT_EQ(1, info.producers);
	EXPECT_FALSE(info.state & ZCHAN_STATE_PUBLISH_ON_CLOSE);
	/* Lane 0 is the 1:1 channel's, at its offsets. */
	ASSERT_EQ(0, zf_lane_info(c, 0, &li));
	EXPECT_EQ(1, li.lanes);
	EXPECT_EQ(ZCHAN_LANE_OPEN, li.state);
	EXPECT_EQ(0, memcmp(&li.layout, &l, sizeof(l)));
	EXPECT_EQ(-ENOENT, zf_lane_info(c, 1, &li));
	EXPECT_EQ(-ENOENT, zf_lane_info(c, ~0U, &li));
	/* Bad arguments; the consumer's only. */
	memset(&li, 0, sizeof(li));
	li.flags = ZCHAN_LANE_DROP << 1;
	EXPECT_EQ(-EINVAL, zc_ioctl(c, ZCHAN_IOC_LANE, &li));
	li.flags = 0;
	li.reserved[1] = 1;
	EXPECT_EQ(-EINVAL, zc_ioctl(c, ZCHAN_IOC_LANE, &li));
	EXPECT_EQ(-EFAULT, zc_ioctl(c, ZCHAN_IOC_LANE, (void *)8));
	EXPECT_EQ(-EINVAL, zf_lane_info(p, 0, &li));
	close(p);
	p = zc_open();
	EXPECT_EQ(-EINVAL, zf_lane_info(p, 0, &li));
	close(p);
	close(c);
}

/*
 * Producers join by name and by PEER_FD from any end, each with a lane;
 * a full role is -EUSERS and has room again when a producer goes; the
 * consumer's lanes word and ZCHAN_IOC_LANE count every lane made.
 */
TEST(fanin_producers_join_until_full)
{
	struct zchan_layout l, l1, l2;
	struct zchan_lane_info li;
	char name[ZCHAN_NAME_MAX];
	struct zchan_info info;
	struct zf_lane m0;
	int p, c, a, b, x;

	zf_name(name, "join");
	zf_fanin(_metadata, name, 3, 0, &p, &c, &l);
	ASSERT_EQ(0, zf_map(c, &l, false, &m0));
	EXPECT_EQ(1, ZF_CONS(&m0, lanes));
	a = zc_open();
	ASSERT_EQ(0, zf_attach(a, name, ZCHAN_ROLE_PRODUCER, &l1));
	EXPECT_EQ(ZCHAN_ROLE_PRODUCER, zf_info(a).role);
	EXPECT_EQ(2, ZF_CONS(&m0, lanes));
	EXPECT_EQ(ZCHAN_OFF_LANE(1) + l.prod_ring_off, l1.prod_ring_off);
	EXPECT_EQ(ZCHAN_OFF_LANE(1) + l.pool_off, l1.pool_off);
	info = zf_info(a);
	EXPECT_EQ(0, memcmp(&info.layout, &l1, sizeof(l1)));
	/* From the consumer. */
	b = zf_peer_fd(c, ZCHAN_ROLE_PRODUCER);
	ASSERT_LE(0, b);
	l2 = zf_info(b).layout;
	EXPECT_EQ(ZCHAN_OFF_LANE(2) + l.cons_ring_off, l2.cons_ring_off);
	EXPECT_EQ(3, zf_info(c).producers);
	/* Full: by name, from a producer, from the consumer. */
	x = zc_open();
	EXPECT_EQ(-EUSERS, zf_attach(x, name, ZCHAN_ROLE_PRODUCER, NULL));
	EXPECT_EQ(-EUSERS, zf_peer_fd(a, ZCHAN_ROLE_PRODUCER));
	EXPECT_EQ(-EUSERS, zf_peer_fd(c, ZCHAN_ROLE_PRODUCER));
	EXPECT_EQ(ZCHAN_ROLE_NONE, zf_info(x).role);
	EXPECT_EQ(3, ZF_CONS(&m0, lanes));
	/* The consumer is taken once: a full role of a many-ended one. */
	EXPECT_EQ(-EUSERS, zf_attach(x, name, ZCHAN_ROLE_CONSUMER, NULL));
	EXPECT_EQ(-EUSERS, zf_peer_fd(a, ZCHAN_ROLE_CONSUMER));
	/* A producer goes: its lane closes, its place comes back. */
	close(a);
	ASSERT_EQ(0, zf_lane_info(c, 1, &li));
	EXPECT_EQ(ZCHAN_LANE_CLOSED, li.state);
	EXPECT_EQ(2, zf_info(c).producers);
	ASSERT_EQ(0, zf_attach(x, name, ZCHAN_ROLE_PRODUCER, &l1));
	EXPECT_EQ(ZCHAN_OFF_LANE(3) + l.prod_ring_off, l1.prod_ring_off);
	EXPECT_EQ(4, ZF_CONS(&m0, lanes));
	ASSERT_EQ(0, zf_lane_info(c, 3, &li));
	EXPECT_EQ(4, li.lanes);
	EXPECT_EQ(ZCHAN_LANE_OPEN, li.state);
	EXPECT_EQ(0, memcmp(&li.layout, &l1, sizeof(l1)));
	zf_unmap(&m0);
	close(x);
	close(b);
	close(p);
	close(c);
}

/*
 * Who maps what: a producer its own lane only (writable where it writes),
 * the consumer every lane, its producer ring and pool never writable.
 */
TEST(fanin_lane_mapping_permissions)
{
	struct zchan_layout l, l1;
	struct zf_lane m;
	void *v;
	size_t i;
	int p, c, a;

	zf_fanin(_metadata, NULL, 2, 0, &p, &c, &l);
	a = zf_peer_fd(p, ZCHAN_ROLE_PRODUCER);
	ASSERT_LE(0, a);
	l1 = zf_info(a).layout;
	ASSERT_EQ(0, zf_map(a, &l1, true, &m));
	/* Fresh lane pages are zero. */
	for (i = 0; i < l1.pool_size && !m.pool[i]; i++)
		;
	EXPECT_EQ(l1.pool_size, i);
	for (i = 0; i < l1.prod_ring_size && !((uint8_t *)m.prod)[i]; i++)
		;
	EXPECT_EQ(l1.prod_ring_size, i);
	zf_unmap(&m);
	/* Its consumer ring is the consumer's. */
	v = mmap(NULL, l1.cons_ring_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		 a, l1.cons_ring_off);
	EXPECT_EQ(MAP_FAILED, v);
	EXPECT_EQ(EACCES, errno);
	/* Lane 0 is another producer's: not even read-only. */
	v = mmap(NULL, l.prod_ring_size, PROT_READ, MAP_SHARED, a,
		 l.prod_ring_off);
	EXPECT_EQ(MAP_FAILED, v);
	EXPECT_EQ(EACCES, errno);
	v = mmap(NULL, l.pool_size, PROT_READ | PROT_WRITE, MAP_SHARED, a,
		 l.pool_off);
	EXPECT_EQ(MAP_FAILED, v);
	EXPECT_EQ(EACCES, errno);
	/* Nor lane 1 for lane 0's producer. */
	v = mmap(NULL, l1.pool_size, PROT_READ, MAP_SHARED, p, l1.pool_off);
	EXPECT_EQ(MAP_FAILED, v);
	EXPECT_EQ(EACCES, errno);
	/* The consumer: lane 1 read-only where the producer writes... */
	v = mmap(NULL, l1.prod_ring_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		 c, l1.prod_ring_off);
	EXPECT_EQ(MAP_FAILED, v);
	EXPECT_EQ(EACCES, errno);
	v = mmap(NULL, l1.pool_size, PROT_READ | PROT_WRITE, MAP_SHARED, c,
		 l1.pool_off);
	EXPECT_EQ(MAP_FAILED, v);
	EXPECT_EQ(EACCES, errno);
	ASSERT_EQ(0, zf_map(c, &l1, false, &m));
	/* ... and cannot become writable. */
	EXPECT_EQ(-1, mprotect(m.pool, l1.pool_size, PROT_READ | PROT_WRITE));
	EXPECT_EQ(-1, mprotect(m.prod, l1.prod_ring_size,
			       PROT_READ | PROT_WRITE));
	zf_unmap(&m);
	/* A lane not made yet, or a wrong length: -EINVAL. */
	v = mmap(NULL, l1.pool_size, PROT_READ, MAP_SHARED, c,
		 ZCHAN_OFF_LANE(2) + l.pool_off);
	EXPECT_EQ(MAP_FAILED, v);
	EXPECT_EQ(EINVAL, errno);
	v = mmap(NULL, page_size, PROT_READ, MAP_SHARED, c, l1.pool_off);
	EXPECT_EQ(MAP_FAILED, v);
	EXPECT_EQ(EINVAL, errno);
	v = mmap(NULL, page_size, PROT_READ, MAP_SHARED, c,
		 ZCHAN_OFF_LANE(1) + page_size);
	EXPECT_EQ(MAP_FAILED, v);
	EXPECT_EQ(EINVAL, errno);
	close(a);
	close(p);
	close(c);
}

struct zf_child {
	int fd;
	uint32_t who;
	uint32_t n;
	int ready;	/* a pipe's write end: a byte once it holds the end */
};

/*
 * A producer child: hold its end (an inherited copy does not keep the end
 * open, see ZCHAN_IOC_USE), say so, map its lane, send n messages, exit
 * (0 or 100+).
 */
static int zf_producer_child(void *arg)
{
	struct zf_child *ch = arg;
	struct zchan_info info = zf_info(ch->fd);
	struct zf_lane m;
	int ret;

	if (info.role != ZCHAN_ROLE_PRODUCER)
		return 101;
	if (_zc_use(ch->fd, 0) || write(ch->ready, "r", 1) != 1)
		return 104;
	if (zf_map(ch->fd, &info.layout, true, &m))
		return 102;
	ret = zf_send(ch->fd, &m, ch->who, ch->n);
	return ret ? 103 : 0;
}

FIXTURE(stream) {
	int p, c;
	struct zchan_layout l;
};

FIXTURE_VARIANT(stream) {
	bool ioctl_wait;
	uint32_t producers;
};

FIXTURE_VARIANT_ADD(stream, poll_4) {
	.ioctl_wait = false, .producers = 4,
};

FIXTURE_VARIANT_ADD(stream, wait_ioctl_3) {
	.ioctl_wait = true, .producers = 3,
};

FIXTURE_SETUP(stream)
{
	zf_fanin(_metadata, NULL, variant->producers, 0, &self->p, &self->c,
		 &self->l);
}

FIXTURE_TEARDOWN(stream)
{
	close(self->p);
	close(self->c);
}

/*
 * Several producers (forked, each with its own lane) send at once; the
 * consumer waits on its one fd for any lane, gets every message in each
 * producer's order, and sees the end only once every producer is gone.
 */
TEST_F(stream, every_message_in_each_producers_order)
{
	struct zf_child ch[ZCHAN_ENDS_MAX];
	uint32_t i, n = 1000;
	struct zf_consumer *c;
	pid_t pids[ZCHAN_ENDS_MAX];
	int ready[2];
	char byte;

	c = calloc(1, sizeof(*c));
	ASSERT_NE(NULL, c);
	ASSERT_EQ(0, pipe(ready));
	for (i = 0; i < variant->producers; i++) {
		ch[i].fd = i ? zf_peer_fd(i & 1 ? self->c : self->p,
					  ZCHAN_ROLE_PRODUCER) : self->p;
		ASSERT_LE(0, ch[i].fd);
		ch[i].who = i;
		ch[i].n = n;
		ch[i].ready = ready[1];
		pids[i] = zc_spawn(zf_producer_child, &ch[i]);
		ASSERT_LT(0, pids[i]);
		if (i)
			close(ch[i].fd);
	}
	/* Every child holds its end: this copy of lane 0's may go. */
	for (i = 0; i < variant->producers; i++)
		ASSERT_EQ(1, read(ready[0], &byte, 1));
	close(ready[0]);
	close(ready[1]);
	close(self->p);
	self->p = -1;
	zf_consumer_init(c, self->c, &self->l);
	ASSERT_EQ(0, zf_map(self->c, &self->l, false, &c->lanes[0]));
	ASSERT_EQ(0, zf_recv_all(c, variant->ioctl_wait));
	for (i = 0; i < variant->producers; i++) {
		EXPECT_EQ(0, zc_child_wait(pids[i], 60));
		EXPECT_EQ(n, c->next_seq[i]);
	}
	EXPECT_EQ(n * variant->producers, c->got);
	EXPECT_EQ(variant->producers, c->nr);
	EXPECT_EQ(0, zf_info(self->c).producers);
	zf_consumer_unmap(c);
	free(c);
}

/*
 * PUBLISH_ON_CLOSE per lane: a producer killed mid-stream with committed
 * messages below its alloc word keeps them; its lane closes; the consumer
 * has no end of the stream while another producer lives, and the other
 * producer carries on.
 */
TEST(fanin_sigkill_of_a_producer_keeps_its_commits)
{
	struct zchan_layout l, l1;
	struct zchan_lane_info li;
	struct zf_consumer *c;
	struct zf_lane m;
	int p, cfd, a, pipefd[2], status;
	uint32_t i;
	char byte;
	pid_t pid;

	c = calloc(1, sizeof(*c));
	ASSERT_NE(NULL, c);
	zf_fanin(_metadata, NULL, 2, ZCHAN_CREATE_PUBLISH_ON_CLOSE, &p, &cfd,
		 &l);
	a = zf_peer_fd(p, ZCHAN_ROLE_PRODUCER);
	ASSERT_LE(0, a);
	/* A joining producer learns to keep its alloc word. */
	EXPECT_TRUE(zf_info(a).state & ZCHAN_STATE_PUBLISH_ON_CLOSE);
	ASSERT_EQ(0, pipe(pipefd));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		/* Publish 3, commit 5 more behind alloc only, then hang. */
		l1 = zf_info(a).layout;
		if (zf_map(a, &l1, true, &m))
			_exit(1);
		if (zf_send(a, &m, 1, 3))
			_exit(2);
		for (i = 3; i < 8; i++)
			zf_write(&m, i, 1, i);
		__atomic_store_n(&ZF_PROD(&m, alloc), 8, __ATOMIC_RELEASE);
		if (write(pipefd[1], "x", 1) != 1)
			_exit(3);
		pause();
		_exit(4);
	}
	close(a);
	close(pipefd[1]);
	ASSERT_EQ(1, read(pipefd[0], &byte, 1));
	close(pipefd[0]);
	zf_consumer_init(c, cfd, &l);
	ASSERT_EQ(0, zf_map(cfd, &l, false, &c->lanes[0]));
	ASSERT_EQ(0, kill(pid, SIGKILL));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	/* Its lane is closed with everything it committed published. */
	ASSERT_EQ(0, zf_lane_info(cfd, 1, &li));
	EXPECT_EQ(ZCHAN_LANE_CLOSED, li.state);
	EXPECT_EQ(8, zf_drain(c));
	EXPECT_EQ(8, c->next_seq[1]);
	EXPECT_EQ(1, __atomic_load_n(&ZF_PROD(&c->lanes[1], closed),
				     __ATOMIC_ACQUIRE));
	/* No hang-up while lane 0's producer lives; it carries on. */
	EXPECT_EQ(0, zc_poll_revents(cfd, POLLIN) & POLLHUP);
	EXPECT_EQ(1, zf_info(cfd).producers);
	ASSERT_EQ(0, zf_map(p, &l, true, &m));
	ASSERT_EQ(0, zf_send(p, &m, 0, 5));
	EXPECT_EQ(POLLIN, zc_poll_revents(cfd, POLLIN));
	EXPECT_EQ(5, zf_drain(c));
	zf_unmap(&m);
	close(p);
	EXPECT_EQ(POLLHUP, zc_poll_revents(cfd, POLLIN));
	EXPECT_EQ(13, c->got);
	zf_consumer_unmap(c);
	free(c);
	close(cfd);
}

/*
 * The end of the stream is final: once every producer is gone the
 * consumer hangs up, and no producer joins, by name or by PEER_FD.
 */
TEST(fanin_end_of_stream_is_final)
{
	char name[ZCHAN_NAME_MAX];
	struct zchan_layout l;
	int p, c, a, x;

	zf_name(name, "eos");
	zf_fanin(_metadata, name, 3, 0, &p, &c, &l);
	a = zf_peer_fd(p, ZCHAN_ROLE_PRODUCER);
	ASSERT_LE(0, a);
	close(p);
	EXPECT_EQ(0, zc_poll_revents(c, POLLIN));
	close(a);
	EXPECT_EQ(POLLHUP, zc_poll_revents(c, POLLIN));
	EXPECT_EQ(-EPIPE, zf_peer_fd(c, ZCHAN_ROLE_PRODUCER));
	/* The name stays while the consumer is open; the stream ended. */
	x = zc_open();
	EXPECT_EQ(-EPIPE, zf_attach(x, name, ZCHAN_ROLE_PRODUCER, NULL));
	EXPECT_EQ(-EUSERS, zf_attach(x, name, ZCHAN_ROLE_CONSUMER, NULL));
	close(c);
	/* With the consumer, the name is gone. */
	EXPECT_EQ(-ENOENT, zf_attach(x, name, ZCHAN_ROLE_PRODUCER, NULL));
	close(x);
}

/*
 * A dead consumer: every producer sees its peer closed (EPOLLERR and
 * EPOLLHUP, the closed word of its lane), and no producer joins.
 */
TEST(fanin_consumer_death_reaches_every_producer)
{
	char name[ZCHAN_NAME_MAX];
	struct zchan_layout l, l1;
	struct zf_lane m0, m1;
	int p, c, a, x;

	zf_name(name, "cdeath");
	zf_fanin(_metadata, name, 2, 0, &p, &c, &l);
	a = zc_open();
	ASSERT_EQ(0, zf_attach(a, name, ZCHAN_ROLE_PRODUCER, &l1));
	ASSERT_EQ(0, zf_map(p, &l, true, &m0));
	ASSERT_EQ(0, zf_map(a, &l1, true, &m1));
	EXPECT_EQ(POLLOUT, zc_poll_revents(a, POLLOUT));
	close(c);
	EXPECT_EQ(POLLOUT | POLLERR | POLLHUP, zc_poll_revents(p, POLLOUT));
	EXPECT_EQ(POLLOUT | POLLERR | POLLHUP, zc_poll_revents(a, POLLOUT));
	EXPECT_EQ(1, ZF_CONS(&m0, closed));
	EXPECT_EQ(1, ZF_CONS(&m1, closed));
	x = zc_open();
	EXPECT_EQ(-EPIPE, zf_attach(x, name, ZCHAN_ROLE_PRODUCER, NULL));
	EXPECT_EQ(-EPIPE, zf_peer_fd(a, ZCHAN_ROLE_PRODUCER));
	EXPECT_EQ(ZCHAN_ROLE_NONE, zf_info(x).role);
	zf_unmap(&m0);
	zf_unmap(&m1);
	close(x);
	close(a);
	close(p);
}

/*
 * Kicks: a producer's wakes the consumer's one fd whatever its lane;
 * the consumer's wakes one lane's producer (ZCHAN_KICK_LANE) or all.
 */
TEST(fanin_kicks_and_waits)
{
	struct zchan_kick k = { 0 };
	struct zchan_layout l, l1;
	struct zf_lane m1, c1;
	__u32 revents = 0;
	int p, c, a;

	zf_fanin(_metadata, NULL, 2, 0, &p, &c, &l);
	a = zf_peer_fd(p, ZCHAN_ROLE_PRODUCER);
	ASSERT_LE(0, a);
	l1 = zf_info(a).layout;
	ASSERT_EQ(0, zf_map(a, &l1, true, &m1));
	ASSERT_EQ(0, zf_map(c, &l1, false, &c1));
	/* Bad kicks. */
	k.flags = ZCHAN_KICK_LANE << 1;
	EXPECT_EQ(-EINVAL, zc_ioctl(c, ZCHAN_IOC_KICK, &k));
	k.flags = 0;
	k.lane = 1;		/* a lane without the flag */
	EXPECT_EQ(-EINVAL, zc_ioctl(c, ZCHAN_IOC_KICK, &k));
	EXPECT_EQ(-EINVAL, zf_kick_lane(c, 2));
	EXPECT_EQ(-EINVAL, zf_kick_lane(a, 0));	/* a producer's */
	/* Nothing yet: the consumer's wait times out, its words armed. */
	EXPECT_EQ(-ETIMEDOUT, _zc_wait(c, 1000000, NULL));
	EXPECT_EQ(1, ZF_CONS(&c1, need_wakeup));
	/* Lane 1 publishes: the consumer's fd is ready. */
	ASSERT_EQ(0, zf_send(a, &m1, 1, 1));
	EXPECT_EQ(0, ZF_CONS(&c1, need_wakeup));	/* the kick cleared it */
	ASSERT_EQ(0, _zc_wait(c, 1000000000, &revents));
	EXPECT_EQ(POLLIN | POLLRDNORM, revents);
	/* The consumer's kick of lane 1 clears its producer's word. */
	ZF_PROD(&m1, need_wakeup) = 1;
	EXPECT_EQ(0, zf_kick_lane(c, 1));
	EXPECT_EQ(0, ZF_PROD(&m1, need_wakeup));
	ZF_PROD(&m1, need_wakeup) = 1;
	EXPECT_EQ(0, _zc_kick(c));
	EXPECT_EQ(0, ZF_PROD(&m1, need_wakeup));
	zf_unmap(&m1);
	zf_unmap(&c1);
	close(a);
	close(p);
	close(c);
}

/*
 * A lane made while the consumer sleeps: its first message wakes the
 * consumer (its need_wakeup in the new lane starts set).
 */
TEST(fanin_new_lane_wakes_a_sleeping_consumer)
{
	struct zchan_layout l, l1;
	struct zf_lane m0, m1;
	int p, c, a, i;
	__u32 revents;
	pid_t pid;

	zf_fanin(_metadata, NULL, 2, 0, &p, &c, &l);
	ASSERT_EQ(0, zf_map(p, &l, true, &m0));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		revents = 0;
		if (_zc_wait(c, 30000000000LL, &revents))
			_exit(1);
		_exit(revents == (POLLIN | POLLRDNORM) ? 0 : 2);
	}
	/* Until the consumer sleeps in its WAIT (ZCHAN_FEAT_RUN_STATE). */
	for (i = 0; i < 30000; i++) {
		if (ZCHAN_RUN_STATE(__atomic_load_n(&ZF_CONS(&m0, state),
						    __ATOMIC_ACQUIRE)) ==
		    ZCHAN_RUN_SLEEPING)
			break;
		usleep(1000);
	}
	a = zf_peer_fd(p, ZCHAN_ROLE_PRODUCER);
	ASSERT_LE(0, a);
	l1 = zf_info(a).layout;
	ASSERT_EQ(0, zf_map(a, &l1, true, &m1));
	EXPECT_EQ(1, ZF_CONS(&m1, need_wakeup));
	ASSERT_EQ(0, zf_send(a, &m1, 1, 1));
	EXPECT_EQ(0, zc_child_wait(pid, 60));
	zf_unmap(&m0);
	zf_unmap(&m1);
	close(a);
	close(p);
	close(c);
}

/*
 * libzchan's kernel backend: zchan_attach() of a producer, and
 * zchan_send_end() of one received with zchan_recv_peer() in another
 * process, each get a lane; their messages reach the consumer in each
 * producer's order, and zchan_ends() counts the module's ends.
 */
static int zf_lib_send(struct zchan *p, uint32_t who, uint32_t n)
{
	uint32_t msg[2] = { who, 0 };

	for (; msg[1] < n; msg[1]++)
		if (zchan_send(p, msg, sizeof(msg), 0) != sizeof(msg))
			return -1;
	return 0;
}

TEST(fanin_libzchan_producers_on_the_kernel_backend)
{
	char name[ZCHAN_NAME_MAX];
	struct zchan *p1, *p2, *x;
	struct zchan_attr attr;
	struct zf_consumer *c;
	struct zchan_layout l;
	struct zf_lane m0;
	int p, cfd, sv[2];
	pid_t pid;

	c = calloc(1, sizeof(*c));
	ASSERT_NE(NULL, c);
	zf_name(name, "lib");
	zf_fanin(_metadata, name, 3, ZCHAN_CREATE_PUBLISH_ON_CLOSE, &p, &cfd,
		 &l);
	ASSERT_EQ(0, zchan_attach(name, ZCHAN_ROLE_PRODUCER, &p1));
	EXPECT_EQ(ZCHAN_BACKEND_KERNEL, zchan_backend(p1));
	EXPECT_EQ(2, zchan_ends(p1, ZCHAN_ROLE_PRODUCER));
	EXPECT_EQ(1, zchan_ends(p1, ZCHAN_ROLE_CONSUMER));
	ASSERT_EQ(0, zchan_get_attr(p1, &attr));
	EXPECT_EQ(3, attr.max_producers);
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
	ASSERT_EQ(0, zchan_send_end(p1, ZCHAN_ROLE_PRODUCER, sv[0]));
	EXPECT_EQ(3, zchan_ends(p1, ZCHAN_ROLE_PRODUCER));
	/* Full. */
	EXPECT_EQ(-EUSERS, zchan_attach(name, ZCHAN_ROLE_PRODUCER, &x));
	EXPECT_EQ(-EUSERS, zchan_send_end(p1, ZCHAN_ROLE_PRODUCER, sv[0]));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		zchan_close(p1);
		close(p);
		close(cfd);
		if (zchan_recv_peer(sv[1], &p2))
			_exit(1);
		if (zf_lib_send(p2, 2, 300))
			_exit(2);
		zchan_close(p2);
		_exit(0);
	}
	close(sv[0]);
	close(sv[1]);
	/* Fewer than the ring holds: nobody receives yet. */
	ASSERT_EQ(0, zf_map(p, &l, true, &m0));
	ASSERT_EQ(0, zf_send(p, &m0, 0, 10));
	zf_unmap(&m0);
	close(p);
	EXPECT_EQ(0, zf_lib_send(p1, 1, 10));
	zchan_close(p1);
	zf_consumer_init(c, cfd, &l);
	ASSERT_EQ(0, zf_map(cfd, &l, false, &c->lanes[0]));
	ASSERT_EQ(0, zf_recv_all(c, false));
	EXPECT_EQ(0, zc_child_wait(pid, 120));
	EXPECT_EQ(10, c->next_seq[0]);
	EXPECT_EQ(10, c->next_seq[1]);
	EXPECT_EQ(300, c->next_seq[2]);
	EXPECT_EQ(3, c->nr);
	zf_consumer_unmap(c);
	free(c);
	close(cfd);
}

/*
 * ZCHAN_LANE_DROP: a lane whose producer corrupts it is dropped by the
 * consumer; it makes the consumer ready no more, its producer is told
 * (EPOLLERR | EPOLLHUP) and its place comes back; the other lanes go on.
 */
TEST(fanin_a_dropped_lane_is_released)
{
	struct zchan_layout l, l1;
	struct zchan_lane_info li;
	struct zf_lane m1;
	int p, c, a, b;

	zf_fanin(_metadata, NULL, 2, 0, &p, &c, &l);
	a = zf_peer_fd(p, ZCHAN_ROLE_PRODUCER);
	ASSERT_LE(0, a);
	l1 = zf_info(a).layout;
	ASSERT_EQ(0, zf_map(a, &l1, true, &m1));
	/* A hostile tail: the consumer's fd is ready for it. */
	ZF_PROD(&m1, tail) = 12345;
	EXPECT_EQ(POLLIN, zc_poll_revents(c, POLLIN));
	memset(&li, 0, sizeof(li));
	li.index = 1;
	li.flags = ZCHAN_LANE_DROP << 1;
	EXPECT_EQ(-EINVAL, zc_ioctl(c, ZCHAN_IOC_LANE, &li));
	li.flags = ZCHAN_LANE_DROP;
	EXPECT_EQ(-EINVAL, zc_ioctl(a, ZCHAN_IOC_LANE, &li));
	ASSERT_EQ(0, zc_ioctl(c, ZCHAN_IOC_LANE, &li));
	EXPECT_EQ(ZCHAN_LANE_DROPPED | ZCHAN_LANE_CLOSED, li.state);
	EXPECT_EQ(0, zc_poll_revents(c, POLLIN));
	EXPECT_EQ(POLLOUT | POLLERR | POLLHUP, zc_poll_revents(a, POLLOUT) |
						POLLOUT);
	EXPECT_EQ(1, __atomic_load_n(&ZF_PROD(&m1, closed), __ATOMIC_ACQUIRE));
	EXPECT_EQ(-EPIPE, zf_peer_fd(a, ZCHAN_ROLE_PRODUCER));
	/* Its place comes back; lane 0 goes on. */
	EXPECT_EQ(1, zf_info(c).producers);
	b = zf_peer_fd(p, ZCHAN_ROLE_PRODUCER);
	EXPECT_LE(0, b);
	close(b);
	zf_unmap(&m1);
	close(a);
	EXPECT_EQ(0, zc_poll_revents(c, POLLIN));
	close(p);
	EXPECT_EQ(POLLHUP, zc_poll_revents(c, POLLIN));
	close(c);
}

/* Every lane is charged to the channel's owner: max_user_pool_bytes. */
TEST(fanin_lanes_count_against_the_owners_pool_bytes)
{
	char old[64], val[64];
	struct zchan_layout l;
	int p, c, a;

	struct zc_stats st;
	int third;

	/* Nothing of ours is charged (an earlier test left nothing). */
	ASSERT_EQ(0, zc_wait_no_leaks(&st, 10));
	ASSERT_EQ(0, zc_param_get("max_user_pool_bytes", old, sizeof(old)));
	/* Room for two pools of 16 pages, and a few pages more. */
	snprintf(val, sizeof(val), "%ld", 36 * page_size);
	ASSERT_EQ(0, zc_param_set("max_user_pool_bytes", val));
	p = zc_open();
	c = -1;
	a = -1;
	third = -1;
	if (p >= 0 && !zf_create(p, NULL, 4, 0, 0, &l)) {
		c = zf_peer_fd(p, ZCHAN_ROLE_CONSUMER);
		a = zf_peer_fd(c, ZCHAN_ROLE_PRODUCER);
		third = zf_peer_fd(c, ZCHAN_ROLE_PRODUCER);
	}
	/* Put the limit back before anything can end the test. */
	ASSERT_EQ(0, zc_param_set("max_user_pool_bytes", old));
	EXPECT_LE(0, c);
	EXPECT_LE(0, a);
	EXPECT_EQ(-ENOMEM, third);
	EXPECT_EQ(2, zf_info(c).producers);
	close(a);
	close(p);
	close(c);
}

/* Transfers and their completions are one producer's: not on fan-in. */
TEST(fanin_send_pages_not_supported)
{
	struct zchan_layout l;
	struct zchan_completion comp;
	void *buf;
	int p, c;

	zf_fanin(_metadata, NULL, 2, 0, &p, &c, &l);
	buf = mmap(NULL, page_size, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, buf);
	EXPECT_EQ(-EOPNOTSUPP, _zc_send_pages(p, buf, page_size, 1, NULL));
	EXPECT_EQ(-EOPNOTSUPP, _zc_reap(p, &comp, 1));
	munmap(buf, page_size);
	close(p);
	close(c);
}

/* debugfs zchan/ends: a line per end, each lane's producer and the consumer. */
TEST(fanin_debugfs_lists_each_end)
{
	char line[256], want[64];
	struct zchan_layout l;
	int p, c, a, found = 0;
	long long id = -1;
	FILE *f;

	zf_fanin(_metadata, NULL, 2, 0, &p, &c, &l);
	a = zf_peer_fd(p, ZCHAN_ROLE_PRODUCER);
	ASSERT_LE(0, a);
	close(a);
	/* Our channel's id: the newest of the channels. */
	f = fopen("/sys/kernel/debug/zchan/ends", "r");
	ASSERT_NE(NULL, f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%lld", &id) == 1 && strstr(line, " consumer "))
			;
	fclose(f);
	ASSERT_LE(0, id);
	f = fopen("/sys/kernel/debug/zchan/ends", "r");
	ASSERT_NE(NULL, f);
	while (fgets(line, sizeof(line), f)) {
		snprintf(want, sizeof(want), "%lld producer 0 open ", id);
		found += !strncmp(line, want, strlen(want));
		snprintf(want, sizeof(want), "%lld producer 1 gone ", id);
		found += !strncmp(line, want, strlen(want)) << 4;
		snprintf(want, sizeof(want), "%lld consumer - open ", id);
		found += !strncmp(line, want, strlen(want)) << 8;
	}
	fclose(f);
	EXPECT_EQ(0x111, found);
	/* fdinfo names a fan-in producer's lane. */
	a = zf_peer_fd(p, ZCHAN_ROLE_PRODUCER);
	ASSERT_LE(0, a);
	snprintf(want, sizeof(want), "/proc/self/fdinfo/%d", a);
	f = fopen(want, "r");
	ASSERT_NE(NULL, f);
	found = 0;
	while (fgets(line, sizeof(line), f))
		found += !strcmp(line, "zchan-lane:\t2\n");
	fclose(f);
	EXPECT_EQ(1, found);
	close(a);
	close(p);
	close(c);
}

TEST_HARNESS_MAIN
