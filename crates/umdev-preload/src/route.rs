//! Which paths the daemon serves: the one list of routed nodes.

/// One path component of a route.
#[derive(Clone, Copy)]
enum Part {
    /// Exactly these bytes.
    Lit(&'static [u8]),
    /// Any non-empty name but this one (a directory beside the nodes).
    NameBut(&'static [u8]),
    /// Any non-empty name.
    Name,
    /// A decimal number (a pid or tid).
    Num,
}

use Part::{Lit, Name, NameBut, Num};

/// The routed paths, component by component. `/dev/vfio/devices` itself is
/// the directory of the cdevs (drivers/vfio/device_cdev.c) and stays the
/// host's; the fail-nth files are the fault injection of
/// Documentation/fault-injection/fault-injection.rst.
const ROUTES: &[&[Part]] = &[
    &[Lit(b"dev"), Lit(b"iommu")],
    &[Lit(b"dev"), Lit(b"vfio"), NameBut(b"devices")],
    &[Lit(b"dev"), Lit(b"vfio"), Lit(b"devices"), Name],
    &[
        Lit(b"proc"),
        Lit(b"self"),
        Lit(b"task"),
        Num,
        Lit(b"fail-nth"),
    ],
    &[Lit(b"proc"), Num, Lit(b"task"), Num, Lit(b"fail-nth")],
    &[Lit(b"proc"), Lit(b"thread-self"), Lit(b"fail-nth")],
];

impl Part {
    fn matches(self, component: &[u8]) -> bool {
        match self {
            Lit(name) => component == name,
            NameBut(name) => !component.is_empty() && component != name,
            Name => !component.is_empty(),
            Num => !component.is_empty() && component.iter().all(u8::is_ascii_digit),
        }
    }
}

/// Whether the daemon serves `path`: an absolute path, spelled plainly
/// (no `//`, `.`, `..` or trailing `/`: those go to libc).
pub(crate) fn is_routed(path: &[u8]) -> bool {
    let Some(rest) = path.strip_prefix(b"/") else {
        return false;
    };
    ROUTES.iter().any(|route| {
        let mut components = rest.split(|&b| b == b'/');
        route
            .iter()
            .all(|part| components.next().is_some_and(|c| part.matches(c)))
            && components.next().is_none()
    })
}

#[cfg(test)]
mod tests {
    use super::is_routed;

    #[test]
    fn routed_and_not() {
        for p in [
            "/dev/iommu",
            "/dev/vfio/vfio",
            "/dev/vfio/12",
            "/dev/vfio/noiommu-0",
            "/dev/vfio/devices/vfio0",
            "/proc/self/task/123/fail-nth",
            "/proc/77/task/78/fail-nth",
            "/proc/thread-self/fail-nth",
        ] {
            assert!(is_routed(p.as_bytes()), "{p}");
        }
        for p in [
            "",
            "dev/iommu",
            "/dev/iommu/",
            "/dev//iommu",
            "/dev/iommux",
            "/dev/vfio",
            "/dev/vfio/",
            "/dev/vfio/devices",
            "/dev/vfio/devices/",
            "/dev/vfio/devices/vfio0/x",
            "/proc/self/task/1a/fail-nth",
            "/proc/self/task//fail-nth",
            "/proc/self/fail-nth",
            "/proc/self/task/1/fail-nth/x",
            "/dev/null",
        ] {
            assert!(!is_routed(p.as_bytes()), "{p}");
        }
    }
}
