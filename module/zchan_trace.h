/* SPDX-License-Identifier: GPL-2.0 */
/*
 * zchan: tracepoints (events/zchan/ in tracefs).
 *
 * The records are read by zchan-top and zchan-lat through classic
 * "tracepoint/zchan/..." BPF programs, which see each record as laid out in
 * events/zchan/NAME/format: fields are ordered widest first so the layout
 * has no padding, and the tools check every offset they use against the
 * format file.  Changing a field's type or order is an ABI change for them.
 *
 * Roles are ZCHAN_ROLE_* of the UAPI; wait kinds, wait outcomes and limits
 * are the ZCHAN_TRACE_* values below (also known to tools/zchan-lat).
 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM zchan

#ifndef ZCHAN_TRACE_VALUES
#define ZCHAN_TRACE_VALUES

#include <linux/cred.h>
#include <linux/sched.h>

#include "zchan_priv.h"

/* How a wait sleeps: ZCHAN_IOC_WAIT, or a queued ZCHAN_URING_CMD_WAIT. */
#define ZCHAN_TRACE_WAIT_IOCTL		1
#define ZCHAN_TRACE_WAIT_URING		2

/* Why a wait ended. */
#define ZCHAN_TRACE_END_DATA		1	/* a message to read */
#define ZCHAN_TRACE_END_ROOM		2	/* slots released */
#define ZCHAN_TRACE_END_HANGUP		3	/* the peer end is gone */
#define ZCHAN_TRACE_END_TIMEOUT		4
#define ZCHAN_TRACE_END_SIGNAL		5
#define ZCHAN_TRACE_END_CANCEL		6	/* uring WAIT cancelled */

/* Which limit refused a CREATE (module parameters). */
#define ZCHAN_TRACE_LIMIT_POOL		1	/* max_pool_bytes */
#define ZCHAN_TRACE_LIMIT_USER_POOL	2	/* max_user_pool_bytes */
#define ZCHAN_TRACE_LIMIT_CHANNELS	3	/* max_channels_per_user */

/* @res: a positive poll mask, or -errno, as the waiter returns it. */
static inline unsigned int zchan_trace_end_reason(int res)
{
	if (res == -ETIMEDOUT)
		return ZCHAN_TRACE_END_TIMEOUT;
	if (res == -EINTR || res == -ERESTARTSYS)
		return ZCHAN_TRACE_END_SIGNAL;
	if (res < 0)
		return ZCHAN_TRACE_END_CANCEL;
	if (res & (__force int)(EPOLLHUP | EPOLLERR))
		return ZCHAN_TRACE_END_HANGUP;
	if (res & (__force int)EPOLLIN)
		return ZCHAN_TRACE_END_DATA;
	return ZCHAN_TRACE_END_ROOM;
}

static inline unsigned int zchan_trace_end_role(int end)
{
	return end == ZCHAN_END_PROD ? ZCHAN_ROLE_PRODUCER : ZCHAN_ROLE_CONSUMER;
}
#endif /* ZCHAN_TRACE_VALUES */

#if !defined(ZCHAN_TRACE_H) || defined(TRACE_HEADER_MULTI_READ)
#define ZCHAN_TRACE_H

#include <linux/tracepoint.h>

#define zchan_show_role(role)						\
	__print_symbolic(role,						\
			 { ZCHAN_ROLE_PRODUCER, "producer" },		\
			 { ZCHAN_ROLE_CONSUMER, "consumer" })

#define zchan_show_kind(kind)						\
	__print_symbolic(kind,						\
			 { ZCHAN_TRACE_WAIT_IOCTL, "ioctl" },		\
			 { ZCHAN_TRACE_WAIT_URING, "uring" })

#define zchan_show_reason(reason)					\
	__print_symbolic(reason,					\
			 { ZCHAN_TRACE_END_DATA, "data" },		\
			 { ZCHAN_TRACE_END_ROOM, "room" },		\
			 { ZCHAN_TRACE_END_HANGUP, "hangup" },		\
			 { ZCHAN_TRACE_END_TIMEOUT, "timeout" },	\
			 { ZCHAN_TRACE_END_SIGNAL, "signal" },		\
			 { ZCHAN_TRACE_END_CANCEL, "cancel" })

#define zchan_show_limit(limit)						\
	__print_symbolic(limit,						\
			 { ZCHAN_TRACE_LIMIT_POOL, "max_pool_bytes" },	\
			 { ZCHAN_TRACE_LIMIT_USER_POOL, "max_user_pool_bytes" }, \
			 { ZCHAN_TRACE_LIMIT_CHANNELS, "max_channels_per_user" })

/**
 * zchan_create - a channel was created; the caller is its producer
 * @chan: the new channel (id, name and geometry are recorded, and the
 *	creating process's tgid and fsuid)
 */
TRACE_EVENT(zchan_create,
	TP_PROTO(const struct zchan_channel *chan),
	TP_ARGS(chan),
	TP_STRUCT__entry(
		__field(u64, id)
		__field(u64, pool_size)
		__field(u32, ring_entries)
		__field(u32, max_msg)
		__field(u32, uid)
		__field(s32, tgid)
		__array(char, name, ZCHAN_NAME_MAX)
	),
	TP_fast_assign(
		__entry->id = chan->id;
		__entry->pool_size = chan->layout.pool_size;
		__entry->ring_entries = chan->layout.ring_entries;
		__entry->max_msg = chan->layout.max_msg;
		__entry->uid = from_kuid(&init_user_ns, chan->uid);
		__entry->tgid = current->tgid;
		memcpy(__entry->name, chan->name, ZCHAN_NAME_MAX);
	),
	TP_printk("id=%llu name=%s pool_size=%llu ring_entries=%u max_msg=%u uid=%u tgid=%d",
		  __entry->id, __entry->name, __entry->pool_size,
		  __entry->ring_entries, __entry->max_msg, __entry->uid,
		  __entry->tgid)
);

/* The consumer end was taken: by name (attach) or as a new fd (peer_fd). */
DECLARE_EVENT_CLASS(zchan_consumer_class,
	TP_PROTO(const struct zchan_channel *chan),
	TP_ARGS(chan),
	TP_STRUCT__entry(
		__field(u64, id)
		__field(s32, tgid)
		__field(u32, resv)
		__array(char, name, ZCHAN_NAME_MAX)
	),
	TP_fast_assign(
		__entry->id = chan->id;
		__entry->tgid = current->tgid;
		__entry->resv = 0;
		memcpy(__entry->name, chan->name, ZCHAN_NAME_MAX);
	),
	TP_printk("id=%llu name=%s tgid=%d", __entry->id, __entry->name,
		  __entry->tgid)
);

/**
 * zchan_attach - ZCHAN_IOC_ATTACH made the caller the consumer
 * @chan: the channel
 */
DEFINE_EVENT(zchan_consumer_class, zchan_attach,
	TP_PROTO(const struct zchan_channel *chan),
	TP_ARGS(chan)
);

/**
 * zchan_peer_fd - the producer made a consumer fd (ZCHAN_IOC_PEER_FD);
 *	@tgid is the producer's, the fd goes wherever it is passed
 * @chan: the channel
 */
DEFINE_EVENT(zchan_consumer_class, zchan_peer_fd,
	TP_PROTO(const struct zchan_channel *chan),
	TP_ARGS(chan)
);

/**
 * zchan_release - the last file of an end is gone (close or death of its
 *	holder: @exiting is set when the releasing task is exiting); if
 *	@peer_open, the peer end is woken with a hang-up
 * @chan: the channel
 * @end: enum zchan_end_id of the released end
 * @peer_open: the other end is still held
 */
TRACE_EVENT(zchan_release,
	TP_PROTO(const struct zchan_channel *chan, int end, bool peer_open),
	TP_ARGS(chan, end, peer_open),
	TP_STRUCT__entry(
		__field(u64, id)
		__field(u32, role)
		__field(s32, tgid)
		__field(u32, peer_open)
		__field(u32, exiting)
		__array(char, name, ZCHAN_NAME_MAX)
	),
	TP_fast_assign(
		__entry->id = chan->id;
		__entry->role = zchan_trace_end_role(end);
		__entry->tgid = current->tgid;
		__entry->peer_open = peer_open;
		__entry->exiting = !!(current->flags & PF_EXITING);
		memcpy(__entry->name, chan->name, ZCHAN_NAME_MAX);
	),
	TP_printk("id=%llu name=%s role=%s tgid=%d peer_open=%u exiting=%u",
		  __entry->id, __entry->name, zchan_show_role(__entry->role),
		  __entry->tgid, __entry->peer_open, __entry->exiting)
);

/**
 * zchan_wait_begin - a waiter is about to sleep (ZCHAN_IOC_WAIT) or was
 *	queued (ZCHAN_URING_CMD_WAIT); poll and epoll sleep in the poll core
 *	and are only counted in the channel's waits
 * @zf: the waiter's file
 * @kind: ZCHAN_TRACE_WAIT_*
 * @cookie: identifies this wait until its zchan_wait_end (printed hashed)
 */
TRACE_EVENT(zchan_wait_begin,
	TP_PROTO(const struct zchan_file *zf, unsigned int kind,
		 const void *cookie),
	TP_ARGS(zf, kind, cookie),
	TP_STRUCT__entry(
		__field(u64, id)
		__field(u64, cookie)
		__field(u32, role)
		__field(u32, kind)
	),
	TP_fast_assign(
		__entry->id = zf->chan->id;
		__entry->cookie = (unsigned long)cookie;
		__entry->role = zf->role;
		__entry->kind = kind;
	),
	TP_printk("id=%llu role=%s kind=%s cookie=%p", __entry->id,
		  zchan_show_role(__entry->role), zchan_show_kind(__entry->kind),
		  (void *)(unsigned long)__entry->cookie)
);

/**
 * zchan_wait_end - a wait that began with zchan_wait_begin ended; its
 *	duration is the time between the two records with the same @cookie
 * @zf: the waiter's file
 * @kind: ZCHAN_TRACE_WAIT_*
 * @cookie: as in zchan_wait_begin
 * @res: the poll mask the wait returns, or -errno (timeout, signal,
 *	cancel); recorded as @revents or @err, and @reason
 */
TRACE_EVENT(zchan_wait_end,
	TP_PROTO(const struct zchan_file *zf, unsigned int kind,
		 const void *cookie, int res),
	TP_ARGS(zf, kind, cookie, res),
	TP_STRUCT__entry(
		__field(u64, id)
		__field(u64, cookie)
		__field(u32, role)
		__field(u32, kind)
		__field(u32, reason)
		__field(u32, revents)
		__field(s32, err)
		__field(u32, resv)
	),
	TP_fast_assign(
		__entry->id = zf->chan->id;
		__entry->cookie = (unsigned long)cookie;
		__entry->role = zf->role;
		__entry->kind = kind;
		__entry->reason = zchan_trace_end_reason(res);
		__entry->revents = res > 0 ? res : 0;
		__entry->err = res < 0 ? res : 0;
		__entry->resv = 0;
	),
	TP_printk("id=%llu role=%s kind=%s cookie=%p reason=%s revents=0x%x err=%d",
		  __entry->id, zchan_show_role(__entry->role),
		  zchan_show_kind(__entry->kind),
		  (void *)(unsigned long)__entry->cookie,
		  zchan_show_reason(__entry->reason), __entry->revents,
		  __entry->err)
);

/**
 * zchan_kick - a kick is delivered to an end (ZCHAN_IOC_KICK or the uring
 *	KICK of its peer)
 * @chan: the channel
 * @end: enum zchan_end_id of the end woken
 * @armed: the end's need_wakeup word (the consumer's: in lane 0)
 *
 * @armed is the end's need_wakeup word before the kick clears it: 0 means
 * nobody had announced a wait (a spurious kick).
 */
TRACE_EVENT(zchan_kick,
	TP_PROTO(const struct zchan_channel *chan, int end, u32 armed),
	TP_ARGS(chan, end, armed),
	TP_STRUCT__entry(
		__field(u64, id)
		__field(u32, role)
		__field(u32, armed)
	),
	TP_fast_assign(
		__entry->id = chan->id;
		__entry->role = zchan_trace_end_role(end);
		__entry->armed = armed;
	),
	TP_printk("id=%llu role=%s armed=%u", __entry->id,
		  zchan_show_role(__entry->role), __entry->armed)
);

/**
 * zchan_limit - a module limit refused a CREATE (-ENOMEM or -ENOSPC)
 * @requested: the pool bytes asked for
 * @allowed: the value of that parameter the check used
 * @limit: ZCHAN_TRACE_LIMIT_*, the parameter
 */
TRACE_EVENT(zchan_limit,
	TP_PROTO(u64 requested, u64 allowed, unsigned int limit),
	TP_ARGS(requested, allowed, limit),
	TP_STRUCT__entry(
		__field(u64, requested)
		__field(u64, allowed)
		__field(u32, limit)
		__field(u32, uid)
		__field(s32, tgid)
		__field(u32, resv)
	),
	TP_fast_assign(
		__entry->requested = requested;
		__entry->allowed = allowed;
		__entry->limit = limit;
		__entry->uid = from_kuid(&init_user_ns, current_fsuid());
		__entry->tgid = current->tgid;
		__entry->resv = 0;
	),
	TP_printk("limit=%s allowed=%llu requested=%llu uid=%u tgid=%d",
		  zchan_show_limit(__entry->limit), __entry->allowed,
		  __entry->requested, __entry->uid, __entry->tgid)
);

#endif /* ZCHAN_TRACE_H */

#undef TRACE_INCLUDE_PATH
#define TRACE_INCLUDE_PATH .
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE zchan_trace
#include <trace/define_trace.h>
