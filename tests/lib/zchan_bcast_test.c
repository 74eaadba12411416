// SPDX-License-Identifier: MIT OR LGPL-2.1
/*
 * libzchan broadcast (ZCHAN_BROADCAST, one producer, several consumers):
 * every consumer gets every message published after it was made, in
 * order, zero-copy and read-only; a slow or hostile consumer holds the
 * producer back and can never make it overwrite what another consumer
 * reads; one killed frees its place and its room; every consumer sees the
 * end of the stream.  Documentation/many.rst ("Broadcast").
 *
 * The producer is the test process; each consumer is a child forked
 * before the channel exists (so it holds none of the producer's fds),
 * which receives its end over a socketpair and reports what it got on the
 * same socket.  Both backends as fixture variants: the kernel's skips
 * until the module has broadcast.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <liburing.h>
#include <zchan.h>

#include "kselftest_harness.h"
#include "../common/zchan_test_lib.h"
#include "../common/zchan_test_payload.h"
#include "../common/zchan_test_utils.h"

#undef TEST_TIMEOUT_DEFAULT
#define TEST_TIMEOUT_DEFAULT 300

#define MAX_CONS	4
#define MSG_MAX		300

/* Message @seq: 8 to MSG_MAX bytes of payload (0, @seq), @seq first. */
static size_t msg_len(uint64_t seq)
{
	return zc_payload_len(0, seq, 8, MSG_MAX);
}

/* What a consumer child reports when it saw the end of the stream. */
struct report {
	int64_t first;		/* first seq, -1 if none */
	uint64_t count;
	uint64_t bad;		/* out of order or wrong payload */
	int end;		/* the call that ended the stream */
	int hup;		/* zchan_poll() at the end */
};

/* How a consumer child reads. */
enum mode {
	READ_ZC,		/* zchan_recv_zc(), check, release */
	READ_COPY,		/* zchan_recv() */
	READ_SLOW,		/* zero-copy, a nap every 64 messages */
	READ_HOLD,		/* wait for a byte on the socket first */
	READ_ROCHECK,		/* zero-copy, and a write must fault */
	READ_URING,		/* non-blocking, waits in io_uring */
	READ_BORROW_STOP,	/* borrow 5, say so on the socket, then stop */
};

struct cons {
	pid_t pid;
	int sock;		/* ours; the child has the other end */
};

static int child_sock;

static void check_msg(const void *buf, ssize_t len, struct report *r)
{
	uint64_t seq;

	if (len < 8) {
		r->bad++;
		return;
	}
	memcpy(&seq, buf, sizeof(seq));
	seq = le64toh(seq);
	if (r->first < 0)
		r->first = (int64_t)seq;
	if (seq != (uint64_t)r->first + r->count ||
	    (size_t)len != msg_len(seq) ||
	    !zc_payload_ok(buf, (size_t)len, 0, seq))
		r->bad++;
	r->count++;
}

/* Read until the end, waiting for zchan_fd() in an io_uring. */
static int uring_reader(struct zchan *c, struct report *r)
{
	struct io_uring_cqe *cqe;
	struct io_uring ring;
	const void *p;
	ssize_t n;

	if (io_uring_queue_init(4, &ring, 0))
		return 103;
	for (;;) {
		n = zchan_recv_zc(c, &p, ZCHAN_NONBLOCK);
		if (n >= 0) {
			check_msg(p, n, r);
			if (zchan_release(c, p))
				r->bad++;
			continue;
		}
		if (n != -EAGAIN)
			break;
		zchan_prep_wait(io_uring_get_sqe(&ring), c);
		if (io_uring_submit_and_wait(&ring, 1) < 0 ||
		    io_uring_wait_cqe(&ring, &cqe))
			return 104;
		if (cqe->res < 0)
			r->bad++;
		io_uring_cqe_seen(&ring, cqe);
	}
	io_uring_queue_exit(&ring);
	r->end = (int)n;
	r->hup = zchan_poll(c);
	zchan_close(c);
	return write(child_sock, r, sizeof(*r)) == sizeof(*r) ? 0 : 102;
}

static int consumer_main(void *arg)
{
	enum mode mode = (enum mode)(uintptr_t)arg;
	struct report r = { .first = -1 };
	unsigned char buf[MSG_MAX];
	struct zchan *c;
	const void *p;
	ssize_t n;
	char go;

	if (zchan_recv_peer(child_sock, &c))
		return 100;
	if (mode == READ_HOLD && read(child_sock, &go, 1) != 1)
		return 101;
	if (mode == READ_URING)
		return uring_reader(c, &r);
	if (mode == READ_BORROW_STOP) {
		for (n = 0; n < 5; n++)
			if (zchan_recv_zc(c, &p, 0) < 0)
				return 105;
		if (write(child_sock, "b", 1) != 1)
			return 106;
		pause();	/* until killed, the five borrowed */
	}
	for (;;) {
		if (mode == READ_COPY) {
			n = zchan_recv(c, buf, sizeof(buf), 0);
			if (n < 0)
				break;
			check_msg(buf, n, &r);
			continue;
		}
		n = zchan_recv_zc(c, &p, 0);
		if (n < 0)
			break;
		check_msg(p, n, &r);
		if (mode == READ_ROCHECK && r.count == 1 && !zc_write_segfaults(p))
			r.bad++;
		if (mode == READ_SLOW && !(r.count % 64))
			usleep(1000);
		if (zchan_release(c, p))
			r.bad++;
	}
	r.end = (int)n;
	r.hup = zchan_poll(c);
	zchan_close(c);
	return write(child_sock, &r, sizeof(r)) == sizeof(r) ? 0 : 102;
}

/* A consumer child, waiting for its end: before the channel exists. */
static int spawn_consumer(struct cons *k, enum mode mode)
{
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
		return -errno;
	child_sock = sv[1];
	k->pid = zc_spawn(consumer_main, (void *)(uintptr_t)mode);
	close(sv[1]);
	k->sock = sv[0];
	return k->pid < 0 ? (int)k->pid : 0;
}

static int get_report(struct cons *k, struct report *r)
{
	return read(k->sock, r, sizeof(*r)) == sizeof(*r) ? 0 : -1;
}

static int send_msg(struct zchan *p, uint64_t seq, unsigned int flags)
{
	unsigned char buf[MSG_MAX];
	size_t len = msg_len(seq);
	ssize_t n;

	zc_payload_fill(buf, len, 0, seq);
	n = zchan_send(p, buf, len, flags);
	return n < 0 ? (int)n : 0;
}

FIXTURE(bcast) {
	struct zchan *p;
	struct cons k[MAX_CONS];
	unsigned int nk;
};

ZC_BACKEND_VARIANTS(bcast);

FIXTURE_SETUP(bcast)
{
	self->p = NULL;
	self->nk = 0;
}

FIXTURE_TEARDOWN(bcast)
{
	unsigned int i;

	zchan_close(self->p);
	for (i = 0; i < self->nk; i++) {
		if (self->k[i].pid > 0)
			zc_child_kill(self->k[i].pid);
		close(self->k[i].sock);
	}
}

/* The broadcast channel of @nc consumers, or skip the kernel variant. */
#define MAKE_CHANNEL(entries, pool, nc) do {				\
	struct zchan_attr __a;						\
	int __ret;							\
									\
	zc_attr(&__a, variant->backend, entries, pool, MSG_MAX);	\
	__a.flags = ZCHAN_BROADCAST;					\
	__a.max_consumers = (nc);					\
	__ret = zchan_create(NULL, &__a, &self->p);			\
	if (__ret == -EOPNOTSUPP &&					\
	    variant->backend == ZCHAN_BACKEND_KERNEL)			\
		SKIP(return, "the module has no broadcast yet");	\
	ASSERT_EQ(0, __ret);						\
} while (0)

#define SPAWN(mode) do {						\
	ASSERT_EQ(0, spawn_consumer(&self->k[self->nk], mode));		\
	self->nk++;							\
} while (0)

#define SEND_END(i)							\
	ASSERT_EQ(0, zchan_send_end(self->p, ZCHAN_ROLE_CONSUMER,	\
				    self->k[i].sock))

/* Consumer @i reports @count messages from @first, all good, and EOS. */
#define EXPECT_REPORT(i, want_first, want_count) do {			\
	struct report __r;						\
									\
	ASSERT_EQ(0, get_report(&self->k[i], &__r));			\
	EXPECT_EQ((int64_t)(want_first), __r.first);			\
	EXPECT_EQ((uint64_t)(want_count), __r.count);			\
	EXPECT_EQ(0, __r.bad);						\
	EXPECT_EQ(-EPIPE, __r.end);					\
	EXPECT_TRUE(__r.hup & POLLHUP);					\
	zc_child_exits(self->k[i].pid, 0);				\
	self->k[i].pid = 0;						\
} while (0)

/* 3 consumers x 10000 messages: each gets all, in order, intact. */
TEST_F(bcast, three_consumers_get_everything)
{
	uint64_t i, n = 10000;

	ZC_NEED_BACKEND();
	SPAWN(READ_ZC);
	SPAWN(READ_COPY);
	SPAWN(READ_ROCHECK);
	MAKE_CHANNEL(64, 65536, 3);
	for (i = 0; i < 3; i++)
		SEND_END(i);
	EXPECT_EQ(3, zchan_ends(self->p, ZCHAN_ROLE_CONSUMER));
	EXPECT_EQ(1, zchan_ends(self->p, ZCHAN_ROLE_PRODUCER));
	for (i = 0; i < n; i++)
		ASSERT_EQ(0, send_msg(self->p, i, 0));
	zchan_close(self->p);
	self->p = NULL;
	for (i = 0; i < 3; i++)
		EXPECT_REPORT(i, 0, n);
}

/*
 * A consumer that does not read holds the producer back (the ring fills,
 * ZCHAN_NONBLOCK says -EAGAIN), and nothing is lost once it reads, slowly.
 */
TEST_F(bcast, slow_consumer_holds_the_producer)
{
	uint64_t i, sent, n = 3000;

	ZC_NEED_BACKEND();
	SPAWN(READ_SLOW);
	SPAWN(READ_HOLD);
	MAKE_CHANNEL(16, 65536, 2);
	SEND_END(0);
	SEND_END(1);
	for (sent = 0; sent < n; sent++) {
		int ret = send_msg(self->p, sent, ZCHAN_NONBLOCK);

		if (ret == -EAGAIN)
			break;
		ASSERT_EQ(0, ret);
	}
	EXPECT_EQ(16, sent);	/* a ring's worth: the pool holds more */
	ASSERT_EQ(1, write(self->k[1].sock, "g", 1));
	for (i = sent; i < n; i++)
		ASSERT_EQ(0, send_msg(self->p, i, 0));
	zchan_close(self->p);
	self->p = NULL;
	EXPECT_REPORT(0, 0, n);
	EXPECT_REPORT(1, 0, n);
}

/*
 * SIGKILL of a consumer that holds the producer back with messages it
 * borrowed: the producer's room comes back, the others carry on and get
 * everything.
 */
TEST_F(bcast, killed_consumer_frees_its_room)
{
	uint64_t sent, n = 5000;
	char borrowed;

	ZC_NEED_BACKEND();
	SPAWN(READ_ZC);
	SPAWN(READ_COPY);
	SPAWN(READ_BORROW_STOP);
	MAKE_CHANNEL(32, 65536, 3);
	SEND_END(0);
	SEND_END(1);
	SEND_END(2);
	for (sent = 0; sent < n; sent++) {
		int ret = send_msg(self->p, sent, ZCHAN_NONBLOCK);

		if (ret == -EAGAIN)
			break;
		ASSERT_EQ(0, ret);
	}
	ASSERT_LT(sent, n);
	ASSERT_EQ(1, read(self->k[2].sock, &borrowed, 1));
	EXPECT_EQ(ZC_SIGNALLED(SIGKILL), zc_child_kill(self->k[2].pid));
	self->k[2].pid = 0;
	for (; sent < n; sent++)
		ASSERT_EQ(0, send_msg(self->p, sent, 0));
	EXPECT_EQ(2, zchan_ends(self->p, ZCHAN_ROLE_CONSUMER));
	zchan_close(self->p);
	self->p = NULL;
	EXPECT_REPORT(0, 0, n);
	EXPECT_REPORT(1, 0, n);
}

struct killed_producer {
	int socks[2];		/* to the consumers */
	int done;		/* "d" once everything is committed */
	uint64_t n;
};

/*
 * A producer that commits n messages (the last ones queued with
 * ZCHAN_MORE, one loan left open after them), says so, and waits to be
 * killed.
 */
static int killed_producer_main(void *arg)
{
	struct killed_producer *kp = arg;
	struct zchan_attr a;
	struct zchan *p;
	uint64_t i;
	void *loan;

	zc_attr(&a, ZCHAN_BACKEND_MEMFD, 64, 65536, MSG_MAX);
	a.flags = ZCHAN_BROADCAST;
	a.max_consumers = 2;
	if (zchan_create(NULL, &a, &p))
		return 100;
	for (i = 0; i < 2; i++)
		if (zchan_send_end(p, ZCHAN_ROLE_CONSUMER, kp->socks[i]))
			return 101;
	for (i = 0; i < kp->n; i++)
		if (send_msg(p, i, i + 10 >= kp->n ? ZCHAN_MORE : 0))
			return 102;
	if (zchan_loan(p, 64, &loan, 0) || write(kp->done, "d", 1) != 1)
		return 103;
	pause();
	return 104;
}

/*
 * A producer killed with SIGKILL: every consumer gets every message it
 * committed (those it queued with ZCHAN_MORE too), then the end.
 */
TEST_F(bcast, killed_producer_loses_nothing_committed)
{
	struct killed_producer kp = { .n = 3000 };
	int pipefd[2], i;
	pid_t prod;
	char d;

	ZC_NEED_BACKEND();
	if (variant->backend == ZCHAN_BACKEND_KERNEL)
		SKIP(return, "the module has no broadcast yet");
	SPAWN(READ_ZC);
	SPAWN(READ_COPY);
	ASSERT_EQ(0, pipe(pipefd));
	kp.socks[0] = self->k[0].sock;
	kp.socks[1] = self->k[1].sock;
	kp.done = pipefd[1];
	prod = zc_spawn(killed_producer_main, &kp);
	ASSERT_GT(prod, 0);
	close(pipefd[1]);
	ASSERT_EQ(1, read(pipefd[0], &d, 1))
		TH_LOG("the producer did not get going");
	close(pipefd[0]);
	EXPECT_EQ(ZC_SIGNALLED(SIGKILL), zc_child_kill(prod));
	for (i = 0; i < 2; i++)
		EXPECT_REPORT(i, 0, kp.n);
}

/* A consumer made later gets exactly what was published after. */
TEST_F(bcast, late_consumer_starts_at_adoption)
{
	uint64_t i;

	ZC_NEED_BACKEND();
	SPAWN(READ_ZC);
	SPAWN(READ_ZC);
	MAKE_CHANNEL(64, 65536, 2);
	SEND_END(0);
	for (i = 0; i < 1000; i++)
		ASSERT_EQ(0, send_msg(self->p, i, 0));
	SEND_END(1);
	for (; i < 3000; i++)
		ASSERT_EQ(0, send_msg(self->p, i, 0));
	zchan_close(self->p);
	self->p = NULL;
	EXPECT_REPORT(0, 0, 3000);
	EXPECT_REPORT(1, 1000, 2000);
}

/*
 * At most max_consumers live; one that closed frees its place; every end
 * counts them (zchan_ends()).
 */
TEST_F(bcast, eusers_at_max_consumers)
{
	struct zchan *c[3];
	int sv[2], i;

	ZC_NEED_BACKEND();
	MAKE_CHANNEL(16, 65536, 3);
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	for (i = 0; i < 3; i++) {
		ASSERT_EQ(0, zchan_send_end(self->p, ZCHAN_ROLE_CONSUMER, sv[0]));
		ASSERT_EQ(0, zchan_recv_peer(sv[1], &c[i]));
	}
	EXPECT_EQ(-EUSERS, zchan_send_end(self->p, ZCHAN_ROLE_CONSUMER, sv[0]));
	EXPECT_EQ(-EUSERS, zchan_send_end(self->p, ZCHAN_ROLE_PRODUCER, sv[0]));
	EXPECT_EQ(-EUSERS, zchan_send_end(c[0], ZCHAN_ROLE_PRODUCER, sv[0]));
	EXPECT_EQ(3, zchan_ends(self->p, ZCHAN_ROLE_CONSUMER));
	EXPECT_EQ(3, zchan_ends(c[0], ZCHAN_ROLE_CONSUMER));
	EXPECT_EQ(1, zchan_ends(c[0], ZCHAN_ROLE_PRODUCER));
	zchan_close(c[1]);
	EXPECT_EQ(2, zchan_ends(self->p, ZCHAN_ROLE_CONSUMER));
	EXPECT_EQ(2, zchan_ends(c[0], ZCHAN_ROLE_CONSUMER));
	ASSERT_EQ(0, zchan_send_end(self->p, ZCHAN_ROLE_CONSUMER, sv[0]));
	ASSERT_EQ(0, zchan_recv_peer(sv[1], &c[1]));
	EXPECT_EQ(-EUSERS, zchan_send_end(self->p, ZCHAN_ROLE_CONSUMER, sv[0]));
	zchan_close(self->p);
	self->p = NULL;
	EXPECT_EQ(0, zchan_ends(c[0], ZCHAN_ROLE_PRODUCER));
	for (i = 0; i < 3; i++)
		zchan_close(c[i]);
	close(sv[0]);
	close(sv[1]);
}

/*
 * With every consumer gone, the producer keeps accepting (a consumer may
 * still be made) and what it publishes meanwhile is released at once.
 */
TEST_F(bcast, no_consumer_keeps_accepting)
{
	const void *buf;
	struct zchan *c;
	uint64_t i, seq;
	int sv[2];

	ZC_NEED_BACKEND();
	MAKE_CHANNEL(16, 65536, 2);
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	ASSERT_EQ(0, zchan_send_end(self->p, ZCHAN_ROLE_CONSUMER, sv[0]));
	ASSERT_EQ(0, zchan_recv_peer(sv[1], &c));
	zchan_close(c);
	for (i = 0; i < 1000; i++)
		ASSERT_EQ(0, send_msg(self->p, i, ZCHAN_NONBLOCK));
	EXPECT_EQ(0, zchan_ends(self->p, ZCHAN_ROLE_CONSUMER));
	EXPECT_EQ(0, zchan_flush(self->p));
	EXPECT_EQ(POLLOUT, zchan_poll(self->p));
	/* and a new one gets what follows */
	ASSERT_EQ(0, zchan_send_end(self->p, ZCHAN_ROLE_CONSUMER, sv[0]));
	ASSERT_EQ(0, zchan_recv_peer(sv[1], &c));
	ASSERT_EQ(0, send_msg(self->p, 1000, 0));
	ASSERT_EQ((ssize_t)msg_len(1000), zchan_recv_zc(c, &buf, ZCHAN_NONBLOCK));
	memcpy(&seq, buf, sizeof(seq));
	EXPECT_EQ(1000, le64toh(seq));
	EXPECT_EQ(0, zchan_release(c, buf));
	EXPECT_EQ(-EAGAIN, zchan_recv_zc(c, &buf, ZCHAN_NONBLOCK));
	zchan_close(c);
	close(sv[0]);
	close(sv[1]);
}

/* The calling consumer's own ring, found as zc_forger_map() finds one. */
static uint32_t *own_cons_ring(void)
{
	char line[512];
	void *ring = NULL;
	FILE *maps = fopen("/proc/self/maps", "r");

	if (!maps)
		return NULL;
	while (fgets(line, sizeof(line), maps)) {
		unsigned long lo, hi, off;
		char perms[8];

		if (sscanf(line, "%lx-%lx %7s %lx", &lo, &hi, perms, &off) == 4 &&
		    !strcmp(perms, "rw-s") && !off && strstr(line, "zchan-cons"))
			ring = (void *)lo;
	}
	fclose(maps);
	return ring;
}

/*
 * A hostile consumer: its head, read and announce words get garbage
 * (the announce word is 16 bytes before the end of its ring page), from before it
 * says it is ready until it is told to stop (a byte on its socket); then
 * it reports how many it wrote.
 */
static int hostile_main(void *arg)
{
	struct zchan_layout l;
	struct zchan_attr a;
	struct zchan *c;
	uint64_t s = 1, writes = 0;
	struct pollfd pfd = { .fd = child_sock, .events = POLLIN };
	uint32_t *ring;

	if (zchan_recv_peer(child_sock, &c) || zchan_get_attr(c, &a))
		return 100;
	memset(&l, 0, sizeof(l));
	l.ring_entries = a.ring_entries;
	l.pool_size = a.pool_size;
	l.max_msg = a.max_msg;
	zchan_layout_set_words(&l);
	ring = own_cons_ring();
	if (!ring)
		return 101;
	/* some garbage before the producer starts, then until told */
	while (writes < 1000 || poll(&pfd, 1, 0) == 0) {
		uint32_t v = (uint32_t)zc_rand(&s);

		/* anything: near the tail, far off, the past */
		if (writes % 3 == 1)
			v = (uint32_t)(v % 64);
		__atomic_store_n(zc_word(ring, l.cons_head), v, __ATOMIC_RELEASE);
		__atomic_store_n(zc_word(ring, l.cons_read), ~v, __ATOMIC_RELEASE);
		/* and "I announced an end", with none sent */
		__atomic_store_n(zc_word(ring, (uint32_t)sysconf(_SC_PAGESIZE) - 16),
				 v, __ATOMIC_RELEASE);
		if (++writes == 1000 && write(child_sock, "r", 1) != 1)
			return 102;
	}
	return write(child_sock, &writes, sizeof(writes)) == sizeof(writes) ?
	       0 : 103;
}

/*
 * A consumer writing garbage to its head and read cannot make the
 * producer overwrite a message another consumer holds, nor crash it.
 */
TEST_F(bcast, hostile_consumer_cannot_free_others_messages)
{
	const void *held[8];
	struct zchan *c;
	uint64_t i, sent, writes;
	int sv[2], sh[2];
	char ready;
	ssize_t n;

	ZC_NEED_BACKEND();
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sh));
	child_sock = sh[1];
	self->k[0].pid = zc_spawn(hostile_main, NULL);
	close(sh[1]);
	self->k[0].sock = sh[0];
	self->nk = 1;
	ASSERT_GT(self->k[0].pid, 0);
	/* a pool that fills before the ring: space is what would be reused */
	MAKE_CHANNEL(256, 16384, 2);
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	ASSERT_EQ(0, zchan_send_end(self->p, ZCHAN_ROLE_CONSUMER, sv[0]));
	ASSERT_EQ(0, zchan_recv_peer(sv[1], &c));
	SEND_END(0);
	ASSERT_EQ(1, read(self->k[0].sock, &ready, 1));
	for (i = 0; i < 8; i++)
		ASSERT_EQ(0, send_msg(self->p, i, 0));
	for (i = 0; i < 8; i++) {
		n = zchan_recv_zc(c, &held[i], ZCHAN_NONBLOCK);
		ASSERT_EQ((ssize_t)msg_len(i), n);
	}
	/* fill whatever the producer thinks is free, many times over */
	for (sent = 8; sent < 100000; sent++) {
		int ret = send_msg(self->p, sent, ZCHAN_NONBLOCK);

		if (ret == -EAGAIN)
			break;
		ASSERT_EQ(0, ret);
	}
	ASSERT_LT(sent, 100000);
	for (i = 0; i < 8; i++)
		EXPECT_TRUE(zc_payload_ok(held[i], msg_len(i), 0, i))
			TH_LOG("held message %llu overwritten",
			       (unsigned long long)i);
	/* the producer is fine; with the holder gone, it goes on */
	ASSERT_EQ(1, write(self->k[0].sock, "s", 1));
	ASSERT_EQ(sizeof(writes), read(self->k[0].sock, &writes, sizeof(writes)));
	EXPECT_GE(writes, 1000);
	zc_child_exits(self->k[0].pid, 0);
	self->k[0].pid = 0;
	zchan_close(c);
	for (i = 0; i < 1000; i++)
		ASSERT_EQ(0, send_msg(self->p, sent + i, 0));
	close(sv[0]);
	close(sv[1]);
}

/*
 * Waits on every end: consumers that wait in io_uring (zchan_prep_wait()),
 * a producer that waits with zchan_wait() for room whenever a
 * non-blocking send finds none.
 */
TEST_F(bcast, waits_on_every_end)
{
	uint64_t i, waits = 0, n = 5000;
	int ret;

	ZC_NEED_BACKEND();
	SPAWN(READ_URING);
	SPAWN(READ_URING);
	SPAWN(READ_SLOW);
	MAKE_CHANNEL(16, 65536, 3);
	for (i = 0; i < 3; i++)
		SEND_END(i);
	for (i = 0; i < n; i++) {
		while ((ret = send_msg(self->p, i, ZCHAN_NONBLOCK)) == -EAGAIN) {
			ASSERT_EQ(POLLOUT, zchan_wait(self->p, -1) & POLLOUT);
			waits++;
		}
		ASSERT_EQ(0, ret);
	}
	EXPECT_GT(waits, 0);	/* the slow one made it wait */
	zchan_close(self->p);
	self->p = NULL;
	for (i = 0; i < 3; i++)
		EXPECT_REPORT(i, 0, n);
}

/* Take everything @c has now, checking it; how many. */
static uint64_t drain(struct zchan *c, struct report *r)
{
	const void *buf;
	uint64_t n = 0;
	ssize_t len;

	while ((len = zchan_recv_zc(c, &buf, ZCHAN_NONBLOCK)) >= 0) {
		check_msg(buf, len, r);
		if (zchan_release(c, buf))
			r->bad++;
		n++;
	}
	r->end = (int)len;
	return n;
}

/* Send @from to @to - 1, taking what local consumer @c gets meanwhile. */
static int send_draining(struct zchan *p, struct zchan *c, uint64_t from,
			 uint64_t to, struct report *r)
{
	uint64_t i;
	int ret;

	for (i = from; i < to; i++) {
		while ((ret = send_msg(p, i, ZCHAN_NONBLOCK)) == -EAGAIN)
			if (!drain(c, r))	/* room is someone else's */
				zchan_wait(p, 10000000);
		if (ret)
			return ret;
	}
	return 0;
}

/*
 * A consumer end made by a consumer: announced to the producer, which
 * adopts it; it gets every message from its start on, in order.
 */
TEST_F(bcast, consumer_made_end_starts_at_adoption)
{
	struct report r = { .first = -1 }, lr;
	struct zchan *c;
	int sv[2];

	ZC_NEED_BACKEND();
	SPAWN(READ_ZC);
	MAKE_CHANNEL(64, 65536, 3);
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	ASSERT_EQ(0, zchan_send_end(self->p, ZCHAN_ROLE_CONSUMER, sv[0]));
	ASSERT_EQ(0, zchan_recv_peer(sv[1], &c));
	ASSERT_EQ(0, send_draining(self->p, c, 0, 100, &r));
	ASSERT_EQ(0, zchan_send_end(c, ZCHAN_ROLE_CONSUMER, self->k[0].sock));
	ASSERT_EQ(0, send_draining(self->p, c, 100, 3000, &r));
	EXPECT_EQ(2, zchan_ends(self->p, ZCHAN_ROLE_CONSUMER));
	zchan_close(self->p);
	self->p = NULL;
	drain(c, &r);
	EXPECT_EQ(0, r.first);
	EXPECT_EQ(3000, r.count);
	EXPECT_EQ(0, r.bad);
	EXPECT_EQ(-EPIPE, r.end);
	ASSERT_EQ(0, get_report(&self->k[0], &lr));
	EXPECT_GE(lr.first, 100);
	EXPECT_EQ(3000, lr.first + lr.count);
	EXPECT_EQ(0, lr.bad);
	EXPECT_EQ(-EPIPE, lr.end);
	zc_child_exits(self->k[0].pid, 0);
	self->k[0].pid = 0;
	zchan_close(c);
	close(sv[0]);
	close(sv[1]);
}

/*
 * The receiver of an end a consumer made is killed (before or after it
 * got the end, before the producer adopted it): the producer adopts the
 * end, finds it gone when it holds the producer back, and goes on.
 */
TEST_F(bcast, consumer_made_end_killed_before_adoption)
{
	struct report r = { .first = -1 };
	struct zchan *c;
	int sv[2];

	ZC_NEED_BACKEND();
	SPAWN(READ_BORROW_STOP);
	MAKE_CHANNEL(16, 65536, 3);
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	ASSERT_EQ(0, zchan_send_end(self->p, ZCHAN_ROLE_CONSUMER, sv[0]));
	ASSERT_EQ(0, zchan_recv_peer(sv[1], &c));
	ASSERT_EQ(0, zchan_send_end(c, ZCHAN_ROLE_CONSUMER, self->k[0].sock));
	EXPECT_EQ(ZC_SIGNALLED(SIGKILL), zc_child_kill(self->k[0].pid));
	self->k[0].pid = 0;
	ASSERT_EQ(0, send_draining(self->p, c, 0, 2000, &r));
	EXPECT_EQ(1, zchan_ends(self->p, ZCHAN_ROLE_CONSUMER));
	zchan_close(self->p);
	self->p = NULL;
	drain(c, &r);
	EXPECT_EQ(0, r.first);
	EXPECT_EQ(2000, r.count);
	EXPECT_EQ(0, r.bad);
	EXPECT_EQ(-EPIPE, r.end);
	zchan_close(c);
	close(sv[0]);
	close(sv[1]);
}

/*
 * Until the producer adopted it, an end a consumer made shows nothing, not
 * even what was published before; then what is published after.
 */
TEST_F(bcast, consumer_made_end_waits_for_adoption)
{
	struct report r = { .first = -1 };
	unsigned char buf[MSG_MAX];
	struct zchan *c[2];
	int sv[2], i, tries;
	ssize_t n = -EAGAIN;

	ZC_NEED_BACKEND();
	MAKE_CHANNEL(16, 65536, 2);
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	ASSERT_EQ(0, zchan_send_end(self->p, ZCHAN_ROLE_CONSUMER, sv[0]));
	ASSERT_EQ(0, zchan_recv_peer(sv[1], &c[0]));
	for (i = 0; i < 5; i++)
		ASSERT_EQ(0, send_msg(self->p, i, 0));
	ASSERT_EQ(0, zchan_send_end(c[0], ZCHAN_ROLE_CONSUMER, sv[0]));
	ASSERT_EQ(0, zchan_recv_peer(sv[1], &c[1]));
	EXPECT_EQ(-EAGAIN, zchan_recv(c[1], buf, sizeof(buf), ZCHAN_NONBLOCK));
	EXPECT_EQ(0, zchan_poll(c[1]) & POLLIN);
	EXPECT_EQ(2, zchan_ends(self->p, ZCHAN_ROLE_CONSUMER));	/* adopts */
	ASSERT_EQ(0, send_msg(self->p, 5, 0));
	/* the first look may only start it */
	for (tries = 0; tries < 2 && n == -EAGAIN; tries++)
		n = zchan_recv(c[1], buf, sizeof(buf), ZCHAN_NONBLOCK);
	ASSERT_EQ((ssize_t)msg_len(5), n);
	check_msg(buf, n, &r);
	EXPECT_EQ(5, r.first);
	EXPECT_EQ(0, r.bad);
	EXPECT_EQ(-EAGAIN, zchan_recv(c[1], buf, sizeof(buf), ZCHAN_NONBLOCK));
	r.first = -1;
	r.count = 0;
	EXPECT_EQ(6, drain(c[0], &r));
	EXPECT_EQ(0, r.bad);
	for (i = 0; i < 2; i++)
		zchan_close(c[i]);
	close(sv[0]);
	close(sv[1]);
}

/*
 * One made by a consumer while max_consumers are live: the producer
 * refuses it, and it sees the end of the stream; the others go on.
 */
TEST_F(bcast, consumer_made_end_refused_when_full)
{
	struct zchan *c[3];
	unsigned char buf[MSG_MAX];
	int sv[2], i;

	ZC_NEED_BACKEND();
	MAKE_CHANNEL(16, 65536, 2);
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	for (i = 0; i < 2; i++) {
		ASSERT_EQ(0, zchan_send_end(self->p, ZCHAN_ROLE_CONSUMER, sv[0]));
		ASSERT_EQ(0, zchan_recv_peer(sv[1], &c[i]));
	}
	ASSERT_EQ(0, zchan_send_end(c[0], ZCHAN_ROLE_CONSUMER, sv[0]));
	ASSERT_EQ(0, zchan_recv_peer(sv[1], &c[2]));
	EXPECT_EQ(2, zchan_ends(self->p, ZCHAN_ROLE_CONSUMER));
	EXPECT_EQ(-EPIPE, zchan_recv(c[2], buf, sizeof(buf), ZCHAN_NONBLOCK));
	ASSERT_EQ(0, send_msg(self->p, 0, 0));
	for (i = 0; i < 2; i++) {
		struct report r = { .first = -1 };

		EXPECT_EQ(1, drain(c[i], &r));
		EXPECT_EQ(0, r.bad);
	}
	for (i = 0; i < 3; i++)
		zchan_close(c[i]);
	close(sv[0]);
	close(sv[1]);
}

/* Only broadcast from one producer is built: the other shapes say so. */
TEST_F(bcast, other_shapes_not_supported)
{
	struct zchan_attr a;
	struct zchan *p = NULL;

	ZC_NEED_BACKEND();
	zc_attr(&a, variant->backend, 16, 65536, MSG_MAX);
	a.max_consumers = 2;		/* a work queue */
	EXPECT_EQ(-EOPNOTSUPP, zchan_create(NULL, &a, &p));
	a.flags = ZCHAN_BROADCAST;
	a.max_producers = 2;		/* N:M */
	EXPECT_EQ(-EOPNOTSUPP, zchan_create(NULL, &a, &p));
	EXPECT_TRUE(p == NULL);
}

TEST_HARNESS_MAIN
