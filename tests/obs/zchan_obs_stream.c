// SPDX-License-Identifier: GPL-2.0
/*
 * A steady zchan stream for the observability tests: a producer creates
 * the named channel NAME (kernel backend), a forked consumer opens it by
 * name and reads until the producer is gone.  NAME "-" makes an anonymous
 * channel whose consumer end goes to the child over a unix socket
 * (zchan_send_peer(), ZCHAN_IOC_PEER_FD).  The producer sends one
 * SIZE-byte message every INTERVAL_US microseconds for SECONDS seconds,
 * so the consumer sleeps between messages (waits and kicks happen).
 *
 * With PRODUCERS above 1 the channel is fan-in (max_producers): as many
 * forked producers attach by name (zchan_attach()) and send as the first.
 *
 * Prints "producer PID consumer PID" once both ends are open (then, for
 * fan-in, "producers PID..." of the attached producers), then runs.
 * Exit status 0 when every message arrived, 1 otherwise.
 *
 * Usage: zchan_obs_stream NAME SECONDS [SIZE [INTERVAL_US [PRODUCERS]]]
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <zchan.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The consumer: by name, or (@name NULL) from the unix socket @sock. */
static int consume(const char *name, int sock, int ready_fd)
{
	struct zchan *c;
	char buf[65536];
	long n = 0;
	ssize_t len;
	int ret;

	ret = name ? zchan_open(name, &c) : zchan_recv_peer(sock, &c);
	if (ret) {
		fprintf(stderr, "zchan_open %s: %s\n", name ? name : "(peer)",
			zchan_strerror(ret));
		return 1;
	}
	if (!name)
		close(sock);
	if (write(ready_fd, "r", 1) != 1)
		return 1;
	close(ready_fd);
	while ((len = zchan_recv(c, buf, sizeof(buf), 0)) >= 0)
		n++;
	zchan_close(c);
	if (len != -EPIPE) {
		fprintf(stderr, "zchan_recv: %s\n", zchan_strerror((int)len));
		return 1;
	}
	return n > 0 ? 0 : 1;
}

/* Send a SIZE-byte message every INTERVAL_US until SECONDS are up. */
static int produce(struct zchan *p, size_t size, long interval_us, double secs)
{
	double end = now() + secs;
	int ret = 0;
	char *msg;

	msg = calloc(1, size);
	if (!msg)
		return -ENOMEM;
	while (now() < end) {
		ret = (int)zchan_send(p, msg, size, 0);
		if (ret < 0) {
			fprintf(stderr, "zchan_send: %s\n", zchan_strerror(ret));
			break;
		}
		if (interval_us)
			usleep(interval_us);
	}
	free(msg);
	return ret < 0 ? ret : 0;
}

/* A fan-in channel's further producer: attach by @name, send, exit. */
static int attached_producer(const char *name, int ready_fd, size_t size,
			     long interval_us, double secs)
{
	struct zchan *p;
	int ret;

	ret = zchan_attach(name, ZCHAN_ROLE_PRODUCER, &p);
	if (ret) {
		fprintf(stderr, "zchan_attach %s: %s\n", name, zchan_strerror(ret));
		return 1;
	}
	if (write(ready_fd, "p", 1) != 1)
		return 1;
	close(ready_fd);
	ret = produce(p, size, interval_us, secs);
	zchan_close(p);
	return ret ? 1 : 0;
}

int main(int argc, char **argv)
{
	size_t size = argc > 3 ? strtoul(argv[3], NULL, 0) : 4096;
	const char *name = argc > 1 && strcmp(argv[1], "-") ? argv[1] : NULL;
	long interval_us = argc > 4 ? strtol(argv[4], NULL, 0) : 2000;
	int nprod = argc > 5 ? atoi(argv[5]) : 1;
	pid_t pid, prods[8];
	struct zchan_attr attr;
	struct zchan *p;
	int pfd[2], sv[2], ret, status, i, ok;
	char c;

	if (argc < 3 || size == 0 || size > 65536 || interval_us < 0 ||
	    nprod < 1 || nprod > 8 || (nprod > 1 && !name)) {
		fprintf(stderr, "usage: %s NAME SECONDS [SIZE [INTERVAL_US [PRODUCERS]]] (PRODUCERS 1 to 8, NAME not - if above 1)\n",
			argv[0]);
		return 2;
	}
	zchan_attr_init(&attr);
	attr.backend = ZCHAN_BACKEND_KERNEL;
	attr.mode = 0600;
	attr.max_producers = (unsigned int)nprod;
	ret = zchan_create(name, &attr, &p);
	if (ret) {
		fprintf(stderr, "zchan_create %s: %s\n", argv[1], zchan_strerror(ret));
		return 1;
	}
	if (pipe(pfd) || socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
		return 1;
	pid = fork();
	if (pid < 0)
		return 1;
	if (pid == 0) {
		close(pfd[0]);
		close(sv[0]);
		zchan_close(p);
		_exit(consume(name, sv[1], pfd[1]));
	}
	close(pfd[1]);
	close(sv[1]);
	if (!name) {
		ret = zchan_send_peer(p, sv[0]);
		if (ret) {
			fprintf(stderr, "zchan_send_peer: %s\n", zchan_strerror(ret));
			return 1;
		}
	}
	close(sv[0]);
	if (read(pfd[0], &c, 1) != 1) {
		fprintf(stderr, "the consumer did not open %s\n", argv[1]);
		return 1;
	}
	for (i = 1; i < nprod; i++) {
		if (pipe(pfd))
			return 1;
		prods[i] = fork();
		if (prods[i] < 0)
			return 1;
		if (prods[i] == 0) {
			close(pfd[0]);
			zchan_close(p);
			_exit(attached_producer(name, pfd[1], size, interval_us,
						strtod(argv[2], NULL)));
		}
		close(pfd[1]);
		if (read(pfd[0], &c, 1) != 1) {
			fprintf(stderr, "producer %d did not attach to %s\n", i, name);
			return 1;
		}
		close(pfd[0]);
	}
	printf("producer %d consumer %d\n", (int)getpid(), (int)pid);
	if (nprod > 1) {
		printf("producers");
		for (i = 1; i < nprod; i++)
			printf(" %d", (int)prods[i]);
		printf("\n");
	}
	fflush(stdout);

	ret = produce(p, size, interval_us, strtod(argv[2], NULL));
	zchan_close(p);
	ok = 1;
	for (i = 1; i < nprod; i++)
		ok &= waitpid(prods[i], &status, 0) == prods[i] &&
		      WIFEXITED(status) && !WEXITSTATUS(status);
	if (waitpid(pid, &status, 0) != pid)
		return 1;
	return ok && ret >= 0 && WIFEXITED(status) && !WEXITSTATUS(status) ? 0 : 1;
}
