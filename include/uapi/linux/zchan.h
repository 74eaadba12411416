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
 * The same layout is used by libzchan's memfd backend, so this header is the
 * one description of the ring protocol shared by module, library and tests.
 */
#ifndef _UAPI_LINUX_ZCHAN_H
#define _UAPI_LINUX_ZCHAN_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define ZCHAN_DEVICE_NAME	"zchan"

/* A channel name: up to 63 bytes and a terminating NUL. */
#define ZCHAN_NAME_MAX		64

/* mmap() offsets of the three regions (also returned in zchan_layout). */
#define ZCHAN_OFF_PROD_RING	0x00000000ULL
#define ZCHAN_OFF_CONS_RING	0x10000000ULL
#define ZCHAN_OFF_POOL		0x20000000ULL

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

/* The slot holds no message (a dropped loan); skip and release it. */
#define ZCHAN_DESC_SKIP		(1U << 0)

/**
 * struct zchan_prod_ring - producer-written control area
 * @tail: number of descriptors published (free-running); written with
 *	release semantics after the descriptor and payload, read with acquire
 * @pad0: keeps @tail on its own cache line; zero
 * @head_seen: the zchan_cons_ring.head value the producer last accounted
 *	for; a waiting producer is woken when the consumer's head differs
 * @pad1: keeps @head_seen, written at every reclaim, off the line of
 *	@need_wakeup, which the consumer reads after every release; zero
 * @need_wakeup: non-zero while the producer waits (for room); the consumer
 *	kicks after a release only then.  Set by the kernel when it arms a
 *	wait, cleared by the kernel when it delivers a kick.
 * @closed: set by the kernel when the producer end is released
 * @pad2: zero
 * @descs: ring of zchan_layout.ring_entries descriptors
 */
struct zchan_prod_ring {
	__u32 tail;
	__u32 pad0[15];
	__u32 head_seen;
	__u32 pad1[15];
	__u32 need_wakeup;
	__u32 closed;
	__u32 pad2[14];
	struct zchan_desc descs[];
};

/**
 * struct zchan_cons_ring - consumer-written control area
 * @head: number of descriptors released (free-running); every slot below it
 *	and its pool space belong to the producer again
 * @pad0: keeps @head on its own cache line; zero
 * @read: number of descriptors the consumer has taken (borrowed or copied);
 *	the channel is readable while zchan_prod_ring.tail != @read
 * @pad1: keeps @read, written for every message taken, off the line of
 *	@need_wakeup, which the producer reads after every publish; zero
 * @need_wakeup: non-zero while the consumer waits (for a message); the
 *	producer kicks after publishing only then.  Set by the kernel when it
 *	arms a wait, cleared by the kernel when it delivers a kick.
 * @closed: set by the kernel when the consumer end is released
 * @pad2: zero
 */
struct zchan_cons_ring {
	__u32 head;
	__u32 pad0[15];
	__u32 read;
	__u32 pad1[15];
	__u32 need_wakeup;
	__u32 closed;
	__u32 pad2[14];
};

/**
 * struct zchan_layout - where things are, returned by CREATE and ATTACH
 * @pool_size: data pool size in bytes (a multiple of the page size)
 * @ring_entries: descriptor ring size (a power of two)
 * @max_msg: largest message in bytes
 * @prod_ring_off: mmap offset of the producer ring
 * @prod_ring_size: its length in bytes (page aligned)
 * @cons_ring_off: mmap offset of the consumer ring
 * @cons_ring_size: its length in bytes (page aligned)
 * @pool_off: mmap offset of the data pool
 * @prod_tail: offset of zchan_prod_ring.tail in the producer ring
 * @prod_head_seen: offset of zchan_prod_ring.head_seen
 * @prod_need_wakeup: offset of zchan_prod_ring.need_wakeup
 * @prod_closed: offset of zchan_prod_ring.closed
 * @prod_descs: offset of the descriptor array
 * @cons_head: offset of zchan_cons_ring.head in the consumer ring
 * @cons_read: offset of zchan_cons_ring.read
 * @cons_need_wakeup: offset of zchan_cons_ring.need_wakeup
 * @cons_closed: offset of zchan_cons_ring.closed
 * @resv: zero
 * @reserved: zero
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
	__u32 resv;
	__u64 reserved[4];
};

/**
 * zchan_layout_set_words() - fill in where the shared words are
 * @l: layout whose word offsets to set
 *
 * The one description of the control areas, used by the module for
 * CREATE/ATTACH/INFO and by libzchan's memfd backend for its own layout
 * (as virtio_ring.h's vring_init() serves both sides of a virtqueue).
 */
static __inline__ void zchan_layout_set_words(struct zchan_layout *l)
{
	l->prod_tail = __builtin_offsetof(struct zchan_prod_ring, tail);
	l->prod_head_seen = __builtin_offsetof(struct zchan_prod_ring, head_seen);
	l->prod_need_wakeup = __builtin_offsetof(struct zchan_prod_ring,
						 need_wakeup);
	l->prod_closed = __builtin_offsetof(struct zchan_prod_ring, closed);
	l->prod_descs = __builtin_offsetof(struct zchan_prod_ring, descs);
	l->cons_head = __builtin_offsetof(struct zchan_cons_ring, head);
	l->cons_read = __builtin_offsetof(struct zchan_cons_ring, read);
	l->cons_need_wakeup = __builtin_offsetof(struct zchan_cons_ring,
						 need_wakeup);
	l->cons_closed = __builtin_offsetof(struct zchan_cons_ring, closed);
}

/**
 * struct zchan_create - ZCHAN_IOC_CREATE argument
 * @pool_size: in: data pool bytes, rounded up to the page size; 0 = default
 * @ring_entries: in: descriptor ring size, a power of two; 0 = default
 * @max_msg: in: largest message, at most @pool_size / 2; 0 = @pool_size / 4
 * @mode: in: permission bits (0777 mask) checked on attach by name
 * @flags: in: must be zero
 * @name: in: NUL-terminated name, empty for an anonymous channel
 * @layout: out: the channel's geometry and mmap offsets
 * @reserved: must be zero
 */
struct zchan_create {
	__u64 pool_size;
	__u32 ring_entries;
	__u32 max_msg;
	__u32 mode;
	__u32 flags;
	__u8 name[ZCHAN_NAME_MAX];
	struct zchan_layout layout;
	__u64 reserved[4];
};

/**
 * struct zchan_attach - ZCHAN_IOC_ATTACH argument
 * @flags: in: must be zero
 * @resv: must be zero
 * @name: in: NUL-terminated name of the channel to attach to
 * @layout: out: the channel's geometry and mmap offsets
 * @reserved: must be zero
 */
struct zchan_attach {
	__u32 flags;
	__u32 resv;
	__u8 name[ZCHAN_NAME_MAX];
	struct zchan_layout layout;
	__u64 reserved[4];
};

/**
 * struct zchan_peer_fd - ZCHAN_IOC_PEER_FD argument
 * @flags: in: ZCHAN_PEER_FD_CLOEXEC or zero
 * @fd: out: a new file descriptor, the consumer end of the channel
 * @reserved: must be zero
 */
struct zchan_peer_fd {
	__u32 flags;
	__u32 fd;
	__u64 reserved[2];
};

#define ZCHAN_PEER_FD_CLOEXEC	(1U << 0)

/**
 * struct zchan_kick - ZCHAN_IOC_KICK argument
 * @flags: in: must be zero
 * @resv: must be zero
 * @reserved: must be zero
 */
struct zchan_kick {
	__u32 flags;
	__u32 resv;
	__u64 reserved[2];
};

/**
 * struct zchan_wait - ZCHAN_IOC_WAIT argument
 * @timeout_ns: in: relative timeout, used with ZCHAN_WAIT_TIMEOUT
 * @flags: in: ZCHAN_WAIT_* flags
 * @revents: out: EPOLLIN/EPOLLOUT/EPOLLHUP mask that ended the wait
 * @reserved: must be zero
 */
struct zchan_wait {
	__u64 timeout_ns;
	__u32 flags;
	__u32 revents;
	__u64 reserved[2];
};

#define ZCHAN_WAIT_TIMEOUT	(1U << 0)

/* Which end a file is, in zchan_info.role. */
#define ZCHAN_ROLE_NONE		0
#define ZCHAN_ROLE_PRODUCER	1
#define ZCHAN_ROLE_CONSUMER	2

/* Bits of zchan_info.state. */
#define ZCHAN_STATE_PRODUCER_OPEN	(1U << 0)
#define ZCHAN_STATE_CONSUMER_OPEN	(1U << 1)
#define ZCHAN_STATE_NAMED		(1U << 2)

/**
 * struct zchan_info - ZCHAN_IOC_INFO argument
 * @flags: in: must be zero
 * @role: out: ZCHAN_ROLE_*
 * @state: out: ZCHAN_STATE_* bits
 * @resv: zero
 * @layout: out: the channel's geometry and mmap offsets
 * @published: out: zchan_prod_ring.tail as last read by the kernel
 * @released: out: zchan_cons_ring.head as last read by the kernel
 * @kicks: out: kicks delivered to this channel, both directions
 * @waits: out: waits that slept (ioctl, poll and io_uring)
 * @name: out: the channel's name, empty if anonymous
 * @queued_bytes: out: payload bytes published and not yet released: the
 *	lengths of the descriptors from @released to @published, read once
 *	each, at most zchan_layout.ring_entries of them
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
	__u64 reserved[3];
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
 *	of two or above 65536, @max_msg above @pool_size / 2, @name not
 *	NUL-terminated.  -EEXIST: @name is taken in this IPC namespace.
 *	-ENOSPC: the user owns max_channels_per_user channels.  -ENOMEM: the
 *	pool exceeds max_pool_bytes or the user's max_user_pool_bytes, or
 *	memory ran out.  A failed CREATE leaves nothing behind.
 *
 * ZCHAN_IOC_ATTACH - take the consumer end of a named channel of the
 *	caller's IPC namespace.  -EINVAL: the file has a role, or @name is
 *	empty or not NUL-terminated.  -ENOENT: no such channel.  -EACCES: the
 *	mode's owner, group or other bits (chosen by the caller's fsuid and
 *	groups) lack read and write, and the caller lacks CAP_IPC_OWNER.
 *	-EBUSY: the consumer end is, or was, taken.
 *
 * ZCHAN_IOC_PEER_FD - on a producer, return a new file that is the
 *	consumer end (for fork() or SCM_RIGHTS).  -EINVAL: not a producer.
 *	-EBUSY: the consumer end is, or was, taken.  -EMFILE: no free fd.
 *
 * ZCHAN_IOC_KICK - wake the peer end: clear its need_wakeup word, wake its
 *	sleepers, complete its ready io_uring waits.
 *
 * ZCHAN_IOC_WAIT - sleep until this end is ready (see struct zchan_wait)
 *	or the peer is gone; returns the mask in @revents.  -ETIMEDOUT: the
 *	timeout passed first.  -EINTR/-ERESTARTSYS: a signal arrived.
 *
 * ZCHAN_IOC_INFO - describe the channel (a file without a role reads
 *	ZCHAN_ROLE_NONE and zeroes).
 */
#define ZCHAN_IOC_MAGIC		'Z'
#define ZCHAN_IOC_CREATE	_IOWR(ZCHAN_IOC_MAGIC, 0x01, struct zchan_create)
#define ZCHAN_IOC_ATTACH	_IOWR(ZCHAN_IOC_MAGIC, 0x02, struct zchan_attach)
#define ZCHAN_IOC_PEER_FD	_IOWR(ZCHAN_IOC_MAGIC, 0x03, struct zchan_peer_fd)
#define ZCHAN_IOC_KICK		_IOWR(ZCHAN_IOC_MAGIC, 0x04, struct zchan_kick)
#define ZCHAN_IOC_WAIT		_IOWR(ZCHAN_IOC_MAGIC, 0x05, struct zchan_wait)
#define ZCHAN_IOC_INFO		_IOWR(ZCHAN_IOC_MAGIC, 0x06, struct zchan_info)

/*
 * IORING_OP_URING_CMD on a channel fd: sqe->cmd_op is one of these and the
 * command area (sqe->cmd) holds a &struct zchan_uring_cmd.
 *
 * WAIT completes with a positive EPOLLIN/EPOLLOUT/EPOLLHUP mask once this
 * end is ready (as ZCHAN_IOC_WAIT) or the peer is gone; KICK wakes the peer
 * (as ZCHAN_IOC_KICK) and completes with 0.  Both complete with -EINVAL for
 * a file without a role, an unknown cmd_op or non-zero command fields.  A
 * pending WAIT completes with -ECANCELED when the file table that issued it
 * closes a descriptor of the channel, when the issuing task exits or
 * calls execve(), or when io_uring cancels it because the ring goes away.
 */
#define ZCHAN_URING_CMD_WAIT	0x01
#define ZCHAN_URING_CMD_KICK	0x02

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
