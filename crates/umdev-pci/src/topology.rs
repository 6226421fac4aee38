//! The set of present functions and their IOMMU group numbers.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::Bdf;
use crate::function::Function;

/// Functions by address plus group bookkeeping. Guarded by the platform's
/// topology `RwLock`, which is never held across driver callbacks or hooks.
pub(crate) struct Topology {
    functions: BTreeMap<Bdf, Arc<Function>>,
    groups: BTreeMap<Bdf, u32>,
    /// Group number → members; a number is free when absent (Linux frees
    /// the `iommu_group_ida` id when the group's last device goes).
    members: BTreeMap<u32, BTreeSet<Bdf>>,
    /// Segments an IOMMU unit translates; other functions get no group.
    iommu_segments: BTreeSet<u16>,
}

impl Topology {
    /// An empty topology.
    pub fn new(iommu_segments: BTreeSet<u16>) -> Self {
        Self {
            functions: BTreeMap::new(),
            groups: BTreeMap::new(),
            members: BTreeMap::new(),
            iommu_segments,
        }
    }

    /// The function at `bdf`.
    pub fn get(&self, bdf: Bdf) -> Option<&Arc<Function>> {
        self.functions.get(&bdf)
    }

    /// All functions in address order (Linux's device-list order at boot,
    /// since bus numbers are assigned depth-first).
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Function>> {
        self.functions.values()
    }

    /// Group number of `bdf`.
    pub fn group(&self, bdf: Bdf) -> Option<u32> {
        self.groups.get(&bdf).copied()
    }

    /// Every group with its members in address order.
    pub fn groups(&self) -> BTreeMap<u32, Vec<Bdf>> {
        self.members
            .iter()
            .map(|(g, m)| (*g, m.iter().copied().collect()))
            .collect()
    }

    /// Adds a function, not yet grouped.
    pub fn insert(&mut self, f: Function) -> Arc<Function> {
        let f = Arc::new(f);
        self.functions.insert(f.spec.bdf, f.clone());
        f
    }

    /// Whether an IOMMU unit translates `segment`.
    pub fn translates(&self, segment: u16) -> bool {
        self.iommu_segments.contains(&segment)
    }

    /// Places `bdf` in group `existing`, or in the lowest free number
    /// (`iommu_group_alloc`) when `None`; returns the group.
    pub fn join(&mut self, bdf: Bdf, existing: Option<u32>) -> u32 {
        let group = existing.unwrap_or_else(|| self.lowest_free_group());
        self.groups.insert(bdf, group);
        self.members.entry(group).or_default().insert(bdf);
        group
    }

    /// Removes a function, freeing its group number if it was the last
    /// member.
    pub fn remove(&mut self, bdf: Bdf) -> Option<Arc<Function>> {
        let f = self.functions.remove(&bdf)?;
        if let Some(g) = self.groups.remove(&bdf)
            && let Some(m) = self.members.get_mut(&g)
        {
            m.remove(&bdf);
            if m.is_empty() {
                self.members.remove(&g);
            }
        }
        Some(f)
    }

    fn lowest_free_group(&self) -> u32 {
        let mut n = 0;
        for used in self.members.keys() {
            if *used != n {
                break;
            }
            n += 1;
        }
        n
    }
}
