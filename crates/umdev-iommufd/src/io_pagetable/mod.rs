//! The IOAS's address space (drivers/iommu/iommufd/io_pagetable.c): areas,
//! reserved and allowed ranges, the IOVA alignment, automatic IOVA
//! allocation, and the mirroring of every area into every attached paging
//! domain, all or nothing.
//!
//! This is the data structure only; the IOAS object wraps it in a lock and
//! runs the access-unmap retry loop around [`IoPagetable::unmap_range`].

mod pages;
mod ranges;
mod refs;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::io::Errno;
use umdev_iommu::memory::{PAGE_SIZE, PhysAddr};
use umdev_iommu::pgtable::Prot;

pub use pages::{AccountMode, IoptPages, PinAccount};
pub use ranges::IovaRange;
use ranges::{AUTO_WINDOW, alloc_in_spans};

/// Largest automatic-IOVA alignment taken from the user address (newest
/// kernels cap it at the huge-page size, io_pagetable.c `iopt_alloc_iova`).
const MAX_AUTO_ALIGN: u64 = 2 << 20;

static NEXT_KEY: AtomicU64 = AtomicU64::new(1);

/// A process-unique key for io_pagetable bookkeeping: domains, devices and
/// accesses (and the legacy VFIO container's backing groups) are told
/// apart by it.
pub fn next_key() -> u64 {
    NEXT_KEY.fetch_add(1, Ordering::Relaxed)
}

/// What an IOAS mirrors its areas into: a paging domain.
pub trait IoptDomain: Send + Sync {
    /// Inclusive aperture.
    fn aperture(&self) -> (u64, u64);
    /// Page sizes, bit n = 2^n bytes.
    fn pgsize_bitmap(&self) -> u64;
    /// Maps (all or nothing).
    fn map(&self, iova: u64, phys: PhysAddr, len: u64, prot: Prot) -> Result<(), Errno>;
    /// Unmaps and returns the bytes unmapped (strict).
    fn unmap(&self, iova: u64, len: u64) -> u64;
}

/// Who reserved an IOVA range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReservedOwner {
    /// The aperture complement of an attached domain (by domain key).
    Domain(u64),
    /// A device's reserved regions (by device key).
    Device(u64),
    /// An explicit reservation (the selftest's ADD_RESERVED).
    Explicit,
}

#[derive(Clone, Copy, Debug)]
struct Reserved {
    range: IovaRange,
    owner: ReservedOwner,
}

/// One mapped range (Linux `struct iopt_area`).
#[derive(Debug)]
struct Area {
    last: u64,
    pages: Arc<IoptPages>,
    pages_offset: u64,
    prot: Prot,
    num_accesses: u32,
    prevent_access: bool,
    pinned_for_domains: bool,
}

impl Area {
    fn length(&self, iova: u64) -> u64 {
        self.last - iova + 1
    }

    /// Pins the pages under IOVAs `[from, to]` of the area starting at
    /// `iova`.
    fn pin(&self, iova: u64, from: u64, to: u64) -> Result<(), Errno> {
        self.pages
            .pin(self.pages_offset + (from - iova), to - from + 1)
    }

    /// Undoes [`Area::pin`] of the same IOVAs.
    fn unpin(&self, iova: u64, from: u64, to: u64) {
        self.pages
            .unpin(self.pages_offset + (from - iova), to - from + 1);
    }
}

/// One area as [`IoPagetable::areas`] reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AreaInfo {
    /// The mapped IOVA range.
    pub range: IovaRange,
    /// Host-physical address of the first byte.
    pub phys: PhysAddr,
    /// Permissions.
    pub prot: Prot,
    /// Pins held by accesses.
    pub num_accesses: u32,
}

/// Where a new mapping goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IovaRequest {
    /// Exactly here (IOMMU_IOAS_MAP_FIXED_IOVA).
    Fixed(u64),
    /// Anywhere allowed, chosen by the allocator.
    Auto,
}

/// How a ranged unmap stopped short.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnmapStop {
    /// An error to return (ENOENT partial area / nothing unmapped).
    Error(Errno),
    /// An area is pinned by accesses: the caller must make them unpin
    /// `[iova, iova + length)` (access `ops->unmap`) and call again.
    AccessPinned {
        /// First IOVA of the pinned area.
        iova: u64,
        /// Its length.
        length: u64,
    },
}

/// The IOAS address space.
#[derive(Debug)]
pub struct IoPagetable {
    areas: BTreeMap<u64, Area>,
    reserved: Vec<Reserved>,
    allowed: Vec<IovaRange>,
    domains: Vec<(u64, Arc<dyn IoptDomain>)>,
    access_alignments: Vec<(u64, u64)>,
    iova_alignment: u64,
    disable_large_pages: bool,
    account: Arc<PinAccount>,
}

impl std::fmt::Debug for dyn IoptDomain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IoptDomain(aperture {:x?})", self.aperture())
    }
}

impl IoPagetable {
    /// An empty address space charging pins to `account`.
    pub fn new(account: Arc<PinAccount>) -> Self {
        Self {
            areas: BTreeMap::new(),
            reserved: Vec::new(),
            allowed: Vec::new(),
            domains: Vec::new(),
            access_alignments: Vec::new(),
            iova_alignment: 1,
            disable_large_pages: false,
            account,
        }
    }

    /// The pin account.
    pub fn account(&self) -> &Arc<PinAccount> {
        &self.account
    }

    /// Every valid mapping needs `iova % a == 0` and `length % a == 0`.
    pub fn iova_alignment(&self) -> u64 {
        self.iova_alignment
    }

    /// Number of attached domains.
    pub fn domain_count(&self) -> usize {
        self.domains.len()
    }

    /// Whether there are no areas.
    pub fn is_empty(&self) -> bool {
        self.areas.is_empty()
    }

    /// A snapshot of the areas in IOVA order.
    pub fn areas(&self) -> Vec<AreaInfo> {
        self.areas
            .iter()
            .map(|(&iova, a)| AreaInfo {
                range: IovaRange::new(iova, a.last),
                phys: a.pages.phys(a.pages_offset),
                prot: a.prot,
                num_accesses: a.num_accesses,
            })
            .collect()
    }

    fn area_intersecting(&self, range: IovaRange) -> Option<(u64, &Area)> {
        self.areas
            .range(..=range.last)
            .next_back()
            .filter(|(_, a)| a.last >= range.start)
            .map(|(&i, a)| (i, a))
    }

    fn reserved_intersects(&self, range: IovaRange) -> bool {
        self.reserved.iter().any(|r| r.range.intersects(&range))
    }

    fn used_ranges(&self) -> Vec<IovaRange> {
        self.reserved
            .iter()
            .map(|r| r.range)
            .chain(self.areas.iter().map(|(&i, a)| IovaRange::new(i, a.last)))
            .collect()
    }

    // ---- alignment ----------------------------------------------------

    fn compute_alignment(
        &self,
        disable_large_pages: bool,
        extra_domain: Option<u64>,
        extra_access: Option<u64>,
    ) -> u64 {
        let base = if disable_large_pages { PAGE_SIZE } else { 1 };
        self.domains
            .iter()
            .map(|(_, d)| lowest_page(d.pgsize_bitmap()))
            .chain(extra_domain)
            .chain(self.access_alignments.iter().map(|&(_, a)| a))
            .chain(extra_access)
            .fold(base, u64::max)
    }

    /// io_pagetable.c `iopt_check_iova_alignment`: an alignment increase
    /// that existing areas do not satisfy is EADDRINUSE.
    fn check_alignment(&self, align: u64) -> Result<(), Errno> {
        let misaligned = self.areas.iter().any(|(&iova, a)| {
            iova % align != 0
                || a.length(iova) % align != 0
                || !(a.pages.phys(a.pages_offset) % PAGE_SIZE).is_multiple_of(align)
        });
        if misaligned {
            Err(Errno::ADDRINUSE)
        } else {
            Ok(())
        }
    }

    /// IOMMU_OPTION_HUGE_PAGES: `enable == false` forces PAGE_SIZE
    /// alignment and small IOMMU pages. EINVAL while domains and areas both
    /// exist (ioas.c `iommufd_ioas_option_huge_pages`), EADDRINUSE if the
    /// areas do not satisfy the new alignment.
    pub fn set_huge_pages(&mut self, enable: bool) -> Result<(), Errno> {
        if !enable {
            if !self.domains.is_empty() && !self.areas.is_empty() {
                return Err(Errno::INVAL);
            }
            let align = self.compute_alignment(true, None, None);
            self.check_alignment(align)?;
            self.iova_alignment = align;
        } else {
            self.iova_alignment = self.compute_alignment(false, None, None);
        }
        self.disable_large_pages = !enable;
        Ok(())
    }

    /// Whether large pages are enabled (IOMMU_OPTION_HUGE_PAGES GET).
    pub fn huge_pages(&self) -> bool {
        !self.disable_large_pages
    }

    // ---- reserved and allowed ranges ---------------------------------

    /// Reserves `range` for `owner` (`iopt_reserve_iova`): EADDRINUSE if an
    /// area or an allowed range intersects it.
    pub fn reserve(&mut self, range: IovaRange, owner: ReservedOwner) -> Result<(), Errno> {
        if self.area_intersecting(range).is_some()
            || self.allowed.iter().any(|a| a.intersects(&range))
        {
            return Err(Errno::ADDRINUSE);
        }
        self.reserved.push(Reserved { range, owner });
        Ok(())
    }

    /// Drops every reservation of `owner`.
    pub fn remove_reserved(&mut self, owner: ReservedOwner) {
        self.reserved.retain(|r| r.owner != owner);
    }

    /// IOMMU_IOAS_ALLOW_IOVAS: replaces the allowed list atomically.
    /// `start >= last` or overlapping ranges → EINVAL; a range intersecting
    /// a reservation → EADDRINUSE (ioas.c / `iopt_set_allow_iova`).
    pub fn set_allowed(&mut self, ranges: &[IovaRange]) -> Result<(), Errno> {
        let mut sorted = ranges.to_vec();
        sorted.sort_unstable();
        if sorted.iter().any(|r| r.start >= r.last)
            || sorted.windows(2).any(|w| w[0].intersects(&w[1]))
        {
            return Err(Errno::INVAL);
        }
        if sorted.iter().any(|a| self.reserved_intersects(*a)) {
            return Err(Errno::ADDRINUSE);
        }
        self.allowed = sorted;
        Ok(())
    }

    /// IOMMU_IOAS_IOVA_RANGES: the complement of the reserved ranges.
    pub fn iova_ranges(&self) -> Vec<IovaRange> {
        let used: Vec<IovaRange> = self.reserved.iter().map(|r| r.range).collect();
        ranges::holes(&used, IovaRange::new(0, u64::MAX))
    }

    // ---- map ----------------------------------------------------------

    /// `iopt_alloc_iova`.
    fn alloc_iova(&self, uptr: PhysAddr, length: u64) -> Result<u64, Errno> {
        if length == 0 || length >= u64::MAX / 2 {
            return Err(Errno::OVERFLOW);
        }
        let by_length = length.next_power_of_two();
        let align = if uptr == 0 {
            by_length
        } else {
            by_length.min(1 << uptr.trailing_zeros())
        }
        .min(MAX_AUTO_ALIGN.max(self.iova_alignment));
        if align < self.iova_alignment {
            return Err(Errno::INVAL);
        }
        let spans: Vec<IovaRange> = if self.allowed.is_empty() {
            vec![AUTO_WINDOW]
        } else {
            self.allowed
                .iter()
                .filter_map(|a| {
                    let start = a.start.max(AUTO_WINDOW.start);
                    let last = a.last.min(AUTO_WINDOW.last);
                    (start <= last).then_some(IovaRange::new(start, last))
                })
                .collect()
        };
        alloc_in_spans(&spans, &self.used_ranges(), length, align, uptr % PAGE_SIZE)
            .ok_or(Errno::NOSPC)
    }

    /// `iopt_check_iova`.
    fn check_fixed(&self, iova: u64, length: u64) -> Result<IovaRange, Errno> {
        if !iova.is_multiple_of(self.iova_alignment) {
            return Err(Errno::INVAL);
        }
        let last = iova.checked_add(length - 1).ok_or(Errno::OVERFLOW)?;
        let range = IovaRange::new(iova, last);
        if self.reserved_intersects(range) {
            return Err(Errno::INVAL);
        }
        if self.area_intersecting(range).is_some() {
            return Err(Errno::EXIST);
        }
        Ok(range)
    }

    /// Maps `length` bytes of `pages` from `pages_offset` (IOAS_MAP,
    /// MAP_FILE and one piece of COPY). Returns the IOVA. On error nothing
    /// changed. Errno order as io_pagetable.c `iopt_map_pages`.
    pub fn map(
        &mut self,
        request: IovaRequest,
        pages: Arc<IoptPages>,
        pages_offset: u64,
        length: u64,
        prot: Prot,
    ) -> Result<u64, Errno> {
        self.map_pieces(request, &[(pages, pages_offset, length)], prot)
    }

    /// Maps several pieces back to back (COPY of a chain of areas).
    pub fn map_pieces(
        &mut self,
        request: IovaRequest,
        pieces: &[(Arc<IoptPages>, u64, u64)],
        prot: Prot,
    ) -> Result<u64, Errno> {
        let length = pieces
            .iter()
            .try_fold(0u64, |acc, p| acc.checked_add(p.2))
            .ok_or(Errno::OVERFLOW)?;
        let Some((first_pages, first_offset, _)) = pieces.first() else {
            return Err(Errno::INVAL);
        };
        if length == 0 || length % self.iova_alignment != 0 {
            return Err(Errno::INVAL);
        }
        let iova = match request {
            IovaRequest::Fixed(iova) => self.check_fixed(iova, length)?.start,
            IovaRequest::Auto => self.alloc_iova(first_pages.phys(*first_offset), length)?,
        };
        // iopt_insert_area checks for every piece.
        for (pages, offset, len) in pieces {
            if prot.contains(Prot::WRITE) && !pages.writable() {
                return Err(Errno::PERM);
            }
            if !(pages.phys(*offset) % PAGE_SIZE).is_multiple_of(self.iova_alignment) || *len == 0 {
                return Err(Errno::INVAL);
            }
            if offset
                .checked_add(*len)
                .is_none_or(|end| end > pages.length())
            {
                return Err(Errno::INVAL);
            }
        }
        let mut cursor = iova;
        let mut inserted = Vec::new();
        for (pages, offset, len) in pieces {
            self.areas.insert(
                cursor,
                Area {
                    last: cursor + len - 1,
                    pages: Arc::clone(pages),
                    pages_offset: *offset,
                    prot,
                    num_accesses: 0,
                    prevent_access: false,
                    pinned_for_domains: false,
                },
            );
            inserted.push(cursor);
            if let Err(e) = self.fill_area_domains(cursor) {
                for i in inserted {
                    self.drop_area(i);
                }
                return Err(e);
            }
            cursor += len;
        }
        Ok(iova)
    }

    /// Maps one area into every domain, all or nothing
    /// (`iopt_area_fill_domains`).
    fn fill_area_domains(&mut self, iova: u64) -> Result<(), Errno> {
        if self.domains.is_empty() {
            return Ok(());
        }
        let area = self.areas.get_mut(&iova).expect("area just inserted");
        area.pin(iova, iova, area.last)?;
        area.pinned_for_domains = true;
        let area = &self.areas[&iova];
        for (n, (_, domain)) in self.domains.iter().enumerate() {
            if let Err(e) = map_area(domain.as_ref(), iova, area, self.disable_large_pages) {
                for (_, d) in &self.domains[..n] {
                    d.unmap(iova, area.length(iova));
                }
                return Err(e);
            }
        }
        Ok(())
    }

    /// Removes an area from every domain and from the tree.
    fn drop_area(&mut self, iova: u64) -> u64 {
        let Some(area) = self.areas.remove(&iova) else {
            return 0;
        };
        let length = area.length(iova);
        if area.pinned_for_domains {
            for (_, d) in &self.domains {
                d.unmap(iova, length);
            }
            area.unpin(iova, iova, area.last);
        }
        length
    }

    // ---- unmap --------------------------------------------------------

    /// Unmaps whole areas inside `range` in ascending order
    /// (`iopt_unmap_iova_range`). Not atomic: areas before a failure stay
    /// unmapped; `unmapped` accumulates across calls so the caller can retry
    /// after an [`UnmapStop::AccessPinned`].
    pub fn unmap_range(&mut self, range: IovaRange, unmapped: &mut u64) -> Result<(), UnmapStop> {
        loop {
            let next = self
                .areas
                .range(..=range.last)
                .find(|(_, a)| a.last >= range.start)
                .map(|(&i, a)| (i, a.last, a.num_accesses));
            let Some((iova, last, accesses)) = next else {
                return Ok(());
            };
            if !range.contains(&IovaRange::new(iova, last)) {
                return Err(UnmapStop::Error(Errno::NOENT));
            }
            if accesses > 0 {
                self.areas
                    .get_mut(&iova)
                    .expect("area exists")
                    .prevent_access = true;
                return Err(UnmapStop::AccessPinned {
                    iova,
                    length: last - iova + 1,
                });
            }
            *unmapped += self.drop_area(iova);
        }
    }

    // ---- copy ---------------------------------------------------------

    /// The pieces of `[iova, last]` covered by back-to-back areas, in
    /// order, and whether they reach `last` (`iopt_for_each_contig_area` /
    /// `iopt_area_contig_done`).
    pub fn contig_pieces(&self, iova: u64, last: u64) -> (Vec<IovaRange>, bool) {
        let mut out = Vec::new();
        let mut cur = iova;
        while let Some((_, area)) = self.area_intersecting(IovaRange::new(cur, cur)) {
            let piece_last = area.last.min(last);
            out.push(IovaRange::new(cur, piece_last));
            if piece_last == last {
                return (out, true);
            }
            cur = piece_last + 1;
        }
        (out, false)
    }

    /// The pages behind `[iova, iova + length)`, which must be covered by a
    /// contiguous chain of areas (`iopt_get_pages`): EINVAL for length 0,
    /// EOVERFLOW, ENOENT for a gap.
    pub fn get_pages(
        &self,
        iova: u64,
        length: u64,
    ) -> Result<Vec<(Arc<IoptPages>, u64, u64)>, Errno> {
        if length == 0 {
            return Err(Errno::INVAL);
        }
        let last = iova.checked_add(length - 1).ok_or(Errno::OVERFLOW)?;
        let (pieces, complete) = self.contig_pieces(iova, last);
        if !complete {
            return Err(Errno::NOENT);
        }
        Ok(pieces
            .into_iter()
            .map(|piece| {
                let (start, area) = self.area_intersecting(piece).expect("piece is covered");
                (
                    Arc::clone(&area.pages),
                    area.pages_offset + (piece.start - start),
                    piece.last - piece.start + 1,
                )
            })
            .collect())
    }

    // ---- domains ------------------------------------------------------

    /// Attaches a paging domain (`iopt_table_add_domain`): reserves the
    /// complement of its aperture, raises the alignment, and fills it with
    /// every area, all or nothing. EINVAL for a smallest page above
    /// PAGE_SIZE, EADDRINUSE for clashes.
    pub fn add_domain(&mut self, key: u64, domain: Arc<dyn IoptDomain>) -> Result<(), Errno> {
        let page = lowest_page(domain.pgsize_bitmap());
        if page > PAGE_SIZE {
            return Err(Errno::INVAL);
        }
        let align = self.compute_alignment(self.disable_large_pages, Some(page), None);
        self.check_alignment(align)?;
        let (first, last) = domain.aperture();
        let owner = ReservedOwner::Domain(key);
        let mut reserve = || -> Result<(), Errno> {
            if first > 0 {
                self.reserve(IovaRange::new(0, first - 1), owner)?;
            }
            if last < u64::MAX {
                self.reserve(IovaRange::new(last + 1, u64::MAX), owner)?;
            }
            Ok(())
        };
        if let Err(e) = reserve() {
            self.remove_reserved(owner);
            return Err(e);
        }
        // Fill: pin and map every area.
        let iovas: Vec<u64> = self.areas.keys().copied().collect();
        for (n, &iova) in iovas.iter().enumerate() {
            let area = &self.areas[&iova];
            let pinned_now = !area.pinned_for_domains;
            let result = if pinned_now {
                area.pin(iova, iova, area.last)
            } else {
                Ok(())
            }
            .and_then(|()| {
                map_area(domain.as_ref(), iova, area, self.disable_large_pages).inspect_err(|_| {
                    if pinned_now {
                        area.unpin(iova, iova, area.last);
                    }
                })
            });
            if let Err(e) = result {
                for &done in &iovas[..n] {
                    let area = self.areas.get_mut(&done).expect("area exists");
                    domain.unmap(done, area.length(done));
                    if self.domains.is_empty() {
                        area.unpin(done, done, area.last);
                        area.pinned_for_domains = false;
                    }
                }
                self.remove_reserved(owner);
                return Err(e);
            }
            self.areas
                .get_mut(&iova)
                .expect("area exists")
                .pinned_for_domains = true;
        }
        self.domains.push((key, domain));
        self.iova_alignment = align;
        Ok(())
    }

    /// Detaches a domain: unmaps every area from it, drops its reservations
    /// and recomputes the alignment (`iopt_table_remove_domain`).
    pub fn remove_domain(&mut self, key: u64) {
        let Some(pos) = self.domains.iter().position(|(k, _)| *k == key) else {
            return;
        };
        let (_, domain) = self.domains.remove(pos);
        for (&iova, area) in self.areas.iter_mut() {
            domain.unmap(iova, area.length(iova));
            if self.domains.is_empty() && area.pinned_for_domains {
                area.unpin(iova, iova, area.last);
                area.pinned_for_domains = false;
            }
        }
        self.remove_reserved(ReservedOwner::Domain(key));
        self.iova_alignment = self.compute_alignment(self.disable_large_pages, None, None);
    }

    // ---- accesses -----------------------------------------------------

    /// An access joins (`iopt_add_access`): it may raise the alignment to
    /// PAGE_SIZE when it pins pages (EADDRINUSE if areas do not allow it).
    pub fn add_access(&mut self, key: u64, needs_pin_pages: bool) -> Result<(), Errno> {
        let align = if needs_pin_pages { PAGE_SIZE } else { 1 };
        let new = self.compute_alignment(self.disable_large_pages, None, Some(align));
        self.check_alignment(new)?;
        self.access_alignments.push((key, align));
        self.iova_alignment = new;
        Ok(())
    }

    /// An access leaves.
    pub fn remove_access(&mut self, key: u64) {
        self.access_alignments.retain(|&(k, _)| k != key);
        self.iova_alignment = self.compute_alignment(self.disable_large_pages, None, None);
    }

    /// Walks the contiguous areas covering `[iova, iova + length)` for an
    /// access (device.c `iommufd_access_pin_pages` / `_rw`), returning each
    /// piece as (area start, first IOVA, last IOVA). Per area in order:
    /// prevent_access, or with `aligned` a piece whose first byte is not at
    /// a page start or a non-final piece not ending at a page end
    /// (`iopt_area_contig_is_aligned`) → EINVAL; missing permission →
    /// EPERM; then a gap → ENOENT.
    fn access_chain(
        &self,
        iova: u64,
        length: u64,
        write: bool,
        aligned: bool,
    ) -> Result<Vec<(u64, u64, u64)>, Errno> {
        if length == 0 {
            return Err(Errno::INVAL);
        }
        let last = iova.checked_add(length - 1).ok_or(Errno::OVERFLOW)?;
        let need = if write { Prot::WRITE } else { Prot::READ };
        let mut chain = Vec::new();
        let mut cur = iova;
        loop {
            let Some((start, area)) = self.area_intersecting(IovaRange::new(cur, cur)) else {
                return Err(Errno::NOENT);
            };
            let piece_last = area.last.min(last);
            let first_byte = area.pages.phys(area.pages_offset + (cur - start));
            let last_byte = area.pages.phys(area.pages_offset + (area.last - start));
            let misaligned = first_byte % PAGE_SIZE != 0
                || (piece_last < last && last_byte % PAGE_SIZE != PAGE_SIZE - 1);
            if area.prevent_access || (aligned && misaligned) {
                return Err(Errno::INVAL);
            }
            if !area.prot.contains(need) {
                return Err(Errno::PERM);
            }
            chain.push((start, cur, piece_last));
            if piece_last == last {
                return Ok(chain);
            }
            cur = piece_last + 1;
        }
    }

    /// `iommufd_access_pin_pages`: pins `[iova, iova + length)` and returns
    /// the host-physical address of each page (ENOMEM over the limit).
    pub fn access_pin(
        &mut self,
        iova: u64,
        length: u64,
        write: bool,
    ) -> Result<Vec<PhysAddr>, Errno> {
        let chain = self.access_chain(iova, length, write, true)?;
        for (n, &(start, from, to)) in chain.iter().enumerate() {
            if let Err(e) = self.areas[&start].pin(start, from, to) {
                for &(s, f, t) in &chain[..n] {
                    self.areas[&s].unpin(s, f, t);
                }
                return Err(e);
            }
        }
        let mut out = Vec::new();
        for &(start, from, to) in &chain {
            let area = self.areas.get_mut(&start).expect("area exists");
            area.num_accesses += 1;
            let mut cur = from;
            while cur <= to {
                let phys = area.pages.phys(area.pages_offset + (cur - start));
                out.push(phys & !(PAGE_SIZE - 1));
                match (cur | (PAGE_SIZE - 1)).checked_add(1) {
                    Some(next) => cur = next,
                    None => break,
                }
            }
        }
        Ok(out)
    }

    /// `iommufd_access_unpin_pages`: drops the pins of a previous
    /// [`IoPagetable::access_pin`] of exactly this range. An area being
    /// unmapped keeps `prevent_access` so no new pin races the unmap.
    pub fn access_unpin(&mut self, iova: u64, length: u64) {
        let Some(last) = length.checked_sub(1).and_then(|l| iova.checked_add(l)) else {
            return;
        };
        let starts: Vec<u64> = self
            .areas
            .range(..=last)
            .filter(|(_, a)| a.last >= iova && a.num_accesses > 0)
            .map(|(&s, _)| s)
            .collect();
        for s in starts {
            let area = self.areas.get_mut(&s).expect("area exists");
            area.num_accesses -= 1;
            let (from, to) = (iova.max(s), last.min(area.last));
            area.unpin(s, from, to);
        }
    }

    /// `iommufd_access_rw`: byte-granular copy between `buf` and the areas
    /// covering `[iova, iova + buf.len())`.
    pub fn access_rw(&self, iova: u64, buf: &mut [u8], write: bool) -> Result<(), Errno> {
        self.access_chain(iova, buf.len() as u64, write, false)?;
        let mut done = 0usize;
        while done < buf.len() {
            let cur = iova + done as u64;
            let (start, area) = self
                .area_intersecting(IovaRange::new(cur, cur))
                .ok_or(Errno::NOENT)?;
            let n = ((area.last - cur + 1).min((buf.len() - done) as u64)) as usize;
            let off = area.pages_offset + (cur - start);
            let chunk = &mut buf[done..done + n];
            let r = if write {
                area.pages.write(off, chunk)
            } else {
                area.pages.read(off, chunk)
            };
            r.map_err(|e| e.errno())?;
            done += n;
        }
        Ok(())
    }

    // ---- split (VFIO type1 v1) ----------------------------------------

    /// Cuts the area containing `iova` so that a new area starts at `iova`
    /// (`iopt_cut_iova`). A cut at an area edge or in a hole is a no-op.
    pub fn cut(&mut self, iova: u64) -> Result<(), Errno> {
        let Some((start, area)) = self.area_intersecting(IovaRange::new(iova, iova)) else {
            return Ok(());
        };
        if start == iova {
            return Ok(());
        }
        if area.prevent_access {
            return Err(Errno::BUSY);
        }
        if !iova.is_multiple_of(self.iova_alignment) || area.num_accesses > 0 {
            return Err(Errno::INVAL);
        }
        if area.pinned_for_domains && !self.disable_large_pages {
            return Err(Errno::INVAL);
        }
        let mut area = self.areas.remove(&start).expect("area exists");
        let tail = Area {
            last: area.last,
            pages: Arc::clone(&area.pages),
            pages_offset: area.pages_offset + (iova - start),
            prot: area.prot,
            num_accesses: 0,
            prevent_access: false,
            pinned_for_domains: area.pinned_for_domains,
        };
        if tail.pinned_for_domains {
            // Both halves hold their own pin; the pages stay charged once
            // (the page under the cut goes 1 → 3 → 2), so this cannot fail.
            let whole_last = area.last;
            area.pin(start, start, iova - 1)
                .and_then(|()| tail.pin(iova, iova, tail.last))
                .expect("pages already charged");
            area.unpin(start, start, whole_last);
        }
        area.last = iova - 1;
        self.areas.insert(start, area);
        self.areas.insert(iova, tail);
        Ok(())
    }
}

/// Maps one area into one domain; with large pages disabled, page by page
/// so that no superpage is ever created.
fn map_area(
    domain: &dyn IoptDomain,
    iova: u64,
    area: &Area,
    small_pages: bool,
) -> Result<(), Errno> {
    let length = area.length(iova);
    let phys = area.pages.phys(area.pages_offset);
    if umdev_iommu::failpoint::should_fail("iommufd: domain fill") {
        return Err(Errno::NOMEM);
    }
    if !small_pages {
        return domain.map(iova, phys, length, area.prot);
    }
    let mut off = 0;
    while off < length {
        let n = PAGE_SIZE.min(length - off);
        if let Err(e) = domain.map(iova + off, phys + off, n, area.prot) {
            domain.unmap(iova, off);
            return Err(e);
        }
        off += n;
    }
    Ok(())
}

fn lowest_page(pgsize_bitmap: u64) -> u64 {
    if pgsize_bitmap == 0 {
        PAGE_SIZE
    } else {
        1 << pgsize_bitmap.trailing_zeros()
    }
}
