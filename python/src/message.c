// SPDX-License-Identifier: MIT OR LGPL-2.1
/*
 * zchan._zchan: the consumer's calls (recv, recv_zc, the array fast path,
 * iteration) and the Message they borrow: a read-only view of the pool
 * until it is released.
 */
#include "zchan_py.h"

#include <endian.h>
#include <errno.h>
#include <string.h>


/* ------------------------------------------------------------------ */
/* Consumer                                                           */

struct recv_ctx {
	const void *buf;
};

static long op_recv_zc(EndObject *self, void *ctx)
{
	struct recv_ctx *r = ctx;

	return zchan_recv_zc(self->ch, &r->buf, ZCHAN_NONBLOCK);
}

/*
 * What borrowed messages pin.  The pool is a ring: the producer reuses
 * space in order, so the oldest message still borrowed pins everything
 * received after it, released or not.  This end counts the pool bytes it
 * took (each message rounded up to 64 bytes, plus 64 for the slot) and
 * keeps its held messages oldest first: pinned is what it took since the
 * oldest one still held.
 */
#define POOL_COST(len)	((((uint64_t)(len) + 63) & ~63ULL) + 64)

uint64_t pool_pinned(EndObject *end)
{
	return end->oldest_held ? end->borrowed - end->oldest_held->at : 0;
}

void held_link(EndObject *end, MessageObject *msg)
{
	msg->older = end->newest_held;
	msg->newer = NULL;
	if (end->newest_held)
		end->newest_held->newer = msg;
	else
		end->oldest_held = msg;
	end->newest_held = msg;
	end->nheld++;
}

void held_unlink(MessageObject *msg)
{
	EndObject *end = msg->end;

	if (msg->older)
		msg->older->newer = msg->newer;
	else if (end->oldest_held == msg)
		end->oldest_held = msg->newer;
	if (msg->newer)
		msg->newer->older = msg->older;
	else if (end->newest_held == msg)
		end->newest_held = msg->older;
	msg->older = msg->newer = NULL;
	end->nheld--;
}

/* Borrow the next message: its length, or a negative errno. */
static long consumer_borrow(EndObject *self, PyObject *tmo, const void **buf)
{
	struct recv_ctx r = { 0 };
	int64_t timeout_ns;
	long ret;

	if (parse_timeout(tmo, &timeout_ns))
		return -EINTR;
	if (end_enter(self, timeout_ns ? deadline_of(timeout_ns) : -1))
		return -EINTR;
	ret = end_retry(self, op_recv_zc, &r, timeout_ns, 0);
	if (ret < 0) {
		end_unlock(self);
		if (ret == -EINTR && !PyErr_Occurred())
			ret = -EIO;
		return ret;
	}
	*buf = r.buf;
	self->borrowed += POOL_COST(ret);
	return ret;	/* still locked */
}

PyDoc_STRVAR(consumer_recv_doc,
"recv(*, timeout=None) -> bytes\n--\n\n"
"Receive the next message as bytes (one copy out of the pool).  Waits\n"
"(the GIL released) up to timeout seconds; timeout=0 raises\n"
"BlockingIOError when nothing is ready, an expired timeout TimeoutError.\n"
"After the producer is gone, every committed message is still received,\n"
"then BrokenPipeError.");

static PyObject *consumer_recv(EndObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "timeout", NULL };
	PyObject *tmo = Py_None, *bytes;
	const void *buf;
	long len;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "|$O:recv", kwlist, &tmo))
		return NULL;
	if (self->pushback) {
		bytes = PyBytes_FromStringAndSize(self->pushback, self->pushback_len);
		if (bytes)
			pushback_drop(self);
		return bytes;
	}
	len = consumer_borrow(self, tmo, &buf);
	if (len < 0)
		return data_error(len);
	bytes = PyBytes_FromStringAndSize(NULL, len);
	if (bytes) {
		char *dst = PyBytes_AS_STRING(bytes);

		if (len >= 65536) {
			Py_BEGIN_ALLOW_THREADS
			memcpy(dst, buf, len);
			Py_END_ALLOW_THREADS
		} else {
			memcpy(dst, buf, len);
		}
	}
	zchan_release(self->ch, buf);
	end_unlock(self);
	return bytes;
}

PyDoc_STRVAR(consumer_recv_zc_doc,
"recv_zc(*, timeout=None) -> Message\n--\n\n"
"Borrow the next message where it lies in the pool: a read-only buffer\n"
"(memoryview(msg), bytes(msg), len(msg)) given back with release() or at\n"
"the end of a with block.  Releasing while a memoryview or an array\n"
"still exports it raises BufferError.  Waits like recv().");

/* Borrow the next message (waiting up to @tmo) as a new Message. */
static MessageObject *message_new(EndObject *self, PyObject *tmo)
{
	MessageObject *msg;
	const void *buf;
	long len;

	msg = PyObject_New(MessageObject, &MessageType);
	if (!msg)
		return NULL;
	if (self->pushback) {	/* still counted in outstanding */
		msg->end = (EndObject *)Py_NewRef(self);
		msg->buf = self->pushback;
		msg->len = self->pushback_len;
		msg->released = 0;
		msg->exports = 0;
		msg->at = self->borrowed;
		held_link(self, msg);
		self->pushback = NULL;
		return msg;
	}
	msg->end = NULL;
	msg->released = 1;
	msg->exports = 0;
	len = consumer_borrow(self, tmo, &buf);
	if (len < 0) {
		Py_DECREF(msg);
		return (MessageObject *)data_error(len);
	}
	msg->end = (EndObject *)Py_NewRef(self);
	msg->buf = buf;
	msg->len = len;
	msg->released = 0;
	msg->at = self->borrowed - POOL_COST(len);
	held_link(self, msg);
	self->outstanding++;
	end_unlock(self);
	return msg;
}

static PyObject *consumer_recv_zc(EndObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "timeout", NULL };
	PyObject *tmo = Py_None;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "|$O:recv_zc", kwlist, &tmo))
		return NULL;
	return (PyObject *)message_new(self, tmo);
}

/*
 * recv_array()'s fast path (zchan/__init__.py): borrow the next message
 * and return (header, view): a memoryview of the message (which releases
 * it when the last user of the view is gone) and the bytes of its array
 * header, or None when it does not start like one.  The header's data
 * offset is bounded by the message; the caller parses the rest.
 */
#define ARRAY_MAGIC	"ZCA1"
#define ARRAY_HDR_MAX	4096

static PyObject *consumer_recv_array(EndObject *self, PyObject *tmo)
{
	MessageObject *msg = message_new(self, tmo);
	PyObject *view, *hdr = NULL, *ret;
	uint32_t offset;

	if (!msg)
		return NULL;
	if (msg->len >= 12 && !memcmp(msg->buf, ARRAY_MAGIC, 4)) {
		memcpy(&offset, (const char *)msg->buf + 4, sizeof(offset));
		offset = le32toh(offset);
		if (offset >= 12 && offset <= ARRAY_HDR_MAX && offset <= msg->len)
			hdr = PyBytes_FromStringAndSize(msg->buf, offset);
		else	/* an array message that lies: b"" (refused, released) */
			hdr = PyBytes_FromStringAndSize(NULL, 0);
	} else {
		hdr = Py_NewRef(Py_None);
	}
	view = hdr ? PyMemoryView_FromObject((PyObject *)msg) : NULL;
	Py_DECREF(msg);		/* the view keeps it */
	ret = view ? PyTuple_Pack(2, hdr, view) : NULL;
	Py_XDECREF(view);
	Py_XDECREF(hdr);
	return ret;
}

PyObject *consumer_iternext(EndObject *self)
{
	static PyObject *noargs;
	PyObject *ret;

	if (!noargs && !(noargs = PyTuple_New(0)))
		return NULL;
	ret = consumer_recv(self, noargs, NULL);
	if (!ret && PyErr_ExceptionMatches(PyExc_BrokenPipeError))
		PyErr_Clear();	/* end of the stream: StopIteration */
	return ret;
}

/*
 * A message of the wrong kind (recv_array() of bytes...) is not lost: the
 * call that refuses it leaves it for the next receive on this end.
 */
static PyObject *consumer_push_back(EndObject *self, PyObject *obj)
{
	MessageObject *msg = (MessageObject *)obj;

	if (!PyObject_TypeCheck(obj, &MessageType) || msg->end != self ||
	    msg->released || msg->exports || self->pushback) {
		PyErr_SetString(PyExc_ValueError, "zchan: cannot push this message back");
		return NULL;
	}
	/* the end takes the borrow over (and its count in outstanding) */
	held_unlink(msg);
	msg->released = 1;
	self->pushback = msg->buf;
	self->pushback_len = msg->len;
	Py_RETURN_NONE;
}

/* Give a pushed-back message back (recv() copied it, or close()). */
void pushback_drop(EndObject *self)
{
	const void *buf = self->pushback;

	if (!buf)
		return;
	self->pushback = NULL;
	end_give_back(self, buf, 0);
	end_put_outstanding(self);
}

PyDoc_STRVAR(consumer_pinned_doc,
"pinned() -> int\n--\n\n"
"Pool bytes this consumer's held messages pin now (the oldest held\n"
"message pins everything received after it): the producer has room\n"
"for about pool_size - pinned() bytes.  0 when nothing is held.");

static PyObject *consumer_pinned(EndObject *self, PyObject *unused)
{
	return PyLong_FromUnsignedLongLong(pool_pinned(self));
}

PyMethodDef consumer_methods[] = {
	{ "pinned", (PyCFunction)consumer_pinned, METH_NOARGS, consumer_pinned_doc },
	{ "_push_back", (PyCFunction)consumer_push_back, METH_O, NULL },
	{ "recv", (PyCFunction)consumer_recv, METH_VARARGS | METH_KEYWORDS, consumer_recv_doc },
	{ "recv_zc", (PyCFunction)consumer_recv_zc, METH_VARARGS | METH_KEYWORDS, consumer_recv_zc_doc },
	{ "_recv_array", (PyCFunction)consumer_recv_array, METH_O, NULL },
	{ NULL }
};

/* ------------------------------------------------------------------ */
/* Message                                                            */

PyDoc_STRVAR(message_release_doc,
"release()\n--\n\n"
"Give the message back to the producer.  BufferError while a memoryview\n"
"or an array still exports it.  Releasing twice does nothing.");

static int message_release_now(MessageObject *self)
{
	int ret;

	self->released = 1;
	held_unlink(self);
	ret = end_give_back(self->end, self->buf, 0);
	end_put_outstanding(self->end);
	return ret;
}

static PyObject *message_release(MessageObject *self, PyObject *unused)
{
	int ret;

	if (self->released)
		Py_RETURN_NONE;
	if (self->exports) {
		PyErr_Format(PyExc_BufferError,
			     "zchan: cannot release a message while %zd memoryview(s) "
			     "or array(s) still export it", self->exports);
		return NULL;
	}
	ret = message_release_now(self);
	if (ret)
		return set_error(ret);
	Py_RETURN_NONE;
}

static void message_dealloc(MessageObject *self)
{
	if (!self->released && self->end)
		message_release_now(self);
	Py_CLEAR(self->end);
	PyObject_Free(self);
}

static int message_getbuffer(MessageObject *self, Py_buffer *view, int flags)
{
	if (self->released) {
		PyErr_SetString(PyExc_BufferError, "zchan: message already released");
		view->obj = NULL;
		return -1;
	}
	if (PyBuffer_FillInfo(view, (PyObject *)self, (void *)self->buf, self->len, 1, flags))
		return -1;
	self->exports++;
	return 0;
}

static void message_releasebuffer(MessageObject *self, Py_buffer *view)
{
	self->exports--;
}

static Py_ssize_t message_length(MessageObject *self)
{
	return self->len;
}

/* msg[i], msg[a:b]: through a memoryview, so a slice keeps the export. */
static PyObject *message_subscript(MessageObject *self, PyObject *key)
{
	PyObject *view = PyMemoryView_FromObject((PyObject *)self), *ret;

	if (!view)
		return NULL;
	ret = PyObject_GetItem(view, key);
	Py_DECREF(view);
	return ret;
}

static PyObject *message_enter(MessageObject *self, PyObject *unused)
{
	return Py_NewRef(self);
}

static PyObject *message_exit(MessageObject *self, PyObject *args)
{
	PyObject *r = message_release(self, NULL);

	if (!r)
		return NULL;
	Py_DECREF(r);
	Py_RETURN_FALSE;
}

static PyObject *message_get_released(MessageObject *self, void *c)
{
	return PyBool_FromLong(self->released);
}

static PyBufferProcs message_as_buffer = {
	.bf_getbuffer = (getbufferproc)message_getbuffer,
	.bf_releasebuffer = (releasebufferproc)message_releasebuffer,
};

static PySequenceMethods message_as_sequence = {
	.sq_length = (lenfunc)message_length,
};

static PyMappingMethods message_as_mapping = {
	.mp_length = (lenfunc)message_length,
	.mp_subscript = (binaryfunc)message_subscript,
};

static PyMethodDef message_methods[] = {
	{ "release", (PyCFunction)message_release, METH_NOARGS, message_release_doc },
	{ "__enter__", (PyCFunction)message_enter, METH_NOARGS, NULL },
	{ "__exit__", (PyCFunction)message_exit, METH_VARARGS, NULL },
	{ NULL }
};

static PyGetSetDef message_getset[] = {
	{ "released", (getter)message_get_released, NULL, "True once released", NULL },
	{ NULL }
};

PyTypeObject MessageType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "zchan.Message",
	.tp_basicsize = sizeof(MessageObject),
	.tp_dealloc = (destructor)message_dealloc,
	.tp_as_buffer = &message_as_buffer,
	.tp_as_sequence = &message_as_sequence,
	.tp_as_mapping = &message_as_mapping,
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_doc = "A borrowed, read-only message (Consumer.recv_zc()): release() it.",
	.tp_methods = message_methods,
	.tp_getset = message_getset,
};

