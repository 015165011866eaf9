//! `envparity`: the aggregator (`envparity serve`) and its CLI.
#![forbid(unsafe_code)]

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    envparity_aggregator::cli::main()
}
