// SPDX-License-Identifier: GPL-2.0
/*
 * zchan: holders - who keeps an end open.
 *
 * An end stays open while it has a holder: a process that took it (or
 * asked to hold it) and still has a descriptor of it.  A process is its
 * descriptor table (threads, io-wq and SQPOLL workers share it; fork(2)
 * copies it), so an end records the tables that hold it: CREATE, ATTACH,
 * mmap() and ZCHAN_IOC_USE add the caller's table, and a table stops
 * holding the end with ZCHAN_USE_STOP or when it closes its last
 * descriptor of the end - ->flush sees every close, those of exit() and
 * close-on-exec included.  When the last holder stops, the end is
 * released at once, whatever inherited or in-flight copies of its file
 * remain: a copy inherited through fork() and never held neither keeps
 * the end open nor ends it.  An end nobody has held yet (a fresh PEER_FD
 * file, possibly in flight over a socket) stays open while its file does.
 *
 * A recorded table always has a descriptor of the end's file (checked
 * when it is added, re-checked at each of its closes), so it cannot be
 * freed while recorded: close_files() flushes every descriptor first.
 */
#include <linux/fdtable.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "zchan_priv.h"

/**
 * struct zchan_holder - a descriptor table that holds an end
 * @node: entry in zchan_end.holders, under the channel lock
 * @files: the table; only compared, and walked while it holds the file
 */
struct zchan_holder {
	struct list_head node;
	struct files_struct *files;
};

static int zchan_is_file(const void *file, struct file *f, unsigned int fd)
{
	return f == file;
}

/* Does @files have a descriptor of @file?  Takes files->file_lock. */
static bool zchan_table_has_fd(struct files_struct *files, struct file *file)
{
	return iterate_fd(files, 0, zchan_is_file, file);
}

static struct zchan_holder *zchan_holder_find(struct zchan_end *end,
					      fl_owner_t files)
{
	struct zchan_holder *h;

	list_for_each_entry(h, &end->holders, node)
		if (h->files == files)
			return h;
	return NULL;
}

/**
 * zchan_hold_start - the calling process starts holding @end
 * @chan: the channel
 * @end: the end, which @file is
 * @file: the end's file, as reached through a descriptor of the caller
 *
 * Return: 0 (also if the caller already holds it), -EPIPE if the end is
 * released, -EBADF if the caller has no descriptor of @file, -ENOMEM.
 */
int zchan_hold_start(struct zchan_channel *chan, struct zchan_end *end,
		    struct file *file)
{
	struct files_struct *files = current->files;
	struct zchan_holder *new;
	int ret = 0;

	if (!files)
		return -EBADF;
	new = kzalloc(sizeof(*new), GFP_KERNEL_ACCOUNT);
	if (!new)
		return -ENOMEM;
	new->files = files;

	spin_lock(&chan->lock);
	if (end->state != ZCHAN_END_OPEN)
		ret = -EPIPE;
	else if (zchan_holder_find(end, files))
		ret = 0;
	else if (!zchan_table_has_fd(files, file))
		ret = -EBADF;
	else {
		list_add_tail(&new->node, &end->holders);
		new = NULL;
	}
	spin_unlock(&chan->lock);
	kfree(new);
	return ret;
}

/**
 * zchan_hold_stop - table @files may stop holding @end
 * @chan: the channel
 * @end: the end, which @file is
 * @file: the end's file
 * @files: the table (->flush's owner, or current->files)
 * @always: stop even if @files still has a descriptor (ZCHAN_USE_STOP);
 *	otherwise only if it holds none (a close)
 *
 * Releases the end when its last holder stops.
 */
void zchan_hold_stop(struct zchan_channel *chan, struct zchan_end *end,
		    struct file *file, fl_owner_t files, bool always)
{
	struct zchan_holder *h;
	bool last = false;

	spin_lock(&chan->lock);
	h = zchan_holder_find(end, files);
	if (h && (always || !zchan_table_has_fd(h->files, file))) {
		list_del(&h->node);
		last = list_empty(&end->holders) &&
		       end->state == ZCHAN_END_OPEN;
	} else {
		h = NULL;
	}
	spin_unlock(&chan->lock);
	kfree(h);
	if (last)
		zchan_end_release(chan, end);
}

/* The end's file is gone: forget its holders (normally none are left). */
void zchan_hold_forget(struct zchan_channel *chan, struct zchan_end *end)
{
	struct zchan_holder *h, *tmp;
	LIST_HEAD(gone);

	spin_lock(&chan->lock);
	list_splice_init(&end->holders, &gone);
	spin_unlock(&chan->lock);
	list_for_each_entry_safe(h, tmp, &gone, node)
		kfree(h);
}

long zchan_ioctl_use(struct file *file, struct zchan_use __user *arg)
{
	struct zchan_channel *chan;
	struct zchan_end *end;
	struct zchan_use u;

	if (copy_from_user(&u, arg, sizeof(u)))
		return -EFAULT;
	if (u.flags & ~ZCHAN_USE_STOP || u.resv ||
	    !zchan_all_zero(u.reserved, sizeof(u.reserved)))
		return -EINVAL;
	end = zchan_file_end(file->private_data, &chan);
	if (!end)
		return -EINVAL;
	if (u.flags & ZCHAN_USE_STOP) {
		zchan_hold_stop(chan, end, file, current->files, true);
		return 0;
	}
	return zchan_hold_start(chan, end, file);
}
