// SPDX-License-Identifier: MIT OR LGPL-2.1
/*
 * Handing the consumer end to another process over a unix socket: a small
 * header (struct zchan_peer_hdr) and the end's fds as SCM_RIGHTS, one
 * message.  The receiver trusts nothing in it: the backend checks the fds
 * and the layout before mapping anything.
 */
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "zchan_int.h"

/* What zchan_send_peer() writes next to the fds. */
#define ZCHAN_PEER_MAGIC	0x5a43484eU	/* "ZCHN" */
#define ZCHAN_PEER_VERSION	1U
#define ZCHAN_PEER_MAX_FDS	8	/* more than any backend sends */

struct zchan_peer_hdr {
	uint32_t magic;
	uint32_t version;
	uint32_t backend;
	uint32_t nfds;
	struct zchan_layout layout;	/* memfd only: zchan_ops.peer_fds */
};

static int send_fds(int sock, const struct zchan_peer_hdr *hdr,
		    const int *fds, unsigned int nfds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * ZCHAN_PEER_MAX_FDS)];
		struct cmsghdr align;
	} u;
	struct iovec iov = { (void *)hdr, sizeof(*hdr) };
	struct msghdr msg;
	struct cmsghdr *cm;
	ssize_t n;

	memset(&u, 0, sizeof(u));
	memset(&msg, 0, sizeof(msg));
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = u.buf;
	msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
	cm = CMSG_FIRSTHDR(&msg);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
	memcpy(CMSG_DATA(cm), fds, sizeof(int) * nfds);
	do {
		n = __sys_sendmsg(sock, &msg, MSG_NOSIGNAL);
	} while (n == -EINTR);
	if (n < 0)
		return (int)n;
	return n == (ssize_t)sizeof(*hdr) ? 0 : -EIO;
}

static int do_zchan_send_peer(struct zchan *prod, int unix_sock)
{
	struct zchan_peer_hdr hdr;
	int fds[ZCHAN_PEER_MAX_FDS];
	int ret;

	if (!prod || prod->role != ZCHAN_PRODUCER || unix_sock < 0)
		return -EINVAL;
	ret = __zchan_hold(prod);
	if (ret)
		return ret;
	memset(&hdr, 0, sizeof(hdr));
	hdr.magic = ZCHAN_PEER_MAGIC;
	hdr.version = ZCHAN_PEER_VERSION;
	hdr.backend = (uint32_t)prod->ops->backend;
	ret = prod->ops->peer_fds(prod, fds, &hdr.layout);
	if (ret < 0)
		return ret;
	hdr.nfds = (uint32_t)ret;
	ret = send_fds(unix_sock, &hdr, fds, hdr.nfds);
	if (!ret)
		prod->ops->peer_sent(prod);
	return ret;
}

ZCHAN_EXPORT
int zchan_send_peer(struct zchan *prod, int unix_sock)
{
	return __zchan_keep_errno(do_zchan_send_peer(prod, unix_sock));
}

/* One message: the header in @hdr, up to ZCHAN_PEER_MAX_FDS fds in @fds. */
static ssize_t recv_fds(int sock, struct zchan_peer_hdr *hdr, int *fds,
			int *nfds, int *msg_flags)
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
		n = __sys_recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
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

static int do_zchan_recv_peer(int unix_sock, struct zchan **cons)
{
	struct zchan_peer_hdr hdr;
	int fds[ZCHAN_PEER_MAX_FDS], nfds, msg_flags = 0, i, ret;
	const struct zchan_ops *ops;
	struct zchan *z = NULL;
	ssize_t n;

	if (unix_sock < 0 || !cons)
		return -EINVAL;
	n = recv_fds(unix_sock, &hdr, fds, &nfds, &msg_flags);
	if (n < 0)
		return (int)n;
	if (n == 0) {
		ret = -EPIPE;
		goto out_close;
	}
	ret = -EPROTO;
	if ((size_t)n != sizeof(hdr) || (msg_flags & (MSG_CTRUNC | MSG_TRUNC)) ||
	    hdr.magic != ZCHAN_PEER_MAGIC || hdr.version != ZCHAN_PEER_VERSION)
		goto out_close;
	ops = __zchan_backend_ops(hdr.backend);
	if (!ops || (unsigned int)nfds != ops->peer_nfds)
		goto out_close;
	z = __zchan_alloc(ZCHAN_CONSUMER, ops);
	if (!z) {
		ret = -ENOMEM;
		goto out_close;
	}
	ret = ops->attach(z, &hdr.layout, fds);	/* takes the fds z keeps */
	if (ret) {
		__zchan_free(z);
		z = NULL;
	} else {
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
	*cons = z;
	return 0;
}

ZCHAN_EXPORT
int zchan_recv_peer(int unix_sock, struct zchan **cons)
{
	return __zchan_keep_errno(do_zchan_recv_peer(unix_sock, cons));
}
