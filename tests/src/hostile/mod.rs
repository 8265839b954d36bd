//! The machinery of the hostile-input tests (tests/tests/robustness/): a counting
//! allocator for the memory bound, a mutation engine, small real inputs and constructed
//! worst cases. docs/robustness.md has the results.

pub mod alloc;
pub mod bytes;
pub mod inputs;
pub mod mutate;
pub mod worst;
pub mod xfs;
