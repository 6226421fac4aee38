//! The IOMMU core (drivers/iommu/iommu.c): groups, domains, DMA ownership and attach.
