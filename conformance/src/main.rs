//! `conformance`: runs job-control scenarios on real Linux and on the sentry and
//! compares their traces.
use anyhow::{Context, Result};
use clap::Parser;
use sandbox_conformance::scenario::Scenario;
use sandbox_conformance::{linux_exec, sentry_exec, trace};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "conformance",
    about = "Job-control scenarios on real Linux and on the sentry, traces compared"
)]
struct Cli {
    /// Scenario files to run.
    files: Vec<PathBuf>,
    /// Print both traces.
    #[arg(long)]
    show: bool,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let puppet = linux_exec::default_puppet().context("conformance-puppet not found")?;
    let mut div = 0;
    for f in &cli.files {
        let text =
            std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
        let s = Scenario::parse(&text).with_context(|| format!("parsing {}", f.display()))?;
        let st = sentry_exec::run(&s);
        let lt = linux_exec::run(&s, &puppet);
        if cli.show {
            println!("== {} (linux)", s.name);
            for l in lt.lines() {
                println!("{l}");
            }
            println!("== {} (sentry)", s.name);
            for l in st.lines() {
                println!("{l}");
            }
        }
        if let Some(d) = trace::diff("linux", &lt, "sentry", &st) {
            div += 1;
            println!("DIVERGENCE {}\n{d}", s.name);
        }
    }
    println!("{} scenarios, {div} divergences", cli.files.len());
    Ok(())
}
