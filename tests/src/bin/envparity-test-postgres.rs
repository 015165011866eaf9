//! `envparity-test-postgres DIR`: one scratch PostgreSQL 15 server under
//! `DIR/postgres` ([`Postgres`], the harness's), for `scripts/test.sh` to
//! hand to the store tests as `ENVPARITY_TEST_POSTGRES` (docs/store.md).
//! As root.
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
    let Some(dir) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: envparity-test-postgres DIR");
        std::process::exit(2);
    };
    let postgres = Postgres::start_in(&dir)?;
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
