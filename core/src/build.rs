//! Assembling UKIs and addons from a stub, a kernel and parts (ukify-compatible inputs).
