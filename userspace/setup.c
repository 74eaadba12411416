// SPDX-License-Identifier: MIT OR LGPL-2.1
/*
 * Channel setup and teardown, the calls applications make first: the
 * attributes are checked, a backend is chosen (kernel.c, else memfd.c),
 * the handle is mapped (handle.c).  The consumer end can also come from
 * another process through zchan_recv_peer() (peer.c).
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "zchan_int.h"

/* The table of backend @backend (ZCHAN_BACKEND_*), NULL if none. */
const struct zchan_ops *__zchan_backend_ops(unsigned int backend)
{
	switch (backend) {
	case ZCHAN_BACKEND_KERNEL:
		return &__zchan_kernel_ops;
	case ZCHAN_BACKEND_MEMFD:
		return &__zchan_memfd_ops;
	default:
		return NULL;
	}
}

/*
 * The backend a new handle gets, from @want (ZCHAN_BACKEND_AUTO: from
 * $ZCHAN_BACKEND, else the kernel's where /dev/zchan opens): its table,
 * with *devfd open for the kernel's; NULL and *err if there is none.
 */
static const struct zchan_ops *pick_backend(unsigned int want, int *devfd,
					    int *err)
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
		else if (env && *env) {
			*err = -EINVAL;
			return NULL;
		}
	}
	if (want == ZCHAN_BACKEND_MEMFD)
		return __zchan_backend_ops(want);
	fd = __zchan_kernel_open_dev();
	if (fd >= 0) {
		*devfd = fd;
		return __zchan_backend_ops(ZCHAN_BACKEND_KERNEL);
	}
	if (want == ZCHAN_BACKEND_KERNEL) {
		*err = fd;
		return NULL;
	}
	return __zchan_backend_ops(ZCHAN_BACKEND_MEMFD);	/* auto: no module */
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
	if (attr->flags & ~(ZCHAN_BUSY_POLL | ZCHAN_BROADCAST))
		return -EINVAL;
	if (attr->max_producers > ZCHAN_ENDS_MAX ||
	    attr->max_consumers > ZCHAN_ENDS_MAX)
		return -EINVAL;
	/*
	 * Of many-ended channels, fan-in (several producers, one consumer)
	 * and broadcast to several consumers from one producer are built
	 * (Documentation/many.rst); the backend may refuse them too.
	 */
	if ((attr->max_producers > 1 && attr->max_consumers > 1) ||
	    (attr->max_consumers > 1 && !(attr->flags & ZCHAN_BROADCAST)))
		return -EOPNOTSUPP;
	if (attr->mode & ~0777U)
		return -EINVAL;
	if (attr->backend > ZCHAN_BACKEND_MEMFD)
		return -EINVAL;
	if (attr->ring_entries && (!__zchan_is_pow2(attr->ring_entries) ||
				   attr->ring_entries > ZCHAN_RING_ENTRIES_MAX))
		return -EINVAL;
	if (attr->max_msg > ZCHAN_MSG_MAX)
		return -EINVAL;
	if (attr->pool_size > ZCHAN_POOL_SIZE_MAX)
		return -ENOMEM;		/* a pool too large, as the module says */
	g->pool_size = __zchan_page_align(attr->pool_size ? attr->pool_size :
					ZCHAN_DEFAULT_POOL_SIZE);
	g->entries = attr->ring_entries ? attr->ring_entries :
		     ZCHAN_DEFAULT_RING_ENTRIES;
	max_msg = attr->max_msg;
	if (!max_msg)
		max_msg = g->pool_size / 4 < ZCHAN_MSG_MAX ? g->pool_size / 4 :
			  ZCHAN_MSG_MAX;
	if (max_msg > g->pool_size / 2)
		return -EINVAL;
	g->max_msg = (uint32_t)max_msg;
	g->mode = attr->mode ? attr->mode : 0600;
	g->max_producers = attr->max_producers ? attr->max_producers : 1;
	g->max_consumers = attr->max_consumers ? attr->max_consumers : 1;
	g->flags = attr->flags & ZCHAN_BROADCAST;
	*flags = attr->flags & ZCHAN_BUSY_POLL;
	*backend = attr->backend;
	return 0;
}

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
	const struct zchan_ops *ops;
	struct zchan_geom g;
	unsigned int flags, want;
	struct zchan *z;
	int devfd, ret;

	if (!prod)
		return -EINVAL;
	ret = check_name(name);
	if (ret)
		return ret;
	ret = check_attr(attr, &g, &flags, &want);
	if (ret)
		return ret;
	ops = pick_backend(want, &devfd, &ret);
	if (!ops)
		return ret;
	if ((name && !ops->open) || (g.max_producers > 1 && !ops->group_init)) {
		/* names live in the kernel module; fan-in in the backends */
		if (devfd >= 0)
			__sys_close(devfd);
		return -EOPNOTSUPP;
	}
	z = __zchan_alloc(ZCHAN_PRODUCER, ops);
	if (!z) {
		if (devfd >= 0)
			__sys_close(devfd);
		return -ENOMEM;
	}
	z->flags = flags;
	z->fd = devfd;
	z->max_producers = g.max_producers;
	z->max_consumers = g.max_consumers;
	z->chan_flags = g.flags;
	ret = ops->create(z, name, &g);
	if (ret) {
		__zchan_free(z);
		return ret;
	}
	*prod = z;
	return 0;
}

ZCHAN_EXPORT
int zchan_create(const char *name, const struct zchan_attr *attr,
		 struct zchan **prod)
{
	return __zchan_keep_errno(do_zchan_create(name, attr, prod));
}

static int do_zchan_attach(const char *name, unsigned int role,
			   struct zchan **end)
{
	const struct zchan_ops *ops;
	struct zchan *z;
	int devfd, ret;

	if (!name || !end || (role != ZCHAN_ROLE_PRODUCER &&
			      role != ZCHAN_ROLE_CONSUMER))
		return -EINVAL;
	ret = check_name(name);
	if (ret)
		return ret;
	ops = pick_backend(ZCHAN_BACKEND_AUTO, &devfd, &ret);
	if (!ops)
		return ret;
	if (!ops->open)
		return -EOPNOTSUPP;
	z = __zchan_alloc((int)role, ops);
	if (!z) {
		__sys_close(devfd);
		return -ENOMEM;
	}
	z->fd = devfd;
	z->max_producers = z->max_consumers = 1;
	ret = ops->open(z, name);
	if (ret) {
		__zchan_free(z);
		return ret;
	}
	ret = __zchan_fanin_new(&z);	/* a fan-in consumer: its group */
	if (ret)
		return ret;
	*end = z;
	return 0;
}

ZCHAN_EXPORT
int zchan_attach(const char *name, unsigned int role, struct zchan **end)
{
	return __zchan_keep_errno(do_zchan_attach(name, role, end));
}

ZCHAN_EXPORT
int zchan_open(const char *name, struct zchan **cons)
{
	return __zchan_keep_errno(do_zchan_attach(name, ZCHAN_ROLE_CONSUMER,
						  cons));
}

ZCHAN_EXPORT
void zchan_close(struct zchan *ch)
{
	int saved_errno = errno;

	if (!ch)
		return;
	__zchan_pages_close(ch);	/* unpinned as their mappings go */
	/* a copy that was only inherited says nothing */
	if (__zchan_held_here(ch)) {
		bool last = ch->ops->release(ch);

		if (last)
			__zchan_prod_end_loans(ch);
		ch->ops->close(ch, last);
	}
	__zchan_free(ch);
	errno = saved_errno;
}
