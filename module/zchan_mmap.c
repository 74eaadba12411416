// SPDX-License-Identifier: GPL-2.0
/*
 * zchan: every mapping of a channel file - the rings, the data pool and
 * the transfers of ZCHAN_IOC_SEND_PAGES (zchan_pages.c) - and the channel
 * reference each VMA holds.
 *
 * Ring and pool pages are inserted on fault as ordinary refcounted pages
 * (no PFNMAP or MIXEDMAP), so get_user_pages(), O_DIRECT and
 * process_vm_readv() work on them like on any shared memory.
 */
#include <linux/mm.h>

#include "zchan_priv.h"

#define ZCHAN_PGOFF_CONS	(ZCHAN_OFF_CONS_RING >> PAGE_SHIFT)
#define ZCHAN_PGOFF_POOL	(ZCHAN_OFF_POOL >> PAGE_SHIFT)

/* The region a file page offset falls in, and the page index within it. */
static struct zchan_region *zchan_region_of(struct zchan_channel *chan,
					    unsigned long pgoff,
					    unsigned long *index)
{
	if (pgoff >= ZCHAN_PGOFF_POOL) {
		*index = pgoff - ZCHAN_PGOFF_POOL;
		return &chan->pool;
	}
	if (pgoff >= ZCHAN_PGOFF_CONS) {
		*index = pgoff - ZCHAN_PGOFF_CONS;
		return &chan->cons_ring;
	}
	*index = pgoff;
	return &chan->prod_ring;
}

static vm_fault_t zchan_vm_fault(struct vm_fault *vmf)
{
	struct zchan_channel *chan = vmf->vma->vm_private_data;
	struct zchan_region *r;
	unsigned long index;
	struct page *page;

	r = zchan_region_of(chan, vmf->pgoff, &index);
	if (index >= r->nr_pages)
		return VM_FAULT_SIGBUS;
	page = r->pages[index];
	get_page(page);
	vmf->page = page;
	return 0;
}

static void zchan_vm_open(struct vm_area_struct *vma)
{
	zchan_channel_get(vma->vm_private_data);
}

static void zchan_vm_close(struct vm_area_struct *vma)
{
	zchan_channel_put(vma->vm_private_data);
}

static const struct vm_operations_struct zchan_vm_ops = {
	.open	= zchan_vm_open,
	.close	= zchan_vm_close,
	.fault	= zchan_vm_fault,
};

static void zchan_xfer_vm_open(struct vm_area_struct *vma)
{
	zchan_channel_get(zchan_pages_vm_open(vma));
}

static void zchan_xfer_vm_close(struct vm_area_struct *vma)
{
	zchan_channel_put(zchan_pages_vm_close(vma));
}

static const struct vm_operations_struct zchan_xfer_vm_ops = {
	.open	= zchan_xfer_vm_open,
	.close	= zchan_xfer_vm_close,
	.fault	= zchan_pages_fault,
};

/* A transfer's mapping, by the consumer (see zchan_pages_mmap()). */
static int zchan_mmap_xfer(struct zchan_channel *chan, unsigned int role,
			   struct vm_area_struct *vma)
{
	int ret = zchan_pages_mmap(chan, role, vma);

	if (ret)
		return ret;
	vma->vm_ops = &zchan_xfer_vm_ops;
	zchan_channel_get(chan);
	return 0;
}

/*
 * mmap() of a channel fd: the offset selects the region and the length
 * must be the region's.  Each region has one writer: the producer ring
 * and the pool are read-only for the consumer, the consumer ring is
 * read-only for the producer; such mappings may not become writable later.
 */
int zchan_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct zchan_channel *chan;
	struct zchan_region *r;
	unsigned long index;
	unsigned int role;
	bool writable;

	chan = zchan_file_chan(file->private_data, &role);
	if (!chan)
		return -EINVAL;
	if (!(vma->vm_flags & VM_SHARED))
		return -EINVAL;
	if (vma->vm_pgoff >= ZCHAN_OFF_PAGES >> PAGE_SHIFT)
		return zchan_mmap_xfer(chan, role, vma);

	switch (vma->vm_pgoff) {
	case ZCHAN_OFF_PROD_RING >> PAGE_SHIFT:
		writable = role == ZCHAN_ROLE_PRODUCER;
		break;
	case ZCHAN_OFF_CONS_RING >> PAGE_SHIFT:
		writable = role == ZCHAN_ROLE_CONSUMER;
		break;
	case ZCHAN_OFF_POOL >> PAGE_SHIFT:
		writable = role == ZCHAN_ROLE_PRODUCER;
		break;
	default:
		return -EINVAL;
	}
	r = zchan_region_of(chan, vma->vm_pgoff, &index);
	if (vma_pages(vma) != r->nr_pages)
		return -EINVAL;

	if (!writable) {
		if (vma->vm_flags & VM_WRITE)
			return -EACCES;
#ifdef ZCHAN_HAVE_VM_FLAGS_SET
		vm_flags_clear(vma, VM_MAYWRITE);
#else
		vma->vm_flags &= ~VM_MAYWRITE;
#endif
	}
#ifdef ZCHAN_HAVE_VM_FLAGS_SET
	vm_flags_set(vma, VM_DONTEXPAND);
#else
	vma->vm_flags |= VM_DONTEXPAND;
#endif
	vma->vm_ops = &zchan_vm_ops;
	vma->vm_private_data = chan;
	zchan_channel_get(chan);
	/* Mapping an end holds it (best effort: the mapping stands). */
	zchan_hold_start(chan, zchan_role_end(role), file);
	return 0;
}
