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
 * A new consumer end is made by the producer (zchan_send_end()), which
 * adopts it first: its head and read start at the producer's tail, and it
 * gets every message published from then on.
 */
#include <stdlib.h>
#include <string.h>

#include "zchan_int.h"

struct zchan_bcast {
	uint32_t never;		/* the producer's peer_closed: never set */
	unsigned int n;		/* views in @cons */
	int pending;		/* @cons index of the end not sent yet, or -1 */
	int prod_ro;		/* the producer memfd, read-only: every end's */
	struct zchan *cons[ZCHAN_ENDS_MAX];
};

/*
 * A view of the consumer end in @cons_fd (mapped here, not taken) that
 * takes @efd (its eventfd) and @sock (our half of its socket) even when it
 * fails.  Its p_seen is the consumer's head as the producer counts it.
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
	return 0;
fail:
	v->fd = -1;
	__zchan_free(v);
	return (int)PTR_ERR(m);
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
	struct zchan_bcast *b = p->bcast;

	if (!b)
		return;
	while (b->n)
		drop(p, b->n - 1);
	__zchan_close_fd(&b->prod_ro);
	free(b);
	p->bcast = NULL;
}

/*
 * The producer's head (ring.c, prod_reclaim()): the least of the live
 * consumers' heads, each taken only within [its last head, tail]; with no
 * consumer, the tail.  A consumer that closed is dropped here.
 */
uint32_t __zchan_bcast_head(struct zchan *p)
{
	struct zchan_bcast *b = p->bcast;
	uint32_t seen = p->p_seen, tail = p->p_tail, min = tail - seen, h;
	unsigned int i;

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

/* Has every live consumer taken all we published (prod_batch_free())? */
bool __zchan_bcast_all_read(struct zchan *p)
{
	struct zchan_bcast *b = p->bcast;
	unsigned int i;

	for (i = 0; i < b->n; i++)
		if (load_acquire(b->cons[i]->read) != p->p_tail)
			return false;
	return true;
}

/* After a publish (ring.c): kick every consumer that sleeps, one fence. */
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

	for (i = 0; i < b->n;) {
		struct zchan *v = b->cons[i];

		if ((int)i == b->pending) {
			i++;
		} else if (p->sleep_watches_peer && !load_acquire(v->cons_closed)) {
			(void)__zchan_holders_watch(v);
			i++;
		} else if (__zchan_peer_gone(v, true)) {
			drop(p, i);
		} else {
			i++;
		}
	}
	return false;
}

/* zchan_ends() of the producer: live consumers, the one not sent too. */
int __zchan_bcast_ends(struct zchan *p, unsigned int role)
{
	if (role == ZCHAN_ROLE_PRODUCER)
		return 1;
	(void)__zchan_bcast_gone(p);
	return (int)p->bcast->n;
}

/*
 * A new consumer end, adopted: a consumer ring whose head and read start
 * at our tail, an eventfd, a socketpair; -EUSERS once max_consumers are
 * live (the ones that went are looked for first).
 */
static int cons_new(struct zchan *p)
{
	const struct zchan_layout *l = &p->layout;
	struct zchan_bcast *b = p->bcast;
	uint32_t start = p->p_tail;
	uint64_t end_off;
	int fd, efd, sp[2], ret;

	if (b->n >= p->max_consumers) {
		(void)__zchan_bcast_gone(p);
		if (b->n >= p->max_consumers)
			return -EUSERS;
	}
	fd = __zchan_memfd_cons_region(l, &end_off);
	if (fd < 0)
		return fd;
	if (__sys_pwrite(fd, &start, sizeof(start),
			 (off_t)(l->cons_ring_off + l->cons_head)) != sizeof(start) ||
	    __sys_pwrite(fd, &start, sizeof(start),
			 (off_t)(l->cons_ring_off + l->cons_read)) != sizeof(start)) {
		ret = -EIO;
		goto close_fd;
	}
	efd = __sys_eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (efd < 0) {
		ret = efd;
		goto close_fd;
	}
	ret = __sys_socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC |
			       SOCK_NONBLOCK, 0, sp);
	if (ret < 0) {
		__sys_close(efd);
		goto close_fd;
	}
	ret = view_new(p, fd, end_off, efd, sp[0]);
	if (!ret) {
		struct epoll_event ev;

		memset(&ev, 0, sizeof(ev));
		ev.events = EPOLLRDHUP;
		ev.data.fd = sp[0];
		ret = __sys_epoll_ctl(p->fd, EPOLL_CTL_ADD, sp[0], &ev);
		if (ret)
			drop(p, b->n - 1);
	}
	if (ret) {
		__sys_close(sp[1]);
		goto close_fd;
	}
	b->pending = (int)b->n - 1;
	p->memfd.peer_fds[ZCHAN_MEMFD_CONS] = fd;
	p->memfd.peer_fds[ZCHAN_MEMFD_SOCK] = sp[1];
	return 0;
close_fd:
	__sys_close(fd);
	return ret;
}

/*
 * memfd.c's peer_fds() on a broadcast channel: a new consumer end made by
 * the producer (or the one made before, if sending it failed).  One
 * producer: -EUSERS for another.  A consumer cannot make one yet: it
 * would have to announce it to the producer (-EOPNOTSUPP).
 */
int __zchan_bcast_peer_fds(struct zchan *z, unsigned int role, int *fds,
			   struct zchan_layout *l)
{
	struct zchan_bcast *b = z->bcast;
	int ret;

	if (role != ZCHAN_ROLE_CONSUMER)
		return -EUSERS;
	if (!b)
		return -EOPNOTSUPP;
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

/* It was sent: the next zchan_send_end() makes another. */
void __zchan_bcast_sent(struct zchan *p)
{
	p->bcast->pending = -1;
}
