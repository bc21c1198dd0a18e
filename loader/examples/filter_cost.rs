//! What installing each of the sandbox's seccomp filters costs: the kernel compiles a
//! new filter to native code and runs it over every syscall number to fill its action
//! cache, so the cost depends on the program's shape as much as on its length.
//!
//! Each filter is installed on a fresh thread of this process (a filter without TSYNC
//! confines the calling thread only; the thread then exits), timed around the
//! `seccomp()` calls, 41 times; the median and minimum are printed.
//!
//! ```sh
//! cargo run --release -p sandbox-loader --example filter_cost
//! ```

use std::time::{Duration, Instant};

use sandbox_loader::seccomp::{
    allow_filter, deny_filter, holder_filter, init_filter, install, program_filter, Filter,
};

const RUNS: usize = 41;

/// The time `filter` takes to install on a new thread, or why it could not.
fn install_once(filter: &Filter) -> Result<Duration, String> {
    std::thread::scope(|s| {
        s.spawn(|| {
            let start = Instant::now();
            install(filter).map_err(|e| e.to_string())?;
            Ok(start.elapsed())
        })
        .join()
        .map_err(|_| "the measuring thread panicked".to_string())?
    })
}

fn main() -> Result<(), String> {
    let filters: Vec<(&str, Filter)> = vec![
        (
            "loader's allow-list",
            allow_filter(&[]).map_err(|e| e.to_string())?,
        ),
        (
            "init's allow-list",
            init_filter().map_err(|e| e.to_string())?,
        ),
        (
            "the holder's allow-list",
            holder_filter().map_err(|e| e.to_string())?,
        ),
        (
            "the program's policy",
            program_filter::<&str>(&[]).map_err(|e| e.to_string())?,
        ),
        (
            "deny list (seccompiler)",
            deny_filter().map_err(|e| e.to_string())?,
        ),
    ];
    println!(
        "{:<26} {:>22} {:>10} {:>10}",
        "filter", "instructions", "median µs", "min µs"
    );
    for (name, filter) in &filters {
        let mut times = (0..RUNS)
            .map(|_| install_once(filter))
            .collect::<Result<Vec<_>, _>>()?;
        times.sort();
        let lens: Vec<usize> = filter.programs().map(<[_]>::len).collect();
        println!(
            "{:<26} {:>22} {:>10.1} {:>10.1}",
            name,
            format!("{lens:?}"),
            times[RUNS / 2].as_secs_f64() * 1e6,
            times[0].as_secs_f64() * 1e6
        );
    }
    Ok(())
}
