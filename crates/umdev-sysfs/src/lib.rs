//! umdev's sysfs face: the kernel's sysfs layout over the object model,
//! served over FUSE.
