// SPDX-License-Identifier: GPL-2.0
/*
 * zchan reliability suite (guest, root, zchan.ko loaded): peer kills, leak
 * accounting, permissions and isolation, limits, hostile peers and exit
 * with io_uring waits in flight.  Streams go through libzchan's kernel
 * backend, the way applications use the module.
 *
 * Every test ends by checking debugfs zchan/stats: no live channel, file
 * or page once its processes are gone.
 *
 * Environment: ZCHAN_REL_KILLS (peer kills per direction, default 50),
 * ZCHAN_REL_EXITS (exit-with-waits rounds, default 20), ZCHAN_REL_SEED.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
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
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include <liburing.h>
#include <linux/zchan.h>
#include <zchan.h>

#include "kselftest_harness.h"
#include "../common/zchan_test_utils.h"

#define MSG_MIN		16
#define MSG_MAX		3000
#define NOBODY		65534

static long page_size;

static unsigned int env_uint(const char *name, unsigned int def)
{
	const char *v = getenv(name);

	return v && *v ? (unsigned int)strtoul(v, NULL, 0) : def;
}

static uint64_t seed_base(void)
{
	const char *v = getenv("ZCHAN_REL_SEED");

	return v && *v ? strtoull(v, NULL, 0) : 0x2e11ab1eULL;
}

static void __attribute__((constructor)) rel_init(void)
{
	page_size = sysconf(_SC_PAGESIZE);
	zc_debugfs_ready();
}

/* No channel, file or page left once the test's processes are gone. */
#define ASSERT_NO_LEAKS() do {						\
		struct zc_stats __s;					\
		int __r = zc_wait_no_leaks(&__s, 30);			\
		if (__r)						\
			TH_LOG("leak: channels %lld files %lld pages %lld (%d)", \
			       __s.channels, __s.files, __s.pages, __r); \
		ASSERT_EQ(0, __r);					\
	} while (0)

static struct zchan_attr kattr(size_t pool, unsigned int entries, unsigned int mode)
{
	struct zchan_attr a;

	zchan_attr_init(&a);
	a.backend = ZCHAN_BACKEND_KERNEL;
	a.pool_size = pool;
	a.max_msg = pool / 4;
	a.ring_entries = entries;
	a.mode = mode;
	return a;
}

static void unique_name(char *buf, size_t len, const char *tag)
{
	static unsigned int n;

	snprintf(buf, len, "rel-%s-%d-%u", tag, getpid(), n++);
}

/* ---------------------------------------------------------------------
 * Messages: message @seq of a stream seeded @seed is MSG_MIN to MSG_MAX - 1
 * bytes of payload (@seed, @seq), which names its sequence number.
 */
static size_t msg_len(uint32_t seq, uint64_t seed)
{
	return zc_payload_len(seed, seq, MSG_MIN, MSG_MAX - 1);
}

static size_t msg_fill(uint8_t *buf, uint32_t seq, uint64_t seed)
{
	size_t len = msg_len(seq, seed);

	zc_payload_fill(buf, len, seed, seq);
	return len;
}

/* 0 if @buf holds message @seq intact, else a description in @why. */
static int msg_check(const uint8_t *buf, size_t len, uint32_t seq, uint64_t seed,
		     char *why, size_t wlen)
{
	return zc_payload_check(buf, len, msg_len(seq, seed), seed, seq, why, wlen);
}

/* Shared between a streaming child and the test. */
struct stream_shared {
	uint32_t committed;	/* producer: messages zchan_send() returned for */
	uint32_t received;	/* consumer: messages verified */
	int ready;
	int error;		/* consumer child: a message was wrong */
	char why[128];
};

static struct stream_shared *shared_alloc(void)
{
	struct stream_shared *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
					MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	return sh == MAP_FAILED ? NULL : sh;
}

/* The child side of a kill round: stream until killed. */
static void produce_forever(int sock, struct stream_shared *sh, uint64_t seed)
{
	struct zchan_attr a = kattr(64 * 1024, 64, 0600);
	static uint8_t buf[MSG_MAX];
	struct zchan *p;
	uint32_t seq;

	if (zchan_create(NULL, &a, &p) || zchan_send_peer(p, sock))
		_exit(3);
	__atomic_store_n(&sh->ready, 1, __ATOMIC_RELEASE);
	for (seq = 0;; seq++) {
		size_t len = msg_fill(buf, seq, seed);
		ssize_t r = zchan_send(p, buf, len, 0);

		if (r != (ssize_t)len)
			_exit(4);
		__atomic_store_n(&sh->committed, seq + 1, __ATOMIC_RELEASE);
	}
}

static void consume_forever(int sock, struct stream_shared *sh, uint64_t seed)
{
	static uint8_t buf[MSG_MAX];
	struct zchan *c;
	uint32_t seq;

	if (zchan_recv_peer(sock, &c))
		_exit(3);
	__atomic_store_n(&sh->ready, 1, __ATOMIC_RELEASE);
	for (seq = 0;; seq++) {
		ssize_t r = zchan_recv(c, buf, sizeof(buf), 0);

		if (r < 0 || msg_check(buf, (size_t)r, seq, seed, sh->why, sizeof(sh->why))) {
			if (r < 0)
				snprintf(sh->why, sizeof(sh->why), "recv: %zd", r);
			__atomic_store_n(&sh->error, 1, __ATOMIC_RELEASE);
			_exit(5);
		}
		__atomic_store_n(&sh->received, seq + 1, __ATOMIC_RELEASE);
	}
}

struct streamer {
	struct stream_shared *sh;
	uint64_t seed;
	int sv[2];
};

static int producer_main(void *arg)
{
	struct streamer *st = arg;

	close(st->sv[0]);
	produce_forever(st->sv[1], st->sh, st->seed);
	return 0;
}

/* A producer child streaming until killed; the other end in *@sock. */
static pid_t spawn_streamer(struct stream_shared *sh, uint64_t seed, int *sock)
{
	struct streamer st = { .sh = sh, .seed = seed };
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, st.sv))
		return -1;
	memset(sh, 0, sizeof(*sh));
	pid = zc_spawn(producer_main, &st);
	close(st.sv[1]);
	*sock = st.sv[0];
	return pid;
}

/* Kill @pid after a random delay (a thread, so the test keeps streaming). */
struct killer {
	pthread_t thread;
	pid_t pid;
	useconds_t delay;
};

static void *killer_fn(void *arg)
{
	struct killer *k = arg;

	usleep(k->delay);
	kill(k->pid, SIGKILL);
	return NULL;
}

static void alarm_die(int sig)
{
	static const char msg[] = "# timed out: something hangs\n";

	(void)sig;
	if (write(2, msg, sizeof(msg) - 1) < 0)
		_exit(99);
	_exit(99);
}

FIXTURE(rel) {
	int unused;
};

FIXTURE_SETUP(rel)
{
	struct zc_stats s;

	signal(SIGALRM, alarm_die);
	ASSERT_EQ(0, access(ZC_DEV, R_OK | W_OK)) TH_LOG("no " ZC_DEV ": zchan.ko not loaded?");
	ASSERT_EQ(0, zc_stats_read(&s)) TH_LOG("debugfs zchan/stats unreadable");
}

FIXTURE_TEARDOWN(rel)
{
}

/*
 * A producer streaming through libzchan is SIGKILLed at a random moment:
 * the consumer gets every message committed before the kill, intact and
 * in order, then -EPIPE.
 */
TEST_F_TIMEOUT(rel, producer_killed_consumer_gets_everything, 600)
{
	unsigned int rounds = env_uint("ZCHAN_REL_KILLS", 50), i;
	struct stream_shared *sh = shared_alloc();
	uint64_t seed = seed_base(), rng = seed, total = 0, max_lag = 0;
	static uint8_t buf[MSG_MAX];

	ASSERT_NE(NULL, sh);
	for (i = 0; i < rounds; i++) {
		struct killer k;
		struct zchan *c;
		uint32_t seq = 0, committed;
		char why[128];
		int sock, status;
		ssize_t r;

		k.pid = spawn_streamer(sh, seed + i, &sock);
		ASSERT_LT(0, k.pid);
		ASSERT_EQ(0, zchan_recv_peer(sock, &c));
		close(sock);
		k.delay = (useconds_t)zc_below(&rng, 30000);
		ASSERT_EQ(0, pthread_create(&k.thread, NULL, killer_fn, &k));
		alarm(120);
		for (;;) {
			r = zchan_recv(c, buf, sizeof(buf), 0);
			if (r < 0)
				break;
			ASSERT_EQ(0, msg_check(buf, (size_t)r, seq, seed + i, why, sizeof(why)))
				TH_LOG("round %u: %s", i, why);
			seq++;
		}
		alarm(0);
		pthread_join(k.thread, NULL);
		status = zc_child_wait(k.pid, -1);
		ASSERT_EQ(ZC_SIGNALLED(SIGKILL), status)
			TH_LOG("round %u: producer %s", i, zc_child_str(status, why, sizeof(why)));
		EXPECT_EQ(-EPIPE, r) TH_LOG("round %u: recv ended with %zd", i, r);
		/* everything committed arrived; at most one more was published */
		committed = __atomic_load_n(&sh->committed, __ATOMIC_ACQUIRE);
		ASSERT_LE(committed, seq) TH_LOG("round %u: lost %u messages", i, committed - seq);
		ASSERT_LE(seq, committed + 1);
		/* the end stays at EPIPE */
		EXPECT_EQ(-EPIPE, zchan_recv(c, buf, sizeof(buf), ZCHAN_NONBLOCK));
		zchan_close(c);
		total += seq;
		if (seq - committed > max_lag)
			max_lag = seq - committed;
	}
	printf("# %u producer kills survived, %llu messages received intact, 0 lost\n",
	       rounds, (unsigned long long)total);
	fflush(stdout);	/* the harness child ends with _exit() */
	ASSERT_NO_LEAKS();
}

/*
 * A consumer is SIGKILLed while the producer streams: the producer gets
 * -EPIPE (blocked or not) and everything the consumer saw was intact.
 */
TEST_F_TIMEOUT(rel, consumer_killed_producer_gets_epipe, 600)
{
	unsigned int rounds = env_uint("ZCHAN_REL_KILLS", 50), i;
	struct stream_shared *sh = shared_alloc();
	uint64_t seed = seed_base() ^ 0xc0ffee, rng = seed, total = 0;
	static uint8_t buf[MSG_MAX];

	ASSERT_NE(NULL, sh);
	for (i = 0; i < rounds; i++) {
		struct zchan_attr a = kattr(64 * 1024, 64, 0600);
		struct killer k;
		struct zchan *p;
		uint32_t seq;
		char why[96];
		int sv[2], status;
		ssize_t r = 0;

		ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
		ASSERT_EQ(0, zchan_create(NULL, &a, &p));
		memset(sh, 0, sizeof(*sh));
		k.pid = fork();
		ASSERT_LE(0, k.pid);
		if (!k.pid) {
			close(sv[0]);
			consume_forever(sv[1], sh, seed + i);
		}
		close(sv[1]);
		ASSERT_EQ(0, zchan_send_peer(p, sv[0]));
		close(sv[0]);
		k.delay = (useconds_t)zc_below(&rng, 30000);
		ASSERT_EQ(0, pthread_create(&k.thread, NULL, killer_fn, &k));
		alarm(120);
		for (seq = 0;; seq++) {
			size_t len = msg_fill(buf, seq, seed + i);

			r = zchan_send(p, buf, len, 0);
			if (r < 0)
				break;
			ASSERT_EQ((ssize_t)len, r);
		}
		alarm(0);
		pthread_join(k.thread, NULL);
		status = zc_child_wait(k.pid, -1);
		EXPECT_EQ(-EPIPE, r) TH_LOG("round %u: send ended with %zd", i, r);
		ASSERT_EQ(0, sh->error) TH_LOG("round %u: consumer saw: %s", i, sh->why);
		ASSERT_EQ(ZC_SIGNALLED(SIGKILL), status)
			TH_LOG("round %u: consumer %s", i, zc_child_str(status, why, sizeof(why)));
		ASSERT_LE(sh->received, seq);
		EXPECT_EQ(-EPIPE, zchan_send(p, buf, 64, ZCHAN_NONBLOCK));
		zchan_close(p);
		total += sh->received;
	}
	printf("# %u consumer kills survived, %llu messages verified by the consumers\n",
	       rounds, (unsigned long long)total);
	fflush(stdout);	/* the harness child ends with _exit() */
	ASSERT_NO_LEAKS();
}

/* ---------------------------------------------------------------------
 * Permissions and isolation.
 */

struct nobody {
	int (*fn)(void *arg);
	void *arg;
};

/* zc_spawn() body: @arg's fn as uid/gid 65534 (100: could not become it). */
static int nobody_main(void *arg)
{
	const struct nobody *nb = arg;

	if (setgroups(0, NULL) || setresgid(NOBODY, NOBODY, NOBODY) ||
	    setresuid(NOBODY, NOBODY, NOBODY))
		return 100;
	return nb->fn(nb->arg);
}

/* Run @fn in a child as uid/gid 65534; zc_child_wait()'s answer. */
static int as_nobody(int (*fn)(void *), void *arg)
{
	struct nobody nb = { .fn = fn, .arg = arg };
	pid_t pid = zc_spawn(nobody_main, &nb);

	return pid < 0 ? -1 : zc_child_wait(pid, -1);
}

static int open_by_name(void *name)
{
	struct zchan *c;
	int ret = zchan_open(name, &c);

	if (!ret)
		zchan_close(c);
	return -ret;	/* errno as the exit status */
}

struct proc_target {
	pid_t pid;
	int fd;
	void *addr;
};

/* Another uid reaching into the owner's fd or memory through /proc. */
static int proc_reach(void *arg)
{
	struct proc_target *t = arg;
	char path[64];
	uint8_t b;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/fd/%d", t->pid, t->fd);
	fd = open(path, O_RDWR);
	if (fd >= 0)
		return 1;
	snprintf(path, sizeof(path), "/proc/%d/mem", t->pid);
	fd = open(path, O_RDONLY);
	if (fd >= 0 && pread(fd, &b, 1, (off_t)(uintptr_t)t->addr) == 1)
		return 2;
	return 0;
}

TEST_F(rel, other_uid_cannot_attach_or_reach)
{
	struct zchan_attr a = kattr(64 * 1024, 64, 0600);
	struct zchan *p, *c;
	struct proc_target t;
	char name[64];
	void *buf;

	unique_name(name, sizeof(name), "perm");
	ASSERT_EQ(0, zchan_create(name, &a, &p));
	EXPECT_EQ(EACCES, as_nobody(open_by_name, name));

	/* the pool is reachable neither through /proc/PID/fd nor /proc/PID/mem */
	ASSERT_EQ(0, zchan_loan(p, 64, &buf, 0));
	memset(buf, 0x5a, 64);
	t.pid = getpid();
	t.fd = zchan_fd(p);
	t.addr = buf;
	EXPECT_EQ(0, as_nobody(proc_reach, &t));
	ASSERT_EQ(0, zchan_abort(p, buf));

	/* still free for its owner: the refused attach took nothing */
	ASSERT_EQ(0, zchan_open(name, &c));
	zchan_close(c);
	zchan_close(p);

	/* 0606: others may attach */
	a.mode = 0606;
	ASSERT_EQ(0, zchan_create(name, &a, &p));
	EXPECT_EQ(0, as_nobody(open_by_name, name));
	zchan_close(p);
	ASSERT_NO_LEAKS();
}

static int attach_raw(const char *name)
{
	int fd = zc_open(), ret;

	if (fd < 0)
		return -errno;
	ret = _zc_attach(fd, name, NULL);
	close(fd);
	return ret;
}

TEST_F(rel, ipc_namespaces_isolate_names)
{
	struct zchan_attr a = kattr(64 * 1024, 64, 0666);
	int to_parent[2], to_child[2];
	struct zchan *p;
	char name[64], c;
	pid_t pid;

	unique_name(name, sizeof(name), "ns");
	ASSERT_EQ(0, pipe(to_parent));
	ASSERT_EQ(0, pipe(to_child));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		struct zchan *q;

		if (unshare(CLONE_NEWIPC))
			_exit(10);
		if (zchan_create(name, &a, &q))
			_exit(11);
		if (write(to_parent[1], "x", 1) != 1)
			_exit(12);
		/* wait for the parent's checks, keeping the channel alive */
		if (read(to_child[0], &c, 1) != 1)
			_exit(13);
		/* the parent created the same name: we still attach to ours */
		_exit(attach_raw(name) == 0 ? 0 : 14);
	}
	ASSERT_EQ(1, read(to_parent[0], &c, 1));
	/* the child's channel is invisible from the initial namespace ... */
	EXPECT_EQ(-ENOENT, attach_raw(name));
	/* ... and the name is free here */
	ASSERT_EQ(0, zchan_create(name, &a, &p));
	ASSERT_EQ(1, write(to_child[1], "y", 1));
	zc_child_exits(pid, 0);
	/* ours is still unattached: the child did not take it */
	EXPECT_EQ(0, attach_raw(name));
	zchan_close(p);
	close(to_parent[0]);
	close(to_parent[1]);
	close(to_child[0]);
	close(to_child[1]);
	ASSERT_NO_LEAKS();
}

/* Raw UAPI ends for the tests that need the mappings themselves. */
struct raw_chan {
	int pfd, cfd;
	struct zchan_layout l;
	void *prod;			/* producer's rw mapping */
	void *cons;			/* consumer's rw mapping */
	uint8_t *pool;			/* producer's rw mapping */
	uint8_t *cpool;			/* consumer's ro mapping */
};

/* Shared words of a raw channel, through the layout's offsets. */
#define RC_PROD(rc, word)	ZC_PROD_WORD((rc)->prod, &(rc)->l, word)

static int raw_create(struct raw_chan *rc, const char *name, uint64_t pool, unsigned int mode)
{
	int ret;

	memset(rc, 0, sizeof(*rc));
	rc->cfd = -1;
	rc->pfd = zc_open();
	if (rc->pfd < 0)
		return -errno;
	ret = _zc_create(rc->pfd, name, pool, 64, 0, mode, &rc->l);
	if (ret)
		return ret;
	rc->prod = mmap(NULL, rc->l.prod_ring_size, PROT_READ | PROT_WRITE, MAP_SHARED,
			rc->pfd, rc->l.prod_ring_off);
	rc->pool = mmap(NULL, rc->l.pool_size, PROT_READ | PROT_WRITE, MAP_SHARED,
			rc->pfd, rc->l.pool_off);
	if (rc->prod == MAP_FAILED || rc->pool == MAP_FAILED)
		return -errno;
	if (name)
		return 0;
	rc->cfd = _zc_peer_fd(rc->pfd, ZCHAN_PEER_FD_CLOEXEC);
	if (rc->cfd < 0)
		return rc->cfd;
	rc->cons = mmap(NULL, rc->l.cons_ring_size, PROT_READ | PROT_WRITE, MAP_SHARED,
			rc->cfd, rc->l.cons_ring_off);
	rc->cpool = mmap(NULL, rc->l.pool_size, PROT_READ, MAP_SHARED, rc->cfd,
			 rc->l.pool_off);
	if (rc->cons == MAP_FAILED || rc->cpool == MAP_FAILED)
		return -errno;
	return 0;
}

static void raw_close(struct raw_chan *rc)
{
	if (rc->prod && rc->prod != MAP_FAILED)
		munmap(rc->prod, rc->l.prod_ring_size);
	if (rc->pool && rc->pool != MAP_FAILED)
		munmap(rc->pool, rc->l.pool_size);
	if (rc->cons && rc->cons != MAP_FAILED)
		munmap(rc->cons, rc->l.cons_ring_size);
	if (rc->cpool && rc->cpool != MAP_FAILED)
		munmap(rc->cpool, rc->l.pool_size);
	if (rc->cfd >= 0)
		close(rc->cfd);
	if (rc->pfd >= 0)
		close(rc->pfd);
	memset(rc, 0, sizeof(*rc));
}

TEST_F(rel, consumer_cannot_write_producer_data)
{
	struct raw_chan rc;
	struct iovec local, remote;
	uint8_t b = 0xee, *ro;
	int memfd, fd;

	ASSERT_EQ(0, raw_create(&rc, NULL, 64 * 1024, 0600));
	memset(rc.pool, 0x11, page_size);
	RC_PROD(&rc, tail) = 7;

	/* no writable mapping of the pool or producer ring from the consumer */
	EXPECT_EQ(MAP_FAILED, mmap(NULL, rc.l.pool_size, PROT_READ | PROT_WRITE,
				   MAP_SHARED, rc.cfd, rc.l.pool_off));
	EXPECT_EQ(EACCES, errno);
	EXPECT_EQ(MAP_FAILED, mmap(NULL, rc.l.prod_ring_size, PROT_WRITE, MAP_SHARED,
				   rc.cfd, rc.l.prod_ring_off));
	/* nor a private copy-on-write one */
	EXPECT_EQ(MAP_FAILED, mmap(NULL, rc.l.pool_size, PROT_READ | PROT_WRITE,
				   MAP_PRIVATE, rc.cfd, rc.l.pool_off));
	/* the read-only mapping cannot be upgraded */
	EXPECT_EQ(-1, mprotect(rc.cpool, rc.l.pool_size, PROT_READ | PROT_WRITE));
	EXPECT_EQ(EACCES, errno);
	/* the producer cannot write the consumer's ring either */
	EXPECT_EQ(MAP_FAILED, mmap(NULL, rc.l.cons_ring_size, PROT_READ | PROT_WRITE,
				   MAP_SHARED, rc.pfd, rc.l.cons_ring_off));

	/* /proc/self/mem (FOLL_FORCE) and process_vm_writev refuse too */
	memfd = open("/proc/self/mem", O_RDWR);
	ASSERT_LE(0, memfd);
	EXPECT_GT(0, pwrite(memfd, &b, 1, (off_t)(uintptr_t)rc.cpool));
	close(memfd);
	local.iov_base = &b;
	local.iov_len = 1;
	remote.iov_base = rc.cpool;
	remote.iov_len = 1;
	EXPECT_GT(0, process_vm_writev(getpid(), &local, 1, &remote, 1, 0));
	/* a fork's copy of the read-only mapping is read-only as well */
	ro = rc.cpool;
	{
		pid_t pid = fork();

		if (!pid)
			_exit(mprotect(ro, page_size, PROT_READ | PROT_WRITE) == 0);
		zc_child_exits(pid, 0);
	}
	EXPECT_EQ(0x11, rc.cpool[0]);
	EXPECT_EQ(0x11, rc.pool[0]);
	EXPECT_EQ(7, RC_PROD(&rc, tail));

	/* a file with no channel maps nothing */
	fd = open(ZC_DEV, O_RDWR);
	ASSERT_LE(0, fd);
	EXPECT_EQ(MAP_FAILED, mmap(NULL, page_size, PROT_READ, MAP_SHARED, fd, 0));
	close(fd);
	raw_close(&rc);
	ASSERT_NO_LEAKS();
}

static bool all_zero(const uint8_t *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

/* Pages freed by one channel come back zeroed in the next. */
TEST_F(rel, fresh_pools_read_as_zero)
{
	unsigned int i;

	for (i = 0; i < 8; i++) {
		struct raw_chan rc;

		ASSERT_EQ(0, raw_create(&rc, NULL, 256 * 1024, 0600));
		ASSERT_TRUE(all_zero(rc.cpool, rc.l.pool_size)) TH_LOG("round %u: pool", i);
		ASSERT_TRUE(all_zero((uint8_t *)rc.cons, rc.l.cons_ring_size));
		ASSERT_TRUE(all_zero((uint8_t *)zc_desc(rc.prod, &rc.l, 0),
				     rc.l.prod_ring_size - rc.l.prod_descs));
		ASSERT_EQ(0, RC_PROD(&rc, tail));
		ASSERT_EQ(0, RC_PROD(&rc, head_seen));
		memset(rc.pool, 0xa5 ^ i, rc.l.pool_size);
		memset(zc_desc(rc.prod, &rc.l, 0), 0x5a, rc.l.prod_ring_size - rc.l.prod_descs);
		memset((uint8_t *)rc.cons, 0x3c, rc.l.cons_ring_size);
		raw_close(&rc);
	}
	ASSERT_NO_LEAKS();
}

/* ---------------------------------------------------------------------
 * Limits.
 */
struct saved_param {
	const char *name;
	char val[64];
};

static void params_save(struct saved_param *p, unsigned int n)
{
	while (n--)
		if (zc_param_get(p[n].name, p[n].val, sizeof(p[n].val)))
			p[n].val[0] = 0;
}

static void params_restore(struct saved_param *p, unsigned int n)
{
	while (n--)
		if (p[n].val[0])
			zc_param_set(p[n].name, p[n].val);
}

/*
 * As nobody, in @procs processes at once, create channels until refused,
 * give one back and race for it again; then hold everything until the
 * test has counted.  The shared count is raised after a create and
 * lowered before a close, so it never exceeds what the kernel holds.
 */
struct limit_shared {
	uint32_t held;
	uint32_t max_held;
	uint32_t done;
	uint32_t release;
	int errs[8];
};

struct limit_run {
	unsigned int procs;
	size_t pool;
	struct limit_shared *sh;
	unsigned int id;
};

static int hoard(void *arg)
{
	struct limit_run *lr = arg;
	struct limit_shared *sh = lr->sh;
	struct zchan *held[64];
	unsigned int n = 0, round;
	int ret = 0;

	for (round = 0; round < 3; round++) {
		while (n < 64) {
			struct zchan_attr a = kattr(lr->pool, 16, 0600);
			uint32_t now, max;

			ret = zchan_create(NULL, &a, &held[n]);
			if (ret)
				break;
			n++;
			now = __atomic_add_fetch(&sh->held, 1, __ATOMIC_SEQ_CST);
			max = __atomic_load_n(&sh->max_held, __ATOMIC_RELAXED);
			while (now > max &&
			       !__atomic_compare_exchange_n(&sh->max_held, &max, now, false,
							    __ATOMIC_RELAXED, __ATOMIC_RELAXED))
				;
		}
		if (round < 2 && n) {
			__atomic_sub_fetch(&sh->held, 1, __ATOMIC_SEQ_CST);
			zchan_close(held[--n]);
		}
	}
	sh->errs[lr->id] = ret;
	__atomic_add_fetch(&sh->done, 1, __ATOMIC_SEQ_CST);
	while (!__atomic_load_n(&sh->release, __ATOMIC_SEQ_CST))
		usleep(1000);
	while (n)
		zchan_close(held[--n]);
	return 0;
}

/* Run the hoarders; returns how many channels they held at the end. */
static uint32_t run_hoarders(struct limit_run *lr)
{
	pid_t pids[8];
	uint32_t held;
	unsigned int i;
	double end = zc_now() + 60;

	memset(lr->sh, 0, sizeof(*lr->sh));
	struct nobody nb = { .fn = hoard, .arg = lr };

	for (i = 0; i < lr->procs; i++) {
		lr->id = i;	/* the child's copy */
		pids[i] = zc_spawn(nobody_main, &nb);
	}
	while (__atomic_load_n(&lr->sh->done, __ATOMIC_SEQ_CST) < lr->procs && zc_now() < end)
		usleep(1000);
	held = __atomic_load_n(&lr->sh->held, __ATOMIC_SEQ_CST);
	__atomic_store_n(&lr->sh->release, 1, __ATOMIC_SEQ_CST);
	for (i = 0; i < lr->procs; i++)
		zc_child_wait(pids[i], -1);
	return held;
}

TEST_F_TIMEOUT(rel, per_user_limits_hold_under_pressure, 120)
{
	struct saved_param saved[] = {
		{ "max_channels_per_user", "" }, { "max_user_pool_bytes", "" },
		{ "max_pool_bytes", "" },
	};
	struct limit_shared *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
				       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	struct limit_run lr;
	struct zchan_attr a;
	struct zchan *p;
	unsigned int i;

	ASSERT_NE(MAP_FAILED, sh);
	params_save(saved, 3);
	ASSERT_NE(0, saved[0].val[0]) TH_LOG("no module parameters in " ZC_PARAMS);

	/* channel count: 6 for nobody, 4 processes racing for them */
	ASSERT_EQ(0, zc_param_set("max_channels_per_user", "6"));
	lr = (struct limit_run){ 4, 4096, sh, 0 };
	EXPECT_EQ(6, run_hoarders(&lr));
	EXPECT_EQ(6, sh->max_held);
	for (i = 0; i < 4; i++)
		EXPECT_EQ(-ENOSPC, sh->errs[i]) TH_LOG("process %u stopped with %d", i, sh->errs[i]);

	/* pool bytes: 1 MiB for nobody in 128 KiB pools = 8 channels */
	ASSERT_EQ(0, zc_param_set("max_channels_per_user", "1000"));
	ASSERT_EQ(0, zc_param_set("max_user_pool_bytes", "1048576"));
	lr = (struct limit_run){ 3, 128 * 1024, sh, 0 };
	EXPECT_EQ(8, run_hoarders(&lr));
	EXPECT_EQ(8, sh->max_held);
	for (i = 0; i < 3; i++)
		EXPECT_EQ(-ENOMEM, sh->errs[i]) TH_LOG("process %u stopped with %d", i, sh->errs[i]);

	/* one pool over max_pool_bytes is refused outright */
	ASSERT_EQ(0, zc_param_set("max_pool_bytes", "65536"));
	a = kattr(128 * 1024, 16, 0600);
	EXPECT_GT(0, zchan_create(NULL, &a, &p));
	params_restore(saved, 3);
	ASSERT_NO_LEAKS();
}

/* memory.current of a cgroup v2 the test creates shows the pool. */
static int cg_write(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY), ret = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, val, strlen(val)) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

static long long cg_read(const char *path)
{
	char buf[64] = "";
	int fd = open(path, O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	return n > 0 ? strtoll(buf, NULL, 10) : -1;
}

#define CG_ROOT	"/sys/fs/cgroup"
#define CG_DIR	CG_ROOT "/zchan-rel"

TEST_F(rel, memcg_accounts_the_pool)
{
	const size_t pool = 8 << 20;
	long long before, during, after;
	int pfd[2], qfd[2];
	char c;
	pid_t pid;

	if (access(CG_ROOT "/cgroup.controllers", R_OK))
		mount("cgroup2", CG_ROOT, "cgroup2", 0, NULL);
	ASSERT_EQ(0, access(CG_ROOT "/cgroup.controllers", R_OK))
		TH_LOG("no cgroup v2 at " CG_ROOT);
	cg_write(CG_ROOT "/cgroup.subtree_control", "+memory");
	rmdir(CG_DIR);
	ASSERT_EQ(0, mkdir(CG_DIR, 0755));
	ASSERT_LE(0, cg_read(CG_DIR "/memory.current")) TH_LOG("memory controller not enabled");

	ASSERT_EQ(0, pipe(pfd));
	ASSERT_EQ(0, pipe(qfd));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		struct zchan_attr a = kattr(pool, 64, 0600);
		struct zchan *p;

		if (read(qfd[0], &c, 1) != 1)	/* moved into the cgroup */
			_exit(1);
		if (zchan_create(NULL, &a, &p))
			_exit(2);
		if (write(pfd[1], "c", 1) != 1 || read(qfd[0], &c, 1) != 1)
			_exit(3);
		zchan_close(p);
		if (write(pfd[1], "d", 1) != 1 || read(qfd[0], &c, 1) != 1)
			_exit(4);
		_exit(0);
	}
	{
		char pidbuf[32];

		snprintf(pidbuf, sizeof(pidbuf), "%d", pid);
		ASSERT_EQ(0, cg_write(CG_DIR "/cgroup.procs", pidbuf));
	}
	before = cg_read(CG_DIR "/memory.current");
	ASSERT_EQ(1, write(qfd[1], "go", 1));
	ASSERT_EQ(1, read(pfd[0], &c, 1));
	during = cg_read(CG_DIR "/memory.current");
	ASSERT_EQ(1, write(qfd[1], "x", 1));
	ASSERT_EQ(1, read(pfd[0], &c, 1));
	after = cg_read(CG_DIR "/memory.current");
	ASSERT_EQ(1, write(qfd[1], "y", 1));
	zc_child_exits(pid, 0);
	printf("# memory.current: %lld before, %lld with an %zu-byte pool, %lld after close\n",
	       before, during, pool, after);
	fflush(stdout);	/* the harness child ends with _exit() */
	EXPECT_GE(during - before, (long long)pool);
	EXPECT_GE(during - after, (long long)pool - (long long)pool / 8);
	rmdir(CG_DIR);
	ASSERT_NO_LEAKS();
}

/* ---------------------------------------------------------------------
 * Hostile peers.
 */

/*
 * A libzchan consumer (in a child, so a crash is seen) against a producer
 * that writes random values over its ring while the consumer runs.  The
 * consumer may only see intact messages, -EPROTO, -EIO, -EPIPE or -EAGAIN.
 */
static int hostile_consumer(const char *name, int rounds, int ready)
{
	static uint8_t buf[1 << 16];
	struct zchan *c;
	struct zchan_msg msgs[8];
	const void *zc;
	int i, ret, seen_proto = 0;

	ret = zchan_open(name, &c);
	if (ret) {
		fprintf(stderr, "# hostile consumer: zchan_open: %s\n", strerror(-ret));
		return 10;
	}
	zc_signal(ready);
	for (i = 0; i < rounds; i++) {
		ssize_t r;

		switch (i % 5) {
		case 0:
			r = zchan_recv(c, buf, sizeof(buf), ZCHAN_NONBLOCK);
			break;
		case 1:
			r = zchan_recv_zc(c, &zc, ZCHAN_NONBLOCK);
			if (r >= 0) {
				/* the borrowed bytes are inside our pool mapping: read them */
				volatile const uint8_t *p = zc;
				ssize_t k;

				for (k = 0; k < r; k += 512)
					(void)p[k];
				zchan_release(c, zc);
			}
			break;
		case 2:
			r = zchan_recv_batch(c, msgs, 8, ZCHAN_NONBLOCK);
			if (r > 0)
				for (ret = 0; ret < r; ret++)
					zchan_release(c, msgs[ret].buf);
			break;
		case 3:
			r = zchan_wait(c, 1000000);
			if (r == -ETIME || r == -ETIMEDOUT)
				r = -EAGAIN;
			break;
		default:
			r = zchan_poll(c);
			break;
		}
		if (r >= 0 || r == -EAGAIN)
			continue;
		if (r == -EPROTO || r == -EIO) {
			seen_proto = 1;
			continue;	/* sticky: every later call says so too */
		}
		if (r == -EPIPE)
			break;
		fprintf(stderr, "# hostile consumer: call %d returned %zd\n", i % 5, r);
		return 20;
	}
	zchan_close(c);
	return seen_proto ? 0 : 1;
}

TEST_F_TIMEOUT(rel, hostile_producer_cannot_crash_consumer, 120)
{
	uint64_t rng = seed_base() ^ 0xbad;
	unsigned int round, proto_rounds = 0;

	for (round = 0; round < 10; round++) {
		struct raw_chan rc;
		char name[64];
		char why[96];
		int status, i, ready[2];
		pid_t pid;

		unique_name(name, sizeof(name), "hostile");
		ASSERT_EQ(0, raw_create(&rc, name, 64 * 1024, 0600));
		ASSERT_EQ(0, pipe(ready));
		pid = fork();
		ASSERT_LE(0, pid);
		if (!pid)
			_exit(hostile_consumer(name, 4000, ready[1]));
		/*
		 * The child's inherited copy of the producer does not hold the
		 * channel: let it attach before the producer may finish.
		 */
		close(ready[1]);
		zc_await(ready[0]);
		close(ready[0]);
		/* scribble: plausible and absurd tails, descriptors, offsets */
		for (i = 0; i < 3000; i++) {
			uint32_t *w = (uint32_t *)rc.prod;
			size_t words = rc.l.prod_ring_size / 4;

			switch (zc_below(&rng, 4)) {
			case 0:
				__atomic_store_n(&RC_PROD(&rc, tail), (uint32_t)zc_rand(&rng), __ATOMIC_RELEASE);
				break;
			case 1:
				__atomic_store_n(&RC_PROD(&rc, tail), RC_PROD(&rc, tail) + 1, __ATOMIC_RELEASE);
				break;
			case 2: {
				struct zchan_desc *d = zc_desc(rc.prod, &rc.l, zc_below(&rng, rc.l.ring_entries));

				d->off = zc_rand(&rng) >> zc_below(&rng, 64);
				d->len = (uint32_t)(zc_rand(&rng) >> zc_below(&rng, 32));
				d->flags = (uint32_t)zc_below(&rng, 4);
				break;
			}
			default:
				w[zc_below(&rng, words)] = (uint32_t)zc_rand(&rng);
				break;
			}
			if (!(i % 64))
				_zc_kick(rc.pfd);
		}
		/* the consumer must also survive the producer's end going away */
		raw_close(&rc);
		status = zc_child_wait(pid, 60);
		if (status == -ETIMEDOUT)
			zc_child_kill(pid);
		ASSERT_TRUE(status == 0 || status == 1)
			TH_LOG("round %u: consumer %s", round, zc_child_str(status, why, sizeof(why)));
		proto_rounds += !status;
	}
	printf("# 10 hostile producers survived, %u of them detected (-EPROTO)\n", proto_rounds);
	fflush(stdout);	/* the harness child ends with _exit() */
	EXPECT_LT(0, proto_rounds);
	ASSERT_NO_LEAKS();
}

/* A libzchan producer against a consumer scribbling over its ring. */
TEST_F_TIMEOUT(rel, hostile_consumer_cannot_crash_producer, 120)
{
	uint64_t rng = seed_base() ^ 0xbadc0;
	unsigned int round, proto_rounds = 0;

	for (round = 0; round < 10; round++) {
		struct zchan_attr a = kattr(64 * 1024, 64, 0600);
		char name[64];
		char why[96];
		int status, pfd[2];
		pid_t pid;
		struct zchan_layout l;
		void *cr;
		int fd, i;
		char c;

		unique_name(name, sizeof(name), "hostc");
		ASSERT_EQ(0, pipe(pfd));
		pid = fork();
		ASSERT_LE(0, pid);
		if (!pid) {
			/* the producer, in a child so a crash is seen */
			static uint8_t buf[4096];
			struct zchan *p;
			int n, proto = 0;

			if (zchan_create(name, &a, &p))
				_exit(10);
			if (write(pfd[1], "r", 1) != 1)
				_exit(11);
			for (n = 0; n < 4000; n++) {
				ssize_t r;
				void *loan;

				switch (n % 4) {
				case 0:
					r = zchan_send(p, buf, 1 + n % 4000, ZCHAN_NONBLOCK);
					break;
				case 1:
					r = zchan_loan(p, 256, &loan, ZCHAN_NONBLOCK);
					if (!r)
						r = zchan_commit(p, loan, 128);
					break;
				case 2:
					r = zchan_wait(p, 1000000);
					if (r == -ETIME || r == -ETIMEDOUT)
						r = 0;
					break;
				default:
					r = zchan_poll(p);
					break;
				}
				if (r >= 0 || r == -EAGAIN || r == -ENOBUFS)
					continue;
				if (r == -EPROTO || r == -EIO) {
					proto = 1;
					continue;
				}
				if (r == -EPIPE)
					break;
				fprintf(stderr, "# hostile peer: producer call %d returned %zd\n",
					n % 4, r);
				_exit(20);
			}
			zchan_close(p);
			_exit(proto ? 0 : 1);
		}
		ASSERT_EQ(1, read(pfd[0], &c, 1));
		fd = zc_open();
		ASSERT_LE(0, fd);
		zc_cmd_attach(fd, name, &l);
		cr = mmap(NULL, l.cons_ring_size, PROT_READ | PROT_WRITE, MAP_SHARED,
			  fd, l.cons_ring_off);
		ASSERT_NE(MAP_FAILED, cr);
		/* scribble until the producer is done (or 3000 times at least) */
		for (i = 0; i < 3000 || waitpid(pid, &status, WNOHANG) == 0; i++) {
			uint32_t *w = (uint32_t *)cr;

			switch (zc_below(&rng, 3)) {
			case 0:
				__atomic_store_n(&ZC_CONS_WORD(cr, &l, head), (uint32_t)zc_rand(&rng),
						 __ATOMIC_RELEASE);
				break;
			case 1:
				__atomic_store_n(&ZC_CONS_WORD(cr, &l, head),
						 ZC_CONS_WORD(cr, &l, head) + 1, __ATOMIC_RELEASE);
				break;
			default:
				w[zc_below(&rng, l.cons_ring_size / 4)] = (uint32_t)zc_rand(&rng);
				break;
			}
			if (!(i % 64))
				_zc_kick(fd);
		}
		munmap(cr, l.cons_ring_size);
		close(fd);
		/* the loop ended when waitpid() reaped the producer */
		close(pfd[0]);
		close(pfd[1]);
		status = zc_wait_status(status);
		ASSERT_TRUE(status == 0 || status == 1)
			TH_LOG("round %u: producer %s", round, zc_child_str(status, why, sizeof(why)));
		proto_rounds += !status;
	}
	printf("# 10 hostile consumers survived, %u of them detected (-EPROTO)\n", proto_rounds);
	fflush(stdout);	/* the harness child ends with _exit() */
	ASSERT_NO_LEAKS();
}

/* ---------------------------------------------------------------------
 * Exit with io_uring waits and kicks in flight.
 */
static void *blocking_wait(void *arg)
{
	_zc_wait(*(int *)arg, -1, NULL);	/* no timeout: until killed */
	return NULL;
}

/* Both ends in one process, everything in flight, then SIGKILL. */
static void waits_in_flight(uint64_t seed)
{
	struct io_uring ring;
	struct raw_chan rc;
	pthread_t t;
	uint64_t rng = seed;
	int i;

	if (raw_create(&rc, NULL, 16 * 1024, 0600) ||
	    io_uring_queue_init(64, &ring, 0))
		_exit(2);
	for (i = 0; i < 24; i++) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
		int fd = zc_below(&rng, 2) ? rc.pfd : rc.cfd;

		if (!sqe)
			break;
		switch (zc_below(&rng, 3)) {
		case 0:
			zc_prep_zcmd(sqe, fd, ZCHAN_URING_CMD_KICK, 0, 0, i);
			break;
		case 1:
			io_uring_prep_poll_add(sqe, rc.cfd, POLLIN);
			break;
		default:
			zc_prep_zcmd(sqe, rc.cfd, ZCHAN_URING_CMD_WAIT, 0, 0, i);
			break;
		}
	}
	io_uring_submit(&ring);
	pthread_create(&t, NULL, blocking_wait, &rc.cfd);
	/* sometimes a second ring, torn down with its waits pending */
	if (zc_below(&rng, 2)) {
		struct io_uring r2;

		if (!io_uring_queue_init(8, &r2, 0)) {
			zc_prep_zcmd(io_uring_get_sqe(&r2), rc.cfd, ZCHAN_URING_CMD_WAIT, 0, 0, 99);
			io_uring_submit(&r2);
			io_uring_queue_exit(&r2);
		}
	}
	for (;;)
		pause();
}

TEST_F_TIMEOUT(rel, exit_with_pending_waits_is_reaped, 300)
{
	unsigned int rounds = env_uint("ZCHAN_REL_EXITS", 20), i;
	uint64_t rng = seed_base() ^ 0xe817;

	for (i = 0; i < rounds; i++) {
		char why[96];
		int status;
		pid_t pid = fork();

		ASSERT_LE(0, pid);
		if (!pid)
			waits_in_flight(rng + i);
		usleep((useconds_t)(20000 + zc_below(&rng, 80000)));
		ASSERT_EQ(0, kill(pid, SIGKILL));
		status = zc_child_wait(pid, 30);	/* reaped within a bounded time */
		ASSERT_EQ(ZC_SIGNALLED(SIGKILL), status)
			TH_LOG("round %u: %s", i, zc_child_str(status, why, sizeof(why)));
	}
	printf("# %u processes killed with io_uring waits, kicks and a blocking WAIT in flight, all reaped\n",
	       rounds);
	fflush(stdout);	/* the harness child ends with _exit() */
	ASSERT_NO_LEAKS();
}

/*
 * A consumer that dies with a uring WAIT issued through a registered
 * (fixed) file: ->flush never runs for it, yet the producer must learn
 * that the consumer is gone and the channel must be freed.
 */
TEST_F_TIMEOUT(rel, exit_with_fixed_file_wait_releases_the_end, 120)
{
	struct raw_chan rc;
	char why[96];
	int status, pfd[2];
	char c;
	pid_t pid;
	struct pollfd p;

	ASSERT_EQ(0, raw_create(&rc, NULL, 16 * 1024, 0600));
	ASSERT_EQ(0, pipe(pfd));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		struct io_uring ring;
		struct io_uring_sqe *sqe;
		int fd = rc.cfd;

		if (io_uring_queue_init(8, &ring, 0) ||
		    io_uring_register_files(&ring, &fd, 1))
			_exit(2);
		munmap(rc.cons, rc.l.cons_ring_size);	/* the ring holds the end */
		munmap(rc.cpool, rc.l.pool_size);
		close(rc.cfd);
		close(rc.pfd);	/* the parent holds the producer end */
		sqe = io_uring_get_sqe(&ring);
		zc_prep_zcmd(sqe, 0, ZCHAN_URING_CMD_WAIT, 0, 0, 1);
		sqe->flags |= IOSQE_FIXED_FILE;
		if (io_uring_submit(&ring) != 1 || write(pfd[1], "w", 1) != 1)
			_exit(3);
		for (;;)
			pause();
	}
	ASSERT_EQ(1, read(pfd[0], &c, 1));
	/* our mappings of the consumer regions would hold its end open too */
	munmap(rc.cons, rc.l.cons_ring_size);
	munmap(rc.cpool, rc.l.pool_size);
	rc.cons = NULL;
	rc.cpool = NULL;
	close(rc.cfd);
	rc.cfd = -1;
	usleep(100000);
	ASSERT_EQ(0, kill(pid, SIGKILL));
	status = zc_child_wait(pid, 30);
	ASSERT_EQ(ZC_SIGNALLED(SIGKILL), status)
		TH_LOG("%s", zc_child_str(status, why, sizeof(why)));
	/* the producer sees the consumer go within a bounded time (events
	 * 0: only POLLHUP/POLLERR end the poll, an empty ring is POLLOUT) */
	p.fd = rc.pfd;
	p.events = 0;
	p.revents = 0;
	EXPECT_EQ(1, poll(&p, 1, 10000));
	if (!(p.revents & POLLHUP)) {
		struct zc_stats st;

		zc_stats_read(&st);
		TH_LOG("revents %#x: the consumer end is still open (channels %lld files %lld uring_waits %lld)",
		       p.revents, st.channels, st.files, st.uring_waits);
	}
	EXPECT_TRUE(p.revents & POLLHUP);
	raw_close(&rc);
	close(pfd[0]);
	close(pfd[1]);
	ASSERT_NO_LEAKS();
}

/*
 * execve() cancels the task's io_uring requests and waits for them
 * (io_uring_task_cancel()) before it closes anything: a uring WAIT that
 * cannot be cancelled holds up the exec until the peer kicks or goes.
 * The exec must go through while the producer lives and stays quiet.
 */
TEST_F_TIMEOUT(rel, exec_with_pending_uring_wait_proceeds, 120)
{
	struct raw_chan rc;
	char why[96];
	int status, pfd[2];
	struct pollfd p;
	char c;
	pid_t pid;

	ASSERT_EQ(0, raw_create(&rc, NULL, 16 * 1024, 0600));
	ASSERT_EQ(0, pipe2(pfd, O_CLOEXEC));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		struct io_uring ring;

		close(pfd[0]);
		/* only the parent holds the producer end (mappings hold it too) */
		munmap(rc.prod, rc.l.prod_ring_size);
		munmap(rc.pool, rc.l.pool_size);
		close(rc.pfd);
		if (io_uring_queue_init(8, &ring, 0))
			_exit(2);
		zc_prep_zcmd(io_uring_get_sqe(&ring), rc.cfd, ZCHAN_URING_CMD_WAIT, 0, 0, 1);
		if (io_uring_submit(&ring) != 1)
			_exit(3);
		/* the write end closes on a successful exec: EOF for the parent */
		execl("/bin/true", "true", (char *)NULL);
		_exit(4);
	}
	close(pfd[1]);
	p.fd = pfd[0];
	p.events = POLLIN;
	/* the exec completes (pipe EOF) within 10 s while the producer lives */
	EXPECT_EQ(1, poll(&p, 1, 10000)) TH_LOG("execve() is stuck behind the uring WAIT");
	if (!p.revents) {
		/* stuck: is it at least killable? */
		kill(pid, SIGKILL);
		status = zc_child_wait(pid, 5);
		EXPECT_NE(-ETIMEDOUT, status)
			TH_LOG("SIGKILL does not end the stuck execve() either");
		if (status != -ETIMEDOUT)
			pid = 0;
	}
	/* unblock it either way: the producer end goes */
	munmap(rc.prod, rc.l.prod_ring_size);
	munmap(rc.pool, rc.l.pool_size);
	close(rc.pfd);
	rc.prod = NULL;
	rc.pool = NULL;
	rc.pfd = -1;
	ASSERT_EQ(0, read(pfd[0], &c, 1));
	if (pid) {
		status = zc_child_wait(pid, 30);
		EXPECT_EQ(0, status) TH_LOG("%s", zc_child_str(status, why, sizeof(why)));
	}
	close(pfd[0]);
	raw_close(&rc);
	ASSERT_NO_LEAKS();
}

TEST_HARNESS_MAIN
