//! The VT-d driver: [`VtdIommu`] implements [`IommuOps`] over one or more
//! [`IommuUnit`]s the way drivers/iommu/intel/iommu.c does in scalable
//! mode: a context entry and PASID directory per probed device, domain
//! ids per unit ([`IntelIommu`]), PASID entries programmed (or replaced,
//! hitless) on attach, strict IOTLB flushes on unmap.
//!
//! Lock order: the device registry, then a domain's attachment list, then
//! a unit's structure lock ([`IntelIommu`]'s control lock). The DMA path
//! takes none of them.

use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::{Mutex, MutexGuard};
use rustix::io::Errno;
use umdev_pci::{Bdf, IommuUnitSpec};

use super::did::FLPT_DEFAULT_DID;
use super::unit::IntelIommu;
use super::{VtdBlockedDomain, VtdIdentityDomain, VtdNestedDomain, VtdPagingDomain};
use crate::dma::{Dma, DmaPort};
use crate::iommu::ops::{HwInfo, ResvRegion, ResvType};
use crate::iommu::{DeviceCaps, DomainOps, IommuOps, PagingFlags, VtdS1Config};
use crate::memory::{HostMemory, PAGE_SIZE};
use crate::pgtable::{PageTable, PtFormat};
use crate::vtd::{IOMMU_NO_PASID, IommuUnit, PasidEntry, UnitError};

/// The driver's name; every domain it allocates reports it.
pub const DRIVER_NAME: &str = "intel-iommu";

/// A probed device: its unit, capabilities and what each PASID is
/// attached to (the blocked domain is never recorded).
pub(super) struct DeviceInfo {
    iommu: Arc<IntelIommu>,
    caps: DeviceCaps,
    attached: HashMap<u32, Arc<dyn DomainOps>>,
}

/// The probed devices of one driver instance; its lock serialises every
/// PASID-entry change the driver makes (Linux `iommu->lock` /
/// `device_domain_lock`).
#[derive(Default)]
pub(super) struct Registry {
    devices: Mutex<HashMap<Bdf, DeviceInfo>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut devices: Vec<Bdf> = self.devices.lock().keys().copied().collect();
        devices.sort_unstable();
        f.debug_struct("Registry")
            .field("devices", &devices)
            .finish()
    }
}

impl Registry {
    pub(super) fn lock(&self) -> MutexGuard<'_, HashMap<Bdf, DeviceInfo>> {
        self.devices.lock()
    }
}

/// What a domain is, to this driver.
enum Kind<'a> {
    Blocked,
    Identity,
    Paging(&'a VtdPagingDomain),
    Nested(&'a VtdNestedDomain),
}

/// The PASID width of a device's PASID capability (0: none), as the
/// platform knows it.
pub type PasidWidthFn = dyn Fn(Bdf) -> u8 + Send + Sync;

/// The VT-d IOMMU driver over a set of units.
pub struct VtdIommu {
    mem: Arc<HostMemory>,
    units: Vec<Arc<IommuUnit>>,
    /// The driver's state of each unit, in the order of `units`.
    iommus: Vec<Arc<IntelIommu>>,
    pasid_width: Box<PasidWidthFn>,
    registry: Arc<Registry>,
    blocked: Arc<VtdBlockedDomain>,
    identity: Arc<VtdIdentityDomain>,
}

impl std::fmt::Debug for VtdIommu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VtdIommu")
            .field(
                "units",
                &self.units.iter().map(|u| u.name()).collect::<Vec<_>>(),
            )
            .field("registry", &self.registry)
            .finish_non_exhaustive()
    }
}

impl VtdIommu {
    /// Builds the units (segments may not overlap). `pasid_width(bdf)` is
    /// the PASID width a device's PASID capability advertises (0 without
    /// one); probe_device gives it `1 << min(width, unit PASID bits)`
    /// PASIDs.
    pub fn new(
        mem: Arc<HostMemory>,
        configs: Vec<IommuUnitSpec>,
        pasid_width: impl Fn(Bdf) -> u8 + Send + Sync + 'static,
    ) -> Result<Self, UnitError> {
        let mut units: Vec<Arc<IommuUnit>> = Vec::with_capacity(configs.len());
        for config in configs {
            if config
                .segments
                .iter()
                .any(|&s| units.iter().any(|u| u.covers(s)))
            {
                return Err(UnitError::BadConfig {
                    unit: config.name,
                    reason: "a segment is already translated by another unit",
                });
            }
            units.push(IommuUnit::new(Arc::clone(&mem), config)?);
        }
        let iommus = units
            .iter()
            .map(|unit| IntelIommu::new(Arc::clone(unit)))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            mem,
            units,
            iommus,
            pasid_width: Box::new(pasid_width),
            registry: Arc::default(),
            blocked: Arc::new(VtdBlockedDomain),
            identity: Arc::new(VtdIdentityDomain),
        })
    }

    /// The hardware units.
    pub fn units(&self) -> &[Arc<IommuUnit>] {
        &self.units
    }

    /// The driver's state of each unit, in the order of [`Self::units`].
    pub fn iommus(&self) -> &[Arc<IntelIommu>] {
        &self.iommus
    }

    /// The unit translating `bdf`'s segment.
    pub fn unit_for(&self, bdf: Bdf) -> Option<&Arc<IommuUnit>> {
        self.units.iter().find(|u| u.covers(bdf.segment()))
    }

    /// The driver's state of the unit translating `bdf`'s segment
    /// (Linux device_lookup_iommu).
    pub fn iommu_for(&self, bdf: Bdf) -> Option<&Arc<IntelIommu>> {
        self.iommus.iter().find(|i| i.unit().covers(bdf.segment()))
    }

    /// The host memory page tables and structures live in.
    pub fn memory(&self) -> &Arc<HostMemory> {
        &self.mem
    }

    /// The domain `pasid` of `bdf` is attached to (`None`: blocked).
    pub fn attached_domain(&self, bdf: Bdf, pasid: u32) -> Option<Arc<dyn DomainOps>> {
        self.registry
            .lock()
            .get(&bdf)?
            .attached
            .get(&pasid)
            .cloned()
    }

    fn classify<'a>(&self, domain: &'a Arc<dyn DomainOps>) -> Result<Kind<'a>, Errno> {
        let any: &dyn Any = domain.as_any();
        let ours = |registry: &Arc<Registry>| Arc::ptr_eq(registry, &self.registry);
        if any.is::<VtdBlockedDomain>() {
            Ok(Kind::Blocked)
        } else if any.is::<VtdIdentityDomain>() {
            Ok(Kind::Identity)
        } else if let Some(d) = any.downcast_ref::<VtdPagingDomain>()
            && ours(&d.registry)
        {
            Ok(Kind::Paging(d))
        } else if let Some(d) = any.downcast_ref::<VtdNestedDomain>()
            && ours(&d.parent().registry)
        {
            Ok(Kind::Nested(d))
        } else {
            // A domain of another driver (instance): EINVAL, as
            // __iommu_attach_device finds the ops do not match.
            Err(Errno::INVAL)
        }
    }

    /// Drops the bookkeeping of `domain` for (bdf, pasid) after its entry
    /// was replaced or cleared.
    fn forget(domain: &Kind<'_>, unit: &Arc<IntelIommu>, bdf: Bdf, pasid: u32) {
        match domain {
            Kind::Paging(d) => d.attachments.detach(unit, bdf, pasid),
            Kind::Nested(d) => d.attachments.detach(unit, bdf, pasid),
            Kind::Blocked | Kind::Identity => {}
        }
    }

    /// Makes (bdf, pasid) translate through `domain`: the PASID entry is
    /// set up, or replaced in one step when one is present, then the old
    /// domain lets go of it.
    fn program(&self, domain: &Arc<dyn DomainOps>, bdf: Bdf, pasid: u32) -> Result<(), Errno> {
        let kind = self.classify(domain)?;
        let mut devices = self.registry.lock();
        let info = devices.get_mut(&bdf).ok_or(Errno::NODEV)?;
        let unit = Arc::clone(&info.iommu);
        if info
            .attached
            .get(&pasid)
            .is_some_and(|cur| Arc::ptr_eq(cur, domain))
        {
            return Ok(());
        }
        let present = unit.pasid_entry(bdf, pasid).is_some();
        let write = |entry: PasidEntry| {
            if present {
                unit.replace_pasid_entry(bdf, pasid, entry).map(drop)
            } else {
                unit.set_pasid_entry(bdf, pasid, entry)
            }
            .map_err(|e| e.errno())
        };
        match kind {
            Kind::Blocked => {
                unit.clear_pasid_entry(bdf, pasid).map_err(|e| e.errno())?;
            }
            Kind::Identity => write(PasidEntry::PassThrough {
                did: FLPT_DEFAULT_DID,
            })?,
            Kind::Paging(d) => {
                if !d.compatible(unit.unit()) {
                    return Err(Errno::INVAL);
                }
                let did = d.attachments.attach(&unit, bdf, pasid)?;
                if let Err(err) = write(d.pasid_entry(did, d.dirty_tracking_enabled())) {
                    d.attachments.detach(&unit, bdf, pasid);
                    return Err(err);
                }
            }
            Kind::Nested(d) => {
                d.check_unit(unit.unit())?;
                if !d.parent().compatible(unit.unit()) {
                    return Err(Errno::INVAL);
                }
                let did = d.attachments.attach(&unit, bdf, pasid)?;
                let entry = d.pasid_entry(did, d.parent().dirty_tracking_enabled());
                if let Err(err) = write(entry) {
                    d.attachments.detach(&unit, bdf, pasid);
                    return Err(err);
                }
            }
        }
        if let Some(old) = info.attached.remove(&pasid)
            && let Ok(old_kind) = self.classify(&old)
        {
            Self::forget(&old_kind, &unit, bdf, pasid);
        }
        if !matches!(kind, Kind::Blocked) {
            info.attached.insert(pasid, Arc::clone(domain));
        }
        Ok(())
    }
}

impl IommuOps for VtdIommu {
    fn name(&self) -> &str {
        DRIVER_NAME
    }

    /// intel_iommu_probe_device: ENODEV for a segment no unit covers;
    /// allocates the PASID directory and writes the scalable-mode context
    /// entry. Probing a probed device again reports the same caps.
    fn probe_device(&self, bdf: Bdf) -> Result<DeviceCaps, Errno> {
        let iommu = self.iommu_for(bdf).ok_or(Errno::NODEV)?;
        let unit = iommu.unit();
        let mut devices = self.registry.lock();
        if let Some(info) = devices.get(&bdf) {
            return Ok(info.caps);
        }
        let ecap = unit.ecap();
        let bits = if ecap.pasid() {
            (self.pasid_width)(bdf).min(unit.config().pasid_bits)
        } else {
            0
        };
        let max_pasids = if bits > 0 { 1 << bits } else { 0 };
        iommu
            .setup_context(bdf, max_pasids)
            .map_err(|e| e.errno())?;
        let caps = DeviceCaps {
            max_pasids,
            dirty_tracking: ecap.slads(),
            nesting: ecap.nest(),
        };
        devices.insert(
            bdf,
            DeviceInfo {
                iommu: Arc::clone(iommu),
                caps,
                attached: HashMap::new(),
            },
        );
        Ok(caps)
    }

    /// intel_iommu_release_device: the context entry and every PASID entry
    /// go (flushed, drained), then the domains let go of the device.
    fn release_device(&self, bdf: Bdf) {
        let mut devices = self.registry.lock();
        let Some(info) = devices.remove(&bdf) else {
            return;
        };
        info.iommu.teardown_context(bdf);
        for (pasid, domain) in &info.attached {
            if let Ok(kind) = self.classify(domain) {
                Self::forget(&kind, &info.iommu, bdf, *pasid);
            }
        }
    }

    fn blocked_domain(&self) -> Arc<dyn DomainOps> {
        self.blocked.clone()
    }

    fn identity_domain(&self) -> Arc<dyn DomainOps> {
        self.identity.clone()
    }

    /// intel_iommu_domain_alloc_paging_flags: first stage unless the
    /// domain must be a nest parent or track dirty pages; EOPNOTSUPP for
    /// nest_parent without ECAP.NEST or dirty tracking without ECAP.SLADS.
    fn domain_alloc_paging(
        &self,
        bdf: Bdf,
        flags: PagingFlags,
    ) -> Result<Arc<dyn DomainOps>, Errno> {
        let unit = self.unit_for(bdf).ok_or(Errno::NODEV)?;
        let (cap, ecap) = (unit.cap(), unit.ecap());
        if (flags.nest_parent && !ecap.nest()) || (flags.dirty_tracking && !ecap.slads()) {
            return Err(Errno::OPNOTSUPP);
        }
        let first_stage = !flags.nest_parent && !flags.dirty_tracking && ecap.flts();
        let (format, large) = if first_stage {
            // First stage: 5-level only where the unit has FL5LP.
            let levels = if unit.agaw() >= 3 && cap.fl5lp_support() {
                5
            } else {
                4
            };
            (
                PtFormat::FirstLevel { levels },
                1 << 21 | u64::from(cap.fl1gp_support()) << 30,
            )
        } else if ecap.slts() {
            let sllps = u64::from(cap.super_page_val());
            (
                PtFormat::SecondLevel {
                    levels: unit.agaw() + 2,
                },
                (sllps & 1) << 21 | (sllps >> 1 & 1) << 30,
            )
        } else {
            return Err(Errno::OPNOTSUPP);
        };
        let pgsize = unit.config().pgsize_bitmap & (PAGE_SIZE | large);
        let table = PageTable::new(Arc::clone(&self.mem), format, pgsize).map_err(|e| e.errno())?;
        Ok(Arc::new(VtdPagingDomain::new(
            table,
            flags,
            Arc::clone(&self.registry),
        )))
    }

    /// intel_iommu_domain_alloc_nested: EOPNOTSUPP without nesting; EINVAL
    /// unless the parent is a nest-parent paging domain of this driver.
    /// The stage-1 checks (width, SRE, EAFE) run at attach, as
    /// intel_pasid_setup_nested does them.
    fn domain_alloc_nested(
        &self,
        bdf: Bdf,
        parent: &Arc<dyn DomainOps>,
        config: VtdS1Config,
        pasid: bool,
    ) -> Result<Arc<dyn DomainOps>, Errno> {
        let unit = self.unit_for(bdf).ok_or(Errno::NODEV)?;
        if !unit.ecap().nest() {
            return Err(Errno::OPNOTSUPP);
        }
        let any: Arc<dyn Any + Send + Sync> = parent.clone();
        let parent = any
            .downcast::<VtdPagingDomain>()
            .map_err(|_| Errno::INVAL)?;
        if !parent.flags().nest_parent || !Arc::ptr_eq(&parent.registry, &self.registry) {
            return Err(Errno::INVAL);
        }
        Ok(VtdNestedDomain::new(parent, config, pasid))
    }

    fn attach_dev(&self, domain: &Arc<dyn DomainOps>, bdf: Bdf) -> Result<(), Errno> {
        self.program(domain, bdf, IOMMU_NO_PASID)
    }

    /// intel_iommu_set_dev_pasid (and the identity / blocking / nested
    /// variants): EOPNOTSUPP when the unit has no PASID support, EINVAL
    /// for a PASID the device cannot use.
    fn set_dev_pasid(
        &self,
        domain: &Arc<dyn DomainOps>,
        bdf: Bdf,
        pasid: u32,
        _old: Option<&Arc<dyn DomainOps>>,
    ) -> Result<(), Errno> {
        let unit = self.unit_for(bdf).ok_or(Errno::NODEV)?;
        if !unit.ecap().pasid() {
            return Err(Errno::OPNOTSUPP);
        }
        let max_pasids = self
            .registry
            .lock()
            .get(&bdf)
            .ok_or(Errno::NODEV)?
            .caps
            .max_pasids;
        if pasid == IOMMU_NO_PASID || pasid >= max_pasids {
            return Err(Errno::INVAL);
        }
        self.program(domain, bdf, pasid)
    }

    fn remove_dev_pasid(&self, bdf: Bdf, pasid: u32, _domain: &Arc<dyn DomainOps>) {
        let blocked: Arc<dyn DomainOps> = self.blocked.clone();
        // Clearing an entry cannot fail for a probed device and a PASID
        // that was attached; an unprobed device has nothing to clear.
        let _ = self.program(&blocked, bdf, pasid);
    }

    /// intel_iommu_get_resv_regions: every device behind a VT-d unit has
    /// the x86 interrupt window [IOAPIC_RANGE_START, IOAPIC_RANGE_END] as
    /// IOMMU_RESV_MSI (no RMRRs are modelled).
    fn resv_regions(&self, bdf: Bdf) -> Vec<ResvRegion> {
        if self.unit_for(bdf).is_none() {
            return Vec::new();
        }
        vec![ResvRegion {
            start: IOAPIC_RANGE_START,
            length: IOAPIC_RANGE_END - IOAPIC_RANGE_START + 1,
            kind: ResvType::Msi,
        }]
    }

    /// The DMA of `bdf` through the unit translating its segment.
    fn dma_for(&self, bdf: Bdf) -> Option<Arc<dyn Dma>> {
        let port = DmaPort::for_requester(&self.units, bdf).ok()?;
        Some(Arc::new(port))
    }

    /// intel_iommu_hw_info: the unit's CAP_REG / ECAP_REG.
    fn hw_info(&self, bdf: Bdf) -> Option<HwInfo> {
        let unit = self.unit_for(bdf)?;
        let caps = self.registry.lock().get(&bdf)?.caps;
        Some(HwInfo {
            cap_reg: unit.cap().0,
            ecap_reg: unit.ecap().0,
            max_pasid_log2: caps.max_pasids.checked_ilog2().map_or(0, |b| b as u8),
            dirty_tracking: caps.dirty_tracking,
        })
    }
}

/// First address of the x86 interrupt (MSI) window (intel-iommu.h).
pub const IOAPIC_RANGE_START: u64 = 0xfee0_0000;
/// Last address of the x86 interrupt (MSI) window.
pub const IOAPIC_RANGE_END: u64 = 0xfeef_ffff;
