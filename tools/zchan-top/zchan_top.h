/* SPDX-License-Identifier: GPL-2.0 */
/* zchan-top: shared by zchan_top.bpf.c and zchan_top.c. */
#ifndef ZCHAN_TOP_H
#define ZCHAN_TOP_H

/* The role of the one histogram per channel: both roles' waits. */
#define ZCHAN_TOP_BOTH_ROLES	0

#endif /* ZCHAN_TOP_H */
