//! Helpers shared by integration tests.

pub mod athena;
pub mod moto;
pub mod not_aws;
pub mod python;
