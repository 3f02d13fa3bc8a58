//! Layer 1: plain value types with parse and display, shared by inputs, engines and analyses.
//! They depend only on [`crate::util`].

pub mod acl;
pub mod asn;
pub mod athena;
pub mod rate;
pub mod waf;
