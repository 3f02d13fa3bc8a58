//! Running the Python helpers of `tests/support` (DuckDB + sqlglot) from tests.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::Value;
use waftune::athena::rows::ResultSet;

/// The interpreter: `WAFTUNE_PYTHON`, else the `.venv` that `.ci/test` sets up.
pub fn python() -> PathBuf {
    match std::env::var_os("WAFTUNE_PYTHON") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"),
    }
}

/// Runs `tests/support/<script>` with `request` as JSON on stdin; returns the `results` it
/// prints, as Athena's text rows.
pub fn results(script: &str, request: &Value) -> Vec<ResultSet> {
    let python = python();
    assert!(
        python.exists(),
        "`{}` not found: set WAFTUNE_PYTHON, or run .ci/test (it installs duckdb and sqlglot into .venv)",
        python.display()
    );
    let mut child = Command::new(&python)
        .arg(
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("tests/support")
                .join(script),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python starts");
    serde_json::to_writer(child.stdin.take().unwrap(), request).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{script} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reply: Value = serde_json::from_slice(&out.stdout).unwrap();
    reply["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| ResultSet {
            columns: serde_json::from_value(r["columns"].clone()).unwrap(),
            rows: serde_json::from_value(r["rows"].clone()).unwrap(),
        })
        .collect()
}
