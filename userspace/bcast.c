// SPDX-License-Identifier: MIT OR LGPL-2.1
/*
 * memfd backend: the producer end of a broadcast channel (ZCHAN_BROADCAST,
 * one producer, up to max_consumers consumers) and its set of consumers;
 * Documentation/many.rst ("Broadcast") is the design.
 *
 * Every consumer end is an ordinary 1:1 memfd consumer (memfd.c, ring.c):
 * a consumer ring and end page of its own, the producer's ring and pool
 * read-only, its own eventfd and liveness socket, the producer's eventfd
 * to kick it.  Nothing a consumer writes is read by another consumer.
 *
 * The producer keeps a view of each consumer: a handle of this backend
 * that maps only that consumer's ring and end page, read-only, and owns
 * the producer's half of its socket and its eventfd, so that memfd.c kicks
 * it and holders.c watches its processes unchanged (their pidfds and the
 * socket are in the producer's epoll fd: a consumer's death wakes it).
 *
 * Room: the producer's head is the minimum of the views' heads, each read
 * once and taken only within [the view's last head, tail]: a consumer that
 * writes garbage holds the producer back as a slow one does, and can never
 * make it reuse what another consumer still reads.  A consumer that closes
 * leaves the minimum at once; one whose processes died, at the producer's
 * next look at its peers (a wait, zchan_poll()).  With no consumer, all
 * is released at once: broadcast keeps accepting.
 *
 * A new consumer end made by the producer (zchan_send_end()) is adopted
 * at once: its head and read start at the producer's tail, and it gets
 * every message published from then on.  One made by a consumer is
 * announced to the producer first: its memfd, eventfd and the producer's
 * half of its socket go over the maker's liveness socket (SCM_RIGHTS),
 * the maker counts the announcement in its ring's announce word and kicks
 * the producer.  The producer looks at every consumer's announce word
 * when it reclaims (at least once a ring of messages) and at its peers,
 * adopts each end announced - its start word says from which index - or,
 * with max_consumers live, closes the producer's half of its socket: that
 * end sees the end of the stream.  Until it is adopted, the new end shows
 * nothing published (its tail is its own head, a private word).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "zchan_int.h"

struct zchan_bcast {
	uint32_t never;		/* the producer's peer_closed: never set */
	unsigned int n;		/* views in @cons */
	int pending;		/* @cons index of the end not sent yet, or -1 */
	int prod_ro;		/* the producer memfd, read-only: every end's */
	struct zchan *cons[ZCHAN_ENDS_MAX];
};

/* A consumer end of a broadcast channel: what it needs beyond 1:1. */
struct zchan_bcast_cons {
	int prod_fd;		/* the producer memfd, read-only: for ends we make */
	uint64_t *start;	/* our start word while we wait for it, else NULL */
	uint32_t *tail;		/* the producer's tail and alloc, while we wait */
	uint32_t *alloc;
	uint32_t hold;		/* our tail while we wait: nothing published */
	uint32_t announced;	/* ends we announced (our ring's announce word) */
};

/* Say in our end page how many consumers we count (zchan_ends()). */
static void count_consumers(struct zchan *p)
{
	store_once(&p->memfd.own_end->consumers, p->bcast->n);
}

static void adopt_announced(struct zchan *p);
static int cons_peer_fds(struct zchan *c, int *fds, struct zchan_layout *l);

/*
 * A view of the consumer end in @cons_fd (mapped here, not taken) that
 * takes @efd (its eventfd) and @sock (our half of its socket) even when it
 * fails.  Its p_seen is the consumer's head as the producer counts it,
 * its p_alloc the consumer's announce word as we last read it.
 */
static int view_new(struct zchan *p, int cons_fd, uint64_t end_off, int efd,
		    int sock)
{
	const struct zchan_layout *l = &p->layout;
	struct zchan_bcast *b = p->bcast;
	unsigned char *cr;
	struct zchan *v;
	void *m;

	v = __zchan_alloc(ZCHAN_PRODUCER, p->ops);
	if (!v) {
		__zchan_close_fd(&efd);
		__zchan_close_fd(&sock);
		return -ENOMEM;
	}
	v->memfd.peer_efd = efd;
	v->memfd.sock = sock;
	v->layout = *l;
	m = __sys_mmap(NULL, l->cons_ring_size, PROT_READ, MAP_SHARED, cons_fd,
		       (off_t)l->cons_ring_off);
	if (IS_ERR(m))
		goto fail;
	v->cons_map = m;
	m = __sys_mmap(NULL, __zchan_page_size(), PROT_READ, MAP_SHARED,
		       cons_fd, (off_t)end_off);
	if (IS_ERR(m))
		goto fail;
	v->memfd.peer_end = m;
	/* borrowed: our pid namespace for the watch, our epoll fd to wake */
	v->memfd.own_end = p->memfd.own_end;
	v->fd = p->fd;
	cr = v->cons_map;
	v->head = (uint32_t *)(cr + l->cons_head);
	v->read = (uint32_t *)(cr + l->cons_read);
	v->cons_need_wakeup = (uint32_t *)(cr + l->cons_need_wakeup);
	v->cons_closed = (uint32_t *)(cr + l->cons_closed);
	v->peer_need_wakeup = v->cons_need_wakeup;
	v->peer_closed = v->cons_closed;
	v->p_seen = p->p_tail;
	b->cons[b->n++] = v;
	count_consumers(p);
	return 0;
fail:
	v->fd = -1;
	__zchan_free(v);
	return (int)PTR_ERR(m);
}

/* A consumer's death (its socket hangs up) wakes our sleeps. */
static int watch_sock(struct zchan *p, int sock)
{
	struct epoll_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLRDHUP;
	ev.data.fd = sock;
	return __sys_epoll_ctl(p->fd, EPOLL_CTL_ADD, sock, &ev);
}

static void view_free(struct zchan *p, struct zchan *v)
{
	if (v->memfd.sock >= 0)
		(void)__sys_epoll_ctl(p->fd, EPOLL_CTL_DEL, v->memfd.sock, NULL);
	v->memfd.own_end = NULL;
	v->fd = -1;
	__zchan_free(v);
}

/* Consumer @i is gone: it leaves the minimum, its place is free. */
static void drop(struct zchan *p, unsigned int i)
{
	struct zchan_bcast *b = p->bcast;

	if (b->pending == (int)i) {	/* never sent: nobody will have it */
		__zchan_close_fd(&p->memfd.peer_fds[ZCHAN_MEMFD_CONS]);
		__zchan_close_fd(&p->memfd.peer_fds[ZCHAN_MEMFD_SOCK]);
		b->pending = -1;
	}
	view_free(p, b->cons[i]);
	b->cons[i] = b->cons[--b->n];
	count_consumers(p);
	if (b->pending == (int)b->n)
		b->pending = (int)i;
}

/*
 * The channel was just created (memfd.c): its consumer end, not sent yet,
 * is the first consumer, adopted at index 0.  The producer's own consumer
 * words stay mapped (zchan_can_spin()'s hints) but its peer is the set.
 */
int __zchan_bcast_init(struct zchan *p, uint64_t end_off)
{
	struct zchan_bcast *b;
	int ret;

	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	p->bcast = b;
	b->prod_ro = p->memfd.peer_fds[ZCHAN_MEMFD_PROD];
	p->memfd.peer_fds[ZCHAN_MEMFD_PROD] = -1;
	p->peer_closed = &b->never;
	ret = view_new(p, p->memfd.peer_fds[ZCHAN_MEMFD_CONS], end_off,
		       p->memfd.peer_efd, p->memfd.sock);
	p->memfd.peer_efd = p->memfd.sock = -1;	/* the view's now */
	b->pending = ret ? -1 : 0;
	return ret;
}

void __zchan_bcast_free(struct zchan *p)
{
	struct zchan_bcast_cons *bc = p->memfd.bcons;
	struct zchan_bcast *b = p->bcast;

	if (bc) {
		__zchan_close_fd(&bc->prod_fd);
		free(bc);
		p->memfd.bcons = NULL;
	}
	if (!b)
		return;
	while (b->n)
		drop(p, b->n - 1);
	__zchan_close_fd(&b->prod_ro);
	free(b);
	p->bcast = NULL;
}

/*
 * The producer's head (zchan_ops.bcast_head, for ring.c's reclaim): the least of the live
 * consumers' heads, each taken only within [its last head, tail]; with no
 * consumer, the tail.  A consumer that closed is dropped here.
 */
uint32_t __zchan_bcast_head(struct zchan *p)
{
	struct zchan_bcast *b = p->bcast;
	uint32_t seen = p->p_seen, tail = p->p_tail, min = tail - seen, h;
	unsigned int i;

	adopt_announced(p);
	for (i = 0; i < b->n;) {
		struct zchan *v = b->cons[i];

		if (load_acquire(v->cons_closed)) {
			drop(p, i);
			continue;
		}
		h = load_acquire(v->head);
		if ((uint32_t)(h - v->p_seen) <= (uint32_t)(tail - v->p_seen))
			v->p_seen = h;
		if ((uint32_t)(v->p_seen - seen) < min)
			min = v->p_seen - seen;
		i++;
	}
	return seen + min;
}

/* Has every live consumer taken all we published (zchan_ops.bcast_all_read)? */
bool __zchan_bcast_all_read(struct zchan *p)
{
	struct zchan_bcast *b = p->bcast;
	unsigned int i;

	for (i = 0; i < b->n; i++)
		if (load_acquire(b->cons[i]->read) != p->p_tail)
			return false;
	return true;
}

/* After a publish (zchan_ops.bcast_notify): kick every sleeping consumer. */
void __zchan_bcast_notify(struct zchan *p)
{
	struct zchan_bcast *b = p->bcast;
	unsigned int i;
	uint32_t nw;

	if (p->ops->running)
		p->ops->running(p);
	smp_mb();	/* our tail store before their need_wakeup */
	for (i = 0; i < b->n; i++) {
		struct zchan *v = b->cons[i];

		nw = load_once(v->peer_need_wakeup);
		if (likely(!nw) || !v->ops->peer_asleep(v, nw))
			continue;
		p->st.kicks++;
		__zchan_count_syscalls(p, 1);
		v->ops->kick(v);
	}
}

/* Wake every consumer (the producer closed, or its holders changed). */
void __zchan_bcast_kick_all(struct zchan *p)
{
	struct zchan_bcast *b = p->bcast;
	unsigned int i;

	for (i = 0; i < b->n; i++)
		b->cons[i]->ops->kick(b->cons[i]);
}

/*
 * memfd.c's peer_gone() of the producer: drop each consumer whose
 * processes are all gone (system calls), or before a sleep that wakes
 * when they go, only watch them.  The producer never sees its peer gone:
 * false.  The end not sent yet has nobody to lose.
 */
bool __zchan_bcast_gone(struct zchan *p)
{
	struct zchan_bcast *b = p->bcast;
	unsigned int i;

	adopt_announced(p);
	for (i = 0; i < b->n;) {
		struct zchan *v = b->cons[i];

		if ((int)i == b->pending) {
			i++;
		} else if (p->sleep_watches_peer && !load_acquire(v->cons_closed)) {
			(void)__zchan_holders_watch(v);
			i++;
		} else if (load_acquire(v->cons_closed) || v->ops->peer_gone(v)) {
			drop(p, i);
		} else {
			i++;
		}
	}
	return false;
}

/*
 * zchan_ends() of an end of a broadcast channel (zchan_ops.bcast_ends).
 * The producer counts its live consumers (the one not sent yet too) and
 * says how many in its end page; a consumer reads that, bounded: at least
 * itself.  A consumer's producer is live until it closed or died.
 */
int __zchan_bcast_ends(struct zchan *z, unsigned int role)
{
	uint32_t n;

	if (z->bcast) {
		if (role == ZCHAN_ROLE_PRODUCER)
			return 1;
		(void)__zchan_bcast_gone(z);
		return (int)z->bcast->n;
	}
	if (role == ZCHAN_ROLE_PRODUCER)
		return z->peer_dead || load_acquire(z->peer_closed) ||
		       z->ops->peer_gone(z) ? 0 : 1;
	n = load_once(&z->memfd.peer_end->consumers);
	return (int)(n < 1 ? 1 : n > z->max_consumers ? z->max_consumers : n);
}


/* A new consumer end's memfd, eventfd and the producer's socket half. */
enum { ANN_CONS, ANN_EFD, ANN_SOCK, ANN_NFDS };

/*
 * The pieces of a new consumer end: its memfd (*@end_off: its end page),
 * with @len bytes of @init written at each of @offs (ring offsets, up to
 * two), its eventfd and a socketpair.  All or nothing.
 */
static int end_make(const struct zchan_layout *l, const uint32_t *offs,
		    unsigned int noffs, const void *init, size_t len,
		    int *fds, int *sock, uint64_t *end_off)
{
	int sp[2], ret = -EIO;
	unsigned int i;

	fds[ANN_CONS] = __zchan_memfd_cons_region(l, end_off);
	if (fds[ANN_CONS] < 0)
		return fds[ANN_CONS];
	for (i = 0; i < noffs; i++)
		if (__sys_pwrite(fds[ANN_CONS], init, len,
				 (off_t)(l->cons_ring_off + offs[i])) != (ssize_t)len)
			goto close_cons;
	ret = __sys_eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (ret < 0)
		goto close_cons;
	fds[ANN_EFD] = ret;
	ret = __sys_socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC |
			       SOCK_NONBLOCK, 0, sp);
	if (ret < 0) {
		__sys_close(fds[ANN_EFD]);
		goto close_cons;
	}
	fds[ANN_SOCK] = sp[0];
	*sock = sp[1];
	return 0;
close_cons:
	__sys_close(fds[ANN_CONS]);
	return ret;
}

/*
 * A new consumer end, adopted: a consumer ring whose head and read start
 * at our tail, an eventfd, a socketpair; -EUSERS once max_consumers are
 * live (the ones that went are looked for first).
 */
static int cons_new(struct zchan *p)
{
	const struct zchan_layout *l = &p->layout;
	const uint32_t offs[] = { l->cons_head, l->cons_read };
	struct zchan_bcast *b = p->bcast;
	uint32_t start = p->p_tail;
	int fds[ANN_NFDS], sock, ret;
	uint64_t end_off;

	if (b->n >= p->max_consumers) {
		(void)__zchan_bcast_gone(p);
		if (b->n >= p->max_consumers)
			return -EUSERS;
	}
	ret = end_make(l, offs, 2, &start, sizeof(start), fds, &sock, &end_off);
	if (ret)
		return ret;
	ret = view_new(p, fds[ANN_CONS], end_off, fds[ANN_EFD], fds[ANN_SOCK]);
	if (!ret) {
		ret = watch_sock(p, fds[ANN_SOCK]);
		if (ret)
			drop(p, b->n - 1);
	}
	if (ret) {
		__sys_close(sock);
		__sys_close(fds[ANN_CONS]);
		return ret;
	}
	b->pending = (int)b->n - 1;
	p->memfd.peer_fds[ZCHAN_MEMFD_CONS] = fds[ANN_CONS];
	p->memfd.peer_fds[ZCHAN_MEMFD_SOCK] = sock;
	return 0;
}

/*
 * memfd.c's peer_fds() on a broadcast channel: a new consumer end made by
 * the producer, adopted, or by a consumer, announced (or the one made
 * before, if sending it failed).  One producer: -EUSERS for another.
 */
int __zchan_bcast_peer_fds(struct zchan *z, unsigned int role, int *fds,
			   struct zchan_layout *l)
{
	struct zchan_bcast *b = z->bcast;
	int ret;

	if (role != ZCHAN_ROLE_CONSUMER)
		return -EUSERS;
	if (!b)
		return cons_peer_fds(z, fds, l);
	if (b->pending < 0) {
		ret = cons_new(z);
		if (ret)
			return ret;
	}
	fds[ZCHAN_MEMFD_PROD] = b->prod_ro;
	fds[ZCHAN_MEMFD_CONS] = z->memfd.peer_fds[ZCHAN_MEMFD_CONS];
	fds[ZCHAN_MEMFD_OWN_EFD] = b->cons[b->pending]->memfd.peer_efd;
	fds[ZCHAN_MEMFD_PEER_EFD] = z->memfd.own_efd;
	fds[ZCHAN_MEMFD_SOCK] = z->memfd.peer_fds[ZCHAN_MEMFD_SOCK];
	*l = z->layout;
	return ZCHAN_MEMFD_NFDS;
}

/* ------------------------------------------------------------------ */
/* Ends made by consumers                                              */

/* What a consumer sends the producer with a new end's three fds. */
#define ZCHAN_BCAST_ANNOUNCE_MAGIC	0x5a424341U	/* "ZBCA" */

static void *ring_word(const struct zchan *z, unsigned int from_end)
{
	return (unsigned char *)z->cons_map + z->layout.cons_ring_size - from_end;
}

/*
 * memfd.c's attach() of a consumer end of a broadcast channel: keep the
 * producer memfd (*@prod_fd, taken) for the ends it makes, and if another
 * consumer made this one, show nothing until the producer adopts it.
 */
int __zchan_bcast_attach(struct zchan *c, int *prod_fd)
{
	struct zchan_bcast_cons *bc;
	uint64_t w;

	bc = calloc(1, sizeof(*bc));
	if (!bc)
		return -ENOMEM;
	c->memfd.bcons = bc;
	bc->prod_fd = *prod_fd;
	*prod_fd = -1;
	w = load_acquire((uint64_t *)ring_word(c, ZCHAN_BCAST_START_FROM_END));
	if (!w)
		return 0;
	if (w != ZCHAN_BCAST_START_WAIT && !(w & ZCHAN_BCAST_START_SET))
		return -EPROTO;
	bc->start = ring_word(c, ZCHAN_BCAST_START_FROM_END);
	bc->tail = c->tail;
	bc->alloc = c->alloc;
	bc->hold = c->c_head;
	c->tail = &bc->hold;
	c->alloc = NULL;
	__zchan_bcast_try_start(c);
	return 0;
}

/*
 * An end that waits for the producer: start once its start word says
 * where (a slow path: memfd.c's peer_gone()), and wake our fd, since what
 * was published since is there for us and kicked nobody.
 */
void __zchan_bcast_try_start(struct zchan *c)
{
	struct zchan_bcast_cons *bc = c->memfd.bcons;
	uint64_t w;

	if (!bc->start)
		return;
	w = load_acquire(bc->start);
	if (!(w & ZCHAN_BCAST_START_SET))
		return;
	c->c_head = c->c_read = (uint32_t)w;
	store_release(c->head, c->c_head);
	store_release(c->read, c->c_read);
	c->tail = bc->tail;
	c->alloc = bc->alloc;
	bc->start = NULL;
	if (c->fd >= 0 && c->ops->self_kick)
		c->ops->self_kick(c);
}

/* A new end, announced over @c's liveness socket: its three fds. */
static int announce(struct zchan *c, const int *fds)
{
	uint32_t magic = ZCHAN_BCAST_ANNOUNCE_MAGIC;

	return __sys_send_fds(c->memfd.sock, &magic, sizeof(magic), fds,
			      ANN_NFDS);
}

/*
 * A consumer makes a consumer end: a ring whose start word says "wait",
 * an eventfd, a socketpair; announced to the producer (who adopts it, or
 * refuses it with max_consumers live) before it leaves.  Kept in
 * c->memfd.peer_fds until sent.
 */
static int cons_make(struct zchan *c)
{
	const struct zchan_layout *l = &c->layout;
	const uint32_t offs[] = { (uint32_t)(l->cons_ring_size -
					     ZCHAN_BCAST_START_FROM_END) };
	uint64_t wait = ZCHAN_BCAST_START_WAIT, end_off;
	int fds[ANN_NFDS], sock, ret;

	ret = end_make(l, offs, 1, &wait, sizeof(wait), fds, &sock, &end_off);
	if (ret)
		return ret;
	ret = announce(c, fds);
	__sys_close(fds[ANN_SOCK]);	/* the producer's now, or nobody's */
	if (ret) {
		__sys_close(sock);
		__sys_close(fds[ANN_EFD]);
		__sys_close(fds[ANN_CONS]);
		return ret;
	}
	store_release((uint32_t *)ring_word(c, ZCHAN_BCAST_ANNOUNCE_FROM_END),
		      ++c->memfd.bcons->announced);
	c->ops->kick(c);	/* a producer waiting for room looks */
	c->memfd.peer_fds[ZCHAN_MEMFD_CONS] = fds[ANN_CONS];
	c->memfd.peer_fds[ZCHAN_MEMFD_OWN_EFD] = fds[ANN_EFD];
	c->memfd.peer_fds[ZCHAN_MEMFD_SOCK] = sock;
	return 0;
}

/* A consumer's zchan_send_end(): the end it made (announced), as fds. */
static int cons_peer_fds(struct zchan *c, int *fds, struct zchan_layout *l)
{
	int ret;

	if (!c->memfd.bcons)
		return -EOPNOTSUPP;
	if (c->memfd.peer_fds[ZCHAN_MEMFD_CONS] < 0) {
		ret = cons_make(c);
		if (ret)
			return ret;
	}
	fds[ZCHAN_MEMFD_PROD] = c->memfd.bcons->prod_fd;
	fds[ZCHAN_MEMFD_CONS] = c->memfd.peer_fds[ZCHAN_MEMFD_CONS];
	fds[ZCHAN_MEMFD_OWN_EFD] = c->memfd.peer_fds[ZCHAN_MEMFD_OWN_EFD];
	fds[ZCHAN_MEMFD_PEER_EFD] = c->memfd.peer_efd;
	fds[ZCHAN_MEMFD_SOCK] = c->memfd.peer_fds[ZCHAN_MEMFD_SOCK];
	*l = c->layout;
	return ZCHAN_MEMFD_NFDS;
}

/* One announcement from @v's socket: 1 and its fds, 0 if none, -errno. */
static int recv_announce(struct zchan *v, int *fds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * ANN_NFDS)];
		struct cmsghdr align;
	} u;
	uint32_t magic = 0;
	struct iovec iov = { &magic, sizeof(magic) };
	struct msghdr msg;
	struct cmsghdr *cm;
	int i, nfds = 0;
	ssize_t n;

	memset(&msg, 0, sizeof(msg));
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = u.buf;
	msg.msg_controllen = sizeof(u.buf);
	do {
		n = __sys_recvmsg(v->memfd.sock, &msg,
				  MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	} while (n == -EINTR);
	if (n == -EAGAIN || n == 0)
		return 0;		/* none, or the consumer went */
	if (n < 0)
		return (int)n;
	for (cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
		int cnt;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		cnt = (int)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		for (i = 0; i < cnt; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			if (nfds < ANN_NFDS)
				fds[nfds++] = fd;
			else
				__sys_close(fd);
		}
	}
	if (n == sizeof(magic) && magic == ZCHAN_BCAST_ANNOUNCE_MAGIC &&
	    nfds == ANN_NFDS && !(msg.msg_flags & (MSG_CTRUNC | MSG_TRUNC)))
		return 1;
	for (i = 0; i < nfds; i++)
		__sys_close(fds[i]);
	return -EPROTO;
}

/*
 * Adopt the end announced in @fds (taken): it starts at our tail, and
 * counts in the minimum from now on; refused (its fds closed: it sees the
 * end of the stream) if it is not what a consumer makes, or if
 * max_consumers are live.
 */
static void adopt(struct zchan *p, int *fds)
{
	const struct zchan_layout *l = &p->layout;
	struct zchan_bcast *b = p->bcast;
	uint64_t w = 0, end_off = l->cons_ring_off + l->cons_ring_size;
	unsigned char *ring;
	int ret;

	ret = __zchan_memfd_check_cons(fds[ANN_CONS], l, fds[ANN_EFD],
				       fds[ANN_SOCK]);
	if (!ret && (__sys_pread(fds[ANN_CONS], &w, sizeof(w),
				 (off_t)(end_off - ZCHAN_BCAST_START_FROM_END)) !=
		     sizeof(w) || w != ZCHAN_BCAST_START_WAIT))
		ret = -EPROTO;
	if (!ret && b->n >= p->max_consumers)
		ret = -EUSERS;
	if (ret)
		goto refuse;
	ring = __sys_mmap(NULL, l->cons_ring_size, PROT_READ | PROT_WRITE,
			  MAP_SHARED, fds[ANN_CONS], (off_t)l->cons_ring_off);
	if (IS_ERR(ring))
		goto refuse;
	store_once((uint32_t *)(ring + l->cons_head), p->p_tail);
	store_once((uint32_t *)(ring + l->cons_read), p->p_tail);
	store_release((uint64_t *)(ring + l->cons_ring_size -
				   ZCHAN_BCAST_START_FROM_END),
		      ZCHAN_BCAST_START_SET | p->p_tail);
	__sys_munmap(ring, l->cons_ring_size);
	if (view_new(p, fds[ANN_CONS], end_off, fds[ANN_EFD], fds[ANN_SOCK]))
		goto close_cons;	/* took the others */
	ret = watch_sock(p, fds[ANN_SOCK]);
	if (ret) {
		drop(p, b->n - 1);
		goto close_cons;
	}
	/* it may sleep already: wake it to start */
	b->cons[b->n - 1]->ops->kick(b->cons[b->n - 1]);
	goto close_cons;
refuse:
	__sys_close(fds[ANN_EFD]);
	__sys_close(fds[ANN_SOCK]);
close_cons:
	__sys_close(fds[ANN_CONS]);
}

/*
 * Every end announced since we last looked (a load of each consumer's
 * announce word; system calls only for one that moved).  A consumer whose
 * announcements are garbage is dropped: it hurt only itself.
 */
static void adopt_announced(struct zchan *p)
{
	struct zchan_bcast *b = p->bcast;
	unsigned int i, n = b->n;
	int fds[ANN_NFDS], ret;

	for (i = 0; i < n && i < b->n;) {
		struct zchan *v = b->cons[i];
		uint32_t a = load_acquire((uint32_t *)ring_word(v,
					ZCHAN_BCAST_ANNOUNCE_FROM_END));

		if (likely(a == v->p_alloc)) {
			i++;
			continue;
		}
		v->p_alloc = a;
		while ((ret = recv_announce(v, fds)) > 0)
			adopt(p, fds);
		if (ret < 0 && ret != -ENOMEM) {
			drop(p, i);
			n--;
			continue;
		}
		i++;
	}
}

/* It was sent: the next zchan_send_end() makes another. */
void __zchan_bcast_sent(struct zchan *p)
{
	if (p->bcast)
		p->bcast->pending = -1;
	else	/* a consumer's: the new end's eventfd goes with it */
		__zchan_close_fd(&p->memfd.peer_fds[ZCHAN_MEMFD_OWN_EFD]);
}
