// SPDX-License-Identifier: GPL-2.0
/*
 * zchan_fuzz: a seeded, reproducible fuzzer of the /dev/zchan UAPI.
 *
 * Several worker processes each run a random mix of calls against the
 * module: open, every ioctl with valid and mutated arguments, unknown
 * commands, bad pointers, mmap/munmap/mremap/mprotect of every region with
 * random offsets, lengths and protections, reads and writes of the
 * mappings (a fault is caught and counted), scribbling over the shared ring
 * words as a hostile peer would, correct protocol traffic (and forged
 * ZCHAN_DESC_PAGES descriptors in it), fork with live
 * mappings, io_uring URING_CMD WAIT/KICK and POLL_ADD (also torn down with
 * commands in flight), dup, poll and close in random order.  Channel names
 * come from a small shared set, so workers attach to each other's channels.
 *
 * errno is preset to 0, EINVAL or EACCES before each operation, and every
 * call's errno is checked against the errors that call may return (a
 * failure that left errno at 0 is one too);
 * anything else (or a SIGBUS, a bad CQE, an impossible INFO) is an
 * "unexpected" result and fails the run.  At the end, with every worker
 * gone, debugfs zchan/stats must show no live channel, file or page.
 *
 * The output is TAP (one test per check) followed by a table of what was
 * tried; --json prints the figures as one JSON object instead of the table.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <sys/wait.h>

#include <liburing.h>
#include <linux/zchan.h>

#include "../common/zchan_test_utils.h"

#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))
#define MAX_FDS		16
#define MAX_MAPS	32
#define MAX_ERRNO	160
#define NAMES		6
#define FUZZ_STREAM	0x2a	/* the payloads' stream: any worker checks any */
#define URING_DEPTH	16

/* What a worker can do; the weights say how often. */
#define OPS(X)						\
	X(OPEN,		"open",		6)		\
	X(CREATE,	"ioctl-create",	8)		\
	X(ATTACH,	"ioctl-attach",	6)		\
	X(PEER_FD,	"ioctl-peer-fd", 5)		\
	X(KICK,		"ioctl-kick",	6)		\
	X(WAIT,		"ioctl-wait",	5)		\
	X(INFO,		"ioctl-info",	5)		\
	X(USE,		"ioctl-use",	3)		\
	X(BADCMD,	"ioctl-unknown", 5)		\
	X(BADPTR,	"ioctl-badptr",	4)		\
	X(SETUP,	"chan-setup",	4)		\
	X(MMAP,		"mmap",		10)		\
	X(MUNMAP,	"munmap",	5)		\
	X(MREMAP,	"mremap",	3)		\
	X(MPROTECT,	"mprotect",	4)		\
	X(TOUCH,	"touch",	8)		\
	X(SCRIBBLE,	"scribble",	4)		\
	X(PROTO,	"protocol",	8)		\
	X(FORK,		"fork",		1)		\
	X(URING_WAIT,	"uring-wait",	4)		\
	X(URING_KICK,	"uring-kick",	3)		\
	X(URING_POLL,	"uring-poll-add", 3)		\
	X(URING_REAP,	"uring-reap",	3)		\
	X(URING_EXIT,	"uring-exit",	1)		\
	X(MADVISE,	"madvise",	3)		\
	X(MLOCK,	"mlock",	2)		\
	X(VMSPLICE,	"vmsplice",	2)		\
	X(POLL,		"poll",		4)		\
	X(RW,		"read-write",	2)		\
	X(DUP,		"dup",		2)		\
	X(SEND_PAGES,	"ioctl-send-pages", 4)		\
	X(PAGES_MAP,	"pages-mmap",	4)		\
	X(REAP,		"ioctl-reap",	3)		\
	X(LANE,		"ioctl-lane",	3)		\
	X(CLOSE,	"close",	7)

#define X_ENUM(id, name, w) OP_##id,
enum { OPS(X_ENUM) NR_OPS };
#define X_NAME(id, name, w) name,
static const char *const op_names[] = { OPS(X_NAME) };
#define X_WEIGHT(id, name, w) w,
static unsigned int op_weights[] = { OPS(X_WEIGHT) };

/* The errors each kind of call may legitimately return. */
static const int allow_fd[] = { EBADF, 0 };
static const int allow_open[] = { EMFILE, ENFILE, ENOMEM, 0 };
static const int allow_create[] = { EINVAL, EFAULT, EEXIST, ENOMEM, ENOSPC, EOPNOTSUPP, 0 };
static const int allow_attach[] = { EINVAL, EFAULT, ENOENT, EACCES, EBUSY, EUSERS, EPIPE, ENOMEM, ENOSPC, 0 };
static const int allow_peer_fd[] = { EINVAL, EFAULT, EBUSY, EUSERS, EPIPE, EMFILE, ENOMEM, ENOSPC, 0 };
static const int allow_simple[] = { EINVAL, EFAULT, 0 };
static const int allow_use[] = { EINVAL, EFAULT, EPIPE, 0 };
static const int allow_wait[] = { EINVAL, EFAULT, ETIMEDOUT, EINTR, 0 };
static const int allow_badcmd[] = { ENOTTY, 0 };
static const int allow_badptr[] = { EFAULT, EINVAL, 0 };
static const int allow_mmap[] = { EINVAL, EACCES, ENOMEM, EPERM, ENODEV, EOVERFLOW, 0 };
static const int allow_munmap[] = { EINVAL, 0 };
static const int allow_mremap[] = { EINVAL, EFAULT, ENOMEM, EAGAIN, 0 };
static const int allow_mprotect[] = { EACCES, EINVAL, ENOMEM, 0 };
static const int allow_uring[] = { EINVAL, ENOTTY, ECANCELED, EBADF, EOPNOTSUPP, EAGAIN, EBUSY, EINTR, 0 };
static const int allow_rw[] = { EINVAL, EBADF, 0 };
static const int allow_madvise[] = { EINVAL, ENOMEM, EAGAIN, EFAULT, EPERM, EBUSY, EACCES, ENODEV, EOPNOTSUPP, 0 };
static const int allow_mlock[] = { ENOMEM, EAGAIN, EINVAL, EPERM, 0 };
static const int allow_vmsplice[] = { EFAULT, EINVAL, ENOMEM, EAGAIN, 0 };
static const int allow_send_pages[] = { EINVAL, EFAULT, ENOBUFS, EPIPE, ENOMEM, EINTR, EOPNOTSUPP, 0 };
static const int allow_reap[] = { EINVAL, EFAULT, EOPNOTSUPP, 0 };
static const int allow_lane[] = { EINVAL, EFAULT, ENOENT, 0 };
static const int allow_none[] = { 0 };

/* Counters, in shared memory: every worker and forked child adds to them. */
struct fz_counts {
	uint64_t calls[NR_OPS];
	uint64_t ok[NR_OPS];
	uint64_t errs[NR_OPS][MAX_ERRNO];
	uint64_t unexpected[NR_OPS];
	uint64_t faults;		/* SIGSEGV caught while touching a mapping */
	uint64_t sigbus;		/* SIGBUS: never expected */
	uint64_t bad_results;		/* successful calls with impossible results */
	uint64_t messages;		/* protocol messages delivered intact */
	uint64_t hostile;		/* protocol reads that saw a scribbled ring */
	uint64_t forged;		/* ZCHAN_DESC_PAGES descriptors published */
	uint64_t forged_mapped;		/* ... that named a transfer of that length */
	uint64_t forks;
	uint64_t cqes;
	char first_bad[NR_OPS + 1][160];	/* the first unexpected result per kind */
	int first_bad_set[NR_OPS + 1];
};

static struct fz_counts *cnt;

#define ADD(field, n)	__atomic_add_fetch(&(field), (n), __ATOMIC_RELAXED)

enum fz_kind { FD_FREE = 0, FD_DEV, FD_PROD, FD_CONS };

struct fz_fd {
	int fd;
	enum fz_kind kind;
	struct zchan_layout l;
	bool mapped;		/* chan-setup mapped its regions (maps tagged) */
};

enum fz_region { R_NONE, R_PROD, R_CONS, R_POOL };

struct fz_map {
	uint8_t *addr;
	size_t len;
	int prot;
	int fd_slot;		/* the fd it came from (-1: unknown) */
	enum fz_region region;
	int gen;		/* fds[fd_slot] generation when mapped */
};

struct fz_state {
	uint64_t rng;
	int worker;
	bool child;		/* a forked child: no further fork */
	struct fz_fd fds[MAX_FDS];
	int fd_gen[MAX_FDS];
	struct fz_map maps[MAX_MAPS];
	struct io_uring ring;
	bool ring_live;
	unsigned int inflight;
	/* protocol state per fd slot */
	uint32_t p_tail[MAX_FDS], p_pos[MAX_FDS];
	uint32_t c_read[MAX_FDS];
	uint32_t seq[MAX_FDS];
	/* SEND_PAGES: a buffer to send from, and recent transfers' offsets */
	uint8_t *pages_buf;
	uint64_t pages_off[8];
	uint64_t pages_len[8];
};

static const char *prog;
static uint64_t opt_seed = 1;
static uint64_t opt_iterations = 10000;
static unsigned int opt_procs = 3;
static double opt_time = 600;
static bool opt_json;
static bool opt_verbose;
/* Limits set for the run (module parameters), restored afterwards. */
static const char *const limit_params[] = { "max_pool_bytes", "max_user_pool_bytes" };
static const char *opt_limits[] = { "4194304", "134217728" };
static char saved_limits[2][64];
static long page_size;

static sigjmp_buf touch_jmp;
static volatile sig_atomic_t touching;

static void fault_handler(int sig)
{
	if (touching) {
		touching = 0;
		siglongjmp(touch_jmp, sig);
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

static void alarm_handler(int sig)
{
	(void)sig;	/* interrupts a blocking WAIT: EINTR */
}

static void bad(int op, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void bad(int op, const char *fmt, ...)
{
	va_list ap;

	if (op >= 0)
		ADD(cnt->unexpected[op], 1);
	else
		op = NR_OPS;
	if (__atomic_exchange_n(&cnt->first_bad_set[op], 1, __ATOMIC_RELAXED))
		return;
	va_start(ap, fmt);
	vsnprintf(cnt->first_bad[op], sizeof(cnt->first_bad[op]), fmt, ap);
	va_end(ap);
}

static bool in_list(const int *list, int err)
{
	for (; *list; list++)
		if (*list == err)
			return true;
	return false;
}

/* Account one call: @ret < 0 with errno set is an error. */
static void account(int op, long ret, int err, const int *allowed)
{
	ADD(cnt->calls[op], 1);
	if (ret >= 0) {
		ADD(cnt->ok[op], 1);
		return;
	}
	ADD(cnt->errs[op][err < MAX_ERRNO ? err : 0], 1);
	if (!in_list(allowed, err) && !in_list(allow_fd, err))
		bad(op, "%s: unexpected errno %d (%s)", op_names[op], err,
		    strerror(err));
}

static uint64_t rnd(struct fz_state *st)
{
	return zc_rand(&st->rng);
}

static uint64_t below(struct fz_state *st, uint64_t n)
{
	return zc_below(&st->rng, n);
}

static bool chance(struct fz_state *st, unsigned int pct)
{
	return below(st, 100) < pct;
}

/* A value that is usually sane and sometimes hostile. */
static uint64_t mutate64(struct fz_state *st, uint64_t good)
{
	static const uint64_t edge[] = {
		0, 1, 2, 3, 63, 64, 4095, 4096, 4097, 65536, 1ULL << 20,
		(1ULL << 31) - 1, 1ULL << 31, UINT32_MAX, 1ULL << 32,
		1ULL << 40, INT64_MAX, UINT64_MAX,
	};

	switch (below(st, 10)) {
	case 0:
		return edge[below(st, sizeof(edge) / sizeof(edge[0]))];
	case 1:
		return rnd(st);
	case 2:
		return good ^ (1ULL << below(st, 64));
	case 3:
		return good + below(st, 3) - 1;
	default:
		return good;
	}
}

static int pick_fd(struct fz_state *st, int want_kind)
{
	int i, start = (int)below(st, MAX_FDS);

	for (i = 0; i < MAX_FDS; i++) {
		int s = (start + i) % MAX_FDS;

		if (st->fds[s].kind != FD_FREE &&
		    (want_kind == FD_FREE || st->fds[s].kind == want_kind))
			return s;
	}
	return -1;
}

/* A descriptor to call on: mostly a live one, sometimes a closed number. */
static int target_fd(struct fz_state *st, int *slot)
{
	int s = pick_fd(st, FD_FREE);

	*slot = s;
	if (s < 0 || chance(st, 3)) {
		*slot = -1;
		return 900 + (int)below(st, 50);	/* not open: EBADF */
	}
	return st->fds[s].fd;
}

static int free_fd_slot(struct fz_state *st)
{
	int i;

	for (i = 0; i < MAX_FDS; i++)
		if (st->fds[i].kind == FD_FREE)
			return i;
	return -1;
}

static void name_of(struct fz_state *st, uint8_t *name, bool mutate)
{
	memset(name, 0, ZCHAN_NAME_MAX);
	snprintf((char *)name, ZCHAN_NAME_MAX, "fz-%llu-%u",
		 (unsigned long long)(opt_seed & 0xffff), (unsigned int)below(st, NAMES));
	if (mutate && chance(st, 10))
		memset(name, 'A' + (int)below(st, 26), ZCHAN_NAME_MAX);	/* no NUL */
	else if (mutate && chance(st, 5))
		name[0] = 0;
}

static void fd_forget(struct fz_state *st, int s)
{
	memset(&st->fds[s], 0, sizeof(st->fds[s]));
	st->fds[s].fd = -1;
	st->fd_gen[s]++;
}

/* Where the layout's lane is mapped: 0, or ZCHAN_OFF_LANE() of its lane. */
static uint64_t lane_base(const struct zchan_layout *l)
{
	if (l->prod_ring_off < ZCHAN_OFF_LANES)
		return 0;
	return l->prod_ring_off - ZCHAN_OFF_PROD_RING;
}

/* Is the layout the kernel returned self-consistent? */
static bool layout_sane(const struct zchan_layout *l)
{
	uint64_t base = lane_base(l);

	return l->pool_size && !(l->pool_size % page_size) &&
	       l->ring_entries && !(l->ring_entries & (l->ring_entries - 1)) &&
	       l->max_msg <= l->pool_size / 2 &&
	       !((base - ZCHAN_OFF_LANES) % ZCHAN_LANE_STRIDE && base) &&
	       l->prod_ring_off == base + ZCHAN_OFF_PROD_RING &&
	       l->cons_ring_off == base + ZCHAN_OFF_CONS_RING &&
	       l->pool_off == base + ZCHAN_OFF_POOL &&
	       l->prod_descs % 8 == 0 &&
	       l->prod_descs + (uint64_t)l->ring_entries * sizeof(struct zchan_desc) <=
			l->prod_ring_size &&
	       l->cons_closed + 4 <= l->cons_ring_size &&
	       l->cons_state + 4 <= l->cons_ring_size &&
	       l->cons_lanes == offsetof(struct zchan_cons_ring, lanes) &&
	       !l->reserved[0] && !l->reserved[1];
}

/* ------------------------------------------------------------------ */

static void do_open(struct fz_state *st)
{
	int s = free_fd_slot(st), fd;

	if (s < 0) {
		s = pick_fd(st, FD_FREE);
		close(st->fds[s].fd);
		fd_forget(st, s);
	}
	fd = open(ZC_DEV, O_RDWR | (chance(st, 50) ? O_CLOEXEC : 0) |
		  (chance(st, 20) ? O_NONBLOCK : 0));
	account(OP_OPEN, fd, errno, allow_open);
	if (fd < 0)
		return;
	st->fds[s].fd = fd;
	st->fds[s].kind = FD_DEV;
}

static uint64_t pick_pool(struct fz_state *st)
{
	switch (below(st, 8)) {
	case 0:
		return 0;			/* default */
	case 1:
		return below(st, 1 << 20);	/* unaligned */
	case 2:
		return 1ULL << (22 + below(st, 20));	/* mostly over the limit */
	default:
		return (1 + below(st, 16)) * page_size;
	}
}

static int create_on(struct fz_state *st, int s, bool mutate)
{
	struct zchan_create c;
	int ret, err;

	memset(&c, 0, sizeof(c));
	c.pool_size = pick_pool(st);
	c.ring_entries = 1U << below(st, 9);
	c.max_msg = chance(st, 50) ? 0 : (uint32_t)below(st, 4096);
	c.mode = chance(st, 70) ? 0600 : (uint32_t)below(st, 01000);
	/* fan-in: a lane per producer end */
	if (chance(st, 30))
		c.max_producers = 1 + (uint32_t)below(st, ZCHAN_ENDS_MAX);
	if (chance(st, 60))
		name_of(st, c.name, mutate);
	if (mutate) {
		c.pool_size = mutate64(st, c.pool_size);
		c.ring_entries = (uint32_t)mutate64(st, c.ring_entries);
		c.max_msg = (uint32_t)mutate64(st, c.max_msg);
		c.mode = (uint32_t)mutate64(st, c.mode);
		if (chance(st, 10))
			c.flags = (uint32_t)rnd(st);
		if (chance(st, 10))
			c.reserved[below(st, 3)] = rnd(st);
		if (chance(st, 10))
			c.max_producers = (uint32_t)mutate64(st, c.max_producers);
		if (chance(st, 10))
			c.max_consumers = (uint32_t)mutate64(st, c.max_consumers);
		if (chance(st, 5))
			c.flags |= ZCHAN_CREATE_BROADCAST;
		if (chance(st, 10))
			c.layout.pool_size = rnd(st);	/* output only: ignored */
	}
	ret = ioctl(st->fds[s].fd, ZCHAN_IOC_CREATE, &c);
	err = errno;
	account(OP_CREATE, ret, err, allow_create);
	if (ret)
		return -err;
	if (!layout_sane(&c.layout)) {
		ADD(cnt->bad_results, 1);
		bad(OP_CREATE, "CREATE returned an inconsistent layout (pool %llu entries %u max %u)",
		    (unsigned long long)c.layout.pool_size, c.layout.ring_entries,
		    c.layout.max_msg);
	}
	if (st->fds[s].kind != FD_DEV) {
		ADD(cnt->bad_results, 1);
		bad(OP_CREATE, "CREATE succeeded on an fd that already had a role");
	}
	st->fds[s].kind = FD_PROD;
	st->fds[s].l = c.layout;
	return 0;
}

static void do_create(struct fz_state *st)
{
	int s = pick_fd(st, chance(st, 80) ? FD_DEV : FD_FREE);

	if (s < 0)
		return;
	create_on(st, s, chance(st, 40));
}

static void do_attach(struct fz_state *st)
{
	int s = pick_fd(st, chance(st, 80) ? FD_DEV : FD_FREE), ret;
	struct zchan_attach a;

	if (s < 0)
		return;
	memset(&a, 0, sizeof(a));
	name_of(st, a.name, chance(st, 30));
	if (chance(st, 10))
		a.flags = (uint32_t)rnd(st);
	a.role = (uint32_t)below(st, 3);	/* 0, producer, consumer */
	if (chance(st, 5))
		a.role = (uint32_t)rnd(st);
	if (chance(st, 5))
		a.reserved[below(st, 4)] = rnd(st);
	ret = ioctl(st->fds[s].fd, ZCHAN_IOC_ATTACH, &a);
	account(OP_ATTACH, ret, errno, allow_attach);
	if (ret)
		return;
	if (!layout_sane(&a.layout) || st->fds[s].kind != FD_DEV ||
	    a.role > ZCHAN_ROLE_CONSUMER) {
		ADD(cnt->bad_results, 1);
		bad(OP_ATTACH, "ATTACH: bad layout, role or fd already had a role");
	}
	st->fds[s].kind = a.role == ZCHAN_ROLE_PRODUCER ? FD_PROD : FD_CONS;
	st->fds[s].l = a.layout;
}

static int peer_fd_on(struct fz_state *st, int s, bool mutate)
{
	struct zchan_peer_fd p;
	int ret, err, t;

	memset(&p, 0, sizeof(p));
	p.flags = chance(st, 50) ? ZCHAN_PEER_FD_CLOEXEC : 0;
	/* a new producer (a lane of a fan-in channel), from any end */
	if (mutate && chance(st, 40))
		p.role = ZCHAN_ROLE_PRODUCER;
	if (mutate && chance(st, 5))
		p.role = (uint32_t)rnd(st);
	if (mutate && chance(st, 5))
		p.resv = (uint32_t)rnd(st);
	if (mutate && chance(st, 20))
		p.flags = (uint32_t)rnd(st);
	if (mutate && chance(st, 10))
		p.reserved[below(st, 1)] = rnd(st);
	if (mutate && chance(st, 10))
		p.fd = (uint32_t)rnd(st);	/* output only */
	ret = ioctl(st->fds[s].fd, ZCHAN_IOC_PEER_FD, &p);
	err = errno;
	account(OP_PEER_FD, ret, err, allow_peer_fd);
	if (ret)
		return -err;
	if (p.role == ZCHAN_ROLE_PRODUCER) {
		struct zchan_info info;

		t = free_fd_slot(st);
		if (t < 0) {
			close((int)p.fd);
			return -EMFILE;
		}
		memset(&info, 0, sizeof(info));
		if (ioctl((int)p.fd, ZCHAN_IOC_INFO, &info) ||
		    info.role != ZCHAN_ROLE_PRODUCER || !layout_sane(&info.layout)) {
			ADD(cnt->bad_results, 1);
			bad(OP_PEER_FD, "PEER_FD's producer: role %u or bad layout",
			    info.role);
		}
		st->fds[t].fd = (int)p.fd;
		st->fds[t].kind = FD_PROD;
		st->fds[t].l = info.layout;
		return t;
	}
	/* an fd of no role here may be a producer through a dup or a child */
	if (st->fds[s].kind == FD_CONS || p.role > ZCHAN_ROLE_CONSUMER) {
		ADD(cnt->bad_results, 1);
		bad(OP_PEER_FD, "PEER_FD's consumer from a consumer fd, or role %u",
		    p.role);
	}
	st->fds[s].kind = FD_PROD;
	t = free_fd_slot(st);
	if (t < 0) {
		close((int)p.fd);
		return -EMFILE;
	}
	st->fds[t].fd = (int)p.fd;
	st->fds[t].kind = FD_CONS;
	/* the consumer's layout is lane 0's, at the 1:1 offsets */
	st->fds[t].l = st->fds[s].l;
	st->fds[t].l.prod_ring_off -= lane_base(&st->fds[s].l);
	st->fds[t].l.cons_ring_off -= lane_base(&st->fds[s].l);
	st->fds[t].l.pool_off -= lane_base(&st->fds[s].l);
	return t;
}

static void do_peer_fd(struct fz_state *st)
{
	int s = pick_fd(st, chance(st, 80) ? FD_PROD : FD_FREE);

	if (s >= 0)
		peer_fd_on(st, s, chance(st, 30));
}

static void do_kick(struct fz_state *st)
{
	struct zchan_kick k;
	int slot, fd = target_fd(st, &slot), ret;

	memset(&k, 0, sizeof(k));
	if (chance(st, 20)) {
		k.flags = ZCHAN_KICK_LANE;	/* the consumer's, a lane of its */
		k.lane = (uint32_t)below(st, 4);
	}
	if (chance(st, 10))
		k.flags = (uint32_t)rnd(st);
	if (chance(st, 5))
		k.reserved[below(st, 2)] = rnd(st);
	ret = ioctl(fd, ZCHAN_IOC_KICK, &k);
	account(OP_KICK, ret, errno, allow_simple);
}

/* ZCHAN_IOC_LANE: a lane of a fan-in channel, as its consumer sees it. */
static void do_lane(struct fz_state *st)
{
	struct zchan_lane_info li;
	int slot, fd = target_fd(st, &slot), ret;

	memset(&li, 0, sizeof(li));
	li.index = (uint32_t)below(st, 5);
	if (chance(st, 5))
		li.index = (uint32_t)rnd(st);
	if (chance(st, 5))
		li.flags = ZCHAN_LANE_DROP;	/* a producer's lane, dropped */
	if (chance(st, 5))
		li.flags = (uint32_t)rnd(st);
	if (chance(st, 5))
		li.reserved[below(st, 2)] = rnd(st);
	ret = ioctl(fd, ZCHAN_IOC_LANE, &li);
	account(OP_LANE, ret, errno, allow_lane);
	if (ret)
		return;
	if (li.index >= li.lanes ||
	    li.state & ~(ZCHAN_LANE_OPEN | ZCHAN_LANE_CLOSED | ZCHAN_LANE_DROPPED) ||
	    ((li.flags & ZCHAN_LANE_DROP) && !(li.state & ZCHAN_LANE_DROPPED)) ||
	    !layout_sane(&li.layout) ||
	    (li.index && lane_base(&li.layout) != ZCHAN_OFF_LANE(li.index))) {
		ADD(cnt->bad_results, 1);
		bad(OP_LANE, "LANE %u of %u: state %#x or bad layout", li.index,
		    li.lanes, li.state);
	}
}

/* ZCHAN_IOC_USE: start or end this process's use of an end. */
static void do_use(struct fz_state *st)
{
	struct zchan_use u;
	int slot, fd = target_fd(st, &slot), ret;

	memset(&u, 0, sizeof(u));
	u.flags = chance(st, 30) ? ZCHAN_USE_END : 0;
	if (chance(st, 10))
		u.flags = (uint32_t)rnd(st);
	if (chance(st, 5))
		u.resv = (uint32_t)rnd(st);
	if (chance(st, 5))
		u.reserved[below(st, 2)] = rnd(st);
	ret = ioctl(fd, ZCHAN_IOC_USE, &u);
	account(OP_USE, ret, errno, allow_use);
}

static void do_wait(struct fz_state *st)
{
	/* 20 ms, then every 20 ms: a tick may come before the WAIT sleeps */
	struct itimerval it = { { 0, 20000 }, { 0, 20000 } };
	struct zchan_wait w;
	int slot, fd = target_fd(st, &slot), ret, err;

	memset(&w, 0, sizeof(w));
	w.flags = ZCHAN_WAIT_TIMEOUT;
	w.timeout_ns = below(st, 2000000);
	if (chance(st, 15))
		w.flags = (uint32_t)mutate64(st, w.flags);
	if (chance(st, 10))
		w.timeout_ns = mutate64(st, w.timeout_ns);
	if (chance(st, 5))
		w.reserved[below(st, 2)] = rnd(st);
	/* A wait without timeout (or a huge one) ends with the timer. */
	setitimer(ITIMER_REAL, &it, NULL);
	ret = ioctl(fd, ZCHAN_IOC_WAIT, &w);
	err = errno;
	memset(&it, 0, sizeof(it));
	setitimer(ITIMER_REAL, &it, NULL);
	account(OP_WAIT, ret, err, allow_wait);
	if (!ret && (!w.revents || w.revents & ~(EPOLLIN | EPOLLOUT | EPOLLHUP |
					       EPOLLERR | EPOLLRDNORM | EPOLLWRNORM))) {
		ADD(cnt->bad_results, 1);
		bad(OP_WAIT, "WAIT returned revents %#x", w.revents);
	}
}

static void do_info(struct fz_state *st)
{
	struct zchan_info info;
	int slot, fd = target_fd(st, &slot), ret;

	memset(&info, 0, sizeof(info));
	if (chance(st, 10))
		info.flags = (uint32_t)rnd(st);
	if (chance(st, 5))
		info.reserved[below(st, 1)] = rnd(st);
	ret = ioctl(fd, ZCHAN_IOC_INFO, &info);
	account(OP_INFO, ret, errno, allow_simple);
	if (ret || slot < 0)
		return;
	/*
	 * An fd this process thinks has no role may have got one through a
	 * dup or a forked child sharing the file; a role never changes.
	 */
	if (info.role > ZCHAN_ROLE_CONSUMER ||
	    (slot >= 0 && st->fds[slot].kind == FD_PROD && info.role != ZCHAN_ROLE_PRODUCER) ||
	    (slot >= 0 && st->fds[slot].kind == FD_CONS && info.role != ZCHAN_ROLE_CONSUMER) ||
	    (info.role && !layout_sane(&info.layout)) ||
	    memchr(info.name, 0, sizeof(info.name)) == NULL) {
		ADD(cnt->bad_results, 1);
		bad(OP_INFO, "INFO: role %u for an fd of kind %d", info.role,
		    st->fds[slot].kind);
	}
}

/* Command numbers the VFS handles itself on any file: never generated. */
static bool vfs_type(unsigned int type)
{
	return type == 'T' || type == 'X' || type == 'f' || type == 0x94 ||
	       type == 0x12 /* block */ || type == 0x15 /* FS_IOC_*32 */;
}

static void do_badcmd(struct fz_state *st)
{
	static const unsigned int real[] = {
		ZCHAN_IOC_CREATE, ZCHAN_IOC_ATTACH, ZCHAN_IOC_PEER_FD,
		ZCHAN_IOC_KICK, ZCHAN_IOC_WAIT, ZCHAN_IOC_INFO,
		ZCHAN_IOC_USE, ZCHAN_IOC_SEND_PAGES, ZCHAN_IOC_REAP,
		ZCHAN_IOC_LANE,
	};
	uint8_t buf[512];
	unsigned int cmd, i;
	int slot, fd = target_fd(st, &slot), ret;

	for (i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)rnd(st);
	switch (below(st, 4)) {
	case 0:		/* right number, wrong size or direction */
		cmd = real[below(st, ARRAY_SIZE(real))];
		cmd = _IOC(below(st, 4), ZCHAN_IOC_MAGIC, _IOC_NR(cmd),
			   below(st, 4) ? _IOC_SIZE(cmd) + below(st, 17) - 8 : below(st, 1 << 14));
		break;
	case 1:		/* 'Z', unknown number */
		cmd = _IOC(below(st, 4), ZCHAN_IOC_MAGIC, 8 + below(st, 248), below(st, 512));
		break;
	default:	/* anything but the VFS's own commands */
		do
			cmd = (unsigned int)rnd(st);
		while (vfs_type(_IOC_TYPE(cmd)));
		break;
	}
	for (i = 0; i < ARRAY_SIZE(real); i++)
		if (cmd == real[i])
			cmd ^= 1U << 30;	/* flip direction: not a real one */
	ret = ioctl(fd, cmd, buf);
	account(OP_BADCMD, ret, errno, allow_badcmd);
	if (!ret)
		bad(OP_BADCMD, "unknown ioctl %#x succeeded", cmd);
}

static void do_badptr(struct fz_state *st)
{
	static const unsigned int real[] = {
		ZCHAN_IOC_CREATE, ZCHAN_IOC_ATTACH, ZCHAN_IOC_PEER_FD,
		ZCHAN_IOC_KICK, ZCHAN_IOC_WAIT, ZCHAN_IOC_INFO,
	};
	static uint8_t *edge;
	unsigned int cmd = real[below(st, ARRAY_SIZE(real))];
	int slot, fd = target_fd(st, &slot), ret;
	void *p;

	if (!edge) {
		/* a page followed by a guard page: arguments straddling it */
		edge = mmap(NULL, 2 * page_size, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (edge == MAP_FAILED)
			return;
		memset(edge, 0, page_size);
		mprotect(edge + page_size, page_size, PROT_NONE);
	}
	switch (below(st, 5)) {
	case 0:
		p = NULL;
		break;
	case 1:
		p = (void *)(uintptr_t)(1 + below(st, 4096));
		break;
	case 2:
		p = (void *)(uintptr_t)0xffff888000000000ULL;	/* kernel */
		break;
	case 3:
		p = edge + page_size - 1 - below(st, _IOC_SIZE(cmd) - 1);
		break;
	default:	/* read-only memory: the out fields cannot be written */
		p = (void *)op_names;
		break;
	}
	if (cmd == ZCHAN_IOC_WAIT) {
		/* a readable argument would block: keep it bad */
		if (p == (void *)op_names)
			p = NULL;
	}
	ret = ioctl(fd, cmd, p);
	account(OP_BADPTR, ret, errno, allow_badptr);
	if (!ret && p != (void *)op_names && cmd != ZCHAN_IOC_KICK)
		bad(OP_BADPTR, "ioctl %#x with pointer %p succeeded", cmd, p);
}

static int free_map_slot(struct fz_state *st)
{
	int i;

	for (i = 0; i < MAX_MAPS; i++)
		if (!st->maps[i].addr)
			return i;
	i = (int)below(st, MAX_MAPS);
	munmap(st->maps[i].addr, st->maps[i].len);
	st->maps[i].addr = NULL;
	return i;
}

static int map_region(struct fz_state *st, int s, enum fz_region r,
		      int prot, int flags, uint64_t off, size_t len, int op)
{
	int m = free_map_slot(st);
	void *p;

	p = mmap(NULL, len, prot, flags, s >= 0 ? st->fds[s].fd : 950, (off_t)off);
	account(op, p == MAP_FAILED ? -1 : 0, errno, allow_mmap);
	if (p == MAP_FAILED)
		return -1;
	st->maps[m] = (struct fz_map){
		.addr = p, .len = len, .prot = prot, .fd_slot = s, .region = r,
		.gen = s >= 0 ? st->fd_gen[s] : -1,
	};
	return m;
}

static void region_geom(const struct zchan_layout *l, enum fz_region r,
			uint64_t *off, uint64_t *len)
{
	switch (r) {
	case R_PROD:
		*off = l->prod_ring_off;
		*len = l->prod_ring_size;
		break;
	case R_CONS:
		*off = l->cons_ring_off;
		*len = l->cons_ring_size;
		break;
	default:
		*off = l->pool_off;
		*len = l->pool_size;
		break;
	}
}

static void do_mmap(struct fz_state *st)
{
	static const int prots[] = {
		PROT_READ, PROT_READ | PROT_WRITE, PROT_WRITE, PROT_NONE,
		PROT_READ | PROT_EXEC, PROT_READ | PROT_WRITE | PROT_EXEC,
	};
	int s = pick_fd(st, FD_FREE), prot, flags;
	enum fz_region r = R_PROD + (int)below(st, 3);
	struct zchan_layout l;
	uint64_t off, len;

	if (s < 0)
		return;
	l = st->fds[s].l;
	if (st->fds[s].kind == FD_DEV || !l.pool_size) {
		l.prod_ring_size = l.cons_ring_size = l.pool_size = page_size;
		l.cons_ring_off = ZCHAN_OFF_CONS_RING;
		l.pool_off = ZCHAN_OFF_POOL;
	}
	region_geom(&l, r, &off, &len);
	prot = prots[below(st, 6)];
	flags = chance(st, 90) ? MAP_SHARED : MAP_PRIVATE;
	if (chance(st, 5))
		flags |= MAP_POPULATE;
	if (chance(st, 5))
		flags |= MAP_LOCKED;
	if (chance(st, 25)) {
		switch (below(st, 4)) {
		case 0:
			off += page_size * (below(st, 3) + 1);
			break;
		case 1:
			off = below(st, 1ULL << 30) & ~(uint64_t)(page_size - 1);
			break;
		case 2:
			len += page_size * (below(st, 3) + 1);
			break;
		default:
			len = len > (uint64_t)page_size ? len - page_size : 2 * page_size;
			break;
		}
	}
	map_region(st, s, r, prot, flags, off, len, OP_MMAP);
}

static int pick_map(struct fz_state *st)
{
	int i, start = (int)below(st, MAX_MAPS);

	for (i = 0; i < MAX_MAPS; i++) {
		int m = (start + i) % MAX_MAPS;

		if (st->maps[m].addr)
			return m;
	}
	return -1;
}

/* A page-aligned sub-range of mapping @m: [*a, *a + *n). */
static void sub_range(struct fz_state *st, int m, uint8_t **a, size_t *n)
{
	size_t pages = st->maps[m].len / page_size, first, count;

	if (pages <= 1 || chance(st, 50)) {
		*a = st->maps[m].addr;
		*n = st->maps[m].len;
		return;
	}
	first = below(st, pages);
	count = 1 + below(st, pages - first);
	*a = st->maps[m].addr + first * page_size;
	*n = count * page_size;
}

static void do_munmap(struct fz_state *st)
{
	int m = pick_map(st), ret;
	uint8_t *a;
	size_t n;

	if (m < 0)
		return;
	sub_range(st, m, &a, &n);
	ret = munmap(a, n);
	account(OP_MUNMAP, ret, errno, allow_munmap);
	if (ret)
		return;
	if (a == st->maps[m].addr && n == st->maps[m].len) {
		st->maps[m].addr = NULL;
	} else if (a == st->maps[m].addr) {	/* head gone: keep the tail */
		st->maps[m].addr += n;
		st->maps[m].len -= n;
		st->maps[m].region = R_NONE;
	} else {			/* keep the head; leak-free: unmap the rest */
		size_t head = a - st->maps[m].addr;

		munmap(a + n, st->maps[m].len - head - n);
		st->maps[m].len = head;
		st->maps[m].region = R_NONE;
	}
}

static void do_mremap(struct fz_state *st)
{
	int m = pick_map(st);
	size_t new_len;
	int flags = 0;
	void *p;

	if (m < 0)
		return;
	switch (below(st, 3)) {
	case 0:
		new_len = st->maps[m].len + page_size * (1 + below(st, 4));
		break;
	case 1:
		new_len = st->maps[m].len > (size_t)page_size ?
			  st->maps[m].len - page_size : st->maps[m].len;
		break;
	default:
		new_len = st->maps[m].len;
		break;
	}
	if (chance(st, 60))
		flags |= MREMAP_MAYMOVE;
	p = mremap(st->maps[m].addr, st->maps[m].len, new_len, flags);
	account(OP_MREMAP, p == MAP_FAILED ? -1 : 0, errno, allow_mremap);
	if (p == MAP_FAILED)
		return;
	if (new_len > st->maps[m].len) {
		ADD(cnt->bad_results, 1);
		bad(OP_MREMAP, "mremap grew a VM_DONTEXPAND mapping");
	}
	if (new_len != st->maps[m].len)
		st->maps[m].region = R_NONE;
	st->maps[m].addr = p;
	st->maps[m].len = new_len;
}

static void do_mprotect(struct fz_state *st)
{
	static const int prots[] = {
		PROT_NONE, PROT_READ, PROT_READ | PROT_WRITE, PROT_WRITE | PROT_EXEC,
	};
	int m = pick_map(st), prot = prots[below(st, 4)], ret, err;
	uint8_t *a;
	size_t n;

	if (m < 0)
		return;
	sub_range(st, m, &a, &n);
	ret = mprotect(a, n, prot);
	err = errno;
	account(OP_MPROTECT, ret, err, allow_mprotect);
	if (!ret && (prot & PROT_WRITE) && st->maps[m].region != R_NONE &&
	    st->maps[m].fd_slot >= 0 && st->fd_gen[st->maps[m].fd_slot] == st->maps[m].gen) {
		enum fz_kind k = st->fds[st->maps[m].fd_slot].kind;
		enum fz_region r = st->maps[m].region;

		/* the read-only side of a region can never become writable */
		if ((k == FD_CONS && r != R_CONS) || (k == FD_PROD && r == R_CONS)) {
			ADD(cnt->bad_results, 1);
			bad(OP_MPROTECT, "mprotect made region %d writable for fd kind %d", r, k);
		}
	}
	if (!ret && a == st->maps[m].addr && n == st->maps[m].len)
		st->maps[m].prot = prot;
	else if (!ret)
		st->maps[m].prot = PROT_NONE;	/* mixed: touch will find out */
}

/* Run @fn-like code on mapped memory with SIGSEGV/SIGBUS turned into a count. */
#define GUARDED(st, ...)						\
	do {								\
		int __sig = sigsetjmp(touch_jmp, 1);			\
		if (!__sig) {						\
			touching = 1;					\
			__VA_ARGS__;					\
			touching = 0;					\
		} else if (__sig == SIGBUS) {				\
			ADD(cnt->sigbus, 1);				\
			bad(-1, "SIGBUS touching a zchan mapping");	\
		} else {						\
			ADD(cnt->faults, 1);				\
		}							\
	} while (0)

static void do_touch(struct fz_state *st)
{
	int m = pick_map(st);
	volatile uint8_t *p;
	size_t off;

	ADD(cnt->calls[OP_TOUCH], 1);
	if (m < 0)
		return;
	off = below(st, st->maps[m].len);
	p = st->maps[m].addr + off;
	GUARDED(st, {
		uint8_t v = *p;

		if (chance(st, 30))
			*p = v;
	});
	ADD(cnt->ok[OP_TOUCH], 1);
}

#define PAGES_BUF	8	/* pages of the SEND_PAGES buffer */

/* ZCHAN_IOC_SEND_PAGES of part of this worker's buffer, often mutated. */
static void do_send_pages(struct fz_state *st)
{
	struct zchan_send_pages sp;
	int slot, fd = target_fd(st, &slot), prod = pick_fd(st, FD_PROD), ret;
	uint64_t first, n;

	if (!st->pages_buf) {
		st->pages_buf = mmap(NULL, PAGES_BUF * page_size,
				     PROT_READ | PROT_WRITE,
				     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (st->pages_buf == MAP_FAILED) {
			st->pages_buf = NULL;
			return;
		}
		memset(st->pages_buf, 0x5a, PAGES_BUF * page_size);
	}
	if (prod >= 0 && chance(st, 70))
		fd = st->fds[prod].fd;
	first = below(st, PAGES_BUF);
	n = 1 + below(st, PAGES_BUF - first);
	memset(&sp, 0, sizeof(sp));
	sp.addr = (uintptr_t)st->pages_buf + first * page_size;
	sp.len = n * page_size;
	sp.cookie = rnd(st);
	if (chance(st, 10))
		sp.addr = mutate64(st, sp.addr);
	if (chance(st, 10))
		sp.len = mutate64(st, sp.len);
	if (chance(st, 5))
		sp.flags = (uint32_t)rnd(st);
	if (chance(st, 3))
		sp.resv = (uint32_t)rnd(st);
	if (chance(st, 3))
		sp.offset = rnd(st);
	if (chance(st, 3))
		sp.reserved[below(st, 3)] = rnd(st);
	ret = ioctl(fd, ZCHAN_IOC_SEND_PAGES, &sp);
	account(OP_SEND_PAGES, ret, errno, allow_send_pages);
	if (ret)
		return;
	if (sp.offset < ZCHAN_OFF_PAGES ||
	    (sp.offset - ZCHAN_OFF_PAGES) % ZCHAN_PAGES_MAX) {
		ADD(cnt->bad_results, 1);
		bad(OP_SEND_PAGES, "SEND_PAGES returned offset %#llx",
		    (unsigned long long)sp.offset);
	}
	st->pages_off[below(st, 8)] = sp.offset;
	st->pages_len[below(st, 8)] = sp.len;
}

/* Map a transfer (a recent offset, or a forged one) on any fd. */
static void do_pages_map(struct fz_state *st)
{
	int s = chance(st, 70) ? pick_fd(st, FD_CONS) : pick_fd(st, FD_FREE);
	int prot = chance(st, 85) ? PROT_READ : PROT_READ | PROT_WRITE;
	int flags = chance(st, 90) ? MAP_SHARED : MAP_PRIVATE;
	unsigned int i = below(st, 8);
	uint64_t off = st->pages_off[i], len = st->pages_len[i];
	int m;

	if (s < 0)
		return;
	if (!off || chance(st, 10))
		off = ZCHAN_OFF_PAGES + below(st, 64) * ZCHAN_PAGES_MAX;
	if (chance(st, 10))
		off = mutate64(st, off) & ~(uint64_t)(page_size - 1);
	if (!len || len > PAGES_BUF * (uint64_t)page_size || chance(st, 15))
		len = (1 + below(st, PAGES_BUF)) * page_size;
	if (free_map_slot(st) < 0)
		return;
	m = map_region(st, s, R_NONE, prot, flags, off, len, OP_PAGES_MAP);
	/* Often let go at once, so that completions keep coming. */
	if (m >= 0 && chance(st, 50)) {
		munmap(st->maps[m].addr, st->maps[m].len);
		st->maps[m].addr = NULL;
	}
}

static void do_reap(struct fz_state *st)
{
	struct zchan_completion c[8];
	struct zchan_reap r;
	int slot, fd = target_fd(st, &slot), ret, i;

	memset(&r, 0, sizeof(r));
	r.addr = (uintptr_t)c;
	r.nr = 1 + below(st, 8);
	if (chance(st, 5))
		r.addr = mutate64(st, r.addr);
	if (chance(st, 5))
		r.flags = (uint32_t)rnd(st);
	if (chance(st, 3))
		r.reserved[below(st, 2)] = rnd(st);
	ret = ioctl(fd, ZCHAN_IOC_REAP, &r);
	account(OP_REAP, ret, errno, allow_reap);
	if (ret <= 0 || r.addr != (uintptr_t)c)
		return;
	for (i = 0; i < ret && i < 8; i++)
		if (ret > (int)r.nr || c[i].flags & ~ZCHAN_COMPL_ABORTED) {
			ADD(cnt->bad_results, 1);
			bad(OP_REAP, "REAP: %d of %u, flags %#x", ret, r.nr,
			    c[i].flags);
			return;
		}
}

/* Write random values over the ring words of a writable mapping. */
static void do_scribble(struct fz_state *st)
{
	int m = pick_map(st), i;
	volatile uint32_t *w;
	size_t words;

	ADD(cnt->calls[OP_SCRIBBLE], 1);
	if (m < 0 || !(st->maps[m].prot & PROT_WRITE) || st->maps[m].region == R_POOL)
		return;
	words = st->maps[m].len / 4;
	w = (uint32_t *)st->maps[m].addr;
	GUARDED(st, {
		for (i = 0; i < 8; i++) {
			size_t idx = chance(st, 70) ? below(st, 40) : below(st, words);

			w[idx] = (uint32_t)mutate64(st, w[idx]);
		}
	});
	ADD(cnt->ok[OP_SCRIBBLE], 1);
}

/* The tagged mapping of region @r for fd slot @s, or NULL. */
static uint8_t *region_map(struct fz_state *st, int s, enum fz_region r, size_t len)
{
	int i;

	for (i = 0; i < MAX_MAPS; i++)
		if (st->maps[i].addr && st->maps[i].fd_slot == s &&
		    st->maps[i].gen == st->fd_gen[s] && st->maps[i].region == r &&
		    st->maps[i].len == len)
			return st->maps[i].addr;
	return NULL;
}

/* Open a channel, create, hand out the peer fd and map everything right. */
static void do_setup(struct fz_state *st)
{
	int s, c, rw = PROT_READ | PROT_WRITE;
	struct zchan_layout *l;

	ADD(cnt->calls[OP_SETUP], 1);
	s = free_fd_slot(st);
	if (s < 0)
		return;
	do_open(st);
	if (st->fds[s].kind != FD_DEV)
		return;
	if (create_on(st, s, false))
		return;
	c = peer_fd_on(st, s, false);
	if (c < 0)
		return;
	l = &st->fds[s].l;
	map_region(st, s, R_PROD, rw, MAP_SHARED, l->prod_ring_off, l->prod_ring_size, OP_MMAP);
	map_region(st, s, R_CONS, PROT_READ, MAP_SHARED, l->cons_ring_off, l->cons_ring_size, OP_MMAP);
	map_region(st, s, R_POOL, rw, MAP_SHARED, l->pool_off, l->pool_size, OP_MMAP);
	map_region(st, c, R_PROD, PROT_READ, MAP_SHARED, l->prod_ring_off, l->prod_ring_size, OP_MMAP);
	map_region(st, c, R_CONS, rw, MAP_SHARED, l->cons_ring_off, l->cons_ring_size, OP_MMAP);
	map_region(st, c, R_POOL, PROT_READ, MAP_SHARED, l->pool_off, l->pool_size, OP_MMAP);
	st->fds[s].mapped = st->fds[c].mapped = true;
	st->p_tail[s] = st->p_pos[s] = st->seq[s] = 0;
	st->c_read[c] = st->seq[c] = 0;
	ADD(cnt->ok[OP_SETUP], 1);
}

/*
 * A hostile producer's ZCHAN_DESC_PAGES descriptor in slot @t: a recent
 * transfer's offset (this worker's) or any transfer window, with its
 * length, twice it, a page more or less, or any length.
 */
static void forge_pages_desc(struct fz_state *st, void *pr,
			     const struct zchan_layout *l, uint32_t t)
{
	unsigned int i = below(st, 8);
	uint64_t off = st->pages_off[i], len = st->pages_len[i];

	if (!off || chance(st, 20))
		off = ZCHAN_OFF_PAGES + below(st, 64) * ZCHAN_PAGES_MAX;
	if (!len)
		len = page_size;
	switch (below(st, 5)) {
	case 0:
		len *= 2;
		break;
	case 1:
		len += page_size;
		break;
	case 2:
		len = len > (uint64_t)page_size ? len - page_size : 0;
		break;
	case 3:
		len = (uint32_t)rnd(st);
		break;
	}
	*zc_desc(pr, l, t) = (struct zchan_desc){ off, (uint32_t)len,
						  ZCHAN_DESC_PAGES };
	__atomic_store_n(&ZC_PROD_WORD(pr, l, tail), t + 1, __ATOMIC_RELEASE);
	ADD(cnt->forged, 1);
}

/*
 * The consumer's side of a ZCHAN_DESC_PAGES descriptor, as libzchan takes
 * it: the checks it makes, then a read-only mmap of exactly that length,
 * which the module grants only for a transfer of exactly that length.
 * Every page of a mapping it grants must then read without a fault.
 */
static void consume_pages_desc(struct fz_state *st, int s,
			       const struct zchan_desc *d)
{
	volatile const uint8_t *p;
	volatile bool read_all = false;
	volatile size_t i;
	void *m;

	if (d->off < ZCHAN_OFF_PAGES ||
	    (d->off - ZCHAN_OFF_PAGES) % ZCHAN_PAGES_MAX || !d->len ||
	    d->len > ZCHAN_PAGES_MAX || d->len % page_size) {
		ADD(cnt->hostile, 1);	/* rejected, as libzchan would */
		return;
	}
	errno = chance(st, 50) ? 0 : EINVAL;
	m = mmap(NULL, d->len, PROT_READ, MAP_SHARED, st->fds[s].fd,
		 (off_t)d->off);
	account(OP_PAGES_MAP, m == MAP_FAILED ? -1 : 0, errno, allow_mmap);
	if (m == MAP_FAILED)
		return;
	ADD(cnt->forged_mapped, 1);
	p = m;
	GUARDED(st, {
		for (i = 0; i < d->len; i += page_size)
			(void)p[i];
		read_all = true;
	});
	if (!read_all) {
		ADD(cnt->bad_results, 1);
		bad(OP_PAGES_MAP, "a transfer mapped for a descriptor of %u bytes faults",
		    d->len);
	}
	munmap(m, d->len);
}

/*
 * Correct protocol traffic on a set-up channel: the producer publishes a
 * checksummed message, a consumer takes one and checks it.  The rings may
 * have been scribbled on (by this or another process): the consumer
 * validates like libzchan does and counts what it rejects.
 */
static void do_proto(struct fz_state *st)
{
	int s = pick_fd(st, chance(st, 50) ? FD_PROD : FD_CONS), i;
	struct zchan_layout *l;
	void *pr, *cr;
	uint8_t *pool;

	ADD(cnt->calls[OP_PROTO], 1);
	for (i = 0; s >= 0 && !st->fds[s].mapped && i < MAX_FDS; i++)
		s = (s + 1) % MAX_FDS;
	if (s < 0 || !st->fds[s].mapped)
		return;
	l = &st->fds[s].l;
	pr = region_map(st, s, R_PROD, l->prod_ring_size);
	cr = region_map(st, s, R_CONS, l->cons_ring_size);
	pool = region_map(st, s, R_POOL, l->pool_size);
	if (!pr || !cr || !pool)
		return;
	GUARDED(st, {
		uint32_t mask = l->ring_entries - 1;

		if (st->fds[s].kind == FD_PROD) {
			uint32_t head = __atomic_load_n(&ZC_CONS_WORD(cr, l, head), __ATOMIC_ACQUIRE);
			uint32_t len = 16 + (uint32_t)below(st, 240), t = st->p_tail[s];
			uint64_t off;

			/* room: trust the consumer's head only if it is sane */
			if ((uint32_t)(t - head) < l->ring_entries && chance(st, 10)) {
				forge_pages_desc(st, pr, l, t);
				st->p_tail[s] = t + 1;
			} else if ((uint32_t)(t - head) >= l->ring_entries ||
			    len > l->max_msg || (uint64_t)len * l->ring_entries > l->pool_size) {
				if ((uint32_t)(t - head) > l->ring_entries)
					ADD(cnt->hostile, 1);
			} else {
				off = (uint64_t)(t & mask) * (l->pool_size / l->ring_entries);
				zc_payload_fill(pool + off, len, FUZZ_STREAM, st->seq[s]);
				*zc_desc(pr, l, t) = (struct zchan_desc){ off, len, 0 };
				__atomic_store_n(&ZC_PROD_WORD(pr, l, tail), t + 1, __ATOMIC_RELEASE);
				__atomic_store_n(&ZC_PROD_WORD(pr, l, head_seen), head, __ATOMIC_RELEASE);
				st->p_tail[s] = t + 1;
				st->seq[s]++;
				__atomic_thread_fence(__ATOMIC_SEQ_CST);
				if (__atomic_load_n(&ZC_CONS_WORD(cr, l, need_wakeup), __ATOMIC_RELAXED))
					_zc_kick(st->fds[s].fd);
				ADD(cnt->ok[OP_PROTO], 1);
			}
		} else {
			uint32_t tail = __atomic_load_n(&ZC_PROD_WORD(pr, l, tail), __ATOMIC_ACQUIRE);
			uint32_t r = st->c_read[s];

			if (tail != r) {
				struct zchan_desc d = *zc_desc(pr, l, r);

				if ((uint32_t)(tail - r) <= l->ring_entries &&
				    d.flags == ZCHAN_DESC_PAGES) {
					consume_pages_desc(st, s, &d);
					st->c_read[s] = r + 1;
				} else if ((uint32_t)(tail - r) > l->ring_entries || d.flags ||
				    d.len < 8 || d.len > l->max_msg || d.off > l->pool_size ||
				    d.len > l->pool_size - d.off) {
					ADD(cnt->hostile, 1);	/* rejected, as libzchan would */
					st->c_read[s] = tail;	/* resynchronise */
				} else {
					const uint8_t *m = pool + d.off;

					/* any worker's message: it names its number */
					if (zc_payload_ok(m, d.len, FUZZ_STREAM,
							  zc_payload_seq(m, d.len)))
						ADD(cnt->messages, 1);
					else
						ADD(cnt->hostile, 1);
					st->c_read[s] = r + 1;
				}
				__atomic_store_n(&ZC_CONS_WORD(cr, l, read), st->c_read[s], __ATOMIC_RELEASE);
				__atomic_store_n(&ZC_CONS_WORD(cr, l, head), st->c_read[s], __ATOMIC_RELEASE);
				ADD(cnt->ok[OP_PROTO], 1);
			}
		}
	});
}

static void uring_init(struct fz_state *st)
{
	if (st->ring_live)
		return;
	if (io_uring_queue_init(URING_DEPTH, &st->ring, 0) == 0) {
		st->ring_live = true;
		st->inflight = 0;
	}
}

static void uring_check_cqe(struct io_uring_cqe *cqe)
{
	int op = (int)(cqe->user_data & 0xff);

	ADD(cnt->cqes, 1);
	if (op >= NR_OPS)
		op = OP_URING_REAP;
	if (cqe->res < 0) {
		ADD(cnt->errs[op][-cqe->res < MAX_ERRNO ? -cqe->res : 0], 1);
		if (!in_list(allow_uring, -cqe->res))
			bad(op, "%s: CQE res %d (%s)", op_names[op], cqe->res,
			    strerror(-cqe->res));
	} else if (op == OP_URING_KICK && cqe->res != 0) {
		bad(op, "uring KICK completed with %d", cqe->res);
	} else if (op == OP_URING_WAIT &&
		   (!cqe->res || cqe->res & ~(EPOLLIN | EPOLLOUT | EPOLLHUP | EPOLLERR |
					     EPOLLRDNORM | EPOLLWRNORM))) {
		bad(op, "uring WAIT completed with mask %#x", cqe->res);
	}
}

static void uring_reap(struct fz_state *st, bool count)
{
	struct io_uring_cqe *cqe;
	unsigned int ready;

	if (count)
		ADD(cnt->calls[OP_URING_REAP], 1);
	if (!st->ring_live)
		return;
	/* More ready than the ring holds: its head or tail was overwritten. */
	ready = io_uring_cq_ready(&st->ring);
	if (ready > *st->ring.cq.kring_entries) {
		bad(OP_URING_REAP, "the CQ ring claims %u ready CQEs in %u entries",
		    ready, *st->ring.cq.kring_entries);
		io_uring_queue_exit(&st->ring);
		st->ring_live = false;
		return;
	}
	while (io_uring_peek_cqe(&st->ring, &cqe) == 0) {
		uring_check_cqe(cqe);
		io_uring_cqe_seen(&st->ring, cqe);
		if (st->inflight)
			st->inflight--;
	}
	if (count)
		ADD(cnt->ok[OP_URING_REAP], 1);
}

static void do_uring(struct fz_state *st, int op)
{
	struct io_uring_sqe *sqe;
	int slot, fd = target_fd(st, &slot), ret;

	uring_init(st);
	ADD(cnt->calls[op], 1);
	if (!st->ring_live)
		return;
	uring_reap(st, false);
	if (st->inflight >= URING_DEPTH - 2)
		return;
	sqe = io_uring_get_sqe(&st->ring);
	if (!sqe)
		return;
	if (op == OP_URING_POLL) {
		io_uring_prep_poll_add(sqe, fd, (unsigned int)(chance(st, 80) ?
				       (EPOLLIN | EPOLLOUT | EPOLLHUP) : rnd(st) & 0xffff));
		sqe->user_data = op;
	} else {
		uint32_t cmd_op = op == OP_URING_WAIT ? ZCHAN_URING_CMD_WAIT : ZCHAN_URING_CMD_KICK;

		if (chance(st, 5))
			cmd_op = (uint32_t)rnd(st);
		zc_prep_zcmd(sqe, fd, cmd_op, chance(st, 5) ? (uint32_t)rnd(st) : 0,
			      chance(st, 5) ? (uint32_t)rnd(st) : 0, op);
	}
	ret = io_uring_submit(&st->ring);
	if (ret == 1) {
		st->inflight++;
		ADD(cnt->ok[op], 1);
	} else if (ret < 0) {
		ADD(cnt->errs[op][-ret < MAX_ERRNO ? -ret : 0], 1);
	}
	uring_reap(st, false);
}

/* Tear the ring down with whatever is in flight. */
static void do_uring_exit(struct fz_state *st)
{
	ADD(cnt->calls[OP_URING_EXIT], 1);
	if (!st->ring_live)
		return;
	io_uring_queue_exit(&st->ring);
	st->ring_live = false;
	ADD(cnt->ok[OP_URING_EXIT], 1);
}

static void do_madvise(struct fz_state *st)
{
	static const int advice[] = {
		MADV_DONTNEED, MADV_WILLNEED, MADV_NORMAL, MADV_RANDOM,
		MADV_SEQUENTIAL, MADV_DONTFORK, MADV_DOFORK, MADV_COLD,
		MADV_PAGEOUT, MADV_POPULATE_READ, MADV_POPULATE_WRITE,
		MADV_HUGEPAGE, MADV_NOHUGEPAGE, MADV_DONTDUMP, MADV_DODUMP,
		MADV_REMOVE, MADV_FREE, MADV_WIPEONFORK, MADV_KEEPONFORK,
	};
	int m = pick_map(st), ret;
	uint8_t *a;
	size_t n;

	if (m < 0)
		return;
	sub_range(st, m, &a, &n);
	ret = madvise(a, n, advice[below(st, sizeof(advice) / sizeof(advice[0]))]);
	account(OP_MADVISE, ret, errno, allow_madvise);
}

/* mlock/munlock ranges, or lock everything mapped now and later. */
static void do_mlock(struct fz_state *st)
{
	int m = pick_map(st), ret;
	uint8_t *a;
	size_t n;

	switch (below(st, 5)) {
	case 0:
		ret = mlockall(MCL_CURRENT | (chance(st, 50) ? MCL_FUTURE : 0));
		break;
	case 1:
		ret = munlockall();
		break;
	default:
		if (m < 0)
			return;
		sub_range(st, m, &a, &n);
		ret = chance(st, 60) ? mlock(a, n) : munlock(a, n);
		break;
	}
	account(OP_MLOCK, ret, errno, allow_mlock);
}

/*
 * Hand mapped pages to a pipe (vmsplice takes page references that
 * outlive the mapping and the channel), sometimes read them back later.
 */
static void do_vmsplice(struct fz_state *st)
{
	static int pipefd[2] = { -1, -1 };
	struct iovec iov;
	char buf[4096];
	int m = pick_map(st);
	ssize_t ret;

	if (pipefd[0] < 0 && pipe2(pipefd, O_NONBLOCK | O_CLOEXEC))
		return;
	if (chance(st, 30) || m < 0) {
		while (read(pipefd[0], buf, sizeof(buf)) > 0)
			;
		return;
	}
	iov.iov_base = st->maps[m].addr + below(st, st->maps[m].len);
	iov.iov_len = 1 + below(st, 3 * page_size);
	ret = vmsplice(pipefd[1], &iov, 1, SPLICE_F_NONBLOCK | (chance(st, 20) ? SPLICE_F_GIFT : 0));
	account(OP_VMSPLICE, ret, errno, allow_vmsplice);
}

static void do_poll(struct fz_state *st)
{
	struct pollfd p[4];
	int n = 0, i, ret;

	for (i = 0; i < 4; i++) {
		int slot;

		p[n].fd = target_fd(st, &slot);
		p[n].events = POLLIN | POLLOUT | (chance(st, 20) ? (short)rnd(st) : 0);
		n++;
	}
	ret = poll(p, n, (int)below(st, 3));
	account(OP_POLL, ret, errno, allow_none);
}

static void do_rw(struct fz_state *st)
{
	char buf[64] = { 0 };
	int slot, fd = target_fd(st, &slot);
	ssize_t ret;

	ret = chance(st, 50) ? read(fd, buf, sizeof(buf)) : write(fd, buf, sizeof(buf));
	account(OP_RW, ret, errno, allow_rw);
	if (ret >= 0)
		bad(OP_RW, "read/write on a zchan fd returned %zd", ret);
}

static void do_dup(struct fz_state *st)
{
	int s = pick_fd(st, FD_FREE), t = free_fd_slot(st), fd;

	if (s < 0 || t < 0)
		return;
	fd = dup(st->fds[s].fd);
	account(OP_DUP, fd, errno, allow_open);
	if (fd < 0)
		return;
	st->fds[t] = st->fds[s];
	st->fds[t].fd = fd;
	st->fds[t].mapped = false;
}

static void do_close(struct fz_state *st)
{
	int s = pick_fd(st, FD_FREE), ret;

	if (s < 0)
		return;
	ret = close(st->fds[s].fd);
	account(OP_CLOSE, ret, errno, allow_none);
	fd_forget(st, s);
}

static void run_ops(struct fz_state *st, uint64_t n, double deadline);

/* Print where a hung process (and its children) sits in the kernel. */
static void dump_task(pid_t pid)
{
	static const char *const files[] = { "stat", "wchan", "syscall", "stack" };
	char path[64], buf[2048];
	unsigned int i;
	ssize_t n;
	int fd;

	for (i = 0; i < 4; i++) {
		snprintf(path, sizeof(path), "/proc/%d/%s", pid, files[i]);
		fd = open(path, O_RDONLY);
		if (fd < 0)
			continue;
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n <= 0)
			continue;
		buf[n] = 0;
		for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n"))
			printf("# hung pid %d %s: %s\n", pid, files[i], line);
	}
	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", pid, pid);
	fd = open(path, O_RDONLY);
	if (fd >= 0) {
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n > 0) {
			char *tok, *save;

			buf[n] = 0;
			for (tok = strtok_r(buf, " \n", &save); tok; tok = strtok_r(NULL, " \n", &save))
				dump_task((pid_t)atoi(tok));
		}
	}
}

/*
 * A child does not inherit what had MADV_DONTFORK, nor VM_DONTCOPY
 * mappings (a SEND_PAGES consumer's), yet its copy of the map table still
 * names those addresses.  Its next mmap (its io_uring rings, say) may land
 * there, and the fuzzer would then scribble on a mapping it does not own.
 * Forget every map the child lacks even in part (msync() fails with
 * ENOMEM on a hole), unmapping whatever part of it is left.
 */
static void forget_uninherited_maps(struct fz_state *st)
{
	int m;

	for (m = 0; m < MAX_MAPS; m++) {
		if (!st->maps[m].addr ||
		    !msync(st->maps[m].addr, st->maps[m].len, MS_ASYNC))
			continue;
		munmap(st->maps[m].addr, st->maps[m].len);
		st->maps[m].addr = NULL;
	}
}

/* Fork with everything live; the child runs a few ops or is killed. */
static void do_fork(struct fz_state *st)
{
	pid_t pid;

	ADD(cnt->calls[OP_FORK], 1);
	if (st->child)
		return;
	pid = fork();
	if (pid < 0) {
		ADD(cnt->errs[OP_FORK][errno < MAX_ERRNO ? errno : 0], 1);
		return;
	}
	if (!pid) {
		st->child = true;
		st->rng ^= 0x5a5a5a5aULL * (uint64_t)getpid();
		st->ring_live = false;	/* the parent's ring: not ours to use */
		forget_uninherited_maps(st);
		run_ops(st, 1 + below(st, 40), zc_now() + 30);
		_exit(0);
	}
	ADD(cnt->forks, 1);
	if (chance(st, 50)) {
		usleep((useconds_t)below(st, 2000));
		kill(pid, SIGKILL);
	}
	if (zc_child_wait(pid, 60) == -ETIMEDOUT) {
		bad(OP_FORK, "a forked child (pid %d) did not exit within 60 s", pid);
		dump_task(pid);
		zc_child_kill(pid);
	}
	ADD(cnt->ok[OP_FORK], 1);
}

static unsigned int weight_total(void)
{
	unsigned int i, t = 0;

	for (i = 0; i < NR_OPS; i++)
		t += op_weights[i];
	return t;
}

/* What errno may hold before a call: never what decides its result. */
static const int errno_presets[] = { 0, EINVAL, EACCES };

static void run_one(struct fz_state *st, int op)
{
	errno = errno_presets[below(st, ARRAY_SIZE(errno_presets))];
	switch (op) {
	case OP_OPEN: do_open(st); break;
	case OP_CREATE: do_create(st); break;
	case OP_ATTACH: do_attach(st); break;
	case OP_PEER_FD: do_peer_fd(st); break;
	case OP_KICK: do_kick(st); break;
	case OP_USE: do_use(st); break;
	case OP_WAIT: do_wait(st); break;
	case OP_INFO: do_info(st); break;
	case OP_LANE: do_lane(st); break;
	case OP_BADCMD: do_badcmd(st); break;
	case OP_BADPTR: do_badptr(st); break;
	case OP_SETUP: do_setup(st); break;
	case OP_MMAP: do_mmap(st); break;
	case OP_MUNMAP: do_munmap(st); break;
	case OP_MREMAP: do_mremap(st); break;
	case OP_MPROTECT: do_mprotect(st); break;
	case OP_TOUCH: do_touch(st); break;
	case OP_SCRIBBLE: do_scribble(st); break;
	case OP_PROTO: do_proto(st); break;
	case OP_FORK: do_fork(st); break;
	case OP_URING_WAIT:
	case OP_URING_KICK:
	case OP_URING_POLL: do_uring(st, op); break;
	case OP_URING_REAP: uring_reap(st, true); break;
	case OP_URING_EXIT: do_uring_exit(st); break;
	case OP_MADVISE: do_madvise(st); break;
	case OP_MLOCK: do_mlock(st); break;
	case OP_VMSPLICE: do_vmsplice(st); break;
	case OP_POLL: do_poll(st); break;
	case OP_RW: do_rw(st); break;
	case OP_DUP: do_dup(st); break;
	case OP_SEND_PAGES: do_send_pages(st); break;
	case OP_PAGES_MAP: do_pages_map(st); break;
	case OP_REAP: do_reap(st); break;
	case OP_CLOSE: do_close(st); break;
	}
}

static void run_ops(struct fz_state *st, uint64_t n, double deadline)
{
	unsigned int total = weight_total();
	uint64_t i;

	for (i = 0; i < n; i++) {
		unsigned int w = (unsigned int)below(st, total), op = 0;

		while (w >= op_weights[op])
			w -= op_weights[op++];
		if (opt_verbose && !st->child && !(i % 10000))
			fprintf(stderr, "%s: worker %d: %llu/%llu calls\n", prog,
				st->worker, (unsigned long long)i, (unsigned long long)n);
		run_one(st, (int)op);
		if (!(i & 63) && zc_now() > deadline)
			break;
	}
}

/* Close everything in a random order, as a process that exits would. */
static void teardown(struct fz_state *st)
{
	int order[MAX_FDS + MAX_MAPS + 1], n = 0, i;

	for (i = 0; i < MAX_FDS + MAX_MAPS + 1; i++)
		order[n++] = i;
	for (i = n - 1; i > 0; i--) {
		int j = (int)below(st, i + 1), t = order[i];

		order[i] = order[j];
		order[j] = t;
	}
	for (i = 0; i < n; i++) {
		int k = order[i];

		if (k < MAX_FDS) {
			if (st->fds[k].kind != FD_FREE)
				close(st->fds[k].fd);
		} else if (k < MAX_FDS + MAX_MAPS) {
			struct fz_map *m = &st->maps[k - MAX_FDS];

			if (m->addr)
				munmap(m->addr, m->len);
		} else if (st->ring_live) {
			io_uring_queue_exit(&st->ring);
		}
	}
}

static void worker(int id, uint64_t iterations, double deadline)
{
	struct fz_state *st = calloc(1, sizeof(*st));
	int i;

	if (!st)
		_exit(2);
	st->worker = id;
	st->rng = opt_seed * 1000003ULL + (uint64_t)id;
	for (i = 0; i < MAX_FDS; i++)
		st->fds[i].fd = -1;
	run_ops(st, iterations, deadline);
	/* half the workers clean up, the others just exit */
	if (id & 1)
		teardown(st);
	_exit(0);
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: %s [OPTIONS]\n"
		"Fuzz /dev/zchan (zchan.ko must be loaded; run as root).\n\n"
		"  -s, --seed N        PRNG seed (default 1): same seed, same calls\n"
		"  -n, --iterations N  calls in all, split over the workers (default 10000)\n"
		"  -p, --procs N       worker processes at once (default 3)\n"
		"  -t, --time S        stop after S seconds even if calls remain (default 600)\n"
		"      --max-pool B    max_pool_bytes for the run (default 4194304)\n"
		"      --max-user-pool B  max_user_pool_bytes for the run (default 134217728)\n"
		"      --disable K,..  leave out these call kinds (names as in the table)\n"
		"      --json          print the figures as one JSON object\n"
		"  -v, --verbose       progress on stderr\n"
		"  -h, --help          this help\n\n"
		"Prints TAP: no unexpected errno, no SIGBUS, no impossible result, every\n"
		"worker exited, and no live channel/file/page in debugfs zchan/stats\n"
		"afterwards.  Then a table of calls per kind and the errors seen.\n\n"
		"Examples:\n"
		"  %s --seed 42 --iterations 20000 --procs 3\n"
		"  scripts/vm-run -- tests/fuzz/zchan_fuzz -n 1000000 -p 4 --json\n",
		prog, prog);
}

static void print_table(double elapsed)
{
	uint64_t total = 0;
	int i, e;

	for (i = 0; i < NR_OPS; i++)
		total += cnt->calls[i];
	printf("# %llu calls in %.1f s (seed %llu, %u procs), %llu forks, %llu CQEs\n",
	       (unsigned long long)total, elapsed, (unsigned long long)opt_seed,
	       opt_procs, (unsigned long long)cnt->forks, (unsigned long long)cnt->cqes);
	printf("# %llu protocol messages intact, %llu hostile ring states rejected, %llu faults caught\n",
	       (unsigned long long)cnt->messages, (unsigned long long)cnt->hostile,
	       (unsigned long long)cnt->faults);
	printf("# %llu ZCHAN_DESC_PAGES descriptors forged, %llu of them named a transfer\n",
	       (unsigned long long)cnt->forged, (unsigned long long)cnt->forged_mapped);
	printf("# %-16s %10s %10s %6s  errors\n", "call", "calls", "ok", "unexp");
	for (i = 0; i < NR_OPS; i++) {
		char errs[256] = "";
		size_t len = 0;

		for (e = 0; e < MAX_ERRNO; e++)
			if (cnt->errs[i][e] && len < sizeof(errs) - 32)
				len += snprintf(errs + len, sizeof(errs) - len, "%s%s:%llu",
						len ? " " : "", e ? strerrorname_np(e) ?: "?" : "other",
						(unsigned long long)cnt->errs[i][e]);
		printf("# %-16s %10llu %10llu %6llu  %s\n", op_names[i],
		       (unsigned long long)cnt->calls[i], (unsigned long long)cnt->ok[i],
		       (unsigned long long)cnt->unexpected[i], errs);
	}
}

static void print_json(double elapsed, const struct zc_stats *s, int failed)
{
	uint64_t total = 0;
	int i, e;

	for (i = 0; i < NR_OPS; i++)
		total += cnt->calls[i];
	printf("{\"seed\":%llu,\"procs\":%u,\"calls\":%llu,\"seconds\":%.1f,"
	       "\"forks\":%llu,\"cqes\":%llu,\"messages\":%llu,\"hostile\":%llu,"
	       "\"forged\":%llu,\"forged_mapped\":%llu,"
	       "\"faults\":%llu,\"sigbus\":%llu,\"bad_results\":%llu,"
	       "\"leaked\":{\"channels\":%lld,\"files\":%lld,\"pages\":%lld},"
	       "\"failed\":%d,\"ops\":{",
	       (unsigned long long)opt_seed, opt_procs, (unsigned long long)total, elapsed,
	       (unsigned long long)cnt->forks, (unsigned long long)cnt->cqes,
	       (unsigned long long)cnt->messages, (unsigned long long)cnt->hostile,
	       (unsigned long long)cnt->forged, (unsigned long long)cnt->forged_mapped,
	       (unsigned long long)cnt->faults, (unsigned long long)cnt->sigbus,
	       (unsigned long long)cnt->bad_results, s->channels, s->files, s->pages,
	       failed);
	for (i = 0; i < NR_OPS; i++) {
		int first = 1;

		printf("%s\"%s\":{\"calls\":%llu,\"ok\":%llu,\"unexpected\":%llu,\"errors\":{",
		       i ? "," : "", op_names[i], (unsigned long long)cnt->calls[i],
		       (unsigned long long)cnt->ok[i], (unsigned long long)cnt->unexpected[i]);
		for (e = 0; e < MAX_ERRNO; e++) {
			if (!cnt->errs[i][e])
				continue;
			printf("%s\"%s\":%llu", first ? "" : ",",
			       e ? strerrorname_np(e) ?: "?" : "other",
			       (unsigned long long)cnt->errs[i][e]);
			first = 0;
		}
		printf("}}");
	}
	printf("}}\n");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "seed", required_argument, NULL, 's' },
		{ "iterations", required_argument, NULL, 'n' },
		{ "procs", required_argument, NULL, 'p' },
		{ "time", required_argument, NULL, 't' },
		{ "json", no_argument, NULL, 'j' },
		{ "max-pool", required_argument, NULL, 'P' },
		{ "disable", required_argument, NULL, 'D' },
		{ "max-user-pool", required_argument, NULL, 'U' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct sigaction sa;
	struct zc_stats before, after;
	unsigned int i, exited = 0, hung = 0, crashed = 0;
	double start, deadline, elapsed;
	pid_t *pids;
	uint64_t unexpected = 0;
	int c, tn = 0, failed = 0, leak;

	prog = argv[0];
	while ((c = getopt_long(argc, argv, "s:n:p:t:vh", longopts, NULL)) != -1) {
		switch (c) {
		case 's': opt_seed = strtoull(optarg, NULL, 0); break;
		case 'n': opt_iterations = strtoull(optarg, NULL, 0); break;
		case 'p': opt_procs = (unsigned int)strtoul(optarg, NULL, 0); break;
		case 't': opt_time = strtod(optarg, NULL); break;
		case 'j': opt_json = true; break;
		case 'P': opt_limits[0] = optarg; break;
		case 'D':
			for (char *tok = strtok(optarg, ","); tok; tok = strtok(NULL, ",")) {
				for (i = 0; i < NR_OPS; i++)
					if (!strcmp(tok, op_names[i]))
						break;
				if (i == NR_OPS) {
					fprintf(stderr, "%s: no call kind %s\n", prog, tok);
					return 2;
				}
				op_weights[i] = 0;
			}
			break;
		case 'U': opt_limits[1] = optarg; break;
		case 'v': opt_verbose = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!opt_procs || opt_procs > 64 || opt_time <= 0) {
		usage(stderr);
		return 2;
	}
	page_size = sysconf(_SC_PAGESIZE);
	setvbuf(stdout, NULL, _IOLBF, 0);

	cnt = mmap(NULL, sizeof(*cnt), PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (cnt == MAP_FAILED) {
		perror("mmap");
		return 2;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = fault_handler;
	sa.sa_flags = SA_NODEFER;
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
	sa.sa_handler = alarm_handler;
	sa.sa_flags = 0;	/* no SA_RESTART: a blocking WAIT returns EINTR */
	sigaction(SIGALRM, &sa, NULL);

	if (!opt_json)
		printf("TAP version 13\n1..5\n");
	if (access(ZC_DEV, R_OK | W_OK) || zc_debugfs_ready() || zc_stats_read(&before)) {
		printf("not ok 1 %s and debugfs zchan/stats are usable (is zchan.ko loaded?)\n", ZC_DEV);
		printf("Bail out!\n");
		return 1;
	}
	if (opt_verbose)
		fprintf(stderr, "%s: before: channels %lld files %lld pages %lld\n",
			prog, before.channels, before.files, before.pages);

	/* keep the guest's memory safe from 1 GiB pools: small limits */
	for (i = 0; i < 2; i++)
		if (zc_param_get(limit_params[i], saved_limits[i], sizeof(saved_limits[i])) ||
		    zc_param_set(limit_params[i], opt_limits[i]))
			saved_limits[i][0] = 0;

	start = zc_now();
	deadline = start + opt_time;
	pids = calloc(opt_procs, sizeof(*pids));
	for (i = 0; i < opt_procs; i++) {
		uint64_t n = opt_iterations / opt_procs + (i < opt_iterations % opt_procs);

		pids[i] = fork();
		if (!pids[i])
			worker((int)i, n, deadline);
	}
	for (i = 0; i < opt_procs; i++) {
		double left;
		char why[96];
		int st;

		if (pids[i] < 0)
			continue;
		left = deadline + 60 - zc_now();
		st = zc_child_wait(pids[i], left > 0 ? left : 0);
		if (st == -ETIMEDOUT) {
			hung++;
			dump_task(pids[i]);
			zc_child_kill(pids[i]);
			continue;
		}
		if (!st) {
			exited++;
		} else {
			crashed++;
			bad(-1, "worker %u: %s", i, zc_child_str(st, why, sizeof(why)));
		}
	}
	elapsed = zc_now() - start;
	/* every worker's status: re-run waitpid on stragglers (none expected) */
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
	leak = zc_wait_no_leaks(&after, 30);
	for (i = 0; i < 2; i++)
		if (saved_limits[i][0])
			zc_param_set(limit_params[i], saved_limits[i]);

	for (i = 0; i < NR_OPS; i++)
		unexpected += cnt->unexpected[i];

	if (!opt_json) {
		printf("%sok %d every call returned 0 or an errno it may return (%llu unexpected)\n",
		       unexpected ? "not " : "", ++tn, (unsigned long long)unexpected);
		for (i = 0; i <= NR_OPS; i++)
			if (cnt->first_bad_set[i])
				printf("# first unexpected result: %s\n", cnt->first_bad[i]);
		printf("%sok %d no SIGBUS on a mapping (%llu)\n", cnt->sigbus ? "not " : "",
		       ++tn, (unsigned long long)cnt->sigbus);
		printf("%sok %d no impossible result (layout, role, revents, mremap) (%llu)\n",
		       cnt->bad_results ? "not " : "", ++tn, (unsigned long long)cnt->bad_results);
		printf("%sok %d all %u workers exited cleanly in time (%u hung, %u crashed)\n",
		       hung || exited != opt_procs ? "not " : "", ++tn, opt_procs, hung, crashed);
		printf("%sok %d no live channel, file or page afterwards (channels %lld files %lld pages %lld uring_waits %lld)\n",
		       leak ? "not " : "", ++tn, after.channels, after.files, after.pages, after.uring_waits);
		print_table(elapsed);
	}
	failed = unexpected || cnt->sigbus || cnt->bad_results || hung ||
		 exited != opt_procs || leak;
	if (opt_json)
		print_json(elapsed, &after, failed);
	return failed ? 1 : 0;
}
