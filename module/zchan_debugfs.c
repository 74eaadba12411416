// SPDX-License-Identifier: GPL-2.0
/*
 * zchan: debugfs introspection.
 *
 * zchan/channels lists the live channels, one per line (a fan-in
 * channel's lane 0 there), zchan/ends every end of them, one per line;
 * zchan/stats has global counters that leak checks compare before and
 * after a workload.
 */
#include <linux/debugfs.h>
#include <linux/seq_file.h>

#include "zchan_priv.h"

static struct dentry *zchan_debugfs_dir;

static const char *zchan_end_state_name(int state)
{
	switch (state) {
	case ZCHAN_END_OPEN:
		return "open";
	case ZCHAN_END_GONE:
		return "gone";
	}
	return "free";
}

static int zchan_channels_show(struct seq_file *m, void *v)
{
	struct zchan_channel *chan;

	seq_puts(m, "id name pool_size ring_entries max_msg producer consumer published released kicks waits\n");
	mutex_lock(&zchan_lock);
	list_for_each_entry(chan, &zchan_channels, node) {
		seq_printf(m, "%llu %s %llu %u %u %s %s %u %u %lld %lld\n",
			   chan->id, chan->name[0] ? chan->name : "-",
			   chan->layout.pool_size, chan->layout.ring_entries,
			   chan->layout.max_msg,
			   zchan_end_state_name(READ_ONCE(chan->lane0.prod.state)),
			   zchan_end_state_name(READ_ONCE(chan->cons.state)),
			   READ_ONCE(*chan->lane0.w.tail),
			   READ_ONCE(*chan->lane0.w.head),
			   (s64)atomic64_read(&chan->kicks),
			   (s64)atomic64_read(&chan->waits));
	}
	mutex_unlock(&zchan_lock);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(zchan_channels);

/*
 * One line per end: the consumer (lane "-", its words summed over the
 * lanes) and each lane's producer, with the lane's words as last read.
 */
static void zchan_ends_show_one(struct seq_file *m, struct zchan_channel *chan)
{
	u32 i, n, tail, read, head, sum[3] = { 0 };
	struct zchan_lane *lane;

	zchan_for_each_lane(chan, i, n, lane) {
		tail = READ_ONCE(*lane->w.tail);
		read = READ_ONCE(*lane->w.read);
		head = READ_ONCE(*lane->w.head);
		seq_printf(m, "%llu producer %u %s %u %u %u\n", chan->id, i,
			   zchan_end_state_name(READ_ONCE(lane->prod.state)),
			   tail, read, head);
		sum[0] += tail;
		sum[1] += read;
		sum[2] += head;
	}
	seq_printf(m, "%llu consumer - %s %u %u %u\n", chan->id,
		   zchan_end_state_name(READ_ONCE(chan->cons.state)),
		   sum[0], sum[1], sum[2]);
}

static int zchan_ends_show(struct seq_file *m, void *v)
{
	struct zchan_channel *chan;

	seq_puts(m, "id role lane state published taken released\n");
	mutex_lock(&zchan_lock);
	list_for_each_entry(chan, &zchan_channels, node)
		zchan_ends_show_one(m, chan);
	mutex_unlock(&zchan_lock);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(zchan_ends);

static int zchan_stats_show(struct seq_file *m, void *v)
{
	seq_printf(m, "channels %d\n", atomic_read(&zchan_stats.channels));
	seq_printf(m, "files %d\n", atomic_read(&zchan_stats.files));
	seq_printf(m, "pages %lld\n", (s64)atomic64_read(&zchan_stats.pages));
	seq_printf(m, "created %lld\n", (s64)atomic64_read(&zchan_stats.created));
	seq_printf(m, "uring_waits %d\n", zchan_uring_pending_count());
	seq_printf(m, "pinned %lld\n", (s64)atomic64_read(&zchan_stats.pinned));
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(zchan_stats);

void zchan_debugfs_init(void)
{
	zchan_debugfs_dir = debugfs_create_dir("zchan", NULL);
	debugfs_create_file("channels", 0444, zchan_debugfs_dir, NULL,
			    &zchan_channels_fops);
	debugfs_create_file("ends", 0444, zchan_debugfs_dir, NULL,
			    &zchan_ends_fops);
	debugfs_create_file("stats", 0444, zchan_debugfs_dir, NULL,
			    &zchan_stats_fops);
	zchan_chanstat_init(zchan_debugfs_dir);
}

void zchan_debugfs_exit(void)
{
	debugfs_remove_recursive(zchan_debugfs_dir);
}
