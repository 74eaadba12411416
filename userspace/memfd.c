// SPDX-License-Identifier: MIT OR LGPL-2.1
/*
 * The memfd backend's setup: anonymous channels without the module.
 *
 * The library computes the same struct zchan_layout as the module over two
 * sealed memfds: "zchan-prod" (producer ring at 0, pool after it, then
 * the producer's end page) and "zchan-cons" (consumer ring at 0, then the
 * consumer's end page).  The consumer gets the first one through a
 * read-only reopen, so it can only map it read-only.  Wakeups: one eventfd
 * per end.  Liveness: the end pages say which processes use each end
 * (holders.c), watched through pidfds; a socketpair, one end each, is the
 * fallback (a dead peer is a hang-up).  zchan_fd() is an epoll fd holding
 * our eventfd, our socket end and the pidfds of the peer's holders.
 */
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#if __has_include(<sys/rseq.h>)
#include <sys/rseq.h>
#endif

#include "zchan_int.h"

#ifndef F_ADD_SEALS
#define F_ADD_SEALS	(1024 + 9)
#define F_GET_SEALS	(1024 + 10)
#define F_SEAL_SEAL	0x0001
#define F_SEAL_SHRINK	0x0002
#define F_SEAL_GROW	0x0004
#endif

static void memfd_init(struct zchan *z)
{
	struct zchan_memfd *m = &z->memfd;
	unsigned int i;

	m->own_efd = m->peer_efd = m->sock = -1;
	for (i = 0; i < ZCHAN_MEMFD_NFDS; i++)
		m->peer_fds[i] = -1;
	m->holder_slot = -1;
	m->group_fd = -1;
	for (i = 0; i < ZCHAN_MEMFD_NFDS_MANY; i++)
		m->lane_fds[i] = -1;
}

static void close_fds(int *fds, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		__zchan_close_fd(&fds[i]);
}

static void memfd_free(struct zchan *z)
{
	struct zchan_memfd *m = &z->memfd;
	unsigned int i;

	__zchan_bcast_free(z);
	if (m->own_end)
		__sys_munmap(m->own_end, __zchan_page_size());
	if (m->peer_end)
		__sys_munmap(m->peer_end, __zchan_page_size());
	__zchan_holders_unwatch(z);
	__zchan_close_fd(&m->own_efd);
	__zchan_close_fd(&m->peer_efd);
	__zchan_close_fd(&m->sock);
	for (i = 0; i < ZCHAN_MEMFD_NFDS; i++)
		__zchan_close_fd(&m->peer_fds[i]);
	if (m->group)
		__sys_munmap(m->group, __zchan_page_size());
	__zchan_close_fd(&m->group_fd);
	close_fds(m->lane_fds, ZCHAN_MEMFD_NFDS_MANY);
}

static int memfd_region(const char *name, uint64_t size)
{
	int fd, ret;

	fd = __sys_memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return fd;
	/* sealed: nobody can shrink it under the other end's mapping */
	ret = __sys_ftruncate(fd, (off_t)size);
	if (!ret)
		ret = __sys_fcntl(fd, F_ADD_SEALS,
				  F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
	if (ret < 0) {
		__sys_close(fd);
		return ret;
	}
	return fd;
}

/* A sealed memfd of exactly @size bytes, else the peer is lying. */
static int memfd_check(int fd, uint64_t size)
{
	struct stat st;
	int seals, ret;

	ret = __sys_fstat(fd, &st);
	if (ret < 0)
		return ret;
	seals = __sys_fcntl(fd, F_GET_SEALS, 0);
	if (seals < 0 || !(seals & F_SEAL_SHRINK) || !S_ISREG(st.st_mode) ||
	    (uint64_t)st.st_size != size)
		return -EPROTO;
	return 0;
}

/* Read-only reopen: the consumer cannot map it writable. */
static int reopen_rdonly(int fd)
{
	char path[64];
	int ro;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ro = __sys_open(path, O_RDONLY | O_CLOEXEC);
	return ro >= 0 ? ro : __sys_fcntl(fd, F_DUPFD_CLOEXEC, 0);
}

/* ------------------------------------------------------------------ */
/* Many-ended channels: the group page                                 */

/* Several producers: lanes and the group page (broadcast is bcast.c's). */
static bool is_fanin(const struct zchan *z)
{
	return z->max_producers > 1;
}

/* Map the group page of memfd @fd, which z keeps (it is set to -1). */
static int group_map(struct zchan *z, int *fd)
{
	struct zchan_memfd_group *grp;
	int ret;

	ret = memfd_check(*fd, __zchan_page_size());
	if (ret)
		return ret;
	grp = __sys_mmap(NULL, __zchan_page_size(), PROT_READ | PROT_WRITE,
			 MAP_SHARED, *fd, 0);
	if (IS_ERR(grp))
		return (int)PTR_ERR(grp);
	z->memfd.group = grp;
	z->memfd.group_fd = *fd;
	*fd = -1;
	if (load_once(&grp->magic) != ZCHAN_MEMFD_GROUP_MAGIC ||
	    load_once(&grp->version) != ZCHAN_MEMFD_GROUP_VERSION)
		return -EPROTO;
	return 0;
}

/* A new channel's group page: one producer, the creator. */
static int group_create(struct zchan *z, const struct zchan_geom *g)
{
	struct zchan_memfd_group *grp;
	int fd, ret;

	fd = memfd_region("zchan-group", __zchan_page_size());
	if (fd < 0)
		return fd;
	grp = __sys_mmap(NULL, __zchan_page_size(), PROT_READ | PROT_WRITE,
			 MAP_SHARED, fd, 0);
	if (!IS_ERR(grp)) {
		grp->magic = ZCHAN_MEMFD_GROUP_MAGIC;
		grp->version = ZCHAN_MEMFD_GROUP_VERSION;
		grp->max_producers = g->max_producers;
		grp->max_consumers = g->max_consumers;
		grp->flags = g->flags;
		grp->producers = 1;
		__sys_munmap(grp, __zchan_page_size());
	}
	ret = IS_ERR(grp) ? (int)PTR_ERR(grp) : group_map(z, &fd);
	if (fd >= 0)
		__sys_close(fd);
	return ret;
}

/* Count a new producer end: -EUSERS if the channel has its maximum. */
static int group_reserve(struct zchan *z)
{
	uint32_t *w = &z->memfd.group->producers, old = load_once(w);

	do {
		if (old >= z->max_producers)
			return -EUSERS;
	} while (!__atomic_compare_exchange_n(w, &old, old + 1, false,
					      __ATOMIC_SEQ_CST,
					      __ATOMIC_RELAXED));
	return 0;
}

/* A producer end is gone (never below zero, whatever a peer wrote). */
static void group_unreserve(struct zchan *z)
{
	uint32_t *w, old;

	if (!z->memfd.group)
		return;
	w = &z->memfd.group->producers;
	old = load_once(w);
	while (old && !__atomic_compare_exchange_n(w, &old, old - 1, false,
						   __ATOMIC_SEQ_CST,
						   __ATOMIC_RELAXED))
		;
}

/*
 * Spinning for a peer helps only while the peer runs on another CPU (as a
 * kernel mutex spins only while its owner is on a CPU): each end says in
 * its end page whether it runs, is about to sleep or sleeps, and the CPU
 * it last ran on.  Hints, not a protocol: a word the peer got wrong, or
 * forged, costs a sleep or a spin of ZCHAN_SPIN_MAX_NS at most.
 */
static void set_run(struct zchan *z, uint32_t run)
{
	uint32_t *word = &z->memfd.own_end->run;

	if (load_once(word) != run)	/* our own line: keep it clean */
		store_once(word, run);
}

/*
 * The CPU we run on, plus one (0: unknown): rseq's cpu_id where glibc
 * registered rseq (a load), else sched_getcpu() (about 10 ns in a VM).
 */
static uint32_t this_cpu(void)
{
	int cpu = -1;

#ifdef RSEQ_SIG
	if (__rseq_size) {
		const struct rseq *rs = (const struct rseq *)
			((char *)__builtin_thread_pointer() + __rseq_offset);

		cpu = (int)load_once(&rs->cpu_id);
	}
#endif
	if (cpu < 0)
		cpu = sched_getcpu();
	return cpu < 0 ? 0 : (uint32_t)cpu + 1;
}

static void memfd_running(struct zchan *z)
{
	struct zchan_memfd *m = &z->memfd;
	uint32_t c = this_cpu();

	if (c != m->cpu) {
		m->cpu = c;
		store_once(&m->own_end->cpu, c);
	}
	set_run(z, ZCHAN_END_RUNNING);
}

/*
 * The peer runs, or will as soon as the kick we sent it lands (its wait's
 * generation is one we kicked), and not on our CPU (0: it never said
 * where).
 */
static bool memfd_can_spin(struct zchan *z)
{
	const struct zchan_memfd_end *peer = z->memfd.peer_end;
	uint32_t cpu = load_once(&peer->cpu), run, nw;

	if (cpu && cpu == z->memfd.cpu)
		return false;
	run = load_once(&peer->run);
	if (run == ZCHAN_END_RUNNING || run == ZCHAN_END_ARMED)
		return true;	/* armed: its re-check may still go on */
	nw = load_once(z->peer_need_wakeup);
	return nw && nw == z->memfd.kicked_gen;
}

/*
 * Say this end waits.  Our need_wakeup is a generation that only moves on
 * after a kick from the peer was drained, so it is always the peer's last
 * kicked generation or the one after it: the peer can never mistake a new
 * wait for one it already kicked, however often we arm.
 */
static void memfd_announce(struct zchan *z)
{
	if (z->memfd.kick_seen || !z->memfd.arm_gen) {
		if (++z->memfd.arm_gen == 0)
			z->memfd.arm_gen = 1;
		z->memfd.kick_seen = false;
	}
	store_once(z->own_need_wakeup, z->memfd.arm_gen);
	smp_mb();
}

static int memfd_epoll(struct zchan *z)
{
	struct epoll_event ev;
	int ret;

	ret = __sys_epoll_create1(EPOLL_CLOEXEC);
	if (ret < 0)
		return ret;
	z->fd = ret;
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.fd = z->memfd.own_efd;
	ret = __sys_epoll_ctl(z->fd, EPOLL_CTL_ADD, z->memfd.own_efd, &ev);
	if (ret < 0)
		return ret;
	ev.events = EPOLLRDHUP;
	ev.data.fd = z->memfd.sock;
	ret = __sys_epoll_ctl(z->fd, EPOLL_CTL_ADD, z->memfd.sock, &ev);
	if (ret < 0)
		return ret;
	/*
	 * Start armed, so the first event after setup kicks our epoll fd
	 * (the kernel's poll needs no such help).
	 */
	memfd_announce(z);
	memfd_running(z);
	return 0;
}

/* Where each end's page is in its memfd: after everything the layout maps. */
static uint64_t prod_end_off(const struct zchan_layout *l)
{
	return l->pool_off + l->pool_size;
}

static uint64_t cons_end_off(const struct zchan_layout *l)
{
	return l->cons_ring_off + l->cons_ring_size;
}

/*
 * Map our end's page writable and the peer's read-only, then count this
 * process as the first holder of its end.
 */
static int map_end_pages(struct zchan *z, int own_fd, uint64_t own_off,
			 int peer_fd, uint64_t peer_off)
{
	size_t ps = __zchan_page_size();
	void *own, *peer;

	own = __sys_mmap(NULL, ps, PROT_READ | PROT_WRITE, MAP_SHARED, own_fd,
			 (off_t)own_off);
	if (IS_ERR(own))
		return (int)PTR_ERR(own);
	z->memfd.own_end = own;
	peer = __sys_mmap(NULL, ps, PROT_READ, MAP_SHARED, peer_fd,
			  (off_t)peer_off);
	if (IS_ERR(peer))
		return (int)PTR_ERR(peer);
	z->memfd.peer_end = peer;
	z->memfd.own_end->magic = ZCHAN_MEMFD_END_MAGIC;
	z->memfd.own_end->version = ZCHAN_MEMFD_END_VERSION;
	z->memfd.own_end->pidns = __zchan_holders_pidns();
	return __zchan_holders_add(z);
}

/*
 * Both ends keep the producer's alloc word, as a module that publishes on
 * close does (ring.c): the producer writes it, and the consumer, once the
 * producer is gone, publishes up to it itself - nobody else is left to.
 */
static void map_alloc_word(struct zchan *z, const struct zchan_layout *l)
{
	z->alloc = (uint32_t *)((unsigned char *)z->prod_map + l->prod_alloc);
}

/* The end of the consumer ring's last word. */
static uint64_t cons_words_end(const struct zchan_layout *l)
{
	uint32_t words[] = { l->cons_head, l->cons_read, l->cons_need_wakeup,
			     l->cons_closed, l->cons_state };
	uint32_t end = 0;
	unsigned int i;

	for (i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (words[i] + sizeof(uint32_t) > end)
			end = words[i] + sizeof(uint32_t);
	return end;
}

static void memfd_layout(struct zchan_layout *l, const struct zchan_geom *g)
{
	memset(l, 0, sizeof(*l));
	l->pool_size = g->pool_size;
	l->ring_entries = g->entries;
	l->max_msg = g->max_msg;
	/* sized from the words' offsets, as the module sizes its rings */
	zchan_layout_set_words(l);
	l->prod_ring_off = 0;
	l->prod_ring_size = __zchan_page_align(l->prod_descs +
					     (uint64_t)g->entries *
					     sizeof(struct zchan_desc));
	l->cons_ring_off = 0;
	l->cons_ring_size = __zchan_page_align(cons_words_end(l));
	l->pool_off = l->prod_ring_size;
}

/* More pool than the machine has memory could never be backed. */
static bool pool_fits_memory(uint64_t pool_size)
{
	long pages = sysconf(_SC_PHYS_PAGES);

	return pages <= 0 || pool_size <= (uint64_t)pages * __zchan_page_size();
}

static int memfd_create_end(struct zchan *z, const char *name,
			    const struct zchan_geom *g)
{
	struct zchan_layout l;
	int prod_fd, cons_fd, sp[2], ret;

	if (!pool_fits_memory(g->pool_size))
		return -ENOMEM;
	memfd_layout(&l, g);
	prod_fd = memfd_region("zchan-prod",
			      prod_end_off(&l) + __zchan_page_size());
	if (prod_fd < 0)
		return prod_fd;
	cons_fd = memfd_region("zchan-cons",
			      cons_end_off(&l) + __zchan_page_size());
	if (cons_fd < 0) {
		__sys_close(prod_fd);
		return cons_fd;
	}
	ret = __zchan_map(z, prod_fd, cons_fd, prod_fd, &l);
	if (!ret) {
		map_alloc_word(z, &l);
		ret = map_end_pages(z, prod_fd, prod_end_off(&l), cons_fd,
				    cons_end_off(&l));
		if (!ret)
			z->memfd.own_end->layout = l;
	}
	if (!ret) {
		ret = reopen_rdonly(prod_fd);
		if (ret >= 0) {
			z->memfd.peer_fds[ZCHAN_MEMFD_PROD] = ret;
			ret = 0;
		}
	}
	__sys_close(prod_fd);
	z->memfd.peer_fds[ZCHAN_MEMFD_CONS] = cons_fd;
	if (ret)
		return ret;

	ret = __sys_eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (ret < 0)
		return ret;
	z->memfd.own_efd = ret;
	ret = __sys_eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (ret < 0)
		return ret;
	z->memfd.peer_efd = ret;
	/* non-blocking, as the consumer wants it: no fcntl() there */
	ret = __sys_socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC |
			       SOCK_NONBLOCK, 0, sp);
	if (ret < 0)
		return ret;
	z->memfd.sock = sp[0];
	z->memfd.peer_fds[ZCHAN_MEMFD_SOCK] = sp[1];
	if (z->max_producers > 1) {	/* fan-in: the group page */
		ret = group_create(z, g);
		if (ret)
			return ret;
	}
	ret = memfd_epoll(z);
	if (!ret && g->max_consumers > 1)	/* broadcast: bcast.c */
		ret = __zchan_bcast_init(z, cons_end_off(&l));
	return ret;
}

int __zchan_memfd_cons_region(const struct zchan_layout *l, uint64_t *end_off)
{
	*end_off = cons_end_off(l);
	return memfd_region("zchan-cons", *end_off + __zchan_page_size());
}

/* A copy of @fd in @to (-1 and the error if none). */
static int dup_fd(int fd, int *to)
{
	*to = __sys_fcntl(fd, F_DUPFD_CLOEXEC, 0);
	return *to < 0 ? *to : 0;
}

/*
 * A new lane of @z's channel, of its geometry: memfds, eventfds and a
 * socketpair, as the consumer's half (@cons) and the producer's (@prod),
 * ZCHAN_MEMFD_NFDS_MANY fds each, which the caller closes.  The
 * producer's end page gets the layout as memfd_create_end()'s does, and
 * memfd_attach() checks either half as it checks a consumer end.
 */
static int memfd_new_lane(struct zchan *z, int *cons, int *prod)
{
	const struct zchan_layout *l = &z->layout;
	struct zchan_memfd_end rec;
	int sp[2], ret, i;

	for (i = 0; i < ZCHAN_MEMFD_NFDS_MANY; i++)
		cons[i] = prod[i] = -1;
	prod[ZCHAN_MEMFD_PROD] = ret =
		memfd_region("zchan-prod", prod_end_off(l) + __zchan_page_size());
	if (ret < 0)
		return ret;
	cons[ZCHAN_MEMFD_CONS] = ret =
		memfd_region("zchan-cons", cons_end_off(l) + __zchan_page_size());
	if (ret < 0)
		return ret;
	memset(&rec, 0, sizeof(rec));
	rec.magic = ZCHAN_MEMFD_END_MAGIC;
	rec.version = ZCHAN_MEMFD_END_VERSION;
	rec.layout = *l;
	if (__sys_pwrite(prod[ZCHAN_MEMFD_PROD], &rec, sizeof(rec),
			 (off_t)prod_end_off(l)) != (ssize_t)sizeof(rec))
		return -EIO;
	cons[ZCHAN_MEMFD_PROD] = ret = reopen_rdonly(prod[ZCHAN_MEMFD_PROD]);
	if (ret < 0)
		return ret;
	prod[ZCHAN_MEMFD_CONS] = ret = reopen_rdonly(cons[ZCHAN_MEMFD_CONS]);
	if (ret < 0)
		return ret;
	prod[ZCHAN_MEMFD_OWN_EFD] = ret =
		__sys_eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (ret < 0)
		return ret;
	cons[ZCHAN_MEMFD_OWN_EFD] = ret =
		__sys_eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (ret < 0)
		return ret;
	ret = dup_fd(prod[ZCHAN_MEMFD_OWN_EFD], &cons[ZCHAN_MEMFD_PEER_EFD]);
	if (!ret)
		ret = dup_fd(cons[ZCHAN_MEMFD_OWN_EFD],
			     &prod[ZCHAN_MEMFD_PEER_EFD]);
	if (!ret)
		ret = dup_fd(z->memfd.group_fd, &cons[ZCHAN_MEMFD_GROUP]);
	if (!ret)
		ret = dup_fd(z->memfd.group_fd, &prod[ZCHAN_MEMFD_GROUP]);
	if (ret)
		return ret;
	ret = __sys_socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC |
			       SOCK_NONBLOCK, 0, sp);
	if (ret < 0)
		return ret;
	prod[ZCHAN_MEMFD_SOCK] = sp[0];
	cons[ZCHAN_MEMFD_SOCK] = sp[1];
	return 0;
}

static int memfd_attach(struct zchan *z, const struct zchan_layout *l, int *fds,
			unsigned int nfds);

/*
 * The consumer must know a lane before its producer end exists anywhere
 * else: the consumer end adds it itself; any other end sends its
 * consumer half over its own lane's liveness socket, which the consumer
 * reads (memfd_adopt_lanes()) before it concludes the end of the stream.
 */
static int announce_lane(struct zchan *z, int *cons)
{
	struct zchan *lane;
	int ret;

	if (z->role != ZCHAN_FANIN) {
		ret = __zchan_send_fds(z->memfd.sock, z, ZCHAN_ROLE_CONSUMER,
				       cons, ZCHAN_MEMFD_NFDS_MANY, &z->layout);
		if (!ret)
			__atomic_fetch_add(&z->memfd.group->lanes, 1,
					   __ATOMIC_SEQ_CST);
		return ret;
	}
	lane = __zchan_alloc(ZCHAN_CONSUMER, &__zchan_memfd_ops);
	if (!lane)
		return -ENOMEM;
	lane->max_producers = z->max_producers;
	lane->max_consumers = z->max_consumers;
	lane->chan_flags = z->chan_flags;
	ret = memfd_attach(lane, &z->layout, cons, ZCHAN_MEMFD_NFDS_MANY);
	if (ret) {
		__zchan_free(lane);
		return ret;
	}
	return __zchan_fanin_add(z, lane);	/* closes it if it fails */
}

/*
 * A new producer end: a lane, counted in the group page, announced, and
 * kept in lane_fds until it was sent (a failed send gives it again).
 */
static int memfd_new_producer(struct zchan *z, int *fds)
{
	int cons[ZCHAN_MEMFD_NFDS_MANY], ret;

	if (!z->memfd.group)
		return -EUSERS;		/* a 1:1 channel: its one producer */
	if (z->memfd.lane_fds[ZCHAN_MEMFD_PROD] < 0) {
		ret = group_reserve(z);
		if (ret)
			return ret;
		ret = memfd_new_lane(z, cons, z->memfd.lane_fds);
		if (!ret)
			ret = announce_lane(z, cons);
		close_fds(cons, ZCHAN_MEMFD_NFDS_MANY);
		if (ret) {
			close_fds(z->memfd.lane_fds, ZCHAN_MEMFD_NFDS_MANY);
			group_unreserve(z);
			return ret;
		}
	}
	memcpy(fds, z->memfd.lane_fds, sizeof(z->memfd.lane_fds));
	return ZCHAN_MEMFD_NFDS_MANY;
}

/*
 * The consumer end's fds, in the order memfd_attach() takes them, and the
 * layout; -EBUSY once they were sent.
 */
static int memfd_peer_fds(struct zchan *prod, unsigned int role, int *fds,
			  struct zchan_layout *l)
{
	if (prod->max_consumers > 1)	/* broadcast */
		return __zchan_bcast_peer_fds(prod, role, fds, l);
	*l = prod->layout;
	if (role == ZCHAN_ROLE_PRODUCER)
		return memfd_new_producer(prod, fds);
	if (prod->role != ZCHAN_PRODUCER ||
	    prod->memfd.peer_fds[ZCHAN_MEMFD_SOCK] < 0)
		/* the consumer end is already out: a full role */
		return is_fanin(prod) ? -EUSERS : -EBUSY;
	fds[ZCHAN_MEMFD_PROD] = prod->memfd.peer_fds[ZCHAN_MEMFD_PROD];
	fds[ZCHAN_MEMFD_CONS] = prod->memfd.peer_fds[ZCHAN_MEMFD_CONS];
	fds[ZCHAN_MEMFD_OWN_EFD] = prod->memfd.peer_efd;	/* the consumer's */
	fds[ZCHAN_MEMFD_PEER_EFD] = prod->memfd.own_efd;	/* ours */
	fds[ZCHAN_MEMFD_SOCK] = prod->memfd.peer_fds[ZCHAN_MEMFD_SOCK];
	if (!prod->memfd.group)
		return ZCHAN_MEMFD_NFDS;
	fds[ZCHAN_MEMFD_GROUP] = prod->memfd.group_fd;
	return ZCHAN_MEMFD_NFDS_MANY;
}

/* Sent: our copy of the consumer's socket end would hide its death. */
static void memfd_peer_sent(struct zchan *prod, unsigned int role)
{
	if (role == ZCHAN_ROLE_PRODUCER) {
		close_fds(prod->memfd.lane_fds, ZCHAN_MEMFD_NFDS_MANY);
		return;
	}
	if (prod->max_consumers > 1)
		__zchan_bcast_sent(prod);
	__zchan_close_fd(&prod->memfd.peer_fds[ZCHAN_MEMFD_PROD]);
	__zchan_close_fd(&prod->memfd.peer_fds[ZCHAN_MEMFD_CONS]);
	__zchan_close_fd(&prod->memfd.peer_fds[ZCHAN_MEMFD_SOCK]);
}

/*
 * The peer's notification fds must be what they claim (a pipe would block
 * our drain) and non-blocking: an eventfd, or for @sock a socket.
 */
static int check_notify_fd(int fd, bool sock)
{
	char path[64], link[64];
	struct stat st;
	ssize_t n;
	int fl;

	fl = __sys_fstat(fd, &st);
	if (fl < 0)
		return fl;
	if (sock) {
		if (!S_ISSOCK(st.st_mode))
			return -EPROTO;
	} else {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		n = __sys_readlink(path, link, sizeof(link) - 1);
		if (n > 0) {	/* without /proc, trust the fd */
			link[n] = 0;
			if (strcmp(link, "anon_inode:[eventfd]"))
				return -EPROTO;
		}
	}
	fl = __sys_fcntl(fd, F_GETFL, 0);
	if (fl < 0 || (fl & O_NONBLOCK))	/* ours are, from the start */
		return fl < 0 ? fl : 0;
	fl = __sys_fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	return fl < 0 ? fl : 0;
}

/*
 * The consumer end from what zchan_send_peer() sent: check all of it, map
 * it, and take the eventfds and the socket (set to -1); the caller closes
 * the memfds.  Every
 * field of the layout must be what the library computes from the
 * geometry, the memfds exactly that size, and the geometry the one the
 * producer recorded in its end page when it created the channel.
 */
static int memfd_attach(struct zchan *z, const struct zchan_layout *l, int *fds,
			unsigned int nfds)
{
	int prod_fd = fds[ZCHAN_MEMFD_PROD], cons_fd = fds[ZCHAN_MEMFD_CONS];
	struct zchan_memfd_end rec;
	struct zchan_layout want;
	bool prod = z->role == ZCHAN_PRODUCER;
	struct zchan_geom g;
	int ret;

	/* a fan-in channel's end has the group page; only it has producers */
	if (nfds != (is_fanin(z) ? ZCHAN_MEMFD_NFDS_MANY : ZCHAN_MEMFD_NFDS) ||
	    (prod && !is_fanin(z)))
		return -EPROTO;
	ret = __zchan_validate_layout(l);
	if (ret)
		return ret;
	/* the layout the library makes for that geometry, to the byte */
	memset(&g, 0, sizeof(g));
	g.pool_size = l->pool_size;
	g.entries = l->ring_entries;
	g.max_msg = l->max_msg;
	memfd_layout(&want, &g);
	if (memcmp(&want, l, sizeof(want)))
		return -EPROTO;
	ret = check_notify_fd(fds[ZCHAN_MEMFD_OWN_EFD], false);
	if (!ret)
		ret = check_notify_fd(fds[ZCHAN_MEMFD_PEER_EFD], false);
	if (!ret)
		ret = check_notify_fd(fds[ZCHAN_MEMFD_SOCK], true);
	if (ret)
		return ret;
	ret = memfd_check(prod_fd, prod_end_off(l) + __zchan_page_size());
	if (!ret)
		ret = memfd_check(cons_fd,
				  cons_end_off(l) + __zchan_page_size());
	if (ret)
		return ret;
	/* and the channel was created with this very geometry */
	if (__sys_pread(prod_fd, &rec, sizeof(rec), (off_t)prod_end_off(l)) !=
	    (ssize_t)sizeof(rec) || rec.magic != ZCHAN_MEMFD_END_MAGIC ||
	    rec.version != ZCHAN_MEMFD_END_VERSION ||
	    memcmp(&rec.layout, l, sizeof(*l)))
		return -EPROTO;
	if (is_fanin(z)) {
		ret = group_map(z, &fds[ZCHAN_MEMFD_GROUP]);
		if (ret)
			return ret;
	}
	ret = __zchan_map(z, prod_fd, cons_fd, prod_fd, l);
	if (!ret) {
		map_alloc_word(z, l);
		if (prod)
			ret = map_end_pages(z, prod_fd, prod_end_off(l),
					    cons_fd, cons_end_off(l));
		else
			ret = map_end_pages(z, cons_fd, cons_end_off(l),
					    prod_fd, prod_end_off(l));
	}
	if (!ret && z->max_consumers > 1)	/* broadcast */
		ret = __zchan_bcast_attach(z, &fds[ZCHAN_MEMFD_PROD]);
	if (ret)
		return ret;
	z->memfd.own_efd = fds[ZCHAN_MEMFD_OWN_EFD];
	z->memfd.peer_efd = fds[ZCHAN_MEMFD_PEER_EFD];
	z->memfd.sock = fds[ZCHAN_MEMFD_SOCK];
	fds[ZCHAN_MEMFD_OWN_EFD] = fds[ZCHAN_MEMFD_PEER_EFD] = -1;
	fds[ZCHAN_MEMFD_SOCK] = -1;
	return memfd_epoll(z);
}

int __zchan_memfd_check_cons(int fd, const struct zchan_layout *l, int efd,
			     int sock)
{
	int ret = memfd_check(fd, cons_end_off(l) + __zchan_page_size());

	if (!ret)
		ret = check_notify_fd(efd, false);
	if (!ret)
		ret = check_notify_fd(sock, true);
	return ret;
}

/* ------------------------------------------------------------------ */
/* Notifications and waits                                             */

/*
 * The kick is an eventfd write.  Our peer's need_wakeup is read-only here,
 * so it is a generation (memfd_announce()) and a generation we already
 * kicked does not sleep any more.
 */
static void memfd_kick(struct zchan *z)
{
	uint64_t one = 1;

	if (unlikely(z->bcast)) {	/* a broadcast producer: every consumer */
		__zchan_bcast_kick_all(z);
		return;
	}
	z->memfd.kicked_gen = z->memfd.peer_gen;
	/* -EAGAIN: counter saturated, the peer is woken anyway. */
	(void)__sys_write(z->memfd.peer_efd, &one, sizeof(one));
}

static bool memfd_peer_asleep(struct zchan *z, uint32_t nw)
{
	if (nw == z->memfd.kicked_gen)
		return false;
	z->memfd.peer_gen = nw;
	return true;
}

/* @cnt was read from our eventfd; was a peer's kick among it? */
static void note_drained(struct zchan *z, uint64_t cnt)
{
	if (cnt > z->memfd.self_kicks)
		z->memfd.kick_seen = true;
	z->memfd.self_kicks = 0;
}

/* Consume pending kicks so the epoll fd stops being readable. */
static void memfd_drain(struct zchan *z)
{
	uint64_t cnt = 0;

	__zchan_count_syscalls(z, 1);
	if (__sys_read(z->memfd.own_efd, &cnt, sizeof(cnt)) != sizeof(cnt))
		cnt = 0;
	note_drained(z, cnt);
}

static void memfd_arm(struct zchan *z)
{
	memfd_drain(z);
	memfd_announce(z);
}

/*
 * Untimed: the sleep drains our eventfd in the ring, with a read linked
 * after the poll that wakes it - one io_uring_enter() per sleep, no read()
 * before it.  RWF_NOWAIT: woken by the socket or a pidfd, the read finds
 * the eventfd empty and says so instead of waiting for a kick.
 */
static bool sleep_drains(struct zchan *z, int64_t timeout_ns)
{
	return timeout_ns < 0 && !z->memfd.no_ring_drain &&
	       __zchan_uring_ready(z);
}

/*
 * Our epoll fd holds the liveness socket and the pidfds of the peer's
 * processes, so a peer that goes wakes the sleep: the re-check before it
 * need only bring the watch list up to date, unless the last wake-up was
 * not a kick.  With the eventfd drained in the ring, a sleep and its
 * wake-up cost one io_uring_enter() and the peer's kick.
 */
static bool memfd_arm_sleep(struct zchan *z, int64_t timeout_ns, bool again)
{
	bool in_ring = sleep_drains(z, timeout_ns);
	bool ask_peer = again && !z->memfd.kick_seen;

	set_run(z, ZCHAN_END_ARMED);
	if (!in_ring)
		memfd_drain(z);
	memfd_announce(z);
	return in_ring && !ask_peer;
}

/* IORING_OP_POLL_ADD on our epoll fd, and the eventfd read linked to it. */
static int memfd_ring_sleep(struct zchan *z, int64_t timeout_ns)
{
	struct io_uring_sqe *sqe, *rd;
	unsigned int pending = RING_WAIT;
	int ret;

	if (!z->ring_pending) {
		sqe = __zchan_uring_sqe(z);
		if (!sqe)
			return -EBUSY;
		io_uring_prep_poll_add(sqe, z->fd, POLLIN);
		io_uring_sqe_set_data64(sqe, ZCHAN_UDATA_WAIT);
		if (sleep_drains(z, timeout_ns) && (rd = __zchan_uring_sqe(z))) {
			io_uring_sqe_set_flags(sqe, IOSQE_IO_LINK);
			io_uring_prep_read(rd, z->memfd.own_efd, &z->memfd.ring_drained,
					   sizeof(z->memfd.ring_drained), 0);
			rd->rw_flags = RWF_NOWAIT;
			io_uring_sqe_set_data64(rd, ZCHAN_UDATA_DRAIN);
			pending |= RING_DRAIN;
		}
		ret = __zchan_uring_submit(z, pending, timeout_ns);
		if (ret < 0)
			return ret;
	}
	ret = __zchan_uring_reap(z, timeout_ns);
	if (z->ring_drain_done) {
		z->ring_drain_done = false;
		if (z->ring_drain_res == (int)sizeof(z->memfd.ring_drained))
			note_drained(z, z->memfd.ring_drained);
		else if (z->ring_drain_res == -EOPNOTSUPP ||
			 z->ring_drain_res == -EINVAL)
			z->memfd.no_ring_drain = true;	/* read() from now on */
	}
	return ret;
}

static int memfd_sleep(struct zchan *z, int64_t timeout_ns)
{
	struct pollfd pfd = { .fd = z->fd, .events = POLLIN };
	int ms = timeout_ns < 0 ? -1 : (int)(timeout_ns / 1000000);
	int ret;

	set_run(z, ZCHAN_END_ASLEEP);
	if (__zchan_uring_ready(z)) {
		ret = memfd_ring_sleep(z, timeout_ns);
	} else {
		if (timeout_ns > 0 && ms == 0)
			ms = 1;
		__zchan_count_syscalls(z, 1);
		ret = __sys_poll(&pfd, 1, ms);
		if (ret >= 0)
			ret = ret ? 0 : -ETIME;
	}
	memfd_running(z);	/* woken: we run again, maybe elsewhere */
	return ret;
}

/* Make our own epoll fd readable (zchan_prep_wait, ready now). */
static void memfd_self_kick(struct zchan *z)
{
	uint64_t one = 1;

	__zchan_count_syscalls(z, 1);
	if (__sys_write(z->memfd.own_efd, &one, sizeof(one)) == sizeof(one))
		z->memfd.self_kicks++;
}

/*
 * A peer whose processes all died is seen through their pidfds (holders.c)
 * or as a hang-up of the liveness socket.  Before a sleep that watches
 * them, only the watch list is brought up to date.
 */
static bool memfd_peer_gone(struct zchan *z)
{
	if (z->bcast)
		return __zchan_bcast_gone(z);
	if (unlikely(z->memfd.bcons))
		__zchan_bcast_try_start(z);	/* and the producer may be gone */
	if (z->memfd.sock < 0)
		return false;
	if (z->sleep_watches_peer) {
		(void)__zchan_holders_watch(z);
		return false;
	}
	return __zchan_holders_gone(z, z->memfd.sock);
}

/* ------------------------------------------------------------------ */
/* Holders: the end pages' tables (holders.c)                            */

/* A forked child holds its end now: the peer watches it too. */
static int memfd_hold(struct zchan *z)
{
	uint64_t one = 1;
	int ret;

	ret = __zchan_holders_add(z);
	if (ret)
		return ret;
	/*
	 * The peer watches holders it has seen: make it look again
	 * (-EAGAIN: saturated, the peer wakes anyway).
	 */
	if (z->bcast)
		__zchan_bcast_kick_all(z);
	else
		(void)__sys_write(z->memfd.peer_efd, &one, sizeof(one));
	return 0;
}

static bool memfd_release(struct zchan *z)
{
	return z->memfd.own_end && __zchan_holders_remove(z);
}

/*
 * The last holder does what the kernel does on release: mark the end
 * closed, then wake the peer; any other wakes the peer so that it stops
 * watching this process.
 */
static void memfd_close(struct zchan *z, bool last)
{
	if (!z->memfd.own_end)
		return;
	if (last && z->role == ZCHAN_PRODUCER)
		group_unreserve(z);	/* before closed: see lane_del */
	if (last)
		store_release(z->own_closed, 1);
	if (z->memfd.peer_efd >= 0)
		memfd_kick(z);
}

/* ------------------------------------------------------------------ */
/* Fan-in: the consumer's group of lanes (fanin.c)                      */

/*
 * A producer end's count of producers is the group page's, as honest
 * ends keep it (at least itself, at most the maximum); its consumer is
 * live unless gone (an end not yet sent counts: it exists).
 */
static int memfd_ends(struct zchan *z, unsigned int role)
{
	uint32_t n;

	if (role == ZCHAN_ROLE_CONSUMER)
		return __zchan_peer_gone(z, true) ? 0 : 1;
	n = load_once(&z->memfd.group->producers);
	return n < 1 ? 1 : n > z->max_producers ? (int)z->max_producers :
						   (int)n;
}

/*
 * The group's fd is an epoll set of its lanes' epoll fds (each holding
 * the lane's eventfd, liveness socket and its producer's pidfds); the
 * group keeps the group page to make lanes.
 */
static int memfd_group_init(struct zchan *g, struct zchan *first)
{
	int fd, ret;

	ret = __sys_epoll_create1(EPOLL_CLOEXEC);
	if (ret < 0)
		return ret;
	g->fd = ret;
	ret = dup_fd(first->memfd.group_fd, &fd);
	if (ret)
		return ret;
	ret = group_map(g, &fd);
	__zchan_close_fd(&fd);
	return ret;
}

/* @lane's fd in the group's; its socket wakes for announcements too. */
static int memfd_lane_add(struct zchan *g, struct zchan *lane)
{
	struct epoll_event ev;
	int ret;

	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN | EPOLLRDHUP;
	ev.data.fd = lane->memfd.sock;
	ret = __sys_epoll_ctl(lane->fd, EPOLL_CTL_MOD, lane->memfd.sock, &ev);
	if (ret < 0)
		return ret;
	ev.events = EPOLLIN;
	ev.data.fd = lane->fd;
	ret = __sys_epoll_ctl(g->fd, EPOLL_CTL_ADD, lane->fd, &ev);
	return ret < 0 ? ret : 0;
}

/*
 * A producer that closed took itself off the count before it said
 * closed; one that died (or never got its end) did not.  A dropped
 * lane's producer is alive: it sees -EPIPE and closes.
 */
static void memfd_lane_del(struct zchan *g, struct zchan *lane, bool dropped)
{
	(void)__sys_epoll_ctl(g->fd, EPOLL_CTL_DEL, lane->fd, NULL);
	if (!dropped && !load_acquire(lane->peer_closed))
		group_unreserve(g);
}

/*
 * Read @lane's announcements: each one a new lane's consumer half, as
 * zchan_send_end() sends a consumer end.  Garbage, or an end of another
 * role, corrupts @lane (its err): the group drops it.
 */
static int read_announcements(struct zchan *g, struct zchan *lane)
{
	struct zchan *nl;
	int ret;

	for (;;) {
		ret = __zchan_recv_end(lane->memfd.sock, MSG_DONTWAIT, &nl);
		if (ret == -EAGAIN || ret == -EPIPE || ret == -ECONNRESET)
			return 0;	/* none left, or its producer is gone */
		if (!ret && nl->role != ZCHAN_CONSUMER) {
			zchan_close(nl);
			ret = -EPROTO;
		}
		if (ret == -EPROTO) {
			lane->err = -EPROTO;
			return 0;
		}
		if (ret)
			return ret;
		ret = __zchan_fanin_add(g, nl);
		if (ret && ret != -EUSERS)	/* -EUSERS: a hostile flood */
			return ret;
	}
}

/*
 * The lanes announced since the last call: one poll() over the live
 * lanes' sockets, then the announcements of those that have any - and
 * again over the lanes that came, whose own announcements may be queued.
 */
static int memfd_adopt_lanes(struct zchan *g, bool slow)
{
	struct pollfd pfd[2 * ZCHAN_ENDS_MAX];
	struct zchan *lanes[2 * ZCHAN_ENDS_MAX], *lane;
	uint32_t made = load_acquire(&g->memfd.group->lanes);
	unsigned int from = 0, i, n, k;
	bool live;
	int ret;

	/* a lane is counted once announced: same count, nothing new */
	if (!slow && made == g->memfd.lanes_seen)
		return 0;
	g->memfd.lanes_seen = made;
	for (;;) {
		n = 0;
		for (i = from; (lane = __zchan_fanin_lane(g, i, &live)); i++) {
			if (!live || n == 2 * ZCHAN_ENDS_MAX)
				continue;
			pfd[n].fd = lane->memfd.sock;
			pfd[n].events = POLLIN;
			pfd[n].revents = 0;
			lanes[n++] = lane;
		}
		if (!n)
			return 0;
		__zchan_count_syscalls(g, 1);
		ret = __sys_poll(pfd, n, 0);
		if (ret <= 0)
			return ret;
		for (k = 0; k < n; k++) {
			if (!(pfd[k].revents & POLLIN))
				continue;
			ret = read_announcements(g, lanes[k]);
			if (ret)
				return ret;
		}
		from = i;
		if (!__zchan_fanin_lane(g, from, &live))
			return 0;
	}
}

const struct zchan_ops __zchan_memfd_ops = {
	.backend	= ZCHAN_BACKEND_MEMFD,
	.init		= memfd_init,
	.free		= memfd_free,
	.create		= memfd_create_end,
	.peer_fds	= memfd_peer_fds,
	.peer_sent	= memfd_peer_sent,
	.attach		= memfd_attach,
	.hold		= memfd_hold,
	.release	= memfd_release,
	.close		= memfd_close,
	.kick		= memfd_kick,
	.peer_asleep	= memfd_peer_asleep,
	.arm		= memfd_arm,
	.arm_sleep	= memfd_arm_sleep,
	.sleep		= memfd_sleep,
	.self_kick	= memfd_self_kick,
	.peer_gone	= memfd_peer_gone,
	.running	= memfd_running,
	.can_spin	= memfd_can_spin,
	.bcast_head	= __zchan_bcast_head,
	.bcast_all_read	= __zchan_bcast_all_read,
	.bcast_notify	= __zchan_bcast_notify,
	.bcast_ends	= __zchan_bcast_ends,
	.ends		= memfd_ends,
	.group_init	= memfd_group_init,
	.lane_add	= memfd_lane_add,
	.lane_del	= memfd_lane_del,
	.adopt_lanes	= memfd_adopt_lanes,
};
