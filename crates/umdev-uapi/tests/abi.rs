//! The ioctl layer's ABI rules (drivers/iommu/iommufd/main.c), with this
//! process as its own peer: short size → EINVAL, non-zero tail → E2BIG,
//! bad pointer → EFAULT, unknown command → ENOTTY; and isolation: a second
//! open file does not see the first one's objects.

mod common;

use common::{ioctl, me, open};
use rustix::io::Errno;
use umdev_iommufd::selftest::MockBus;
use umdev_uapi::file::NewFiles;
use umdev_uapi::ioctl::{IOMMUFD_IOCTL_OPS, dispatch, nr};
use umdev_uapi::uapi::{IommuDestroy, IommuIoasAlloc, IommuIoasMap, iommufd_io};

#[test]
fn size_tail_pointer_and_unknown_rules() {
    let bus = MockBus::new();
    let file = open(&bus);
    // Short size: EINVAL (min_size of IOAS_ALLOC is 12).
    let mut a = IommuIoasAlloc {
        size: 8,
        ..Default::default()
    };
    assert_eq!(ioctl(&file, nr::IOAS_ALLOC, &mut a), Err(Errno::INVAL));
    // A longer struct with a non-zero byte past what is known: E2BIG;
    // with a zero tail: accepted.
    let mut long = [0u32; 8];
    long[0] = 32;
    long[7] = 1;
    assert_eq!(ioctl(&file, nr::IOAS_ALLOC, &mut long), Err(Errno::TOOBIG));
    long[7] = 0;
    assert_eq!(ioctl(&file, nr::IOAS_ALLOC, &mut long), Ok(0));
    assert_ne!(long[2], 0, "out_ioas_id written back");
    // Unknown flags: EOPNOTSUPP.
    let mut a = IommuIoasAlloc {
        size: 12,
        flags: 1,
        ..Default::default()
    };
    assert_eq!(ioctl(&file, nr::IOAS_ALLOC, &mut a), Err(Errno::OPNOTSUPP));
    // A bad user pointer: EFAULT.
    assert_eq!(
        dispatch(
            &file,
            me(),
            iommufd_io(nr::IOAS_ALLOC),
            8,
            &mut NewFiles::default()
        ),
        Err(Errno::FAULT)
    );
    // Unknown commands: ENOTTY.
    assert_eq!(ioctl(&file, 0xff, &mut a), Err(Errno::NOTTY));
    assert_eq!(
        dispatch(
            &file,
            me(),
            0x1234,
            &mut a as *mut _ as u64,
            &mut NewFiles::default()
        ),
        Err(Errno::NOTTY)
    );
    // IOAS_MAP of an unmapped user range: EFAULT.
    let mut m = IommuIoasMap {
        size: 40,
        flags: 6,
        ioas_id: long[2],
        user_va: 4096,
        length: 4096,
        ..Default::default()
    };
    assert_eq!(ioctl(&file, nr::IOAS_MAP, &mut m), Err(Errno::FAULT));
    file.release();
}

#[test]
fn map_anonymous_memory_and_isolation() {
    let bus = MockBus::new();
    let first = open(&bus);
    let second = open(&bus);
    let mut a = IommuIoasAlloc {
        size: 12,
        ..Default::default()
    };
    ioctl(&first, nr::IOAS_ALLOC, &mut a).unwrap();
    let buf = vec![0x5au8; 64 << 10];
    let mut m = IommuIoasMap {
        size: 40,
        flags: 6,
        ioas_id: a.out_ioas_id,
        user_va: buf.as_ptr() as u64,
        length: 4096,
        ..Default::default()
    };
    ioctl(&first, nr::IOAS_MAP, &mut m).unwrap();
    assert_ne!(m.iova, 0, "an IOVA was chosen and written back");
    // The second file's context has no such object.
    let mut d = IommuDestroy {
        size: 8,
        id: a.out_ioas_id,
    };
    assert_eq!(ioctl(&second, nr::DESTROY, &mut d), Err(Errno::NOENT));
    // The first can destroy it once unmapped.
    first.release();
    second.release();
}

#[test]
fn every_op_checks_its_min_size() {
    let bus = MockBus::new();
    let file = open(&bus);
    for op in IOMMUFD_IOCTL_OPS {
        let mut arg = [0u8; 128];
        let short = (op.min_size - 1) as u32;
        arg[..4].copy_from_slice(&short.to_le_bytes());
        let r = dispatch(
            &file,
            me(),
            op.ioctl_num,
            arg.as_mut_ptr() as u64,
            &mut NewFiles::default(),
        );
        assert_eq!(r, Err(Errno::INVAL), "ioctl {:#x}", op.ioctl_num);
        assert!(op.min_size <= op.size);
    }
    file.release();
}
