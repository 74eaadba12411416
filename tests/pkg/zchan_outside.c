// SPDX-License-Identifier: MIT OR LGPL-2.1
/*
 * A program outside the tree, built by tests/pkg/deb-test.sh against the
 * unpacked libzchan-dev and libzchan1 packages with nothing but
 * `pkg-config --cflags --libs zchan`: a producer and a consumer process
 * pass 1000 messages of varying length over a memfd channel, and the
 * consumer checks every byte.  Exit status 0 when all arrived intact.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zchan.h>

#define MESSAGES 1000
#define MAX_LEN 4000

/* Message i: i % MAX_LEN + 1 bytes, each (i + offset) mod 251. */
static size_t fill(unsigned char *buf, unsigned int i)
{
	size_t len = i % MAX_LEN + 1, k;

	for (k = 0; k < len; k++)
		buf[k] = (unsigned char)((i + k) % 251);
	return len;
}

static int consume(int sock)
{
	static unsigned char got[MAX_LEN], want[MAX_LEN];
	struct zchan *ch;
	unsigned int i;
	ssize_t len;
	int ret;

	ret = zchan_recv_peer(sock, &ch);
	if (ret) {
		fprintf(stderr, "consumer: zchan_recv_peer: %s\n", zchan_strerror(ret));
		return 1;
	}
	for (i = 0; i < MESSAGES; i++) {
		size_t want_len = fill(want, i);

		len = zchan_recv(ch, got, sizeof(got), 0);
		if (len < 0) {
			fprintf(stderr, "consumer: message %u: %s\n", i,
				zchan_strerror((int)len));
			return 1;
		}
		if ((size_t)len != want_len || memcmp(got, want, want_len)) {
			fprintf(stderr, "consumer: message %u: wrong content\n", i);
			return 1;
		}
	}
	len = zchan_recv(ch, got, sizeof(got), 0);
	if (len != -EPIPE) {
		fprintf(stderr, "consumer: after the last message: %zd, not -EPIPE\n", len);
		return 1;
	}
	zchan_close(ch);
	return 0;
}

int main(void)
{
	static unsigned char buf[MAX_LEN];
	struct zchan_attr attr;
	struct zchan *ch;
	unsigned int i;
	int sv[2], ret, status;
	ssize_t sent;
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) {
		perror("socketpair");
		return 1;
	}
	pid = fork();
	if (pid < 0) {
		perror("fork");
		return 1;
	}
	if (pid == 0) {
		close(sv[0]);
		_exit(consume(sv[1]));
	}
	close(sv[1]);
	zchan_attr_init(&attr);
	attr.backend = ZCHAN_BACKEND_MEMFD;
	ret = zchan_create(NULL, &attr, &ch);
	if (ret) {
		fprintf(stderr, "zchan_create: %s\n", zchan_strerror(ret));
		return 1;
	}
	if (zchan_backend(ch) != ZCHAN_BACKEND_MEMFD) {
		fprintf(stderr, "zchan_backend: %d, not memfd\n", zchan_backend(ch));
		return 1;
	}
	ret = zchan_send_peer(ch, sv[0]);
	if (ret)
		fprintf(stderr, "zchan_send_peer: %s\n", zchan_strerror(ret));
	for (i = 0; !ret && i < MESSAGES; i++) {
		size_t len = fill(buf, i);

		sent = zchan_send(ch, buf, len, 0);
		if (sent != (ssize_t)len) {
			fprintf(stderr, "zchan_send %u: %s\n", i,
				sent < 0 ? zchan_strerror((int)sent) : "short");
			ret = 1;
		}
	}
	zchan_close(ch);
	if (waitpid(pid, &status, 0) != pid)
		return 1;
	if (ret || !WIFEXITED(status) || WEXITSTATUS(status))
		return 1;
	printf("%u messages over a memfd channel, all intact\n", MESSAGES);
	return 0;
}
