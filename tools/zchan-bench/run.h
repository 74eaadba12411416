/* SPDX-License-Identifier: MIT OR LGPL-2.1 */
/*
 * zchan-bench: what run.c shares with fan.c - the results the children
 * write, their barriers, the watchdog.
 */
#ifndef ZCHAN_BENCH_RUN_H
#define ZCHAN_BENCH_RUN_H

#include <sys/types.h>

#include "bench.h"

enum { PRODUCER, CONSUMER };

struct side_result {
	uint64_t t_start, t_end;
	uint64_t cpu_ns;
	uint64_t faults;		/* minor + major page faults */
	int64_t syscalls;		/* -1: unknown */
	int syscalls_from_perf;
	int64_t lib_syscalls;		/* the library's kicks + sleeps; -1 */
	uint64_t csum;			/* producer->consumer direction */
	uint64_t csum_back;		/* consumer->producer (pingpong) */
	_Atomic uint64_t done;		/* messages, read by the watchdog */
	_Atomic uint64_t bytes;		/* partial transfers, likewise */
	int failed;
	int corrupt;			/* failed: a message was not what was sent */
	char why[200];
	/* the channel's setup (struct run_result); < 0: not known */
	uint64_t t_open;		/* producer: its open began */
	uint64_t t_first;		/* consumer: the first message arrived */
	int64_t rss_before, rss_after;
	int fds_before, fds;
	int64_t memfd_before, memfd_bytes;
};

/* One pair's results. */
struct run_shared {
	struct side_result side[2];
	struct hist rtt;
};

/* What every child of a run shares: the barriers, zchan.ko's page count. */
struct run_common {
	_Atomic uint32_t open_barrier;	/* all open their channels together */
	_Atomic uint32_t ready_barrier;	/* fan modes: every end open */
	_Atomic uint32_t setup_barrier;	/* every first message through */
	_Atomic uint32_t kstat_barrier;	/* zchan.ko's pages counted */
	_Atomic uint32_t barrier;	/* the clock starts */
	int64_t kpages_before, kpages_after;
};

struct side {
	const struct bench_cfg *cfg;
	const struct method *m;
	enum bench_mode mode;
	size_t size;
	long n, warm;
	struct chan *fwd, *back;
	struct run_shared *sh;		/* this pair's */
	struct run_common *common;
	struct side_result *me;
	unsigned int pair, parties;	/* which pair; processes in the run */
	int role;			/* PRODUCER or CONSUMER */
	bool spin_barrier;		/* every process has a CPU to spin on */
	pid_t parent;		/* the watchdog */
	int counter_fd;
	int64_t sys0, lib0;
	uint64_t cpu0, faults0;
	/* stream: added to every message's sequence (a fan-in producer's) */
	uint64_t tag;
	/* fan modes: this process's chans (fwd is lanes[0]) */
	struct chan *lanes;
	unsigned int nlanes;
};

/*
 * The children of a run: child j's results are res[j], its role role[j]
 * (PRODUCER or CONSUMER).
 */
struct children {
	unsigned int n;
	pid_t *pid;
	int *pfd;
	struct side_result **res;
	unsigned char *role;
};

long warmup_messages(const struct bench_cfg *cfg, long n, size_t size);
void barrier_wait(_Atomic uint32_t *b, unsigned int parties, bool spin);
/* after this end's first message: its setup figures, every end's barrier */
void setup_after(struct side *s);
void timing_start(struct side *s);
void timing_end(struct side *s);
/* the 1:1 sides (stream: a fan-in producer, a fan-out consumer too) */
int producer(struct side *s);
int consumer(struct side *s);
int fail(struct side *s, struct chan *c, const char *what, uint64_t seq);
bool corrupt_here(const struct side *s, uint64_t seq);
int allowed_cpu(unsigned int i);
/* a child's first steps: signals, the watchdog's death, CPU, SCHED_FIFO */
void child_prepare(struct side *s, int cpu);
/* a chan of @m, to be created (m->create) */
void chan_init(struct chan *c, const struct method *m, size_t size, bool spin);
void destroy_chan(struct chan *c);
/* n children's arrays, no pid yet (-1: out of memory); and their free */
int children_alloc(struct children *ch, unsigned int n);
void children_free(struct children *ch);
void kill_and_reap(struct children *ch);
void set_result(struct run_result *res, enum run_status st,
		const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int watch(const struct bench_cfg *cfg, struct children *ch, uint64_t all,
	  struct run_result *res);

#endif
