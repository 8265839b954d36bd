//! Shared helpers for the integration and end-to-end tests (see tests/README.md).
