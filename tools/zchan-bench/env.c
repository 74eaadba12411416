// SPDX-License-Identifier: MIT OR LGPL-2.1
/*
 * What machine the numbers come from.  Guest detection uses the CPUID
 * hypervisor bit and signature leaf (x86), falling back to DMI strings;
 * QEMU's TCG announces itself as "TCGTCGTCGTCG", and a QEMU machine
 * without a KVM signature is pure emulation too.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/utsname.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#include "bench.h"

static void read_line(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");

	buf[0] = '\0';
	if (!f)
		return;
	if (fgets(buf, (int)len, f))
		buf[strcspn(buf, "\n")] = '\0';
	fclose(f);
}

static void cpu_model(char *buf, size_t len)
{
	char line[256];
	FILE *f = fopen("/proc/cpuinfo", "r");

	snprintf(buf, len, "unknown");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char *colon = strchr(line, ':');

		if (!colon || strncmp(line, "model name", 10))
			continue;
		colon++;
		while (*colon == ' ' || *colon == '\t')
			colon++;
		colon[strcspn(colon, "\n")] = '\0';
		snprintf(buf, len, "%s", colon);
		break;
	}
	fclose(f);
}

static bool cpuid_hypervisor(char *sig, size_t len)
{
	sig[0] = '\0';
#if defined(__x86_64__) || defined(__i386__)
	unsigned int a, b, c, d;
	unsigned int regs[3];

	if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 31)))
		return false;
	__cpuid(0x40000000, a, regs[0], regs[1], regs[2]);
	if (len > 12) {
		memcpy(sig, regs, 12);
		sig[12] = '\0';
		/* keep it printable: some hypervisors pad with NULs */
		for (size_t i = 0; i < 12 && sig[i]; i++)
			if (sig[i] < 0x20 || sig[i] > 0x7e)
				sig[i] = '?';
	}
	return true;
#else
	(void)len;
	return false;
#endif
}

void env_collect(struct bench_env *env)
{
	struct utsname u;
	time_t t = time(NULL);
	struct tm tm;
	bool hv;

	memset(env, 0, sizeof(*env));
	if (!uname(&u)) {
		snprintf(env->kernel, sizeof(env->kernel), "%s", u.release);
		snprintf(env->kernel_version, sizeof(env->kernel_version), "%s",
			 u.version);
		snprintf(env->arch, sizeof(env->arch), "%s", u.machine);
		snprintf(env->hostname, sizeof(env->hostname), "%s", u.nodename);
	}
	cpu_model(env->cpu_model, sizeof(env->cpu_model));
	env->ncpus = (int)sysconf(_SC_NPROCESSORS_ONLN);
	read_line("/sys/class/dmi/id/sys_vendor", env->dmi_vendor,
		  sizeof(env->dmi_vendor));
	read_line("/sys/class/dmi/id/product_name", env->dmi_product,
		  sizeof(env->dmi_product));
	read_line("/sys/devices/system/clocksource/clocksource0/current_clocksource",
		  env->clocksource, sizeof(env->clocksource));

	read_line("/proc/loadavg", env->loadavg, sizeof(env->loadavg));
	hv = cpuid_hypervisor(env->hypervisor, sizeof(env->hypervisor));
	env->guest = hv || strstr(env->dmi_vendor, "QEMU") ||
		     strstr(env->dmi_product, "KVM") ||
		     strstr(env->dmi_product, "Virtual") ||
		     strstr(env->dmi_vendor, "Xen");
	env->emulated = strstr(env->hypervisor, "TCG") ||
			(strstr(env->dmi_vendor, "QEMU") &&
			 !strstr(env->hypervisor, "KVM"));

	{
		char buf[32];

		read_line("/proc/sys/fs/pipe-max-size", buf, sizeof(buf));
		env->pipe_max_size = strtol(buf, NULL, 10);
	}
	gmtime_r(&t, &tm);
	strftime(env->date, sizeof(env->date), "%Y-%m-%dT%H:%M:%SZ", &tm);
#ifdef HAVE_LIBZCHAN
	snprintf(env->libzchan, sizeof(env->libzchan), "linked");
#else
	snprintf(env->libzchan, sizeof(env->libzchan), "not built");
#endif
}
