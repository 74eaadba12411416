// SPDX-License-Identifier: MIT OR LGPL-2.1
/*
 * Channel setup and teardown for both backends, and fd passing.
 *
 * kernel: /dev/zchan creates (ZCHAN_IOC_CREATE) or attaches (ATTACH) and
 *	returns the layout; the consumer end travels as the fd from
 *	ZCHAN_IOC_PEER_FD.
 * memfd: the library computes the same struct zchan_layout over two sealed
 *	memfds: "zchan-prod" (producer ring at 0, pool after it) and
 *	"zchan-cons" (consumer ring at 0).  The consumer gets the first one
 *	through a read-only reopen, so it can only map it read-only.
 *	Wakeups: one eventfd per end.  Liveness: a socketpair, one end each;
 *	a dead peer is a hang-up.  zchan_fd() is an epoll fd holding our
 *	eventfd and our socket end.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "zchan_int.h"

#ifndef MFD_CLOEXEC
#define MFD_CLOEXEC		0x0001U
#define MFD_ALLOW_SEALING	0x0002U
#endif
#ifndef F_ADD_SEALS
#define F_ADD_SEALS	(1024 + 9)
#define F_GET_SEALS	(1024 + 10)
#define F_SEAL_SEAL	0x0001
#define F_SEAL_SHRINK	0x0002
#define F_SEAL_GROW	0x0004
#endif

#define ZCHAN_DEV_PATH		"/dev/" ZCHAN_DEVICE_NAME
#define ZCHAN_MAX_POOL		(1ULL << 40)
#define ZCHAN_MAX_ENTRIES	(1U << 20)

/* What zchan_send_peer() writes next to the fds. */
#define ZCHAN_PEER_MAGIC	0x5a43484eU	/* "ZCHN" */
#define ZCHAN_PEER_VERSION	1U
#define ZCHAN_MEMFD_NFDS	5	/* prod memfd, cons memfd, 2 efds, sock */

struct zchan_peer_hdr {
	uint32_t magic;
	uint32_t version;
	uint32_t backend;
	uint32_t nfds;
	struct zchan_layout layout;	/* memfd only */
};

static size_t page_size(void)
{
	long ps = sysconf(_SC_PAGESIZE);

	return ps > 0 ? (size_t)ps : 4096;
}

static uint64_t page_align(uint64_t v)
{
	uint64_t ps = page_size();

	return (v + ps - 1) & ~(ps - 1);
}

static bool is_pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* A word at @off must lie inside a region of @size bytes. */
static bool word_ok(uint32_t off, uint64_t size, uint32_t align)
{
	return !(off % align) && (uint64_t)off + sizeof(uint32_t) <= size;
}

/* The layout may come from a hostile peer (memfd): check all of it. */
int zchan_validate_layout(const struct zchan_layout *l)
{
	uint64_t ps = page_size();

	if (!is_pow2(l->ring_entries) || l->ring_entries > ZCHAN_MAX_ENTRIES)
		return -EPROTO;
	if (!l->pool_size || l->pool_size % ps || l->pool_size > ZCHAN_MAX_POOL)
		return -EPROTO;
	if (l->max_msg > l->pool_size / 2)
		return -EPROTO;
	if (!l->prod_ring_size || l->prod_ring_size % ps ||
	    l->prod_ring_size > ZCHAN_MAX_POOL ||
	    !l->cons_ring_size || l->cons_ring_size % ps ||
	    l->cons_ring_size > ZCHAN_MAX_POOL)
		return -EPROTO;
	if (l->prod_ring_off % ps || l->cons_ring_off % ps || l->pool_off % ps)
		return -EPROTO;
	if (!word_ok(l->prod_tail, l->prod_ring_size, 4) ||
	    !word_ok(l->prod_head_seen, l->prod_ring_size, 4) ||
	    !word_ok(l->prod_need_wakeup, l->prod_ring_size, 4) ||
	    !word_ok(l->prod_closed, l->prod_ring_size, 4) ||
	    !word_ok(l->cons_head, l->cons_ring_size, 4) ||
	    !word_ok(l->cons_read, l->cons_ring_size, 4) ||
	    !word_ok(l->cons_need_wakeup, l->cons_ring_size, 4) ||
	    !word_ok(l->cons_closed, l->cons_ring_size, 4))
		return -EPROTO;
	if (l->prod_descs % 8 ||
	    (uint64_t)l->prod_descs + (uint64_t)l->ring_entries *
	    sizeof(struct zchan_desc) > l->prod_ring_size)
		return -EPROTO;
	return 0;
}

static struct zchan *zchan_alloc(int role, int backend)
{
	struct zchan *z = calloc(1, sizeof(*z));
	unsigned int i;

	if (!z)
		return NULL;
	z->role = role;
	z->backend = backend;
	z->fd = z->own_efd = z->peer_efd = z->sock = -1;
	for (i = 0; i < sizeof(z->peer_fds) / sizeof(z->peer_fds[0]); i++)
		z->peer_fds[i] = -1;
	z->prod_map = z->cons_map = MAP_FAILED;
	z->pool = MAP_FAILED;
	return z;
}

static void zchan_free(struct zchan *z)
{
	unsigned int i;

	if (z->have_ring)
		io_uring_queue_exit(&z->ring);
	if (z->prod_map != MAP_FAILED)
		munmap(z->prod_map, z->layout.prod_ring_size);
	if (z->cons_map != MAP_FAILED)
		munmap(z->cons_map, z->layout.cons_ring_size);
	if (z->pool != MAP_FAILED)
		munmap(z->pool, z->layout.pool_size);
	close_fd(&z->fd);
	close_fd(&z->own_efd);
	close_fd(&z->peer_efd);
	close_fd(&z->sock);
	for (i = 0; i < sizeof(z->peer_fds) / sizeof(z->peer_fds[0]); i++)
		close_fd(&z->peer_fds[i]);
	free(z->slots);
	free(z);
}

static void *map_region(int fd, uint64_t off, uint64_t len, bool writable)
{
	int prot = PROT_READ | (writable ? PROT_WRITE : 0);

	return mmap(NULL, len, prot, MAP_SHARED, fd, (off_t)off);
}

/*
 * Map the three regions (each end writes only its own ring; the pool is
 * written only by the producer), point at the words, set up the private
 * state and the private io_uring.
 */
static int zchan_map(struct zchan *z, int prod_fd, int cons_fd, int pool_fd,
		     const struct zchan_layout *l)
{
	bool prod = z->role == ZCHAN_PRODUCER;
	unsigned char *pr, *cr;
	const char *wait;
	int ret;

	ret = zchan_validate_layout(l);
	if (ret)
		return ret;
	z->layout = *l;
	z->prod_map = map_region(prod_fd, l->prod_ring_off, l->prod_ring_size,
				 prod);
	if (z->prod_map == MAP_FAILED)
		return -errno;
	z->cons_map = map_region(cons_fd, l->cons_ring_off, l->cons_ring_size,
				 !prod);
	if (z->cons_map == MAP_FAILED)
		return -errno;
	z->pool = map_region(pool_fd, l->pool_off, l->pool_size, prod);
	if (z->pool == MAP_FAILED)
		return -errno;

	pr = z->prod_map;
	cr = z->cons_map;
	z->tail = (uint32_t *)(pr + l->prod_tail);
	z->head_seen = (uint32_t *)(pr + l->prod_head_seen);
	z->prod_need_wakeup = (uint32_t *)(pr + l->prod_need_wakeup);
	z->prod_closed = (uint32_t *)(pr + l->prod_closed);
	z->descs = (struct zchan_desc *)(pr + l->prod_descs);
	z->head = (uint32_t *)(cr + l->cons_head);
	z->read = (uint32_t *)(cr + l->cons_read);
	z->cons_need_wakeup = (uint32_t *)(cr + l->cons_need_wakeup);
	z->cons_closed = (uint32_t *)(cr + l->cons_closed);
	if (prod) {
		z->own_need_wakeup = z->prod_need_wakeup;
		z->peer_need_wakeup = z->cons_need_wakeup;
		z->own_closed = z->prod_closed;
		z->peer_closed = z->cons_closed;
	} else {
		z->own_need_wakeup = z->cons_need_wakeup;
		z->peer_need_wakeup = z->prod_need_wakeup;
		z->own_closed = z->cons_closed;
		z->peer_closed = z->prod_closed;
	}
	z->pool_size = l->pool_size;
	z->entries = l->ring_entries;
	z->mask = l->ring_entries - 1;
	z->max_msg = l->max_msg;

	z->slots = calloc(z->entries, sizeof(*z->slots));
	if (!z->slots)
		return -ENOMEM;
	if (prod) {
		/* a fresh channel: every index equal */
		z->p_tail = z->p_alloc = z->p_seen = load_acquire(z->tail);
	} else {
		/* start where a previous consumer released everything */
		z->c_head = z->c_read = load_acquire(z->head);
		store_release(z->read, z->c_read);
	}

	/*
	 * memfd: start armed, so the first event after setup kicks our
	 * epoll fd (the kernel's poll needs no such help).
	 */
	if (z->backend == ZCHAN_BACKEND_MEMFD)
		zchan_arm(z);

	/*
	 * The private ring for sleeping; without it (no io_uring here, or
	 * ZCHAN_WAIT=syscall) the kernel backend sleeps in ZCHAN_IOC_WAIT
	 * and the memfd backend in poll(2).
	 */
	z->spin_ns = sysconf(_SC_NPROCESSORS_ONLN) > 1 ? ZCHAN_SPIN_NS : 0;
	wait = getenv("ZCHAN_SPIN_NS");
	if (wait && *wait)
		z->spin_ns = (uint32_t)strtoul(wait, NULL, 10);
	wait = getenv("ZCHAN_WAIT");
	if ((!wait || !*wait || !strcmp(wait, "uring")) &&
	    !io_uring_queue_init(4, &z->ring, 0))
		z->have_ring = true;
	return 0;
}

/* -------------------------------------------------------------------- */
/* Backend choice                                                        */

/* ZCHAN_BACKEND_KERNEL with *devfd open, ZCHAN_BACKEND_MEMFD, or -errno. */
static int pick_backend(unsigned int want, int *devfd)
{
	const char *env;
	int fd;

	*devfd = -1;
	if (want == ZCHAN_BACKEND_AUTO) {
		env = getenv("ZCHAN_BACKEND");
		if (env && !strcmp(env, "kernel"))
			want = ZCHAN_BACKEND_KERNEL;
		else if (env && !strcmp(env, "memfd"))
			want = ZCHAN_BACKEND_MEMFD;
		else if (env && *env)
			return -EINVAL;
	}
	if (want == ZCHAN_BACKEND_MEMFD)
		return ZCHAN_BACKEND_MEMFD;
	fd = open(ZCHAN_DEV_PATH, O_RDWR | O_CLOEXEC);
	if (fd >= 0) {
		*devfd = fd;
		return ZCHAN_BACKEND_KERNEL;
	}
	if (want == ZCHAN_BACKEND_KERNEL)
		return -errno;
	return ZCHAN_BACKEND_MEMFD;	/* auto: no module here */
}

static int check_name(const char *name)
{
	size_t len;

	if (!name)
		return 0;
	len = strnlen(name, ZCHAN_NAME_MAX);
	if (!len)
		return -EINVAL;
	if (len >= ZCHAN_NAME_MAX)
		return -ENAMETOOLONG;
	return 0;
}

struct zchan_geom {
	uint64_t pool_size;
	uint32_t entries;
	uint32_t max_msg;
	uint32_t mode;
};

static int check_attr(const struct zchan_attr *attr, struct zchan_geom *g,
		      unsigned int *flags, unsigned int *backend)
{
	struct zchan_attr def;
	unsigned int i;
	uint64_t max_msg;

	if (!attr) {
		zchan_attr_init(&def);
		attr = &def;
	}
	for (i = 0; i < sizeof(attr->reserved) / sizeof(attr->reserved[0]); i++)
		if (attr->reserved[i])
			return -EINVAL;
	if (attr->flags & ~ZCHAN_BUSY_POLL)
		return -EINVAL;
	if (attr->mode & ~0777U)
		return -EINVAL;
	if (attr->backend > ZCHAN_BACKEND_MEMFD)
		return -EINVAL;
	if (attr->ring_entries && (!is_pow2(attr->ring_entries) ||
				   attr->ring_entries > ZCHAN_MAX_ENTRIES))
		return -EINVAL;
	if (attr->pool_size > ZCHAN_MAX_POOL)
		return -EINVAL;
	g->pool_size = page_align(attr->pool_size ? attr->pool_size :
				  ZCHAN_DEFAULT_POOL_SIZE);
	g->entries = attr->ring_entries ? attr->ring_entries :
		     ZCHAN_DEFAULT_RING_ENTRIES;
	max_msg = attr->max_msg ? attr->max_msg : g->pool_size / 4;
	if (max_msg > g->pool_size / 2 || max_msg > UINT32_MAX)
		return -EINVAL;
	g->max_msg = (uint32_t)max_msg;
	g->mode = attr->mode ? attr->mode : 0600;
	*flags = attr->flags;
	*backend = attr->backend;
	return 0;
}

/* -------------------------------------------------------------------- */
/* Kernel backend                                                        */

static int kernel_create(struct zchan *z, int devfd, const char *name,
			 const struct zchan_geom *g)
{
	struct zchan_create cr;

	memset(&cr, 0, sizeof(cr));
	cr.pool_size = g->pool_size;
	cr.ring_entries = g->entries;
	cr.max_msg = g->max_msg;
	cr.mode = g->mode;
	if (name)
		memcpy(cr.name, name, strlen(name));
	z->fd = devfd;
	if (ioctl(devfd, ZCHAN_IOC_CREATE, &cr) < 0)
		return -errno;
	return zchan_map(z, devfd, devfd, devfd, &cr.layout);
}

static int kernel_attach_fd(struct zchan *z, int fd)
{
	struct zchan_info info;

	z->fd = fd;
	memset(&info, 0, sizeof(info));
	if (ioctl(fd, ZCHAN_IOC_INFO, &info) < 0)
		return -errno;
	if (info.role != ZCHAN_ROLE_CONSUMER)
		return -EPROTO;
	return zchan_map(z, fd, fd, fd, &info.layout);
}

/* -------------------------------------------------------------------- */
/* memfd backend                                                         */

static int memfd_region(const char *name, uint64_t size)
{
	int fd, ret;

	fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	/* sealed: nobody can shrink it under the other end's mapping */
	if (ftruncate(fd, (off_t)size) < 0 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
		ret = -errno;
		close(fd);
		return ret;
	}
	return fd;
}

/* A sealed memfd of at least @size bytes, else the peer is lying. */
static int memfd_check(int fd, uint64_t size)
{
	struct stat st;
	int seals;

	if (fstat(fd, &st) < 0)
		return -errno;
	seals = fcntl(fd, F_GET_SEALS);
	if (seals < 0 || !(seals & F_SEAL_SHRINK) || !S_ISREG(st.st_mode) ||
	    (uint64_t)st.st_size < size)
		return -EPROTO;
	return 0;
}

/* Read-only reopen: the consumer cannot map it writable. */
static int reopen_rdonly(int fd)
{
	char path[64];
	int ro;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ro = open(path, O_RDONLY | O_CLOEXEC);
	return ro >= 0 ? ro : fcntl(fd, F_DUPFD_CLOEXEC, 0);
}

static int memfd_epoll(struct zchan *z)
{
	struct epoll_event ev;

	z->fd = epoll_create1(EPOLL_CLOEXEC);
	if (z->fd < 0)
		return -errno;
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.fd = z->own_efd;
	if (epoll_ctl(z->fd, EPOLL_CTL_ADD, z->own_efd, &ev) < 0)
		return -errno;
	ev.events = EPOLLRDHUP;
	ev.data.fd = z->sock;
	if (epoll_ctl(z->fd, EPOLL_CTL_ADD, z->sock, &ev) < 0)
		return -errno;
	return 0;
}

static void memfd_layout(struct zchan_layout *l, const struct zchan_geom *g)
{
	memset(l, 0, sizeof(*l));
	l->pool_size = g->pool_size;
	l->ring_entries = g->entries;
	l->max_msg = g->max_msg;
	l->prod_ring_off = 0;
	l->prod_ring_size = page_align(sizeof(struct zchan_prod_ring) +
				       (uint64_t)g->entries *
				       sizeof(struct zchan_desc));
	l->cons_ring_off = 0;
	l->cons_ring_size = page_align(sizeof(struct zchan_cons_ring));
	l->pool_off = l->prod_ring_size;
	zchan_layout_set_words(l);
}

enum { PEER_PROD_MEMFD, PEER_CONS_MEMFD, PEER_SOCK };

static int memfd_create_channel(struct zchan *z, const struct zchan_geom *g)
{
	struct zchan_layout l;
	int prod_fd, cons_fd, sp[2], ret;

	memfd_layout(&l, g);
	prod_fd = memfd_region("zchan-prod", l.pool_off + l.pool_size);
	if (prod_fd < 0)
		return prod_fd;
	cons_fd = memfd_region("zchan-cons", l.cons_ring_size);
	if (cons_fd < 0) {
		close(prod_fd);
		return cons_fd;
	}
	ret = zchan_map(z, prod_fd, cons_fd, prod_fd, &l);
	if (!ret) {
		z->peer_fds[PEER_PROD_MEMFD] = reopen_rdonly(prod_fd);
		if (z->peer_fds[PEER_PROD_MEMFD] < 0)
			ret = -errno;
	}
	close(prod_fd);
	z->peer_fds[PEER_CONS_MEMFD] = cons_fd;
	if (ret)
		return ret;

	z->own_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	z->peer_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (z->own_efd < 0 || z->peer_efd < 0)
		return -errno;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
		return -errno;
	z->sock = sp[0];
	z->peer_fds[PEER_SOCK] = sp[1];
	return memfd_epoll(z);
}

/* -------------------------------------------------------------------- */
/* Public setup calls                                                    */

ZCHAN_EXPORT
void zchan_attr_init(struct zchan_attr *attr)
{
	if (!attr)
		return;
	memset(attr, 0, sizeof(*attr));
	attr->pool_size = ZCHAN_DEFAULT_POOL_SIZE;
	attr->ring_entries = ZCHAN_DEFAULT_RING_ENTRIES;
	attr->max_msg = ZCHAN_DEFAULT_POOL_SIZE / 4;
	attr->mode = 0600;
}

static int do_zchan_create(const char *name, const struct zchan_attr *attr,
		    struct zchan **prod)
{
	struct zchan_geom g;
	unsigned int flags, want;
	struct zchan *z;
	int backend, devfd, ret;

	if (!prod)
		return -EINVAL;
	ret = check_name(name);
	if (ret)
		return ret;
	ret = check_attr(attr, &g, &flags, &want);
	if (ret)
		return ret;
	backend = pick_backend(want, &devfd);
	if (backend < 0)
		return backend;
	if (name && backend == ZCHAN_BACKEND_MEMFD)
		return -EOPNOTSUPP;	/* names live in the kernel module */
	z = zchan_alloc(ZCHAN_PRODUCER, backend);
	if (!z) {
		if (devfd >= 0)
			close(devfd);
		return -ENOMEM;
	}
	z->flags = flags;
	if (backend == ZCHAN_BACKEND_KERNEL)
		ret = kernel_create(z, devfd, name, &g);
	else
		ret = memfd_create_channel(z, &g);
	if (ret) {
		zchan_free(z);
		return ret;
	}
	*prod = z;
	return 0;
}

ZCHAN_EXPORT
int zchan_create(const char *name, const struct zchan_attr *attr,
		 struct zchan **prod)
{
	return zchan_keep_errno(do_zchan_create(name, attr, prod));
}

static int do_zchan_open(const char *name, struct zchan **cons)
{
	struct zchan_attach at;
	struct zchan *z;
	int backend, devfd, ret;

	if (!name || !cons)
		return -EINVAL;
	ret = check_name(name);
	if (ret)
		return ret;
	backend = pick_backend(ZCHAN_BACKEND_AUTO, &devfd);
	if (backend < 0)
		return backend;
	if (backend != ZCHAN_BACKEND_KERNEL)
		return -EOPNOTSUPP;
	z = zchan_alloc(ZCHAN_CONSUMER, backend);
	if (!z) {
		close(devfd);
		return -ENOMEM;
	}
	z->fd = devfd;
	memset(&at, 0, sizeof(at));
	memcpy(at.name, name, strlen(name));
	if (ioctl(devfd, ZCHAN_IOC_ATTACH, &at) < 0)
		ret = -errno;
	else
		ret = zchan_map(z, devfd, devfd, devfd, &at.layout);
	if (ret) {
		zchan_free(z);
		return ret;
	}
	*cons = z;
	return 0;
}

ZCHAN_EXPORT
int zchan_open(const char *name, struct zchan **cons)
{
	return zchan_keep_errno(do_zchan_open(name, cons));
}

static int send_fds(int sock, const struct zchan_peer_hdr *hdr,
		    const int *fds, unsigned int nfds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * ZCHAN_MEMFD_NFDS)];
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
		n = sendmsg(sock, &msg, MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return n == (ssize_t)sizeof(*hdr) ? 0 : -EIO;
}

static int do_zchan_send_peer(struct zchan *prod, int unix_sock)
{
	struct zchan_peer_hdr hdr;
	int fds[ZCHAN_MEMFD_NFDS];
	int ret;

	if (!prod || prod->role != ZCHAN_PRODUCER || unix_sock < 0)
		return -EINVAL;
	memset(&hdr, 0, sizeof(hdr));
	hdr.magic = ZCHAN_PEER_MAGIC;
	hdr.version = ZCHAN_PEER_VERSION;
	hdr.backend = (uint32_t)prod->backend;

	if (prod->backend == ZCHAN_BACKEND_KERNEL) {
		/*
		 * Closing the consumer file would end the consumer for good:
		 * if sending fails (-EAGAIN on a full socket...), keep it for
		 * the next try.
		 */
		if (prod->peer_fds[0] < 0) {
			struct zchan_peer_fd pf;

			memset(&pf, 0, sizeof(pf));
			pf.flags = ZCHAN_PEER_FD_CLOEXEC;
			if (ioctl(prod->fd, ZCHAN_IOC_PEER_FD, &pf) < 0)
				return -errno;
			prod->peer_fds[0] = (int)pf.fd;
		}
		hdr.nfds = 1;
		ret = send_fds(unix_sock, &hdr, &prod->peer_fds[0], 1);
		if (!ret)
			close_fd(&prod->peer_fds[0]);
		return ret;
	}

	if (prod->peer_fds[PEER_SOCK] < 0)
		return -EBUSY;		/* the consumer end is already out */
	hdr.nfds = ZCHAN_MEMFD_NFDS;
	hdr.layout = prod->layout;
	fds[0] = prod->peer_fds[PEER_PROD_MEMFD];
	fds[1] = prod->peer_fds[PEER_CONS_MEMFD];
	fds[2] = prod->peer_efd;	/* the consumer's own eventfd */
	fds[3] = prod->own_efd;		/* it kicks us through ours */
	fds[4] = prod->peer_fds[PEER_SOCK];
	ret = send_fds(unix_sock, &hdr, fds, ZCHAN_MEMFD_NFDS);
	if (ret)
		return ret;
	/* our copy of the consumer's socket end would hide its death */
	close_fd(&prod->peer_fds[PEER_PROD_MEMFD]);
	close_fd(&prod->peer_fds[PEER_CONS_MEMFD]);
	close_fd(&prod->peer_fds[PEER_SOCK]);
	return 0;
}

ZCHAN_EXPORT
int zchan_send_peer(struct zchan *prod, int unix_sock)
{
	return zchan_keep_errno(do_zchan_send_peer(prod, unix_sock));
}

/*
 * The peer's notification fds must be what they claim (a pipe would block
 * our drain) and non-blocking: an eventfd, or for @sock a socket.
 */
static int check_notify_fd(int fd, bool sock)
{
	char path[64], link[64];
	struct stat st;
	ssize_t n;
	int fl;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (sock) {
		if (!S_ISSOCK(st.st_mode))
			return -EPROTO;
	} else {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		n = readlink(path, link, sizeof(link) - 1);
		if (n > 0) {	/* without /proc, trust the fd */
			link[n] = 0;
			if (strcmp(link, "anon_inode:[eventfd]"))
				return -EPROTO;
		}
	}
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

static int memfd_attach(struct zchan *z, const struct zchan_layout *l,
			int *fds)
{
	int ret;

	ret = zchan_validate_layout(l);
	if (ret)
		return ret;
	ret = check_notify_fd(fds[2], false);
	if (!ret)
		ret = check_notify_fd(fds[3], false);
	if (!ret)
		ret = check_notify_fd(fds[4], true);
	if (ret)
		return ret;
	ret = memfd_check(fds[0], l->pool_off + l->pool_size);
	if (!ret)
		ret = memfd_check(fds[0], l->prod_ring_off + l->prod_ring_size);
	if (!ret)
		ret = memfd_check(fds[1], l->cons_ring_off + l->cons_ring_size);
	if (ret)
		return ret;
	ret = zchan_map(z, fds[0], fds[1], fds[0], l);
	if (ret)
		return ret;
	z->own_efd = fds[2];
	z->peer_efd = fds[3];
	z->sock = fds[4];
	fds[2] = fds[3] = fds[4] = -1;
	return memfd_epoll(z);
}

static int do_zchan_recv_peer(int unix_sock, struct zchan **cons)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * 8)];
		struct cmsghdr align;
	} u;
	struct zchan_peer_hdr hdr;
	struct iovec iov = { &hdr, sizeof(hdr) };
	int fds[8], nfds = 0, i, ret;
	struct msghdr msg;
	struct cmsghdr *cm;
	struct zchan *z = NULL;
	ssize_t n;

	if (unix_sock < 0 || !cons)
		return -EINVAL;
	memset(&msg, 0, sizeof(msg));
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = u.buf;
	msg.msg_controllen = sizeof(u.buf);
	do {
		n = recvmsg(unix_sock, &msg, MSG_CMSG_CLOEXEC);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	for (cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
		int cnt;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		cnt = (int)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		for (i = 0; i < cnt && nfds < 8; i++)
			memcpy(&fds[nfds++], CMSG_DATA(cm) + i * sizeof(int),
			       sizeof(int));
	}
	if (n == 0) {
		ret = -EPIPE;
		goto out_close;
	}
	ret = -EPROTO;
	if ((size_t)n != sizeof(hdr) || (msg.msg_flags & (MSG_CTRUNC | MSG_TRUNC)) ||
	    hdr.magic != ZCHAN_PEER_MAGIC || hdr.version != ZCHAN_PEER_VERSION)
		goto out_close;
	if (hdr.backend == ZCHAN_BACKEND_KERNEL && nfds == 1) {
		z = zchan_alloc(ZCHAN_CONSUMER, ZCHAN_BACKEND_KERNEL);
		if (!z) {
			ret = -ENOMEM;
			goto out_close;
		}
		ret = kernel_attach_fd(z, fds[0]);	/* z owns fds[0] */
		fds[0] = -1;
	} else if (hdr.backend == ZCHAN_BACKEND_MEMFD &&
		   nfds == ZCHAN_MEMFD_NFDS) {
		z = zchan_alloc(ZCHAN_CONSUMER, ZCHAN_BACKEND_MEMFD);
		if (!z) {
			ret = -ENOMEM;
			goto out_close;
		}
		ret = memfd_attach(z, &hdr.layout, fds);
	}
	if (ret && z) {
		zchan_free(z);
		z = NULL;
	}
out_close:
	for (i = 0; i < nfds; i++)
		if (fds[i] >= 0)
			close(fds[i]);	/* mapped, or handed to z as -1 */
	if (ret)
		return ret;
	*cons = z;
	return 0;
}

ZCHAN_EXPORT
int zchan_recv_peer(int unix_sock, struct zchan **cons)
{
	return zchan_keep_errno(do_zchan_recv_peer(unix_sock, cons));
}

ZCHAN_EXPORT
void zchan_close(struct zchan *ch)
{
	int saved_errno = errno;

	if (!ch)
		return;
	if (ch->backend == ZCHAN_BACKEND_MEMFD && ch->own_closed) {
		/* what the kernel does on release: mark, then wake */
		store_release(ch->own_closed, 1);
		if (ch->peer_efd >= 0)
			zchan_kick(ch);
	}
	zchan_free(ch);
	errno = saved_errno;
}

/* -------------------------------------------------------------------- */
/* Introspection                                                         */

ZCHAN_EXPORT
int zchan_fd(const struct zchan *ch)
{
	return ch ? ch->fd : -EINVAL;
}

ZCHAN_EXPORT
int zchan_backend(const struct zchan *ch)
{
	return ch ? ch->backend : -EINVAL;
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
	attr->backend = (unsigned int)ch->backend;
	return 0;
}

ZCHAN_EXPORT
int zchan_stats(const struct zchan *ch, struct zchan_stats *stats)
{
	if (!ch || !stats)
		return -EINVAL;
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
