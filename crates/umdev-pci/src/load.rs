//! Parsing and validating a platform file (its layout is documented in
//! [`crate::spec`]) into the descriptions the platform keeps; the loader
//! also fills in what follows from the tree, as drivers/pci/probe.c does.
//!
//! Every error names the file, the line and column, and the field: TOML
//! errors use the parser's span and key path; semantic errors (a duplicate
//! address, an unknown driver, a misplaced port) point at the offending
//! value, or at the header of its table.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use rustix::io::Errno;
use serde::Deserialize;
use serde::de::IgnoredAny;
use toml::Spanned;

use crate::bdf::Bdf;
use crate::driver::{DeviceIds, SimpleDriver};
use crate::spec::{BarSpec, FunctionKind, FunctionSpec, MsixSpec, SriovSpec};
use crate::unit::IommuUnitSpec;

/// Why a platform description could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// File name.
        path: String,
        /// The read error.
        #[source]
        source: std::io::Error,
    },
    /// Malformed TOML, or a value of the wrong type or range.
    #[error("{origin}:{line}:{column}: {}{message}", field_prefix(field))]
    Syntax {
        /// File name.
        origin: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// Dotted key path, when the parser knows it.
        field: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// Well-formed TOML describing an impossible platform.
    #[error("{origin}:{line}:{column}: field `{field}`: {message}")]
    Invalid {
        /// File name.
        origin: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// Field path, e.g. `function[3].driver`.
        field: String,
        /// What is wrong.
        message: String,
    },
}

fn field_prefix(field: &Option<String>) -> String {
    field
        .as_ref()
        .map(|f| format!("field `{f}`: "))
        .unwrap_or_default()
}

impl PlatformError {
    /// `EINVAL` for a bad description; the OS error for an unreadable file.
    pub fn errno(&self) -> Errno {
        match self {
            Self::Io { source, .. } => source
                .raw_os_error()
                .map(Errno::from_raw_os_error)
                .unwrap_or(Errno::IO),
            Self::Syntax { .. } | Self::Invalid { .. } => Errno::INVAL,
        }
    }
}

/// The whole platform file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PlatformFile {
    /// IOMMU units.
    #[serde(default)]
    iommu: Vec<IommuUnitSpec>,
    /// Built-in drivers.
    #[serde(default)]
    driver: Vec<SimpleDriver>,
    /// PCI functions, any order.
    #[serde(default)]
    function: Vec<FunctionSpec>,
}

/// Where each table of the file and the value of each of its keys lie,
/// for semantic errors.
#[derive(Debug, Default, Deserialize)]
struct FileSpans {
    #[serde(default)]
    iommu: Vec<TableSpans>,
    #[serde(default)]
    driver: Vec<TableSpans>,
    #[serde(default)]
    function: Vec<TableSpans>,
}

/// One `[[table]]`: its span and its keys' value spans.
type TableSpans = Spanned<BTreeMap<String, Spanned<IgnoredAny>>>;

/// The span of `key`'s value in `table`, if the key is present.
fn key_span(table: &TableSpans, key: &str) -> Option<Range<usize>> {
    table.get_ref().get(key).map(Spanned::span)
}

/// A validated platform, ready to instantiate.
pub(crate) struct Loaded {
    pub units: Vec<IommuUnitSpec>,
    pub drivers: Vec<SimpleDriver>,
    /// In address order.
    pub functions: Vec<FunctionSpec>,
}

/// Maps byte offsets to positions and builds errors.
struct Source<'a> {
    text: &'a str,
    origin: &'a str,
}

impl Source<'_> {
    fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        (line, column)
    }

    fn invalid(&self, span: Range<usize>, field: String, message: String) -> PlatformError {
        let (line, column) = self.position(span.start);
        PlatformError::Invalid {
            origin: self.origin.to_owned(),
            line,
            column,
            field,
            message,
        }
    }

    /// `function.vendor` → `function[3].vendor`: the index of the
    /// `[[function]]` table the error lies in (the parser omits it).
    fn index_array_table(&self, path: &str, offset: usize) -> String {
        let (head, rest) = path.split_once('.').unwrap_or((path, ""));
        if !matches!(head, "iommu" | "driver" | "function") {
            return path.to_owned();
        }
        let header = format!("[[{head}]]");
        let mut line_start = 0;
        let mut count = 0usize;
        for line in self.text.split_inclusive('\n') {
            if line_start > offset {
                break;
            }
            if line.trim_start().starts_with(&header) {
                count += 1;
            }
            line_start += line.len();
        }
        let Some(index) = count.checked_sub(1) else {
            return path.to_owned();
        };
        let sep = if rest.is_empty() { "" } else { "." };
        format!("{head}[{index}]{sep}{rest}")
    }

    fn syntax(&self, err: toml::de::Error) -> PlatformError {
        let (line, column) = self.position(err.span().map_or(0, |s| s.start));
        // The key path is only rendered when the error has no input attached.
        let mut bare = err.clone();
        bare.set_input(None);
        let rendered = bare.to_string();
        let field = rendered
            .lines()
            .find_map(|l| l.strip_prefix("in `")?.strip_suffix('`'))
            .map(|path| self.index_array_table(path, err.span().map_or(0, |s| s.start)));
        PlatformError::Syntax {
            origin: self.origin.to_owned(),
            line,
            column,
            field,
            message: err.message().to_owned(),
        }
    }
}

/// Parses and validates `text`, naming it `origin` in errors.
pub(crate) fn load(text: &str, origin: &str) -> Result<Loaded, PlatformError> {
    let src = Source { text, origin };
    let file: PlatformFile = toml::from_str(text).map_err(|e| src.syntax(e))?;
    let spans: FileSpans = toml::from_str(text).map_err(|e| src.syntax(e))?;
    check_iommu_units(&src, &file.iommu, &spans.iommu)?;
    check_drivers(&src, &file.driver, &spans.driver)?;
    let functions = Resolver::new(&src, file.function, &spans.function, &file.driver)?.resolve()?;
    Ok(Loaded {
        units: file.iommu,
        drivers: file.driver,
        functions,
    })
}

fn check_iommu_units(
    src: &Source<'_>,
    units: &[IommuUnitSpec],
    spans: &[TableSpans],
) -> Result<(), PlatformError> {
    let mut names = BTreeSet::new();
    let mut covered: BTreeMap<u16, &str> = BTreeMap::new();
    for (i, (u, at)) in units.iter().zip(spans).enumerate() {
        let field = |f: &str| format!("iommu[{i}].{f}");
        let span = |f: &str| key_span(at, f).unwrap_or_else(|| at.span());
        if !names.insert(&u.name) {
            return Err(src.invalid(
                span("name"),
                field("name"),
                format!("duplicate IOMMU unit name `{}`", u.name),
            ));
        }
        for seg in &u.segments {
            if let Some(other) = covered.insert(*seg, &u.name) {
                return Err(src.invalid(
                    span("segments"),
                    field("segments"),
                    format!("segment {seg:04x} is already translated by `{other}`"),
                ));
            }
        }
        if u.pasid_bits > 20 {
            return Err(src.invalid(
                at.span(),
                field("pasid_bits"),
                "PCIe PASIDs are at most 20 bits".into(),
            ));
        }
    }
    Ok(())
}

fn check_drivers(
    src: &Source<'_>,
    drivers: &[SimpleDriver],
    spans: &[TableSpans],
) -> Result<(), PlatformError> {
    for (i, (d, at)) in drivers.iter().zip(spans).enumerate() {
        let name = &d.name;
        let problem = if name.is_empty() || name.contains(['/', '\n']) {
            Some(format!("`{name}` is not a valid driver name"))
        } else if drivers[..i].iter().any(|o| &o.name == name) {
            Some(format!("duplicate driver name `{name}`"))
        } else {
            None
        };
        if let Some(message) = problem {
            let span = key_span(at, "name").unwrap_or_else(|| at.span());
            return Err(src.invalid(span, format!("driver[{i}].name"), message));
        }
    }
    Ok(())
}

/// Turns `[[function]]` tables into a consistent tree.
struct Resolver<'a> {
    src: &'a Source<'a>,
    specs: Vec<FunctionSpec>,
    spans: &'a [TableSpans],
    drivers: &'a [SimpleDriver],
    /// (segment, secondary bus) → index of the bridge.
    bridges: BTreeMap<(u16, u8), usize>,
}

impl<'a> Resolver<'a> {
    fn new(
        src: &'a Source<'a>,
        specs: Vec<FunctionSpec>,
        spans: &'a [TableSpans],
        drivers: &'a [SimpleDriver],
    ) -> Result<Self, PlatformError> {
        let mut r = Self {
            src,
            specs,
            spans,
            drivers,
            bridges: BTreeMap::new(),
        };
        let mut seen: BTreeMap<Bdf, usize> = BTreeMap::new();
        for (i, f) in r.specs.iter().enumerate() {
            if let Some(first) = seen.insert(f.bdf, i) {
                let (line, _) = src.position(r.spans[first].span().start);
                return Err(r.err(
                    i,
                    "bdf",
                    r.span(i, "bdf"),
                    format!("duplicate address {} (first defined at line {line})", f.bdf),
                ));
            }
        }
        r.collect_bridges()?;
        Ok(r)
    }

    /// The span of `function[i].field`'s value, if the file gives it.
    fn span(&self, i: usize, field: &str) -> Option<Range<usize>> {
        key_span(&self.spans[i], field)
    }

    fn err(
        &self,
        i: usize,
        field: &str,
        span: Option<Range<usize>>,
        message: String,
    ) -> PlatformError {
        let span = span.unwrap_or_else(|| self.spans[i].span());
        self.src
            .invalid(span, format!("function[{i}].{field}"), message)
    }

    fn spec(&self, i: usize) -> &FunctionSpec {
        &self.specs[i]
    }

    fn bdf(&self, i: usize) -> Bdf {
        self.specs[i].bdf
    }

    fn collect_bridges(&mut self) -> Result<(), PlatformError> {
        for i in 0..self.specs.len() {
            let (bdf, bridge) = (self.bdf(i), self.spec(i).is_bridge());
            let (secondary, subordinate) =
                (self.spec(i).secondary_bus, self.spec(i).subordinate_bus);
            match (secondary, bridge) {
                (None, true) => {
                    return Err(self.err(
                        i,
                        "secondary_bus",
                        None,
                        "a bridge needs `secondary_bus`".into(),
                    ));
                }
                (Some(_), false) => {
                    return Err(self.err(
                        i,
                        "secondary_bus",
                        self.span(i, "secondary_bus"),
                        "only bridges and ports have a secondary bus".into(),
                    ));
                }
                (Some(n), true) => {
                    if n <= bdf.bus() {
                        return Err(self.err(
                            i,
                            "secondary_bus",
                            self.span(i, "secondary_bus"),
                            format!(
                                "secondary bus {n:02x} must be above the bridge's own bus {:02x}",
                                bdf.bus()
                            ),
                        ));
                    }
                    if let Some(other) = self.bridges.insert((bdf.segment(), n), i) {
                        return Err(self.err(
                            i,
                            "secondary_bus",
                            self.span(i, "secondary_bus"),
                            format!(
                                "bus {n:02x} is already the secondary bus of {}",
                                self.bdf(other)
                            ),
                        ));
                    }
                }
                (None, false) => {}
            }
            if subordinate.is_some() && !bridge {
                return Err(self.err(
                    i,
                    "subordinate_bus",
                    self.span(i, "subordinate_bus"),
                    "only bridges and ports have a subordinate bus".into(),
                ));
            }
        }
        Ok(())
    }

    /// Index of the bridge whose secondary bus holds `bdf`.
    fn parent(&self, bdf: Bdf) -> Option<usize> {
        self.bridges.get(&(bdf.segment(), bdf.bus())).copied()
    }

    fn resolve(self) -> Result<Vec<FunctionSpec>, PlatformError> {
        let subordinate = self.subordinates()?;
        let bus_ends = self.bus_ends(&subordinate)?;
        self.check_placement()?;
        let mut out = Vec::new();
        for i in 0..self.specs.len() {
            out.push(self.describe(i, &subordinate)?);
        }
        self.check_vfs(&out, &bus_ends)?;
        out.sort_by_key(|d| d.bdf);
        Ok(out)
    }

    /// Subordinate bus of each bridge: the highest bus below it, or the
    /// explicit value if that is not lower.
    fn subordinates(&self) -> Result<BTreeMap<usize, u8>, PlatformError> {
        let mut sub: BTreeMap<usize, u8> = BTreeMap::new();
        // Children have higher secondary buses than their parents, so
        // visiting by decreasing secondary bus sees children first.
        for (&(seg, sec), &i) in self.bridges.iter().rev() {
            let derived = self
                .bridges
                .iter()
                .filter(|((s, _), c)| *s == seg && self.bdf(**c).bus() == sec)
                .map(|(_, c)| sub[c])
                .max()
                .unwrap_or(sec)
                .max(sec);
            let value = match self.spec(i).subordinate_bus {
                Some(explicit) if explicit < derived => {
                    return Err(self.err(
                        i,
                        "subordinate_bus",
                        self.span(i, "subordinate_bus"),
                        format!(
                            "subordinate bus {explicit:02x} is below bus {derived:02x} behind the bridge",
                        ),
                    ));
                }
                Some(explicit) => explicit,
                None => derived,
            };
            sub.insert(i, value);
        }
        Ok(sub)
    }

    fn is_below(&self, mut bridge: usize, ancestor: usize) -> bool {
        loop {
            if bridge == ancestor {
                return true;
            }
            match self.parent(self.bdf(bridge)) {
                Some(p) => bridge = p,
                None => return false,
            }
        }
    }

    /// `busn_res.end` of every bus; checks that bus ranges nest.
    fn bus_ends(
        &self,
        sub: &BTreeMap<usize, u8>,
    ) -> Result<BTreeMap<(u16, u8), u8>, PlatformError> {
        let mut ends = BTreeMap::new();
        for (&(seg, sec), &i) in &self.bridges {
            for (&(s2, sec2), &j) in &self.bridges {
                if s2 == seg && j != i && (sec..=sub[&i]).contains(&sec2) && !self.is_below(j, i) {
                    return Err(self.err(
                        j,
                        "secondary_bus",
                        self.span(j, "secondary_bus"),
                        format!(
                            "bus {sec2:02x} lies in the bus range {sec:02x}-{:02x} of {}, which is not above it",
                            sub[&i], self.bdf(i)
                        ),
                    ));
                }
            }
            ends.insert((seg, sec), sub[&i]);
        }
        for (i, bdf) in self.specs.iter().map(|s| s.bdf).enumerate() {
            let key = (bdf.segment(), bdf.bus());
            if ends.contains_key(&key) {
                continue;
            }
            // A root bus: it must not sit inside some bridge's range.
            if let Some((_, &j)) = self
                .bridges
                .iter()
                .find(|((s, sec), j)| *s == bdf.segment() && (*sec..=sub[*j]).contains(&bdf.bus()))
            {
                return Err(self.err(
                    i,
                    "bdf",
                    self.span(i, "bdf"),
                    format!(
                        "bus {:02x} is inside the bus range of {} but no bridge has it as secondary bus",
                        bdf.bus(),
                        self.bdf(j)
                    ),
                ));
            }
            ends.insert(key, 0xff);
        }
        Ok(ends)
    }

    /// Ports and bridges where PCIe allows them.
    fn check_placement(&self) -> Result<(), PlatformError> {
        use FunctionKind::*;
        for i in 0..self.specs.len() {
            let kind = self.spec(i).kind;
            let bdf = self.bdf(i);
            let parent = self.parent(bdf).map(|p| self.spec(p).kind);
            let ok = match kind {
                RootPort | RcEndpoint => parent.is_none(),
                UpstreamPort => matches!(parent, Some(RootPort | DownstreamPort)),
                DownstreamPort => parent == Some(UpstreamPort),
                Endpoint | LegacyEndpoint | PcieToPciBridge => {
                    matches!(parent, None | Some(RootPort | DownstreamPort))
                }
                PciDevice => matches!(parent, None | Some(PcieToPciBridge)),
            };
            let span = self.span(i, "bdf");
            if !ok {
                let place = parent.map_or("on a root bus".to_owned(), |p| {
                    format!("below a {}", p.name())
                });
                return Err(self.err(
                    i,
                    "kind",
                    span,
                    format!("a {} cannot sit {place}", kind.name()),
                ));
            }
            // pci_scan_slot: a PCIe port's link leads to device 0 only.
            if matches!(parent, Some(RootPort | DownstreamPort)) && bdf.device() != 0 {
                return Err(self.err(
                    i,
                    "bdf",
                    span,
                    "below a PCIe port only device 0 exists".into(),
                ));
            }
            if bdf.function() != 0
                && !self
                    .specs
                    .iter()
                    .any(|s| s.bdf == bdf.with_function(0).expect("function 0"))
            {
                return Err(self.err(i, "bdf", span, format!("{bdf} has no function 0")));
            }
        }
        Ok(())
    }

    /// Checks `function[i]` and returns it with the file's defaults and the
    /// tree's facts filled in.
    fn describe(&self, i: usize, sub: &BTreeMap<usize, u8>) -> Result<FunctionSpec, PlatformError> {
        let s = self.spec(i);
        let bdf = s.bdf;
        let pcie = s.pcie_type().is_some();
        let bridge = s.is_bridge();
        let class = match self.span(i, "class") {
            Some(span) if s.class > 0xff_ffff => {
                return Err(self.err(i, "class", Some(span), "class codes are 24 bits".into()));
            }
            Some(_) => s.class,
            None if bridge => 0x06_0400,
            None => return Err(self.err(i, "class", None, "missing field `class`".into())),
        };
        self.check_bars(
            i,
            &s.bars,
            if bridge { 2 } else { 6 },
            self.span(i, "bars"),
            "bars",
        )?;
        for (name, present) in [
            ("acs", s.acs.is_some()),
            ("pasid", s.pasid.is_some()),
            ("ats", s.ats.is_some()),
            ("pri", s.pri.is_some()),
            ("sriov", s.sriov.is_some()),
        ] {
            if present && !pcie {
                return Err(self.err(
                    i,
                    name,
                    self.span(i, name),
                    "extended capabilities need a PCIe function".into(),
                ));
            }
        }
        if let Some(msi) = &s.msi
            && !(msi.vectors.is_power_of_two() && msi.vectors <= 32)
        {
            return Err(self.err(
                i,
                "msi",
                self.span(i, "msi"),
                "MSI vectors must be 1, 2, 4, 8, 16 or 32".into(),
            ));
        }
        if let Some(msix) = &s.msix {
            self.check_msix(i, msix, &s.bars, self.span(i, "msix"), "msix")?;
        }
        if let Some(p) = &s.pasid
            && !(1..=20).contains(&p.max_width)
        {
            return Err(self.err(
                i,
                "pasid",
                self.span(i, "pasid"),
                "max_width must be 1..=20".into(),
            ));
        }
        if let Some(a) = &s.ats
            && a.invalidate_queue_depth > 31
        {
            return Err(self.err(
                i,
                "ats",
                self.span(i, "ats"),
                "invalidate_queue_depth must be 0..=31".into(),
            ));
        }
        if let Some(sr) = &s.sriov {
            self.check_sriov(i, sr)?;
        }
        if s.acs
            .as_ref()
            .is_some_and(|a| a.registers().1 & !a.registers().0 != 0)
        {
            return Err(self.err(
                i,
                "acs",
                self.span(i, "acs"),
                "control bits must be in the capability".into(),
            ));
        }
        if s.dma_aliases.contains(&bdf.devfn()) {
            let text = format!("{:02x}.{:x}", bdf.device(), bdf.function());
            return Err(self.err(
                i,
                "dma_aliases",
                self.span(i, "dma_aliases"),
                format!("`{text}` is not another dd.f on this bus"),
            ));
        }
        let multifunction = self.specs.iter().any(|o| {
            o.bdf != bdf
                && o.bdf.segment() == bdf.segment()
                && o.bdf.bus() == bdf.bus()
                && o.bdf.device() == bdf.device()
        });
        let subsystem_vendor = match self.span(i, "subsystem_vendor") {
            _ if bridge => 0,
            Some(_) => s.subsystem_vendor,
            None => s.vendor,
        };
        let desc = FunctionSpec {
            subsystem_vendor,
            subsystem_device: if bridge { 0 } else { s.subsystem_device },
            class,
            subordinate_bus: s.secondary_bus.map(|_| sub[&i]),
            multifunction,
            upstream_bridge: self.parent(bdf).map(|p| self.bdf(p)),
            physfn: None,
            ..s.clone()
        };
        self.check_driver(i, &desc)?;
        Ok(desc)
    }

    fn check_bars(
        &self,
        i: usize,
        bars: &[BarSpec],
        slots: u8,
        span: Option<Range<usize>>,
        field: &str,
    ) -> Result<(), PlatformError> {
        let mut used = [false; 6];
        for bar in bars {
            let width = if bar.mem64 { 2 } else { 1 };
            let problem = if bar.index + width > slots {
                Some(format!(
                    "BAR {} does not fit in {slots} BAR registers",
                    bar.index
                ))
            } else if (bar.index..bar.index + width).any(|r| used[usize::from(r)]) {
                Some(format!("BAR register {} is used twice", bar.index))
            } else if !bar.size.0.is_power_of_two() || bar.size.0 < 16 {
                Some(format!(
                    "BAR {} size {:#x} is not a power of two of at least 16",
                    bar.index, bar.size.0
                ))
            } else if !bar.mem64 && bar.size.0 > 1 << 31 {
                Some(format!("32-bit BAR {} cannot be larger than 2G", bar.index))
            } else {
                None
            };
            if let Some(message) = problem {
                return Err(self.err(i, field, span, message));
            }
            for r in bar.index..bar.index + width {
                used[usize::from(r)] = true;
            }
        }
        Ok(())
    }

    fn check_msix(
        &self,
        i: usize,
        msix: &MsixSpec,
        bars: &[BarSpec],
        span: Option<Range<usize>>,
        field: &str,
    ) -> Result<(), PlatformError> {
        let size = |bir: u8| bars.iter().find(|b| b.index == bir).map(|b| b.size.0);
        let table_len = 16 * u64::from(msix.table_size);
        let pba_len = u64::from(msix.table_size).div_ceil(64) * 8;
        let problem = if !(1..=2048).contains(&msix.table_size) {
            Some("table_size must be 1..=2048".to_owned())
        } else if !msix.table_offset.is_multiple_of(8) || !msix.pba_offset.is_multiple_of(8) {
            Some("table and PBA offsets must be 8-byte aligned".to_owned())
        } else if size(msix.table_bar).is_none_or(|s| u64::from(msix.table_offset) + table_len > s)
        {
            Some(format!("the table does not fit in BAR {}", msix.table_bar))
        } else if size(msix.pba_bar).is_none_or(|s| u64::from(msix.pba_offset) + pba_len > s) {
            Some(format!("the PBA does not fit in BAR {}", msix.pba_bar))
        } else {
            None
        };
        match problem {
            Some(message) => Err(self.err(i, field, span, message)),
            None => Ok(()),
        }
    }

    fn check_sriov(&self, i: usize, s: &SriovSpec) -> Result<(), PlatformError> {
        let span = self.span(i, "sriov");
        let kind = self.spec(i).kind;
        let problem = if !matches!(kind, FunctionKind::Endpoint | FunctionKind::RcEndpoint) {
            Some("only endpoints can be SR-IOV physical functions".to_owned())
        } else if s.total_vfs == 0 {
            Some("total_vfs must be at least 1".to_owned())
        } else if s.first_vf_offset == 0 || (s.total_vfs > 1 && s.vf_stride == 0) {
            Some("first_vf_offset and vf_stride must be non-zero".to_owned())
        } else {
            None
        };
        if let Some(message) = problem {
            return Err(self.err(i, "sriov", span.clone(), message));
        }
        self.check_bars(i, &s.vf_bars, 6, span.clone(), "sriov.vf_bars")?;
        if let Some(m) = &s.vf_msix {
            self.check_msix(i, m, &s.vf_bars, span, "sriov.vf_msix")?;
        }
        Ok(())
    }

    /// The start-up driver must exist and match (`pci_match_device`).
    fn check_driver(&self, i: usize, desc: &FunctionSpec) -> Result<(), PlatformError> {
        let Some(name) = &desc.startup_driver else {
            return Ok(());
        };
        let span = self.span(i, "driver");
        let Some(d) = self.drivers.iter().find(|d| &d.name == name) else {
            return Err(self.err(i, "driver", span, format!("unknown driver `{name}`")));
        };
        let ids = DeviceIds {
            vendor: desc.vendor,
            device: desc.device,
            subsystem_vendor: desc.subsystem_vendor,
            subsystem_device: desc.subsystem_device,
            class: desc.class,
        };
        if !d.ids.iter().any(|id| !id.override_only && id.matches(&ids)) {
            return Err(self.err(
                i,
                "driver",
                span,
                format!(
                    "driver `{}` does not match {:04x}:{:04x} class {:06x}",
                    d.name, desc.vendor, desc.device, desc.class
                ),
            ));
        }
        Ok(())
    }

    /// Every possible VF address must be free and inside the PF's bus range.
    fn check_vfs(
        &self,
        descs: &[FunctionSpec],
        bus_ends: &BTreeMap<(u16, u8), u8>,
    ) -> Result<(), PlatformError> {
        let mut taken: BTreeSet<Bdf> = self.specs.iter().map(|s| s.bdf).collect();
        for (i, d) in descs.iter().enumerate() {
            let Some(sr) = &d.sriov else { continue };
            let span = self.span(i, "sriov");
            for vf in 0..u32::from(sr.total_vfs) {
                let rid = u32::from(d.bdf.rid())
                    + u32::from(sr.first_vf_offset)
                    + vf * u32::from(sr.vf_stride);
                let end = bus_ends[&(d.bdf.segment(), d.bdf.bus())];
                let vf_bdf = u16::try_from(rid)
                    .ok()
                    .map(|r| Bdf::from_rid(d.bdf.segment(), r));
                let problem = match vf_bdf {
                    None => Some(format!("VF {vf} would need a bus number above ff")),
                    Some(b) if b.bus() > end => Some(format!(
                        "VF {vf} at {b} is outside the bus range {:02x}-{end:02x}",
                        d.bdf.bus()
                    )),
                    Some(b)
                        if b.bus() != d.bdf.bus()
                            && bus_ends.contains_key(&(b.segment(), b.bus())) =>
                    {
                        Some(format!(
                            "VF {vf} at {b} lands on bus {:02x}, which is in use",
                            b.bus()
                        ))
                    }
                    Some(b) if !taken.insert(b) => {
                        Some(format!("VF {vf} address {b} is already taken"))
                    }
                    Some(_) => None,
                };
                if let Some(message) = problem {
                    return Err(self.err(i, "sriov", span, message));
                }
            }
        }
        Ok(())
    }
}
