//! A deterministic simulation of the deployed system (issue 12, after SlateDB's simulation
//! crate and its failing object store).
//!
//! One seed drives a simulated clock (tokio's paused time), the randomness of every engine,
//! an object store that fails (errors, lost responses, timeouts, latency, abrupt ends, and
//! stalls longer than collection's grace period), a model and a tool that fail for a while,
//! and the topology the Terraform module deploys: a schedule tick every minute that claims
//! every partition with backlog, continuations that start beside the next tick, ingest
//! appends with retried duplicates (cold and warm appenders), inputs that wait for a time or
//! for a signal appended after them (durable waits), collection every ten minutes
//! with the engine's real grace period, and a dispatcher that reads every commit. Each
//! invocation has the process role's permissions.
//!
//! After every tick it checks that no output was committed twice, no at-most-once call made
//! twice, no journaled call made again, no timer fired early, and every repeated call carried
//! its first idempotency key. At the end, after the faults stop: every wait ended, every
//! input's outputs committed exactly once,
//! state applied once per event, no partition wedged, and storage holding only live runs, the
//! retained log and what the next invocation needs.
//!
//! `cargo nextest run -p weir-tests --test simulation` runs the CI seeds; `WEIR_SIM_SEEDS=N`
//! runs seeds 0 to N-1; `WEIR_SIM_SEED=S` runs one, as the command a failure prints.

mod clocked;
mod world;

use world::World;

/// Seeds CI runs.
const CI_SEEDS: u64 = 16;

#[test]
fn the_deployed_topology_keeps_every_guarantee() {
    let seeds: Vec<u64> = match (std::env::var("WEIR_SIM_SEED"), std::env::var("WEIR_SIM_SEEDS")) {
        (Ok(seed), _) => vec![seed.parse().expect("WEIR_SIM_SEED is a number")],
        (_, Ok(count)) => (0..count.parse().expect("WEIR_SIM_SEEDS is a number")).collect(),
        _ => (0..CI_SEEDS).collect(),
    };
    for seed in seeds {
        let result = simulate(seed);
        if std::env::var_os("WEIR_SIM_VERBOSE").is_some() {
            eprintln!("seed {seed}: {result:?}");
        }
        if let Err(failure) = result {
            panic!(
                "simulation seed {seed} failed: {failure}\nreproduce: WEIR_SIM_SEED={seed} cargo test -p weir-tests --test simulation"
            );
        }
    }
}

/// The same seed, run twice, draws the same schedule: every request, call and commit.
#[test]
fn a_seed_replays_exactly() {
    let first = simulate(7).unwrap();
    let second = simulate(7).unwrap();
    assert_eq!(first, second);
}

/// Runs one seed; returns a fingerprint of everything that happened.
fn simulate(seed: u64) -> Result<world::Fingerprint, String> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
    runtime.block_on(World::run(seed))
}
