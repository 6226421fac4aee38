//! Invalidation descriptors, as software queues them to the unit
//! (VT-d spec §6.5.2; drivers/iommu/intel/dmar.c `qi_submit_sync`).

use umdev_pci::Bdf;

use super::iotlb::IotlbInvalidation;

/// One invalidation descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvDesc {
    /// IOTLB invalidation (`QI_IOTLB_TYPE` / PASID-based `QI_EIOTLB_TYPE`).
    Iotlb(IotlbInvalidation),
    /// PASID-cache invalidation of one (device, PASID) (`QI_PC_TYPE`).
    PasidCache {
        /// The requester.
        bdf: Bdf,
        /// The PASID.
        pasid: u32,
    },
    /// Context-cache invalidation of one device (`QI_CC_TYPE`, device
    /// selective): drops everything cached from its context entry.
    ContextCache(Bdf),
    /// Invalidation wait (`QI_IWD_TYPE`): completes when every DMA that
    /// started before it has finished, which makes the invalidations
    /// before it strict.
    Wait,
}
