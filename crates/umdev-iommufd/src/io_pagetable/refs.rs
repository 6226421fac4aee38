//! Per-page reference counts over page-number ranges, kept as runs of
//! equal counts. Pinning charges a page the first time it is referenced
//! (0 → 1) and uncharges it on the last put (1 → 0), as pages.c does per
//! `iopt_pages` with its pinned-page bookkeeping.

use std::collections::BTreeMap;

/// A run `[first, last]` of pages that all have `count` references.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Run {
    last: u64,
    count: u32,
}

/// Reference counts of page numbers; pages not present have count 0.
#[derive(Debug, Default)]
pub(crate) struct PageRefs {
    runs: BTreeMap<u64, Run>,
}

/// Inclusive page-number ranges.
pub(crate) type PageRuns = Vec<(u64, u64)>;

impl PageRefs {
    /// References held on `page`.
    pub(crate) fn count(&self, page: u64) -> u32 {
        self.runs
            .range(..=page)
            .next_back()
            .filter(|(_, r)| r.last >= page)
            .map_or(0, |(_, r)| r.count)
    }

    /// Whether no page is referenced.
    pub(crate) fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    /// Makes `at` the first page of a run if a run straddles it.
    fn split(&mut self, at: u64) {
        let Some((&start, &run)) = self.runs.range(..at).next_back() else {
            return;
        };
        if run.last >= at {
            self.runs.insert(
                start,
                Run {
                    last: at - 1,
                    count: run.count,
                },
            );
            self.runs.insert(at, run);
        }
    }

    /// Merges touching runs of equal count around `[first, last]`.
    fn coalesce(&mut self, first: u64, last: u64) {
        let from = self
            .runs
            .range(..first)
            .next_back()
            .map_or(first, |(&s, _)| s);
        let keys: Vec<u64> = self.runs.range(from..=last + 1).map(|(&s, _)| s).collect();
        let mut prev: Option<u64> = None;
        for start in keys {
            let run = self.runs[&start];
            if let Some(p) = prev {
                let before = self.runs[&p];
                if before.last + 1 == start && before.count == run.count {
                    self.runs.remove(&start);
                    self.runs.insert(
                        p,
                        Run {
                            last: run.last,
                            count: run.count,
                        },
                    );
                    continue;
                }
            }
            prev = Some(start);
        }
    }

    /// Adds a reference to every page of `[first, last]` and returns the
    /// ranges whose pages went from 0 to 1.
    pub(crate) fn get(&mut self, first: u64, last: u64) -> PageRuns {
        debug_assert!(first <= last && last < u64::MAX);
        self.split(first);
        self.split(last + 1);
        let mut newly = Vec::new();
        let mut cursor = first;
        let starts: Vec<u64> = self.runs.range(first..=last).map(|(&s, _)| s).collect();
        for start in starts {
            if start > cursor {
                newly.push((cursor, start - 1));
            }
            let run = self.runs.get_mut(&start).expect("run exists");
            run.count += 1;
            cursor = run.last + 1;
        }
        if cursor <= last {
            newly.push((cursor, last));
        }
        for &(a, b) in &newly {
            self.runs.insert(a, Run { last: b, count: 1 });
        }
        self.coalesce(first, last);
        newly
    }

    /// Drops a reference from every page of `[first, last]` (each must hold
    /// one) and returns the ranges whose pages went from 1 to 0.
    pub(crate) fn put(&mut self, first: u64, last: u64) -> PageRuns {
        debug_assert!(first <= last && last < u64::MAX);
        self.split(first);
        self.split(last + 1);
        let mut freed: PageRuns = Vec::new();
        let starts: Vec<u64> = self.runs.range(first..=last).map(|(&s, _)| s).collect();
        debug_assert_eq!(
            starts
                .iter()
                .map(|s| self.runs[s].last - s + 1)
                .sum::<u64>(),
            last - first + 1,
            "put of pages that hold no reference"
        );
        for start in starts {
            let run = self.runs.get_mut(&start).expect("run exists");
            run.count -= 1;
            if run.count == 0 {
                let end = run.last;
                self.runs.remove(&start);
                match freed.last_mut() {
                    Some(prev) if prev.1 + 1 == start => prev.1 = end,
                    _ => freed.push((start, end)),
                }
            }
        }
        self.coalesce(first, last);
        freed
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Expands runs into the set of pages they cover.
    fn pages(runs: &[(u64, u64)]) -> Vec<u64> {
        runs.iter().flat_map(|&(a, b)| a..=b).collect()
    }

    #[test]
    fn get_reports_only_new_pages_and_put_only_freed() {
        let mut refs = PageRefs::default();
        assert_eq!(refs.get(10, 19), vec![(10, 19)]);
        assert_eq!(refs.get(15, 24), vec![(20, 24)]);
        assert_eq!(refs.count(14), 1);
        assert_eq!(refs.count(15), 2);
        assert_eq!(refs.count(25), 0);
        assert_eq!(refs.put(10, 19), vec![(10, 14)]);
        assert_eq!(refs.put(15, 24), vec![(15, 24)]);
        assert!(refs.is_empty());
    }

    proptest! {
        /// Against a plain array of counts: every count, every reported
        /// 0 → 1 and 1 → 0 page.
        #[test]
        fn matches_counting_model(ops in prop::collection::vec((any::<bool>(), 0u64..48, 0u64..16), 1..60)) {
            let mut refs = PageRefs::default();
            let mut model = [0u32; 64];
            for (is_get, first, len) in ops {
                let last = first + len;
                if is_get {
                    let expect: Vec<u64> = (first..=last).filter(|&p| model[p as usize] == 0).collect();
                    for p in first..=last {
                        model[p as usize] += 1;
                    }
                    prop_assert_eq!(pages(&refs.get(first, last)), expect);
                } else if (first..=last).all(|p| model[p as usize] > 0) {
                    let expect: Vec<u64> = (first..=last).filter(|&p| model[p as usize] == 1).collect();
                    for p in first..=last {
                        model[p as usize] -= 1;
                    }
                    prop_assert_eq!(pages(&refs.put(first, last)), expect);
                }
                for p in 0..64u64 {
                    prop_assert_eq!(refs.count(p), model[p as usize]);
                }
                prop_assert_eq!(refs.is_empty(), model.iter().all(|&c| c == 0));
            }
        }
    }
}
