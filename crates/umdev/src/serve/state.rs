//! The daemon's persistent state: what a user changed in the model
//! (driver bindings, `driver_override`s, dynamic ids, SR-IOV VF counts,
//! mdevs), captured from the model as a whole, saved atomically and
//! applied again at start.
//!
//! Saving writes a temporary file in the same directory, fsyncs it,
//! renames it over the state file and fsyncs the directory: a reader (or
//! a restart after SIGKILL or power loss) sees the old or the new state,
//! never a mix, and a save that returned is durable.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use umdev_devices::host::Host;
use umdev_pci::{Bdf, PciDeviceId};
use umdev_vfio::mdev::{MdevParent, MdevUuid};

/// Version of the state file format.
pub const STATE_VERSION: u32 = 1;

/// Errors of loading or saving the state file.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The file is not a state file of this format.
    #[error("{path}: not a umdev state file: {reason}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

impl StateError {
    /// The Linux errno of the failure.
    pub fn errno(&self) -> rustix::io::Errno {
        match self {
            StateError::Io { source, .. } => source
                .raw_os_error()
                .map_or(rustix::io::Errno::IO, rustix::io::Errno::from_raw_os_error),
            StateError::Format { .. } => rustix::io::Errno::INVAL,
        }
    }
}

/// The saved state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// [`STATE_VERSION`].
    pub version: u32,
    /// The platform description the state belongs to.
    pub platform: String,
    /// Every PCI function.
    pub functions: Vec<FunctionState>,
    /// Ids added with `new_id`, per driver, oldest first.
    pub dynamic_ids: Vec<DynamicId>,
    /// Every mdev.
    pub mdevs: Vec<MdevState>,
}

/// One function's driver state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionState {
    /// Address.
    pub bdf: String,
    /// Bound driver.
    pub driver: Option<String>,
    /// `driver_override`.
    pub driver_override: Option<String>,
    /// `sriov_numvfs` of a PF.
    pub sriov_numvfs: Option<u16>,
    /// Whether it is an SR-IOV VF (it exists only while its PF has VFs).
    pub virtfn: bool,
}

/// A dynamic id of a driver.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DynamicId {
    /// Driver name.
    pub driver: String,
    /// All seven `new_id` fields, as written to it.
    pub id: String,
}

/// One mdev.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MdevState {
    /// UUID.
    pub uuid: String,
    /// Parent device name.
    pub parent: String,
    /// Type directory name.
    #[serde(rename = "type")]
    pub mdev_type: String,
}

/// The `new_id` text that adds `id` back.
fn new_id_text(id: &PciDeviceId) -> String {
    format!(
        "{:x} {:x} {:x} {:x} {:x} {:x} {:x}",
        id.vendor, id.device, id.subvendor, id.subdevice, id.class, id.class_mask, id.driver_data
    )
}

impl State {
    /// The state of `host` now.
    pub fn capture(host: &Host) -> Self {
        let platform = host.platform();
        let functions = platform
            .functions()
            .into_iter()
            .filter_map(|bdf| platform.function(bdf))
            .map(|f| FunctionState {
                bdf: f.bdf.to_string(),
                driver: f.driver.clone(),
                driver_override: f.driver_override.clone(),
                sriov_numvfs: f.sriov.as_ref().map(|_| f.num_vfs),
                virtfn: f.is_virtfn(),
            })
            .collect();
        let dynamic_ids = platform
            .drivers()
            .into_iter()
            .flat_map(|d| {
                d.dynamic_ids
                    .iter()
                    .map(|id| DynamicId {
                        driver: d.name.clone(),
                        id: new_id_text(id),
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        let mdevs = host
            .bus
            .devices()
            .into_iter()
            .map(|m| MdevState {
                uuid: m.uuid().to_string(),
                parent: m.parent().id.to_string(),
                mdev_type: m.type_name().to_owned(),
            })
            .collect();
        Self {
            version: STATE_VERSION,
            platform: platform.origin().to_owned(),
            functions,
            dynamic_ids,
            mdevs,
        }
    }

    /// Applies the state to a freshly started `host`, in an order that
    /// works: overrides and dynamic ids (which decide what matches), then
    /// bindings of the functions present, then VF counts (which need the
    /// PF's driver), then overrides and bindings of the VFs that appeared,
    /// then mdevs (whose parents exist by then). Entries that fail are
    /// returned (to be logged); the rest is applied regardless.
    pub fn apply(&self, host: &Host) -> Vec<String> {
        let mut failures = Vec::new();
        let mut fail = |what: String, e: &dyn std::fmt::Display| {
            failures.push(format!("{what}: {e}"));
        };
        let (pfs_and_others, vfs): (Vec<&FunctionState>, Vec<&FunctionState>) =
            self.functions.iter().partition(|f| !f.virtfn);
        apply_functions(host, &pfs_and_others, &mut fail, true, &self.dynamic_ids);
        let platform = host.platform();
        for f in pfs_and_others.iter().filter(|f| f.sriov_numvfs.is_some()) {
            let Some(bdf) = parse_bdf(&f.bdf, &mut fail) else {
                continue;
            };
            let want = f.sriov_numvfs.unwrap_or(0);
            if let Err(e) = platform.set_sriov_numvfs(bdf, want) {
                fail(format!("sriov_numvfs {want} on {bdf}"), &e);
            }
        }
        apply_functions(host, &vfs, &mut fail, false, &[]);
        for m in &self.mdevs {
            if let Err(e) = create_mdev(host, m) {
                fail(
                    format!("mdev {} ({} on {})", m.uuid, m.mdev_type, m.parent),
                    &*e,
                );
            }
        }
        failures
    }
}

type Fail<'a> = dyn FnMut(String, &dyn std::fmt::Display) + 'a;

fn parse_bdf(text: &str, fail: &mut Fail<'_>) -> Option<Bdf> {
    match text.parse::<Bdf>() {
        Ok(bdf) => Some(bdf),
        Err(e) => {
            fail(format!("function {text}"), &e);
            None
        }
    }
}

/// Overrides, then (first pass only) dynamic ids, then unbinds of every
/// function whose driver differs, then binds.
fn apply_functions(
    host: &Host,
    functions: &[&FunctionState],
    fail: &mut Fail<'_>,
    with_ids: bool,
    ids: &[DynamicId],
) {
    let platform = host.platform();
    let mut present: Vec<(Bdf, &FunctionState)> = Vec::new();
    for f in functions {
        let Some(bdf) = parse_bdf(&f.bdf, fail) else {
            continue;
        };
        if platform.function(bdf).is_some() {
            present.push((bdf, *f));
        } else {
            fail(format!("function {bdf}"), &"not on this platform");
        }
    }
    for (bdf, f) in &present {
        let value = f.driver_override.as_deref().unwrap_or("");
        if let Err(e) = platform.set_driver_override(*bdf, value) {
            fail(format!("driver_override of {bdf}"), &e);
        }
    }
    if with_ids {
        for id in ids {
            if let Err(e) = platform.new_id(&id.driver, &id.id) {
                fail(format!("new_id {} of {}", id.id, id.driver), &e);
            }
        }
    }
    for (bdf, f) in &present {
        let current = platform.driver_of(*bdf).map(|d| d.name);
        if let Some(cur) = current.filter(|cur| Some(cur) != f.driver.as_ref())
            && let Err(e) = platform.unbind(&cur, *bdf)
        {
            fail(format!("unbind {bdf} from {cur}"), &e);
        }
    }
    for (bdf, f) in &present {
        let Some(want) = &f.driver else { continue };
        let current = platform.driver_of(*bdf).map(|d| d.name);
        if current.as_ref() != Some(want)
            && let Err(e) = platform.bind(want, *bdf)
        {
            fail(format!("bind {bdf} to {want}"), &e);
        }
    }
}

/// The registered parent named `name`.
pub fn find_parent(host: &Host, name: &str) -> Option<std::sync::Arc<MdevParent>> {
    host.bus
        .parents()
        .into_iter()
        .find(|p| p.device().id.to_string() == name)
}

fn create_mdev(host: &Host, m: &MdevState) -> Result<(), Box<dyn std::error::Error>> {
    let uuid: MdevUuid = m.uuid.parse()?;
    if host.bus.find(uuid).is_some() {
        return Ok(());
    }
    let parent = find_parent(host, &m.parent).ok_or("no such parent")?;
    parent.mdev_type(&m.mdev_type)?.create(uuid)?;
    Ok(())
}

/// Where the state lives and how it is written.
#[derive(Clone, Debug)]
pub struct StateStore {
    path: PathBuf,
}

impl StateStore {
    /// The store at `path` (its directory must exist to save).
    pub fn new(path: PathBuf) -> Self {
        Self { path }
    }

    /// The state file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The temporary file a save writes first.
    pub fn temp_path(&self) -> PathBuf {
        let mut name = self.path.file_name().unwrap_or_default().to_os_string();
        name.push(".tmp");
        self.path.with_file_name(name)
    }

    /// The saved state; `None` if there is none yet.
    pub fn load(&self) -> Result<Option<State>, StateError> {
        let text = match fs::read(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(StateError::Io {
                    path: self.path.clone(),
                    source,
                });
            }
        };
        let state: State = serde_json::from_slice(&text).map_err(|e| StateError::Format {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        if state.version != STATE_VERSION {
            return Err(StateError::Format {
                path: self.path.clone(),
                reason: format!(
                    "format version {} (this build reads {STATE_VERSION})",
                    state.version
                ),
            });
        }
        Ok(Some(state))
    }

    /// Saves `state` atomically and durably: temporary file, fsync,
    /// rename, fsync of the directory.
    pub fn save(&self, state: &State) -> Result<(), StateError> {
        let temp = self.temp_path();
        let io_err = |path: &Path| {
            let path = path.to_owned();
            move |source| StateError::Io { path, source }
        };
        let mut text = serde_json::to_vec_pretty(state).map_err(|e| StateError::Format {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        text.push(b'\n');
        let mut file = File::create(&temp).map_err(io_err(&temp))?;
        file.write_all(&text).map_err(io_err(&temp))?;
        file.sync_all().map_err(io_err(&temp))?;
        drop(file);
        fs::rename(&temp, &self.path).map_err(io_err(&self.path))?;
        let dir = self.path.parent().unwrap_or(Path::new("."));
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err(dir))?;
        Ok(())
    }

    /// Moves an unreadable state file aside (to `<file>.bad`) so the
    /// daemon can start; returns where it went.
    pub fn quarantine(&self) -> Result<PathBuf, StateError> {
        let mut name = self.path.file_name().unwrap_or_default().to_os_string();
        name.push(".bad");
        let aside = self.path.with_file_name(name);
        fs::rename(&self.path, &aside).map_err(|source| StateError::Io {
            path: self.path.clone(),
            source,
        })?;
        Ok(aside)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_then_load_round_trips_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::new(dir.path().join("state.json"));
        assert_eq!(store.load().unwrap(), None);
        let state = State {
            version: STATE_VERSION,
            platform: "p".into(),
            functions: vec![FunctionState {
                bdf: "0000:01:00.0".into(),
                driver: Some("vfio-pci".into()),
                driver_override: None,
                sriov_numvfs: Some(2),
                virtfn: false,
            }],
            dynamic_ids: vec![DynamicId {
                driver: "mdev-pci".into(),
                id: "8086 1 ffffffff ffffffff 0 0 0".into(),
            }],
            mdevs: vec![MdevState {
                uuid: "83b8f4f2-509f-382f-3c1e-e6bfe0fa1001".into(),
                parent: "mtty".into(),
                mdev_type: "mtty-1".into(),
            }],
        };
        store.save(&state).unwrap();
        assert_eq!(store.load().unwrap(), Some(state));
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["state.json"]);
    }

    #[test]
    fn a_foreign_or_newer_file_is_a_format_error() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::new(dir.path().join("state.json"));
        fs::write(store.path(), b"{\"version\": 99}").unwrap();
        assert!(matches!(store.load(), Err(StateError::Format { .. })));
        fs::write(store.path(), b"garbage").unwrap();
        assert!(matches!(store.load(), Err(StateError::Format { .. })));
        let aside = store.quarantine().unwrap();
        assert!(aside.exists() && !store.path().exists());
    }

    #[test]
    fn dynamic_id_text_replays_all_seven_fields() {
        let id = PciDeviceId::device(0x8086, 0x1234);
        assert_eq!(new_id_text(&id), "8086 1234 ffffffff ffffffff 0 0 0");
    }
}
