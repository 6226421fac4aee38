//! iommufd over the real VT-d model and the default platform, where the
//! selftest uses its mock driver: device DMA sets the dirty bits, nested
//! stage-1 invalidation goes through the unit's IOTLB, GET_HW_INFO reports
//! the unit's registers and the x86 MSI window is reserved.

use std::sync::Arc;

use rustix::io::Errno;
use umdev_iommu::dma::Dma;
use umdev_iommu::iommu::VtdS1Config;
use umdev_iommu::iommu::ops::VtdS1Invalidate;
use umdev_iommu::system::System;
use umdev_iommu::vtd::S1Flags;
use umdev_iommufd::io_pagetable::IovaRange;
use umdev_iommufd::{
    DirtyRange, DirtyTrackingFlags, GetDirtyBitmapFlags, HwInfoFlags, HwptAllocFlags, HwptData,
    HwptInvalidateData, Ictx, MapFlags,
};
use umdev_pci::Bdf;

const PAGE: u64 = 4096;
const RW: MapFlags = MapFlags::READABLE.union(MapFlags::WRITEABLE);
const FIXED: MapFlags = RW.union(MapFlags::FIXED_IOVA);

struct Fixture {
    sys: System,
    ictx: Arc<Ictx>,
    nvme: Bdf,
    dev: u32,
    ioas: u32,
}

fn fixture() -> Fixture {
    let sys = System::default_platform().unwrap();
    let nvme: Bdf = "0000:05:00.0".parse().unwrap();
    sys.platform.unbind("nvme", nvme).unwrap();
    let ictx = Ictx::new(sys.iommu.clone());
    let dev = ictx.device_bind(nvme).unwrap();
    let ioas = ictx.ioas_alloc().unwrap();
    Fixture {
        sys,
        ictx,
        nvme,
        dev,
        ioas,
    }
}

#[test]
fn device_dma_writes_set_dirty_bits() {
    let f = fixture();
    let hwpt = f
        .ictx
        .hwpt_alloc(
            f.dev,
            f.ioas,
            HwptAllocFlags::DIRTY_TRACKING,
            HwptData::None,
        )
        .unwrap();
    f.ictx.device_attach(f.dev, 0, hwpt).unwrap();
    let mem = f.sys.vtd.memory().alloc_anonymous(16 * PAGE).unwrap();
    let iova = 0x10_0000;
    f.ictx
        .ioas_map(f.ioas, FIXED, &mem, 0, 16 * PAGE, iova)
        .unwrap();
    let range = DirtyRange {
        iova,
        length: 16 * PAGE,
        page_size: PAGE,
    };
    f.ictx
        .hwpt_set_dirty_tracking(hwpt, DirtyTrackingFlags::ENABLE)
        .unwrap();
    // Nothing written since tracking started.
    let bitmap = f
        .ictx
        .hwpt_get_dirty_bitmap(hwpt, GetDirtyBitmapFlags::empty(), range)
        .unwrap();
    assert_eq!(bitmap, vec![0]);
    // The device writes pages 3 and 9 and reads page 5.
    let port = f.sys.dma_for(f.nvme).unwrap();
    port.write(None, iova + 3 * PAGE + 8, b"dirty").unwrap();
    port.write(None, iova + 9 * PAGE, b"dirty").unwrap();
    let mut buf = [0u8; 8];
    port.read(None, iova + 5 * PAGE, &mut buf).unwrap();
    let keep = f
        .ictx
        .hwpt_get_dirty_bitmap(hwpt, GetDirtyBitmapFlags::NO_CLEAR, range)
        .unwrap();
    assert_eq!(keep, vec![(1 << 3) | (1 << 9)]);
    let read = f
        .ictx
        .hwpt_get_dirty_bitmap(hwpt, GetDirtyBitmapFlags::empty(), range)
        .unwrap();
    assert_eq!(read, vec![(1 << 3) | (1 << 9)]);
    // Reading cleared them; a new write dirties the page again (the IOTLB
    // was flushed, so the walk sets D once more).
    assert_eq!(
        f.ictx
            .hwpt_get_dirty_bitmap(hwpt, GetDirtyBitmapFlags::empty(), range)
            .unwrap(),
        vec![0]
    );
    port.write(None, iova + 3 * PAGE, b"again").unwrap();
    assert_eq!(
        f.ictx
            .hwpt_get_dirty_bitmap(hwpt, GetDirtyBitmapFlags::empty(), range)
            .unwrap(),
        vec![1 << 3]
    );
}

#[test]
fn dirty_tracking_needs_a_dirty_hwpt() {
    let f = fixture();
    let hwpt = f
        .ictx
        .hwpt_alloc(f.dev, f.ioas, HwptAllocFlags::empty(), HwptData::None)
        .unwrap();
    assert_eq!(
        f.ictx
            .hwpt_set_dirty_tracking(hwpt, DirtyTrackingFlags::ENABLE)
            .unwrap_err()
            .errno(),
        Errno::OPNOTSUPP
    );
}

#[test]
fn nested_invalidation_entries_are_checked_in_order() {
    let f = fixture();
    let parent = f
        .ictx
        .hwpt_alloc(f.dev, f.ioas, HwptAllocFlags::NEST_PARENT, HwptData::None)
        .unwrap();
    let guest_tables = 0x8000_0000;
    let nested = f
        .ictx
        .hwpt_alloc(
            f.dev,
            parent,
            HwptAllocFlags::empty(),
            HwptData::VtdS1(VtdS1Config {
                flags: S1Flags::default(),
                pgtbl_addr: guest_tables,
                addr_width: 48,
            }),
        )
        .unwrap();
    let ok = VtdS1Invalidate {
        addr: 0x1000,
        npages: 4,
        flags: 1,
    };
    let all = VtdS1Invalidate {
        addr: 0,
        npages: u64::MAX,
        flags: 0,
    };
    let misaligned = VtdS1Invalidate {
        addr: 0x1001,
        npages: 1,
        flags: 0,
    };
    let bad_flags = VtdS1Invalidate {
        addr: 0x1000,
        npages: 1,
        flags: 2,
    };
    let r = f
        .ictx
        .hwpt_invalidate(nested, HwptInvalidateData::VtdS1(&[ok, all]));
    assert_eq!((r.entry_num, r.result.is_ok()), (2, true));
    let r = f
        .ictx
        .hwpt_invalidate(nested, HwptInvalidateData::VtdS1(&[ok, misaligned, ok]));
    assert_eq!(r.entry_num, 1);
    assert_eq!(r.result.unwrap_err().errno(), Errno::INVAL);
    let r = f
        .ictx
        .hwpt_invalidate(nested, HwptInvalidateData::VtdS1(&[bad_flags]));
    assert_eq!(r.entry_num, 0);
    assert_eq!(r.result.unwrap_err().errno(), Errno::OPNOTSUPP);
    // On the paging parent: EINVAL.
    let r = f
        .ictx
        .hwpt_invalidate(parent, HwptInvalidateData::VtdS1(&[ok]));
    assert_eq!(r.result.unwrap_err().errno(), Errno::INVAL);
}

#[test]
fn hw_info_reports_the_unit() {
    let f = fixture();
    let mut data = [0xffu8; 32];
    let info = f
        .ictx
        .get_hw_info(f.dev, HwInfoFlags::empty(), 0, &mut data)
        .unwrap();
    let vtd = info.vtd.unwrap();
    let unit = &f.sys.vtd.units()[0];
    assert_eq!(vtd.cap_reg, unit.cap().0);
    assert_eq!(vtd.ecap_reg, unit.ecap().0);
    // The NVMe has no PASID capability.
    assert_eq!(info.out_max_pasid_log2, 0);
    // Bytes past the driver's struct are zeroed.
    assert!(data[info.data_len as usize..].iter().all(|&b| b == 0));
}

#[test]
fn attach_reserves_the_msi_window() {
    let f = fixture();
    f.ictx.device_attach(f.dev, 0, f.ioas).unwrap();
    let (ranges, align) = f.ictx.ioas_iova_ranges(f.ioas).unwrap();
    assert_eq!(align, PAGE);
    assert!(
        ranges
            .iter()
            .all(|r| !r.intersects(&IovaRange::new(0xfee0_0000, 0xfeef_ffff)))
    );
    assert_eq!(ranges[0].start, 0);
    assert_eq!(ranges[0].last, 0xfedf_ffff);
    // A FIXED map into the window is EINVAL (reserved), next to it is fine.
    let mem = f.sys.vtd.memory().alloc_anonymous(PAGE).unwrap();
    let err = f
        .ictx
        .ioas_map(f.ioas, FIXED, &mem, 0, PAGE, 0xfee0_0000)
        .unwrap_err();
    assert_eq!(err.errno(), Errno::INVAL);
    f.ictx
        .ioas_map(f.ioas, FIXED, &mem, 0, PAGE, 0xfef0_0000)
        .unwrap();
    // Detaching drops the reservation.
    f.ictx.device_detach(f.dev, 0).unwrap();
    let (ranges, _) = f.ictx.ioas_iova_ranges(f.ioas).unwrap();
    assert_eq!(ranges, vec![IovaRange::new(0, u64::MAX)]);
}
