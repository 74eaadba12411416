/* SPDX-License-Identifier: GPL-2.0 */
/*
 * zchan: internal definitions shared by the module's source files.
 */
#ifndef ZCHAN_PRIV_H
#define ZCHAN_PRIV_H

#include <linux/atomic.h>
#include <linux/fs.h>
#include <linux/list.h>
#include <linux/mm_types.h>
#include <linux/mutex.h>
#include <linux/poll.h>
#include <linux/refcount.h>
#include <linux/spinlock.h>
#include <linux/string.h>
#include <linux/types.h>
#include <linux/uidgid.h>
#include <linux/wait.h>
#include <linux/xarray.h>
#include <linux/zchan.h>

#include "compat.h"

struct ipc_namespace;
struct zchan_lane;
struct zchan_user;

/* Index of an end in zchan_channel.ends[]. */
enum zchan_end_id {
	ZCHAN_END_PROD = 0,
	ZCHAN_END_CONS = 1,
};

/* Life of an end: FREE until an fd takes it, OPEN while held, then GONE. */
enum zchan_end_state {
	ZCHAN_END_FREE = 0,
	ZCHAN_END_OPEN,
	ZCHAN_END_GONE,
};

/**
 * struct zchan_region - an array of order-0 pages mapped at one mmap offset
 * @pages: the pages, each zeroed and charged to the creator's memcg
 * @nr_pages: number of entries in @pages
 */
struct zchan_region {
	struct page **pages;
	unsigned long nr_pages;
};

/**
 * struct zchan_end - one end (producer or consumer) of a channel
 * @wq: poll, epoll and ZCHAN_IOC_WAIT sleepers of this end
 * @uring_waits: pending ZCHAN_URING_CMD_WAIT commands, under the channel lock
 * @holders: descriptor tables holding the end (zchan_hold.c), under the lock
 * @task: the task that last created, attached, waited on or kicked from
 *	the end (referenced), whose peer's ZCHAN_WAIT_SPIN watches it; under
 *	the lock, NULL once the end is released
 * @state: enum zchan_end_state, written under the channel lock
 * @id: which end it is
 * @lane: a producer's lane; NULL for the consumer, which has every lane
 */
struct zchan_end {
	wait_queue_head_t wq;
	struct list_head uring_waits;
	struct list_head holders;
	struct task_struct *task;
	int state;
	enum zchan_end_id id;
	struct zchan_lane *lane;
};

/**
 * struct zchan_ring_words - the shared words, found through the offsets of
 *	&struct zchan_layout (the one description of the ring) when the
 *	channel is created, as libzchan finds them
 * @tail: the producer's tail (zchan_layout.prod_tail)
 * @head_seen: the producer's head_seen
 * @alloc: the producer's alloc
 * @head: the consumer's head (zchan_layout.cons_head)
 * @read: the consumer's read
 * @lanes: the count of lanes, kept by the kernel in lane 0's consumer ring
 * @need_wakeup: each end's need_wakeup, by enum zchan_end_id
 * @closed: each end's closed, by enum zchan_end_id
 * @state: each end's run-state word (ZCHAN_RUN_*), by enum zchan_end_id
 *
 * Userspace writes them: read each once, never use one as an index.
 */
struct zchan_ring_words {
	u32 *tail;
	u32 *head_seen;
	u32 *alloc;
	u32 *head;
	u32 *read;
	u32 *lanes;
	u32 *need_wakeup[2];
	u32 *closed[2];
	u32 *state[2];
};

/**
 * struct zchan_lane - a producer end's ring and pool, and the consumer's
 *	ring for it: a 1:1 channel is one lane, lane 0
 * @prod: the producer end
 * @prod_ring: the producer ring region
 * @cons_ring: the consumer ring region
 * @pool: the data pool region
 * @w: the shared words in the two rings' first pages
 * @index: the lane's number, mapped at ZCHAN_OFF_LANE()
 * @dropped: the consumer dropped it (ZCHAN_LANE_DROP), under the lock
 */
struct zchan_lane {
	struct zchan_end prod;
	struct zchan_region prod_ring;
	struct zchan_region cons_ring;
	struct zchan_region pool;
	struct zchan_ring_words w;
	u32 index;
	bool dropped;
};

/*
 * The most lanes a channel makes in its life (ZCHAN_OFF_LANE() reaches
 * them): a lane is never reused, its pages go with the channel.
 */
#define ZCHAN_LANES_MAX		(1U << 14)

/**
 * struct zchan_channel - a one-way channel
 * @ref: files holding an end and VMAs mapping a region
 * @lock: protects the ends' state and uring wait lists, @producers and
 *	the publication of lanes
 * @cons: the consumer end
 * @lane0: the first lane, whose producer CREATE made
 * @lanes: lanes 1 and up, by index, stored before @nr_lanes counts them
 * @nr_lanes: lanes made, written (store-release) under @lock; lanes are
 *	freed only with the channel
 * @lane_mutex: serialises making lanes (allocation sleeps)
 * @producers: producer ends open, under @lock; once 0, no more are made
 * @layout: geometry and lane 0's mmap offsets, as returned to userspace
 * @mode: permission bits checked on attach
 * @uid: owner (creator's fsuid)
 * @gid: group (creator's fsgid)
 * @user: the per-user accounting entry charged for this channel
 * @ns: IPC namespace holding @name (referenced), NULL if anonymous
 * @name_node: entry in the name hash, under zchan_lock
 * @node: entry in zchan_channels, under zchan_lock
 * @id: sequence number, for debugfs
 * @kicks: kicks delivered, both directions
 * @waits: waits that slept
 * @publish_on_close: ZCHAN_CREATE_PUBLISH_ON_CLOSE was given
 * @max_producers: most producer ends live at once (CREATE's, at least 1)
 * @max_consumers: most consumer ends live at once (CREATE's, at least 1)
 * @xfers: SEND_PAGES transfers the consumer may still map (zchan_pages.c)
 * @next_xfer: next transfer id to try
 * @xfers_done: completed transfers not yet reaped, under @lock
 * @nr_xfers: transfers mappable, mapped or not yet reaped, under @lock
 * @name: NUL-terminated name, empty if anonymous
 */
struct zchan_channel {
	refcount_t ref;
	spinlock_t lock;
	struct zchan_end cons;
	struct zchan_lane lane0;
	struct xarray lanes;
	u32 nr_lanes;
	struct mutex lane_mutex;
	u32 producers;
	struct zchan_layout layout;
	umode_t mode;
	kuid_t uid;
	kgid_t gid;
	struct zchan_user *user;
	struct ipc_namespace *ns;
	struct hlist_node name_node;
	struct list_head node;
	u64 id;
	atomic64_t kicks;
	atomic64_t waits;
	bool publish_on_close;
	u32 max_producers;
	u32 max_consumers;
	struct xarray xfers;
	u32 next_xfer;
	struct list_head xfers_done;
	unsigned int nr_xfers;
	char name[ZCHAN_NAME_MAX];
};

/**
 * struct zchan_file - private data of an open /dev/zchan or peer fd
 * @lock: serialises CREATE/ATTACH/PEER_FD on this file
 * @chan: the channel, set once together with @role
 * @end: the file's end of @chan, set with @chan
 * @role: ZCHAN_ROLE_*, published with release semantics after @chan
 */
struct zchan_file {
	struct mutex lock;
	struct zchan_channel *chan;
	struct zchan_end *end;
	unsigned int role;
};

/* What this build of the module offers, in zchan_layout.features. */
#ifdef ZCHAN_HAVE_URING_CMD
#define ZCHAN_FEAT_URING_BITS	ZCHAN_FEAT_URING_CMD
#else
#define ZCHAN_FEAT_URING_BITS	0
#endif
#ifdef ZCHAN_HAVE_CMD_CANCELABLE
#define ZCHAN_FEAT_CANCEL_BITS	ZCHAN_FEAT_URING_CANCEL
#else
#define ZCHAN_FEAT_CANCEL_BITS	0
#endif
#define ZCHAN_FEATURES	(ZCHAN_FEAT_URING_BITS | ZCHAN_FEAT_CANCEL_BITS | \
			 ZCHAN_FEAT_USE | ZCHAN_FEAT_PUBLISH_ON_CLOSE | \
			 ZCHAN_FEAT_SEND_PAGES | ZCHAN_FEAT_WAIT_SPIN | \
			 ZCHAN_FEAT_RUN_STATE | ZCHAN_FEAT_FANIN)

/*
 * Global counters, shown in debugfs zchan/stats; not libzchan's
 * per-handle struct zchan_stats, whose name they had.
 */
struct zchan_dev_stats {
	atomic_t channels;
	atomic_t files;
	atomic64_t pages;
	atomic64_t created;
	atomic64_t pinned;
};

/* Lane @i, which the caller knows to be below chan->nr_lanes. */
static inline struct zchan_lane *zchan_lane(struct zchan_channel *chan,
					    u32 i)
{
	return i ? xa_load(&chan->lanes, i) : &chan->lane0;
}

/* Lanes made so far: each of lanes [0, n) is ready to use. */
static inline u32 zchan_nr_lanes(struct zchan_channel *chan)
{
	/* Pairs with the store-release in zchan_take_producer(). */
	return smp_load_acquire(&chan->nr_lanes);
}

/* For each lane made so far (@n: a u32 for the count). */
#define zchan_for_each_lane(chan, i, n, lane)				\
	for ((i) = 0, (n) = zchan_nr_lanes(chan);			\
	     (i) < (n) && ((lane) = zchan_lane(chan, i)); (i)++)

/* Reserved fields must be zero. */
static inline bool zchan_all_zero(const void *p, size_t len)
{
	return !memchr_inv(p, 0, len);
}

/* The channel of @zf and its role, or NULL if the file has no role yet. */
static inline struct zchan_channel *zchan_file_chan(struct zchan_file *zf,
						    unsigned int *role)
{
	/* Pairs with the store-release in zchan_file_set_role(). */
	*role = smp_load_acquire(&zf->role);
	return *role == ZCHAN_ROLE_NONE ? NULL : zf->chan;
}

/* The end of @zf, or NULL if the file has no role yet (as above). */
static inline struct zchan_end *zchan_file_end(struct zchan_file *zf,
					       struct zchan_channel **chan)
{
	unsigned int role;

	*chan = zchan_file_chan(zf, &role);
	return *chan ? zf->end : NULL;
}

/*
 * The files, each calling only those listed after it (zchan_main.c calls
 * them all; tracepoints are zchan_trace.c's):
 *
 * zchan_main.c		the device, file operations, ioctl dispatch
 * zchan_debugfs.c	debugfs zchan/ channels and stats
 * zchan_chanstat.c	debugfs zchan/chanstat, fdinfo
 * zchan_setup.c	CREATE, ATTACH, PEER_FD, INFO
 * zchan_file.c		a channel file's private data and role
 * zchan_mmap.c		every mapping, and its channel reference
 * zchan_hold.c		holders: who keeps an end open (ZCHAN_IOC_USE)
 * zchan_end.c		an end's state, its release and the peer's news
 * zchan_names.c	names, permissions, the list of live channels
 * zchan_wait.c		poll, WAIT, KICK, the io_uring commands
 * zchan_channel.c	the channel object: layout, pages, references
 * zchan_pages.c	SEND_PAGES transfers: pins and completions
 * zchan_limits.c	module parameters, per-user limits, counters
 */

/* zchan_setup.c */
long zchan_ioctl_create(struct zchan_file *zf, struct zchan_create __user *arg);
long zchan_ioctl_attach(struct zchan_file *zf, struct zchan_attach __user *arg);
long zchan_ioctl_peer_fd(struct file *file, struct zchan_peer_fd __user *arg);
long zchan_ioctl_info(struct zchan_file *zf, struct zchan_info __user *arg);
long zchan_ioctl_lane(struct zchan_file *zf, struct zchan_lane_info __user *arg);

/* zchan_file.c */
struct zchan_file *zchan_file_alloc(void);
void zchan_file_free(struct zchan_file *zf);
void zchan_file_set_role(struct zchan_file *zf, struct zchan_channel *chan,
			 struct zchan_end *end);

/* zchan_mmap.c */
int zchan_mmap(struct file *file, struct vm_area_struct *vma);

/* zchan_hold.c */
int zchan_hold_start(struct zchan_channel *chan, struct zchan_end *end,
		     struct file *file);
void zchan_hold_stop(struct zchan_channel *chan, struct zchan_end *end,
		     struct file *file, fl_owner_t files, bool always);
void zchan_hold_forget(struct zchan_channel *chan, struct zchan_end *end);
long zchan_ioctl_use(struct file *file, struct zchan_use __user *arg);

/* zchan_end.c */
int zchan_take_consumer(struct zchan_channel *chan);
struct zchan_end *zchan_take_producer(struct zchan_channel *chan,
				      struct zchan_end *caller);
void zchan_untake_consumer(struct zchan_channel *chan);
void zchan_end_release(struct zchan_channel *chan, struct zchan_end *end);
void zchan_lane_drop(struct zchan_channel *chan, struct zchan_lane *lane);

/* zchan_names.c */
extern struct mutex zchan_lock;
extern struct list_head zchan_channels;
int zchan_channel_link(struct zchan_channel *chan);
void zchan_channel_unlink(struct zchan_channel *chan);
struct zchan_channel *zchan_channel_find(const char *name);

/* zchan_wait.c */
__poll_t zchan_ready_mask(struct zchan_channel *chan, struct zchan_end *end);
__poll_t zchan_poll(struct file *file, poll_table *pt);
long zchan_ioctl_kick(struct zchan_file *zf, struct zchan_kick __user *arg);
long zchan_ioctl_wait(struct zchan_file *zf, struct zchan_wait __user *arg);
void zchan_kick(struct zchan_channel *chan, struct zchan_end *end);
void zchan_wake_end(struct zchan_channel *chan, struct zchan_end *end);
void zchan_wake_producers(struct zchan_channel *chan);
void zchan_cancel_waits(struct zchan_channel *chan, struct zchan_end *end,
			fl_owner_t owner);
void zchan_uring_exit(void);
int zchan_uring_pending_count(void);
#ifdef ZCHAN_HAVE_URING_CMD
struct io_uring_cmd;
int zchan_uring_cmd(struct io_uring_cmd *cmd, unsigned int issue_flags);
#endif

/* zchan_channel.c */
void zchan_fill_layout(struct zchan_layout *l, u64 pool_size, u32 entries,
		       u32 max_msg);
void zchan_lane_layout(struct zchan_channel *chan, u32 i,
		       struct zchan_layout *l);
struct zchan_channel *zchan_channel_alloc(struct zchan_create *c,
					  u64 pool_size);
struct zchan_lane *zchan_lane_alloc(struct zchan_channel *chan, u32 i);
void zchan_lane_free(struct zchan_channel *chan, struct zchan_lane *lane);
void zchan_channel_put(struct zchan_channel *chan);
void zchan_end_set_task(struct zchan_channel *chan, struct zchan_end *end,
			struct task_struct *task);
struct task_struct *zchan_peer_task_get(struct zchan_channel *chan,
					struct zchan_end *end);
u64 zchan_queued_bytes(struct zchan_channel *chan, struct zchan_lane *lane,
		       u32 head, u32 tail, u32 *msgs);

static inline void zchan_channel_get(struct zchan_channel *chan)
{
	refcount_inc(&chan->ref);
}

/* zchan_pages.c */
struct vm_fault;
void zchan_pages_init(struct zchan_channel *chan);
long zchan_ioctl_send_pages(struct zchan_file *zf,
			    struct zchan_send_pages __user *arg);
long zchan_ioctl_reap(struct zchan_file *zf, struct zchan_reap __user *arg);
void zchan_pages_abort(struct zchan_channel *chan);
void zchan_pages_free(struct zchan_channel *chan);
bool zchan_pages_reapable(struct zchan_channel *chan);
int zchan_pages_mmap(struct zchan_channel *chan, unsigned int role,
		     struct vm_area_struct *vma);
vm_fault_t zchan_pages_fault(struct vm_fault *vmf);
struct zchan_channel *zchan_pages_vm_open(struct vm_area_struct *vma);
struct zchan_channel *zchan_pages_vm_close(struct vm_area_struct *vma);

/* zchan_limits.c */
extern struct zchan_dev_stats zchan_stats;
extern unsigned int zchan_max_channels_per_user;
extern unsigned long zchan_max_pool_bytes;
extern unsigned long zchan_max_user_pool_bytes;
extern unsigned long zchan_max_user_pinned_bytes;
void zchan_limits_init(void);
struct zchan_user *zchan_user_charge(kuid_t uid, u64 bytes);
void zchan_user_uncharge(struct zchan_user *u, u64 bytes);
int zchan_user_grow(struct zchan_user *u, u64 bytes);
void zchan_user_shrink(struct zchan_user *u, u64 bytes);
int zchan_user_pin(struct zchan_user *u, unsigned long nr_pages);
void zchan_user_unpin(struct zchan_user *u, unsigned long nr_pages);

/* zchan_debugfs.c */
void zchan_debugfs_init(void);
void zchan_debugfs_exit(void);

/* zchan_chanstat.c */
struct dentry;
struct seq_file;
void zchan_chanstat_init(struct dentry *dir);
void zchan_show_fdinfo(struct seq_file *m, struct file *file);

#endif /* ZCHAN_PRIV_H */
