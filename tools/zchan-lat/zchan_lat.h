/* SPDX-License-Identifier: GPL-2.0 */
/* zchan-lat: shared by zchan_lat.bpf.c and zchan_lat.c. */
#ifndef ZCHAN_LAT_H
#define ZCHAN_LAT_H

#define ZCHAN_LAT_MAX_IDS	1024	/* channels -c NAME can select */

#endif /* ZCHAN_LAT_H */
