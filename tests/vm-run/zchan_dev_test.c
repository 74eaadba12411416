// SPDX-License-Identifier: GPL-2.0
/*
 * Runs in the guest with zchan.ko loaded (GUEST_TESTS): the module is
 * listed, /dev/zchan is a misc character device open to every user (0666)
 * and an ioctl the module does not know fails with ENOTTY.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/zchan.h>

#include "kselftest_harness.h"

#define MISC_MAJOR 10U

TEST(module_listed)
{
	char line[256];
	int found = 0;
	FILE *f = fopen("/proc/modules", "r");

	ASSERT_NE(NULL, f);
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "zchan ", 6))
			found = 1;
	fclose(f);
	EXPECT_EQ(1, found) TH_LOG("zchan is not in /proc/modules");
}

TEST(device_node)
{
	struct stat st;

	ASSERT_EQ(0, stat("/dev/" ZCHAN_DEVICE_NAME, &st))
		TH_LOG("stat /dev/zchan: %s", strerror(errno));
	EXPECT_TRUE(S_ISCHR(st.st_mode));
	EXPECT_EQ(MISC_MAJOR, major(st.st_rdev));
	EXPECT_EQ((mode_t)0666, st.st_mode & 07777)
		TH_LOG("mode is %o", st.st_mode & 07777);
}

/* 0666 means an unprivileged user can open it. */
TEST(open_unprivileged)
{
	int status;
	pid_t pid = fork();

	ASSERT_LE(0, pid);
	if (pid == 0) {
		int fd;

		if (setgid(65534) || setuid(65534))
			_exit(2);
		fd = open("/dev/zchan", O_RDWR | O_CLOEXEC);
		_exit(fd < 0 ? 1 : 0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status))
		TH_LOG("uid 65534 could not open /dev/zchan read-write");
}

TEST(unknown_ioctl_enotty)
{
	/* Unused numbers in zchan's 'Z' space, and another driver's type. */
	const unsigned long cmds[] = {
		_IO(ZCHAN_IOC_MAGIC, 0x00),
		_IOWR(ZCHAN_IOC_MAGIC, 0xfe, struct zchan_info),
		_IO('x', 0x01),
	};
	int fd = open("/dev/zchan", O_RDWR | O_CLOEXEC);
	unsigned int i;

	ASSERT_LE(0, fd) TH_LOG("open /dev/zchan: %s", strerror(errno));
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		errno = 0;
		EXPECT_EQ(-1, ioctl(fd, cmds[i], 0));
		EXPECT_EQ(ENOTTY, errno)
			TH_LOG("ioctl %#lx: %s", cmds[i], strerror(errno));
	}
	close(fd);
}

TEST_HARNESS_MAIN
