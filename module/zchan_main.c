// SPDX-License-Identifier: GPL-2.0
/*
 * zchan: kernel-assisted zero-copy channels - device and ioctl dispatch.
 */
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/zchan.h>

static long zchan_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	return -ENOTTY;
}

static const struct file_operations zchan_fops = {
	.owner		= THIS_MODULE,
	.unlocked_ioctl	= zchan_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
	.llseek		= noop_llseek,
};

static struct miscdevice zchan_misc = {
	.minor	= MISC_DYNAMIC_MINOR,
	.name	= ZCHAN_DEVICE_NAME,
	.fops	= &zchan_fops,
	.mode	= 0666,
};

module_misc_device(zchan_misc);

MODULE_DESCRIPTION("zchan: kernel-assisted zero-copy channels");
MODULE_LICENSE("GPL");
