//! `envparity-test-postgres DIR [--durable]`: one scratch PostgreSQL 15
//! server under `DIR/postgres` ([`Postgres`], the harness's), for
//! `scripts/test.sh` to hand to the store tests as `ENVPARITY_TEST_POSTGRES`
//! (docs/store.md), and for `scripts/bench.sh`, which asks for `--durable`
//! (`fsync` on, as the tests do not need). As root.
//!
//! It prints `url URL` (the superuser's database `postgres`, over the Unix
//! socket) and `ready`, then waits for the end of its input, stops the
//! server by pid and removes its dir.
#![forbid(unsafe_code)]

use std::io::{BufRead, Write};
use std::path::PathBuf;

use envparity_tests::{Postgres, Result};

fn main() {
    if let Err(e) = run() {
        eprintln!("envparity-test-postgres: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    let (dir, durable) = match args.as_slice() {
        [dir] => (PathBuf::from(dir), false),
        [dir, flag] if flag == "--durable" => (PathBuf::from(dir), true),
        _ => {
            eprintln!("usage: envparity-test-postgres DIR [--durable]");
            std::process::exit(2);
        }
    };
    let postgres = if durable {
        Postgres::start_durable_in(&dir)?
    } else {
        Postgres::start_in(&dir)?
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "url {}", postgres.url("postgres"))
        .and_then(|()| writeln!(out, "ready"))
        .and_then(|()| out.flush())
        .map_err(envparity_tests::Error::io("write to stdout"))?;
    for line in std::io::stdin().lock().lines() {
        if line.is_err() {
            break;
        }
    }
    drop(postgres);
    Ok(())
}
