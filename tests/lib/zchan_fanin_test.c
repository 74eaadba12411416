// SPDX-License-Identifier: MIT OR LGPL-2.1
/*
 * libzchan fan-in: channels of several producer ends and one consumer end
 * (max_producers, zchan_send_end(), zchan_ends(), zchan_attach(3)).  Each
 * producer's messages in its order, every producer served, one fd to wait
 * on, releases across lanes, the end of the stream only when the last
 * producer is gone, the roles' limits.  Both backends (FIXTURE_VARIANT);
 * the kernel variant is skipped where /dev/zchan is missing or the module
 * or library has no fan-in yet (-EOPNOTSUPP from zchan_create()).
 * The hostile and kill cases are zchan_many_test's.
 */
#include <errno.h>
#include <liburing.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <zchan.h>

#include "kselftest_harness.h"
#include "../common/zchan_test_lib.h"
#include "../common/zchan_test_payload.h"

/* TCG guests are slow: give every test room. */
#undef TEST_TIMEOUT_DEFAULT
#define TEST_TIMEOUT_DEFAULT 240

#define NPROD		4
#define MAX_MSG		512
#define WAIT_NS		(10 * 1000000000LL)	/* a liveness bound only */

FIXTURE(fanin) {
	struct zchan *p[NPROD + 1], *c;
	pid_t child[NPROD];
	struct zchan_attr a;
};

ZC_BACKEND_VARIANTS(fanin);

FIXTURE_SETUP(fanin)
{
	memset(self->p, 0, sizeof(self->p));
	memset(self->child, 0, sizeof(self->child));
	self->c = NULL;
	zc_attr(&self->a, variant->backend, 64, 65536, MAX_MSG);
	self->a.max_producers = NPROD;
}

FIXTURE_TEARDOWN(fanin)
{
	unsigned int i;

	for (i = 0; i < NPROD; i++)
		if (self->child[i] > 0)
			zc_child_kill(self->child[i]);
	for (i = 0; i <= NPROD; i++)
		zchan_close(self->p[i]);
	zchan_close(self->c);
}

/*
 * The first producer and the consumer, in this process; the kernel variant
 * is skipped where fan-in is missing.
 */
#define FANIN_PAIR()							\
	do {								\
		int __r;						\
									\
		ZC_NEED_BACKEND();					\
		__r = zc_local_pair(&self->a, &self->p[0], &self->c);	\
		if (__r == -EOPNOTSUPP &&				\
		    variant->backend == ZCHAN_BACKEND_KERNEL)		\
			SKIP(return, "no fan-in in this module/library");\
		ASSERT_EQ(0, __r);					\
	} while (0)

/* A new producer end made by @from, received in this process. */
static int new_producer(struct zchan *from, struct zchan **p)
{
	int sv[2], ret;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
		return -errno;
	ret = zchan_send_end(from, ZCHAN_ROLE_PRODUCER, sv[0]);
	if (!ret)
		ret = zchan_recv_peer(sv[1], p);
	close(sv[0]);
	close(sv[1]);
	return ret;
}

/* Message @seq of producer @stream: its length and payload. */
static uint32_t msg_len(uint32_t stream, uint32_t seq)
{
	return zc_payload_len(stream, seq, 8, MAX_MSG);
}

static int send_msg(struct zchan *p, uint32_t stream, uint32_t seq,
		    unsigned int flags)
{
	unsigned char buf[MAX_MSG];
	uint32_t len = msg_len(stream, seq);
	ssize_t n;

	zc_payload_fill(buf, len, stream, seq);
	memcpy(buf, &seq, sizeof(seq));		/* the receiver finds seq */
	memcpy(buf + 4, &stream, sizeof(stream));
	n = zchan_send(p, buf, len, flags);
	return n == (ssize_t)len ? 0 : (int)n;
}

/* Which producer and which of its messages @buf is (-1: garbage). */
static int msg_id(const void *buf, size_t len, uint32_t *stream,
		  uint32_t *seq)
{
	if (len < 8)
		return -1;
	memcpy(seq, buf, sizeof(*seq));
	memcpy(stream, (const char *)buf + 4, sizeof(*stream));
	if (*stream > NPROD || len != msg_len(*stream, *seq))
		return -1;
	return 0;
}

TEST_F(fanin, attr_and_limits)
{
	struct zchan_attr got, bad;
	struct zchan *x = NULL;
	int sv[2];

	FANIN_PAIR();
	ASSERT_EQ(0, zchan_get_attr(self->c, &got));
	EXPECT_EQ(NPROD, got.max_producers);
	EXPECT_EQ(1, got.max_consumers);
	ASSERT_EQ(0, zchan_get_attr(self->p[0], &got));
	EXPECT_EQ(NPROD, got.max_producers);

	/* several consumers are not built: -EOPNOTSUPP, on either backend */
	bad = self->a;
	bad.max_consumers = 2;
	EXPECT_ERR_ANY_ERRNO(-EOPNOTSUPP, zchan_create(NULL, &bad, &x));
	bad = self->a;
	bad.max_producers = ZCHAN_ENDS_MAX + 1;
	EXPECT_ERR_ANY_ERRNO(-EINVAL, zchan_create(NULL, &bad, &x));

	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	EXPECT_ERR_ANY_ERRNO(-EINVAL, zchan_send_end(self->p[0], 0, sv[0]));
	EXPECT_ERR_ANY_ERRNO(-EINVAL, zchan_send_end(self->p[0], 3, sv[0]));
	EXPECT_ERR_ANY_ERRNO(-EINVAL, zchan_ends(self->c, 0));
	EXPECT_ERR_ANY_ERRNO(-EINVAL, zchan_ends(NULL, ZCHAN_ROLE_PRODUCER));
	EXPECT_ERR_ANY_ERRNO(-EINVAL, zchan_attach("x", 7, &x));
	/* the one consumer is taken: a full role of a many-ended channel */
	EXPECT_ERR_ANY_ERRNO(-EUSERS, zchan_send_end(self->p[0],
						     ZCHAN_ROLE_CONSUMER,
						     sv[0]));
	EXPECT_ERR_ANY_ERRNO(-EUSERS, zchan_send_end(self->c,
						     ZCHAN_ROLE_CONSUMER,
						     sv[0]));
	close(sv[0]);
	close(sv[1]);

	/* a producer end is not a consumer, nor the other way round */
	EXPECT_EQ(-EINVAL, zchan_recv(self->p[0], &got, 1, ZCHAN_NONBLOCK));
	EXPECT_EQ(-EINVAL, zchan_send(self->c, "x", 1, 0));
}

/* A 1:1 channel keeps its answers: -EBUSY for a second consumer. */
TEST_F(fanin, one_to_one_roles)
{
	struct zchan_attr a, got;
	struct zchan *p = NULL, *c = NULL, *x = NULL;
	int sv[2];

	ZC_NEED_BACKEND();
	zc_attr(&a, variant->backend, 64, 65536, MAX_MSG);
	ASSERT_EQ(0, zc_local_pair(&a, &p, &c));
	ASSERT_EQ(0, zchan_get_attr(c, &got));
	EXPECT_EQ(1, got.max_producers);
	EXPECT_EQ(1, got.max_consumers);
	EXPECT_EQ(1, zchan_ends(p, ZCHAN_ROLE_PRODUCER));
	EXPECT_EQ(1, zchan_ends(p, ZCHAN_ROLE_CONSUMER));
	EXPECT_EQ(1, zchan_ends(c, ZCHAN_ROLE_PRODUCER));
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	EXPECT_EQ(-EBUSY, zchan_send_end(p, ZCHAN_ROLE_CONSUMER, sv[0]));
	EXPECT_EQ(-EBUSY, zchan_send_peer(p, sv[0]));
	EXPECT_EQ(-EUSERS, zchan_send_end(p, ZCHAN_ROLE_PRODUCER, sv[0]));
	close(sv[0]);
	close(sv[1]);
	zchan_close(c);
	EXPECT_EQ(0, zchan_ends(p, ZCHAN_ROLE_CONSUMER));
	zchan_close(p);
	(void)x;
}

/*
 * Producers made by a producer and by the consumer itself: each one's
 * messages arrive in its order, all of them, counted by zchan_ends(); the
 * end of the stream comes only after the last producer closed.
 */
TEST_F(fanin, order_and_end_of_stream)
{
	uint32_t next[NPROD + 1] = { 0 }, stream, seq, i, k;
	unsigned char buf[MAX_MSG];
	const unsigned int per = 40;
	ssize_t n;

	FANIN_PAIR();
	ASSERT_EQ(0, new_producer(self->p[0], &self->p[1]));	/* announced */
	ASSERT_EQ(0, new_producer(self->c, &self->p[2]));	/* the consumer's */
	ASSERT_EQ(0, new_producer(self->p[1], &self->p[3]));	/* a lane's */
	EXPECT_EQ(4, zchan_ends(self->c, ZCHAN_ROLE_PRODUCER));
	EXPECT_EQ(4, zchan_ends(self->p[0], ZCHAN_ROLE_PRODUCER));
	EXPECT_EQ(1, zchan_ends(self->p[3], ZCHAN_ROLE_CONSUMER));
	EXPECT_EQ(1, zchan_ends(self->c, ZCHAN_ROLE_CONSUMER));

	for (i = 0; i < per; i++)
		for (k = 0; k < 4; k++)
			ASSERT_EQ(0, send_msg(self->p[k], k, i, 0));
	for (k = 0; k < 4; k++) {
		zchan_close(self->p[k]);
		self->p[k] = NULL;
	}
	for (i = 0; i < 4 * per; i++) {
		n = zchan_recv(self->c, buf, sizeof(buf), 0);
		ASSERT_GT(n, 0);
		ASSERT_EQ(0, msg_id(buf, (size_t)n, &stream, &seq));
		ASSERT_EQ(next[stream], seq) TH_LOG("producer %u", stream);
		next[stream]++;
	}
	EXPECT_EQ(-EPIPE, zchan_recv(self->c, buf, sizeof(buf), 0));
	EXPECT_EQ(-EPIPE, zchan_recv(self->c, buf, sizeof(buf),
				     ZCHAN_NONBLOCK));
	EXPECT_EQ(POLLHUP, zchan_poll(self->c));
	EXPECT_EQ(0, zchan_ends(self->c, ZCHAN_ROLE_PRODUCER));
}

/*
 * A producer with a full ring does not starve one with a single message:
 * it comes within the first turn's budget of the other.
 */
TEST_F(fanin, fair_turns)
{
	unsigned char buf[MAX_MSG];
	uint32_t stream, seq, i;
	int found = -1;
	ssize_t n;

	FANIN_PAIR();
	ASSERT_EQ(0, new_producer(self->p[0], &self->p[1]));
	for (i = 0; i < 60; i++)
		ASSERT_EQ(0, send_msg(self->p[0], 0, i, 0));
	ASSERT_EQ(0, send_msg(self->p[1], 1, 0, 0));
	for (i = 0; i < 61; i++) {
		n = zchan_recv(self->c, buf, sizeof(buf), ZCHAN_NONBLOCK);
		ASSERT_GT(n, 0);
		ASSERT_EQ(0, msg_id(buf, (size_t)n, &stream, &seq));
		if (stream == 1 && found < 0)
			found = (int)i;
	}
	EXPECT_GE(found, 0);
	EXPECT_LT(found, 40) TH_LOG("the second producer waited %d", found);
	EXPECT_EQ(-EAGAIN, zchan_recv(self->c, buf, sizeof(buf),
				      ZCHAN_NONBLOCK));
}

/* Borrowed messages of several lanes go back to their own pools. */
TEST_F(fanin, release_across_lanes)
{
	struct zchan_msg m[16], bad[2];
	const void *zc;
	unsigned int i, got = 0;
	int r;

	FANIN_PAIR();
	ASSERT_EQ(0, new_producer(self->p[0], &self->p[1]));
	for (i = 0; i < 4; i++) {
		ASSERT_EQ(0, send_msg(self->p[0], 0, i, 0));
		ASSERT_EQ(0, send_msg(self->p[1], 1, i, 0));
	}
	while (got < 8) {
		r = zchan_recv_batch(self->c, m + got, 16 - got, ZCHAN_NONBLOCK);
		ASSERT_GT(r, 0);
		got += (unsigned int)r;
	}
	ASSERT_EQ(8, got);
	EXPECT_EQ(-EAGAIN, zchan_recv_zc(self->c, &zc, ZCHAN_NONBLOCK));
	/* all or nothing: one unknown buffer releases none */
	bad[0] = m[0];
	bad[1].buf = &bad;
	bad[1].len = 1;
	EXPECT_EQ(-EINVAL, zchan_release_batch(self->c, bad, 2));
	EXPECT_EQ(-EINVAL, zchan_release(self->c, &bad));
	EXPECT_EQ(0, zchan_release(self->c, m[0].buf));
	EXPECT_EQ(-EINVAL, zchan_release(self->c, m[0].buf));	/* twice */
	EXPECT_EQ(7, zchan_release_batch(self->c, m + 1, 7));

	/* both rings are free again: each lane takes a full ring's worth */
	for (i = 0; i < 2; i++) {
		unsigned int k;

		for (k = 0; k < 64; k++)
			ASSERT_EQ(1, zchan_send(self->p[i], "x", 1,
						ZCHAN_NONBLOCK))
				TH_LOG("lane %u, message %u", i, k);
	}
}

/*
 * One fd for every lane: a lane made after the consumer started waiting
 * wakes it, as do zchan_wait() and zchan_poll().
 */
TEST_F(fanin, one_fd)
{
	struct pollfd pfd;
	unsigned char buf[MAX_MSG];
	uint32_t stream, seq;
	ssize_t n;

	FANIN_PAIR();
	pfd.fd = zchan_fd(self->c);
	pfd.events = POLLIN;
	ASSERT_GE(pfd.fd, 0);
	EXPECT_EQ(0, zchan_poll(self->c));
	EXPECT_EQ(-ETIME, zchan_wait(self->c, 1000000));
	ASSERT_EQ(0, new_producer(self->p[0], &self->p[1]));
	ASSERT_EQ(0, send_msg(self->p[1], 1, 0, 0));
	/* the consumer learns of the lane and its message from its fd */
	ASSERT_EQ(1, poll(&pfd, 1, 10000));
	EXPECT_EQ(POLLIN, zchan_wait(self->c, WAIT_NS));
	EXPECT_EQ(POLLIN, zchan_poll(self->c));
	n = zchan_recv(self->c, buf, sizeof(buf), ZCHAN_NONBLOCK);
	ASSERT_GT(n, 0);
	ASSERT_EQ(0, msg_id(buf, (size_t)n, &stream, &seq));
	EXPECT_EQ(1, stream);
	EXPECT_EQ(0, zchan_poll(self->c));

	/* the last producer gone: POLLHUP on the fd */
	zchan_close(self->p[0]);
	zchan_close(self->p[1]);
	self->p[0] = self->p[1] = NULL;
	EXPECT_EQ(POLLHUP, zchan_wait(self->c, WAIT_NS));
	ASSERT_EQ(1, poll(&pfd, 1, 10000));
	EXPECT_EQ(-EPIPE, zchan_recv(self->c, buf, sizeof(buf), 0));
}

/*
 * zchan_prep_wait() on the consumer: a poll in an io_uring completes for
 * a message on any lane, a lane made after it was armed included, and
 * for the end of the stream; never while nothing happened.
 */
TEST_F(fanin, prep_wait)
{
	struct io_uring_cqe *cqe;
	struct io_uring ring;
	unsigned char buf[MAX_MSG];
	int step;

	FANIN_PAIR();
	ASSERT_EQ(0, io_uring_queue_init(4, &ring, 0));
	for (step = 0; step < 3; step++) {
		zchan_prep_wait(io_uring_get_sqe(&ring), self->c);
		ASSERT_EQ(1, io_uring_submit(&ring));
		/* nothing yet: the poll is still pending */
		EXPECT_EQ(-EAGAIN, io_uring_peek_cqe(&ring, &cqe));
		if (step == 0) {
			ASSERT_EQ(0, new_producer(self->p[0], &self->p[1]));
			ASSERT_EQ(0, send_msg(self->p[1], 1, 0, 0));
		} else if (step == 1) {
			ASSERT_EQ(0, send_msg(self->p[0], 0, 0, 0));
		} else {
			zchan_close(self->p[0]);
			zchan_close(self->p[1]);
			self->p[0] = self->p[1] = NULL;
		}
		ASSERT_EQ(0, io_uring_wait_cqe(&ring, &cqe));
		EXPECT_GT(cqe->res, 0);
		io_uring_cqe_seen(&ring, cqe);
		if (step < 2)
			EXPECT_LT(0, zchan_recv(self->c, buf, sizeof(buf),
						ZCHAN_NONBLOCK));
	}
	EXPECT_EQ(-EPIPE, zchan_recv(self->c, buf, sizeof(buf),
				     ZCHAN_NONBLOCK));
	io_uring_queue_exit(&ring);
}

struct inherit_arg {
	struct zchan *c;
	uint32_t msgs;
	int took;	/* pipe: the first message was taken */
};

/* The inherited consumer: every message of both producers, then the end. */
static int inherited_consumer(void *arg)
{
	const struct inherit_arg *ia = arg;
	uint32_t next[2] = { 0 }, stream, seq;
	unsigned char buf[MAX_MSG];
	ssize_t n;

	while ((n = zchan_recv(ia->c, buf, sizeof(buf), 0)) > 0) {
		if (msg_id(buf, (size_t)n, &stream, &seq) || stream > 1 ||
		    seq != next[stream]++)
			return 1;
		if (next[0] + next[1] == 1)
			zc_signal(ia->took);
	}
	if (n != -EPIPE)
		return 2;
	return next[0] == ia->msgs && next[1] == ia->msgs ? 0 : 3;
}

/*
 * A forked child that inherited the consumer end holds it (every lane)
 * from its first call: the parent's close does not end the stream.
 */
TEST_F(fanin, inherited_consumer)
{
	struct inherit_arg ia = { .msgs = 2000 };
	int took[2];
	uint32_t i;

	FANIN_PAIR();
	ASSERT_EQ(0, new_producer(self->p[0], &self->p[1]));
	/* the parent knows both lanes: the child inherits them */
	ASSERT_EQ(2, zchan_ends(self->c, ZCHAN_ROLE_PRODUCER));
	ASSERT_EQ(0, pipe(took));
	ia.c = self->c;
	ia.took = took[1];
	/* the child makes its first call before the parent lets go */
	ASSERT_EQ(0, send_msg(self->p[0], 0, 0, 0));
	self->child[0] = zc_spawn(inherited_consumer, &ia);
	ASSERT_GT(self->child[0], 0);
	ASSERT_EQ(0, zc_await(took[0]));
	close(took[0]);
	close(took[1]);
	zchan_close(self->c);
	self->c = NULL;
	for (i = 1; i < ia.msgs; i++)
		ASSERT_EQ(0, send_msg(self->p[0], 0, i, 0)) TH_LOG("message %u", i);
	for (i = 0; i < ia.msgs; i++)
		ASSERT_EQ(0, send_msg(self->p[1], 1, i, 0)) TH_LOG("message %u", i);
	zchan_close(self->p[0]);
	zchan_close(self->p[1]);
	self->p[0] = self->p[1] = NULL;
	EXPECT_EQ(0, zc_child_wait(self->child[0], 60));
	self->child[0] = 0;
}

/* The maximum of producers: -EUSERS, and a closed one's place is free. */
TEST_F(fanin, producers_full)
{
	unsigned int i;
	int sv[2];

	FANIN_PAIR();
	for (i = 1; i < NPROD; i++)
		ASSERT_EQ(0, new_producer(self->p[i - 1], &self->p[i]));
	EXPECT_EQ(NPROD, zchan_ends(self->p[2], ZCHAN_ROLE_PRODUCER));
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	EXPECT_EQ(-EUSERS, zchan_send_end(self->p[1], ZCHAN_ROLE_PRODUCER,
					  sv[0]));
	EXPECT_EQ(-EUSERS, zchan_send_end(self->c, ZCHAN_ROLE_PRODUCER,
					  sv[0]));
	close(sv[0]);
	close(sv[1]);
	zchan_close(self->p[1]);
	self->p[1] = NULL;
	EXPECT_EQ(NPROD - 1, zchan_ends(self->p[0], ZCHAN_ROLE_PRODUCER));
	EXPECT_EQ(NPROD - 1, zchan_ends(self->c, ZCHAN_ROLE_PRODUCER));
	ASSERT_EQ(0, new_producer(self->p[0], &self->p[1]));
	EXPECT_EQ(NPROD, zchan_ends(self->c, ZCHAN_ROLE_PRODUCER));
}

struct stream_arg {
	uint32_t stream;
	uint32_t msgs;
};

static int produce(struct zchan *p, void *arg)
{
	const struct stream_arg *sa = arg;
	uint32_t i;

	for (i = 0; i < sa->msgs; i++)
		if (send_msg(p, sa->stream, i, i % 7 ? ZCHAN_MORE : 0))
			return 1;
	return zchan_flush(p) ? 2 : 0;
}

struct child_arg {
	int sock;
	struct stream_arg sa;
};

/* A forked producer: its end comes over a socket. */
static int child_main(void *arg)
{
	struct child_arg *ca = arg;
	struct zchan *p;
	int ret;

	if (zchan_recv_peer(ca->sock, &p))
		return 100;
	ret = produce(p, &ca->sa);
	zchan_close(p);
	return ret;
}

/*
 * Fan-in of forked producers: every message of each, in its order, with
 * the consumer waiting on its fd in between; the end of the stream once
 * they all exited.
 */
TEST_F(fanin, forked_producers)
{
	uint32_t next[NPROD] = { 0 }, stream, seq, total = 0, msgs;
	struct zchan_msg m[32];
	unsigned int i;
	int r;

	msgs = variant->backend == ZCHAN_BACKEND_KERNEL ? 2000 : 10000;
	self->a.max_producers = NPROD + 1;	/* and the first one's */
	FANIN_PAIR();
	for (i = 0; i < NPROD; i++) {
		struct child_arg ca = { .sa = { i, msgs } };
		int sv[2];

		ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
		ca.sock = sv[1];
		/* the first one from the producer, the rest from the consumer */
		ASSERT_EQ(0, zchan_send_end(i ? self->c : self->p[0],
					    ZCHAN_ROLE_PRODUCER, sv[0]));
		self->child[i] = zc_spawn(child_main, &ca);
		close(sv[0]);
		close(sv[1]);
		ASSERT_GT(self->child[i], 0);
	}
	zchan_close(self->p[0]);
	self->p[0] = NULL;
	for (;;) {
		r = zchan_recv_batch(self->c, m, 32, ZCHAN_NONBLOCK);
		if (r == -EAGAIN) {
			r = zchan_wait(self->c, -1);
			ASSERT_GT(r, 0);
			continue;
		}
		if (r == -EPIPE)
			break;
		ASSERT_GT(r, 0);
		for (i = 0; i < (unsigned int)r; i++) {
			ASSERT_EQ(0, msg_id(m[i].buf, m[i].len, &stream, &seq));
			ASSERT_LT(stream, NPROD);
			ASSERT_EQ(next[stream], seq) TH_LOG("producer %u", stream);
			ASSERT_TRUE(zc_payload_ok_at((const char *)m[i].buf + 8,
						     m[i].len - 8, 8, stream,
						     seq));
			next[stream]++;
		}
		total += (unsigned int)r;
		ASSERT_EQ(r, zchan_release_batch(self->c, m, (unsigned int)r));
	}
	EXPECT_EQ(NPROD * msgs, total);
	for (i = 0; i < NPROD; i++) {
		EXPECT_EQ(0, zc_child_wait(self->child[i], 60));
		self->child[i] = 0;
	}
}

TEST_HARNESS_MAIN
