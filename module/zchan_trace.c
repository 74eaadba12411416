// SPDX-License-Identifier: GPL-2.0
/*
 * zchan: the tracepoints' definitions (see zchan_trace.h).
 */
#define CREATE_TRACE_POINTS
#include "zchan_trace.h"
