//! Helpers shared by integration tests.

// Each test binary uses a part of them.
#[allow(dead_code)]
pub mod athena;
#[allow(dead_code)]
pub mod moto;
#[allow(dead_code)]
pub mod not_aws;
