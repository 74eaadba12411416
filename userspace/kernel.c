// SPDX-License-Identifier: MIT OR LGPL-2.1
/*
 * The kernel backend's setup: /dev/zchan creates (ZCHAN_IOC_CREATE) or
 * attaches (ZCHAN_IOC_ATTACH) and returns the layout; the consumer end
 * travels as the file from ZCHAN_IOC_PEER_FD.  The module owns the pages,
 * names, permissions, lifetime and wakeups.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "zchan_int.h"

#define ZCHAN_DEV_PATH		"/dev/" ZCHAN_DEVICE_NAME

static void kernel_init(struct zchan *z)
{
	z->kern.peer_fd = -1;
	z->kern.lane_fd = -1;
}

static void kernel_free(struct zchan *z)
{
	__zchan_close_fd(&z->kern.peer_fd);
	__zchan_close_fd(&z->kern.lane_fd);
	if (z->kern.lanes_map)
		__sys_munmap(z->kern.lanes_map, z->kern.lanes_map_size);
	z->kern.lanes_map = NULL;
}

/*
 * What the module says about a mapped channel: its features, and so how
 * this end sleeps.
 */
static int kernel_map(struct zchan *z, const struct zchan_layout *l)
{
	int ret = __zchan_map(z, z->fd, z->fd, z->fd, l);

	z->kern.features = l->features;
	/* a module without (this encoding of) uring_cmd WAIT: the ioctl */
	z->kern.use_ioctl_wait = !(l->features & ZCHAN_FEAT_URING_CMD);
	/* the module spins only while the peer's task is on a CPU */
	z->sleep_spins = l->features & ZCHAN_FEAT_WAIT_SPIN;
	return ret;
}

int __zchan_kernel_open_dev(void)
{
	return __sys_open(ZCHAN_DEV_PATH, O_RDWR | O_CLOEXEC);
}

/* The module's ZCHAN_FEAT_* word (INFO answers before CREATE too). */
static uint32_t module_features(int devfd)
{
	struct zchan_info info;

	memset(&info, 0, sizeof(info));
	return __sys_ioctl(devfd, ZCHAN_IOC_INFO, &info) ? 0 :
	       info.layout.features;
}

/* A producer of a channel that publishes on close keeps its alloc word. */
static void kernel_keep_alloc(struct zchan *z, const struct zchan_layout *l)
{
	z->alloc = (uint32_t *)((unsigned char *)z->prod_map + l->prod_alloc);
}

/*
 * With a module that can, the channel publishes on close: the producer
 * keeps the alloc word (ring.c) and the module, at the producer's release
 * (a close, an exit or a kill), publishes every slot up to it, so that no
 * committed message is lost behind a loan that will never be committed.
 * The module does it per lane, for every producer of a fan-in channel.
 */
static int kernel_create(struct zchan *z, const char *name,
			 const struct zchan_geom *g)
{
	uint32_t features = module_features(z->fd);
	struct zchan_create cr;
	int devfd = z->fd, ret;

	if (g->max_consumers > 1)
		return -EOPNOTSUPP;	/* broadcast: the module's, to come */
	memset(&cr, 0, sizeof(cr));
	if (features & ZCHAN_FEAT_PUBLISH_ON_CLOSE)
		cr.flags = ZCHAN_CREATE_PUBLISH_ON_CLOSE;
	/* an older module took the fields for reserved ones: -EINVAL */
	if (g->max_producers > 1 && !(features & ZCHAN_FEAT_FANIN))
		return -EOPNOTSUPP;
	cr.max_producers = g->max_producers;
	cr.max_consumers = g->max_consumers;
	cr.pool_size = g->pool_size;
	cr.ring_entries = g->entries;
	cr.max_msg = g->max_msg;
	cr.mode = g->mode;
	if (name)
		memcpy(cr.name, name, strlen(name));
	ret = __sys_ioctl(devfd, ZCHAN_IOC_CREATE, &cr);
	if (ret < 0)
		return ret;
	ret = kernel_map(z, &cr.layout);
	if (!ret && (cr.flags & ZCHAN_CREATE_PUBLISH_ON_CLOSE))
		kernel_keep_alloc(z, &cr.layout);
	return ret;
}

/*
 * What the module says of the end in fd @z->fd, now mapped or about to
 * be: the channel's maxima (trusted over what a handle message said), and
 * for a producer whether to keep its alloc word.  @info: INFO's answer.
 */
static void kernel_learn(struct zchan *z, const struct zchan_info *info)
{
	z->max_producers = info->max_producers ? info->max_producers : 1;
	z->max_consumers = info->max_consumers ? info->max_consumers : 1;
	if (z->role == ZCHAN_PRODUCER &&
	    (info->state & ZCHAN_STATE_PUBLISH_ON_CLOSE))
		kernel_keep_alloc(z, &info->layout);
}

/* INFO on @fd: 0 or -errno. */
static int kernel_info(int fd, struct zchan_info *info)
{
	memset(info, 0, sizeof(*info));
	return __sys_ioctl(fd, ZCHAN_IOC_INFO, info);
}

/*
 * A new end of z->role of the named channel: its consumer, or a new
 * producer with a lane of its own (a module with ZCHAN_FEAT_FANIN; to an
 * older one the role field was reserved).
 */
static int kernel_open(struct zchan *z, const char *name)
{
	struct zchan_attach at;
	struct zchan_info info;
	int devfd = z->fd, ret;

	memset(&at, 0, sizeof(at));
	if (z->role == ZCHAN_PRODUCER) {
		if (!(module_features(devfd) & ZCHAN_FEAT_FANIN))
			return -EOPNOTSUPP;
		at.role = ZCHAN_ROLE_PRODUCER;
	}
	memcpy(at.name, name, strlen(name));
	ret = __sys_ioctl(devfd, ZCHAN_IOC_ATTACH, &at);
	if (ret < 0)
		return ret;
	ret = kernel_map(z, &at.layout);
	if (ret || !(z->kern.features & ZCHAN_FEAT_FANIN))
		return ret;
	ret = kernel_info(devfd, &info);
	if (ret < 0)
		return ret;
	kernel_learn(z, &info);
	return 0;
}

/*
 * Is @fd a zchan file: one ZCHAN_IOC_PEER_FD made ("anon_inode:[zchan]"),
 * or /dev/zchan itself?  Asked before any ioctl: the command number could
 * mean something else to another driver.  Without /proc, INFO decides.
 */
static bool is_zchan_file(int fd)
{
	char path[64], link[64];
	struct stat st, dev;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = __sys_readlink(path, link, sizeof(link) - 1);
	if (n <= 0)
		return true;
	link[n] = 0;
	if (!strcmp(link, "anon_inode:[zchan]"))
		return true;
	return !__sys_fstat(fd, &st) && S_ISCHR(st.st_mode) &&
	       !__sys_stat(ZCHAN_DEV_PATH, &dev) && st.st_rdev == dev.st_rdev;
}

/*
 * An end from a handle message, one fd (z owns it from here): anything
 * but a zchan file of the role the message says is a bad handle, -EPROTO,
 * as on the memfd backend.  The module says the layout (a producer's: of
 * its own lane) and the channel's maxima.
 */
static int kernel_attach(struct zchan *z, const struct zchan_layout *l,
			 int *fds, unsigned int nfds)
{
	unsigned int role = z->role == ZCHAN_PRODUCER ? ZCHAN_ROLE_PRODUCER :
							ZCHAN_ROLE_CONSUMER;
	struct zchan_info info;
	int fd = fds[0], ret;

	if (nfds != 1 || (z->role != ZCHAN_CONSUMER &&
			  z->role != ZCHAN_PRODUCER))
		return -EPROTO;
	z->fd = fd;
	fds[0] = -1;
	if (!is_zchan_file(fd))
		return -EPROTO;
	ret = kernel_info(fd, &info);
	if (ret < 0)
		return ret == -ENOMEM ? -ENOMEM : -EPROTO;
	if (info.role != role)
		return -EPROTO;
	ret = kernel_map(z, &info.layout);
	if (ret)
		return ret;
	/* a module without it knows 1:1 channels only, and says 0 */
	if (z->kern.features & ZCHAN_FEAT_FANIN)
		kernel_learn(z, &info);
	else
		z->max_producers = z->max_consumers = 1;
	return 0;
}

/*
 * The consumer end as a new file, kept in prod->kern.peer_fd until it was
 * sent: closing it would end the consumer for good, so a failed send
 * (-EAGAIN on a full socket...) keeps it for the next try.
 */
static int kernel_peer_fds(struct zchan *prod, unsigned int role, int *fds,
			   struct zchan_layout *l)
{
	int *fd = role == ZCHAN_ROLE_PRODUCER ? &prod->kern.lane_fd :
						&prod->kern.peer_fd;
	struct zchan_peer_fd pf;
	int ret;

	if (role == ZCHAN_ROLE_PRODUCER) {
		/* a new lane, from any end; to an older module, reserved */
		if (!(prod->kern.features & ZCHAN_FEAT_FANIN))
			return -EOPNOTSUPP;
	} else if (prod->role != ZCHAN_PRODUCER) {
		return -EBUSY;		/* a consumer: the consumer is taken */
	}
	if (*fd < 0) {
		memset(&pf, 0, sizeof(pf));
		pf.flags = ZCHAN_PEER_FD_CLOEXEC;
		pf.role = role;
		ret = __sys_ioctl(prod->fd, ZCHAN_IOC_PEER_FD, &pf);
		if (ret < 0)
			return ret;
		*fd = (int)pf.fd;
	}
	fds[0] = *fd;
	return 1;
}

static void kernel_peer_sent(struct zchan *prod, unsigned int role)
{
	__zchan_close_fd(role == ZCHAN_ROLE_PRODUCER ? &prod->kern.lane_fd :
						       &prod->kern.peer_fd);
}

/*
 * The module counts the live ends of each role of a many-ended channel
 * (INFO; a producer end made and not yet handed over counts, it is
 * open).  A 1:1 channel's: this end, and the peer unless it is gone, as
 * zchan_ends() says of every 1:1 channel.
 */
static int kernel_ends(struct zchan *z, unsigned int role)
{
	struct zchan_info info;
	int ret;

	if (z->max_producers <= 1 && z->max_consumers <= 1) {
		if (role == (unsigned int)z->role)
			return 1;
		return __zchan_peer_gone(z, true) ? 0 : 1;
	}
	ret = kernel_info(z->fd, &info);
	if (ret < 0)
		return ret;
	return (int)(role == ZCHAN_ROLE_PRODUCER ? info.producers :
						    info.consumers);
}

/* ------------------------------------------------------------------ */
/* Holders: the module counts them (ZCHAN_FEAT_USE)                    */

/* ZCHAN_IOC_USE: this process starts (@start) or stops holding the end. */
static int kernel_use(struct zchan *z, bool start)
{
	struct zchan_use u;
	int ret;

	if (!(z->kern.features & ZCHAN_FEAT_USE))
		return 0;
	memset(&u, 0, sizeof(u));
	u.flags = start ? 0 : ZCHAN_USE_STOP;
	ret = __sys_ioctl(z->fd, ZCHAN_IOC_USE, &u);
	return ret < 0 ? ret : 0;
}

/* An older module holds an end while any descriptor of it is open. */
static int kernel_hold(struct zchan *z)
{
	if (load_acquire(z->own_closed))
		return -EPIPE;
	return kernel_use(z, true);
}

/*
 * The module knows whether this is the end's last holder; a channel that
 * publishes on close has it publish up to alloc then (committed messages,
 * queued ones, skipped loans), so the library publishes behind its loans
 * only without that.  Whoever is not the last holder must not: a process
 * it forked may have committed those loans since, and skipping them would
 * overwrite its messages (issue 23, item 3).
 */
static bool kernel_release(struct zchan *z)
{
	return !z->alloc;
}

/*
 * A lane of a fan-in consumer (kernel_adopt_lanes()) is the consumer end
 * seen through one lane: it holds nothing of its own.
 */
static bool kernel_is_lane(const struct zchan *z)
{
	return z->role == ZCHAN_CONSUMER && z->max_producers > 1;
}

/*
 * A lane that goes (drained, its producer gone) leaves the consumer end
 * to the others: only its descriptor, a copy of the group's, is closed.
 */
static void kernel_close(struct zchan *z, bool last)
{
	if (!kernel_is_lane(z))
		kernel_use(z, false);
}

/* ------------------------------------------------------------------ */
/* Notifications and waits: the module does the bookkeeping            */

static void kernel_kick(struct zchan *z)
{
	struct zchan_kick k = { 0 };

	/* a fan-in consumer's lane wakes its own producer only */
	if (kernel_is_lane(z)) {
		k.flags = ZCHAN_KICK_LANE;
		k.lane = z->kern.lane;
	}

	/* An error here (peer gone) shows up through 'closed'. */
	(void)__sys_ioctl(z->fd, ZCHAN_IOC_KICK, &k);
}

/* The module clears need_wakeup when it delivers a kick. */
static bool kernel_peer_asleep(struct zchan *z, uint32_t nw)
{
	return true;
}

static void kernel_arm(struct zchan *z)
{
	store_once(z->own_need_wakeup, 1);
	smp_mb();
}

/*
 * Before a sleep that spins in the module (ZCHAN_WAIT_SPIN), need_wakeup
 * stays clear: a peer that publishes while we spin needs no kick, and the
 * module arms it before it sleeps and checks the ring again.
 */
static bool kernel_arm_sleep(struct zchan *z, int64_t timeout_ns, bool again)
{
	if (!z->sleep_spin_ns)
		kernel_arm(z);
	return false;
}

static int kernel_ioctl_wait(struct zchan *z, int64_t timeout_ns,
			     uint32_t spin_ns)
{
	struct zchan_wait w;
	int ret;

	memset(&w, 0, sizeof(w));
	if (timeout_ns >= 0) {
		w.flags = ZCHAN_WAIT_TIMEOUT;
		w.timeout_ns = (uint64_t)timeout_ns;
	}
	if (spin_ns) {
		w.flags |= ZCHAN_WAIT_SPIN;
		w.spin_ns = spin_ns < ZCHAN_WAIT_SPIN_MAX_NS ? spin_ns :
							      ZCHAN_WAIT_SPIN_MAX_NS;
	}
	__zchan_count_syscalls(z, 1);
	ret = __sys_ioctl(z->fd, ZCHAN_IOC_WAIT, &w);
	if (ret == -ETIMEDOUT)
		return -ETIME;
	return ret < 0 ? ret : 0;
}

static void prep_uring_cmd(struct io_uring_sqe *sqe, int fd, uint32_t op)
{
	struct zchan_uring_cmd *cmd;

	memset(sqe, 0, sizeof(*sqe));
	sqe->opcode = IORING_OP_URING_CMD;
	sqe->fd = fd;
	sqe->cmd_op = op;
	cmd = (struct zchan_uring_cmd *)sqe->cmd;
	memset(cmd, 0, sizeof(*cmd));
}

/*
 * IORING_OP_URING_CMD ZCHAN_URING_CMD_WAIT in the handle's private
 * io_uring: the module arms need_wakeup and completes the command on a
 * kick or when the peer goes.  A uring_cmd can't be cancelled by a 6.1
 * kernel: never leave one in flight on a timeout, use ZCHAN_IOC_WAIT for
 * timed waits (and where io_uring is unavailable).  A sleep the waiter
 * left a spin to (ZCHAN_FEAT_WAIT_SPIN) is ZCHAN_IOC_WAIT with
 * ZCHAN_WAIT_SPIN: the module spins only while the peer's task is on a
 * CPU, then sleeps.
 */
static int kernel_sleep(struct zchan *z, int64_t timeout_ns)
{
	uint32_t spin_ns = z->sleep_spin_ns;
	struct io_uring_sqe *sqe;
	int ret;

	/* the spin the waiter left to the module (ZCHAN_FEAT_WAIT_SPIN) */
	z->sleep_spin_ns = 0;
	if (spin_ns || z->kern.use_ioctl_wait || timeout_ns >= 0 ||
	    !__zchan_uring_ready(z))
		return kernel_ioctl_wait(z, timeout_ns, spin_ns);
	if (!z->ring_pending) {
		sqe = __zchan_uring_sqe(z);
		if (!sqe)
			return -EBUSY;
		prep_uring_cmd(sqe, z->fd, ZCHAN_URING_CMD_WAIT);
		io_uring_sqe_set_data64(sqe, ZCHAN_UDATA_WAIT);
		ret = __zchan_uring_submit(z, RING_WAIT, -1);
		if (ret < 0)
			return ret;
	}
	return __zchan_uring_reap(z, -1);
}

/* The module sets the peer's closed word, whatever way it went. */
static bool kernel_peer_gone(struct zchan *z)
{
	return false;
}

/* ------------------------------------------------------------------ */
/* Fan-in: every lane through the consumer's one file                  */

/*
 * The group sleeps on a copy of the consumer's file, which the module
 * wakes for every lane (each lane's message, a producer's death, and the
 * end: EPOLLHUP once no producer is left; a lane just made needs no wake:
 * its first message is one).  It keeps lane 0's consumer ring mapped
 * read-only for the module's count of lanes (zchan_layout.cons_lanes),
 * which a lane handle going away does not take with it.
 */
static int kernel_group_init(struct zchan *g, struct zchan *first)
{
	const struct zchan_layout *l = &first->layout;
	void *map;
	int fd;

	if (!(first->kern.features & ZCHAN_FEAT_FANIN))
		return -EOPNOTSUPP;
	fd = __sys_fcntl(first->fd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0)
		return fd;
	g->fd = fd;
	g->kern.features = first->kern.features;
	map = __sys_mmap(NULL, l->cons_ring_size, PROT_READ, MAP_SHARED, fd,
			 (off_t)l->cons_ring_off);
	if (map == MAP_FAILED)
		return -ENOMEM;
	g->kern.lanes_map = map;
	g->kern.lanes_map_size = l->cons_ring_size;
	g->kern.lanes_word = (const uint32_t *)((const unsigned char *)map +
						l->cons_lanes);
	g->kern.lanes_seen = 1;		/* lane 0: @first */
	return 0;
}

/* The module wakes the consumer's file for every lane: nothing to add. */
static int kernel_lane_add(struct zchan *g, struct zchan *lane)
{
	return 0;
}

/*
 * The module counts the producers, and a drained lane whose producer is
 * gone makes the file ready no more.  A lane dropped for corrupting its
 * ring is the module's to drop (ZCHAN_LANE_DROP): its hostile producer
 * would keep the file ready, and its place in the count; it is released
 * and told so (-EPIPE).
 */
static void kernel_lane_del(struct zchan *g, struct zchan *lane,
			    bool dropped)
{
	struct zchan_lane_info li;

	if (!dropped)
		return;
	memset(&li, 0, sizeof(li));
	li.index = lane->kern.lane;
	li.flags = ZCHAN_LANE_DROP;
	(void)__sys_ioctl(g->fd, ZCHAN_IOC_LANE, &li);
}

/*
 * Lane @i as a consumer handle of its own: a copy of the group's file,
 * mapped at the lane's offsets (ZCHAN_IOC_LANE), given to the group.
 */
static int kernel_adopt_lane(struct zchan *g, uint32_t i)
{
	struct zchan_lane_info li;
	struct zchan *lane;
	int ret;

	memset(&li, 0, sizeof(li));
	li.index = i;
	__zchan_count_syscalls(g, 1);
	ret = __sys_ioctl(g->fd, ZCHAN_IOC_LANE, &li);
	if (ret < 0)
		return ret;
	lane = __zchan_alloc(ZCHAN_CONSUMER, &__zchan_kernel_ops);
	if (!lane)
		return -ENOMEM;
	lane->max_producers = g->max_producers;
	lane->max_consumers = g->max_consumers;
	lane->chan_flags = g->chan_flags;
	lane->kern.lane = i;
	lane->fd = __sys_fcntl(g->fd, F_DUPFD_CLOEXEC, 0);
	ret = lane->fd < 0 ? lane->fd : kernel_map(lane, &li.layout);
	if (ret) {
		__zchan_free(lane);
		return ret;
	}
	return __zchan_fanin_add(g, lane);	/* closes it if it fails */
}

/*
 * The lanes the module counted since the last call: the count is read
 * from lane 0's consumer ring, where the module stores it before a new
 * producer end exists, so one read finds every lane made before it -
 * slow or not, no system call when nothing is new.  The count is in the
 * consumer's own page, which only this process can scribble on: it is
 * bounded all the same, and ZCHAN_IOC_LANE says which lanes exist.
 */
static int kernel_adopt_lanes(struct zchan *g, bool slow)
{
	uint32_t made = load_acquire(g->kern.lanes_word);
	int ret;

	(void)slow;
	while (g->kern.lanes_seen < made &&
	       made - g->kern.lanes_seen <= 2 * ZCHAN_ENDS_MAX) {
		ret = kernel_adopt_lane(g, g->kern.lanes_seen);
		if (ret == -ENOENT)
			return -EPROTO;		/* the count was scribbled */
		if (ret && ret != -EUSERS)	/* -EUSERS: taken, and closed */
			return ret;		/* this lane again next time */
		g->kern.lanes_seen++;
	}
	return 0;
}

const struct zchan_ops __zchan_kernel_ops = {
	.backend	= ZCHAN_BACKEND_KERNEL,
	.init		= kernel_init,
	.free		= kernel_free,
	.create		= kernel_create,
	.open		= kernel_open,
	.peer_fds	= kernel_peer_fds,
	.peer_sent	= kernel_peer_sent,
	.attach		= kernel_attach,
	.ends		= kernel_ends,
	.group_init	= kernel_group_init,
	.lane_add	= kernel_lane_add,
	.lane_del	= kernel_lane_del,
	.adopt_lanes	= kernel_adopt_lanes,
	.hold		= kernel_hold,
	.release	= kernel_release,
	.close		= kernel_close,
	.kick		= kernel_kick,
	.peer_asleep	= kernel_peer_asleep,
	.arm		= kernel_arm,
	.arm_sleep	= kernel_arm_sleep,
	.sleep		= kernel_sleep,
	.peer_gone	= kernel_peer_gone,
};
