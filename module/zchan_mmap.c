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
#define ZCHAN_PGOFF_LANES	(ZCHAN_OFF_LANES >> PAGE_SHIFT)
#define ZCHAN_LANE_SHIFT	(ilog2(ZCHAN_LANE_STRIDE) - PAGE_SHIFT)

/*
 * The lane a file page offset falls in (lane 0 also at the 1:1 offsets),
 * or NULL if no lane made yet is there; @pgoff becomes the offset within
 * the lane's stride.
 */
static struct zchan_lane *zchan_lane_of(struct zchan_channel *chan,
					unsigned long *pgoff)
{
	unsigned long i;

	if (*pgoff < ZCHAN_PGOFF_LANES)
		return &chan->lane0;
	i = (*pgoff - ZCHAN_PGOFF_LANES) >> ZCHAN_LANE_SHIFT;
	*pgoff -= ZCHAN_PGOFF_LANES + (i << ZCHAN_LANE_SHIFT);
	if (i >= zchan_nr_lanes(chan))
		return NULL;
	return zchan_lane(chan, i);
}

/*
 * The region a page offset within a lane falls in, the page index within
 * it, and which end writes it.
 */
static struct zchan_region *zchan_region_of(struct zchan_lane *lane,
					    unsigned long pgoff,
					    unsigned long *index,
					    enum zchan_end_id *writer)
{
	if (pgoff >= ZCHAN_PGOFF_POOL) {
		*index = pgoff - ZCHAN_PGOFF_POOL;
		*writer = ZCHAN_END_PROD;
		return &lane->pool;
	}
	if (pgoff >= ZCHAN_PGOFF_CONS) {
		*index = pgoff - ZCHAN_PGOFF_CONS;
		*writer = ZCHAN_END_CONS;
		return &lane->cons_ring;
	}
	*index = pgoff;
	*writer = ZCHAN_END_PROD;
	return &lane->prod_ring;
}

static vm_fault_t zchan_vm_fault(struct vm_fault *vmf)
{
	struct zchan_channel *chan = vmf->vma->vm_private_data;
	unsigned long index, pgoff = vmf->pgoff;
	enum zchan_end_id writer;
	struct zchan_region *r;
	struct zchan_lane *lane;
	struct page *page;

	lane = zchan_lane_of(chan, &pgoff);
	if (!lane)
		return VM_FAULT_SIGBUS;
	r = zchan_region_of(lane, pgoff, &index, &writer);
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
 * mmap() of a channel fd: the offset selects the lane and the region, and
 * the length must be the region's.  Each region has one writer: a lane's
 * producer ring and pool are its producer's, read-only for the consumer;
 * the lane's consumer ring is the consumer's, read-only for its producer;
 * such mappings may not become writable later.  A producer maps its own
 * lane only: another producer's lane is -EACCES, even read-only.
 */
int zchan_mmap(struct file *file, struct vm_area_struct *vma)
{
	unsigned long index, pgoff = vma->vm_pgoff;
	enum zchan_end_id writer;
	struct zchan_channel *chan;
	struct zchan_region *r;
	struct zchan_lane *lane;
	struct zchan_end *end;
	unsigned int role;
	bool writable;

	end = zchan_file_end(file->private_data, &chan);
	if (!end)
		return -EINVAL;
	role = end->lane ? ZCHAN_ROLE_PRODUCER : ZCHAN_ROLE_CONSUMER;
	if (!(vma->vm_flags & VM_SHARED))
		return -EINVAL;
	if (pgoff >= ZCHAN_OFF_PAGES >> PAGE_SHIFT && pgoff < ZCHAN_PGOFF_LANES)
		return zchan_mmap_xfer(chan, role, vma);

	lane = zchan_lane_of(chan, &pgoff);
	if (!lane)
		return -EINVAL;
	switch (pgoff) {
	case ZCHAN_OFF_PROD_RING >> PAGE_SHIFT:
	case ZCHAN_OFF_CONS_RING >> PAGE_SHIFT:
	case ZCHAN_OFF_POOL >> PAGE_SHIFT:
		break;
	default:
		return -EINVAL;
	}
	if (end->lane && end->lane != lane)
		return -EACCES;
	r = zchan_region_of(lane, pgoff, &index, &writer);
	if (vma_pages(vma) != r->nr_pages)
		return -EINVAL;
	writable = writer == end->id;

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
	zchan_hold_start(chan, end, file);
	return 0;
}
