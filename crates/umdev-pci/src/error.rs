//! Errors of platform operations (config access, binding, SR-IOV), each
//! with the errno Linux returns for the same request.

use rustix::io::Errno;

use crate::Bdf;

/// A failed platform operation.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PciError {
    /// No function at that address (`bus_find_device_by_name` found none).
    #[error("no PCI function {0}")]
    NoDevice(Bdf),
    /// No driver of that name is registered.
    #[error("no driver named `{0}`")]
    NoDriver(String),
    /// A driver of that name is already registered (`driver_register`).
    #[error("driver `{0}` is already registered")]
    DriverExists(String),
    /// The driver does not match the device (drivers/base/bus.c
    /// `bind_store`: `driver_match_device` failed).
    #[error("driver `{driver}` does not match {bdf}")]
    NoMatch {
        /// Driver asked to bind.
        driver: String,
        /// Device it was asked to bind to.
        bdf: Bdf,
    },
    /// The device already has a driver (`__driver_probe_device`).
    #[error("{bdf} is already bound to `{driver}`")]
    AlreadyBound {
        /// Device.
        bdf: Bdf,
        /// Its current driver.
        driver: String,
    },
    /// Unbind from a driver the device is not bound to (`unbind_store`).
    #[error("{bdf} is not bound to `{driver}`")]
    NotBound {
        /// Device.
        bdf: Bdf,
        /// Driver named in the request.
        driver: String,
    },
    /// The IOMMU layer refused the default domain for a DMA-API driver
    /// (`iommu_device_use_default_domain`: EBUSY when user space owns the
    /// group).
    #[error("{bdf}: DMA API use refused by the IOMMU layer: {errno}")]
    DmaOwnership {
        /// Device.
        bdf: Bdf,
        /// The IOMMU layer's errno.
        errno: Errno,
    },
    /// The IOMMU layer refused a function in `probe_device`.
    #[error("{bdf}: IOMMU probe failed: {errno}")]
    IommuProbe {
        /// Device.
        bdf: Bdf,
        /// The IOMMU layer's errno.
        errno: Errno,
    },
    /// The driver's probe failed; its errno is passed through.
    #[error("probe of {bdf} by `{driver}` failed: {errno}")]
    Probe {
        /// Device.
        bdf: Bdf,
        /// Driver.
        driver: String,
        /// The probe's errno.
        errno: Errno,
    },
    /// `driver_override` longer than `PAGE_SIZE - 2` bytes
    /// (drivers/base/driver.c `driver_set_override`).
    #[error("driver_override of {len} bytes is too long")]
    OverrideTooLong {
        /// Length written.
        len: usize,
    },
    /// `new_id` / `remove_id` input with fewer than two hex fields.
    #[error("invalid PCI id `{text}`")]
    InvalidId {
        /// The input.
        text: String,
    },
    /// `new_id` for an id the driver already matches.
    #[error("driver `{driver}` already matches that id")]
    IdExists {
        /// Driver.
        driver: String,
    },
    /// `new_id` with driver_data that no static id table entry carries.
    #[error("driver `{driver}` has no id with driver_data {driver_data:#x}")]
    DriverDataMismatch {
        /// Driver.
        driver: String,
        /// The driver_data given.
        driver_data: u64,
    },
    /// `remove_id` of an id the driver does not have.
    #[error("driver `{driver}` has no such dynamic id")]
    NoSuchId {
        /// Driver.
        driver: String,
    },
    /// Config access outside the function's config space.
    #[error("config access of {len} bytes at {offset:#x} is outside the config space of {bdf}")]
    ConfigRange {
        /// Device.
        bdf: Bdf,
        /// Offset.
        offset: u16,
        /// Length.
        len: usize,
    },
    /// A BAR access to a BAR the function does not have, or not inside it.
    #[error("{len}-byte access at {offset:#x} is outside BAR {bar} of {bdf}")]
    BarRange {
        /// Device.
        bdf: Bdf,
        /// BAR index.
        bar: u8,
        /// Offset into the BAR.
        offset: u64,
        /// Length.
        len: usize,
    },
    /// The function has no SR-IOV capability (it has no `sriov_*` files).
    #[error("{0} is not an SR-IOV physical function")]
    NotSriov(Bdf),
    /// `pci_enable_sriov` on a function that is not a PF.
    #[error("{0} is not an SR-IOV physical function")]
    NotPhysfn(Bdf),
    /// More VFs than TotalVFs (drivers/pci/iov.c `sriov_numvfs_store`).
    #[error("{bdf}: {requested} VFs requested, TotalVFs is {total}")]
    TooManyVfs {
        /// PF.
        bdf: Bdf,
        /// NumVFs asked for.
        requested: u16,
        /// TotalVFs.
        total: u16,
    },
    /// No driver, or a driver without `sriov_configure`, on the PF.
    #[error("{0}: no bound driver with sriov_configure")]
    NoSriovDriver(Bdf),
    /// VFs are already enabled; they must be disabled first.
    #[error("{bdf}: {num_vfs} VFs already enabled")]
    VfsEnabled {
        /// PF.
        bdf: Bdf,
        /// Current NumVFs.
        num_vfs: u16,
    },
    /// The driver's `sriov_configure` failed; its errno is passed through.
    #[error("{bdf}: sriov_configure failed: {errno}")]
    SriovConfigure {
        /// PF.
        bdf: Bdf,
        /// The callback's errno.
        errno: Errno,
    },
    /// `sriov_enable` refused the VF count (`EINVAL` in drivers/pci/iov.c).
    #[error("{bdf}: cannot enable {requested} VFs")]
    SriovEnable {
        /// PF.
        bdf: Bdf,
        /// VFs asked for.
        requested: u16,
    },
}

impl PciError {
    /// The errno Linux returns for the same request.
    pub fn errno(&self) -> Errno {
        match self {
            // drivers/base/bus.c bind_store / unbind_store, drivers_probe.
            Self::NoDevice(_) | Self::NoMatch { .. } | Self::NotBound { .. } => Errno::NODEV,
            Self::NoDriver(_) => Errno::NODEV,
            // drivers/base/driver.c driver_register.
            Self::DriverExists(_) => Errno::EXIST,
            // drivers/base/dd.c __driver_probe_device.
            Self::AlreadyBound { .. } => Errno::BUSY,
            Self::DmaOwnership { errno, .. }
            | Self::IommuProbe { errno, .. }
            | Self::Probe { errno, .. }
            | Self::SriovConfigure { errno, .. } => *errno,
            // drivers/base/driver.c driver_set_override.
            Self::OverrideTooLong { .. } => Errno::INVAL,
            // drivers/pci/pci-driver.c new_id_store / remove_id_store.
            Self::InvalidId { .. } | Self::DriverDataMismatch { .. } => Errno::INVAL,
            Self::IdExists { .. } => Errno::EXIST,
            Self::NoSuchId { .. } => Errno::NODEV,
            // Config reads past the end of the sysfs `config` file.
            Self::ConfigRange { .. } => Errno::INVAL,
            // drivers/vfio/pci/vfio_pci_rdwr.c vfio_pci_bar_rw: no such
            // BAR, or an offset past its end.
            Self::BarRange { .. } => Errno::INVAL,
            // drivers/pci/iov.c sriov_numvfs_store.
            Self::NotSriov(_) | Self::NoSriovDriver(_) => Errno::NOENT,
            Self::TooManyVfs { .. } => Errno::RANGE,
            // drivers/pci/iov.c pci_enable_sriov: !dev->is_physfn.
            Self::NotPhysfn(_) => Errno::NOSYS,
            Self::VfsEnabled { .. } => Errno::BUSY,
            Self::SriovEnable { .. } => Errno::INVAL,
        }
    }
}
