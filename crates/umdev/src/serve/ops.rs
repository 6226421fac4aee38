//! The operations that change the model, as the sysfs writes that do the
//! same (and with their errnos). The plain ones (bind, `driver_override`,
//! `new_id`, ...) are one platform call each, made by the daemon.

use serde_json::{Value, json};
use umdev_devices::host::Host;
use umdev_pci::Bdf;
use umdev_vfio::mdev::MdevUuid;

use super::error::OpError;
use super::state::find_parent;

/// Parses a PCI address as the `bind` attribute does.
pub fn bdf(text: &str) -> Result<Bdf, OpError> {
    text.parse().map_err(|_| OpError::BadAddress {
        text: text.to_owned(),
    })
}

/// A new random (version 4) UUID.
fn random_uuid() -> MdevUuid {
    MdevUuid::from_bytes(*uuid::Uuid::new_v4().as_bytes())
}

/// `echo UUID > .../mdev_supported_types/<type>/create` (a random UUID
/// if none is given); returns the UUID.
pub fn create(
    host: &Host,
    parent: &str,
    mdev_type: &str,
    uuid: Option<&str>,
) -> Result<Value, OpError> {
    let uuid = match uuid {
        Some(text) => text.parse::<MdevUuid>()?,
        None => random_uuid(),
    };
    let parent = find_parent(host, parent).ok_or_else(|| OpError::NoParent {
        name: parent.to_owned(),
    })?;
    parent.mdev_type(mdev_type)?.create(uuid)?;
    Ok(json!({ "uuid": uuid.to_string() }))
}

/// `echo 1 > /sys/bus/mdev/devices/<uuid>/remove`.
pub fn remove(host: &Host, uuid: &str) -> Result<Value, OpError> {
    let parsed: MdevUuid = uuid.parse()?;
    let mdev = host.bus.find(parsed).ok_or_else(|| OpError::NoMdev {
        uuid: uuid.to_owned(),
    })?;
    mdev.remove()?;
    Ok(json!({ "uuid": parsed.to_string() }))
}

/// `echo BDF > /sys/bus/pci/drivers/<driver>/unbind`, by default from the
/// driver it is bound to; returns that driver.
pub fn unbind(host: &Host, text: &str, driver: Option<&str>) -> Result<Value, OpError> {
    let platform = host.platform();
    let bdf = bdf(text)?;
    let driver = match driver {
        Some(d) => d.to_owned(),
        None => {
            platform
                .driver_of(bdf)
                .ok_or_else(|| OpError::NotBound {
                    bdf: text.to_owned(),
                })?
                .name
        }
    };
    platform.unbind(&driver, bdf)?;
    Ok(json!({ "driver": driver }))
}
