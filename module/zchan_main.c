// SPDX-License-Identifier: GPL-2.0
/*
 * zchan: kernel-assisted zero-copy channels - the /dev/zchan device, file
 * operations and ioctl dispatch.
 */
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "zchan_priv.h"

static int zchan_open(struct inode *inode, struct file *file)
{
	struct zchan_file *zf = zchan_file_alloc();

	if (!zf)
		return -ENOMEM;
	file->private_data = zf;
	return 0;
}

static int zchan_release(struct inode *inode, struct file *file)
{
	zchan_file_free(file->private_data);
	return 0;
}

/*
 * ->flush runs at every close of a descriptor of this file, including the
 * ones exit_files() does for a dying process.  A pending uring_cmd WAIT
 * holds a reference to the file, so ->release cannot be relied on while
 * one is queued, and io_uring on older kernels cannot cancel it: complete
 * the waits issued through the closing file table here.  A table that
 * closed its last descriptor of the end stops holding it (zchan_hold.c).
 */
static int zchan_flush(struct file *file, fl_owner_t id)
{
	struct zchan_channel *chan;
	struct zchan_end *end;

	end = zchan_file_end(file->private_data, &chan);
	if (end) {
		zchan_cancel_waits(chan, end, id);
		zchan_hold_stop(chan, end, file, id, false);
	}
	return 0;
}

static long zchan_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct zchan_file *zf = file->private_data;
	void __user *uarg = (void __user *)arg;

	struct zchan_channel *chan;
	struct zchan_end *end;
	long ret;

	switch (cmd) {
	case ZCHAN_IOC_CREATE:
	case ZCHAN_IOC_ATTACH:
		ret = cmd == ZCHAN_IOC_CREATE ? zchan_ioctl_create(zf, uarg) :
						zchan_ioctl_attach(zf, uarg);
		/*
		 * The caller holds the end it just took.  Should that fail
		 * (-ENOMEM), the end is held by its file as a PEER_FD file is.
		 */
		end = ret ? NULL : zchan_file_end(zf, &chan);
		if (end)
			zchan_hold_start(chan, end, file);
		return ret;
	case ZCHAN_IOC_USE:
		return zchan_ioctl_use(file, uarg);
	case ZCHAN_IOC_PEER_FD:
		return zchan_ioctl_peer_fd(file, uarg);
	case ZCHAN_IOC_KICK:
		return zchan_ioctl_kick(zf, uarg);
	case ZCHAN_IOC_WAIT:
		return zchan_ioctl_wait(zf, uarg);
	case ZCHAN_IOC_INFO:
		return zchan_ioctl_info(zf, uarg);
	case ZCHAN_IOC_LANE:
		return zchan_ioctl_lane(zf, uarg);
	case ZCHAN_IOC_SEND_PAGES:
		return zchan_ioctl_send_pages(zf, uarg);
	case ZCHAN_IOC_REAP:
		return zchan_ioctl_reap(zf, uarg);
	}
	return -ENOTTY;
}

static const struct file_operations zchan_fops = {
	.owner		= THIS_MODULE,
	.open		= zchan_open,
	.release	= zchan_release,
	.flush		= zchan_flush,
	.unlocked_ioctl	= zchan_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
	.mmap		= zchan_mmap,
	.poll		= zchan_poll,
	.show_fdinfo	= zchan_show_fdinfo,
#ifdef ZCHAN_HAVE_URING_CMD
	.uring_cmd	= zchan_uring_cmd,
#endif
	.llseek		= noop_llseek,
};

static struct miscdevice zchan_misc = {
	.minor	= MISC_DYNAMIC_MINOR,
	.name	= ZCHAN_DEVICE_NAME,
	.fops	= &zchan_fops,
	.mode	= 0666,
};

static int __init zchan_init(void)
{
	int ret;

	/* The UAPI's sizes are frozen: new fields come from reserved space. */
	BUILD_BUG_ON(sizeof(struct zchan_layout) != 128);
	BUILD_BUG_ON(sizeof(struct zchan_create) != 248);
	BUILD_BUG_ON(sizeof(struct zchan_attach) != 232);
	BUILD_BUG_ON(sizeof(struct zchan_info) != 272);
	BUILD_BUG_ON(sizeof(struct zchan_use) != 24);
	BUILD_BUG_ON(sizeof(struct zchan_send_pages) != 64);
	BUILD_BUG_ON(sizeof(struct zchan_completion) != 16);
	BUILD_BUG_ON(sizeof(struct zchan_reap) != 32);
	BUILD_BUG_ON(sizeof(struct zchan_lane_info) != 160);
	/* A lane's regions fit in its stride, below the next lane. */
	BUILD_BUG_ON(ZCHAN_OFF_POOL + ZCHAN_POOL_SIZE_MAX > ZCHAN_LANE_STRIDE);
	BUILD_BUG_ON(ZCHAN_OFF_PAGES + ((u64)ZCHAN_PAGES_MAX << 20) >
		     ZCHAN_OFF_LANES);
	BUILD_BUG_ON(sizeof(struct zchan_prod_ring) != 192);
	BUILD_BUG_ON(sizeof(struct zchan_cons_ring) != 192);
	/* Where zchan_layout_set_words() puts the words: see zchan_find_words(). */
	BUILD_BUG_ON(sizeof(struct zchan_prod_ring) > PAGE_SIZE ||
		     sizeof(struct zchan_cons_ring) > PAGE_SIZE);

	zchan_limits_init();
	zchan_debugfs_init();
	ret = misc_register(&zchan_misc);
	if (ret)
		goto err_debugfs;
	return 0;

err_debugfs:
	zchan_debugfs_exit();
	return ret;
}

static void __exit zchan_exit(void)
{
	misc_deregister(&zchan_misc);
	zchan_uring_exit();
	zchan_debugfs_exit();
}

module_init(zchan_init);
module_exit(zchan_exit);

MODULE_DESCRIPTION("zchan: kernel-assisted zero-copy channels");
MODULE_LICENSE("GPL");
