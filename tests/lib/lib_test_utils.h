/* SPDX-License-Identifier: MIT OR LGPL-2.1 */
/*
 * Helpers shared by the libzchan test programs in tests/lib/.
 */
#ifndef ZCHAN_LIB_TEST_UTILS_H
#define ZCHAN_LIB_TEST_UTILS_H

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include <zchan.h>

/*
 * Both ends in this process, the consumer passed over a socketpair.
 * On failure *p is NULL again, so a fixture's teardown closes nothing twice.
 */
static inline int local_pair(const struct zchan_attr *a, struct zchan **p,
			     struct zchan **c)
{
	int sv[2], ret;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
		return -errno;
	ret = zchan_create(NULL, a, p);
	if (!ret) {
		ret = zchan_send_peer(*p, sv[0]);
		if (!ret)
			ret = zchan_recv_peer(sv[1], c);
		if (ret) {
			zchan_close(*p);
			*p = NULL;
		}
	}
	close(sv[0]);
	close(sv[1]);
	return ret;
}

#endif /* ZCHAN_LIB_TEST_UTILS_H */
