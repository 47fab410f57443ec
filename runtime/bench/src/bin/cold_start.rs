//! `cold-start`: the init time of Lambda function binaries under the emulator, as Lambda
//! reports it (`Init Duration`: from the process's start to its first request for work).
//!
//! ```sh
//! cargo run --release -p weir-bench --bin cold-start -- --samples 30 \
//!     --env WEIR_STORE=file:///tmp/cold --env WEIR_AGENT=a --env WEIR_SINK=sqs:http://127.0.0.1:9/1/q \
//!     target/lambda/weir-dispatch/bootstrap other/bootstrap
//! ```
//!
//! Each sample starts a fresh emulator with the binary as its one function and invokes it
//! once with `{}`; what the invocation answers does not matter, only how long the runtime
//! took to ask for it.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use weir_emulator::{Emulator, FunctionSpec, LogStream};

/// The init time of function binaries under the emulator.
#[derive(Debug, Parser)]
struct Args {
    /// Cold starts per binary.
    #[arg(long, default_value_t = 20)]
    samples: usize,
    /// A variable of each function, `NAME=VALUE`; repeatable.
    #[arg(long = "env", value_parser = parse_variable)]
    env: Vec<(String, String)>,
    /// The function binaries (`bootstrap` files).
    #[arg(required = true)]
    binaries: Vec<PathBuf>,
}

fn parse_variable(text: &str) -> Result<(String, String), String> {
    let (name, value) = text.split_once('=').ok_or_else(|| format!("`{text}` is not NAME=VALUE"))?;
    Ok((name.to_string(), value.to_string()))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    println!("| binary | size MB | samples | init p50 ms | init p90 ms | min ms | max ms |");
    println!("|---|---|---|---|---|---|---|");
    for binary in &args.binaries {
        let size = std::fs::metadata(binary).map_err(|e| format!("{}: {e}", binary.display()))?.len();
        let mut inits = Vec::with_capacity(args.samples);
        for _ in 0..args.samples {
            inits.push(init_ms(binary, &args.env).await?);
        }
        inits.sort_by(f64::total_cmp);
        let at = |q: f64| inits[((inits.len() - 1) as f64 * q).round() as usize];
        println!(
            "| {} | {:.1} | {} | {:.1} | {:.1} | {:.1} | {:.1} |",
            binary.display(),
            size as f64 / 1e6,
            inits.len(),
            at(0.5),
            at(0.9),
            inits[0],
            inits[inits.len() - 1]
        );
    }
    Ok(())
}

/// One cold start of `binary`: its Init Duration in milliseconds.
async fn init_ms(binary: &PathBuf, env: &[(String, String)]) -> Result<f64, Box<dyn std::error::Error>> {
    let mut spec = FunctionSpec::new("cold", binary).with_timeout(Duration::from_secs(30));
    for (name, value) in env {
        spec = spec.with_env(name, value);
    }
    let emulator = Emulator::builder().function(spec).start().await?;
    let mut logs = emulator.subscribe_logs();
    emulator.invoke("cold", "{}").await?;
    let mut init = None;
    while let Ok(line) = logs.try_recv() {
        if line.stream == LogStream::Platform && line.text.starts_with("REPORT") {
            init = line.text.split("Init Duration: ").nth(1).and_then(|rest| rest.trim_end_matches(" ms").parse().ok());
        }
    }
    emulator.shutdown().await;
    init.ok_or_else(|| format!("{}: no Init Duration in the REPORT line", binary.display()).into())
}
