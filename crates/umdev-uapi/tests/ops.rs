//! The iommufd ioctls and IOMMU_TEST_OPs beyond the core ones, in
//! process: each ABI rule's errno and the main behaviours, as the 6.12
//! selftest (tools/testing/selftests/iommu/iommufd.c) exercises them.

mod common;

use std::os::fd::AsRawFd;

use common::{buffer, ioas_alloc, ioas_map, ioctl, ioctl_files, me, open};
use rustix::io::Errno;
use umdev_iommufd::selftest::MockBus;
use umdev_uapi::file::FileId;
use umdev_uapi::ioctl::{IommufdFile, nr};
use umdev_uapi::test_cmd::*;
use umdev_uapi::uapi::*;

/// A struct iommu_test_cmd as 18 words: size, op, id, reserved, union.
fn test_cmd(op: u32, id: u32, union: &[u64]) -> [u32; 18] {
    let mut c = [0u32; 18];
    c[0] = 72;
    c[1] = op;
    c[2] = id;
    for (i, v) in union.iter().enumerate() {
        c[4 + 2 * i] = *v as u32;
        c[5 + 2 * i] = (*v >> 32) as u32;
    }
    c
}

/// MOCK_DOMAIN on `pt_id`: (stdev/idev id, hwpt id).
fn mock_domain(file: &IommufdFile, pt_id: u32) -> (u32, u32) {
    let mut c = test_cmd(IOMMU_TEST_OP_MOCK_DOMAIN, pt_id, &[]);
    ioctl(file, nr::TEST_CMD, &mut c).unwrap();
    assert_eq!(c[4], c[6], "stdev and idev are one object here");
    (c[4], c[5])
}

fn hwpt_alloc(file: &IommufdFile, dev: u32, pt: u32, flags: u32) -> Result<u32, Errno> {
    let mut h = IommuHwptAlloc {
        size: 48,
        flags,
        dev_id: dev,
        pt_id: pt,
        ..Default::default()
    };
    ioctl(file, nr::HWPT_ALLOC, &mut h).map(|_| h.out_hwpt_id)
}

fn nested(
    file: &IommufdFile,
    dev: u32,
    parent: u32,
    ty: u32,
    data: u64,
    len: u32,
) -> Result<u32, Errno> {
    let mut h = IommuHwptAlloc {
        size: 48,
        dev_id: dev,
        pt_id: parent,
        data_type: ty,
        data_len: len,
        data_uptr: data,
        ..Default::default()
    };
    ioctl(file, nr::HWPT_ALLOC, &mut h).map(|_| h.out_hwpt_id)
}

fn option(file: &IommufdFile, id: u32, op: u16, object_id: u32, val: u64) -> Result<u64, Errno> {
    let mut o = IommuOption {
        size: 24,
        option_id: id,
        op,
        object_id,
        val64: val,
        ..Default::default()
    };
    ioctl(file, nr::OPTION, &mut o).map(|_| o.val64)
}

#[test]
fn option_get_set_round_trip_and_rules() {
    let bus = MockBus::new();
    let file = open(&bus);
    let rl = IOMMU_OPTION_RLIMIT_MODE;
    assert_eq!(option(&file, rl, IOMMU_OPTION_OP_GET, 0, 7), Ok(0));
    assert_eq!(option(&file, rl, IOMMU_OPTION_OP_SET, 0, 1), Ok(1));
    assert_eq!(option(&file, rl, IOMMU_OPTION_OP_GET, 0, 0), Ok(1));
    assert_eq!(
        option(&file, rl, IOMMU_OPTION_OP_SET, 0, 2),
        Err(Errno::INVAL)
    );
    assert_eq!(
        option(&file, rl, IOMMU_OPTION_OP_GET, 1, 0),
        Err(Errno::OPNOTSUPP)
    );
    assert_eq!(option(&file, rl, 9, 0, 0), Err(Errno::OPNOTSUPP));
    assert_eq!(
        option(&file, 7, IOMMU_OPTION_OP_GET, 0, 0),
        Err(Errno::OPNOTSUPP)
    );
    let ioas = ioas_alloc(&file);
    assert_eq!(
        option(&file, rl, IOMMU_OPTION_OP_SET, 0, 0),
        Err(Errno::BUSY)
    );
    let hp = IOMMU_OPTION_HUGE_PAGES;
    assert_eq!(
        option(&file, hp, IOMMU_OPTION_OP_GET, 0, 0),
        Err(Errno::NOENT)
    );
    assert_eq!(option(&file, hp, 9, 0, 0), Err(Errno::NOENT));
    assert_eq!(option(&file, hp, 9, ioas, 0), Err(Errno::OPNOTSUPP));
    assert_eq!(option(&file, hp, IOMMU_OPTION_OP_GET, ioas, 0), Ok(1));
    assert_eq!(option(&file, hp, IOMMU_OPTION_OP_SET, ioas, 0), Ok(0));
    assert_eq!(option(&file, hp, IOMMU_OPTION_OP_GET, ioas, 1), Ok(0));
    assert_eq!(
        option(&file, hp, IOMMU_OPTION_OP_SET, ioas, 2),
        Err(Errno::INVAL)
    );
    let mut o = IommuOption {
        size: 24,
        reserved: 1,
        ..Default::default()
    };
    assert_eq!(ioctl(&file, nr::OPTION, &mut o), Err(Errno::OPNOTSUPP));
    file.release();
}

#[test]
fn allow_iovas_rules_and_vfio_ioas() {
    let bus = MockBus::new();
    let file = open(&bus);
    let ioas = ioas_alloc(&file);
    let mut ranges = [
        IommuIovaRange {
            start: 0x10000,
            last: 0x1ffff,
        },
        IommuIovaRange {
            start: 0x18000,
            last: 0x2ffff,
        },
    ];
    let mut a = IommuIoasAllowIovas {
        size: 24,
        ioas_id: ioas,
        num_iovas: 2,
        allowed_iovas: ranges.as_mut_ptr() as u64,
        ..Default::default()
    };
    assert_eq!(
        ioctl(&file, nr::IOAS_ALLOW_IOVAS, &mut a),
        Err(Errno::INVAL),
        "overlap"
    );
    ranges[1] = IommuIovaRange {
        start: 0x40000,
        last: 0x40000,
    };
    assert_eq!(
        ioctl(&file, nr::IOAS_ALLOW_IOVAS, &mut a),
        Err(Errno::INVAL),
        "start >= last"
    );
    ranges[1] = IommuIovaRange {
        start: 0x40000,
        last: 0x4ffff,
    };
    a.allowed_iovas = 8;
    assert_eq!(
        ioctl(&file, nr::IOAS_ALLOW_IOVAS, &mut a),
        Err(Errno::FAULT)
    );
    a.allowed_iovas = ranges.as_mut_ptr() as u64;
    a.num_iovas = 2;
    a.reserved = 1;
    assert_eq!(
        ioctl(&file, nr::IOAS_ALLOW_IOVAS, &mut a),
        Err(Errno::OPNOTSUPP)
    );
    a.reserved = 0;
    a.ioas_id = 999;
    assert_eq!(
        ioctl(&file, nr::IOAS_ALLOW_IOVAS, &mut a),
        Err(Errno::NOENT)
    );
    a.ioas_id = ioas;
    assert_eq!(ioctl(&file, nr::IOAS_ALLOW_IOVAS, &mut a), Ok(0));
    // Only allowed IOVAs are chosen now.
    let buf = buffer(4096);
    let iova = ioas_map(&file, ioas, buf, 4096, None);
    assert!((0x10000..0x20000).contains(&iova) || (0x40000..0x50000).contains(&iova));

    let mut v = IommuVfioIoas {
        size: 12,
        op: IOMMU_VFIO_IOAS_GET,
        ..Default::default()
    };
    assert_eq!(ioctl(&file, nr::VFIO_IOAS, &mut v), Err(Errno::NODEV));
    v.op = IOMMU_VFIO_IOAS_SET;
    v.ioas_id = 999;
    assert_eq!(ioctl(&file, nr::VFIO_IOAS, &mut v), Err(Errno::NOENT));
    v.ioas_id = ioas;
    assert_eq!(ioctl(&file, nr::VFIO_IOAS, &mut v), Ok(0));
    v.op = IOMMU_VFIO_IOAS_GET;
    v.ioas_id = 0;
    assert_eq!(ioctl(&file, nr::VFIO_IOAS, &mut v), Ok(0));
    assert_eq!(v.ioas_id, ioas);
    v.op = 3;
    assert_eq!(ioctl(&file, nr::VFIO_IOAS, &mut v), Err(Errno::OPNOTSUPP));
    file.release();
}

#[test]
fn ioas_copy_maps_the_same_pages() {
    let bus = MockBus::new();
    let file = open(&bus);
    let src = ioas_alloc(&file);
    let dst = ioas_alloc(&file);
    let (_, hwpt) = mock_domain(&file, dst);
    let len = 16 * 4096;
    let buf = buffer(len as usize);
    let src_iova = ioas_map(&file, src, buf, len, None);
    let mut c = IommuIoasCopy {
        size: 40,
        flags: 6,
        dst_ioas_id: dst,
        src_ioas_id: src,
        length: len,
        src_iova,
        ..Default::default()
    };
    assert_eq!(ioctl(&file, nr::IOAS_COPY, &mut c), Ok(0));
    let mut check = test_cmd(IOMMU_TEST_OP_MD_CHECK_MAP, hwpt, &[c.dst_iova, len, buf]);
    assert_eq!(ioctl(&file, nr::TEST_CMD, &mut check), Ok(0));
    // Both areas share the pages: one pin (pages.c pins an iopt_pages once).
    let mut refs = test_cmd(IOMMU_TEST_OP_MD_CHECK_REFS, 0, &[len, buf, 2]);
    assert_eq!(ioctl(&file, nr::TEST_CMD, &mut refs), Err(Errno::IO));
    let mut refs = test_cmd(IOMMU_TEST_OP_MD_CHECK_REFS, 0, &[len, buf, 1]);
    assert_eq!(ioctl(&file, nr::TEST_CMD, &mut refs), Ok(0));
    let mut refs = test_cmd(IOMMU_TEST_OP_MD_CHECK_REFS, 0, &[len, buf + 1, 1]);
    assert_eq!(ioctl(&file, nr::TEST_CMD, &mut refs), Err(Errno::INVAL));
    c.src_iova += len;
    assert_eq!(ioctl(&file, nr::IOAS_COPY, &mut c), Err(Errno::NOENT));
    c.flags = 0;
    assert_eq!(ioctl(&file, nr::IOAS_COPY, &mut c), Err(Errno::INVAL));
    c.flags = 8;
    assert_eq!(ioctl(&file, nr::IOAS_COPY, &mut c), Err(Errno::OPNOTSUPP));
    file.release();
}

#[test]
fn hwpt_alloc_nested_and_invalidate() {
    let bus = MockBus::new();
    let file = open(&bus);
    let ioas = ioas_alloc(&file);
    let (dev, _) = mock_domain(&file, ioas);
    assert_eq!(hwpt_alloc(&file, ioas, dev, 0), Err(Errno::NOENT));
    assert_eq!(hwpt_alloc(&file, dev, dev, 0), Err(Errno::INVAL));
    assert_eq!(hwpt_alloc(&file, dev, ioas, 1 | 4), Err(Errno::OPNOTSUPP));
    let parent = hwpt_alloc(&file, dev, ioas, 1).unwrap();
    let not_parent = hwpt_alloc(&file, dev, ioas, 0).unwrap();
    let sel = umdev_iommufd::selftest::ops::IOMMU_HWPT_DATA_SELFTEST;
    let data = [0x0badbeefu32];
    let d = data.as_ptr() as u64;
    assert_eq!(
        nested(&file, dev, parent, IOMMU_HWPT_DATA_NONE, d, 4),
        Err(Errno::INVAL)
    );
    assert_eq!(
        nested(&file, dev, parent, sel + 1, d, 4),
        Err(Errno::OPNOTSUPP)
    );
    assert_eq!(nested(&file, dev, parent, sel, d, 3), Err(Errno::INVAL));
    assert_eq!(nested(&file, dev, parent, sel, d, 5), Err(Errno::INVAL));
    assert_eq!(nested(&file, dev, parent, sel, 0, 4), Err(Errno::FAULT));
    assert_eq!(nested(&file, dev, not_parent, sel, d, 4), Err(Errno::INVAL));
    // Data for a paging HWPT is refused without being read.
    assert_eq!(nested(&file, dev, ioas, sel, 0, 4), Err(Errno::OPNOTSUPP));
    let hwpt = nested(&file, dev, parent, sel, d, 4).unwrap();
    assert_eq!(nested(&file, dev, hwpt, sel, d, 4), Err(Errno::INVAL));
    let check = |id: u32, want: u32| {
        let mut c = test_cmd(
            IOMMU_TEST_OP_MD_CHECK_IOTLB,
            hwpt,
            &[u64::from(id) | u64::from(want) << 32],
        );
        ioctl(&file, nr::TEST_CMD, &mut c)
    };
    assert_eq!(check(1, IOMMU_TEST_IOTLB_DEFAULT_), Ok(0));
    assert_eq!(check(1, 0), Err(Errno::INVAL));
    assert_eq!(check(4, IOMMU_TEST_IOTLB_DEFAULT_), Err(Errno::INVAL));

    let inv_sel = umdev_iommufd::selftest::ops::IOMMU_HWPT_INVALIDATE_DATA_SELFTEST;
    let mut reqs = [[0u32, 1u32], [0, 2]];
    let inv = |id: u32, ty: u32, len: u32, num: u32, reqs: &mut [[u32; 2]; 2]| {
        let mut c = IommuHwptInvalidate {
            size: 32,
            hwpt_id: id,
            data_uptr: reqs.as_mut_ptr() as u64,
            data_type: ty,
            entry_len: len,
            entry_num: num,
            ..Default::default()
        };
        (ioctl(&file, nr::HWPT_INVALIDATE, &mut c), c.entry_num)
    };
    assert_eq!(
        inv(parent, inv_sel, 8, 1, &mut reqs),
        (Err(Errno::NOENT), 0)
    );
    assert_eq!(inv(hwpt, inv_sel, 8, 0, &mut reqs), (Ok(0), 0));
    assert_eq!(
        inv(hwpt, inv_sel + 1, 8, 1, &mut reqs),
        (Err(Errno::INVAL), 0)
    );
    assert_eq!(inv(hwpt, inv_sel, 9, 1, &mut reqs), (Err(Errno::INVAL), 0));
    assert_eq!(inv(hwpt, inv_sel, 0, 1, &mut reqs), (Err(Errno::INVAL), 0));
    reqs[1][0] = 0xffff_ffff;
    assert_eq!(
        inv(hwpt, inv_sel, 8, 2, &mut reqs),
        (Err(Errno::OPNOTSUPP), 1)
    );
    assert_eq!(check(1, 0), Ok(0), "the first entry was handled");
    assert_eq!(check(2, IOMMU_TEST_IOTLB_DEFAULT_), Ok(0));
    reqs[1] = [0, 2];
    assert_eq!(inv(hwpt, inv_sel, 8, 2, &mut reqs), (Ok(0), 2));
    assert_eq!(check(2, 0), Ok(0));
    file.release();
}

const IOMMU_TEST_IOTLB_DEFAULT_: u32 = umdev_iommufd::selftest::IOMMU_TEST_IOTLB_DEFAULT;

#[test]
fn dirty_bitmap_after_test_op_dirty() {
    let bus = MockBus::new();
    let file = open(&bus);
    let ioas = ioas_alloc(&file);
    let (dev, _) = mock_domain(&file, ioas);
    let hwpt = hwpt_alloc(&file, dev, ioas, 2).unwrap();
    let (_, on) = mock_domain(&file, hwpt);
    assert_eq!(on, hwpt);
    let page = 4096u64;
    let len = 64 * page;
    let buf = buffer(len as usize);
    let iova = ioas_map(&file, ioas, buf, len, Some(1 << 24));
    let mut s = IommuHwptSetDirtyTracking {
        size: 16,
        flags: 1,
        hwpt_id: hwpt,
        ..Default::default()
    };
    assert_eq!(ioctl(&file, nr::HWPT_SET_DIRTY_TRACKING, &mut s), Ok(0));
    s.flags = 2;
    assert_eq!(
        ioctl(&file, nr::HWPT_SET_DIRTY_TRACKING, &mut s),
        Err(Errno::OPNOTSUPP)
    );
    // Pages 0, 5 and 63 written by the device.
    let set: u64 = 1 | 1 << 5 | 1 << 63;
    let mut d = test_cmd(
        IOMMU_TEST_OP_DIRTY,
        hwpt,
        &[0, iova, len, page, &set as *const u64 as u64, 0],
    );
    assert_eq!(ioctl(&file, nr::TEST_CMD, &mut d), Ok(0));
    assert_eq!(u64::from(d[14]) | u64::from(d[15]) << 32, 3, "out_nr_dirty");
    let mut bitmap = 0u64;
    let mut g = IommuHwptGetDirtyBitmap {
        size: 48,
        hwpt_id: hwpt,
        flags: 1,
        iova,
        length: len,
        page_size: page,
        data: &mut bitmap as *mut u64 as u64,
        ..Default::default()
    };
    assert_eq!(ioctl(&file, nr::HWPT_GET_DIRTY_BITMAP, &mut g), Ok(0));
    assert_eq!(bitmap, set, "NO_CLEAR read");
    bitmap = 0;
    g.flags = 0;
    assert_eq!(ioctl(&file, nr::HWPT_GET_DIRTY_BITMAP, &mut g), Ok(0));
    assert_eq!(bitmap, set);
    bitmap = 0;
    assert_eq!(ioctl(&file, nr::HWPT_GET_DIRTY_BITMAP, &mut g), Ok(0));
    assert_eq!(bitmap, 0, "cleared by the previous read");
    g.reserved = 1;
    assert_eq!(
        ioctl(&file, nr::HWPT_GET_DIRTY_BITMAP, &mut g),
        Err(Errno::OPNOTSUPP)
    );
    g.reserved = 0;
    g.data = 8;
    assert_eq!(
        ioctl(&file, nr::HWPT_GET_DIRTY_BITMAP, &mut g),
        Err(Errno::FAULT)
    );
    g.page_size = 0;
    assert_eq!(
        ioctl(&file, nr::HWPT_GET_DIRTY_BITMAP, &mut g),
        Err(Errno::INVAL)
    );
    // DIRTY on a domain without tracking: EINVAL; a zero page size too.
    let (_, plain) = mock_domain(&file, ioas);
    let mut d = test_cmd(
        IOMMU_TEST_OP_DIRTY,
        plain,
        &[0, iova, len, page, &set as *const u64 as u64, 0],
    );
    assert_eq!(ioctl(&file, nr::TEST_CMD, &mut d), Err(Errno::INVAL));
    let mut d = test_cmd(
        IOMMU_TEST_OP_DIRTY,
        hwpt,
        &[0, iova, len, 0, &set as *const u64 as u64, 0],
    );
    assert_eq!(ioctl(&file, nr::TEST_CMD, &mut d), Err(Errno::INVAL));
    file.release();
}

#[test]
fn fault_record_read_after_trigger_iopf() {
    let bus = MockBus::new();
    let file = open(&bus);
    let ioas = ioas_alloc(&file);
    let (dev, _) = mock_domain(&file, ioas);
    let mut f = IommuFaultAlloc {
        size: 16,
        flags: 1,
        ..Default::default()
    };
    assert_eq!(
        ioctl(&file, nr::FAULT_QUEUE_ALLOC, &mut f),
        Err(Errno::OPNOTSUPP)
    );
    f.flags = 0;
    let (_, mut files) = ioctl_files(&file, nr::FAULT_QUEUE_ALLOC, &mut f).unwrap();
    assert_eq!(files.len(), 1);
    let queue = files.pop().unwrap();
    let parent = hwpt_alloc(&file, dev, ioas, 1).unwrap();
    let data = [0x0badbeefu32];
    let mut h = IommuHwptAlloc {
        size: 48,
        flags: 4,
        dev_id: dev,
        pt_id: parent,
        data_type: umdev_iommufd::selftest::ops::IOMMU_HWPT_DATA_SELFTEST,
        data_len: 4,
        data_uptr: data.as_ptr() as u64,
        fault_id: u32::MAX,
        ..Default::default()
    };
    assert_eq!(ioctl(&file, nr::HWPT_ALLOC, &mut h), Err(Errno::NOENT));
    h.fault_id = f.out_fault_id;
    ioctl(&file, nr::HWPT_ALLOC, &mut h).unwrap();
    let mut r = test_cmd(
        IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE,
        dev,
        &[u64::from(h.out_hwpt_id)],
    );
    assert_eq!(ioctl(&file, nr::TEST_CMD, &mut r), Ok(0));
    assert_eq!(r[4], h.out_hwpt_id);
    let mut t = test_cmd(
        IOMMU_TEST_OP_TRIGGER_IOPF,
        0,
        &[u64::from(dev) | 1 << 32, 2 | 3 << 32, 0xdeadbeaf],
    );
    assert_eq!(ioctl(&file, nr::TEST_CMD, &mut t), Ok(0));
    let mut rec = IommuHwptPgfault::default();
    let at = &mut rec as *mut IommuHwptPgfault as u64;
    assert_eq!(queue.read(me(), at, 39, None), Err(Errno::SPIPE));
    assert_eq!(queue.read(me(), at, 40, Some(40)), Err(Errno::SPIPE));
    assert_eq!(
        queue.read(me(), at, 0, None),
        Err(Errno::INVAL),
        "a pending group that does not fit"
    );
    assert_eq!(queue.read(me(), 8, 40, None), Err(Errno::FAULT));
    assert_eq!(
        queue.read(me(), at, 80, None),
        Ok(40),
        "the group was not lost"
    );
    assert_eq!(rec.dev_id, dev);
    assert_eq!(rec.addr, 0xdeadb000);
    assert_ne!(rec.cookie, 0);
    assert_eq!(queue.read(me(), at, 40, None), Ok(0));
    let resp = [
        IommuHwptPageResponse {
            cookie: rec.cookie,
            code: 9,
        },
        IommuHwptPageResponse {
            cookie: rec.cookie,
            code: IOMMUFD_PAGE_RESP_SUCCESS,
        },
    ];
    let ra = resp.as_ptr() as u64;
    assert_eq!(
        queue.write(me(), ra, 8, None),
        Err(Errno::INVAL),
        "unknown code"
    );
    let ra = ra + 8;
    assert_eq!(queue.write(me(), ra, 4, None), Err(Errno::SPIPE));
    assert_eq!(queue.write(me(), ra, 8, None), Ok(8));
    assert_eq!(
        queue.write(me(), ra, 8, None),
        Err(Errno::INVAL),
        "already answered"
    );
    // TRIGGER_IOPF on no device: ENOENT; on a non-mock object: ENOENT too.
    let mut t = test_cmd(IOMMU_TEST_OP_TRIGGER_IOPF, 0, &[999, 0, 0]);
    assert_eq!(ioctl(&file, nr::TEST_CMD, &mut t), Err(Errno::NOENT));
    queue.release();
    file.release();
}

#[test]
fn access_fd_pages_rw_and_release() {
    let bus = MockBus::new();
    let file = open(&bus);
    let ioas = ioas_alloc(&file);
    let len = 8 * 4096u64;
    let buf = buffer(len as usize);
    let iova = ioas_map(&file, ioas, buf, len, None);
    let mut c = test_cmd(IOMMU_TEST_OP_CREATE_ACCESS, ioas, &[2 << 32]);
    assert_eq!(ioctl(&file, nr::TEST_CMD, &mut c), Err(Errno::OPNOTSUPP));
    let mut c = test_cmd(IOMMU_TEST_OP_CREATE_ACCESS, ioas, &[1 << 32]);
    let (_, mut files) = ioctl_files(&file, nr::TEST_CMD, &mut c).unwrap();
    let access = files.pop().unwrap();
    // The server would install the caller's fd; any open fd stands for it.
    let stand_in = tempfile::tempfile().unwrap();
    let fd = stand_in.as_raw_fd() as u32;
    let mut rw = test_cmd(IOMMU_TEST_OP_ACCESS_RW, fd, &[iova, 4, buf, 0]);
    assert_eq!(
        ioctl(&file, nr::TEST_CMD, &mut rw),
        Err(Errno::BADFD),
        "not installed yet"
    );
    access.installed(FileId::of(&stand_in).unwrap());

    let src = *b"umdv";
    let mut rw = test_cmd(
        IOMMU_TEST_OP_ACCESS_RW,
        fd,
        &[iova + 100, 4, src.as_ptr() as u64, 1],
    );
    assert_eq!(ioctl(&file, nr::TEST_CMD, &mut rw), Ok(0));
    // SAFETY: `buf` maps `len` bytes, which outlive this test.
    let written = unsafe { std::slice::from_raw_parts((buf + 100) as *const u8, 4) };
    assert_eq!(written, b"umdv");
    let mut back = [0u8; 4];
    let mut rw = test_cmd(
        IOMMU_TEST_OP_ACCESS_RW,
        fd,
        &[iova + 100, 4, back.as_mut_ptr() as u64, 0],
    );
    assert_eq!(ioctl(&file, nr::TEST_CMD, &mut rw), Ok(0));
    assert_eq!(&back, b"umdv");
    let mut rw = test_cmd(IOMMU_TEST_OP_ACCESS_RW, fd, &[iova, (16 << 20) + 1, buf, 0]);
    assert_eq!(ioctl(&file, nr::TEST_CMD, &mut rw), Err(Errno::NOMEM));

    let pages = |flags: u64, iova: u64, length: u64, uptr: u64| {
        let mut p = test_cmd(IOMMU_TEST_OP_ACCESS_PAGES, fd, &[flags, iova, length, uptr]);
        ioctl(&file, nr::TEST_CMD, &mut p).map(|_| p[5])
    };
    assert_eq!(pages(1 << 8, iova, 4096, buf), Err(Errno::OPNOTSUPP));
    assert_eq!(
        pages(0, iova, 4096, buf + 4096),
        Err(Errno::BADE),
        "another user page"
    );
    let item = pages(0, iova, 2 * 4096, buf).unwrap();
    let refs = |length: u64, want: u64| {
        let mut r = test_cmd(IOMMU_TEST_OP_MD_CHECK_REFS, 0, &[length, buf, want]);
        ioctl(&file, nr::TEST_CMD, &mut r)
    };
    assert_eq!(refs(2 * 4096, 1), Ok(0), "pinned by the access");
    assert_eq!(refs(2 * 4096, 0), Err(Errno::IO));
    let mut d = test_cmd(IOMMU_TEST_OP_DESTROY_ACCESS_PAGES, fd, &[u64::from(item)]);
    assert_eq!(ioctl(&file, nr::TEST_CMD, &mut d), Ok(0));
    assert_eq!(ioctl(&file, nr::TEST_CMD, &mut d), Err(Errno::NOENT));
    assert_eq!(refs(2 * 4096, 0), Ok(0));
    // The item the release must unpin.
    pages(0, iova, 4096, 0).unwrap();
    let other = ioas_alloc(&file);
    let mut r = test_cmd(IOMMU_TEST_OP_ACCESS_REPLACE_IOAS, fd, &[u64::from(other)]);
    assert_eq!(ioctl(&file, nr::TEST_CMD, &mut r), Ok(0));
    assert_eq!(refs(4096, 0), Ok(0), "replacing unpinned the item");
    access.release();
    let mut rw = test_cmd(IOMMU_TEST_OP_ACCESS_RW, fd, &[iova, 4, buf, 0]);
    assert_eq!(
        ioctl(&file, nr::TEST_CMD, &mut rw),
        Err(Errno::BADFD),
        "released"
    );
    file.release();
}

#[test]
fn hw_info_of_a_mock_device_and_temp_memory_limit() {
    let bus = MockBus::new();
    let file = open(&bus);
    let ioas = ioas_alloc(&file);
    let (dev, _) = mock_domain(&file, ioas);
    let mut data = [0xffu8; 16];
    let mut h = IommuHwInfo {
        size: 40,
        dev_id: dev,
        data_len: 16,
        data_uptr: data.as_mut_ptr() as u64,
        ..Default::default()
    };
    assert_eq!(ioctl(&file, nr::GET_HW_INFO, &mut h), Ok(0));
    assert_eq!(
        h.out_data_type,
        umdev_iommufd::selftest::ops::IOMMU_HW_INFO_TYPE_SELFTEST
    );
    assert_eq!(h.data_len, 8);
    assert_eq!(&data[4..8], &0xdeadbeefu32.to_le_bytes());
    assert_eq!(&data[8..], &[0; 8], "the rest of the buffer cleared");
    assert_eq!(h.out_capabilities & 1, 1, "dirty tracking");
    h.reserved = [0, 1, 0];
    assert_eq!(ioctl(&file, nr::GET_HW_INFO, &mut h), Err(Errno::OPNOTSUPP));
    h.reserved = [0; 3];
    h.flags = 2;
    assert_eq!(ioctl(&file, nr::GET_HW_INFO, &mut h), Err(Errno::OPNOTSUPP));
    h.flags = 1;
    h.out_data_type = 7;
    assert_eq!(
        ioctl(&file, nr::GET_HW_INFO, &mut h),
        Err(Errno::OPNOTSUPP),
        "in_data_type"
    );
    h.flags = 0;
    h.dev_id = ioas;
    assert_eq!(ioctl(&file, nr::GET_HW_INFO, &mut h), Err(Errno::NOENT));
    let mut m = test_cmd(IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT, 0, &[11]);
    assert_eq!(ioctl(&file, nr::TEST_CMD, &mut m), Err(Errno::INVAL));
    let mut m = test_cmd(IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT, 0, &[12]);
    assert_eq!(ioctl(&file, nr::TEST_CMD, &mut m), Ok(0));
    let mut u = test_cmd(99, 0, &[]);
    assert_eq!(ioctl(&file, nr::TEST_CMD, &mut u), Err(Errno::OPNOTSUPP));
    file.release();
}
