//! The translation structures of one unit in host memory, as the driver
//! allocates and writes them: a root table per segment, context tables,
//! per-device PASID directories and PASID tables (drivers/iommu/intel/
//! iommu.c context setup, pasid.c `intel_pasid_alloc_table` /
//! `intel_pasid_get_entry`). The unit only reads them
//! (`crate::vtd` walks them from its root table address register).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use umdev_pci::Bdf;

use crate::memory::{HostMemory, MemoryError, MemoryObject, PAGE_SIZE, PhysAddr};
use crate::vtd::UnitError;
use crate::vtd::layout::{
    PASID_DIR_ENTRY_SIZE, PASID_ENTRY_SIZE, PASID_PDE_SHIFT, PASID_PTE_MASK, ScalableContext,
    context_entry_offset, encode_pasid_dir_entry, encode_root_word, root_word_offset,
};

/// Directory entries in one 4 KiB page.
const DIR_ENTRIES_PER_PAGE: u64 = PAGE_SIZE / PASID_DIR_ENTRY_SIZE;

fn store(object: &MemoryObject, offset: u64, value: u64) -> Result<(), MemoryError> {
    object
        .atomic_u64(offset)?
        .store(value.to_le(), Ordering::Release);
    Ok(())
}

fn load(object: &MemoryObject, offset: u64) -> Result<u64, MemoryError> {
    Ok(u64::from_le(
        object.atomic_u64(offset)?.load(Ordering::Acquire),
    ))
}

/// A device's PASID directory and the PASID tables under it.
#[derive(Debug)]
struct DeviceTables {
    dir: Arc<MemoryObject>,
    dir_entries: u64,
    tables: HashMap<u64, Arc<MemoryObject>>,
}

/// Where a PASID entry lives.
#[derive(Clone, Debug)]
pub(crate) struct EntrySlot {
    table: Arc<MemoryObject>,
    offset: u64,
}

/// The software view of one unit's structures.
#[derive(Debug)]
pub(crate) struct Tables {
    mem: Arc<HostMemory>,
    roots: HashMap<u16, Arc<MemoryObject>>,
    context_tables: HashMap<(u16, u8, bool), Arc<MemoryObject>>,
    devices: HashMap<Bdf, DeviceTables>,
}

impl Tables {
    /// Allocates an empty root table for each segment.
    pub(crate) fn new(mem: Arc<HostMemory>, segments: &[u16]) -> Result<Self, MemoryError> {
        let roots = segments
            .iter()
            .map(|&s| Ok((s, mem.alloc_anonymous(PAGE_SIZE)?)))
            .collect::<Result<_, MemoryError>>()?;
        Ok(Self {
            mem,
            roots,
            context_tables: HashMap::new(),
            devices: HashMap::new(),
        })
    }

    /// Host-physical address of each segment's root table.
    pub(crate) fn root_addrs(&self) -> Vec<(u16, PhysAddr)> {
        let mut roots: Vec<_> = self.roots.iter().map(|(&s, o)| (s, o.base())).collect();
        roots.sort_unstable();
        roots
    }

    /// Allocates the device's PASID directory (sized for `max_pasids` as
    /// intel_pasid_alloc_table does: at least one page) and writes its
    /// scalable-mode context entry (intel_pasid_setup_sm_context), the
    /// context table and root entry included.
    pub(crate) fn setup_context(&mut self, bdf: Bdf, max_pasids: u32) -> Result<(), UnitError> {
        if self.devices.contains_key(&bdf) {
            return Err(UnitError::ContextExists(bdf));
        }
        let root = Arc::clone(
            self.roots
                .get(&bdf.segment())
                .ok_or(UnitError::NotCovered(bdf))?,
        );
        let dir_bytes = (u64::from(max_pasids) >> PASID_PDE_SHIFT) * PASID_DIR_ENTRY_SIZE;
        let dir_pages = dir_bytes.div_ceil(PAGE_SIZE).max(1).next_power_of_two();
        let dir = self.mem.alloc_anonymous(dir_pages * PAGE_SIZE)?;
        let dir_entries = dir_pages * DIR_ENTRIES_PER_PAGE;

        let upper = bdf.devfn() >= 0x80;
        let key = (bdf.segment(), bdf.bus(), upper);
        let context_table = match self.context_tables.get(&key) {
            Some(table) => Arc::clone(table),
            None => {
                let table = self.mem.alloc_anonymous(PAGE_SIZE)?;
                self.context_tables.insert(key, Arc::clone(&table));
                table
            }
        };
        let context = ScalableContext {
            pasid_dir: dir.base(),
            pdts: ScalableContext::pdts_for(dir_entries),
            pasid_enable: max_pasids > 0,
            fpd: false,
        }
        .encode();
        let offset = context_entry_offset(bdf.devfn());
        // Upper words first, the present low word last.
        for (i, word) in context.iter().enumerate().rev() {
            store(&context_table, offset + 8 * i as u64, *word)?;
        }
        store(
            &root,
            root_word_offset(bdf.bus(), bdf.devfn()),
            encode_root_word(context_table.base()),
        )?;
        self.devices.insert(
            bdf,
            DeviceTables {
                dir,
                dir_entries,
                tables: HashMap::new(),
            },
        );
        Ok(())
    }

    /// Clears the device's context entry and drops its PASID structures
    /// (the caller flushes). Returns the PASIDs whose entries were present,
    /// with their first three words.
    pub(crate) fn teardown_context(&mut self, bdf: Bdf) -> Vec<(u32, [u64; 3])> {
        let Some(device) = self.devices.remove(&bdf) else {
            return Vec::new();
        };
        let key = (bdf.segment(), bdf.bus(), bdf.devfn() >= 0x80);
        if let Some(table) = self.context_tables.get(&key) {
            let offset = context_entry_offset(bdf.devfn());
            for i in 0..4 {
                // An in-range offset of a live object cannot fail.
                let _ = store(table, offset + 8 * i, 0);
            }
        }
        let mut present = Vec::new();
        for (&dir_index, table) in &device.tables {
            for i in 0..=u64::from(PASID_PTE_MASK) {
                let offset = i * PASID_ENTRY_SIZE;
                let words = [0, 8, 16].map(|o| load(table, offset + o).unwrap_or(0));
                if words[0] & 1 != 0 {
                    present.push(((dir_index << PASID_PDE_SHIFT | i) as u32, words));
                }
            }
            self.mem.release(table);
        }
        self.mem.release(&device.dir);
        present.sort_unstable();
        present
    }

    /// Whether the device has a context entry.
    pub(crate) fn has_context(&self, bdf: Bdf) -> bool {
        self.devices.contains_key(&bdf)
    }

    /// The slot of (bdf, pasid)'s PASID entry, if its PASID table exists.
    pub(crate) fn entry_slot(&self, bdf: Bdf, pasid: u32) -> Result<Option<EntrySlot>, UnitError> {
        let device = self.devices.get(&bdf).ok_or(UnitError::NoContext(bdf))?;
        let dir_index = Self::dir_index(device, bdf, pasid)?;
        Ok(device.tables.get(&dir_index).map(|table| EntrySlot {
            table: Arc::clone(table),
            offset: u64::from(pasid & PASID_PTE_MASK) * PASID_ENTRY_SIZE,
        }))
    }

    /// The slot of (bdf, pasid)'s PASID entry; allocates the PASID table
    /// and writes its directory entry if needed (intel_pasid_get_entry).
    pub(crate) fn entry_slot_alloc(
        &mut self,
        bdf: Bdf,
        pasid: u32,
    ) -> Result<EntrySlot, UnitError> {
        if let Some(slot) = self.entry_slot(bdf, pasid)? {
            return Ok(slot);
        }
        let table = self.mem.alloc_anonymous(PAGE_SIZE)?;
        let device = self
            .devices
            .get_mut(&bdf)
            .ok_or(UnitError::NoContext(bdf))?;
        let dir_index = Self::dir_index(device, bdf, pasid)?;
        store(
            &device.dir,
            dir_index * PASID_DIR_ENTRY_SIZE,
            encode_pasid_dir_entry(table.base()),
        )?;
        device.tables.insert(dir_index, Arc::clone(&table));
        Ok(EntrySlot {
            table,
            offset: u64::from(pasid & PASID_PTE_MASK) * PASID_ENTRY_SIZE,
        })
    }

    fn dir_index(device: &DeviceTables, bdf: Bdf, pasid: u32) -> Result<u64, UnitError> {
        let dir_index = u64::from(pasid >> PASID_PDE_SHIFT);
        if dir_index >= device.dir_entries {
            return Err(UnitError::PasidRange { bdf, pasid });
        }
        Ok(dir_index)
    }
}

impl EntrySlot {
    /// The first three words (all the model reads).
    pub(crate) fn read(&self) -> Result<[u64; 3], MemoryError> {
        Ok([
            load(&self.table, self.offset)?,
            load(&self.table, self.offset + 8)?,
            load(&self.table, self.offset + 16)?,
        ])
    }

    /// Host-physical address of the entry.
    pub(crate) fn addr(&self) -> PhysAddr {
        self.table.base() + self.offset
    }

    /// Writes all eight words; word 0 (with P) last.
    pub(crate) fn write(&self, val: [u64; 8]) -> Result<(), MemoryError> {
        for (i, word) in val.iter().enumerate().rev() {
            store(&self.table, self.offset + 8 * i as u64, *word)?;
        }
        Ok(())
    }

    /// Clears the entry; word 0 (with P) first (pasid_clear_entry).
    pub(crate) fn clear(&self) -> Result<(), MemoryError> {
        for i in 0..8 {
            store(&self.table, self.offset + 8 * i, 0)?;
        }
        Ok(())
    }
}
