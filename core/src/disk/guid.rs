//! The name-based GUIDs that make images reproducible: a disk's and each partition's
//! default GUID is derived from its label and name ([`Guid::from_name`]), never drawn
//! at random.

use crate::guid::Guid;

/// The namespace of every GUID ukitool derives: UUIDv8 of "ukitool" under the nil
/// namespace, written out so it never changes by accident.
pub const UKITOOL_NAMESPACE: Guid = Guid::from_u128(0xf215aeb8_10c6_8f41_8f99_974ff5e0cc17);

/// The GUID of `label` under the nil namespace: what Talos 1.13+ gives its image
/// disk and partitions (makefs.GUIDFromLabel, google/uuid `NewHash(sha256, Nil,
/// label, 8)`), and what [`UKITOOL_NAMESPACE`] is of "ukitool".
pub fn label_guid(label: &str) -> Guid {
    Guid::from_name(&Guid::ZERO, label)
}

/// The default disk GUID of an image labelled `label`.
pub fn disk_guid_for(label: &str) -> Guid {
    Guid::from_name(&UKITOOL_NAMESPACE, &format!("disk:{label}"))
}

/// The default unique GUID of partition `name` (the `index`-th, from 1) on `disk`.
pub fn partition_guid_for(disk: &Guid, index: usize, name: &str) -> Guid {
    Guid::from_name(
        &UKITOOL_NAMESPACE,
        &format!("partition:{disk}:{index}:{name}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_based_guids_are_stable() {
        let a = disk_guid_for("ukitool");
        assert_eq!(a, disk_guid_for("ukitool"));
        assert_ne!(a, disk_guid_for("other"));
        assert_eq!(label_guid("ukitool"), UKITOOL_NAMESPACE);
        assert_ne!(
            partition_guid_for(&a, 1, "EFI"),
            partition_guid_for(&a, 2, "EFI")
        );
    }
}
