//! The integration tests, one module per area, in one test binary so that the suite links once.
//!
//! The binary's tests share one process: one moto server (`common::moto`, each test takes a lock
//! and gets a freshly reset account), temporary directories from `tempfile`, and no test changes
//! the environment or the current directory (child processes get theirs through `assert_cmd`).
//! Snapshots are under `tests/it/snapshots`, named by module path (`it__cli__...`).

mod athena_cli;
mod athena_equivalence;
mod athena_moto;
mod athena_origin;
mod block_effect;
mod campaign;
mod cli;
mod common;
mod conventions;
mod generate;
mod hostile_input;
mod ledger_safety;
mod logs;
mod origin;
mod origin_athena;
mod policy_check;
mod propose_e2e;
mod rate;
mod report;
mod waf_moto;
mod workflows;
