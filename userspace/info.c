// SPDX-License-Identifier: MIT OR LGPL-2.1
/*
 * Introspection and options of a handle: what it is, its geometry, its
 * counters, and the names of libzchan's errors.
 */
#include <errno.h>
#include <string.h>

#include "zchan_int.h"

ZCHAN_EXPORT
int zchan_fd(const struct zchan *ch)
{
	return ch ? ch->fd : -EINVAL;
}

ZCHAN_EXPORT
int zchan_backend(const struct zchan *ch)
{
	return ch ? ch->ops->backend : -EINVAL;
}

ZCHAN_EXPORT
int zchan_get_attr(const struct zchan *ch, struct zchan_attr *attr)
{
	if (!ch || !attr)
		return -EINVAL;
	memset(attr, 0, sizeof(*attr));
	attr->pool_size = ch->pool_size;
	attr->max_msg = ch->max_msg;
	attr->ring_entries = ch->entries;
	attr->flags = ch->flags;
	attr->backend = (unsigned int)ch->ops->backend;
	attr->flags |= ch->chan_flags;
	attr->max_producers = ch->max_producers;
	attr->max_consumers = ch->max_consumers;
	return 0;
}

/*
 * A 1:1 channel's ends: this one, and the peer unless it is gone (an end
 * not yet handed over counts: it exists, and will be someone's).
 */
static int ends_1to1(struct zchan *z, unsigned int role)
{
	if (role == (unsigned int)z->role)
		return 1;
	return __zchan_peer_gone(z, true) ? 0 : 1;
}

ZCHAN_EXPORT
int zchan_ends(const struct zchan *end, unsigned int role)
{
	/* the latches it may set (peer gone) are the handle's own cache */
	struct zchan *z = (struct zchan *)end;

	if (!z || (role != ZCHAN_ROLE_PRODUCER && role != ZCHAN_ROLE_CONSUMER))
		return -EINVAL;
	if (z->max_consumers > 1 && z->ops->bcast_ends)
		return __zchan_keep_errno(z->ops->bcast_ends(z, role));
	if (z->ops->ends && z->max_producers > 1)	/* fan-in */
		return __zchan_keep_errno(z->ops->ends(z, role));
	return __zchan_keep_errno(ends_1to1(z, role));
}

ZCHAN_EXPORT
int zchan_stats(const struct zchan *ch, struct zchan_stats *stats)
{
	if (!ch || !stats)
		return -EINVAL;
	if (ch->role == ZCHAN_FANIN) {
		__zchan_fanin_stats(ch, stats);	/* and its lanes' */
		return 0;
	}
	*stats = ch->st;
	return 0;
}

ZCHAN_EXPORT
int zchan_set_flags(struct zchan *ch, unsigned int flags)
{
	if (!ch || (flags & ~ZCHAN_BUSY_POLL))
		return -EINVAL;
	ch->flags = flags;
	return 0;
}

ZCHAN_EXPORT
const char *zchan_strerror(int err)
{
	if (err > 0 && err < 4096)
		err = -err;	/* be forgiving: errno values work too */
	switch (err) {
	case 0:
		return "success";
	case -EOPNOTSUPP:
		return "not supported by this backend (named channels need the zchan kernel module, /dev/zchan)";
	case -EPROTO:
		return "the peer corrupted the shared ring";
	case -EPIPE:
		return "the peer end of the channel is closed";
	case -EUSERS:
		return "the role has its maximum of live ends, or too many processes hold this end (memfd backend: 64)";
	case -EMSGSIZE:
		return "message larger than the buffer or the channel's max_msg";
	case -ENOBUFS:
		return "pool space is held by this end's outstanding loans";
	case -EAGAIN:
		return "would block (ZCHAN_NONBLOCK)";
	case -ETIME:
		return "timed out";
	default:
		return err < 0 && err > -4096 ? strerror(-err) : "unknown error";
	}
}
