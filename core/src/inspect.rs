//! The inspect report: everything ukitool knows about a file, serialisable as the stable `--json`.
