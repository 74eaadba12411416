/* SPDX-License-Identifier: MIT OR LGPL-2.1 */
/*
 * Test helpers on libzchan's public API (<zchan.h>), for the library's
 * tests and for any test that streams through the library.  Part of the
 * test helper library in tests/common (see zchan_test_utils.h for the
 * raw /dev/zchan side).
 */
#ifndef ZCHAN_TEST_LIB_H
#define ZCHAN_TEST_LIB_H

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include <zchan.h>

/*
 * Both ends in this process, the consumer passed over a socketpair.
 * On failure *p is NULL again, so a fixture's teardown closes nothing twice.
 */
static inline int zc_local_pair(const struct zchan_attr *a, struct zchan **p,
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

#endif /* ZCHAN_TEST_LIB_H */
