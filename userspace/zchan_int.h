/* SPDX-License-Identifier: MIT OR LGPL-2.1 */
/*
 * libzchan internals: the handle, the backends' table (struct zchan_ops)
 * and the helpers the library's files share.  Only include/zchan.h is
 * public; what is shared here and not static wears __zchan_.
 *
 * By name, calls go down this list, never up (Documentation/library.rst
 * has the map):
 *
 *   setup.c peer.c info.c   the public setup calls; setup.c picks a table
 *   ring.c fanin.c          the data path, readiness, zchan_poll/wait;
 *                           a fan-in consumer's calls turn from ring.c's
 *                           entry points to fanin.c, which takes each
 *                           lane's messages through ring.c's
 *   wait.c pages.c          kicks and waits; SEND_PAGES transfers
 *   kernel.c memfd.c        the backends: one struct zchan_ops each
 *   bcast.c                 memfd: broadcast, its producer's consumers
 *   holders.c               memfd: the end pages' tables of holders
 *   handle.c                a handle's memory and mappings
 *   hold.c                  which process holds a handle (forks)
 *   uring.c                 the private io_uring a handle sleeps in
 *
 * A backend is reached only through its table (z->ops), from the files
 * above it and from handle.c (init, free) and hold.c (hold).
 */
#ifndef ZCHAN_INT_H
#define ZCHAN_INT_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <unistd.h>
#include <liburing.h>
#include <linux/zchan.h>
#include <zchan.h>

#include "syscall.h"

#define ZCHAN_EXPORT	__attribute__((visibility("default")))

/*
 * Nothing in libzchan reports through errno, and no call changes it: the
 * system calls go through syscall.h, which returns their errors and keeps
 * errno; this keeps it around what else may set it (calloc(), liburing).
 * Never read errno after it: it is the caller's value again.
 */
#define __zchan_keep_errno(expr) ({	\
	int __saved_errno = errno;		\
	__typeof__(expr) __ret = (expr);	\
	errno = __saved_errno;			\
	__ret;					\
})

#define likely(x)	__builtin_expect(!!(x), 1)
#define unlikely(x)	__builtin_expect(!!(x), 0)

/* Shared words: each one is read once per use and never trusted. */
#define load_acquire(p)		__atomic_load_n((p), __ATOMIC_ACQUIRE)
#define load_once(p)		__atomic_load_n((p), __ATOMIC_RELAXED)
#define store_release(p, v)	__atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define store_once(p, v)	__atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define smp_mb()		__atomic_thread_fence(__ATOMIC_SEQ_CST)

/*
 * How long a blocking call spins before it sleeps (default; $ZCHAN_SPIN_NS
 * overrides): about what a sleep and a wakeup cost (two syscalls and a
 * context switch), so spinning never wastes much more than sleeping would
 * have.  No spinning on a single CPU: the peer could not run meanwhile.
 */
#define ZCHAN_SPIN_NS		20000
/* The longest a blocking call spins for a peer that keeps it busy. */
#define ZCHAN_SPIN_MAX_NS	2000000
/*
 * Where the sleep itself spins while the peer runs (kernel backend,
 * ZCHAN_FEAT_WAIT_SPIN), a blocking call spins here only this long (about
 * a system call), then hands what is left of its spin to the sleep.
 */
#define ZCHAN_SPIN_FIRST_NS	2000

/*
 * The memfd consumer end, in the order zchan_send_peer() sends it: the
 * producer's memfd (read-only), the consumer's memfd, the consumer's
 * eventfd, the producer's eventfd, the consumer's liveness socket.
 */
enum zchan_memfd_fd {
	ZCHAN_MEMFD_PROD,
	ZCHAN_MEMFD_CONS,
	ZCHAN_MEMFD_OWN_EFD,
	ZCHAN_MEMFD_PEER_EFD,
	ZCHAN_MEMFD_SOCK,
	ZCHAN_MEMFD_NFDS
};
/*
 * An end of a many-ended channel also gets the group page's memfd, after
 * the others.  A producer end is sent the same way, seen from the
 * producer: its memfd (writable), the consumer's (read-only), its own
 * eventfd, the consumer's, its half of the lane's socketpair.
 */
#define ZCHAN_MEMFD_GROUP	ZCHAN_MEMFD_NFDS
#define ZCHAN_MEMFD_NFDS_MANY	(ZCHAN_MEMFD_NFDS + 1)

/*
 * memfd backend: the group page of a many-ended channel, one memfd page
 * every end maps writable.  Only counts live there (zchan_ends(), the
 * maxima's -EUSERS): a hostile end can make them wrong, never touch a
 * message; each end keeps its own copy of the maxima.
 */
#define ZCHAN_MEMFD_GROUP_MAGIC		0x5a475250U	/* "ZGRP" */
#define ZCHAN_MEMFD_GROUP_VERSION	1U

/**
 * struct zchan_memfd_group - the group page
 * @magic: ZCHAN_MEMFD_GROUP_MAGIC
 * @version: ZCHAN_MEMFD_GROUP_VERSION
 * @max_producers: the channel's, as created
 * @max_consumers: the channel's, as created
 * @flags: ZCHAN_BROADCAST
 * @producers: producer ends live or on their way: the end that makes one
 *	counts it first (compare-and-swap below @max_producers), a producer
 *	end that closes takes itself off, and the consumer takes off one
 *	that died without closing as it drops its lane
 * @lanes: lanes announced so far: a hint that spares the consumer a
 *	look at the lanes' sockets while it is unchanged
 */
struct zchan_memfd_group {
	uint32_t magic;
	uint32_t version;
	uint32_t max_producers;
	uint32_t max_consumers;
	uint32_t flags;
	uint32_t producers;
	uint32_t lanes;
};

/*
 * memfd backend: each end's memfd ends with one page that says who holds
 * the end (memfd.c, holders.c).  The producer's also keeps the geometry the
 * channel was created with, which the consumer checks the handle against.
 */
#define ZCHAN_MEMFD_END_MAGIC	0x5a454e44U	/* "ZEND" */
#define ZCHAN_MEMFD_END_VERSION	1U
#define ZCHAN_MEMFD_HOLDERS	64
#define ZCHAN_HOLDERS_CLOSED	(1ULL << 63)	/* in zchan_memfd_end.state */

/**
 * struct zchan_memfd_end - the last page of an end's memfd
 * @magic: ZCHAN_MEMFD_END_MAGIC
 * @version: ZCHAN_MEMFD_END_VERSION
 * @pidns: inode of the pid namespace the holders' pids belong to
 * @state: how many processes hold the end, ZCHAN_HOLDERS_CLOSED once the
 *	last one closed it (then nobody can start holding it)
 * @layout: producer end only: the layout the channel was created with
 * @holders: one word per holder, (start time << 22) | pid, 0 if free
 * @run: ZCHAN_END_RUNNING, _ARMED or _ASLEEP: whether the end's holder
 *	runs, is about to sleep or sleeps in the library (memfd.c)
 * @cpu: the CPU it last ran on, plus one; 0 if unknown
 * @consumers: producer end of a broadcast channel: its live consumer ends
 *	as it last counted them (bcast.c), for the consumers' zchan_ends()
 */
struct zchan_memfd_end {
	uint32_t magic;
	uint32_t version;
	uint64_t pidns;
	uint64_t state;
	struct zchan_layout layout;
	uint64_t holders[ZCHAN_MEMFD_HOLDERS];
	/* a line of their own: the holders[] scan of a sleep stays clean */
	uint32_t run __attribute__((aligned(64)));
	uint32_t cpu;
	uint32_t consumers;
};

/* The end page is one page, whatever the page size. */
_Static_assert(sizeof(struct zchan_memfd_end) <= 4096, "end page");

/*
 * zchan_memfd_end.run.  RUNNING (0, what an end that never said is, as
 * an older library's) and ARMED (its re-check may still go on) let the
 * peer spin; ASLEEP, or any other value (a peer's garbage too), costs the
 * waiter a sleep and no more.
 */
#define ZCHAN_END_RUNNING	0U
#define ZCHAN_END_ARMED		1U
#define ZCHAN_END_ASLEEP	2U

/*
 * A peer's holder we watch (memfd): its holders[] word and pidfd; a
 * process found dead keeps its record (so the word is not watched again)
 * without a pidfd, which would wake every sleep.
 */
struct zchan_watch {
	uint64_t entry;
	int pidfd;		/* -1 once dead */
	bool seen;
};

/* Pool allocations are cache-line aligned (and never empty, see ring.c). */
#define ZCHAN_POOL_ALIGN	64U
/* The producer tries to go back to the front of the pool this often. */
#define ZCHAN_POOL_HOT		(64U << 10)
/*
 * ZCHAN_MORE publishes once this many payload bytes are queued, whatever
 * the pool: one tail store and one fence per 64 KiB cost nothing next to
 * writing them, while a consumer that is held back for a quarter of a
 * large pool waits idle and then sleeps (ring.c, prod_commit_slot()).
 */
#define ZCHAN_PUBLISH_BYTES	(64U << 10)

/* z->role: ZCHAN_ROLE_PRODUCER and _CONSUMER, and the fan-in group's */
enum zchan_role {
	ZCHAN_PRODUCER = ZCHAN_ROLE_PRODUCER,
	ZCHAN_CONSUMER = ZCHAN_ROLE_CONSUMER,
	/*
	 * The consumer end of a fan-in channel (fanin.c): its lanes' inner
	 * handles are ZCHAN_CONSUMER.  A role of its own, so that the 1:1
	 * data path's role check sends it to fanin.c at no cost.
	 */
	ZCHAN_FANIN = 3,
};

/* Most fds an end is sent with (peer.c, zchan_ops.peer_fds). */
#define ZCHAN_PEER_MAX_FDS	8
_Static_assert(ZCHAN_PEER_MAX_FDS <= __SYS_SEND_FDS_MAX, "peer fds");

enum zchan_slot_state {
	SLOT_FREE = 0,
	SLOT_LOANED,		/* producer: loaned, not committed */
	SLOT_READY,		/* producer: committed or dropped */
	SLOT_BORROWED,		/* consumer: taken, not released */
	SLOT_RELEASED,		/* consumer: released out of order */
	SLOT_RELEASING,		/* consumer: in a zchan_release_batch() */
};

/* Private per-slot record; the shared descriptors are never trusted. */
struct zchan_slot {
	uint64_t off;		/* payload offset in the pool */
	uint32_t len;		/* loaned capacity / committed length */
	uint32_t span;		/* producer: pool bytes incl. wrap padding */
	uint32_t state;
	uint32_t pages;		/* consumer: off is a SEND_PAGES mapping's (pages.c) */
};

/* The geometry of a new channel, from checked attributes (setup.c). */
struct zchan_geom {
	uint64_t pool_size;
	uint32_t entries;
	uint32_t max_msg;
	uint32_t mode;
	uint32_t max_producers;	/* 1 to ZCHAN_ENDS_MAX */
	uint32_t max_consumers;	/* 1, or up to ZCHAN_ENDS_MAX: broadcast */
	uint32_t flags;		/* ZCHAN_BROADCAST */
};

/* wait.c: the data path's readiness test (ring.c) */
typedef int __zchan_ready_fn(struct zchan *z, uint32_t need, bool slow);

/*
 * struct zchan_ops - what differs between the backends (kernel.c, memfd.c):
 * the handle's ops point at one of these, and nothing else in the library
 * asks which backend a handle has (setup.c picks the table).
 *
 * Setup (setup.c, peer.c, handle.c):
 * @init: a new handle's backend state, before anything can fail.
 * @free: let go of it (the handle goes).
 * @create: a new channel, @name (NULL: anonymous) of geometry @g; the
 *	kernel backend finds /dev/zchan open in z->fd.
 *	It records g->max_producers, g->max_consumers and g->flags
 *	(ZCHAN_BROADCAST) with the channel (the caller set z's copies).
 * @open: attach to the named channel as a new end of role z->role
 *	(ZCHAN_CONSUMER, or ZCHAN_PRODUCER: a new lane) with z->fd as for
 *	@create; sets z->max_producers, z->max_consumers, z->chan_flags.
 *	-EUSERS: the role is full on a many-ended channel; -EBUSY: the
 *	consumer of a 1:1 channel is taken.  NULL where channels have no
 *	names.
 * @peer_fds: a new end of @role (ZCHAN_CONSUMER or ZCHAN_PRODUCER) of
 *	@z's channel, made by any end @z, as fds to send (@fds, at most
 *	ZCHAN_PEER_MAX_FDS) and the layout the receiver needs (@l, left
 *	zeroed if none): how many fds, or -errno: -EBUSY the consumer end
 *	of a 1:1 channel was sent already, -EUSERS @role is full,
 *	-EOPNOTSUPP not on this backend.  A producer end is a new lane, and
 *	the consumer must know the lane before the end exists anywhere else
 *	(Documentation/many.rst): the backend links it (kernel) or announces
 *	it over the calling end's lane (memfd) here, or if @z is the fan-in
 *	consumer itself, adds it with __zchan_fanin_add().  Called again
 *	after a failed send, it may give the same end again.
 * @peer_sent: the fds of @role were sent: let go of what only the
 *	receiver needs.
 * @attach: an end of role z->role from @peer_fds's @nfds fds and layout,
 *	as received: trusts none of it, -EPROTO for anything but what
 *	@peer_fds sends; takes the fds it keeps (sets them to -1).  The
 *	caller set z->max_producers, z->max_consumers and z->chan_flags from
 *	the message, bounded: the backend may correct them from what it
 *	trusts more (the module).
 *
 * Fan-in (fanin.c; NULL where the backend has none: -EOPNOTSUPP).  A
 * consumer end of a channel whose max_producers is above one is a group
 * handle (role ZCHAN_FANIN, z->fanin) holding one inner consumer handle
 * per lane, each an ordinary 1:1 consumer of the backend (ring.c takes its
 * messages, its ops kick and arm it):
 * @ends: how many ends of @role (ZCHAN_ROLE_*) of @z's channel are live;
 *	@z is any end, a group handle too.  NULL: the 1:1 answer.
 * @group_init: set @g->fd (zchan_fd() of the fan-in consumer) to an fd
 *	that turns readable (POLLIN) whenever a lane added with @lane_add
 *	may have a message, its producer went, or a lane was made that
 *	@adopt_lanes would find, and keep in @g's backend state what
 *	@peer_fds needs to make lanes from @g; @first is the consumer end
 *	received or attached, the first lane (@lane_add comes next).
 *	@g->ops->lanes->free(@g) lets go of that state.
 * @lane_add: make @g->fd wake for @lane too (memfd: its epoll fd and its
 *	announcements); called by __zchan_fanin_add() for every lane.
 * @lane_del: @lane leaves the rotation (its producer is gone and it is
 *	drained, or it was dropped for corrupting its ring, @dropped): stop
 *	waking @g->fd for it and give back its producer's place in the
 *	channel's count if nobody else did.
 * @adopt_lanes: find every lane made since the last call (kernel: ask the
 *	module; memfd: read the announcements on each lane's liveness
 *	socket) and give each one, as a new consumer handle of this backend
 *	with z->role ZCHAN_CONSUMER, to __zchan_fanin_add().  The lanes are
 *	__zchan_fanin_lane()'s.  Without @slow (called once per round of
 *	turns, on the data path), it may skip the system calls where it
 *	knows cheaply that nothing is new (memfd: a counter in the group
 *	page), and must be cheap; @slow (waits, ends, before the group
 *	concludes the end of the stream) it must find every lane made
 *	before the call.  0 or -errno.  A lane whose
 *	announcements are garbage is corrupt: set its err (-EPROTO), and the
 *	group drops it.
 *
 * Holders (hold.c, setup.c):
 * @hold: a forked child's first call on an inherited end: it holds the
 *	end now.  -EPIPE if the end's last holder closed it meanwhile.
 * @release: this process stops holding the end: true if it was the last
 *	holder, then the producer publishes behind its loans before @close.
 * @close: tell the peer (and the module) that this process let go; @last
 *	as @release said.
 *
 * Notifications and waits (called by wait.c):
 * @kick: wake the peer (it sleeps, or may).
 * @peer_asleep: the peer's need_wakeup reads @nw (non-zero): does it still
 *	sleep, or was it kicked already?
 * @arm: drain the kicks this end got, then say it waits (need_wakeup),
 *	with a full fence after: the caller re-checks its condition next.
 * @arm_sleep: @arm before a sleep of @timeout_ns (-1: none); @again after
 *	a wake-up.  True if the coming sleep itself wakes when the peer goes
 *	(then the re-check need not ask the peer's processes).
 * @sleep: sleep in the kernel until a kick, the peer going, @timeout_ns
 *	(-1: none; -ETIME) or a signal.
 * @self_kick: make zchan_fd() readable now; NULL where the fd polls the
 *	ring itself (then zchan_prep_wait() needs no arming).
 * @peer_gone: the slow part of __zchan_peer_gone(): ask (system calls)
 *	whether the peer end's processes are all gone.
 * @running: this end runs (again): say so, and on which CPU, where the
 *	peer's @can_spin looks.  NULL where nothing is said.
 * @can_spin: could spinning succeed now: is the peer running, and not on
 *	the CPU this end last said it runs on?  NULL: no way to know, spin.
 *
 * Broadcast (bcast.c; NULL where the backend has none).  The producer of
 * a broadcast channel (z->bcast set) has a peer per consumer: ring.c asks
 * these instead of the peer's words, each behind one unlikely branch.
 * @bcast_head: the producer's head: the least of the consumers' heads,
 *	each bounded; a consumer that closed leaves it.
 * @bcast_all_read: has every consumer taken all that was published?
 * @bcast_notify: after a publish: kick every consumer that sleeps.
 * @bcast_ends: zchan_ends() of an end of a broadcast channel.
 */
struct zchan_ops {
	int backend;		/* ZCHAN_BACKEND_*, for zchan_backend() */

	void (*init)(struct zchan *z);
	void (*free)(struct zchan *z);
	int (*create)(struct zchan *z, const char *name,
		      const struct zchan_geom *g);
	int (*open)(struct zchan *z, const char *name);
	int (*peer_fds)(struct zchan *z, unsigned int role, int *fds,
			struct zchan_layout *l);
	void (*peer_sent)(struct zchan *z, unsigned int role);
	int (*attach)(struct zchan *z, const struct zchan_layout *l, int *fds,
		      unsigned int nfds);

	int (*ends)(struct zchan *z, unsigned int role);
	int (*group_init)(struct zchan *g, struct zchan *first);
	int (*lane_add)(struct zchan *g, struct zchan *lane);
	void (*lane_del)(struct zchan *g, struct zchan *lane, bool dropped);
	int (*adopt_lanes)(struct zchan *g, bool slow);
	/* a fan-in group's table (fanin.c) only: its lanes' backend's */
	const struct zchan_ops *lanes;

	int (*hold)(struct zchan *z);
	bool (*release)(struct zchan *z);
	void (*close)(struct zchan *z, bool last);

	void (*kick)(struct zchan *z);
	bool (*peer_asleep)(struct zchan *z, uint32_t nw);
	void (*arm)(struct zchan *z);
	bool (*arm_sleep)(struct zchan *z, int64_t timeout_ns, bool again);
	int (*sleep)(struct zchan *z, int64_t timeout_ns);
	void (*self_kick)(struct zchan *z);
	bool (*peer_gone)(struct zchan *z);
	void (*running)(struct zchan *z);
	bool (*can_spin)(struct zchan *z);

	/* a broadcast producer's, z->bcast set (NULL where none: memfd's) */
	uint32_t (*bcast_head)(struct zchan *z);
	bool (*bcast_all_read)(struct zchan *z);
	void (*bcast_notify)(struct zchan *z);
	int (*bcast_ends)(struct zchan *z, unsigned int role);
};

extern const struct zchan_ops __zchan_kernel_ops;
extern const struct zchan_ops __zchan_memfd_ops;

/* The kernel backend's state of a handle (kernel.c). */
struct zchan_kernel {
	uint32_t features;	/* ZCHAN_FEAT_* of the module */
	bool use_ioctl_wait;	/* no ZCHAN_FEAT_URING_CMD: sleep in the ioctl */
	int peer_fd;		/* producer: the consumer end until sent */
	int lane_fd;		/* a new producer end (a lane) until sent */
	uint32_t lane;		/* a fan-in consumer's lane: its index */
	/* a fan-in group: lane 0's consumer ring, for the count of lanes */
	void *lanes_map;
	size_t lanes_map_size;
	const uint32_t *lanes_word;
	uint32_t lanes_seen;	/* lanes [0, lanes_seen) adopted */
};

/* The memfd backend's state of a handle (memfd.c, holders.c). */
struct zchan_memfd {
	int own_efd;		/* the peer kicks us through it */
	int peer_efd;		/* we kick the peer through it */
	int sock;		/* our end of the liveness socketpair */
	/*
	 * producer: the consumer end until sent (ZCHAN_MEMFD_PROD, _CONS,
	 * _SOCK; its eventfds are own_efd and peer_efd)
	 */
	int peer_fds[ZCHAN_MEMFD_NFDS];
	struct zchan_memfd_end *own_end;	/* written by this end's holders */
	struct zchan_memfd_end *peer_end;	/* read-only */
	int holder_slot;	/* our word in own_end->holders, or -1 */
	uint64_t holder_entry;	/* its value */
	unsigned int nwatch;
	struct zchan_watch watch[ZCHAN_MEMFD_HOLDERS];
	uint32_t arm_gen;	/* our need_wakeup generation */
	bool kick_seen;		/* a peer kick was drained since arming */
	uint32_t self_kicks;	/* our own writes to own_efd, not drained */
	uint32_t kicked_gen;	/* peer generation we already kicked */
	uint32_t peer_gen;	/* peer generation __zchan_peer_sleeps() saw */
	uint32_t cpu;		/* own_end->cpu as we last wrote it */
	bool no_ring_drain;	/* the kernel can't read own_efd NOWAIT */
	uint64_t ring_drained;	/* own_efd's count, read in the ring */
	/* a consumer end of a broadcast channel (bcast.c), else NULL */
	struct zchan_bcast_cons *bcons;
	/* many-ended channels */
	int group_fd;		/* the group page's memfd, or -1 */
	struct zchan_memfd_group *group;	/* mapped, or NULL */
	int lane_fds[ZCHAN_MEMFD_NFDS_MANY];	/* a producer end, until sent */
	uint32_t lanes_seen;	/* group: the group page's lanes, last look */
};

struct zchan {
	const struct zchan_ops *ops;	/* the backend's */
	int role;
	unsigned int flags;	/* ZCHAN_BUSY_POLL */
	uint32_t spin_ns;	/* spin this long before sleeping */
	uint32_t spin_adapt_ns;	/* or this long, see spin_adapt() */
	bool sleep_spins;	/* the sleep spins too: ZCHAN_SPIN_FIRST_NS */
	uint32_t sleep_spin_ns;	/* for the next sleep to spin, then 0 */
	int err;		/* sticky: the peer corrupted the ring */
	unsigned int hold_gen;	/* __zchan_fork_gen when this process held it */

	int fd;			/* zchan_fd(): channel fd or memfd epoll fd */

	/* the channel's (zchan_get_attr()): 1, 1 and 0 for a 1:1 channel */
	uint32_t max_producers;
	uint32_t max_consumers;
	uint32_t chan_flags;	/* ZCHAN_BROADCAST */
	struct zchan_fanin *fanin;	/* role ZCHAN_FANIN: the lanes */
	/* a broadcast channel's producer end (memfd): its consumers */
	struct zchan_bcast *bcast;

	bool peer_dead;		/* latched by __zchan_peer_gone() */

	struct zchan_layout layout;
	void *prod_map;
	void *cons_map;
	unsigned char *pool;
	uint64_t pool_size;
	uint32_t entries;
	uint32_t mask;
	uint32_t max_msg;

	/* the ring words (pointers into prod_map / cons_map) */
	uint32_t *tail;
	uint32_t *head_seen;
	/*
	 * slots handed out: the producer's (memfd, kernel PUBLISH_ON_CLOSE);
	 * a consumer maps it where it publishes them itself (memfd)
	 */
	uint32_t *alloc;
	uint32_t *prod_need_wakeup;
	uint32_t *prod_closed;
	struct zchan_desc *descs;
	uint32_t *head;
	uint32_t *read;
	uint32_t *cons_need_wakeup;
	uint32_t *cons_closed;
	/* the same, seen from this end */
	uint32_t *own_need_wakeup;
	uint32_t *peer_need_wakeup;
	uint32_t *own_closed;
	uint32_t *peer_closed;

	/* producer private state */
	uint32_t p_tail;	/* published */
	uint32_t p_alloc;	/* next slot to loan */
	uint32_t p_alloc_pub;	/* the alloc word: placeholders up to here */
	uint32_t p_seen;	/* consumer head accounted for */
	uint64_t pool_next;	/* next allocation offset */
	uint64_t pool_used;	/* bytes in use incl. padding */
	uint64_t p_rewind_at;	/* pool_next at which to try prod_rewind() */
	uint32_t p_more;	/* committed with ZCHAN_MORE, not published */
	uint64_t p_more_bytes;	/* their payload bytes */

	/* consumer private state */
	uint32_t c_read;	/* taken */
	uint32_t c_head;	/* released (contiguous) */
	uint32_t c_ready;	/* published, not taken, at the last tail load */
	uint32_t c_freed;	/* slots released since the producer last slept */
	uint64_t c_freed_bytes;	/* their payload bytes */
	uint64_t c_next_off;	/* where the next payload likely starts */
	bool c_last;		/* memfd: the producer is gone, c_last_tail set */
	uint32_t c_last_tail;	/* memfd: what it left published (cons_last_tail()) */

	struct zchan_slot *slots;

	/* private io_uring for sleeping (uring.c) */
	struct io_uring ring;
	bool ring_wanted;	/* the first sleep makes it (__zchan_uring_ready) */
	bool have_ring;
	unsigned int ring_pending;	/* RING_WAIT, RING_DRAIN: sqes in flight */
	bool ring_drain_done;	/* a drain completed: ring_drain_res */
	int ring_drain_res;
	bool sleep_watches_peer;	/* see sleep_then_run() */

	struct zchan_stats st;

	/* the backend's own state (ops) */
	union {
		struct zchan_kernel kern;
		struct zchan_memfd memfd;
	};
};

/*
 * A borrowed message's address: @off is a pool offset, or for a SEND_PAGES
 * mapping its distance from the pool (modulo 2^64; see pages.c).
 */
static inline void *__zchan_payload(const struct zchan *z, uint64_t off)
{
	return (void *)((uintptr_t)z->pool + (uintptr_t)off);
}

/* pages.c: SEND_PAGES transfers (below ring.c: it never calls ring.c) */
int __zchan_pages_check(const struct zchan *p, const void *buf, size_t len);
int __zchan_pages_pin(struct zchan *p, const void *buf, size_t len,
		    uint64_t cookie, uint64_t *off);
bool __zchan_pages_desc_ok(const struct zchan *z, const struct zchan_desc *d);
int __zchan_pages_map(struct zchan *z, struct zchan_desc *d);
int __zchan_pages_copy(struct zchan *z, struct zchan_desc *d, void *buf);
void __zchan_pages_unmap_slot(struct zchan *z, struct zchan_slot *s);
void __zchan_pages_close(struct zchan *z);

/* ring.c: the data path and its readiness test */
int __zchan_ready_mask(struct zchan *z, uint32_t need, bool slow);
void __zchan_prod_end_loans(struct zchan *z);
int __zchan_release_mark(struct zchan *c, const void *buf, uint32_t *last);
void __zchan_release_settle(struct zchan *c, bool release);

/* wait.c: notifications and waits (below ring.c: it never calls ring.c) */
void __zchan_kick(struct zchan *z);
void __zchan_notify_peer(struct zchan *z);
bool __zchan_peer_sleeps(struct zchan *z);
void __zchan_wake_peer(struct zchan *z);
int __zchan_peer_gone(struct zchan *z, bool slow);
void __zchan_arm(struct zchan *z);
int __zchan_wait_until(struct zchan *z, __zchan_ready_fn *ready, uint32_t need,
		     int64_t timeout_ns);
void __zchan_kick_self_if_ready(struct zchan *z, __zchan_ready_fn *ready,
				uint32_t need, bool slow);
unsigned int __zchan_poll_events(struct zchan *z, __zchan_ready_fn *ready,
				 uint32_t need);

/* uring.c: the private io_uring a handle sleeps in */
#define ZCHAN_UDATA_WAIT	0x7a63686e01ULL
#define ZCHAN_UDATA_DRAIN	0x7a63686e02ULL
#define ZCHAN_UDATA_CANCEL	0x7a63686e03ULL
/* What is in flight in the private ring (z->ring_pending). */
#define RING_WAIT	1U
#define RING_DRAIN	2U
void __zchan_uring_init(struct zchan *z);
bool __zchan_uring_ready(struct zchan *z);
void __zchan_uring_reinit(struct zchan *z);
void __zchan_uring_exit(struct zchan *z, bool ours);
struct io_uring_sqe *__zchan_uring_sqe(struct zchan *z);
int __zchan_uring_submit(struct zchan *z, unsigned int pending,
			 int64_t timeout_ns);
int __zchan_uring_reap(struct zchan *z, int64_t timeout_ns);

static inline size_t __zchan_page_size(void)
{
	long ps = sysconf(_SC_PAGESIZE);

	return ps > 0 ? (size_t)ps : 4096;
}

static inline uint64_t __zchan_page_align(uint64_t v)
{
	uint64_t ps = __zchan_page_size();

	return (v + ps - 1) & ~(ps - 1);
}

static inline bool __zchan_is_pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

/* Count @n system calls the data path or its waits made (zchan_stats). */
static inline void __zchan_count_syscalls(struct zchan *z, unsigned int n)
{
	z->st.syscalls += n;
}

static inline void __zchan_close_fd(int *fd)
{
	if (*fd >= 0)
		__sys_close(*fd);
	*fd = -1;
}

/* Which processes hold an end (hold.c): one load on every call. */
extern unsigned int __zchan_fork_gen;

/* hold.c */
void __zchan_hold_init(struct zchan *z);
int __zchan_hold_inherited(struct zchan *z);

static inline bool __zchan_held_here(const struct zchan *z)
{
	return z->hold_gen == __atomic_load_n(&__zchan_fork_gen, __ATOMIC_RELAXED);
}

static inline int __zchan_hold(struct zchan *z)
{
	if (likely(__zchan_held_here(z)))
		return 0;
	return __zchan_hold_inherited(z);
}

/* holders.c: the memfd backend's table of holders */
int __zchan_holders_add(struct zchan *z);
bool __zchan_holders_remove(struct zchan *z);
bool __zchan_holders_gone(struct zchan *z, int sock);
unsigned int __zchan_holders_watch(struct zchan *z);
void __zchan_holders_unwatch(struct zchan *z);
uint64_t __zchan_holders_pidns(void);

/*
 * memfd broadcast (bcast.c): the last words of a consumer ring's page.
 * The start word (64 bits), which only the producer writes once the end
 * exists: 0 for an end the producer made (its head and read were set),
 * ZCHAN_BCAST_START_WAIT for one another consumer made (written by that
 * consumer, before the end left it), ZCHAN_BCAST_START_SET | index once
 * the producer adopted it.  Before it, the announce word (32 bits): how
 * many ends this consumer announced to the producer.
 */
#define ZCHAN_BCAST_START_WAIT		(1ULL << 63)
#define ZCHAN_BCAST_START_SET		(1ULL << 62)
#define ZCHAN_BCAST_START_FROM_END	8U
#define ZCHAN_BCAST_ANNOUNCE_FROM_END	16U

/* bcast.c: a broadcast producer's consumers (memfd) */
int __zchan_bcast_init(struct zchan *p, uint64_t end_off);
void __zchan_bcast_free(struct zchan *p);
uint32_t __zchan_bcast_head(struct zchan *p);
bool __zchan_bcast_all_read(struct zchan *p);
void __zchan_bcast_notify(struct zchan *p);
void __zchan_bcast_kick_all(struct zchan *p);
bool __zchan_bcast_gone(struct zchan *p);
int __zchan_bcast_ends(struct zchan *p, unsigned int role);
int __zchan_bcast_peer_fds(struct zchan *z, unsigned int role, int *fds,
			   struct zchan_layout *l);
void __zchan_bcast_sent(struct zchan *p);
int __zchan_bcast_attach(struct zchan *c, int *prod_fd);
void __zchan_bcast_try_start(struct zchan *c);

/* memfd.c: is @fd a consumer memfd of layout @l, @efd an eventfd, @sock a socket? */
int __zchan_memfd_check_cons(int fd, const struct zchan_layout *l, int efd,
			     int sock);

/* memfd.c: a new consumer ring's sealed memfd, and where its end page is */
int __zchan_memfd_cons_region(const struct zchan_layout *l,
			      uint64_t *end_off);

/* peer.c: an end to and from a unix socket */
int __zchan_send_end(struct zchan *end, unsigned int role, int sock);
int __zchan_send_fds(int sock, const struct zchan *end, unsigned int role,
		     const int *fds, unsigned int nfds,
		     const struct zchan_layout *l);
int __zchan_recv_end(int sock, int msg_flags, struct zchan **end);

/* fanin.c: the consumer end of a fan-in channel, a group of lanes */
int __zchan_fanin_new(struct zchan **end);
int __zchan_fanin_add(struct zchan *g, struct zchan *lane);
struct zchan *__zchan_fanin_lane(const struct zchan *g, unsigned int i,
				 bool *live);
ssize_t __zchan_fanin_recv(struct zchan *g, void *buf, size_t cap,
			   unsigned int flags);
ssize_t __zchan_fanin_recv_zc(struct zchan *g, const void **buf,
			      unsigned int flags);
int __zchan_fanin_recv_batch(struct zchan *g, struct zchan_msg *msgs,
			     unsigned int nr, unsigned int flags);
int __zchan_fanin_release(struct zchan *g, const void *buf);
int __zchan_fanin_release_batch(struct zchan *g, const struct zchan_msg *msgs,
				unsigned int nr);
int __zchan_fanin_poll(struct zchan *g);
int __zchan_fanin_wait(struct zchan *g, int64_t timeout_ns);
int __zchan_fanin_prep_wait(struct zchan *g, unsigned int *events);
void __zchan_fanin_stats(const struct zchan *g, struct zchan_stats *st);

/* setup.c: the one place that picks a backend's table */
const struct zchan_ops *__zchan_backend_ops(unsigned int backend);

/* handle.c */
struct zchan *__zchan_alloc(int role, const struct zchan_ops *ops);
void __zchan_free(struct zchan *z);
int __zchan_validate_layout(const struct zchan_layout *l);
int __zchan_map(struct zchan *z, int prod_fd, int cons_fd, int pool_fd,
	      const struct zchan_layout *l);

/* kernel.c */
int __zchan_kernel_open_dev(void);

#endif /* ZCHAN_INT_H */
