use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = bgflow::cli::Cli::parse();
    ExitCode::from(bgflow::cli::run(cli))
}
