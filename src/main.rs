use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    match waftune::cli::run(waftune::cli::Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", waftune::cli::error_message(&e));
            ExitCode::from(waftune::cli::exit::ERROR)
        }
    }
}
