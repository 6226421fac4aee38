//! Parsing and validating a platform file into resolved descriptions.
//!
//! Every error names the file, the line and column, and the field: TOML
//! errors use the parser's span and key path; semantic errors (a duplicate
//! address, an unknown driver, a misplaced port) point at the offending
//! value, or at the header of its table.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use rustix::io::Errno;

use crate::Bdf;
use crate::driver::{DeviceIds, PciDeviceId, SimpleDriver};
use crate::function::{FunctionDesc, kind_pcie_type};
use crate::info::IommuUnitSpec;
use crate::regs::*;
use crate::spec::*;

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

/// A validated platform, ready to instantiate.
pub(crate) struct Loaded {
    pub units: Vec<IommuUnitSpec>,
    pub drivers: Vec<SimpleDriver>,
    /// In address order.
    pub functions: Vec<FunctionDesc>,
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
    let spec: PlatformSpec = toml::from_str(text).map_err(|e| src.syntax(e))?;
    let units = iommu_units(&src, &spec)?;
    let drivers = drivers(&src, &spec)?;
    let functions = Resolver::new(&src, &spec, &drivers)?.resolve()?;
    Ok(Loaded {
        units,
        drivers,
        functions,
    })
}

fn iommu_units(src: &Source<'_>, spec: &PlatformSpec) -> Result<Vec<IommuUnitSpec>, PlatformError> {
    let mut names = BTreeSet::new();
    let mut covered: BTreeMap<u16, String> = BTreeMap::new();
    let mut out = Vec::new();
    for (i, u) in spec.iommu.iter().enumerate() {
        let at = |f: &str| format!("iommu[{i}].{f}");
        let name = u.get_ref().name.get_ref();
        if !names.insert(name.clone()) {
            return Err(src.invalid(
                u.get_ref().name.span(),
                at("name"),
                format!("duplicate IOMMU unit name `{name}`"),
            ));
        }
        for seg in u.get_ref().segments.get_ref() {
            if let Some(other) = covered.insert(*seg, name.clone()) {
                return Err(src.invalid(
                    u.get_ref().segments.span(),
                    at("segments"),
                    format!("segment {seg:04x} is already translated by `{other}`"),
                ));
            }
        }
        let mut pgsize_bitmap = 0u64;
        for size in u.get_ref().page_sizes.get_ref() {
            if !size.0.is_power_of_two() || size.0 < 4096 {
                return Err(src.invalid(
                    u.get_ref().page_sizes.span(),
                    at("page_sizes"),
                    format!(
                        "page size {:#x} is not a power of two of at least 4K",
                        size.0
                    ),
                ));
            }
            pgsize_bitmap |= size.0;
        }
        if u.get_ref().pasid_bits > 20 {
            return Err(src.invalid(
                u.span(),
                at("pasid_bits"),
                "PCIe PASIDs are at most 20 bits".into(),
            ));
        }
        let u = u.get_ref();
        out.push(IommuUnitSpec {
            name: name.clone(),
            segments: u.segments.get_ref().clone(),
            address_widths: u.address_widths.clone(),
            pasid_bits: u.pasid_bits,
            pgsize_bitmap,
            nesting: u.nesting,
            dirty_tracking: u.dirty_tracking,
            fault_log_size: u.fault_log_size,
        });
    }
    Ok(out)
}

fn drivers(src: &Source<'_>, spec: &PlatformSpec) -> Result<Vec<SimpleDriver>, PlatformError> {
    let mut out: Vec<SimpleDriver> = Vec::new();
    for (i, d) in spec.driver.iter().enumerate() {
        let d = d.get_ref();
        let name = d.name.get_ref();
        let problem = if name.is_empty() || name.contains(['/', '\n']) {
            Some(format!("`{name}` is not a valid driver name"))
        } else if out.iter().any(|o| &o.name == name) {
            Some(format!("duplicate driver name `{name}`"))
        } else {
            None
        };
        if let Some(message) = problem {
            return Err(src.invalid(d.name.span(), format!("driver[{i}].name"), message));
        }
        let any = |v: Option<u16>| v.map_or(PCI_ANY_ID, u32::from);
        out.push(SimpleDriver {
            name: name.clone(),
            managed_dma: d.driver_managed_dma,
            ids: d
                .ids
                .iter()
                .map(|id| PciDeviceId {
                    vendor: any(id.vendor),
                    device: any(id.device),
                    subvendor: any(id.subvendor),
                    subdevice: any(id.subdevice),
                    class: id.class,
                    class_mask: id.class_mask,
                    driver_data: id.driver_data,
                    override_only: id.override_only,
                })
                .collect(),
            sriov: d.sriov_configure,
        });
    }
    Ok(out)
}

/// Turns `[[function]]` tables into a consistent tree.
struct Resolver<'a> {
    src: &'a Source<'a>,
    specs: Vec<&'a toml::Spanned<FunctionSpec>>,
    drivers: &'a [SimpleDriver],
    bdfs: Vec<Bdf>,
    /// (segment, secondary bus) → index of the bridge.
    bridges: BTreeMap<(u16, u8), usize>,
}

impl<'a> Resolver<'a> {
    fn new(
        src: &'a Source<'a>,
        spec: &'a PlatformSpec,
        drivers: &'a [SimpleDriver],
    ) -> Result<Self, PlatformError> {
        let specs: Vec<_> = spec.function.iter().collect();
        let mut bdfs = Vec::new();
        let mut seen: BTreeMap<Bdf, usize> = BTreeMap::new();
        for (i, f) in specs.iter().enumerate() {
            let b = f.get_ref();
            let bdf: Bdf = b.bdf.get_ref().parse().map_err(|_| {
                src.invalid(
                    b.bdf.span(),
                    format!("function[{i}].bdf"),
                    format!("`{}` is not a PCI address (ssss:bb:dd.f)", b.bdf.get_ref()),
                )
            })?;
            if let Some(first) = seen.insert(bdf, i) {
                let (line, _) = src.position(specs[first].span().start);
                return Err(src.invalid(
                    b.bdf.span(),
                    format!("function[{i}].bdf"),
                    format!("duplicate address {bdf} (first defined at line {line})"),
                ));
            }
            bdfs.push(bdf);
        }
        let mut r = Self {
            src,
            specs,
            drivers,
            bdfs,
            bridges: BTreeMap::new(),
        };
        r.collect_bridges()?;
        Ok(r)
    }

    fn err(
        &self,
        i: usize,
        field: &str,
        span: Option<Range<usize>>,
        message: String,
    ) -> PlatformError {
        let span = span.unwrap_or_else(|| self.specs[i].span());
        self.src
            .invalid(span, format!("function[{i}].{field}"), message)
    }

    fn spec(&self, i: usize) -> &'a FunctionSpec {
        self.specs[i].get_ref()
    }

    fn is_bridge_kind(kind: FunctionKind) -> bool {
        matches!(
            kind,
            FunctionKind::RootPort
                | FunctionKind::UpstreamPort
                | FunctionKind::DownstreamPort
                | FunctionKind::PcieToPciBridge
        )
    }

    fn collect_bridges(&mut self) -> Result<(), PlatformError> {
        for i in 0..self.specs.len() {
            let s = self.spec(i);
            let bdf = self.bdfs[i];
            match (&s.secondary_bus, Self::is_bridge_kind(s.kind)) {
                (None, true) => {
                    return Err(self.err(
                        i,
                        "secondary_bus",
                        None,
                        "a bridge needs `secondary_bus`".into(),
                    ));
                }
                (Some(sec), false) => {
                    return Err(self.err(
                        i,
                        "secondary_bus",
                        Some(sec.span()),
                        "only bridges and ports have a secondary bus".into(),
                    ));
                }
                (Some(sec), true) => {
                    let n = *sec.get_ref();
                    if n <= bdf.bus() {
                        return Err(self.err(
                            i,
                            "secondary_bus",
                            Some(sec.span()),
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
                            Some(sec.span()),
                            format!(
                                "bus {n:02x} is already the secondary bus of {}",
                                self.bdfs[other]
                            ),
                        ));
                    }
                }
                (None, false) => {}
            }
            if let (Some(sub), false) = (&s.subordinate_bus, Self::is_bridge_kind(s.kind)) {
                return Err(self.err(
                    i,
                    "subordinate_bus",
                    Some(sub.span()),
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

    fn resolve(self) -> Result<Vec<FunctionDesc>, PlatformError> {
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
                .filter(|((s, _), c)| *s == seg && self.bdfs[**c].bus() == sec)
                .map(|(_, c)| sub[c])
                .max()
                .unwrap_or(sec)
                .max(sec);
            let value = match &self.spec(i).subordinate_bus {
                Some(explicit) if *explicit.get_ref() < derived => {
                    return Err(self.err(
                        i,
                        "subordinate_bus",
                        Some(explicit.span()),
                        format!(
                            "subordinate bus {:02x} is below bus {derived:02x} behind the bridge",
                            explicit.get_ref()
                        ),
                    ));
                }
                Some(explicit) => *explicit.get_ref(),
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
            match self.parent(self.bdfs[bridge]) {
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
                        self.spec(j).secondary_bus.as_ref().map(|s| s.span()),
                        format!(
                            "bus {sec2:02x} lies in the bus range {sec:02x}-{:02x} of {}, which is not above it",
                            sub[&i], self.bdfs[i]
                        ),
                    ));
                }
            }
            ends.insert((seg, sec), sub[&i]);
        }
        for (i, bdf) in self.bdfs.iter().enumerate() {
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
                    Some(self.spec(i).bdf.span()),
                    format!(
                        "bus {:02x} is inside the bus range of {} but no bridge has it as secondary bus",
                        bdf.bus(),
                        self.bdfs[j]
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
            let bdf = self.bdfs[i];
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
            let span = Some(self.spec(i).bdf.span());
            if !ok {
                let place = parent.map_or("on a root bus".to_owned(), |p| {
                    format!("below a {}", kind_name(p))
                });
                return Err(self.err(
                    i,
                    "kind",
                    span,
                    format!("a {} cannot sit {place}", kind_name(kind)),
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
                    .bdfs
                    .contains(&bdf.with_function(0).expect("function 0"))
            {
                return Err(self.err(i, "bdf", span, format!("{bdf} has no function 0")));
            }
        }
        Ok(())
    }

    fn describe(&self, i: usize, sub: &BTreeMap<usize, u8>) -> Result<FunctionDesc, PlatformError> {
        let s = self.spec(i);
        let bdf = self.bdfs[i];
        let pcie = kind_pcie_type(s.kind).is_some();
        let bridge = Self::is_bridge_kind(s.kind);
        let class = match &s.class {
            Some(c) if *c.get_ref() > 0xff_ffff => {
                return Err(self.err(i, "class", Some(c.span()), "class codes are 24 bits".into()));
            }
            Some(c) => *c.get_ref(),
            None if bridge => 0x06_0400,
            None => return Err(self.err(i, "class", None, "missing field `class`".into())),
        };
        let bars_span = s.bars.as_ref().map(|b| b.span());
        self.check_bars(
            i,
            s.bar_list(),
            if bridge { 2 } else { 6 },
            bars_span,
            "bars",
        )?;
        for (name, present, span) in [
            ("acs", s.acs.is_some(), s.acs.as_ref().map(|v| v.span())),
            (
                "pasid",
                s.pasid.is_some(),
                s.pasid.as_ref().map(|v| v.span()),
            ),
            ("ats", s.ats.is_some(), s.ats.as_ref().map(|v| v.span())),
            ("pri", s.pri.is_some(), s.pri.as_ref().map(|v| v.span())),
            (
                "sriov",
                s.sriov.is_some(),
                s.sriov.as_ref().map(|v| v.span()),
            ),
        ] {
            if present && !pcie {
                return Err(self.err(
                    i,
                    name,
                    span,
                    "extended capabilities need a PCIe function".into(),
                ));
            }
        }
        if let Some(msi) = &s.msi
            && !(msi.get_ref().vectors.is_power_of_two() && msi.get_ref().vectors <= 32)
        {
            return Err(self.err(
                i,
                "msi",
                Some(msi.span()),
                "MSI vectors must be 1, 2, 4, 8, 16 or 32".into(),
            ));
        }
        if let Some(msix) = &s.msix {
            self.check_msix(i, msix.get_ref(), s.bar_list(), msix.span(), "msix")?;
        }
        if let Some(p) = &s.pasid
            && !(1..=20).contains(&p.get_ref().max_width)
        {
            return Err(self.err(
                i,
                "pasid",
                Some(p.span()),
                "max_width must be 1..=20".into(),
            ));
        }
        if let Some(a) = &s.ats
            && a.get_ref().invalidate_queue_depth > 31
        {
            return Err(self.err(
                i,
                "ats",
                Some(a.span()),
                "invalidate_queue_depth must be 0..=31".into(),
            ));
        }
        if let Some(sr) = &s.sriov {
            self.check_sriov(i, sr)?;
        }
        let acs = s.acs.as_ref().map(|a| {
            let bits = |flags: &[AcsFlag]| flags.iter().fold(0u16, |m, f| m | acs_bit(*f));
            let cap = bits(&a.get_ref().capability);
            // drivers/pci/pci.c pci_std_enable_acs: what Linux enables at boot.
            let ctrl = a.get_ref().control.as_deref().map_or(
                cap & (PCI_ACS_SV | PCI_ACS_RR | PCI_ACS_CR | PCI_ACS_UF),
                bits,
            );
            (cap, ctrl)
        });
        if let Some(a) = &s.acs
            && acs.is_some_and(|(cap, ctrl)| ctrl & !cap != 0)
        {
            return Err(self.err(
                i,
                "acs",
                Some(a.span()),
                "control bits must be in the capability".into(),
            ));
        }
        let mut dma_aliases = Vec::new();
        for text in s.dma_alias_list() {
            let devfn = parse_devfn(text)
                .filter(|d| *d != bdf.devfn())
                .ok_or_else(|| {
                    self.err(
                        i,
                        "dma_aliases",
                        s.dma_aliases.as_ref().map(|d| d.span()),
                        format!("`{text}` is not another dd.f on this bus"),
                    )
                })?;
            dma_aliases.push(devfn);
        }
        let multifunction = self.bdfs.iter().any(|o| {
            *o != bdf
                && o.segment() == bdf.segment()
                && o.bus() == bdf.bus()
                && o.device() == bdf.device()
        });
        let desc = FunctionDesc {
            bdf,
            kind: s.kind,
            vendor: s.vendor,
            device: s.device,
            subsystem_vendor: if bridge {
                0
            } else {
                s.subsystem_vendor.unwrap_or(s.vendor)
            },
            subsystem_device: if bridge {
                0
            } else {
                s.subsystem_device.unwrap_or(0)
            },
            class,
            revision: s.revision,
            multifunction,
            buses: s
                .secondary_bus
                .as_ref()
                .map(|sec| (*sec.get_ref(), sub[&i])),
            bars: s.bar_list().to_vec(),
            pm: s.pm,
            msi: s.msi.as_ref().map(|m| *m.get_ref()),
            msix: s.msix.as_ref().map(|m| *m.get_ref()),
            acs,
            pasid: s.pasid.as_ref().map(|p| *p.get_ref()),
            ats: s.ats.as_ref().map(|a| *a.get_ref()),
            pri: s.pri.as_ref().map(|p| *p.get_ref()),
            sriov: s.sriov.as_ref().map(|sr| sr.get_ref().clone()),
            dma_aliases,
            upstream_bridge: self.parent(bdf).map(|p| self.bdfs[p]),
            physfn: None,
            startup_driver: None,
        };
        let startup_driver = self.check_driver(i, &desc)?;
        Ok(FunctionDesc {
            startup_driver,
            ..desc
        })
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
        span: Range<usize>,
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
            Some(message) => Err(self.err(i, field, Some(span), message)),
            None => Ok(()),
        }
    }

    fn check_sriov(&self, i: usize, sr: &toml::Spanned<SriovSpec>) -> Result<(), PlatformError> {
        let s = sr.get_ref();
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
            return Err(self.err(i, "sriov", Some(sr.span()), message));
        }
        self.check_bars(i, &s.vf_bars, 6, Some(sr.span()), "sriov.vf_bars")?;
        if let Some(m) = &s.vf_msix {
            self.check_msix(i, m, &s.vf_bars, sr.span(), "sriov.vf_msix")?;
        }
        Ok(())
    }

    /// The start-up driver must exist and match (`pci_match_device`).
    fn check_driver(&self, i: usize, desc: &FunctionDesc) -> Result<Option<String>, PlatformError> {
        let Some(name) = &self.spec(i).driver else {
            return Ok(None);
        };
        let span = Some(name.span());
        let Some(d) = self.drivers.iter().find(|d| &d.name == name.get_ref()) else {
            return Err(self.err(
                i,
                "driver",
                span,
                format!("unknown driver `{}`", name.get_ref()),
            ));
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
        Ok(Some(d.name.clone()))
    }

    /// Every possible VF address must be free and inside the PF's bus range.
    fn check_vfs(
        &self,
        descs: &[FunctionDesc],
        bus_ends: &BTreeMap<(u16, u8), u8>,
    ) -> Result<(), PlatformError> {
        let mut taken: BTreeSet<Bdf> = self.bdfs.iter().copied().collect();
        for (i, d) in descs.iter().enumerate() {
            let Some(sr) = &d.sriov else { continue };
            let span = self.spec(i).sriov.as_ref().map(|s| s.span());
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

fn acs_bit(f: AcsFlag) -> u16 {
    match f {
        AcsFlag::SV => PCI_ACS_SV,
        AcsFlag::TB => PCI_ACS_TB,
        AcsFlag::RR => PCI_ACS_RR,
        AcsFlag::CR => PCI_ACS_CR,
        AcsFlag::UF => PCI_ACS_UF,
        AcsFlag::EC => PCI_ACS_EC,
        AcsFlag::DT => PCI_ACS_DT,
    }
}

/// `dd.f` → devfn.
fn parse_devfn(text: &str) -> Option<u8> {
    let (d, f) = text.split_once('.')?;
    let d = u8::from_str_radix(d, 16).ok().filter(|d| *d < 32)?;
    let f = u8::from_str_radix(f, 16).ok().filter(|f| *f < 8)?;
    Some((d << 3) | f)
}

/// The TOML spelling of a kind.
pub(crate) fn kind_name(kind: FunctionKind) -> &'static str {
    match kind {
        FunctionKind::Endpoint => "endpoint",
        FunctionKind::LegacyEndpoint => "legacy-endpoint",
        FunctionKind::RcEndpoint => "rc-endpoint",
        FunctionKind::PciDevice => "pci-device",
        FunctionKind::RootPort => "root-port",
        FunctionKind::UpstreamPort => "upstream-port",
        FunctionKind::DownstreamPort => "downstream-port",
        FunctionKind::PcieToPciBridge => "pcie-to-pci-bridge",
    }
}
