// SPDX-License-Identifier: MIT OR LGPL-2.1
/*
 * zchan._zchan: waiting.  Data-path calls retry until the library stops
 * saying -EAGAIN, waiting with zchan_wait() in slices (signals, close()
 * from another thread and deferred releases are seen within one slice);
 * poll(), poll_mask() and wait() ask for readiness, with a timeout.
 */
#include "zchan_py.h"

#include <errno.h>
#include <poll.h>

/* ------------------------------------------------------------------ */
/* Waiting data-path calls                                            */

/*
 * A consumer that waits for a message while its own borrowed messages pin
 * so much of the pool that the producer cannot fit one: a deadlock of
 * both ends unless something is released.  True (BufferError raised) once
 * that has lasted PIN_WAIT_NS.
 */
static int consumer_pins_pool(EndObject *self, int64_t since)
{
	uint64_t pinned = pool_pinned(self);
	struct zchan_attr a;

	if (!pinned || zchan_get_attr(self->ch, &a) || pinned + a.max_msg <= a.pool_size ||
	    monotonic_ns() - since < PIN_WAIT_NS)
		return 0;
	PyErr_Format(PyExc_BufferError,
		     "zchan: the producer cannot go on: this consumer holds %zd "
		     "borrowed message(s) pinning about %llu of the %zu-byte pool "
		     "(the oldest held pins everything after it), and max_msg is "
		     "%zu; release them (arrays from recv_array()/recv_obj() or "
		     "messages kept alive: keep a .copy()), use recv_array(copy=True), "
		     "or create the channel with pool_size >= %llu",
		     self->nheld, (unsigned long long)pinned, a.pool_size, a.max_msg,
		     (unsigned long long)(pinned + 2 * a.max_msg));
	return 1;
}

/*
 * Run @op (a library call taking ZCHAN_NONBLOCK) until it stops saying
 * -EAGAIN or @timeout_ns runs out, waiting with zchan_wait() in slices
 * between attempts.  Called with the lock held; returns op's result,
 * -EAGAIN for timeout 0, -ETIME, or -EINTR / -EBADF with the Python
 * exception to raise already decided by the caller.
 */
long end_retry(EndObject *self, nonblock_op op, void *ctx,
		      int64_t timeout_ns, int release_gil)
{
	int64_t deadline = deadline_of(timeout_ns), since = 0;
	long ret;

	for (;;) {
		if (release_gil) {
			Py_BEGIN_ALLOW_THREADS
			ret = op(self, ctx);
			Py_END_ALLOW_THREADS
		} else {
			ret = op(self, ctx);
		}
		if (ret != -EAGAIN || timeout_ns == 0)
			return ret;
		for (;;) {
			int64_t slice = next_slice(deadline);
			int w;

			if (slice < 0)
				return -ETIME;
			Py_BEGIN_ALLOW_THREADS
			w = zchan_wait(self->ch, slice);
			Py_END_ALLOW_THREADS
			if (self->ndeferred)
				end_flush_deferred(self);
			if (PyErr_CheckSignals())
				return -EINTR;
			if (self->close_requested)
				return -EBADF;
			if (self->role == ROLE_CONSUMER && self->oldest_held) {
				if (!since)
					since = monotonic_ns();
				if (consumer_pins_pool(self, since))
					return -EINTR;
			}
			/*
			 * Ready, or a slice ran out: try again either way (a
			 * producer's wait means room for max_msg; a smaller
			 * message may fit before that).
			 */
			if (w >= 0 || w == -ETIME)
				break;
			return w;
		}
	}
}

/*
 * The end's poll mask, waiting up to @timeout_ns (0: not at all, -1: for
 * ever) for it to be ready: the mask, 0 when the time ran out, or a
 * negative errno (-EINTR with the exception set, -EBADF for a close).
 * Behind another thread's call it waits for the lock within the same
 * time: poll(0) says "not ready" rather than wait.
 */
static int end_ready_mask(EndObject *self, int64_t timeout_ns)
{
	int64_t deadline = deadline_of(timeout_ns);
	int mask;

	if (self->closed)
		return -EBADF;
	if (!self->ch && self->role == ROLE_CONSUMER) {
		if (end_lock(self, timeout_ns ? deadline : -1))
			return PyErr_ExceptionMatches(PyExc_BlockingIOError) ||
			       PyErr_ExceptionMatches(PyExc_TimeoutError) ?
			       (PyErr_Clear(), 0) : -EINTR;
		mask = end_materialise(self, timeout_ns ? deadline : -1);
		end_unlock(self);
		if (mask == -EAGAIN || mask == -ETIME)
			return 0;
		if (mask == -EPIPE)
			return POLLHUP;
		if (mask)
			return mask;
	}
	if (end_enter(self, timeout_ns ? deadline : -1))
		return PyErr_ExceptionMatches(PyExc_BlockingIOError) ||
		       PyErr_ExceptionMatches(PyExc_TimeoutError) ?
		       (PyErr_Clear(), 0) : -EINTR;
	mask = zchan_poll(self->ch);
	while (mask == 0 && timeout_ns) {
		int64_t slice = next_slice(deadline);

		if (slice < 0)
			break;
		Py_BEGIN_ALLOW_THREADS
		mask = zchan_wait(self->ch, slice);
		Py_END_ALLOW_THREADS
		if (mask == -ETIME)
			mask = 0;
		if (self->ndeferred)
			end_flush_deferred(self);
		if (PyErr_CheckSignals()) {
			mask = -EINTR;
			break;
		}
		if (self->close_requested) {
			mask = -EBADF;
			break;
		}
	}
	end_unlock(self);
	return mask;
}

/* Whether a call would not block: a message or the stream's end; room. */
static int mask_ready(EndObject *self, int mask)
{
	if (self->role == ROLE_CONSUMER)
		return !!(mask & (POLLIN | POLLHUP));
	return !!(mask & (POLLOUT | POLLHUP | POLLERR));
}

/* poll() and wait(): would a call not block, waiting up to a timeout? */
static PyObject *ready_within(EndObject *self, PyObject *args, PyObject *kw,
			      const char *format, int64_t default_ns)
{
	static char *kwlist[] = { "timeout", NULL };
	int64_t timeout_ns = default_ns;
	PyObject *tmo = NULL;
	int mask;

	if (!PyArg_ParseTupleAndKeywords(args, kw, format, kwlist, &tmo))
		return NULL;
	if (tmo && parse_timeout(tmo, &timeout_ns))
		return NULL;
	mask = end_ready_mask(self, timeout_ns);
	if (mask < 0)
		return mask == -EBUSY ? pending_busy_error() : data_error(mask);
	return PyBool_FromLong(mask_ready(self, mask));
}

const char end_poll_doc[] =
"poll(timeout=0.0) -> bool\n--\n\n"
"Whether a call would not block now (multiprocessing.Connection.poll()):\n"
"a consumer has a message or its stream ended (recv() raises then); a\n"
"producer has room for a max_msg message or its peer is gone.  Waits up\n"
"to timeout seconds (None: for ever).  poll_mask() gives the poll mask.";

PyObject *end_poll(EndObject *self, PyObject *args, PyObject *kw)
{
	return ready_within(self, args, kw, "|O:poll", 0);
}

const char end_poll_mask_doc[] =
"poll_mask() -> int\n--\n\n"
"The end's readiness now, as a poll mask (select.POLLIN: a message;\n"
"select.POLLOUT: room for a max_msg message; POLLHUP: the peer is gone).\n"
"A pending consumer whose producer was not used yet returns 0.  (This was\n"
"poll() before poll() became multiprocessing's.)";

PyObject *end_poll_mask(EndObject *self, PyObject *unused)
{
	int mask = end_ready_mask(self, 0);

	if (mask < 0)
		return mask == -EBUSY ? pending_busy_error() : data_error(mask);
	return PyLong_FromLong(mask);
}

const char end_wait_doc[] =
"wait(timeout=None) -> bool\n--\n\n"
"Wait (the GIL released) until a call would not block, as poll(timeout),\n"
"and say whether it would: False when timeout seconds passed first.";

PyObject *end_wait(EndObject *self, PyObject *args, PyObject *kw)
{
	return ready_within(self, args, kw, "|O:wait", -1);
}
