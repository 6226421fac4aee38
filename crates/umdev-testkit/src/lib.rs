//! Test support for the umdev crates, one module per layer, as a
//! dev-dependency: a crate's tests enable the features of the layers they
//! set up (`pci`, `iommu`, `iommufd`, `vfio`, `devices`, `vfio-user`,
//! `sysfs`, `daemon`).
//!
//! One naming scheme: a layer's fixture is `<module>::Rig` (the stack up to
//! that layer, built on the embedded default platform unless a constructor
//! says otherwise); helpers are free functions of the module whose objects
//! they act on; a running daemon is `daemon::Daemon`.
//!
//! ```
//! # #[cfg(feature = "iommu")] {
//! use umdev_testkit::{bdf, iommu::Rig};
//!
//! let rig = Rig::default_platform();
//! assert!(rig.iommu.device_group(bdf("0000:05:00.0")).is_some());
//! # }
//! ```

/// `impl Default` as `new()`, for a fixture built without arguments.
#[cfg(feature = "vfio")]
macro_rules! default_is_new {
    ($t:ty) => {
        impl Default for $t {
            fn default() -> Self {
                Self::new()
            }
        }
    };
}
#[cfg(feature = "vfio")]
pub(crate) use default_is_new;

#[cfg(feature = "daemon")]
pub mod daemon;
#[cfg(feature = "devices")]
pub mod dmatest;
#[cfg(feature = "iommu")]
pub mod iommu;
#[cfg(feature = "devices")]
pub mod irq;
#[cfg(feature = "devices")]
pub mod mdev_pci;
#[cfg(feature = "devices")]
pub mod mtty;
#[cfg(feature = "pci")]
pub mod pci;
#[cfg(feature = "devices")]
pub mod sdma;
#[cfg(feature = "sysfs")]
pub mod sysfs;
#[cfg(feature = "vfio")]
pub mod vfio;
#[cfg(feature = "devices")]
pub mod vfio_pci;
#[cfg(feature = "vfio-user")]
pub mod vfio_user;
#[cfg(feature = "iommu")]
pub mod vtd;

#[cfg(feature = "pci")]
pub use pci::{bdf, nvme};

use std::time::{Duration, Instant};

/// Polls `cond` every millisecond until it holds; panics naming `what`
/// after ten seconds.
pub fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}
