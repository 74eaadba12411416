// SPDX-License-Identifier: MIT OR LGPL-2.1
/*
 * The kernel backend's setup: /dev/zchan creates (ZCHAN_IOC_CREATE) or
 * attaches (ZCHAN_IOC_ATTACH) and returns the layout; the consumer end
 * travels as the file from ZCHAN_IOC_PEER_FD.  The module owns the pages,
 * names, permissions, lifetime and wakeups.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "zchan_int.h"

#define ZCHAN_DEV_PATH		"/dev/" ZCHAN_DEVICE_NAME

int zchan_kernel_open_dev(void)
{
	return __sys_open(ZCHAN_DEV_PATH, O_RDWR | O_CLOEXEC);
}

/* The module's ZCHAN_FEAT_* word (INFO answers before CREATE too). */
static uint32_t module_features(int devfd)
{
	struct zchan_info info;

	memset(&info, 0, sizeof(info));
	return __sys_ioctl(devfd, ZCHAN_IOC_INFO, &info) ? 0 :
	       info.layout.features;
}

/*
 * With a module that can, the channel publishes on close: the producer
 * keeps the alloc word (ring.c) and the module, at the producer's release
 * (a close, an exit or a kill), publishes every slot up to it, so that no
 * committed message is lost behind a loan that will never be committed.
 */
int zchan_kernel_create(struct zchan *z, int devfd, const char *name,
			const struct zchan_geom *g)
{
	struct zchan_create cr;
	int ret;

	memset(&cr, 0, sizeof(cr));
	if (module_features(devfd) & ZCHAN_FEAT_PUBLISH_ON_CLOSE)
		cr.flags = ZCHAN_CREATE_PUBLISH_ON_CLOSE;
	cr.pool_size = g->pool_size;
	cr.ring_entries = g->entries;
	cr.max_msg = g->max_msg;
	cr.mode = g->mode;
	if (name)
		memcpy(cr.name, name, strlen(name));
	z->fd = devfd;
	ret = __sys_ioctl(devfd, ZCHAN_IOC_CREATE, &cr);
	if (ret < 0)
		return ret;
	ret = zchan_map(z, devfd, devfd, devfd, &cr.layout);
	if (!ret && (cr.flags & ZCHAN_CREATE_PUBLISH_ON_CLOSE))
		z->alloc = (uint32_t *)((unsigned char *)z->prod_map +
					cr.layout.prod_alloc);
	return ret;
}

int zchan_kernel_attach(struct zchan *z, int devfd, const char *name)
{
	struct zchan_attach at;
	int ret;

	z->fd = devfd;
	memset(&at, 0, sizeof(at));
	memcpy(at.name, name, strlen(name));
	ret = __sys_ioctl(devfd, ZCHAN_IOC_ATTACH, &at);
	if (ret < 0)
		return ret;
	return zchan_map(z, devfd, devfd, devfd, &at.layout);
}

/*
 * Is @fd a zchan file: one ZCHAN_IOC_PEER_FD made ("anon_inode:[zchan]"),
 * or /dev/zchan itself?  Asked before any ioctl: the command number could
 * mean something else to another driver.  Without /proc, INFO decides.
 */
static bool is_zchan_file(int fd)
{
	char path[64], link[64];
	struct stat st, dev;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = __sys_readlink(path, link, sizeof(link) - 1);
	if (n <= 0)
		return true;
	link[n] = 0;
	if (!strcmp(link, "anon_inode:[zchan]"))
		return true;
	return !__sys_fstat(fd, &st) && S_ISCHR(st.st_mode) &&
	       !__sys_stat(ZCHAN_DEV_PATH, &dev) && st.st_rdev == dev.st_rdev;
}

/*
 * The consumer end from a handle message: anything but a zchan consumer
 * file is a bad handle, -EPROTO, as on the memfd backend.
 */
int zchan_kernel_attach_fd(struct zchan *z, int fd)
{
	struct zchan_info info;
	int ret;

	z->fd = fd;
	if (!is_zchan_file(fd))
		return -EPROTO;
	memset(&info, 0, sizeof(info));
	ret = __sys_ioctl(fd, ZCHAN_IOC_INFO, &info);
	if (ret < 0)
		return ret == -ENOMEM ? -ENOMEM : -EPROTO;
	if (info.role != ZCHAN_ROLE_CONSUMER)
		return -EPROTO;
	return zchan_map(z, fd, fd, fd, &info.layout);
}

/*
 * The consumer end as a new file, kept in prod->peer_fds[0] until it was
 * sent: closing it would end the consumer for good, so a failed send
 * (-EAGAIN on a full socket...) keeps it for the next try.
 */
int zchan_kernel_peer_fd(struct zchan *prod)
{
	struct zchan_peer_fd pf;
	int ret;

	if (prod->peer_fds[0] >= 0)
		return prod->peer_fds[0];
	memset(&pf, 0, sizeof(pf));
	pf.flags = ZCHAN_PEER_FD_CLOEXEC;
	ret = __sys_ioctl(prod->fd, ZCHAN_IOC_PEER_FD, &pf);
	if (ret < 0)
		return ret;
	prod->peer_fds[0] = (int)pf.fd;
	return prod->peer_fds[0];
}
