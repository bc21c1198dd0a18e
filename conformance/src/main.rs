//! `conformance`: runs job-control scenarios and prints their traces.
use anyhow::{Context, Result};
use clap::Parser;
use sandbox_conformance::scenario::Scenario;
use sandbox_conformance::sentry_exec;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "conformance",
    about = "Job-control scenarios on the sentry model (Linux executor: work in progress)"
)]
struct Cli {
    /// Scenario files to run and print the sentry's trace of.
    files: Vec<PathBuf>,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    for f in &cli.files {
        let text =
            std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
        let s = Scenario::parse(&text).with_context(|| format!("parsing {}", f.display()))?;
        println!("== {} (sentry)", s.name);
        for l in sentry_exec::run(&s).lines() {
            println!("{l}");
        }
    }
    Ok(())
}
