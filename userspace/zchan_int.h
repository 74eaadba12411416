/* SPDX-License-Identifier: MIT OR LGPL-2.1 */
/*
 * libzchan internals: the handle, the ring words and the helpers shared by
 * the data path (ring.c), the waits (wait.c) and the backends (setup.c).
 */
#ifndef ZCHAN_INT_H
#define ZCHAN_INT_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <liburing.h>
#include <linux/zchan.h>
#include <zchan.h>

#define ZCHAN_EXPORT	__attribute__((visibility("default")))

/*
 * Nothing in libzchan reports through errno, and no call changes it: the
 * slow paths that make system calls keep the caller's value.
 */
#define zchan_keep_errno(expr) ({		\
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

/* Pool allocations are cache-line aligned (and never empty, see ring.c). */
#define ZCHAN_POOL_ALIGN	64U
/* The producer tries to go back to the front of the pool this often. */
#define ZCHAN_POOL_HOT		(64U << 10)

enum zchan_role {
	ZCHAN_PRODUCER = 1,
	ZCHAN_CONSUMER = 2,
};

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
	uint32_t pad;
};

struct zchan {
	int role;
	int backend;
	unsigned int flags;	/* ZCHAN_BUSY_POLL */
	uint32_t spin_ns;	/* spin this long before sleeping */
	uint32_t spin_adapt_ns;	/* or this long, see spin_adapt() */
	int err;		/* sticky: the peer corrupted the ring */

	int fd;			/* zchan_fd(): channel fd or memfd epoll fd */

	/* memfd backend */
	int own_efd;		/* the peer kicks us through it */
	int peer_efd;		/* we kick the peer through it */
	int sock;		/* our end of the liveness socketpair */
	int peer_fds[5];	/* producer: consumer end until sent */
	bool peer_dead;
	uint32_t arm_gen;	/* our need_wakeup generation */
	bool kick_seen;		/* a peer kick was drained since arming */
	uint32_t self_kicks;	/* our own writes to own_efd, not drained */
	uint32_t kicked_gen;	/* peer generation we already kicked */
	uint32_t peer_gen;	/* peer generation zchan_peer_sleeps() saw */

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

	struct zchan_slot *slots;

	/* private io_uring for sleeping */
	struct io_uring ring;
	bool have_ring;
	bool use_ioctl_wait;	/* kernel: ZCHAN_IOC_WAIT instead of uring_cmd */
	bool ring_pending;	/* a wait sqe is in flight in the private ring */

	struct zchan_stats st;
};

/* ring.c: the data path and its readiness test */
int zchan_ready_mask(struct zchan *z, uint32_t need, bool slow);

/* wait.c: notifications and waits (below ring.c: it never calls ring.c) */
typedef int zchan_ready_fn(struct zchan *z, uint32_t need, bool slow);
void zchan_kick(struct zchan *z);
void zchan_notify_peer(struct zchan *z);
bool zchan_peer_sleeps(struct zchan *z);
void zchan_wake_peer(struct zchan *z);
int zchan_peer_gone(struct zchan *z, bool slow);
void zchan_arm(struct zchan *z);
void zchan_drain(struct zchan *z);
void zchan_self_kick(struct zchan *z);
int zchan_wait_until(struct zchan *z, zchan_ready_fn *ready, uint32_t need,
		     int64_t timeout_ns);

/* setup.c */
int zchan_validate_layout(const struct zchan_layout *l);

#endif /* ZCHAN_INT_H */
