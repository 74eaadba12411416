// SPDX-License-Identifier: GPL-2.0
/*
 * zchan: waiting and kicking - poll, ZCHAN_IOC_WAIT, ZCHAN_IOC_KICK and the
 * io_uring commands.
 *
 * Every wait path arms the same way: join the end's waitqueue (or its list
 * of pending uring_cmds), set the end's need_wakeup word, full barrier, then
 * evaluate the ready condition.  The peer publishes, full barrier, then
 * kicks only if need_wakeup is set; one of the two always sees the other.
 */
#include <linux/file.h>
#include <linux/hrtimer.h>
#include <linux/ktime.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/sched/task.h>
#include <linux/workqueue.h>
#include <linux/uaccess.h>

/* Before the #ifdef below: compat.h says where struct io_uring_cmd is. */
#include "compat.h"
#ifdef ZCHAN_HAVE_IO_URING_CMD_H
#include <linux/io_uring/cmd.h>
#else
#include <linux/io_uring.h>
#endif

#include "zchan_priv.h"
#include "zchan_trace.h"

/*
 * Store @val in end @end's need_wakeup: a producer's in its lane, the
 * consumer's in every lane (each producer reads the word of its own).
 */
static void zchan_set_need_wakeup(struct zchan_channel *chan,
				  struct zchan_end *end, u32 val)
{
	struct zchan_lane *lane;
	u32 i, n;

	if (end->lane) {
		WRITE_ONCE(*end->lane->w.need_wakeup[ZCHAN_END_PROD], val);
		return;
	}
	zchan_for_each_lane(chan, i, n, lane)
		WRITE_ONCE(*lane->w.need_wakeup[ZCHAN_END_CONS], val);
}

static void zchan_kick_peer(struct zchan_channel *chan, struct zchan_end *end);

/* Announce that @end is about to sleep (see the comment at the top). */
static void zchan_arm(struct zchan_channel *chan, struct zchan_end *end)
{
	zchan_set_need_wakeup(chan, end, 1);
	/* Order the flag before the loads of the condition (Dekker). */
	smp_mb();
}

/**
 * zchan_ready_mask - what @end could do now
 * @chan: the channel
 * @end: the end
 *
 * Shared words are read once and only compared, never used as an index.
 *
 * Return: EPOLLIN (consumer: a message is published and not yet taken, in
 * any lane), EPOLLOUT (producer: the consumer released slots of its lane
 * since the producer last looked, or the lane is drained), EPOLLHUP once
 * the peer is gone (for the consumer: every producer end, and no more can
 * come; with EPOLLERR for a producer, also when its lane was dropped),
 * or 0.  A dropped lane makes the consumer ready no more.
 */
__poll_t zchan_ready_mask(struct zchan_channel *chan, struct zchan_end *end)
{
	struct zchan_lane *lane = end->lane;
	__poll_t mask = 0;
	u32 i, n;

	if (!lane) {
		zchan_for_each_lane(chan, i, n, lane) {
			if (READ_ONCE(lane->dropped))
				continue;
			if (READ_ONCE(*lane->w.tail) != READ_ONCE(*lane->w.read)) {
				mask |= EPOLLIN | EPOLLRDNORM;
				break;
			}
		}
		if (!READ_ONCE(chan->producers))
			mask |= EPOLLHUP;
	} else {
		u32 head = READ_ONCE(*lane->w.head);

		if (head != READ_ONCE(*lane->w.head_seen) ||
		    READ_ONCE(*lane->w.tail) == head)
			mask |= EPOLLOUT | EPOLLWRNORM;
		if (READ_ONCE(chan->cons.state) == ZCHAN_END_GONE ||
		    READ_ONCE(lane->dropped))
			mask |= EPOLLERR | EPOLLHUP;
	}
	return mask;
}

__poll_t zchan_poll(struct file *file, poll_table *pt)
{
	struct zchan_channel *chan;
	struct zchan_end *end;
	__poll_t mask;

	end = zchan_file_end(file->private_data, &chan);
	if (!end)
		return EPOLLERR;
	poll_wait(file, &end->wq, pt);
	zchan_arm(chan, end);
	mask = zchan_ready_mask(chan, end);
	if (!mask && pt && pt->_qproc)
		atomic64_inc(&chan->waits);
	if (end->lane && zchan_pages_reapable(chan))
		mask |= EPOLLPRI;
	return mask;
}

#ifdef ZCHAN_HAVE_URING_CMD

#ifndef ZCHAN_HAVE_CMD_CANCELABLE
struct zchan_watch;
#endif

/*
 * Pending ZCHAN_URING_CMD_WAITs live in the command's pdu: a list entry on
 * the end, the file table that issued it (see zchan_cancel_waits()), and
 * once unlinked, the result; without cancelable commands, also its entry
 * on the watchdog's list.
 */
struct zchan_uring_pdu {
	struct list_head node;
	union {
		fl_owner_t owner;	/* while queued */
		int res;		/* once unlinked */
	};
#ifndef ZCHAN_HAVE_CMD_CANCELABLE
	struct zchan_watch *watch;
#endif
};

#if defined(ZCHAN_CMD_DONE_RES2_FLAGS)
#define zchan_cmd_done(cmd, res, fl)	io_uring_cmd_done(cmd, res, 0, fl)
#elif defined(ZCHAN_CMD_DONE_FLAGS)
#define zchan_cmd_done(cmd, res, fl)	io_uring_cmd_done(cmd, res, fl)
#else
#define zchan_cmd_done(cmd, res, fl)	io_uring_cmd_done(cmd, res, 0)
#endif

#ifdef ZCHAN_HAVE_SQE_CMD
#define zchan_cmd_area(cmd)	io_uring_sqe_cmd((cmd)->sqe)
#else
#define zchan_cmd_area(cmd)	((cmd)->cmd)
#endif

/* Queued uring WAITs, all channels: the watchdog runs while there are any. */
static atomic_t zchan_uring_pending = ATOMIC_INIT(0);

int zchan_uring_pending_count(void)
{
	return atomic_read(&zchan_uring_pending);
}

static struct zchan_uring_pdu *zchan_pdu(struct io_uring_cmd *cmd)
{
	BUILD_BUG_ON(sizeof(struct zchan_uring_pdu) > sizeof(cmd->pdu));
	return (struct zchan_uring_pdu *)cmd->pdu;
}

static struct io_uring_cmd *zchan_pdu_cmd(struct zchan_uring_pdu *pdu)
{
	return container_of((void *)pdu, struct io_uring_cmd, pdu);
}

#if defined(ZCHAN_TW_CB_TWREQ)
static void zchan_uring_tw(struct io_tw_req req, io_tw_token_t tw)
{
	struct io_uring_cmd *cmd = io_uring_cmd_from_tw(req);

	zchan_cmd_done(cmd, zchan_pdu(cmd)->res,
		       IO_URING_CMD_TASK_WORK_ISSUE_FLAGS);
}
#elif defined(ZCHAN_TW_CB_FLAGS)
static void zchan_uring_tw(struct io_uring_cmd *cmd, unsigned int issue_flags)
{
	zchan_cmd_done(cmd, zchan_pdu(cmd)->res, issue_flags);
}
#else
static void zchan_uring_tw(struct io_uring_cmd *cmd)
{
	zchan_cmd_done(cmd, zchan_pdu(cmd)->res, 0);
}
#endif

static void zchan_unwatch(struct zchan_uring_pdu *pdu);

/* Forget a wait just unlinked from its end (outside the channel lock). */
static void zchan_uring_unqueued(struct zchan_uring_pdu *pdu, int res)
{
	zchan_unwatch(pdu);
	pdu->res = res;
	atomic_dec(&zchan_uring_pending);
}

/* Complete waits already unlinked from their end, from task context. */
static void zchan_complete_waits(struct list_head *list, int res)
{
	struct zchan_uring_pdu *pdu, *tmp;

	list_for_each_entry_safe(pdu, tmp, list, node) {
		trace_zchan_wait_end(zchan_pdu_cmd(pdu)->file->private_data,
				     ZCHAN_TRACE_WAIT_URING, pdu, res);
		list_del_init(&pdu->node);
		zchan_uring_unqueued(pdu, res);
		io_uring_cmd_complete_in_task(zchan_pdu_cmd(pdu), zchan_uring_tw);
	}
}

/*
 * Complete end @e's pending uring WAITs if it is ready.  A kick may have
 * cleared need_wakeup while the condition does not hold yet: re-arm for
 * the waits that stay pending.
 */
static void zchan_uring_wake(struct zchan_channel *chan, struct zchan_end *end)
{
	LIST_HEAD(done);
	__poll_t mask;

	spin_lock(&chan->lock);
	if (list_empty(&end->uring_waits)) {
		spin_unlock(&chan->lock);
		return;
	}
	zchan_arm(chan, end);
	mask = zchan_ready_mask(chan, end);
	if (mask)
		list_splice_init(&end->uring_waits, &done);
	spin_unlock(&chan->lock);
	zchan_complete_waits(&done, (__force int)mask);
}

void zchan_cancel_waits(struct zchan_channel *chan, struct zchan_end *end,
			fl_owner_t owner)
{
	struct zchan_uring_pdu *pdu, *tmp;
	LIST_HEAD(done);

	spin_lock(&chan->lock);
	list_for_each_entry_safe(pdu, tmp, &end->uring_waits, node)
		if (pdu->owner == owner)
			list_move_tail(&pdu->node, &done);
	spin_unlock(&chan->lock);
	zchan_complete_waits(&done, -ECANCELED);
}

#ifdef ZCHAN_HAVE_CMD_CANCELABLE
/*
 * io_uring is tearing the ring or the task down (6.7+): drop a WAIT now.
 * Only a WAIT still on its end's list is ours to complete; one a waker
 * already took (it may sit on that waker's private list) completes from
 * task work, and io_uring retries the cancel until it has.
 */
static void zchan_uring_cancel(struct zchan_channel *chan, struct zchan_end *end,
			       struct io_uring_cmd *cmd,
			       unsigned int issue_flags)
{
	struct zchan_uring_pdu *pdu = zchan_pdu(cmd), *pos;
	bool queued = false;

	spin_lock(&chan->lock);
	list_for_each_entry(pos, &end->uring_waits, node) {
		if (pos == pdu) {
			list_del_init(&pdu->node);
			queued = true;
			break;
		}
	}
	spin_unlock(&chan->lock);
	if (queued) {
		trace_zchan_wait_end(cmd->file->private_data,
				     ZCHAN_TRACE_WAIT_URING, pdu, -ECANCELED);
		zchan_uring_unqueued(pdu, -ECANCELED);
		zchan_cmd_done(cmd, -ECANCELED, issue_flags);
	}
}

static int zchan_watch(struct io_uring_cmd *cmd)
{
	return 0;
}

static void zchan_unwatch(struct zchan_uring_pdu *pdu)
{
}

static void zchan_watchdog_kick(void)
{
}

void zchan_uring_exit(void)
{
}
#else
/*
 * Without cancelable uring_cmds, io_uring waits for our pending WAITs in
 * places ->flush does not reach: execve() (io_uring_task_cancel() runs
 * before any file is closed) and the teardown of a ring whose registered
 * (fixed) file is the only reference to the channel.  While WAITs are
 * queued, look a few times a second for issuers that are exiting or in
 * execve() and complete their WAITs with -ECANCELED, as io_uring would.
 * The watchdog keeps its own list of the pending WAITs and their issuers.
 */
#define ZCHAN_WATCHDOG_INTERVAL	(HZ / 5)

static void zchan_watchdog_fn(struct work_struct *work);
static DECLARE_DELAYED_WORK(zchan_watchdog, zchan_watchdog_fn);

/**
 * struct zchan_watch - a pending uring WAIT, as the watchdog sees it
 * @node: entry in zchan_watched, under zchan_watch_lock
 * @task: the issuing task (referenced)
 * @cmd: the command; on the list only while it is pending
 */
struct zchan_watch {
	struct list_head node;
	struct task_struct *task;
	struct io_uring_cmd *cmd;
};

/* Taken before a channel's lock, never inside one. */
static DEFINE_SPINLOCK(zchan_watch_lock);
static LIST_HEAD(zchan_watched);

/* Before the WAIT is queued on its end: a waker may complete it then. */
static int zchan_watch(struct io_uring_cmd *cmd)
{
	struct zchan_watch *w = kmalloc(sizeof(*w), GFP_KERNEL_ACCOUNT);

	if (!w)
		return -ENOMEM;
	w->task = get_task_struct(current);
	w->cmd = cmd;
	zchan_pdu(cmd)->watch = w;
	spin_lock(&zchan_watch_lock);
	list_add_tail(&w->node, &zchan_watched);
	spin_unlock(&zchan_watch_lock);
	return 0;
}

static void zchan_unwatch(struct zchan_uring_pdu *pdu)
{
	struct zchan_watch *w = pdu->watch;

	spin_lock(&zchan_watch_lock);
	list_del(&w->node);
	spin_unlock(&zchan_watch_lock);
	put_task_struct(w->task);
	kfree(w);
	pdu->watch = NULL;
}

/*
 * The issuer is going: exiting, or its thread group is (an SQPOLL thread
 * waits for its requests before it gets as far as PF_EXITING, and holds
 * the file table, so ->flush never runs), or it is in execve().
 */
static bool zchan_task_leaving(struct task_struct *task)
{
	if (READ_ONCE(task->flags) & PF_EXITING)
		return true;
	if (READ_ONCE(task->signal->flags) & SIGNAL_GROUP_EXIT)
		return true;
#ifdef ZCHAN_HAVE_TASK_IN_EXECVE
	return task->in_execve;
#else
	return mutex_is_locked(&task->signal->cred_guard_mutex);
#endif
}

/*
 * Take @pdu off its end's list if it is still there (a waker may have
 * moved it to its own list, and completes it).
 */
static void zchan_watch_unqueue(struct zchan_uring_pdu *pdu,
				struct list_head *done)
{
	struct io_uring_cmd *cmd = zchan_pdu_cmd(pdu);
	struct zchan_uring_pdu *pos;
	struct zchan_channel *chan;
	struct zchan_end *end;

	/* A queued WAIT's file has a role: it was issued on a channel. */
	end = zchan_file_end(cmd->file->private_data, &chan);
	spin_lock(&chan->lock);
	list_for_each_entry(pos, &end->uring_waits, node) {
		if (pos == pdu) {
			list_move_tail(&pdu->node, done);
			break;
		}
	}
	spin_unlock(&chan->lock);
}

static void zchan_watchdog_fn(struct work_struct *work)
{
	struct zchan_watch *w;
	LIST_HEAD(done);

	spin_lock(&zchan_watch_lock);
	list_for_each_entry(w, &zchan_watched, node)
		if (zchan_task_leaving(w->task))
			zchan_watch_unqueue(zchan_pdu(w->cmd), &done);
	spin_unlock(&zchan_watch_lock);
	zchan_complete_waits(&done, -ECANCELED);

	if (atomic_read(&zchan_uring_pending))
		schedule_delayed_work(&zchan_watchdog, ZCHAN_WATCHDOG_INTERVAL);
}

static void zchan_watchdog_kick(void)
{
	schedule_delayed_work(&zchan_watchdog, ZCHAN_WATCHDOG_INTERVAL);
}

void zchan_uring_exit(void)
{
	cancel_delayed_work_sync(&zchan_watchdog);
}
#endif

static int zchan_uring_wait(struct zchan_channel *chan, struct zchan_end *end,
			    struct io_uring_cmd *cmd, unsigned int issue_flags)
{
	struct zchan_uring_pdu *pdu = zchan_pdu(cmd);
	__poll_t mask;
	int ret;

	zchan_end_set_task(chan, end, current);
	INIT_LIST_HEAD(&pdu->node);
	pdu->owner = current->files;
	ret = zchan_watch(cmd);
	if (ret)
		return ret;
	atomic_inc(&zchan_uring_pending);
#ifdef ZCHAN_HAVE_CMD_CANCELABLE
	/* Before it is queued: a waker may complete it from then on. */
	io_uring_cmd_mark_cancelable(cmd, issue_flags);
#endif
	spin_lock(&chan->lock);
	zchan_arm(chan, end);
	mask = zchan_ready_mask(chan, end);
	if (!mask)
		list_add_tail(&pdu->node, &end->uring_waits);
	spin_unlock(&chan->lock);

	if (mask) {
		zchan_uring_unqueued(pdu, (__force int)mask);
		/* Complete inline: a positive return would count as failure. */
		zchan_cmd_done(cmd, (__force int)mask, issue_flags);
		return -EIOCBQUEUED;
	}
	atomic64_inc(&chan->waits);
	trace_zchan_wait_begin(cmd->file->private_data, ZCHAN_TRACE_WAIT_URING, pdu);
	zchan_watchdog_kick();
	return -EIOCBQUEUED;
}

int zchan_uring_cmd(struct io_uring_cmd *cmd, unsigned int issue_flags)
{
	const struct zchan_uring_cmd *area;
	struct zchan_channel *chan;
	struct zchan_end *end;

	end = zchan_file_end(cmd->file->private_data, &chan);
#ifdef ZCHAN_HAVE_CMD_CANCELABLE
	/* Only WAITs issued on a channel are marked cancelable. */
	if (issue_flags & IO_URING_F_CANCEL) {
		zchan_uring_cancel(chan, end, cmd, issue_flags);
		return 0;
	}
#endif
	if (!end)
		return -EINVAL;
	/* Not before: a cancel may come when the sqe is long gone. */
	area = zchan_cmd_area(cmd);
	/* The command area may be shared memory: read each word once. */
	if (READ_ONCE(area->flags) || READ_ONCE(area->resv[0]) ||
	    READ_ONCE(area->resv[1]) || READ_ONCE(area->resv[2]))
		return -EINVAL;

	switch (cmd->cmd_op) {
	case ZCHAN_URING_CMD_WAIT:
		return zchan_uring_wait(chan, end, cmd, issue_flags);
	case ZCHAN_URING_CMD_KICK:
		zchan_end_set_task(chan, end, current);
		zchan_kick_peer(chan, end);
		return 0;
	}
	/* Like an unknown ioctl; also the bare 0x01/0x02 of old headers. */
	return -ENOTTY;
}

#else /* !ZCHAN_HAVE_URING_CMD */

static void zchan_uring_wake(struct zchan_channel *chan, struct zchan_end *end)
{
}

void zchan_cancel_waits(struct zchan_channel *chan, struct zchan_end *end,
			fl_owner_t owner)
{
}

void zchan_uring_exit(void)
{
}

int zchan_uring_pending_count(void)
{
	return 0;
}

#endif /* ZCHAN_HAVE_URING_CMD */

/* The run-state words of @end: a producer's one, the consumer's per lane. */
static void zchan_store_run_state(struct zchan_channel *chan,
				  struct zchan_end *end, u32 word, bool woken)
{
	struct zchan_lane *lane = end->lane;
	u32 i, n, *w, old;

	if (lane) {
		i = 0;
		n = 1;
	} else {
		i = 0;
		n = zchan_nr_lanes(chan);
	}
	for (; i < n; i++) {
		if (!end->lane)
			lane = zchan_lane(chan, i);
		w = lane->w.state[end->id];
		if (woken) {
			/* A kick wakes the end: it runs again soon. */
			old = READ_ONCE(*w);
			if (ZCHAN_RUN_STATE(old) != ZCHAN_RUN_SLEEPING)
				continue;
			word = (old & ~ZCHAN_RUN_STATE_MASK) | ZCHAN_RUN_RUNNING;
		}
		WRITE_ONCE(*w, word);
	}
}

/*
 * ZCHAN_FEAT_RUN_STATE: store in @end's run-state word what the kernel
 * sees of the calling task, @state and its CPU.  The word is the end's
 * own, in shared memory: written, never acted on.
 */
static void zchan_set_run_state(struct zchan_channel *chan,
				struct zchan_end *end, u32 state)
{
	u32 cpu = raw_smp_processor_id() + 1;

	if (cpu > U16_MAX)
		cpu = 0;	/* unknown */
	zchan_store_run_state(chan, end, state | cpu << ZCHAN_RUN_CPU_SHIFT,
			      false);
}

/**
 * zchan_kick - deliver a kick to @end
 * @chan: the channel
 * @end: the end to wake
 *
 * Clear the end's need_wakeup (every waiter re-arms before it sleeps
 * again), wake its sleepers and complete its ready uring WAITs.
 */
void zchan_kick(struct zchan_channel *chan, struct zchan_end *end)
{
	struct zchan_lane *lane = end->lane ? end->lane : &chan->lane0;

	trace_zchan_kick(chan, end->id,
			 READ_ONCE(*lane->w.need_wakeup[end->id]));
	atomic64_inc(&chan->kicks);
	zchan_store_run_state(chan, end, 0, true);
	zchan_set_need_wakeup(chan, end, 0);
	wake_up_interruptible_poll(&end->wq, end->lane ? EPOLLOUT : EPOLLIN);
	zchan_uring_wake(chan, end);
}

/*
 * The kick of @end: a producer's wakes the consumer; the consumer's wakes
 * the producer of every lane whose producer is open.
 */
static void zchan_kick_peer(struct zchan_channel *chan, struct zchan_end *end)
{
	struct zchan_lane *lane;
	u32 i, n;

	if (end->lane) {
		zchan_kick(chan, &chan->cons);
		return;
	}
	zchan_for_each_lane(chan, i, n, lane)
		if (n == 1 || READ_ONCE(lane->prod.state) == ZCHAN_END_OPEN)
			zchan_kick(chan, &lane->prod);
}

/* The peer of @end is gone (or, for the consumer, news): wake its waiters. */
void zchan_wake_end(struct zchan_channel *chan, struct zchan_end *end)
{
	wake_up_interruptible_poll(&end->wq,
				   EPOLLHUP | EPOLLERR | EPOLLIN | EPOLLOUT);
	zchan_uring_wake(chan, end);
}

/* The consumer is gone: wake the waiters of every producer. */
void zchan_wake_producers(struct zchan_channel *chan)
{
	struct zchan_lane *lane;
	u32 i, n;

	zchan_for_each_lane(chan, i, n, lane)
		zchan_wake_end(chan, &lane->prod);
}

long zchan_ioctl_kick(struct zchan_file *zf, struct zchan_kick __user *arg)
{
	struct zchan_channel *chan;
	struct zchan_end *end;
	struct zchan_kick k;

	if (copy_from_user(&k, arg, sizeof(k)))
		return -EFAULT;
	if (k.flags & ~ZCHAN_KICK_LANE ||
	    (!(k.flags & ZCHAN_KICK_LANE) && k.lane) ||
	    !zchan_all_zero(k.reserved, sizeof(k.reserved)))
		return -EINVAL;
	end = zchan_file_end(zf, &chan);
	if (!end)
		return -EINVAL;
	zchan_end_set_task(chan, end, current);
	if (!(k.flags & ZCHAN_KICK_LANE)) {
		zchan_kick_peer(chan, end);
		return 0;
	}
	/* Only the consumer names a lane, one it was told of. */
	if (end->lane || k.lane >= zchan_nr_lanes(chan))
		return -EINVAL;
	zchan_kick(chan, &zchan_lane(chan, k.lane)->prod);
	return 0;
}

/*
 * ZCHAN_WAIT_SPIN: watch end @e's ready condition until @spin_ns pass,
 * for as long as the peer's task runs on a CPU (owner_on_cpu(), as
 * mutex_spin_on_owner() does): a peer that is not running cannot publish,
 * and spinning would only keep it off this CPU.  need_wakeup stays clear,
 * so a peer that publishes meanwhile does not kick.
 */
static __poll_t zchan_spin(struct zchan_channel *chan, struct zchan_end *end,
			   u64 spin_ns)
{
	struct task_struct *peer = zchan_peer_task_get(chan, end);
	__poll_t mask = 0;
	u64 until;

	if (!peer)
		return 0;
	if (peer == current)
		goto out;
	until = ktime_get_ns() + spin_ns;
	while (!(mask = zchan_ready_mask(chan, end))) {
		if (!owner_on_cpu(peer) || need_resched() ||
		    signal_pending(current) || ktime_get_ns() >= until)
			break;
		cpu_relax();
	}
out:
	put_task_struct(peer);
	return mask;
}

long zchan_ioctl_wait(struct zchan_file *zf, struct zchan_wait __user *arg)
{
	struct zchan_channel *chan;
	struct zchan_wait w;
	struct zchan_end *end;
	bool timed, slept = false, expired = false;
	ktime_t deadline = 0;
	__poll_t mask;
	DEFINE_WAIT(wait);
	long ret = 0;

	if (copy_from_user(&w, arg, sizeof(w)))
		return -EFAULT;
	if (w.flags & ~(ZCHAN_WAIT_TIMEOUT | ZCHAN_WAIT_SPIN) || w.resv)
		return -EINVAL;
	if (w.flags & ZCHAN_WAIT_SPIN ? w.spin_ns > ZCHAN_WAIT_SPIN_MAX_NS :
					 w.spin_ns)
		return -EINVAL;
	end = zchan_file_end(zf, &chan);
	if (!end)
		return -EINVAL;
	timed = w.flags & ZCHAN_WAIT_TIMEOUT;
	if (timed)
		deadline = ktime_add_safe(ktime_get(),
					  ns_to_ktime(min_t(u64, w.timeout_ns,
							    KTIME_MAX)));
	zchan_end_set_task(chan, end, current);
	zchan_set_run_state(chan, end, ZCHAN_RUN_RUNNING);
	if (w.spin_ns) {
		if (timed)
			w.spin_ns = min_t(u64, w.spin_ns, w.timeout_ns);
		mask = zchan_spin(chan, end, w.spin_ns);
		if (mask)
			goto out;
	}

	for (;;) {
		prepare_to_wait(&end->wq, &wait, TASK_INTERRUPTIBLE);
		zchan_arm(chan, end);
		mask = zchan_ready_mask(chan, end);
		if (mask)
			break;
		if (signal_pending(current)) {
			ret = timed ? -EINTR : -ERESTARTSYS;
			break;
		}
		if (expired) {
			ret = -ETIMEDOUT;
			break;
		}
		if (!slept) {
			atomic64_inc(&chan->waits);
			trace_zchan_wait_begin(zf, ZCHAN_TRACE_WAIT_IOCTL, &wait);
			slept = true;
		}
		zchan_set_run_state(chan, end, ZCHAN_RUN_SLEEPING);
		if (!timed)
			schedule();
		else if (!schedule_hrtimeout(&deadline, HRTIMER_MODE_ABS))
			expired = true;
	}
	finish_wait(&end->wq, &wait);
	if (slept)
		zchan_set_run_state(chan, end, ZCHAN_RUN_RUNNING);
	if (slept)
		trace_zchan_wait_end(zf, ZCHAN_TRACE_WAIT_IOCTL, &wait,
				     ret ? (int)ret : (__force int)mask);
	if (ret)
		return ret;
out:
	if (put_user((__force u32)mask, &arg->revents))
		return -EFAULT;
	return 0;
}
