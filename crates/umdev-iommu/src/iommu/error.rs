//! Errors of the IOMMU core, each with the errno Linux returns for it.

use rustix::io::Errno;
use umdev_pci::Bdf;

use super::ops::DomainType;

/// Why an IOMMU-core operation failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IommuError {
    /// The device has no IOMMU group: it was never probed, was released,
    /// or no unit translates it (`dev->iommu_group == NULL`).
    #[error("{bdf}: no IOMMU group")]
    NoGroup {
        /// The device.
        bdf: Bdf,
    },
    /// The group has no devices left (all were released).
    #[error("IOMMU group {group} has no devices")]
    EmptyGroup {
        /// The group number.
        group: u32,
    },
    /// The device was already probed.
    #[error("{bdf}: already probed by the IOMMU core")]
    AlreadyProbed {
        /// The device.
        bdf: Bdf,
    },
    /// The group's DMA is owned by someone else, or used by a kernel
    /// DMA-API driver (`iommu_device_claim_dma_owner`,
    /// `iommu_group_claim_dma_owner`).
    #[error("IOMMU group {group}: DMA is owned by another owner or a DMA-API driver")]
    OwnedByOther {
        /// The group number.
        group: u32,
    },
    /// Release by someone who does not own the group.
    #[error("IOMMU group {group}: not owned by this owner")]
    NotOwner {
        /// The group number.
        group: u32,
    },
    /// The group is not in its default domain (`__iommu_take_dma_ownership`,
    /// `iommu_device_use_default_domain`).
    #[error("IOMMU group {group}: not in its default domain")]
    NotInDefaultDomain {
        /// The group number.
        group: u32,
    },
    /// The group is owned by user space (`iommu_device_use_default_domain`).
    #[error("IOMMU group {group}: DMA is owned by user space")]
    UserOwned {
        /// The group number.
        group: u32,
    },
    /// PASIDs are attached in the group (pasid_array not empty).
    #[error("IOMMU group {group}: PASIDs are attached")]
    PasidsAttached {
        /// The group number.
        group: u32,
    },
    /// Someone else attached a domain to the group (`__iommu_attach_group`).
    #[error("IOMMU group {group}: another domain is attached")]
    GroupBusy {
        /// The group number.
        group: u32,
    },
    /// Detaching a domain that is not the group's current domain.
    #[error("IOMMU group {group}: domain {domain} is not attached")]
    DomainNotAttached {
        /// The group number.
        group: u32,
        /// The domain's id.
        domain: u64,
    },
    /// The domain belongs to another driver or IOMMU instance
    /// (`domain_iommu_ops_compatible`).
    #[error("domain {domain} belongs to another IOMMU")]
    ForeignDomain {
        /// The domain's id.
        domain: u64,
    },
    /// The single-device API on a group with more than one device
    /// (`iommu_attach_device`).
    #[error("IOMMU group {group} has {devices} devices; the single-device API needs exactly one")]
    NotSingleton {
        /// The group number.
        group: u32,
        /// How many devices it has.
        devices: usize,
    },
    /// A paging operation on a domain that has no page table (`iommu_map`).
    #[error("domain {domain} is {domain_type:?}, not a paging domain")]
    NotPaging {
        /// The domain's id.
        domain: u64,
        /// What it is.
        domain_type: DomainType,
    },
    /// The domain cannot be attached to a PASID (no `set_dev_pasid`).
    #[error("domain {domain} cannot be attached to a PASID")]
    PasidUnsupported {
        /// The domain's id.
        domain: u64,
    },
    /// PASID 0 is the RID's (`IOMMU_NO_PASID`).
    #[error("PASID 0 is reserved for requests without a PASID")]
    NoPasid,
    /// The device does not support PASIDs at all.
    #[error("{bdf}: the device does not support PASIDs")]
    DeviceNoPasid {
        /// The device.
        bdf: Bdf,
    },
    /// A device of the group supports fewer PASIDs.
    #[error("{bdf}: PASID {pasid} is beyond the device's {max_pasids} PASIDs")]
    PasidOutOfRange {
        /// The device.
        bdf: Bdf,
        /// The PASID asked for.
        pasid: u32,
        /// The device's limit.
        max_pasids: u32,
    },
    /// The PASID already has a domain in the group.
    #[error("IOMMU group {group}: PASID {pasid} already has a domain")]
    PasidBusy {
        /// The group number.
        group: u32,
        /// The PASID.
        pasid: u32,
    },
    /// The PASID has no domain (replace / detach of nothing), or another
    /// one than named.
    #[error("IOMMU group {group}: PASID {pasid} is not attached to that domain")]
    PasidNotAttached {
        /// The group number.
        group: u32,
        /// The PASID.
        pasid: u32,
    },
    /// The device has no IOMMU feature of this kind
    /// (`intel_iommu_enable_auxd`: enabling PASID on the device failed).
    #[error("{bdf}: the IOMMU feature is not available")]
    FeatureUnavailable {
        /// The device.
        bdf: Bdf,
    },
    /// Auxiliary attach without `IOMMU_DEV_FEAT_AUX` enabled, or of a
    /// non-paging domain (`intel_iommu_aux_attach_device`: is_aux_domain).
    #[error("{bdf}: not an auxiliary-domain attach (feature disabled or domain not paging)")]
    NotAuxDomain {
        /// The device.
        bdf: Bdf,
    },
    /// Disabling the aux feature while aux domains are attached.
    #[error("{bdf}: auxiliary domains are still attached")]
    AuxInUse {
        /// The device.
        bdf: Bdf,
    },
    /// The domain has no default PASID (`intel_iommu_aux_get_pasid`).
    #[error("domain {domain} has no auxiliary PASID")]
    NoAuxPasid {
        /// The domain's id.
        domain: u64,
    },
    /// Aux detach of a domain not aux-attached to the device.
    #[error("domain {domain} is not attached to {bdf} as an auxiliary domain")]
    AuxNotAttached {
        /// The domain's id.
        domain: u64,
        /// The device.
        bdf: Bdf,
    },
    /// The IOASID allocator had no PASID below the device's limit
    /// (`aux_domain_add_dev`: "Can't allocate default pasid").
    #[error("{bdf}: no free PASID below {max_pasids}")]
    PasidExhausted {
        /// The device.
        bdf: Bdf,
        /// The device's limit.
        max_pasids: u32,
    },
    /// The hardware driver refused.
    #[error("{bdf}: driver {op} failed: {errno}")]
    Driver {
        /// The driver operation.
        op: &'static str,
        /// The device.
        bdf: Bdf,
        /// What the driver returned.
        errno: Errno,
    },
    /// The hardware driver refused an allocation or a page-table operation.
    #[error("domain: driver {op} failed: {errno}")]
    DomainDriver {
        /// The driver operation.
        op: &'static str,
        /// What the driver returned.
        errno: Errno,
    },
}

impl IommuError {
    /// The errno Linux returns for this failure.
    pub fn errno(&self) -> Errno {
        match self {
            // iommu_device_claim_dma_owner / iommu_attach_device_pasid: !group.
            IommuError::NoGroup { .. } | IommuError::EmptyGroup { .. } => Errno::NODEV,
            IommuError::AlreadyProbed { .. } => Errno::EXIST,
            // iommu_device_claim_dma_owner / iommu_group_claim_dma_owner.
            IommuError::OwnedByOther { .. } | IommuError::NotOwner { .. } => Errno::PERM,
            // __iommu_take_dma_ownership, iommu_device_use_default_domain,
            // __iommu_attach_group, iommu_attach_device_pasid (xa_insert).
            IommuError::NotInDefaultDomain { .. }
            | IommuError::UserOwned { .. }
            | IommuError::PasidsAttached { .. }
            | IommuError::GroupBusy { .. }
            | IommuError::PasidBusy { .. }
            | IommuError::AuxInUse { .. } => Errno::BUSY,
            // __iommu_attach_group, iommu_attach_device, iommu_map,
            // iommu_attach_device_pasid, iommu_replace_device_pasid,
            // intel_iommu_aux_get_pasid.
            IommuError::DomainNotAttached { .. }
            | IommuError::ForeignDomain { .. }
            | IommuError::NotSingleton { .. }
            | IommuError::NotPaging { .. }
            | IommuError::NoPasid
            | IommuError::DeviceNoPasid { .. }
            | IommuError::PasidOutOfRange { .. }
            | IommuError::PasidNotAttached { .. }
            | IommuError::NoAuxPasid { .. }
            | IommuError::AuxNotAttached { .. } => Errno::INVAL,
            // iommu_attach_device_pasid: !domain->ops->set_dev_pasid.
            IommuError::PasidUnsupported { .. } => Errno::OPNOTSUPP,
            // intel_iommu_enable_auxd, aux_domain_add_dev.
            IommuError::FeatureUnavailable { .. } | IommuError::PasidExhausted { .. } => {
                Errno::NODEV
            }
            // intel_iommu_aux_attach_device: !is_aux_domain.
            IommuError::NotAuxDomain { .. } => Errno::PERM,
            IommuError::Driver { errno, .. } | IommuError::DomainDriver { errno, .. } => *errno,
        }
    }
}
