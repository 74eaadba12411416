/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * zchan: kernel-assisted zero-copy channels between processes.
 *
 * A channel carries messages one way, from one producer to one consumer,
 * through pages the kernel allocates and maps into both.  Three regions are
 * mapped with mmap() at the offsets returned in &struct zchan_layout:
 *
 *  - the producer ring (&struct zchan_prod_ring and the descriptor array):
 *    written by the producer, read-only for the consumer;
 *  - the consumer ring (&struct zchan_cons_ring): written by the consumer,
 *    read-only for the producer;
 *  - the data pool: written by the producer, read-only for the consumer.
 *
 * Indices are free-running __u32 counters; a ring slot is index & (entries-1).
 * Every shared word is found through its offset in &struct zchan_layout, as
 * io_uring's rings are found through io_sqring_offsets: the offsets are the
 * one description of the shared ring, and the kernel-doc of &struct
 * zchan_layout says what each word means and who writes it.  The module,
 * libzchan (both backends) and the tests all reach the words through them.
 * Offsets rather than fixed structs (virtio's vring) because the ring
 * grows: a word added later (behind a ZCHAN_FEAT_* bit) goes wherever
 * there is room, and a program built against an older header still finds
 * every word it knows, while the placement stays the kernel's to choose.
 *
 * &struct zchan_prod_ring and &struct zchan_cons_ring below are not a
 * second description: they are the module's placement, which
 * zchan_layout_set_words() computes, kept so that existing sources build.
 */
#ifndef _UAPI_LINUX_ZCHAN_H
#define _UAPI_LINUX_ZCHAN_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define ZCHAN_DEVICE_NAME	"zchan"

/*
 * Limits, the same for the module and libzchan.  A channel name: up to 63
 * bytes and a terminating NUL.  A ring of at most ZCHAN_RING_ENTRIES_MAX
 * descriptors.  A data pool of at most ZCHAN_POOL_SIZE_MAX bytes (the
 * module's max_pool_bytes parameter may set a lower limit; a pool above
 * either fails with -ENOMEM).  A message of at most ZCHAN_MSG_MAX bytes,
 * and at most half the pool.
 */
#define ZCHAN_NAME_MAX		64
#define ZCHAN_RING_ENTRIES_MAX	(1U << 16)
#define ZCHAN_POOL_SIZE_MAX	(1ULL << 40)
#define ZCHAN_MSG_MAX		(1U << 30)
/*
 * The most producer ends, and the most consumer ends, a channel may have
 * live at once (zchan_create.max_producers and .max_consumers).
 */
#define ZCHAN_ENDS_MAX		64U

/*
 * Defaults, the same for the module and libzchan: a zero field of
 * &struct zchan_create (or of libzchan's struct zchan_attr) means
 * ZCHAN_DEFAULT_POOL_SIZE bytes of pool, ZCHAN_DEFAULT_RING_ENTRIES
 * descriptors, and a max_msg of a quarter of the pool, at most
 * ZCHAN_MSG_MAX.
 */
#define ZCHAN_DEFAULT_POOL_SIZE		(4UL << 20)
#define ZCHAN_DEFAULT_RING_ENTRIES	1024U

/*
 * Features of the module, in zchan_layout.features (CREATE, ATTACH and
 * INFO return it; INFO also on a file without a role).
 *
 * ZCHAN_FEAT_URING_CMD: IORING_OP_URING_CMD with ZCHAN_URING_CMD_WAIT and
 *	ZCHAN_URING_CMD_KICK (in their _IOWR encoding) is supported.
 * ZCHAN_FEAT_URING_CANCEL: io_uring cancels a pending uring WAIT itself
 *	when its ring or its task goes away (kernels with cancelable uring
 *	commands); without it, a ring closed with a WAIT pending lingers
 *	until the WAIT completes (see Documentation/module.rst).
 * ZCHAN_FEAT_USE: an end is kept open by its holders, the processes that
 *	took it or hold it with ZCHAN_IOC_USE (the rule described there).
 * ZCHAN_FEAT_PUBLISH_ON_CLOSE: CREATE accepts ZCHAN_CREATE_PUBLISH_ON_CLOSE.
 */
#define ZCHAN_FEAT_URING_CMD		(1U << 0)
#define ZCHAN_FEAT_URING_CANCEL		(1U << 1)
#define ZCHAN_FEAT_USE			(1U << 2)
#define ZCHAN_FEAT_PUBLISH_ON_CLOSE	(1U << 3)
/*
 * ZCHAN_FEAT_SEND_PAGES: ZCHAN_IOC_SEND_PAGES, ZCHAN_IOC_REAP and the
 *	read-only mappings of transfers at ZCHAN_OFF_PAGES (see
 *	&struct zchan_send_pages).
 */
#define ZCHAN_FEAT_SEND_PAGES		(1U << 4)
/*
 * ZCHAN_FEAT_WAIT_SPIN: ZCHAN_IOC_WAIT accepts ZCHAN_WAIT_SPIN (see
 *	&struct zchan_wait): the kernel spins before it sleeps, and only
 *	while the peer end's task is running on a CPU.
 */
#define ZCHAN_FEAT_WAIT_SPIN		(1U << 5)
/*
 * ZCHAN_FEAT_RUN_STATE: each end has a run-state word
 *	(zchan_layout.prod_state, .cons_state) that the kernel keeps as it
 *	sees the end's task sleep and wake (ZCHAN_RUN_* below).
 */
#define ZCHAN_FEAT_RUN_STATE		(1U << 6)
/*
 * ZCHAN_FEAT_FANIN: CREATE accepts max_producers above 1 (fan-in: a lane
 *	per producer end), with ZCHAN_IOC_LANE, ZCHAN_KICK_LANE, the lanes'
 *	mmap offsets (ZCHAN_OFF_LANE()) and zchan_layout.cons_lanes.
 */
#define ZCHAN_FEAT_FANIN		(1U << 7)

/* mmap() offsets of the three regions (also returned in zchan_layout). */
#define ZCHAN_OFF_PROD_RING	0x00000000ULL
#define ZCHAN_OFF_CONS_RING	0x10000000ULL
#define ZCHAN_OFF_POOL		0x20000000ULL
/*
 * Transfers of ZCHAN_IOC_SEND_PAGES: transfer N is mapped by the consumer at
 * ZCHAN_OFF_PAGES + N * ZCHAN_PAGES_MAX (64-bit only), read-only, exactly
 * its length.  A transfer is at most ZCHAN_PAGES_MAX bytes.
 */
#define ZCHAN_OFF_PAGES		(1ULL << 40)
#define ZCHAN_PAGES_MAX		(1ULL << 30)
/*
 * Lanes (ZCHAN_FEAT_FANIN): lane N of a fan-in channel has the three
 * regions at ZCHAN_OFF_LANE(N) plus the offsets of lane 0 above (64-bit
 * only); ZCHAN_IOC_LANE returns them.  Lane 0 is also at the offsets
 * above, as in a 1:1 channel.
 */
#define ZCHAN_OFF_LANES		(1ULL << 52)
#define ZCHAN_LANE_STRIDE	(1ULL << 41)
#define ZCHAN_OFF_LANE(n)	(ZCHAN_OFF_LANES + (__u64)(n) * ZCHAN_LANE_STRIDE)

/**
 * struct zchan_desc - one message in the producer ring
 * @off: byte offset of the payload in the data pool
 * @len: payload length in bytes, at most zchan_layout.max_msg
 * @flags: ZCHAN_DESC_* flags
 *
 * Readers must read a descriptor once, then check @off + @len against the
 * pool size before touching the payload: the producer may be hostile.
 */
struct zchan_desc {
	__u64 off;
	__u32 len;
	__u32 flags;
};

/*
 * The slot holds no message (a dropped loan, or, published by the kernel
 * at the producer's release, a loan never committed); skip and release it.
 */
#define ZCHAN_DESC_SKIP		(1U << 0)
/*
 * The slot names a transfer of ZCHAN_IOC_SEND_PAGES, not pool space: @off is
 * the transfer's mmap offset (ZCHAN_IOC_SEND_PAGES's @offset, at or above
 * ZCHAN_OFF_PAGES), @len its length.  The consumer maps it read-only with
 * mmap(NULL, len, PROT_READ, MAP_SHARED, fd, off) and unmaps it before it
 * releases the slot; the kernel checks both values.
 */
#define ZCHAN_DESC_PAGES	(1U << 1)

/**
 * struct zchan_prod_ring - where zchan_layout_set_words() puts the
 *	producer's words (see &struct zchan_layout for what they mean)
 * @tail: zchan_layout.prod_tail
 * @pad0: zero
 * @head_seen: zchan_layout.prod_head_seen
 * @pad1: zero
 * @need_wakeup: zchan_layout.prod_need_wakeup
 * @closed: zchan_layout.prod_closed
 * @alloc: zchan_layout.prod_alloc
 * @state: zchan_layout.prod_state
 * @pad2: zero
 * @descs: zchan_layout.prod_descs
 */
struct zchan_prod_ring {
	__u32 tail;
	__u32 pad0[15];
	__u32 head_seen;
	__u32 pad1[15];
	__u32 need_wakeup;
	__u32 closed;
	__u32 alloc;
	__u32 state;
	__u32 pad2[12];
	struct zchan_desc descs[];
};

/**
 * struct zchan_cons_ring - where zchan_layout_set_words() puts the
 *	consumer's words (see &struct zchan_layout for what they mean)
 * @head: zchan_layout.cons_head
 * @pad0: zero
 * @read: zchan_layout.cons_read
 * @pad1: zero
 * @need_wakeup: zchan_layout.cons_need_wakeup
 * @closed: zchan_layout.cons_closed
 * @state: zchan_layout.cons_state
 * @lanes: zchan_layout.cons_lanes
 * @pad2: zero
 */
struct zchan_cons_ring {
	__u32 head;
	__u32 pad0[15];
	__u32 read;
	__u32 pad1[15];
	__u32 need_wakeup;
	__u32 closed;
	__u32 state;
	__u32 lanes;
	__u32 pad2[12];
};

/*
 * An end's run-state word (ZCHAN_FEAT_RUN_STATE): what a peer about to
 * spin for it wants to know - is it running, and on which CPU.  Bits 0-7
 * hold ZCHAN_RUN_*, bits 16-31 the CPU it last ran on plus one (0:
 * unknown).  The kernel stores ZCHAN_RUN_SLEEPING when the end's task
 * blocks in ZCHAN_IOC_WAIT, ZCHAN_RUN_RUNNING with its CPU when it returns
 * or spins there, and ZCHAN_RUN_RUNNING (keeping the CPU) when it kicks a
 * waiting end awake.  The end itself may store into it too (before it
 * sleeps in poll, epoll or io_uring, which the kernel cannot tell from a
 * wait on another file): the word is its own, advisory, and the kernel
 * never acts on it.  A peer reads it once and never trusts it further than
 * a spin decision: spin only while the end is RUNNING on another CPU.
 */
#define ZCHAN_RUN_UNKNOWN	0
#define ZCHAN_RUN_RUNNING	1
#define ZCHAN_RUN_SLEEPING	2
#define ZCHAN_RUN_STATE_MASK	0xffU
#define ZCHAN_RUN_CPU_SHIFT	16
/* The state of word @w, and its CPU (-1: unknown). */
#define ZCHAN_RUN_STATE(w)	((w) & ZCHAN_RUN_STATE_MASK)
#define ZCHAN_RUN_CPU(w)	((int)((w) >> ZCHAN_RUN_CPU_SHIFT) - 1)

/**
 * struct zchan_layout - the shared ring: where things are, returned by
 *	CREATE, ATTACH and INFO
 * @pool_size: data pool size in bytes (a multiple of the page size)
 * @ring_entries: descriptor ring size (a power of two)
 * @max_msg: largest message in bytes
 * @prod_ring_off: mmap offset of the producer ring (written by the
 *	producer, read-only for the consumer)
 * @prod_ring_size: its length in bytes (page aligned)
 * @cons_ring_off: mmap offset of the consumer ring (written by the
 *	consumer, read-only for the producer)
 * @cons_ring_size: its length in bytes (page aligned)
 * @pool_off: mmap offset of the data pool (written by the producer,
 *	read-only for the consumer)
 * @prod_tail: offset in the producer ring of the __u32 tail: descriptors
 *	published (free-running); written with release semantics after the
 *	descriptor and payload, read with acquire
 * @prod_head_seen: offset of the __u32 head_seen: the consumer's head the
 *	producer last accounted for; a waiting producer is woken when the
 *	consumer's head differs
 * @prod_need_wakeup: offset of the producer's __u32 need_wakeup: non-zero
 *	while the producer waits (for room); the consumer kicks after a
 *	release only then.  Set by the kernel when it arms a wait, cleared
 *	when it delivers a kick.
 * @prod_closed: offset of the producer's __u32 closed: set (store-release)
 *	by the kernel when the producer end is released
 * @prod_descs: offset of the array of @ring_entries &struct zchan_desc
 * @cons_head: offset in the consumer ring of the __u32 head: descriptors
 *	released (free-running); every slot below it and its pool space
 *	belong to the producer again
 * @cons_read: offset of the __u32 read: descriptors the consumer has
 *	taken (borrowed or copied); the channel is readable while the
 *	producer's tail != read
 * @cons_need_wakeup: offset of the consumer's __u32 need_wakeup: non-zero
 *	while the consumer waits (for a message); the producer kicks after
 *	publishing only then.  Set and cleared by the kernel as above.
 * @cons_closed: offset of the consumer's __u32 closed: set by the kernel
 *	when the consumer end is released
 * @features: ZCHAN_FEAT_* bits of the module (0 from libzchan's memfd
 *	backend)
 * @prod_alloc: offset in the producer ring of the __u32 alloc: slots the
 *	producer has handed out (loaned or committed), tail <= alloc <=
 *	consumer's head + @ring_entries.  Used with
 *	ZCHAN_CREATE_PUBLISH_ON_CLOSE only: the producer writes every slot
 *	below alloc first (a ZCHAN_DESC_SKIP placeholder for a loan or a
 *	free slot, then the message when committed, flags last), then alloc
 *	(store-release); it may advance alloc over free slots ahead, so one
 *	store serves many messages.
 * @prod_state: offset in the producer ring of the producer's __u32
 *	run-state word (ZCHAN_RUN_*; kept by modules with
 *	ZCHAN_FEAT_RUN_STATE, 0 from older ones)
 * @cons_state: offset in the consumer ring of the consumer's run-state word
 * @cons_lanes: offset in lane 0's consumer ring of the __u32 count of
 *	the channel's lanes (ZCHAN_FEAT_FANIN; 0 from older modules, which
 *	make one lane): the kernel stores it (store-release) once a new
 *	lane is ready for ZCHAN_IOC_LANE, before its producer end exists
 *	anywhere.  The consumer's page: a consumer that writes it misleads
 *	itself only.  Read it once, and ask ZCHAN_IOC_LANE for lanes above
 *	those known
 * @resv: the older name of @cons_lanes
 * @reserved: zero
 *
 * Descriptors, the pool and the other end's words are shared memory: read
 * each word once, bound every index and every (off, len) by the sizes here.
 */
struct zchan_layout {
	__u64 pool_size;
	__u32 ring_entries;
	__u32 max_msg;
	__u64 prod_ring_off;
	__u64 prod_ring_size;
	__u64 cons_ring_off;
	__u64 cons_ring_size;
	__u64 pool_off;
	__u32 prod_tail;
	__u32 prod_head_seen;
	__u32 prod_need_wakeup;
	__u32 prod_closed;
	__u32 prod_descs;
	__u32 cons_head;
	__u32 cons_read;
	__u32 cons_need_wakeup;
	__u32 cons_closed;
	__u32 features;
	__u32 prod_alloc;
	__u32 prod_state;
	__u32 cons_state;
	union {
		__u32 cons_lanes;
		__u32 resv;
	};
	__u64 reserved[2];
};

/**
 * zchan_layout_set_words() - fill in where the shared words are
 * @l: layout whose word offsets to set
 *
 * The placement the module reports in CREATE/ATTACH/INFO; libzchan's memfd
 * backend uses it for its own layout (as virtio_ring.h's vring_init()
 * serves both sides of a virtqueue).
 */
static __inline__ void zchan_layout_set_words(struct zchan_layout *l)
{
	l->prod_tail = __builtin_offsetof(struct zchan_prod_ring, tail);
	l->prod_head_seen = __builtin_offsetof(struct zchan_prod_ring, head_seen);
	l->prod_need_wakeup = __builtin_offsetof(struct zchan_prod_ring,
						 need_wakeup);
	l->prod_closed = __builtin_offsetof(struct zchan_prod_ring, closed);
	l->prod_descs = __builtin_offsetof(struct zchan_prod_ring, descs);
	l->prod_alloc = __builtin_offsetof(struct zchan_prod_ring, alloc);
	l->prod_state = __builtin_offsetof(struct zchan_prod_ring, state);
	l->cons_head = __builtin_offsetof(struct zchan_cons_ring, head);
	l->cons_read = __builtin_offsetof(struct zchan_cons_ring, read);
	l->cons_need_wakeup = __builtin_offsetof(struct zchan_cons_ring,
						 need_wakeup);
	l->cons_closed = __builtin_offsetof(struct zchan_cons_ring, closed);
	l->cons_state = __builtin_offsetof(struct zchan_cons_ring, state);
	l->cons_lanes = __builtin_offsetof(struct zchan_cons_ring, lanes);
}

/**
 * struct zchan_create - ZCHAN_IOC_CREATE argument
 * @pool_size: in: data pool bytes, rounded up to the page size; 0 =
 *	ZCHAN_DEFAULT_POOL_SIZE
 * @ring_entries: in: descriptor ring size, a power of two; 0 =
 *	ZCHAN_DEFAULT_RING_ENTRIES
 * @max_msg: in: largest message, at most @pool_size / 2 and ZCHAN_MSG_MAX;
 *	0 = @pool_size / 4, at most ZCHAN_MSG_MAX
 * @mode: in: permission bits (0777 mask) checked on attach by name
 * @flags: in: ZCHAN_CREATE_* flags
 * @name: in: NUL-terminated name, empty for an anonymous channel
 * @layout: out: the channel's geometry and mmap offsets
 * @max_producers: in: the most producer ends live at once, at most
 *	ZCHAN_ENDS_MAX; 0 means 1 (a 1:1 channel, as before the field); above 1
 *	needs ZCHAN_FEAT_FANIN
 * @max_consumers: in: the most consumer ends live at once, at most
 *	ZCHAN_ENDS_MAX; 0 means 1.  Above 1 fails with -EOPNOTSUPP: the
 *	broadcast and work-queue shapes are not built yet
 * @reserved: must be zero
 *
 * @max_producers and @max_consumers came out of reserved space: a caller
 * that zeroes the structure gets the 1:1 channel it always got.
 */
struct zchan_create {
	__u64 pool_size;
	__u32 ring_entries;
	__u32 max_msg;
	__u32 mode;
	__u32 flags;
	__u8 name[ZCHAN_NAME_MAX];
	struct zchan_layout layout;
	__u32 max_producers;
	__u32 max_consumers;
	__u64 reserved[3];
};

/*
 * The producer keeps zchan_layout.prod_alloc: when its end is released
 * (zchan_close(), exit, or a kill), the kernel publishes every slot below
 * alloc, turning loans never committed into ZCHAN_DESC_SKIP slots, so no
 * committed message is lost whatever loans were outstanding.
 */
#define ZCHAN_CREATE_PUBLISH_ON_CLOSE	(1U << 0)
/*
 * Reserved for broadcast channels (every consumer gets every message):
 * known, and refused with -EOPNOTSUPP until that shape is built.
 */
#define ZCHAN_CREATE_BROADCAST		(1U << 1)

/**
 * struct zchan_attach - ZCHAN_IOC_ATTACH argument
 * @flags: in: must be zero
 * @role: in: the end to take: ZCHAN_ROLE_CONSUMER (or 0, as before the
 *	field) or ZCHAN_ROLE_PRODUCER (a new producer end, of a channel
 *	made with max_producers above 1)
 * @resv: the older name of @role, which was reserved
 * @name: in: NUL-terminated name of the channel to attach to
 * @layout: out: the channel's geometry and mmap offsets (of the new end's
 *	lane, for a producer)
 * @reserved: must be zero
 */
struct zchan_attach {
	__u32 flags;
	union {
		__u32 role;
		__u32 resv;
	};
	__u8 name[ZCHAN_NAME_MAX];
	struct zchan_layout layout;
	__u64 reserved[4];
};

/**
 * struct zchan_peer_fd - ZCHAN_IOC_PEER_FD argument
 * @flags: in: ZCHAN_PEER_FD_CLOEXEC or zero
 * @fd: out: a new file descriptor, the new end of the channel
 * @role: in: the end to make: ZCHAN_ROLE_CONSUMER (or 0, as before the
 *	field; asked of the producer) or ZCHAN_ROLE_PRODUCER (a new producer
 *	end, asked of any end of a channel made with max_producers above 1)
 * @resv: must be zero
 * @reserved: must be zero
 */
struct zchan_peer_fd {
	__u32 flags;
	__u32 fd;
	__u32 role;
	__u32 resv;
	__u64 reserved[1];
};

#define ZCHAN_PEER_FD_CLOEXEC	(1U << 0)

/**
 * struct zchan_kick - ZCHAN_IOC_KICK argument
 * @flags: in: ZCHAN_KICK_LANE or zero
 * @lane: in: with ZCHAN_KICK_LANE, the lane whose producer to wake
 * @resv: the older name of @lane, which was reserved: zero without the flag
 * @reserved: must be zero
 *
 * A producer's kick wakes the consumer.  The consumer's kick wakes the
 * producer of every lane whose producer end is open, or with
 * ZCHAN_KICK_LANE only that of @lane (after releasing slots of that lane).
 */
struct zchan_kick {
	__u32 flags;
	union {
		__u32 lane;
		__u32 resv;
	};
	__u64 reserved[2];
};

/* Wake only zchan_kick.lane's producer (the consumer's; -EINVAL else). */
#define ZCHAN_KICK_LANE		(1U << 0)

/**
 * struct zchan_wait - ZCHAN_IOC_WAIT argument
 * @timeout_ns: in: relative timeout, used with ZCHAN_WAIT_TIMEOUT
 * @flags: in: ZCHAN_WAIT_* flags
 * @revents: out: EPOLLIN/EPOLLOUT/EPOLLHUP mask that ended the wait
 * @spin_ns: in: with ZCHAN_WAIT_SPIN, the longest the kernel spins before
 *	it sleeps, at most ZCHAN_WAIT_SPIN_MAX_NS; zero without the flag
 * @resv: must be zero
 * @reserved: the older name of @spin_ns and @resv, which were reserved
 *
 * ZCHAN_WAIT_SPIN (ZCHAN_FEAT_WAIT_SPIN): before it sleeps, the kernel
 * watches the end's ready condition for up to @spin_ns, as the kernel's
 * adaptive mutexes spin on their owner, and only while the peer end's task
 * - the one that last created, attached, waited on or kicked from the
 * peer end - is running on a CPU (and is not the caller).  It stops at
 * once when the peer is not running (it cannot publish: spinning would
 * only take its CPU), when the caller should yield, or on a signal; then
 * it sleeps as without the flag.  While it spins the end's need_wakeup is
 * not set, so a peer that publishes meanwhile makes no system call.  The
 * spin counts against @timeout_ns.
 */
struct zchan_wait {
	__u64 timeout_ns;
	__u32 flags;
	__u32 revents;
	union {
		struct {
			__u64 spin_ns;
			__u64 resv;
		};
		__u64 reserved[2];
	};
};

#define ZCHAN_WAIT_TIMEOUT	(1U << 0)
#define ZCHAN_WAIT_SPIN		(1U << 1)
/* The longest spin a ZCHAN_IOC_WAIT may ask for (2 ms). */
#define ZCHAN_WAIT_SPIN_MAX_NS	2000000ULL

/**
 * struct zchan_use - ZCHAN_IOC_USE argument
 * @flags: in: 0 to start holding the end, ZCHAN_USE_STOP to stop
 * @resv: must be zero
 * @reserved: must be zero
 */
struct zchan_use {
	__u32 flags;
	__u32 resv;
	__u64 reserved[2];
};

/* Stop holding the end.  ZCHAN_USE_END is its older name. */
#define ZCHAN_USE_STOP		(1U << 0)
#define ZCHAN_USE_END		ZCHAN_USE_STOP

/**
 * struct zchan_send_pages - ZCHAN_IOC_SEND_PAGES argument
 * @addr: in: start of the producer's buffer, page aligned
 * @len: in: its length, a non-zero multiple of the page size, at most
 *	ZCHAN_PAGES_MAX
 * @cookie: in: returned in the transfer's &struct zchan_completion
 * @flags: in: must be zero
 * @resv: must be zero
 * @offset: out: the transfer's mmap offset, for the descriptor's @off
 * @reserved: must be zero
 */
struct zchan_send_pages {
	__u64 addr;
	__u64 len;
	__u64 cookie;
	__u32 flags;
	__u32 resv;
	__u64 offset;
	__u64 reserved[3];
};

/**
 * struct zchan_completion - one finished transfer, filled by ZCHAN_IOC_REAP
 * @cookie: the cookie given to ZCHAN_IOC_SEND_PAGES
 * @flags: ZCHAN_COMPL_* flags
 * @resv: zero
 */
struct zchan_completion {
	__u64 cookie;
	__u32 flags;
	__u32 resv;
};

/*
 * The consumer did not unmap the transfer itself: its end was released or
 * its address space torn down (it closed, exited or was killed) while it
 * held the mapping, or it never mapped the transfer.
 */
#define ZCHAN_COMPL_ABORTED	(1U << 0)

/**
 * struct zchan_reap - ZCHAN_IOC_REAP argument
 * @addr: in: user address of an array of @nr &struct zchan_completion
 * @nr: in: its length
 * @flags: in: must be zero
 * @reserved: must be zero
 */
struct zchan_reap {
	__u64 addr;
	__u32 nr;
	__u32 flags;
	__u64 reserved[2];
};

/* Which end a file is, in zchan_info.role. */
#define ZCHAN_ROLE_NONE		0
#define ZCHAN_ROLE_PRODUCER	1
#define ZCHAN_ROLE_CONSUMER	2

/* Bits of zchan_info.state. */
#define ZCHAN_STATE_PRODUCER_OPEN	(1U << 0)
#define ZCHAN_STATE_CONSUMER_OPEN	(1U << 1)
#define ZCHAN_STATE_NAMED		(1U << 2)
/* The channel was made with ZCHAN_CREATE_PUBLISH_ON_CLOSE (ZCHAN_FEAT_FANIN). */
#define ZCHAN_STATE_PUBLISH_ON_CLOSE	(1U << 3)

/**
 * struct zchan_info - ZCHAN_IOC_INFO argument
 * @flags: in: must be zero
 * @role: out: ZCHAN_ROLE_*
 * @state: out: ZCHAN_STATE_* bits
 * @resv: zero
 * @layout: out: the channel's geometry and mmap offsets (a producer's:
 *	of its own lane)
 * @published: out: zchan_prod_ring.tail as last read by the kernel (of
 *	the producer's lane; for the consumer, summed over the lanes)
 * @released: out: zchan_cons_ring.head as last read by the kernel (as
 *	@published)
 * @kicks: out: kicks delivered to this channel, both directions
 * @waits: out: waits that slept (ioctl, poll and io_uring)
 * @name: out: the channel's name, empty if anonymous
 * @queued_bytes: out: payload bytes published and not yet released: the
 *	lengths of the descriptors from @released to @published, read once
 *	each, at most zchan_layout.ring_entries of them
 * @producers: out: producer ends live now (once 0, no more join)
 * @consumers: out: consumer ends live now
 * @max_producers: out: the channel's zchan_create.max_producers (0 read
 *	as 1)
 * @max_consumers: out: the channel's zchan_create.max_consumers (0 read
 *	as 1)
 * @reserved: must be zero
 */
struct zchan_info {
	__u32 flags;
	__u32 role;
	__u32 state;
	__u32 resv;
	struct zchan_layout layout;
	__u64 published;
	__u64 released;
	__u64 kicks;
	__u64 waits;
	__u8 name[ZCHAN_NAME_MAX];
	__u64 queued_bytes;
	__u32 producers;
	__u32 consumers;
	__u32 max_producers;
	__u32 max_consumers;
	__u64 reserved[1];
};

/* Bits of zchan_lane_info.state. */
#define ZCHAN_LANE_OPEN		(1U << 0)	/* its producer end is open */
#define ZCHAN_LANE_CLOSED	(1U << 1)	/* its producer end was released */
#define ZCHAN_LANE_DROPPED	(1U << 2)	/* the consumer dropped it */

/*
 * zchan_lane_info.flags: the consumer drops the lane (its producer
 * corrupted it): the producer end is released as if it had gone (its
 * place in max_producers comes back, it sees EPOLLERR | EPOLLHUP and
 * -EPIPE as after the consumer's death, nothing more is published for
 * it) and the lane no longer makes the consumer ready.  Once.
 */
#define ZCHAN_LANE_DROP		(1U << 0)

/**
 * struct zchan_lane_info - ZCHAN_IOC_LANE argument
 * @index: in: the lane, below @lanes
 * @flags: in: ZCHAN_LANE_DROP or zero
 * @state: out: ZCHAN_LANE_* bits
 * @lanes: out: the channel's lanes now (as zchan_layout.cons_lanes)
 * @layout: out: the lane's geometry and mmap offsets, for mmap() on the
 *	consumer's file: its producer ring and pool read-only, its consumer
 *	ring read-write
 * @reserved: must be zero
 */
struct zchan_lane_info {
	__u32 index;
	__u32 flags;
	__u32 state;
	__u32 lanes;
	struct zchan_layout layout;
	__u64 reserved[2];
};

/*
 * Commands on an open /dev/zchan file (or a file from ZCHAN_IOC_PEER_FD).
 * Every command fails with -EFAULT for an unreadable or unwritable argument,
 * -EINVAL for unknown flags or non-zero reserved fields, and unknown
 * commands fail with -ENOTTY.  A file has no role until CREATE or ATTACH
 * gives it one, once; commands that need a role fail with -EINVAL without.
 *
 * ZCHAN_IOC_CREATE - create a channel; this file becomes its producer.
 *	-EINVAL: the file has a role, bad mode bits, @ring_entries not a power
 *	of two or above ZCHAN_RING_ENTRIES_MAX, @max_msg above @pool_size / 2,
 *	@name not
 *	NUL-terminated, @max_msg above ZCHAN_MSG_MAX, unknown @flags,
 *	@max_producers or @max_consumers above ZCHAN_ENDS_MAX.
 *	-EOPNOTSUPP: ZCHAN_CREATE_BROADCAST, or @max_consumers above 1 (not
 *	built yet), or @max_producers above 1 from a module without
 *	ZCHAN_FEAT_FANIN.  -EEXIST: @name is taken in this IPC namespace.  -ENOSPC: the user owns
 *	max_channels_per_user channels.  -ENOMEM: the pool exceeds
 *	ZCHAN_POOL_SIZE_MAX, max_pool_bytes or the user's
 *	max_user_pool_bytes, or memory ran out.  A failed CREATE leaves
 *	nothing behind.
 *
 * ZCHAN_IOC_ATTACH - take an end of @role of a named channel of the
 *	caller's IPC namespace: its consumer end, or a new producer end.
 *	-EINVAL: the file has a role, @role is not known, or @name is
 *	empty or not NUL-terminated.  -ENOENT: no such channel.  -EACCES: the
 *	mode's owner, group or other bits (chosen by the caller's fsuid and
 *	groups) lack read and write, and the caller lacks CAP_IPC_OWNER.
 *	-EBUSY: the consumer end of a 1:1 channel is, or was, taken (as
 *	before roles).  -EUSERS: any other role is full: it has
 *	max_producers (max_consumers) ends live, or (a role of one end) its
 *	end was taken - a consumer end is taken once.  -EPIPE: a producer asked
 *	for after the consumer end was released, or after the last producer
 *	end was (no producer joins a stream that ended).
 *
 * ZCHAN_IOC_PEER_FD - return a new file that is a new end of @role (for
 *	fork() or SCM_RIGHTS): the consumer end, asked of the producer, or
 *	a new producer end, asked of any end.  -EINVAL: a consumer asked of
 *	a file that is not a producer, or an unknown @role.  -EBUSY,
 *	-EUSERS: as for ATTACH.  -EPIPE: the calling end was released (its
 *	last holder stopped, see ZCHAN_IOC_USE), or as for ATTACH.
 *	-EMFILE: no free fd.
 *
 * ZCHAN_IOC_KICK - wake the peer end: clear its need_wakeup word, wake its
 *	sleepers, complete its ready io_uring waits (the consumer's peers:
 *	see &struct zchan_kick).  -EINVAL: ZCHAN_KICK_LANE from a producer,
 *	or @lane not below the channel's lanes.
 *
 * ZCHAN_IOC_WAIT - sleep until this end is ready (see struct zchan_wait)
 *	or the peer is gone; returns the mask in @revents.  -ETIMEDOUT: the
 *	timeout passed first.  -EINTR/-ERESTARTSYS: a signal arrived.
 *
 * ZCHAN_IOC_INFO - describe the channel (a file without a role reads
 *	ZCHAN_ROLE_NONE, zeroes and the features word).
 *
 * ZCHAN_IOC_USE - this process (its descriptor table) becomes a holder
 *	of the end, or with ZCHAN_USE_STOP stops being one.  An end stays
 *	open while it has a holder with a descriptor of it.  CREATE, ATTACH
 *	and mmap() make the caller a holder too; a holder stops with
 *	ZCHAN_USE_STOP or when it closes its last descriptor of the end
 *	(exit and close-on-exec included), and the end is released when its
 *	last holder stops.  A copy inherited through fork(2) or received over
 *	a socket and never held neither keeps the end open nor ends it.  An
 *	end nobody has held yet (a fresh ZCHAN_IOC_PEER_FD file) stays open
 *	while its file does.  -EPIPE: the end was already released.  -EBADF:
 *	the caller's descriptor of it was closed meanwhile (by another
 *	thread).
 *
 * ZCHAN_IOC_SEND_PAGES - on a producer, pin the pages of [@addr, @addr +
 *	@len) (FOLL_LONGTERM, read-only use) and make them a transfer the
 *	consumer can map read-only at the returned @offset; the producer then
 *	publishes a ZCHAN_DESC_PAGES descriptor {@offset, @len}.  The pages
 *	stay pinned, whatever the producer does to its mapping, until the
 *	consumer unmaps the transfer (or its end is released); then they are
 *	unpinned and a completion carrying @cookie is queued for REAP.  The
 *	consumer sees what the pages hold when it reads them: a producer that
 *	writes the buffer before it reaps the completion may be seen doing so.
 *	-EINVAL: not a producer, @addr or @len not page aligned, @len zero or
 *	above ZCHAN_PAGES_MAX, non-zero @flags or reserved fields.
 *	-EOPNOTSUPP: the channel was made with max_producers above 1.  -EFAULT:
 *	the range is not mapped.  -ENOBUFS: the channel's owner would have more
 *	than max_user_pinned_bytes pinned, or the channel has ring_entries
 *	transfers not yet reaped.  -EPIPE: the consumer end was released.
 *
 * ZCHAN_IOC_LANE - on the consumer (ZCHAN_FEAT_FANIN), describe lane
 *	@index: its state and where it is mapped; with ZCHAN_LANE_DROP, drop
 *	it first.  -EINVAL: not the consumer, unknown @flags, non-zero
 *	reserved fields.  -ENOENT: @index is not below
 *	the channel's lanes.
 *
 * ZCHAN_IOC_REAP - on a producer, move up to @nr completions, oldest first,
 *	to the array at @addr; returns how many (0: none).  While completions
 *	wait, poll() on the producer reports EPOLLPRI.  -EINVAL: not a
 *	producer, non-zero @flags or reserved fields.  -EOPNOTSUPP: as for
 *	SEND_PAGES.  -EFAULT: the array is not writable and nothing was reaped.
 */
#define ZCHAN_IOC_MAGIC		'Z'
#define ZCHAN_IOC_CREATE	_IOWR(ZCHAN_IOC_MAGIC, 0x01, struct zchan_create)
#define ZCHAN_IOC_ATTACH	_IOWR(ZCHAN_IOC_MAGIC, 0x02, struct zchan_attach)
#define ZCHAN_IOC_PEER_FD	_IOWR(ZCHAN_IOC_MAGIC, 0x03, struct zchan_peer_fd)
#define ZCHAN_IOC_KICK		_IOWR(ZCHAN_IOC_MAGIC, 0x04, struct zchan_kick)
#define ZCHAN_IOC_WAIT		_IOWR(ZCHAN_IOC_MAGIC, 0x05, struct zchan_wait)
#define ZCHAN_IOC_INFO		_IOWR(ZCHAN_IOC_MAGIC, 0x06, struct zchan_info)
#define ZCHAN_IOC_USE		_IOWR(ZCHAN_IOC_MAGIC, 0x07, struct zchan_use)
#define ZCHAN_IOC_SEND_PAGES	_IOWR(ZCHAN_IOC_MAGIC, 0x08, struct zchan_send_pages)
#define ZCHAN_IOC_REAP		_IOWR(ZCHAN_IOC_MAGIC, 0x09, struct zchan_reap)
#define ZCHAN_IOC_LANE		_IOWR(ZCHAN_IOC_MAGIC, 0x0a, struct zchan_lane_info)

/*
 * IORING_OP_URING_CMD on a channel fd: sqe->cmd_op is one of these and the
 * command area (sqe->cmd) holds a &struct zchan_uring_cmd.  They are
 * encoded like ioctl numbers (as ublk's are); the bare values 0x01 and 0x02
 * of earlier versions, like any unknown cmd_op, complete with -ENOTTY.
 *
 * WAIT completes with a positive EPOLLIN/EPOLLOUT/EPOLLHUP mask once this
 * end is ready (as ZCHAN_IOC_WAIT) or the peer is gone; KICK wakes the peer
 * (as ZCHAN_IOC_KICK) and completes with 0.  Both complete with -EINVAL for
 * a file without a role or non-zero command fields.  A pending WAIT
 * completes with -ECANCELED when the file table that issued it closes a
 * descriptor of the channel, when the issuing task exits or calls
 * execve(), or (ZCHAN_FEAT_URING_CANCEL) when its ring goes away.
 */
#define ZCHAN_URING_CMD_WAIT	_IOWR(ZCHAN_IOC_MAGIC, 0x20, struct zchan_uring_cmd)
#define ZCHAN_URING_CMD_KICK	_IOWR(ZCHAN_IOC_MAGIC, 0x21, struct zchan_uring_cmd)

/**
 * struct zchan_uring_cmd - command area of an IORING_OP_URING_CMD sqe
 * @flags: must be zero
 * @resv: must be zero
 */
struct zchan_uring_cmd {
	__u32 flags;
	__u32 resv[3];
};

#endif /* _UAPI_LINUX_ZCHAN_H */
