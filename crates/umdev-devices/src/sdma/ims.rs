//! The interrupt message store (IMS): the engine's device-specific table of
//! interrupt messages, one per interrupt source, programmed by the host
//! only (Linux's IMS for idxd; each entry is what an MSI-X table entry
//! is: message address, data and a mask bit, with a pending bit).
//!
//! The model has no interrupt remapping: delivering an entry's message is
//! [`Interrupts::trigger`] with the message data as the vector, so the
//! host decides where each entry lands by the data it programs (an mdev
//! parent maps it to the mdev's MSI-X vector and its eventfd).

use std::sync::Arc;

use parking_lot::Mutex;

use super::error::SdmaError;
use crate::irq::Interrupts;

/// An interrupt message.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ImsMessage {
    /// Message address (kept for the host; delivery does not use it).
    pub addr: u64,
    /// Message data: the vector [`Interrupts::trigger`] receives.
    pub data: u32,
}

/// One entry as the host sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ImsEntry {
    /// The message.
    pub message: ImsMessage,
    /// Masked: firing only sets `pending`.
    pub masked: bool,
    /// Fired while masked; delivered on unmask.
    pub pending: bool,
}

impl Default for ImsEntry {
    /// Masked with an empty message, as after reset.
    fn default() -> Self {
        Self {
            message: ImsMessage::default(),
            masked: true,
            pending: false,
        }
    }
}

/// The store: entries, each behind its own lock, and the sink messages
/// are delivered to.
pub struct Ims {
    entries: Box<[Mutex<ImsEntry>]>,
    sink: Arc<dyn Interrupts>,
}

impl std::fmt::Debug for Ims {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ims")
            .field("len", &self.entries.len())
            .finish_non_exhaustive()
    }
}

impl Ims {
    /// `len` masked entries delivering to `sink`.
    pub(super) fn new(len: usize, sink: Arc<dyn Interrupts>) -> Self {
        Self {
            entries: (0..len).map(|_| Mutex::new(ImsEntry::default())).collect(),
            sink,
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the store has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn slot(&self, index: usize) -> Result<&Mutex<ImsEntry>, SdmaError> {
        self.entries.get(index).ok_or(SdmaError::NoImsEntry {
            index,
            len: self.entries.len(),
        })
    }

    /// Entry `index`.
    pub fn entry(&self, index: usize) -> Result<ImsEntry, SdmaError> {
        Ok(*self.slot(index)?.lock())
    }

    /// Programs the message of entry `index`.
    pub fn set_message(&self, index: usize, message: ImsMessage) -> Result<(), SdmaError> {
        self.slot(index)?.lock().message = message;
        Ok(())
    }

    /// Masks entry `index`.
    pub fn mask(&self, index: usize) -> Result<(), SdmaError> {
        self.slot(index)?.lock().masked = true;
        Ok(())
    }

    /// Unmasks entry `index`, delivering its message if it was pending.
    pub fn unmask(&self, index: usize) -> Result<(), SdmaError> {
        let deliver = {
            let mut entry = self.slot(index)?.lock();
            entry.masked = false;
            std::mem::take(&mut entry.pending).then_some(entry.message.data)
        };
        if let Some(vector) = deliver {
            self.sink.trigger(vector);
        }
        Ok(())
    }

    /// Masks entry `index` and forgets its message and pending bit.
    pub fn reset(&self, index: usize) -> Result<(), SdmaError> {
        *self.slot(index)?.lock() = ImsEntry::default();
        Ok(())
    }

    /// Fires entry `index` (in range: checked when it was assigned):
    /// delivers its message, or marks it pending while masked. The sink
    /// runs outside the entry's lock.
    pub(super) fn fire(&self, index: usize) {
        let Some(slot) = self.entries.get(index) else {
            return;
        };
        let deliver = {
            let mut entry = slot.lock();
            if entry.masked {
                entry.pending = true;
                None
            } else {
                Some(entry.message.data)
            }
        };
        if let Some(vector) = deliver {
            self.sink.trigger(vector);
        }
    }
}
