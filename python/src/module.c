// SPDX-License-Identifier: MIT OR LGPL-2.1
/*
 * zchan._zchan: the module's functions (create, open, recv_peer) and its
 * init.
 */
#include "zchan_py.h"

#include <poll.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Module functions                                                   */

static int parse_backend(PyObject *obj, unsigned int *backend)
{
	const char *s;

	if (!PyUnicode_Check(obj)) {
		PyErr_SetString(PyExc_TypeError, "backend must be \"auto\", \"kernel\" or \"memfd\"");
		return -1;
	}
	s = PyUnicode_AsUTF8(obj);
	if (!s)
		return -1;
	if (!strcmp(s, "auto"))
		*backend = ZCHAN_BACKEND_AUTO;
	else if (!strcmp(s, "kernel"))
		*backend = ZCHAN_BACKEND_KERNEL;
	else if (!strcmp(s, "memfd"))
		*backend = ZCHAN_BACKEND_MEMFD;
	else {
		PyErr_Format(PyExc_ValueError, "unknown backend %R (\"auto\", \"kernel\" or \"memfd\")", obj);
		return -1;
	}
	return 0;
}

static int parse_name(PyObject *obj, const char **name)
{
	Py_ssize_t len;

	*name = NULL;
	if (obj == Py_None)
		return 0;
	if (!PyUnicode_Check(obj)) {
		PyErr_SetString(PyExc_TypeError, "name must be a str or None");
		return -1;
	}
	*name = PyUnicode_AsUTF8AndSize(obj, &len);
	if (!*name)
		return -1;
	if ((Py_ssize_t)strlen(*name) != len || !len) {
		PyErr_SetString(PyExc_ValueError, "name must be non-empty and contain no NUL");
		return -1;
	}
	/* a name, not a path: no "/", ".", "..", control or blank-only names */
	if (strchr(*name, '/') || !strcmp(*name, ".") || !strcmp(*name, "..") ||
	    strspn(*name, " \t") == (size_t)len) {
		PyErr_Format(PyExc_ValueError,
			     "zchan: channel name %R: a name has no \"/\", is not "
			     "\".\" or \"..\", and is not blank", obj);
		return -1;
	}
	for (Py_ssize_t i = 0; i < len; i++)
		if ((unsigned char)(*name)[i] < 0x20 || (*name)[i] == 0x7f) {
			PyErr_Format(PyExc_ValueError,
				     "zchan: channel name %R has a control character", obj);
			return -1;
		}
	return 0;
}

/* The attributes of create()/pipe(), validated before the library sees them. */
static int parse_attr(struct zchan_attr *a, Py_ssize_t pool_size, Py_ssize_t max_msg,
		      Py_ssize_t ring_entries, int mode, int busy_poll, PyObject *backend)
{
	zchan_attr_init(a);
	if (pool_size < 0 || max_msg < 0 || ring_entries < 0 || ring_entries > UINT32_MAX) {
		PyErr_SetString(PyExc_ValueError, "pool_size, max_msg and ring_entries must be >= 0");
		return -1;
	}
	if (ring_entries & (ring_entries - 1)) {
		PyErr_SetString(PyExc_ValueError, "ring_entries must be a power of two");
		return -1;
	}
	if (mode < 0 || mode > 07777) {
		PyErr_SetString(PyExc_ValueError, "mode must be permission bits (0 to 0o7777)");
		return -1;
	}
	a->pool_size = pool_size;
	a->max_msg = max_msg;
	a->ring_entries = (unsigned int)ring_entries;
	a->mode = mode;
	a->flags = busy_poll ? ZCHAN_BUSY_POLL : 0;
	return parse_backend(backend, &a->backend);
}

/* create()'s many-ended attributes: how many ends of each role, broadcast. */
static int parse_ends(struct zchan_attr *a, Py_ssize_t max_producers,
		      Py_ssize_t max_consumers, int broadcast)
{
	if (max_producers < 1 || max_producers > ZCHAN_ENDS_MAX ||
	    max_consumers < 1 || max_consumers > ZCHAN_ENDS_MAX) {
		PyErr_Format(PyExc_ValueError,
			     "max_producers and max_consumers must be 1 to %u",
			     ZCHAN_ENDS_MAX);
		return -1;
	}
	a->max_producers = (unsigned int)max_producers;
	a->max_consumers = (unsigned int)max_consumers;
	if (broadcast)
		a->flags |= ZCHAN_BROADCAST;
	return 0;
}

/* A role argument: ROLE_PRODUCER or ROLE_CONSUMER. */
int parse_role(int role)
{
	if (role != ZCHAN_ROLE_PRODUCER && role != ZCHAN_ROLE_CONSUMER) {
		PyErr_Format(PyExc_ValueError,
			     "zchan: role %d: zchan.ROLE_PRODUCER (%d) or zchan.ROLE_CONSUMER (%d)",
			     role, ZCHAN_ROLE_PRODUCER, ZCHAN_ROLE_CONSUMER);
		return -1;
	}
	return 0;
}

static PyObject *mod_create(PyObject *mod, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "cls", "name", "pool_size", "max_msg", "ring_entries",
				  "mode", "busy_poll", "backend", "pending",
				  "max_producers", "max_consumers", "broadcast", NULL };
	Py_ssize_t pool_size = 0, max_msg = 0, ring_entries = 0;
	Py_ssize_t max_producers = 1, max_consumers = 1;
	PyObject *nameobj = Py_None, *backend = NULL;
	int mode = 0600, busy_poll = 0, pending = -1, broadcast = 0, ret;
	PyTypeObject *cls;
	struct zchan_attr a;
	const char *name;
	EndObject *self;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "O!|O$nnnipOinnp:create", kwlist,
					 &PyType_Type, &cls, &nameobj, &pool_size,
					 &max_msg, &ring_entries, &mode, &busy_poll,
					 &backend, &pending, &max_producers,
					 &max_consumers, &broadcast))
		return NULL;
	if (!backend)
		backend = PyUnicode_FromString("auto");
	else
		Py_INCREF(backend);
	if (!backend)
		return NULL;
	ret = parse_name(nameobj, &name) ||
	      parse_attr(&a, pool_size, max_msg, ring_entries, mode, busy_poll, backend) ||
	      parse_ends(&a, max_producers, max_consumers, broadcast);
	Py_DECREF(backend);
	if (ret)
		return NULL;
	self = end_new(cls, ROLE_PRODUCER);
	if (!self)
		return NULL;
	if (pending >= 0) {	/* pipe(): created on first use */
		self->attr = a;
		self->pending_sock = pending;
		return (PyObject *)self;
	}
	Py_BEGIN_ALLOW_THREADS
	ret = zchan_create(name, &a, &self->ch);
	Py_END_ALLOW_THREADS
	if (ret == -EINVAL) {
		Py_DECREF(self);
		PyErr_Format(PyExc_ValueError,
			     "zchan: pool_size=%zd, max_msg=%zd (with room for zchan's "
			     "headers), ring_entries=%zd: max_msg must be at most half "
			     "the pool and 1 GiB, ring_entries a power of two "
			     "(0 takes the defaults)", pool_size, max_msg, ring_entries);
		return NULL;
	}
	if (ret) {
		Py_DECREF(self);
		return set_error(ret);
	}
	self->attr = a;
	Py_SETREF(self->name, Py_NewRef(nameobj));
	return (PyObject *)self;
}

/* open(cls, name, role=ROLE_CONSUMER): zchan_attach() (zchan_open()). */
static PyObject *mod_open(PyObject *mod, PyObject *args)
{
	int role = ZCHAN_ROLE_CONSUMER;
	PyObject *nameobj;
	PyTypeObject *cls;
	const char *name;
	EndObject *self;
	int ret;

	if (!PyArg_ParseTuple(args, "O!O|i:open", &PyType_Type, &cls, &nameobj, &role))
		return NULL;
	if (nameobj == Py_None) {
		PyErr_SetString(PyExc_TypeError, "open() needs a channel name");
		return NULL;
	}
	if (parse_name(nameobj, &name) || parse_role(role))
		return NULL;
	self = end_new(cls, role);
	if (!self)
		return NULL;
	Py_BEGIN_ALLOW_THREADS
	ret = zchan_attach(name, role, &self->ch);
	Py_END_ALLOW_THREADS
	if (ret) {
		Py_DECREF(self);
		return set_error(ret);
	}
	Py_SETREF(self->name, Py_NewRef(nameobj));
	return (PyObject *)self;
}

/*
 * recv_peer(cls, sock, pending=False, timeout=None): receive a consumer
 * end now (waiting interruptibly, up to timeout), or (pending) wrap the
 * socket, which this end then owns, for a receive on first use.
 */
static PyObject *mod_recv_peer(PyObject *mod, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "cls", "sock", "pending", "timeout", "claim", "role", NULL };
	PyObject *sock, *tmo = Py_None;
	int fd, pending = 0, claim = -1, role = ZCHAN_ROLE_CONSUMER, ret;
	int64_t timeout_ns;
	PyTypeObject *cls;
	EndObject *self;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "O!O|p$Oii:recv_peer", kwlist,
					 &PyType_Type, &cls, &sock, &pending, &tmo,
					 &claim, &role))
		return NULL;
	if (parse_timeout(tmo, &timeout_ns) || parse_role(role))
		return NULL;
	if (pending && role != ZCHAN_ROLE_CONSUMER) {
		PyErr_SetString(PyExc_ValueError, "a pending end received is a consumer");
		return NULL;
	}
	fd = sock_fd(sock);
	if (fd < 0)
		return NULL;
	self = end_new(cls, role);
	if (!self)
		return NULL;
	if (pending) {
		self->pending_sock = fd;
		self->claim_sock = claim;
		return (PyObject *)self;
	}
	ret = recv_peer_bounded(fd, timeout_ns ? deadline_of(timeout_ns) : -1, NULL,
				&self->ch);
	if (ret) {
		Py_DECREF(self);
		if (ret == -EINTR && PyErr_Occurred())
			return NULL;
		return set_error(ret);
	}
	return (PyObject *)self;
}

static PyObject *mod_strerror(PyObject *mod, PyObject *arg)
{
	long err = PyLong_AsLong(arg);

	if (err == -1 && PyErr_Occurred())
		return NULL;
	return PyUnicode_FromString(zchan_strerror(err > 0 ? -(int)err : (int)err));
}

static PyMethodDef module_methods[] = {
	{ "create", (PyCFunction)mod_create, METH_VARARGS | METH_KEYWORDS,
	  "create(cls, name=None, *, pool_size, max_msg, ring_entries, mode, busy_poll, "
	  "backend, pending=-1): zchan_create() (see zchan.create)" },
	{ "open", (PyCFunction)mod_open, METH_VARARGS,
	  "open(cls, name, role=ROLE_CONSUMER): zchan_attach()" },
	{ "recv_peer", (PyCFunction)mod_recv_peer, METH_VARARGS | METH_KEYWORDS,
	  "recv_peer(cls, sock, pending=False, *, timeout=None, claim=-1, role=ROLE_CONSUMER): "
	  "zchan_recv_peer(), or a pending consumer owning sock and claim" },
	{ "strerror", (PyCFunction)mod_strerror, METH_O,
	  "strerror(errno) -> str: what an error code means in libzchan" },
	{ NULL }
};

static struct PyModuleDef zchan_module = {
	PyModuleDef_HEAD_INIT,
	.m_name = "zchan._zchan",
	.m_doc = "The C half of zchan: ends, loans and messages over libzchan.",
	.m_size = -1,
	.m_methods = module_methods,
};

PyMODINIT_FUNC PyInit__zchan(void)
{
	PyTypeObject *types[] = { &EndType, &ProducerType, &ConsumerType,
				  &LoanType, &MessageType, &LoanSpaceType };
	const char *names[] = { "End", "Producer", "Consumer", "Loan", "Message",
				"LoanSpace" };
	PyObject *m;
	size_t i;

	(void)zchan_fork_generation();	/* forks are watched from now on */
	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (PyType_Ready(types[i]))
			return NULL;
	m = PyModule_Create(&zchan_module);
	if (!m)
		return NULL;
	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (PyModule_AddObjectRef(m, names[i], (PyObject *)types[i]))
			goto fail;
	if (PyModule_AddIntConstant(m, "POLLIN", POLLIN) ||
	    PyModule_AddIntConstant(m, "POLLOUT", POLLOUT) ||
	    PyModule_AddIntConstant(m, "POLLHUP", POLLHUP) ||
	    PyModule_AddIntConstant(m, "POLLERR", POLLERR) ||
	    PyModule_AddIntConstant(m, "DEFAULT_POOL_SIZE", ZCHAN_DEFAULT_POOL_SIZE) ||
	    PyModule_AddIntConstant(m, "DEFAULT_RING_ENTRIES", ZCHAN_DEFAULT_RING_ENTRIES) ||
	    PyModule_AddIntConstant(m, "ROLE_PRODUCER", ZCHAN_ROLE_PRODUCER) ||
	    PyModule_AddIntConstant(m, "ROLE_CONSUMER", ZCHAN_ROLE_CONSUMER) ||
	    PyModule_AddIntConstant(m, "ENDS_MAX", ZCHAN_ENDS_MAX))
		goto fail;
	return m;
fail:
	Py_DECREF(m);
	return NULL;
}
