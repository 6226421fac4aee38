//! Inclusive IOVA intervals and the automatic IOVA allocator
//! (drivers/iommu/iommufd/io_pagetable.c `iopt_alloc_iova`).

use umdev_iommu::memory::PAGE_SIZE;

/// An inclusive IOVA interval `[start, last]` (struct iommu_iova_range).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IovaRange {
    /// First address.
    pub start: u64,
    /// Last address (inclusive).
    pub last: u64,
}

impl IovaRange {
    /// `[start, last]`.
    pub const fn new(start: u64, last: u64) -> Self {
        Self { start, last }
    }

    /// Do the two intervals share an address?
    pub fn intersects(&self, other: &IovaRange) -> bool {
        self.start <= other.last && other.start <= self.last
    }

    /// Is `other` entirely inside this interval?
    pub fn contains(&self, other: &IovaRange) -> bool {
        self.start <= other.start && other.last <= self.last
    }
}

/// The window automatic allocation may use: never IOVA 0 and never the top
/// page (io_pagetable.c `iopt_alloc_iova`).
pub(crate) const AUTO_WINDOW: IovaRange = IovaRange::new(PAGE_SIZE, u64::MAX - PAGE_SIZE);

/// The holes of `used` (any order, may overlap) inside `span`.
pub(crate) fn holes(used: &[IovaRange], span: IovaRange) -> Vec<IovaRange> {
    let mut sorted: Vec<IovaRange> = used
        .iter()
        .filter(|r| r.intersects(&span))
        .copied()
        .collect();
    sorted.sort_unstable();
    let mut out = Vec::new();
    let mut cursor = Some(span.start);
    for r in sorted {
        let Some(cur) = cursor else { break };
        if r.start > cur {
            out.push(IovaRange::new(cur, r.start - 1));
        }
        if r.last >= cur {
            cursor = r.last.checked_add(1).filter(|&n| n <= span.last);
        }
    }
    if let Some(cur) = cursor
        && cur <= span.last
    {
        out.push(IovaRange::new(cur, span.last));
    }
    out
}

/// Linux `__alloc_iova_check_range`: the first address at or after
/// `hole.start` that is `align`-aligned, carries `page_offset` in its low
/// bits and leaves room for `length` bytes before `hole.last`.
fn fit(hole: IovaRange, length: u64, align: u64, page_offset: u64) -> Option<u64> {
    let aligned = hole.start.checked_add(align - 1)? & !(align - 1);
    let start = aligned | page_offset;
    if start >= hole.last || hole.last - start < length - 1 {
        return None;
    }
    Some(start)
}

/// First fit of `length` bytes over the holes of `used` inside each span.
pub(crate) fn alloc_in_spans(
    spans: &[IovaRange],
    used: &[IovaRange],
    length: u64,
    align: u64,
    page_offset: u64,
) -> Option<u64> {
    spans.iter().find_map(|span| {
        holes(used, *span)
            .into_iter()
            .find_map(|hole| fit(hole, length, align, page_offset))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holes_skip_overlapping_used_ranges() {
        let used = [
            IovaRange::new(10, 19),
            IovaRange::new(15, 29),
            IovaRange::new(40, 40),
        ];
        assert_eq!(
            holes(&used, IovaRange::new(0, 50)),
            vec![
                IovaRange::new(0, 9),
                IovaRange::new(30, 39),
                IovaRange::new(41, 50)
            ]
        );
        assert_eq!(
            holes(&[IovaRange::new(0, u64::MAX)], IovaRange::new(0, 9)),
            vec![]
        );
        assert_eq!(
            holes(&[], IovaRange::new(5, u64::MAX)),
            vec![IovaRange::new(5, u64::MAX)]
        );
    }

    #[test]
    fn fit_keeps_alignment_and_page_offset() {
        let hole = IovaRange::new(0x1001, 0xffff);
        assert_eq!(fit(hole, 0x100, 0x1000, 0x10), Some(0x2010));
        assert_eq!(
            fit(IovaRange::new(0x1000, 0x1fff), 0x1000, 0x1000, 0),
            Some(0x1000)
        );
        assert_eq!(fit(IovaRange::new(0x1000, 0x1ffe), 0x1000, 0x1000, 0), None);
        assert_eq!(
            fit(IovaRange::new(u64::MAX - 10, u64::MAX), 1, 1 << 20, 0),
            None
        );
    }
}
