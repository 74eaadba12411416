// SPDX-License-Identifier: MIT OR LGPL-2.1
/*
 * The fan modes: N producers into one consumer (fanin), one producer to N
 * consumers (fanout), each message a stream's (every byte written, every
 * byte summed), N + 1 processes round the CPUs (N = 8 on two CPUs is an
 * oversubscribed run, on purpose).
 *
 * A method fans in one of two shapes (enum fan_shape):
 *
 *   lanes   a 1:1 chan of the method per producer or consumer.  Fan-in:
 *           the consumer polls them all as an event loop does - up to
 *           FAN_BUDGET messages from each lane in turn with recv_try(),
 *           poll(2) on every lane's wait_fd() when none had one.
 *           Fan-out: the producer sends every message down each lane, a
 *           copy per consumer (one write(2) of the same buffer per pipe;
 *           for a zero-copy method, a loan per lane and a memcpy).
 *   shared  one chan that every end opens: the method fans in or out
 *           itself (iceoryx's n:m publish-subscribe on one service, a
 *           zchan channel with max_producers or max_consumers ends).
 *
 * Verification: producer i stamps its messages (i << FAN_LANE_SHIFT) +
 * seq, and fills them as a stream does; the consumer checks that each
 * producer's messages arrive in that producer's order, none missing, and
 * folds each message's sum into that producer's checksum, which must
 * equal the one the producer folded.  Fan-out: every consumer's
 * order-sensitive checksum of the one sequence must equal the producer's.
 * The many ends are the 1:1 stream sides of run.c (producer(),
 * consumer()); the single end is here.
 *
 * Rates count delivered messages: a fan-out message to N consumers counts
 * N times, as N 1:1 channels would.  Each run moves the messages one
 * stream run would (default_messages()), split between the N lanes.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>

#include "bench.h"
#include "run.h"

/* the producer's number in a message's stamp, above its sequence */
#define FAN_LANE_SHIFT	48
#define FAN_SEQ_MASK	((1ULL << FAN_LANE_SHIFT) - 1)
/* lanes fan-in: messages the consumer takes from one lane per turn */
#define FAN_BUDGET	16

static enum fan_shape shape_of(const struct method *m, enum bench_mode mode)
{
	return mode == MODE_FANIN ? m->fan_in :
	       mode == MODE_FANOUT ? m->fan_out : FAN_NONE;
}

const char *fan_shape_name(const struct method *m, enum bench_mode mode)
{
	switch (shape_of(m, mode)) {
	case FAN_LANES:
		return "lanes";
	case FAN_SHARED:
		return "shared";
	default:
		return NULL;
	}
}

/* One process of a fan run. */
struct fan_side {
	struct side s;
	enum bench_mode mode;
	enum fan_shape shape;
	unsigned int ends;		/* N */
	unsigned int index;		/* of the many ends; 0 for the single */
	bool single;			/* the consumer of fanin, producer of fanout */
	struct run_shared *all;		/* every lane's results */
};

/* Fan-in consumer: one message of producer @lane (-1: read it from the stamp). */
static int take(struct fan_side *f, struct chan *c, const void *p, int lane,
		uint64_t *next, uint64_t seq)
{
	uint64_t tag = msg_stamp_read(p);
	unsigned int from = (unsigned int)(tag >> FAN_LANE_SHIFT);

	if (from >= f->ends || (lane >= 0 && from != (unsigned int)lane)) {
		chan_error(c, "a message stamped as producer %u's%s", from,
			   lane >= 0 ? " came down another producer's lane" :
			   " (no such producer)");
		f->s.me->corrupt = 1;
		return fail(&f->s, c, "receive", seq);
	}
	if ((tag & FAN_SEQ_MASK) != next[from]) {
		chan_error(c, "producer %u's message %llu where %llu was due",
			   from, (unsigned long long)(tag & FAN_SEQ_MASK),
			   (unsigned long long)next[from]);
		f->s.me->corrupt = 1;
		return fail(&f->s, c, "receive", seq);
	}
	next[from]++;
	f->all[from].side[CONSUMER].csum =
		csum_mix(f->all[from].side[CONSUMER].csum, msg_sum(p, f->s.size));
	return 0;
}

/* A received message's bookkeeping: the clock, the watchdog, a stall. */
static void received(struct fan_side *f, uint64_t got)
{
	struct side *s = &f->s;
	uint64_t warm = (uint64_t)s->warm * f->ends;

	atomic_store_explicit(&s->me->done, got, memory_order_relaxed);
	/*
	 * as the 1:1 sides do, every end past its first message: each
	 * producer waits there after its first, so the consumer's N-th is
	 * the last producer's (after the first alone, a producer whose
	 * first message is larger than its pipe would wait for the consumer
	 * in the barrier forever)
	 */
	if (got == f->ends && s->warm > 0)
		setup_after(s);
	/*
	 * every untimed message is in: the producers wait at the barrier,
	 * so nothing timed was sent before it
	 */
	if (got == warm)
		timing_start(s);
	if (s->cfg->debug_stall && got == warm + (uint64_t)s->n * f->ends / 2)
		for (;;)
			pause();
}

/* Fan-in consumer of one shared chan. */
static int fanin_shared(struct fan_side *f, uint64_t *next)
{
	struct side *s = &f->s;
	uint64_t got, all = (uint64_t)(s->warm + s->n) * f->ends;

	if (!s->warm)
		timing_start(s);
	for (got = 0; got < all;) {
		const void *p = s->m->recv(s->fwd);

		if (!p)
			return fail(s, s->fwd, "receive", got);
		if (take(f, s->fwd, p, -1, next, got))
			return 1;
		s->m->release(s->fwd, p);
		received(f, ++got);
	}
	return 0;
}

/* Fan-in consumer of N lanes: round-robin, poll(2) when all are empty. */
static int fanin_lanes(struct fan_side *f, uint64_t *next)
{
	struct side *s = &f->s;
	uint64_t got = 0, all = (uint64_t)(s->warm + s->n) * f->ends;
	uint64_t per_lane = (uint64_t)(s->warm + s->n);
	struct pollfd *pfd = calloc(f->ends, sizeof(*pfd));
	unsigned int i;

	if (!pfd) {
		chan_error(s->fwd, "out of memory");
		return fail(s, s->fwd, "receive", 0);
	}
	for (i = 0; i < f->ends; i++) {
		pfd[i].fd = s->m->wait_fd(&s->lanes[i]);
		pfd[i].events = POLLIN;
	}
	if (!s->warm)
		timing_start(s);
	while (got < all) {
		bool any = false;

		for (i = 0; i < f->ends; i++) {
			struct chan *c = &s->lanes[i];
			unsigned int k;

			for (k = 0; k < FAN_BUDGET && next[i] < per_lane; k++) {
				const void *p;
				int r = s->m->recv_try(c, &p);

				if (r < 0)
					goto failed;
				if (!r)
					break;
				if (take(f, c, p, (int)i, next, got)) {
					free(pfd);
					return 1;
				}
				s->m->release(c, p);
				any = true;
				received(f, ++got);
			}
			if (next[i] == per_lane)
				pfd[i].fd = -1;	/* this lane is done */
		}
		if (any || got == all)
			continue;
		SYSCOUNT(s->fwd);
		if (poll(pfd, f->ends, -1) < 0 && errno != EINTR) {
			chan_error(s->fwd, "poll: %s", strerror(errno));
			i = 0;
			goto failed;
		}
	}
	free(pfd);
	return 0;

failed:
	free(pfd);
	return fail(s, &s->lanes[i], "receive", got);
}

/* Fan-out's producer: one message to every consumer. */
static int fan_producer(struct fan_side *f)
{
	struct side *s = &f->s;
	uint64_t seq, end = (uint64_t)(s->warm + s->n), total = 0;
	/* over lanes: one per consumer, else the one chan */
	unsigned int nout = s->nlanes ? s->nlanes : 1, i;
	bool copies = nout > 1 && s->m->zero_copy;
	void **bufs = calloc(nout, sizeof(*bufs));

	if (!bufs) {
		chan_error(s->fwd, "out of memory");
		return fail(s, s->fwd, "loan", 0);
	}
	for (seq = 0; seq < end; seq++) {
		if (seq == (uint64_t)s->warm)
			timing_start(s);
		bufs[0] = s->m->loan(s->fwd);
		if (!bufs[0])
			goto loan_failed;
		total = csum_mix(total, msg_fill(bufs[0], s->size, seq));
		if (corrupt_here(s, seq))
			((unsigned char *)bufs[0])[s->size / 2] ^= 0x40;
		/*
		 * a copy per consumer: zero-copy methods into each lane's own
		 * loan, the others send the one private buffer down each lane
		 */
		for (i = 1; i < nout; i++) {
			if (!copies) {
				bufs[i] = bufs[0];
				continue;
			}
			bufs[i] = s->m->loan(&s->lanes[i]);
			if (!bufs[i]) {
				fail(s, &s->lanes[i], "loan", seq);
				goto out;
			}
			memcpy(bufs[i], bufs[0], s->size);
		}
		for (i = 0; i < nout; i++) {
			struct chan *c = nout > 1 ? &s->lanes[i] : s->fwd;

			/* as a stream's: all of it in before each barrier */
			c->more = seq + 1 < end && seq > 0 &&
				  seq + 1 != (uint64_t)s->warm;
			if (s->m->send(c, bufs[i])) {
				fail(s, c, "send", seq);
				goto out;
			}
		}
		if (seq == 0 && s->warm > 0)
			setup_after(s);
		atomic_store_explicit(&s->me->done, seq + 1, memory_order_relaxed);
	}
	for (i = 0; i < nout && s->m->flush; i++) {
		struct chan *c = nout > 1 ? &s->lanes[i] : s->fwd;

		if (s->m->flush(c)) {
			fail(s, c, "flush", end);
			goto out;
		}
	}
	free(bufs);
	timing_end(s);
	/* every consumer's checksum is this one */
	for (i = 0; i < f->ends; i++)
		f->all[i].side[PRODUCER].csum = total;
	return 0;

loan_failed:
	fail(s, s->fwd, "loan", seq);
out:
	free(bufs);
	return 1;
}

/* Fan-in's consumer. */
static int fan_consumer(struct fan_side *f)
{
	uint64_t *next;
	int rc;

	next = calloc(f->ends, sizeof(*next));
	if (!next) {
		chan_error(f->s.fwd, "out of memory");
		return fail(&f->s, f->s.fwd, "receive", 0);
	}
	rc = f->shape == FAN_LANES ? fanin_lanes(f, next) : fanin_shared(f, next);
	if (!rc)
		timing_end(&f->s);
	free(next);
	return rc;
}

static void fan_child(struct fan_side *f, int cpu)
{
	struct side *s = &f->s;
	bool sender = s->role == PRODUCER;
	unsigned int i;
	int rc;

	child_prepare(s, cpu);
	barrier_wait(&s->common->open_barrier, s->parties, s->spin_barrier);
	for (i = 0; i < (s->nlanes ? s->nlanes : 1); i++) {
		struct chan *c = s->nlanes ? &s->lanes[i] : s->fwd;

		c->fan_end = f->index;
		c->polled = !sender && f->mode == MODE_FANIN && s->nlanes;
		if (s->m->open(c, sender)) {
			snprintf(s->me->why, sizeof(s->me->why), "%s: open: %s",
				 sender ? "producer" : "consumer", c->err);
			s->me->failed = 1;
			_exit(1);
		}
		c->progress = &s->me->bytes;
	}
	/* every end open before the first message (iceoryx: subscribed) */
	barrier_wait(&s->common->ready_barrier, s->parties, s->spin_barrier);
	/* the many ends are 1:1 stream sides, a fan-in producer's stamped */
	s->tag = f->single ? 0 : (uint64_t)f->index << FAN_LANE_SHIFT;
	if (!f->single)
		rc = sender ? producer(s) : consumer(s);
	else
		rc = sender ? fan_producer(f) : fan_consumer(f);
	if (s->m->clean_exit) {
		for (i = 0; i < (s->nlanes ? s->nlanes : 1); i++)
			destroy_chan(s->nlanes ? &s->lanes[i] : s->fwd);
		exit(rc);
	}
	_exit(rc);
}

/* A finished run's figures, or RUN_CORRUPT if a checksum differs. */
static void fan_collect(struct run_shared *sh, const struct children *ch,
			unsigned int ends, enum bench_mode mode, long n,
			size_t size, struct run_result *res)
{
	uint64_t t0 = UINT64_MAX, t1 = 0, cpu[2] = { 0, 0 }, faults = 0;
	uint64_t msgs = (uint64_t)n * ends;
	int64_t sys[2] = { 0, 0 }, lib[2] = { 0, 0 };
	bool perf = true;
	unsigned int i;
	int k;

	for (i = 0; i < ends; i++) {
		const struct side_result *P = &sh[i].side[PRODUCER];
		const struct side_result *C = &sh[i].side[CONSUMER];

		if (P->csum != C->csum) {
			set_result(res, RUN_CORRUPT,
				   "CHECKSUM MISMATCH, %s %u: sent %016llx, received %016llx",
				   mode == MODE_FANIN ? "producer" : "consumer", i,
				   (unsigned long long)P->csum,
				   (unsigned long long)C->csum);
			return;
		}
	}
	for (i = 0; i < ch->n; i++) {
		const struct side_result *r = ch->res[i];

		k = ch->role[i];
		if (r->t_start < t0)
			t0 = r->t_start;
		if (k == CONSUMER && r->t_end > t1)
			t1 = r->t_end;
		cpu[k] += r->cpu_ns;
		faults += r->faults;
		sys[k] = sys[k] < 0 || r->syscalls < 0 ? -1 : sys[k] + r->syscalls;
		lib[k] = lib[k] < 0 || r->lib_syscalls < 0 ? -1 :
			 lib[k] + r->lib_syscalls;
		perf = perf && r->syscalls_from_perf;
	}
	res->status = RUN_OK;
	res->runs = 1;
	res->messages = msgs;
	res->seconds = (double)(t1 - t0) / 1e9;
	res->seconds_min = res->seconds_max = res->seconds;
	res->bytes_per_sec = (double)msgs * (double)size / res->seconds;
	res->msgs_per_sec = (double)msgs / res->seconds;
	res->producers = mode == MODE_FANIN ? ends : 1;
	res->consumers = mode == MODE_FANIN ? 1 : ends;
	res->consumer_msgs_per_sec = res->msgs_per_sec / res->consumers;
	res->consumer_bytes_per_sec = res->bytes_per_sec / res->consumers;
	for (k = 0; k < 2; k++) {
		res->cpu_ns_per_msg[k] = (double)cpu[k] / (double)msgs;
		res->syscalls_per_msg[k] = sys[k] < 0 ? -1 :
			(double)sys[k] / (double)msgs;
		res->lib_syscalls_per_msg[k] = lib[k] < 0 ? -1 :
			(double)lib[k] / (double)msgs;
	}
	res->cpu_ns_per_msg[2] = res->cpu_ns_per_msg[0] + res->cpu_ns_per_msg[1];
	res->syscalls_per_msg[2] =
		res->syscalls_per_msg[0] < 0 || res->syscalls_per_msg[1] < 0 ? -1 :
		res->syscalls_per_msg[0] + res->syscalls_per_msg[1];
	res->lib_syscalls_per_msg[2] = lib[0] < 0 || lib[1] < 0 ? -1 :
		res->lib_syscalls_per_msg[0] + res->lib_syscalls_per_msg[1];
	res->faults_per_msg = (double)faults / (double)msgs;
	snprintf(res->syscalls_source, sizeof(res->syscalls_source), "%s",
		 res->syscalls_per_msg[2] < 0 ? "none" : perf ? "perf" : "counted");
	res->setup_ns = res->idle_rss_bytes = res->memfd_bytes = -1;
	res->fds[0] = res->fds[1] = res->kernel_bytes = -1;
}

/*
 * One run: N + 1 processes, child 0 the single end, child 1 + i the many
 * end i; child j on the j-th CPU this process may use (modulo their
 * number).  Lane i's results are sh[i]: the many end i's side and the
 * single end's checksum for it (the single end's own figures in sh[0]).
 */
void run_fan_point(const struct bench_cfg *cfg, const struct method *m,
		   enum bench_mode mode, size_t size, unsigned int ends,
		   long messages, struct run_result *res)
{
	enum fan_shape shape = shape_of(m, mode);
	int single = mode == MODE_FANIN ? CONSUMER : PRODUCER;
	unsigned int nchans = shape == FAN_LANES ? ends : 1, created = 0, i, j;
	size_t map_len = sizeof(struct run_common) + ends * sizeof(struct run_shared);
	struct children ch = { .n = 0 };
	struct bench_cfg one = *cfg;
	struct chan *chans = NULL;
	struct run_common *common;
	struct run_shared *sh;
	struct fan_side f;
	long per_lane;

	memset(res, 0, sizeof(*res));
	if (shape == FAN_NONE || !ends || ends > BENCH_MAX_FAN) {
		set_result(res, RUN_UNAVAILABLE, "does not run %s %u ways",
			   mode_name(mode), ends);
		return;
	}
	one.pairs = 1;
	per_lane = messages > 0 ? messages :
		default_messages(&one, MODE_STREAM, size) / (long)ends;
	if (per_lane < 2 * BENCH_INFLIGHT)
		per_lane = 2 * BENCH_INFLIGHT;

	memset(&f, 0, sizeof(f));
	f.mode = mode;
	f.shape = shape;
	f.ends = ends;
	f.s.cfg = cfg;
	f.s.m = m;
	f.s.mode = MODE_STREAM;
	f.s.size = size;
	f.s.n = per_lane;
	f.s.warm = warmup_messages(cfg, per_lane, size);
	f.s.counter_fd = -1;
	f.s.parties = ends + 1;
	f.s.spin_barrier = !cfg->same_core && (int)f.s.parties <= bench_nproc();

	common = mmap(NULL, map_len, PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (common == MAP_FAILED) {
		set_result(res, RUN_ERROR, "mmap: %s", strerror(errno));
		return;
	}
	sh = (struct run_shared *)(common + 1);
	common->kpages_before = common->kpages_after = -1;
	f.s.common = common;
	f.all = sh;

	chans = calloc(nchans, sizeof(*chans));
	if (!chans || children_alloc(&ch, ends + 1)) {
		set_result(res, RUN_ERROR, "out of memory");
		goto out;
	}
	for (j = 0; j < ch.n; j++) {
		ch.role[j] = (unsigned char)(j ? !single : single);
		ch.res[j] = &sh[j ? j - 1 : 0].side[ch.role[j]];
	}
	for (i = 0; i < nchans; i++) {
		struct chan *c = &chans[i];

		chan_init(c, m, size, false);
		c->fan_ends = ends;
		c->fan_out = mode == MODE_FANOUT;
		if (m->create(c)) {
			set_result(res, RUN_ERROR, "setup: %s", c->err);
			goto out_chans;
		}
		created = i + 1;
	}

	fflush(NULL);
	f.s.parent = getpid();
	for (j = 0; j < ch.n; j++) {
		pid_t pid = fork();

		if (pid < 0) {
			set_result(res, RUN_ERROR, "fork: %s", strerror(errno));
			kill_and_reap(&ch);
			goto out_chans;
		}
		if (!pid) {
			f.single = !j;
			f.index = j ? j - 1 : 0;
			f.s.role = ch.role[j];
			f.s.me = ch.res[j];
			f.s.sh = &sh[f.index];
			f.s.pair = f.index;
			if (shape == FAN_LANES && f.single) {
				/* the single end holds every lane */
				f.s.lanes = chans;
				f.s.nlanes = ends;
				f.s.fwd = &chans[0];
			} else {
				/* a many end: its own lane, or the one chan */
				unsigned int mine = shape == FAN_LANES ? f.index : 0;

				for (i = 0; i < created; i++)
					if (i != mine)
						destroy_chan(&chans[i]);
				f.s.fwd = &chans[mine];
			}
			fan_child(&f, cfg->same_core ? cfg->cpu[0] :
				  allowed_cpu(j));
		}
		ch.pid[j] = pid;
	}
	for (i = 0; i < created; i++)
		destroy_chan(&chans[i]);
	created = 0;

	if (!watch(cfg, &ch, (uint64_t)(f.s.warm + f.s.n) * ends, res))
		fan_collect(sh, &ch, ends, mode, f.s.n, size, res);
	for (j = 0; j < ch.n && res->status == RUN_ERROR; j++)
		if (ch.res[j]->corrupt)
			set_result(res, RUN_CORRUPT, "%s", ch.res[j]->why);

out_chans:
	for (i = 0; i < created; i++)
		destroy_chan(&chans[i]);
out:
	free(chans);
	children_free(&ch);
	munmap(common, map_len);
}
