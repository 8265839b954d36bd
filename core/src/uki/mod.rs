//! UKI semantics over a parsed PE: kinds, known sections, profiles, metadata.
