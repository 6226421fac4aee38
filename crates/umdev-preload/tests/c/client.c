/*
 * A plain C program the preload tests run under LD_PRELOAD: it calls libc
 * as any unmodified program would and prints what it got, one
 * "key=value" a line. The first argument picks a scenario.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

/* glibc's fortified entry points, called by name. */
extern int __open_2(const char *path, int flags);
extern int __open64_2(const char *path, int flags);
extern int __openat_2(int dirfd, const char *path, int flags);
extern int __openat64_2(int dirfd, const char *path, int flags);

static unsigned long num(const char *s)
{
	return strtoul(s, NULL, 0);
}

static int open_by(const char *how, const char *path, int flags)
{
#define BY(name, call) if (!strcmp(how, #name)) return call
	BY(open, open(path, flags));
	BY(open64, open64(path, flags));
	BY(openat, openat(AT_FDCWD, path, flags));
	BY(openat64, openat64(AT_FDCWD, path, flags));
	BY(__open_2, __open_2(path, flags));
	BY(__open64_2, __open64_2(path, flags));
	BY(__openat_2, __openat_2(AT_FDCWD, path, flags));
	BY(__openat64_2, __openat64_2(AT_FDCWD, path, flags));
#undef BY
	fprintf(stderr, "unknown open %s\n", how);
	exit(2);
}

static int must_open(const char *path)
{
	int fd = open(path, O_RDWR);

	if (fd < 0) {
		printf("open_errno=%d\n", errno);
		exit(1);
	}
	return fd;
}

static int is_sock(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
}

static void print_data(const char *key, int fd)
{
	char buf[64] = { 0 };
	ssize_t n = read(fd, buf, sizeof(buf) - 1);

	printf("%s=%s\n", key, n > 0 ? buf : "");
}

/* open HOW PATH FLAGS */
static int do_open(char **argv)
{
	int fd = open_by(argv[0], argv[1], (int)num(argv[2]));

	printf("pid=%d\n", getpid());
	printf("fd=%d\n", fd);
	printf("errno=%d\n", fd < 0 ? errno : 0);
	printf("sock=%d\n", fd >= 0 && is_sock(fd));
	printf("cloexec=%d\n", fd >= 0 && (fcntl(fd, F_GETFD) & FD_CLOEXEC));
	return 0;
}

/* ioctl PATH CMD ARG...: one ioctl a (cmd, arg) pair */
static int do_ioctl(char **argv)
{
	int fd = must_open(argv[0]);

	for (char **a = argv + 1; a[0] && a[1]; a += 2) {
		errno = 0;
		int ret = ioctl(fd, num(a[0]), num(a[1]));

		printf("ret=%d errno=%d\n", ret, ret < 0 ? errno : 0);
	}
	return 0;
}

/* slot PATH CMD: an ioctl whose struct gets an fd number, then reads
 * whichever fd came back */
static int do_slot(char **argv)
{
	int fd = must_open(argv[0]);
	struct { uint32_t size; uint32_t out_fd; } arg = { sizeof(arg), 0xffffffff };
	int ret = ioctl(fd, num(argv[1]), &arg);

	printf("ret=%d errno=%d\n", ret, ret < 0 ? errno : 0);
	printf("arg=%lu\n", (unsigned long)(uintptr_t)&arg);
	printf("out_fd=%d\n", (int)arg.out_fd);
	if (arg.out_fd != 0xffffffff) {
		printf("out_cloexec=%d\n", !!(fcntl(arg.out_fd, F_GETFD) & FD_CLOEXEC));
		print_data("out_data", arg.out_fd);
	}
	if (ret > 2)
		print_data("ret_data", ret);
	return 0;
}

/* served PATH CMD CMD2: an ioctl hands back a served file; CMD2 on it,
 * and on a dup of it */
static int do_served(char **argv)
{
	int fd = must_open(argv[0]);
	struct { uint32_t size; uint32_t out_fd; } arg = { sizeof(arg), 0xffffffff };
	int ret = ioctl(fd, num(argv[1]), &arg);
	int file = (int)arg.out_fd;

	printf("ret=%d out_fd=%d\n", ret, file);
	ret = ioctl(file, num(argv[2]), 11);
	printf("file ret=%d errno=%d\n", ret, ret < 0 ? errno : 0);
	int copy = dup(file);

	ret = ioctl(copy, num(argv[2]), 12);
	printf("dup ret=%d errno=%d\n", ret, ret < 0 ? errno : 0);
	return 0;
}

/* rw PATH: pread, pwrite, read, write, pread64, pwrite64 */
static int do_rw(char **argv)
{
	int fd = must_open(argv[0]);
	char buf[17] = { 0 };
	ssize_t n;

	n = pread(fd, buf, 16, 0x1000);
	printf("pread=%zd data=%s\n", n, buf);
	n = pwrite(fd, "hello", 5, 0x2000);
	printf("pwrite=%zd\n", n);
	memset(buf, 0, sizeof(buf));
	n = read(fd, buf, 8);
	printf("read=%zd data=%s\n", n, buf);
	n = write(fd, "abc", 3);
	printf("write=%zd\n", n);
	memset(buf, 0, sizeof(buf));
	n = pread64(fd, buf, 4, 0x3000);
	printf("pread64=%zd data=%s\n", n, buf);
	n = pwrite64(fd, "xy", 2, 0x4000);
	printf("pwrite64=%zd\n", n);
	errno = 0;
	n = pwrite(fd, "z", 1, 0x5000);
	printf("pwrite_fail=%zd errno=%d\n", n, errno);
	return 0;
}

/* pass TMPFILE: ordinary files, pipes and look-alike paths go to libc */
static int do_pass(char **argv)
{
	char buf[8] = { 0 };
	int fds[2], avail = -1;
	int null = open("/dev/null", O_RDWR);

	printf("null_sock=%d\n", is_sock(null));
	printf("null_write=%zd\n", write(null, "abc", 3));
	printf("null_read=%zd\n", read(null, buf, sizeof(buf)));
	errno = 0;
	int tcgets = ioctl(null, TCGETS, buf);

	printf("null_tcgets=%d errno=%d\n", tcgets, errno);

	umask(022);
	int tmp = open(argv[0], O_CREAT | O_RDWR | O_EXCL, 0640);
	struct stat st;

	fstat(tmp, &st);
	printf("tmp_mode=%o\n", st.st_mode & 0777);
	printf("tmp_pwrite=%zd\n", pwrite(tmp, "xyz", 3, 2));
	printf("tmp_pread=%zd\n", pread(tmp, buf, 3, 2));
	printf("tmp_data=%.3s\n", buf);
	int at = openat(AT_FDCWD, argv[0], O_RDONLY);

	printf("tmp_openat_sock=%d\n", at >= 0 && is_sock(at));

	pipe(fds);
	write(fds[1], "12345", 5);
	errno = 1234;
	ioctl(fds[0], FIONREAD, &avail);
	printf("fionread=%d errno_kept=%d\n", avail, errno == 1234);
	errno = 4321;
	read(fds[0], buf, 5);
	printf("pipe_read_errno_kept=%d\n", errno == 4321);

	int pair[2];

	socketpair(AF_UNIX, SOCK_STREAM, 0, pair);
	write(pair[0], "1234", 4);
	avail = -1;
	ioctl(pair[1], FIONREAD, &avail);
	printf("socketpair_fionread=%d\n", avail);

	static const char *const look_alike[] = {
		"/dev/vfio/devices", "/dev/iommu/", "/dev//iommu", "/dev/iommux",
		"/proc/self/task/x/fail-nth", "dev/iommu", NULL,
	};
	for (const char *const *p = look_alike; *p; p++) {
		int fd = open(*p, O_RDONLY);

		printf("look_alike_sock=%d\n", fd >= 0 && is_sock(fd));
	}
	return 0;
}

/* fork PATH CMD: the child calls on the parent's fd, then the parent */
static int do_fork(char **argv)
{
	int fd = must_open(argv[0]);
	pid_t child = fork();

	if (child == 0) {
		int ret = ioctl(fd, num(argv[1]), 1000 + getpid());

		printf("child pid=%d ret=%d\n", getpid(), ret);
		fflush(stdout);
		_exit(0);
	}
	int status;

	waitpid(child, &status, 0);
	printf("parent ret=%d\n", ioctl(fd, num(argv[1]), 7));
	return 0;
}

struct worker {
	int fd;
	unsigned long cmd;
	int base;
	int mismatches;
};

static void *work(void *p)
{
	struct worker *w = p;

	for (int i = 0; i < 300; i++)
		if (ioctl(w->fd, w->cmd, w->base + i) != w->base + i)
			w->mismatches++;
	return NULL;
}

/* threads PATH CMD: four threads echo through one fd */
static int do_threads(char **argv)
{
	int fd = must_open(argv[0]);
	struct worker w[4];
	pthread_t t[4];
	int mismatches = 0;

	for (int i = 0; i < 4; i++) {
		w[i] = (struct worker){ fd, num(argv[1]), (i + 1) * 10000, 0 };
		pthread_create(&t[i], NULL, work, &w[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		mismatches += w[i].mismatches;
	}
	printf("mismatches=%d\n", mismatches);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*run)(char **argv);
	} scenarios[] = {
		{ "open", do_open }, { "ioctl", do_ioctl }, { "slot", do_slot },
		{ "served", do_served }, { "rw", do_rw }, { "pass", do_pass },
		{ "fork", do_fork }, { "threads", do_threads },
	};

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (size_t i = 0; argc > 1 && i < sizeof(scenarios) / sizeof(scenarios[0]); i++)
		if (!strcmp(argv[1], scenarios[i].name))
			return scenarios[i].run(argv + 2);
	fprintf(stderr, "usage: client SCENARIO ARGS...\n");
	return 2;
}
