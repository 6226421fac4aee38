//! The driver's two static domains: blocking (attach clears the PASID
//! entry, so DMA faults) and identity (PGTT pass-through).

use std::any::Any;
use std::sync::Arc;

use rustix::io::Errno;

use super::DRIVER_NAME;
use crate::iommu::{DomainOps, DomainType};
use crate::memory::PhysAddr;
use crate::pgtable::Prot;
use crate::vtd::FaultHandler;

/// The blocking domain (Linux `blocking_domain`).
#[derive(Debug, Default)]
pub struct VtdBlockedDomain;

/// The identity domain (Linux `identity_domain`, PGTT 4 with
/// FLPT_DEFAULT_DID).
#[derive(Debug, Default)]
pub struct VtdIdentityDomain;

macro_rules! static_domain_ops {
    ($ty:ty, $kind:expr, $iova_to_phys:expr) => {
        impl DomainOps for $ty {
            fn domain_type(&self) -> DomainType {
                $kind
            }

            fn driver_name(&self) -> &str {
                DRIVER_NAME
            }

            fn as_any(&self) -> &dyn Any {
                self
            }

            fn aperture(&self) -> (u64, u64) {
                (0, u64::MAX)
            }

            fn pgsize_bitmap(&self) -> u64 {
                0
            }

            /// Not a paging domain: EINVAL (__iommu_map).
            fn map(
                &self,
                _iova: u64,
                _phys: PhysAddr,
                _len: u64,
                _prot: Prot,
            ) -> Result<(), Errno> {
                Err(Errno::INVAL)
            }

            fn unmap(&self, _iova: u64, _len: u64) -> u64 {
                0
            }

            /// iommu_iova_to_phys: the IOVA itself for identity, nothing
            /// for blocked.
            fn iova_to_phys(&self, iova: u64) -> Option<PhysAddr> {
                let f: fn(u64) -> Option<PhysAddr> = $iova_to_phys;
                f(iova)
            }

            /// Static domains are shared by every device; their faults are
            /// only logged.
            fn set_fault_handler(&self, _handler: Option<Arc<dyn FaultHandler>>) {}
        }
    };
}

static_domain_ops!(VtdBlockedDomain, DomainType::Blocked, |_| None);
static_domain_ops!(VtdIdentityDomain, DomainType::Identity, Some);
