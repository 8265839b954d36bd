//! wasm-bindgen adapter: converts JS values to ukitool-core calls and back.
