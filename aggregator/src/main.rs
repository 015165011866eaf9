//! `envparity`: the aggregator (`envparity serve`) and its CLI.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    envparity_aggregator::cli::main()
}
