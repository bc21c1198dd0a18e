//! `conformance`: runs job-control scenarios on real Linux and on the sentry, compares
//! their traces, and ends with `N scenarios, M divergences`.
use anyhow::{bail, Context, Result};
use clap::Parser;
use sandbox_conformance::linux_exec::SandboxTty;
use sandbox_conformance::runner::{self, Comparison, Executor};
use sandbox_conformance::scenario::Scenario;
use sandbox_conformance::{generate, linux_exec, sentry_exec};
use std::path::{Path, PathBuf};

#[derive(Parser)]
#[command(
    name = "conformance",
    about = "Job-control scenarios run on real Linux and on the sentry, traces compared",
    long_about = "Job-control scenarios run on real Linux (puppet processes in a private PID \
namespace under a fresh pty) and on the sentry model; their traces are compared. With no \
FILES the hand-written corpus (conformance/scenarios) runs; --random N adds N generated \
scenarios from --seed. --executor sandbox-borrowed|sandbox-pty|all plays the same \
scenarios with the puppets inside `sandbox run --tty` / `--tty=pty` and compares them with \
Linux too (the loader must report no lockstep violation). Needs root (or CAP_SYS_ADMIN) for \
the PID namespace. Exit status 1 when any scenario diverges."
)]
struct Cli {
    /// Scenario files or directories (of *.scn) to run instead of the corpus.
    files: Vec<PathBuf>,
    /// Also run N random scenarios.
    #[arg(long, value_name = "N", default_value_t = 0)]
    random: u64,
    /// Seed of the random scenarios (scenario i gets a seed derived from it and i).
    #[arg(long, value_name = "S", default_value_t = 1)]
    seed: u64,
    /// Steps per random scenario.
    #[arg(long, value_name = "N", default_value_t = 24)]
    steps: usize,
    /// Run only the random scenarios (not the corpus).
    #[arg(long)]
    no_corpus: bool,
    /// Regenerate and run the random scenario with this (derived) seed, as named in a
    /// divergence report (`random-SEED`).
    #[arg(long, value_name = "SEED")]
    replay: Option<u64>,
    /// Scenarios run at a time (default: the number of CPUs).
    #[arg(long, short = 'j')]
    jobs: Option<usize>,
    /// Print both traces of every scenario.
    #[arg(long)]
    show: bool,
    /// Print the sentry's trace only (no Linux run, no comparison).
    #[arg(long)]
    sentry_only: bool,
    /// Print generated scenarios instead of running them.
    #[arg(long)]
    print: bool,
    /// Do not shrink diverging random scenarios.
    #[arg(long)]
    no_shrink: bool,
    /// Write each diverging scenario (shrunk) to this directory.
    #[arg(long, value_name = "DIR")]
    save: Option<PathBuf>,
    /// What Linux is compared with: the sentry model, the puppets inside `sandbox run
    /// --tty` (borrowed terminal) or `--tty=pty` (owned pty), or all three in turn.
    #[arg(long, value_enum, default_value = "model")]
    executor: ExecutorArg,
    /// The `sandbox` binary (default: $SANDBOX_BIN, next to this binary, or the
    /// workspace's target/release or target/debug).
    #[arg(long, value_name = "PATH")]
    sandbox: Option<PathBuf>,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ExecutorArg {
    Model,
    SandboxBorrowed,
    SandboxPty,
    All,
}

fn corpus_dir() -> PathBuf {
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    if built.is_dir() {
        built
    } else {
        PathBuf::from("conformance/scenarios")
    }
}

fn load(path: &Path, out: &mut Vec<Scenario>) -> Result<()> {
    if path.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .with_context(|| format!("reading {}", path.display()))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "scn"))
            .collect();
        files.sort();
        for f in files {
            load(&f, out)?;
        }
        return Ok(());
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let s = Scenario::parse(&text).with_context(|| format!("parsing {}", path.display()))?;
    out.push(s);
    Ok(())
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let mut scenarios = Vec::new();
    if let Some(seed) = cli.replay {
        scenarios.push(generate::scenario(seed, cli.steps));
    } else {
        if !cli.no_corpus {
            if cli.files.is_empty() {
                load(&corpus_dir(), &mut scenarios)?;
            }
            for f in &cli.files {
                load(f, &mut scenarios)?;
            }
        }
        for i in 0..cli.random {
            let seed = generate::scenario_seed(cli.seed, i);
            scenarios.push(generate::scenario(seed, cli.steps));
        }
    }
    if cli.print {
        for s in &scenarios {
            println!("{s}");
        }
        return Ok(());
    }
    if cli.sentry_only {
        for s in &scenarios {
            println!("== {} (sentry)", s.name);
            for l in sentry_exec::run(s).lines() {
                println!("{l}");
            }
        }
        return Ok(());
    }
    let Some(puppet) = linux_exec::default_puppet() else {
        bail!(
            "conformance-puppet not found next to this binary: build it too \
             (cargo build --release -p sandbox-conformance) or set CONFORMANCE_PUPPET"
        );
    };
    let sandbox = || -> Result<PathBuf> {
        cli.sandbox
            .clone()
            .or_else(linux_exec::default_sandbox)
            .context(
                "the sandbox binary was not found: build it (cargo build --release --bin \
                 sandbox) or pass --sandbox PATH",
            )
    };
    let sandboxed = |tty| -> Result<Executor> {
        Ok(Executor::Sandbox {
            sandbox: sandbox()?,
            tty,
        })
    };
    let executors = match cli.executor {
        ExecutorArg::Model => vec![Executor::Model],
        ExecutorArg::SandboxBorrowed => vec![sandboxed(SandboxTty::Borrowed)?],
        ExecutorArg::SandboxPty => vec![sandboxed(SandboxTty::Owned)?],
        ExecutorArg::All => vec![
            Executor::Model,
            sandboxed(SandboxTty::Borrowed)?,
            sandboxed(SandboxTty::Owned)?,
        ],
    };
    let jobs = cli
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let mut total_divergences = 0;
    for executor in &executors {
        total_divergences += run_executor(&cli, &scenarios, &puppet, executor, jobs)?;
    }
    if total_divergences > 0 {
        std::process::exit(1);
    }
    Ok(())
}

/// Compares every scenario on Linux and `executor`, prints the report; returns the
/// number of divergences.
fn run_executor(
    cli: &Cli,
    scenarios: &[Scenario],
    puppet: &Path,
    executor: &Executor,
    jobs: usize,
) -> Result<usize> {
    let name = executor.name();
    let done = std::sync::atomic::AtomicUsize::new(0);
    let total = scenarios.len();
    let results = runner::compare_all_with(scenarios, puppet, executor, jobs, &|_| {
        let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        if total >= 2000 && n.is_multiple_of(1000) {
            eprintln!("{name}: {n} of {total} scenarios played");
        }
    });
    let mut divergences = 0;
    let mut races = 0;
    let mut sandbox_races = 0;
    let mut open_limits = 0;
    for c in &results {
        if cli.show {
            print_traces(c);
        }
        if let Some(d) = &c.linux_nondeterminism {
            races += 1;
            println!(
                "NONDETERMINISTIC ON LINUX {} (two Linux runs differ; not counted):",
                c.scenario.name
            );
            print!("{d}");
            println!();
            continue;
        }
        if let Some(d) = &c.candidate_nondeterminism {
            sandbox_races += 1;
            println!(
                "RACED IN THE SANDBOX {} (a rerun agreed with Linux; not counted):",
                c.scenario.name
            );
            print!("{d}");
            println!();
            continue;
        }
        let Some(diff) = &c.diff else {
            continue;
        };
        if c.stops_at_a_borrowed_open_limit() {
            open_limits += 1;
            let step = diff
                .lines()
                .find(|l| l.trim_start().starts_with("step "))
                .unwrap_or_default();
            println!(
                "BORROWED OPEN LIMIT {} ({}; documented, not counted)",
                c.scenario.name,
                step.trim()
            );
            continue;
        }
        divergences += 1;
        println!("DIVERGENCE ({name}) {}", c.scenario.name);
        print!("{diff}");
        let mut reported = c.scenario.clone();
        if c.scenario.name.starts_with("random-") && !cli.no_shrink {
            reported = runner::shrink(&c.scenario, &mut |s| {
                // Not towards an open() limit of the borrowed terminal (counted apart).
                let c = runner::compare_with(s, puppet, executor);
                c.diverges() && !c.stops_at_a_borrowed_open_limit()
            });
            println!(
                "  shrunk from {} to {} steps (replay the original: conformance --replay {}):",
                c.scenario.steps.len(),
                reported.steps.len(),
                c.scenario.name.trim_start_matches("random-")
            );
            for l in reported.to_string().lines() {
                println!("    {l}");
            }
            if let Some(d) = runner::compare_with(&reported, puppet, executor).diff {
                print!("{d}");
            }
        }
        if let Some(dir) = &cli.save {
            std::fs::create_dir_all(dir)?;
            let path = dir.join(format!("{}.scn", reported.name));
            std::fs::write(&path, reported.to_string())
                .with_context(|| format!("writing {}", path.display()))?;
        }
        println!();
    }
    if races > 0 {
        println!("{races} scenarios raced on Linux (not counted)");
    }
    if sandbox_races > 0 {
        println!("{sandbox_races} scenarios raced in the sandbox (not counted)");
    }
    if open_limits > 0 {
        println!(
            "{open_limits} scenarios compared up to an open() of the borrowed terminal \
             (its documented limit; not counted)"
        );
    }
    println!(
        "{} scenarios, {divergences} divergences (linux vs {name})",
        results.len()
    );
    Ok(divergences)
}

fn print_traces(c: &Comparison) {
    println!("== {} (linux)", c.scenario.name);
    for l in c.linux.lines() {
        println!("{l}");
    }
    println!("== {} ({})", c.scenario.name, c.executor_name);
    for l in c.sentry.lines() {
        println!("{l}");
    }
}
