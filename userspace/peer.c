// SPDX-License-Identifier: MIT OR LGPL-2.1
/*
 * Handing the consumer end to another process over a unix socket: a small
 * header (struct zchan_peer_hdr) and the end's fds as SCM_RIGHTS, one
 * message.  The receiver trusts nothing in it: the backend checks the fds
 * and the layout before mapping anything.
 */
#include <stddef.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "zchan_int.h"

/*
 * What zchan_send_end() writes next to the fds.  Version 1 (the header up
 * to @layout) is a 1:1 channel's consumer end, and still what it sends:
 * any library since 1.0 receives that.  Version 2 says the end's role and
 * the channel's maxima, bounded again by the receiver.
 */
#define ZCHAN_PEER_MAGIC	0x5a43484eU	/* "ZCHN" */
#define ZCHAN_PEER_VERSION_1	1U
#define ZCHAN_PEER_VERSION	2U

struct zchan_peer_hdr {
	uint32_t magic;
	uint32_t version;
	uint32_t backend;
	uint32_t nfds;
	struct zchan_layout layout;	/* memfd only: zchan_ops.peer_fds */
	/* version 2 */
	uint32_t role;			/* ZCHAN_ROLE_* */
	uint32_t max_producers;
	uint32_t max_consumers;
	uint32_t flags;			/* ZCHAN_BROADCAST */
};

#define ZCHAN_PEER_HDR_V1_SIZE	offsetof(struct zchan_peer_hdr, role)

static int send_fds(int sock, const struct zchan_peer_hdr *hdr,
		    const int *fds, unsigned int nfds)
{
	size_t len = hdr->version == ZCHAN_PEER_VERSION_1 ?
		     ZCHAN_PEER_HDR_V1_SIZE : sizeof(*hdr);

	return __sys_send_fds(sock, hdr, len, fds, nfds);
}

/* The header of an end of @role of @end's channel. */
static void peer_hdr(struct zchan_peer_hdr *hdr, const struct zchan *end,
		     unsigned int role)
{
	memset(hdr, 0, sizeof(*hdr));
	hdr->magic = ZCHAN_PEER_MAGIC;
	hdr->version = ZCHAN_PEER_VERSION;
	hdr->backend = (uint32_t)end->ops->backend;
	hdr->role = role;
	hdr->max_producers = end->max_producers;
	hdr->max_consumers = end->max_consumers;
	hdr->flags = end->chan_flags;
	if (role == ZCHAN_ROLE_CONSUMER && end->max_producers <= 1 &&
	    end->max_consumers <= 1)
		hdr->version = ZCHAN_PEER_VERSION_1;	/* 1:1, as ever */
}

/*
 * An end of @role of @end's channel, made by the backend (@fds, @l), as
 * one message on @sock: what zchan_send_end() sends, and what a memfd
 * producer announces a new lane with.
 */
int __zchan_send_fds(int sock, const struct zchan *end, unsigned int role,
		     const int *fds, unsigned int nfds,
		     const struct zchan_layout *l)
{
	struct zchan_peer_hdr hdr;

	peer_hdr(&hdr, end, role);
	hdr.nfds = nfds;
	hdr.layout = *l;
	return send_fds(sock, &hdr, fds, nfds);
}

/*
 * A new end of @role of @end's channel, as one message on @sock: the
 * backend makes it (for a producer, a lane the consumer knows of before
 * the message leaves), this sends it.
 */
int __zchan_send_end(struct zchan *end, unsigned int role, int sock)
{
	struct zchan_peer_hdr hdr;
	int fds[ZCHAN_PEER_MAX_FDS];
	int ret;

	/* a 1:1 channel's one producer exists: a full role, on any backend */
	if (role == ZCHAN_ROLE_PRODUCER && end->max_producers <= 1)
		return -EUSERS;
	peer_hdr(&hdr, end, role);
	ret = end->ops->peer_fds(end, role, fds, &hdr.layout);
	if (ret < 0)
		return ret;
	hdr.nfds = (uint32_t)ret;
	ret = send_fds(sock, &hdr, fds, hdr.nfds);
	if (!ret)
		end->ops->peer_sent(end, role);
	return ret;
}

static int do_zchan_send_end(struct zchan *end, unsigned int role,
			     int unix_sock)
{
	int ret;

	if (!end || unix_sock < 0 || (role != ZCHAN_ROLE_PRODUCER &&
				      role != ZCHAN_ROLE_CONSUMER))
		return -EINVAL;
	ret = __zchan_hold(end);
	if (ret)
		return ret;
	return __zchan_send_end(end, role, unix_sock);
}

ZCHAN_EXPORT
int zchan_send_end(struct zchan *end, unsigned int role, int unix_sock)
{
	return __zchan_keep_errno(do_zchan_send_end(end, role, unix_sock));
}

ZCHAN_EXPORT
int zchan_send_peer(struct zchan *prod, int unix_sock)
{
	if (!prod || prod->role != ZCHAN_PRODUCER)
		return -EINVAL;
	return __zchan_keep_errno(do_zchan_send_end(prod, ZCHAN_ROLE_CONSUMER,
						    unix_sock));
}

/* One message: the header in @hdr, up to ZCHAN_PEER_MAX_FDS fds in @fds. */
static ssize_t recv_fds(int sock, struct zchan_peer_hdr *hdr, int *fds,
			int *nfds, int *msg_flags, int flags)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * ZCHAN_PEER_MAX_FDS)];
		struct cmsghdr align;
	} u;
	struct iovec iov = { hdr, sizeof(*hdr) };
	struct msghdr msg;
	struct cmsghdr *cm;
	ssize_t n;
	int i;

	*nfds = 0;
	memset(&msg, 0, sizeof(msg));
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = u.buf;
	msg.msg_controllen = sizeof(u.buf);
	do {
		n = __sys_recvmsg(sock, &msg, MSG_CMSG_CLOEXEC | flags);
	} while (n == -EINTR);
	if (n < 0)
		return n;
	for (cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
		int cnt;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		cnt = (int)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		for (i = 0; i < cnt && *nfds < ZCHAN_PEER_MAX_FDS; i++)
			memcpy(&fds[(*nfds)++], CMSG_DATA(cm) + i * sizeof(int),
			       sizeof(int));
	}
	*msg_flags = msg.msg_flags;
	return n;
}

/*
 * The header's role and the channel's maxima, bounded (1 to
 * ZCHAN_ENDS_MAX): -EPROTO if it is neither version.
 */
static int peer_hdr_check(struct zchan_peer_hdr *hdr, size_t n)
{
	if (hdr->magic != ZCHAN_PEER_MAGIC)
		return -EPROTO;
	if (hdr->version == ZCHAN_PEER_VERSION_1 &&
	    n == ZCHAN_PEER_HDR_V1_SIZE) {
		hdr->role = ZCHAN_ROLE_CONSUMER;
		hdr->max_producers = hdr->max_consumers = 1;
		hdr->flags = 0;
		return 0;
	}
	if (hdr->version != ZCHAN_PEER_VERSION || n != sizeof(*hdr) ||
	    (hdr->role != ZCHAN_ROLE_PRODUCER &&
	     hdr->role != ZCHAN_ROLE_CONSUMER) ||
	    hdr->max_producers - 1 >= ZCHAN_ENDS_MAX ||
	    hdr->max_consumers - 1 >= ZCHAN_ENDS_MAX ||
	    (hdr->flags & ~ZCHAN_BROADCAST))
		return -EPROTO;
	return 0;
}

/*
 * One end from one message on @sock (@msg_flags for recvmsg(), e.g.
 * MSG_DONTWAIT): the backend's handle of the role the header says, fds
 * and layout checked by the backend.  A consumer end as it came: a
 * fan-in consumer's caller makes the group (fanin.c).
 */
int __zchan_recv_end(int sock, int msg_flags, struct zchan **end)
{
	struct zchan_peer_hdr hdr;
	int fds[ZCHAN_PEER_MAX_FDS], nfds, rflags = 0, i, ret;
	const struct zchan_ops *ops;
	struct zchan *z = NULL;
	ssize_t n;

	memset(&hdr, 0, sizeof(hdr));
	n = recv_fds(sock, &hdr, fds, &nfds, &rflags, msg_flags);
	if (n < 0)
		return (int)n;
	if (n == 0) {
		ret = -EPIPE;
		goto out_close;
	}
	ret = -EPROTO;
	if ((rflags & (MSG_CTRUNC | MSG_TRUNC)) ||
	    peer_hdr_check(&hdr, (size_t)n))
		goto out_close;
	ops = __zchan_backend_ops(hdr.backend);
	if (!ops || hdr.nfds != (uint32_t)nfds)
		goto out_close;
	z = __zchan_alloc((int)hdr.role, ops);
	if (!z) {
		ret = -ENOMEM;
		goto out_close;
	}
	z->max_producers = hdr.max_producers;
	z->max_consumers = hdr.max_consumers;
	z->chan_flags = hdr.flags;
	/* takes the fds z keeps */
	ret = ops->attach(z, &hdr.layout, fds, (unsigned int)nfds);
	if (ret) {
		__zchan_free(z);
		z = NULL;
	} else if (z->role == ZCHAN_CONSUMER) {
		/*
		 * Attached armed (memfd_epoll()): what the producer sent
		 * before kicked nobody.  No liveness check (system calls,
		 * and setup is not the data path): a peer gone already
		 * shows on the fd by itself.
		 */
		__zchan_kick_self_if_ready(z, __zchan_ready_mask, z->max_msg,
					   false);
	}
out_close:
	for (i = 0; i < nfds; i++)
		if (fds[i] >= 0)
			__sys_close(fds[i]);	/* mapped, or handed to z as -1 */
	if (ret)
		return ret;
	*end = z;
	return 0;
}

static int do_zchan_recv_peer(int unix_sock, struct zchan **end)
{
	struct zchan *z;
	int ret;

	if (unix_sock < 0 || !end)
		return -EINVAL;
	ret = __zchan_recv_end(unix_sock, 0, &z);
	if (!ret)
		ret = __zchan_fanin_new(&z);	/* a fan-in consumer: its group */
	if (ret)
		return ret;
	*end = z;
	return 0;
}

ZCHAN_EXPORT
int zchan_recv_peer(int unix_sock, struct zchan **end)
{
	return __zchan_keep_errno(do_zchan_recv_peer(unix_sock, end));
}
