/*
 * sdmatest: drive one sdma work queue (docs/sdma.md) from inside a guest.
 *
 * usage: sdmatest DEVDIR BUF_GPA BUF_SIZE FAULT_IOVA VECTOR
 *
 *   DEVDIR      the function's sysfs directory (its resource0 is the WQ page)
 *   BUF_GPA     guest-physical address of a reserved, physically contiguous
 *               buffer reachable through /dev/mem (e.g. kernel "memmap=")
 *   BUF_SIZE    its size (at least 128 KiB)
 *   FAULT_IOVA  an address above guest RAM: the descriptors that use it must
 *               end with the page-fault status and report that address
 *   VECTOR      a CPU interrupt vector no guest driver uses: MSI-X entry 0 is
 *               programmed to send it to CPU 0, and the last descriptor asks
 *               for the work queue's interrupt (RCI). With no handler for the
 *               vector, the guest kernel logs "<cpu>.<VECTOR> No irq handler
 *               for vector", which the guest script looks for: the proof that
 *               the queue's interrupt (IMS entry -> the mdev's MSI-X vector ->
 *               QEMU -> the guest's local APIC) arrived.
 *
 * The guest has no vIOMMU, so IOVA == guest-physical address. The caller must
 * have set Bus Master Enable. Exit status 0 when every check passed; each
 * failed check prints one "sdmatest: FAIL ..." line.
 *
 * Built static on the host by tests/e2e/run.sh and copied into the guest.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

/* Register page (docs/sdma.md, "Register page"). */
#define REG_OPCAP 0x00
#define REG_MAX_XFER 0x04
#define REG_CTRL 0x08
#define REG_STATUS 0x0c
#define REG_RING_BASE 0x10
#define REG_RING_SIZE 0x18
#define REG_PASID 0x1c
#define REG_HEAD 0x20
#define REG_TAIL 0x24
#define REG_INT_CTRL 0x28
#define REG_ERROR 0x30
#define REG_ERROR_ADDR 0x38

#define CTRL_ENABLE 0x1u
#define STATUS_ENABLED 0x1u
#define STATUS_ERROR 0x2u
#define PASID_VALID (1u << 31)
#define ERROR_CLEAR (1u << 31)

/* Descriptor flags and opcodes. */
#define FLAG_RCR (1u << 3)
#define FLAG_RCI (1u << 4)
#define INT_ENABLE 0x1u

/* MSI-X (PCI spec; pci_regs.h names). */
#define PCI_CAPABILITY_LIST 0x34
#define PCI_CAP_ID_MSIX 0x11
#define PCI_MSIX_FLAGS 2
#define PCI_MSIX_TABLE 4
#define PCI_MSIX_FLAGS_ENABLE 0x8000
#define PCI_MSIX_FLAGS_MASKALL 0x4000
#define MSI_ADDR_CPU0 0xfee00000u
#define BAR0_MAP 0x2000
#define OP_NOOP 0x00
#define OP_MEMMOVE 0x03
#define OP_FILL 0x04
#define OP_COMPARE 0x05
#define OP_COMPARE_PATTERN 0x06
#define OP_CRC32C 0x10

/* Completion status. */
#define ST_SUCCESS 0x01
#define ST_PAGE_FAULT 0x03

/* Layout of the buffer (offsets from BUF_GPA). */
#define RING_SLOTS 16
#define OFF_RING 0x0000
#define OFF_COMP 0x1000
#define OFF_SRC 0x2000
#define OFF_DST 0x6000
#define OFF_FILL 0xa000
#define OFF_CMP2 0xc000
#define OFF_CHECK 0x10000
#define LAYOUT_SIZE 0x20000

#define COPY_LEN 10000u
#define FILL_LEN 5000u
#define SRC_LEN 0x4000u
#define DIFF_AT 7777u
#define PATTERN 0x0123456789abcdefull

struct desc {
	uint32_t pasid;
	uint8_t flags[3];
	uint8_t opcode;
	uint64_t completion;
	uint64_t src;
	uint64_t dst;
	uint32_t xfer_size;
	uint32_t reserved0;
	uint32_t crc_seed;
	uint8_t reserved1[20];
} __attribute__((packed));

struct completion {
	uint8_t status;
	uint8_t result;
	uint8_t fault_info;
	uint8_t reserved0;
	uint32_t bytes_completed;
	uint64_t fault_addr;
	uint64_t value;
	uint64_t reserved1;
} __attribute__((packed));

_Static_assert(sizeof(struct desc) == 64, "descriptor is 64 bytes");
_Static_assert(sizeof(struct completion) == 32, "completion record is 32 bytes");

static const char *name = "?";
static int failures;

#define CHECK(cond, ...)                                                       \
	do {                                                                   \
		if (!(cond)) {                                                 \
			printf("sdmatest %s: FAIL ", name);                    \
			printf(__VA_ARGS__);                                   \
			printf("\n");                                          \
			failures++;                                            \
		}                                                              \
	} while (0)

static volatile uint32_t *regs;

static uint32_t rd(unsigned off) { return regs[off / 4]; }
static void wr(unsigned off, uint32_t v) { regs[off / 4] = v; }
static uint64_t rd64(unsigned off) { return (uint64_t)rd(off + 4) << 32 | rd(off); }

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *map_file(const char *path, off_t off, size_t len)
{
	int fd = open(path, O_RDWR | O_SYNC);
	if (fd < 0) {
		printf("sdmatest %s: cannot open %s: %s\n", name, path, strerror(errno));
		exit(2);
	}
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, off);
	if (p == MAP_FAILED) {
		printf("sdmatest %s: cannot mmap %s at 0x%llx: %s\n", name, path,
		       (unsigned long long)off, strerror(errno));
		exit(2);
	}
	close(fd);
	return p;
}

/* CRC-32C (Castagnoli, reflected), seed 0 gives the standard value. */
static uint32_t crc32c(const volatile uint8_t *p, size_t n)
{
	uint32_t crc = ~0u;
	for (size_t i = 0; i < n; i++) {
		crc ^= p[i];
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0x82f63b78u & -(crc & 1));
	}
	return ~crc;
}

static volatile uint8_t *buf;
static uint64_t gpa;
static unsigned posted;

static uint64_t iova(unsigned off) { return gpa + off; }

static volatile struct completion *comp(unsigned i)
{
	return (volatile struct completion *)(buf + OFF_COMP + 32 * i);
}

/* Writes descriptor `posted` into the ring with a completion record. */
static void post_flags(uint8_t flags, uint8_t op, uint64_t src, uint64_t dst, uint32_t size,
		       uint32_t seed)
{
	struct desc d;
	memset(&d, 0, sizeof(d));
	d.flags[0] = flags;
	d.opcode = op;
	d.completion = iova(OFF_COMP + 32 * posted);
	d.src = src;
	d.dst = dst;
	d.xfer_size = size;
	d.crc_seed = seed;
	volatile uint8_t *slot = buf + OFF_RING + 64 * posted;
	for (unsigned i = 0; i < sizeof(d); i++)
		slot[i] = ((uint8_t *)&d)[i];
	posted++;
}

static void post(uint8_t op, uint64_t src, uint64_t dst, uint32_t size, uint32_t seed)
{
	post_flags(FLAG_RCR, op, src, dst, size, seed);
}

static void cfg_access(int fd, int write, void *v, size_t n, off_t off)
{
	ssize_t r = write ? pwrite(fd, v, n, off) : pread(fd, v, n, off);
	if (r != (ssize_t)n) {
		printf("sdmatest %s: config %s at 0x%llx failed: %s\n", name, write ? "write" : "read",
		       (unsigned long long)off, strerror(errno));
		exit(2);
	}
}

/*
 * Enables MSI-X with entry 0 sending `vector` to CPU 0, through the config
 * space (sysfs) and the table in BAR0, as a driver would.
 */
static void msix_setup(const char *dev, unsigned vector)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/config", dev);
	int fd = open(path, O_RDWR);
	if (fd < 0) {
		printf("sdmatest %s: cannot open %s: %s\n", name, path, strerror(errno));
		exit(2);
	}
	uint8_t cap = 0, id = 0;
	uint16_t flags;
	uint32_t table;
	cfg_access(fd, 0, &cap, 1, PCI_CAPABILITY_LIST);
	for (int hops = 0; cap && hops < 48; hops++) {
		cfg_access(fd, 0, &id, 1, cap);
		if (id == PCI_CAP_ID_MSIX)
			break;
		cfg_access(fd, 0, &cap, 1, cap + 1);
	}
	if (id != PCI_CAP_ID_MSIX || !cap) {
		printf("sdmatest %s: FAIL no MSI-X capability\n", name);
		exit(1);
	}
	cfg_access(fd, 0, &table, 4, cap + PCI_MSIX_TABLE);
	if ((table & 7) != 0 || (table & ~7u) + 16 > BAR0_MAP) {
		printf("sdmatest %s: FAIL MSI-X table 0x%x is not in the mapped BAR0\n", name, table);
		exit(1);
	}
	flags = PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL;
	cfg_access(fd, 1, &flags, 2, cap + PCI_MSIX_FLAGS);
	volatile uint32_t *entry = regs + (table & ~7u) / 4;
	entry[0] = MSI_ADDR_CPU0;
	entry[1] = 0;
	entry[2] = vector;
	entry[3] = 0; /* unmasked */
	flags = PCI_MSIX_FLAGS_ENABLE;
	cfg_access(fd, 1, &flags, 2, cap + PCI_MSIX_FLAGS);
	cfg_access(fd, 0, &flags, 2, cap + PCI_MSIX_FLAGS);
	close(fd);
	printf("sdmatest %s: MSI-X at 0x%02x enabled (flags 0x%04x), entry 0 -> CPU 0 vector %u\n", name,
	       cap, flags, vector);
}

/* Waits until completion record i is written; returns its status or 0. */
static uint8_t wait_record(unsigned i)
{
	double end = now() + 20;
	while (comp(i)->status == 0 && now() < end)
		usleep(1000);
	return comp(i)->status;
}

int main(int argc, char **argv)
{
	if (argc != 6) {
		fprintf(stderr, "usage: sdmatest DEVDIR BUF_GPA BUF_SIZE FAULT_IOVA VECTOR\n");
		return 2;
	}
	const char *dev = argv[1];
	name = strrchr(dev, '/') ? strrchr(dev, '/') + 1 : dev;
	gpa = strtoull(argv[2], NULL, 0);
	uint64_t size = strtoull(argv[3], NULL, 0);
	uint64_t fault_iova = strtoull(argv[4], NULL, 0);
	unsigned vector = (unsigned)strtoul(argv[5], NULL, 0);
	if (size < LAYOUT_SIZE) {
		fprintf(stderr, "sdmatest: buffer too small\n");
		return 2;
	}

	char path[512];
	snprintf(path, sizeof(path), "%s/resource0", dev);
	regs = map_file(path, 0, BAR0_MAP);
	buf = map_file("/dev/mem", (off_t)gpa, LAYOUT_SIZE);

	uint32_t opcap = rd(REG_OPCAP), max_xfer = rd(REG_MAX_XFER), pasid = rd(REG_PASID);
	printf("sdmatest %s: OPCAP 0x%08x MAX_XFER %u PASID 0x%08x\n", name, opcap, max_xfer, pasid);
	CHECK(opcap == 0x00010079, "OPCAP 0x%08x, expected 0x00010079", opcap);
	CHECK(pasid & PASID_VALID, "PASID register 0x%08x has no valid PASID", pasid);
	CHECK(max_xfer >= SRC_LEN, "MAX_XFER %u below %u", max_xfer, SRC_LEN);

	/* Buffers: src = a byte pattern, dst/cmp2 = src with known changes. */
	for (unsigned i = 0; i < LAYOUT_SIZE; i++)
		buf[i] = 0;
	for (unsigned i = 0; i < SRC_LEN; i++) {
		uint8_t b = (uint8_t)(i * 7 + (i >> 8) + 1);
		buf[OFF_SRC + i] = b;
		buf[OFF_CMP2 + i] = b;
		buf[OFF_DST + i] = 0xee;
	}
	buf[OFF_CMP2 + DIFF_AT] ^= 0x5a;
	for (unsigned i = 0; i < 0x2000; i++)
		buf[OFF_FILL + i] = 0xee;
	memcpy((void *)(buf + OFF_CHECK), "123456789", 9);

	/* Program and enable the work queue. */
	wr(REG_CTRL, 0);
	wr(REG_ERROR, ERROR_CLEAR);
	wr(REG_RING_BASE, (uint32_t)iova(OFF_RING));
	wr(REG_RING_BASE + 4, (uint32_t)(iova(OFF_RING) >> 32));
	wr(REG_RING_SIZE, RING_SLOTS);
	wr(REG_CTRL, CTRL_ENABLE);
	double end = now() + 10;
	while (!(rd(REG_STATUS) & STATUS_ENABLED) && now() < end)
		usleep(1000);
	uint32_t status = rd(REG_STATUS);
	if (!(status & STATUS_ENABLED)) {
		printf("sdmatest %s: FAIL WQ not enabled: STATUS 0x%x ERROR 0x%llx ERROR_ADDR 0x%llx\n",
		       name, status, (unsigned long long)rd64(REG_ERROR),
		       (unsigned long long)rd64(REG_ERROR_ADDR));
		return 1;
	}
	CHECK(rd(REG_HEAD) == 0 && rd(REG_TAIL) == 0, "HEAD %u TAIL %u after enable", rd(REG_HEAD),
	      rd(REG_TAIL));

	/* The queue's interrupt: MSI-X entry 0, and INT_CTRL.ENABLE. */
	msix_setup(dev, vector);
	wr(REG_INT_CTRL, INT_ENABLE);
	uint32_t int_ctrl = rd(REG_INT_CTRL);
	CHECK((int_ctrl & INT_ENABLE) && (int_ctrl >> 16) != 0xffff,
	      "INT_CTRL 0x%08x: not enabled or no IMS entry assigned", int_ctrl);

	/* The descriptors; their indices are the completion record indices. */
	post(OP_MEMMOVE, iova(OFF_SRC), iova(OFF_DST), COPY_LEN, 0);            /* 0 */
	post(OP_FILL, PATTERN, iova(OFF_FILL), FILL_LEN, 0);                    /* 1 */
	post(OP_COMPARE, iova(OFF_SRC), iova(OFF_DST), COPY_LEN, 0);            /* 2 */
	post(OP_COMPARE, iova(OFF_SRC), iova(OFF_CMP2), SRC_LEN, 0);            /* 3 */
	post(OP_COMPARE_PATTERN, iova(OFF_FILL), PATTERN, FILL_LEN, 0);         /* 4 */
	post(OP_CRC32C, iova(OFF_CHECK), 0, 9, 0);                              /* 5 */
	post(OP_CRC32C, iova(OFF_SRC), 0, SRC_LEN, 0);                          /* 6 */
	post(OP_MEMMOVE, iova(OFF_SRC), fault_iova, 8192, 0);                   /* 7 */
	post(OP_MEMMOVE, fault_iova, iova(OFF_DST), 8192, 0);                   /* 8 */
	post_flags(FLAG_RCR | FLAG_RCI, OP_NOOP, 0, 0, 0, 0);                   /* 9 */
	__sync_synchronize();
	double t0 = now();
	wr(REG_TAIL, posted);

	for (unsigned i = 0; i < posted; i++) {
		uint8_t st = wait_record(i);
		volatile struct completion *c = comp(i);
		printf("sdmatest %s: record %u: status 0x%02x result %u fault_info %u bytes %u "
		       "fault_addr 0x%llx value 0x%llx\n",
		       name, i, st, c->result, c->fault_info, c->bytes_completed,
		       (unsigned long long)c->fault_addr, (unsigned long long)c->value);
	}
	printf("sdmatest %s: %u descriptors done in %.3f s\n", name, posted, now() - t0);

	/* 0: memmove */
	CHECK(comp(0)->status == ST_SUCCESS, "memmove status 0x%02x", comp(0)->status);
	unsigned bad = 0;
	for (unsigned i = 0; i < COPY_LEN; i++)
		bad += buf[OFF_DST + i] != buf[OFF_SRC + i];
	for (unsigned i = COPY_LEN; i < SRC_LEN; i++)
		bad += buf[OFF_DST + i] != 0xee;
	CHECK(bad == 0, "memmove: %u bytes of dst wrong", bad);
	/* 1: fill */
	CHECK(comp(1)->status == ST_SUCCESS, "fill status 0x%02x", comp(1)->status);
	bad = 0;
	for (unsigned i = 0; i < FILL_LEN; i++)
		bad += buf[OFF_FILL + i] != (uint8_t)(PATTERN >> (8 * (i % 8)));
	for (unsigned i = FILL_LEN; i < 0x2000; i++)
		bad += buf[OFF_FILL + i] != 0xee;
	CHECK(bad == 0, "fill: %u bytes wrong", bad);
	/* 2, 3: compare equal / different at DIFF_AT */
	CHECK(comp(2)->status == ST_SUCCESS && comp(2)->result == 0,
	      "compare of equal buffers: status 0x%02x result %u", comp(2)->status, comp(2)->result);
	CHECK(comp(3)->status == ST_SUCCESS && comp(3)->result == 1 && comp(3)->value == DIFF_AT,
	      "compare with a difference at %u: status 0x%02x result %u value %llu", DIFF_AT,
	      comp(3)->status, comp(3)->result, (unsigned long long)comp(3)->value);
	/* 4: compare-pattern */
	CHECK(comp(4)->status == ST_SUCCESS && comp(4)->result == 0,
	      "compare-pattern: status 0x%02x result %u", comp(4)->status, comp(4)->result);
	/* 5, 6: CRC-32C */
	CHECK(comp(5)->status == ST_SUCCESS && comp(5)->value == 0xe3069283u,
	      "crc32c(\"123456789\"): status 0x%02x value 0x%llx, expected 0xe3069283",
	      comp(5)->status, (unsigned long long)comp(5)->value);
	uint32_t want = crc32c(buf + OFF_SRC, SRC_LEN);
	CHECK(comp(6)->status == ST_SUCCESS && comp(6)->value == want,
	      "crc32c(src): status 0x%02x value 0x%llx, expected 0x%08x", comp(6)->status,
	      (unsigned long long)comp(6)->value, want);
	/* 7, 8: above guest RAM: page fault with that address (write, then read) */
	CHECK(comp(7)->status == ST_PAGE_FAULT && comp(7)->fault_addr == fault_iova &&
		      (comp(7)->fault_info & 1) == 1 && comp(7)->bytes_completed == 0,
	      "memmove to 0x%llx: status 0x%02x fault_addr 0x%llx fault_info %u bytes %u",
	      (unsigned long long)fault_iova, comp(7)->status,
	      (unsigned long long)comp(7)->fault_addr, comp(7)->fault_info, comp(7)->bytes_completed);
	CHECK(comp(8)->status == ST_PAGE_FAULT && comp(8)->fault_addr == fault_iova &&
		      (comp(8)->fault_info & 1) == 0 && comp(8)->bytes_completed == 0,
	      "memmove from 0x%llx: status 0x%02x fault_addr 0x%llx fault_info %u bytes %u",
	      (unsigned long long)fault_iova, comp(8)->status,
	      (unsigned long long)comp(8)->fault_addr, comp(8)->fault_info, comp(8)->bytes_completed);
	bad = 0;
	for (unsigned i = 0; i < COPY_LEN; i++)
		bad += buf[OFF_DST + i] != buf[OFF_SRC + i];
	CHECK(bad == 0, "a faulting memmove changed %u bytes of dst", bad);
	/* 9: the queue goes on after faults (and raised the interrupt: the script checks) */
	CHECK(comp(9)->status == ST_SUCCESS, "no-op after the faults: status 0x%02x",
	      comp(9)->status);

	/* Ring state: everything consumed, no error latched (all had RCR). */
	CHECK(rd(REG_HEAD) == posted, "HEAD %u, expected %u", rd(REG_HEAD), posted);
	CHECK(rd64(REG_ERROR) == 0, "ERROR 0x%llx ERROR_ADDR 0x%llx",
	      (unsigned long long)rd64(REG_ERROR), (unsigned long long)rd64(REG_ERROR_ADDR));
	CHECK(!(rd(REG_STATUS) & STATUS_ERROR), "STATUS 0x%x has ERROR", rd(REG_STATUS));

	wr(REG_CTRL, 0);
	if (failures) {
		printf("sdmatest %s: %d check(s) failed\n", name, failures);
		return 1;
	}
	printf("sdmatest %s: all checks passed (pasid %u)\n", name, pasid & 0xfffff);
	return 0;
}
