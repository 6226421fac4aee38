//! Domain-id allocation (Linux `ida_alloc_range(&iommu->domain_ida,
//! IDA_START_DID, cap_ndoms(iommu->cap) - 1, ...)` in domain_attach_iommu).

use crate::vtd::DomainId;

/// DID 0 is reserved for caching mode and DID 1 is FLPT_DEFAULT_DID, the
/// tag of pass-through entries (kernel-semantics §5.1).
pub(crate) const FLPT_DEFAULT_DID: DomainId = 1;
const IDA_START_DID: usize = 2;

/// A bitmap of the unit's domain ids.
pub(crate) struct DomainIds {
    words: Vec<u64>,
    ndoms: usize,
}

impl DomainIds {
    pub(crate) fn new(ndoms: u32) -> Self {
        let ndoms = ndoms as usize;
        Self {
            words: vec![0; ndoms.div_ceil(64)],
            ndoms,
        }
    }

    /// The lowest free id, as the IDA hands out.
    pub(crate) fn alloc(&mut self) -> Option<DomainId> {
        let (word, bit) = self.words.iter().enumerate().find_map(|(i, &w)| {
            let skip = if i == 0 {
                (1u64 << IDA_START_DID) - 1
            } else {
                0
            };
            let free = !(w | skip);
            (free != 0).then(|| (i, free.trailing_zeros() as usize))
        })?;
        let did = word * 64 + bit;
        if did >= self.ndoms {
            return None;
        }
        self.words[word] |= 1 << bit;
        Some(did as DomainId)
    }

    pub(crate) fn free(&mut self, did: DomainId) {
        let did = usize::from(did);
        if did >= IDA_START_DID && did < self.ndoms {
            self.words[did / 64] &= !(1 << (did % 64));
        }
    }

    pub(crate) fn in_use(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_ids_are_never_handed_out_and_ids_run_out() {
        let mut ids = DomainIds::new(70);
        let all: Vec<_> = std::iter::from_fn(|| ids.alloc()).collect();
        assert_eq!(all.len(), 68);
        assert_eq!(all[0], 2);
        assert_eq!(*all.last().unwrap(), 69);
        ids.free(40);
        ids.free(FLPT_DEFAULT_DID);
        assert_eq!(ids.alloc(), Some(40));
        assert_eq!(ids.alloc(), None);
        assert_eq!(ids.in_use(), 68);
    }
}
