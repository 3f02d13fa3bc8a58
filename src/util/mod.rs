//! Layer 0: helpers every other layer shares. Nothing here imports from the rest of the crate.

pub mod alloc;
pub mod atomic_file;
pub mod cidr;
pub mod diag;
pub mod stats;
pub mod term;
pub mod text;
pub mod time;
