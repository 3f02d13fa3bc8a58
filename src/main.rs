use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    match waftune::cli::run(waftune::cli::Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            waftune::cli::print_error(&e);
            ExitCode::from(waftune::cli::exit::ERROR)
        }
    }
}
