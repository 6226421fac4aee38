//! Tree paths: '/'-separated names relative to the mount root (the root
//! itself is ""), and the relative link targets kernfs generates.

/// The path without empty components (leading, trailing or doubled '/').
pub(crate) fn normalize(path: &str) -> String {
    components(path).collect::<Vec<_>>().join("/")
}

/// The non-empty components of `path`.
pub(crate) fn components(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|c| !c.is_empty())
}

/// `dir/name` (just `name` in the root).
pub(crate) fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else {
        format!("{dir}/{name}")
    }
}

/// The directory holding `path` ("" for a top-level entry).
pub(crate) fn dirname(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(dir, _)| dir)
}

/// The target of a link living in directory `link_dir` that points to
/// `target`, as fs/kernfs/symlink.c `kernfs_get_target_path` writes it:
/// one "../" per level from the link's directory up to the closest common
/// ancestor, then the rest of the target's path.
pub(crate) fn relative(link_dir: &str, target: &str) -> String {
    let from: Vec<&str> = components(link_dir).collect();
    let to: Vec<&str> = components(target).collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut out: Vec<&str> = vec![".."; from.len() - common];
    out.extend_from_slice(&to[common..]);
    out.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_targets_are_kernfs_style() {
        assert_eq!(
            relative("bus/pci/devices", "devices/pci0000:00/0000:00:02.0"),
            "../../../devices/pci0000:00/0000:00:02.0"
        );
        assert_eq!(
            relative(
                "devices/virtual/mtty/mtty/u",
                "devices/virtual/mtty/mtty/mdev_supported_types/mtty-1"
            ),
            "../mdev_supported_types/mtty-1"
        );
        assert_eq!(
            relative("class/mdev_bus", "devices/virtual/mtty/mtty"),
            "../../devices/virtual/mtty/mtty"
        );
        assert_eq!(relative("", "bus/pci"), "bus/pci");
    }

    #[test]
    fn paths_normalize_and_split() {
        assert_eq!(normalize("/bus//pci/"), "bus/pci");
        assert_eq!(join("", "bus"), "bus");
        assert_eq!(join("bus", "pci"), "bus/pci");
        assert_eq!(dirname("bus/pci/devices"), "bus/pci");
        assert_eq!(dirname("bus"), "");
    }
}
