// SPDX-License-Identifier: MIT OR LGPL-2.1
/*
 * The test helper library's own tests (native): a payload checker that
 * passed anything, or a child helper that took a crash for an exit,
 * would make every test built on them pass whatever happened.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "zchan_test_payload.h"
#include "zchan_test_proc.h"

#define BIG	20000

TEST(payload_is_a_function_of_stream_and_seq)
{
	static uint8_t a[BIG], b[BIG];
	size_t len;

	for (len = 0; len < 40; len++) {
		zc_payload_fill(a, len, 7, 3);
		EXPECT_TRUE(zc_payload_ok(a, len, 7, 3));
		if (len) {
			EXPECT_FALSE(zc_payload_ok(a, len, 7, 4)) TH_LOG("len %zu", len);
		}
	}
	zc_payload_fill(a, BIG, 7, 3);
	zc_payload_fill(b, BIG, 7, 3);
	EXPECT_EQ(0, memcmp(a, b, BIG));
	EXPECT_EQ(3, zc_payload_seq(a, BIG));
	/* another stream or message differs beyond the sequence number */
	zc_payload_fill(b, BIG, 8, 3);
	EXPECT_EQ(0, memcmp(a, b, 8));
	EXPECT_NE(0, memcmp(a + 8, b + 8, BIG - 8));
	EXPECT_FALSE(zc_payload_ok(a, BIG, 8, 3));
	zc_payload_fill(b, BIG, 7, 4);
	EXPECT_NE(0, memcmp(a + 8, b + 8, BIG - 8));
}

TEST(payload_ranges_stand_alone)
{
	static uint8_t a[BIG], b[BIG];
	size_t from;

	zc_payload_fill(a, BIG, 1, 9);
	for (from = 0; from < BIG; from += 997) {
		size_t n = BIG - from < 300 ? BIG - from : 300;

		zc_payload_fill_at(b, n, from, 1, 9);
		EXPECT_EQ(0, memcmp(a + from, b, n)) TH_LOG("from %zu", from);
		EXPECT_TRUE(zc_payload_ok_at(a + from, BIG - from, from, 1, 9));
		EXPECT_FALSE(zc_payload_ok_at(a + from, n, from + 1, 1, 9));
	}
}

TEST(payload_check_finds_every_flipped_bit)
{
	static uint8_t a[4096];
	char why[128];
	size_t i;

	zc_payload_fill(a, sizeof(a), 5, 11);
	ASSERT_EQ(0, zc_payload_check(a, sizeof(a), sizeof(a), 5, 11, why,
				      sizeof(why)));
	for (i = 0; i < sizeof(a); i += 13) {
		a[i] ^= 1 << (i % 8);
		EXPECT_FALSE(zc_payload_ok(a, sizeof(a), 5, 11));
		EXPECT_EQ(-EBADMSG, zc_payload_check(a, sizeof(a), sizeof(a), 5,
						     11, why, sizeof(why)));
		a[i] ^= 1 << (i % 8);
	}
	a[1234] ^= 0x80;
	zc_payload_check(a, sizeof(a), sizeof(a), 5, 11, why, sizeof(why));
	EXPECT_STREQ("message 11: byte 1234 of 4096 wrong", why);
	a[1234] ^= 0x80;
	EXPECT_EQ(-EBADMSG, zc_payload_check(a, sizeof(a), sizeof(a), 5, 12,
					     why, sizeof(why)));
	EXPECT_STREQ("expected message 12, got 11", why);
	EXPECT_EQ(-EBADMSG, zc_payload_check(a, sizeof(a) - 1, sizeof(a), 5,
					     11, why, sizeof(why)));
	EXPECT_STREQ("message 11: 4095 bytes, not 4096", why);
}

TEST(payload_lengths_cover_their_range)
{
	bool seen[9] = { false };
	uint64_t seq;
	size_t len;

	for (seq = 0; seq < 1000; seq++) {
		len = zc_payload_len(3, seq, 4, 12);
		ASSERT_LE(4, len);
		ASSERT_GE(12, len);
		seen[len - 4] = true;
		EXPECT_EQ(len, zc_payload_len(3, seq, 4, 12));
	}
	for (len = 0; len < 9; len++)
		EXPECT_TRUE(seen[len]) TH_LOG("length %zu never drawn", len + 4);
}

static int exit_with(void *arg)
{
	return *(int *)arg;
}

static int crash(void *arg)
{
	signal(SIGSEGV, SIG_DFL);	/* not a sanitizer's report */
	raise(SIGSEGV);
	return 0;
}

static int hang(void *arg)
{
	for (;;)
		pause();
	return 0;
}

TEST(child_exit_status_signal_and_timeout)
{
	char why[96];
	int code = 42;
	pid_t pid;

	pid = zc_spawn(exit_with, &code);
	ASSERT_LT(0, pid);
	EXPECT_EQ(42, zc_child_wait(pid, -1));
	EXPECT_STREQ("exit status 42", zc_child_str(42, why, sizeof(why)));

	pid = zc_spawn(crash, NULL);
	ASSERT_LT(0, pid);
	EXPECT_EQ(ZC_SIGNALLED(SIGSEGV), zc_child_wait(pid, 30));
	zc_child_str(ZC_SIGNALLED(SIGSEGV), why, sizeof(why));
	EXPECT_EQ(0, strncmp(why, "killed by signal 11", 19)) TH_LOG("%s", why);

	pid = zc_spawn(hang, NULL);
	ASSERT_LT(0, pid);
	EXPECT_EQ(-ETIMEDOUT, zc_child_wait(pid, 0.05));
	EXPECT_EQ(0, kill(pid, 0));	/* a timeout leaves it running */
	EXPECT_EQ(ZC_SIGNALLED(SIGKILL), zc_child_kill(pid));
	EXPECT_EQ(-ECHILD, zc_child_wait(pid, 1));

	code = 0;
	zc_child_exits(zc_spawn(exit_with, &code), 0);
	zc_child_killed(zc_spawn(crash, NULL), SIGSEGV);
}

TEST(write_segfaults_tells_read_only_from_writable)
{
	static const char ro[] = "read only";
	int rw = 0;

	EXPECT_FALSE(zc_write_segfaults(&rw));
	EXPECT_TRUE(zc_write_segfaults(ro));
}

TEST(descriptors_pass_over_a_socket)
{
	int sv[2], p[2], fd;
	char c;

	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	ASSERT_EQ(0, pipe(p));
	ASSERT_EQ(0, zc_send_fd(sv[0], p[1]));
	fd = zc_recv_fd(sv[1]);
	ASSERT_LE(0, fd);
	EXPECT_NE(p[1], fd);
	zc_signal(fd);
	EXPECT_EQ(0, zc_await(p[0]));
	close(fd);
	close(p[1]);
	EXPECT_EQ(0, read(p[0], &c, 1));	/* every write end closed */
	EXPECT_EQ(-1, zc_await(p[0]));
	close(p[0]);
	close(sv[0]);
	close(sv[1]);
}

TEST_HARNESS_MAIN
