//! Load generation for the `phoenix bench` commands: N concurrent clients calling in a loop for
//! a while, with throughput and latency percentiles. Benchmarks print their numbers; tests never
//! assert on timings.

use std::time::{Duration, Instant};

/// What one measured phase did.
#[derive(Debug, Clone, Copy, Default)]
pub struct Phase {
    /// Operations made (a call may make several, e.g. a batch).
    pub operations: u64,
    pub errors: u64,
    pub seconds: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

impl Phase {
    pub fn per_second(&self) -> f64 {
        self.operations as f64 / self.seconds.max(f64::EPSILON)
    }

    /// Prints the phase's figures on standard error, the unit naming what one operation is
    /// (`transfers`, `heartbeats`): `bench: <name> <rate> <unit>/s  p50 …  p99 …  (…)`.
    pub fn report(&self, name: &str, unit: &str) {
        eprintln!(
            "bench: {name:<30} {:>9.0} {unit}/s  p50 {:>6.2} ms  p99 {:>6.2} ms  ({} {unit}, {} errors, {:.1} s)",
            self.per_second(),
            self.p50_ms,
            self.p99_ms,
            self.operations,
            self.errors,
            self.seconds
        );
    }
}

/// Runs `clients` loops of `call(client index)` until `duration` has passed. Each call returns
/// how many operations it made; a call that made none ends its client (the work ran out). A
/// failed call is counted and reported (the first three), and the loop goes on.
pub async fn drive<F, Fut>(clients: usize, duration: Duration, call: F) -> anyhow::Result<Phase>
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = anyhow::Result<u64>> + Send,
{
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = (0..clients)
        .map(|index| {
            let call = call.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let (mut operations, mut errors) = (0u64, 0u64);
                while Instant::now() < deadline {
                    let sent = Instant::now();
                    match call(index).await {
                        Ok(0) => break,
                        Ok(made) => {
                            operations += made;
                            latencies.push(sent.elapsed());
                        }
                        Err(error) => {
                            errors += 1;
                            if errors <= 3 {
                                eprintln!("bench: call failed: {error:#}");
                            }
                        }
                    }
                }
                (operations, errors, latencies)
            })
        })
        .collect();
    let mut phase = Phase::default();
    let mut latencies = Vec::new();
    for task in tasks {
        let (operations, errors, mut own) = task.await?;
        phase.operations += operations;
        phase.errors += errors;
        latencies.append(&mut own);
    }
    phase.seconds = started.elapsed().as_secs_f64();
    latencies.sort();
    let percentile = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1_000.0)
    };
    phase.p50_ms = percentile(0.50);
    phase.p99_ms = percentile(0.99);
    Ok(phase)
}

/// `count` channels to `url`, each its own connection (TCP_NODELAY on), so concurrent clients
/// do not share one HTTP/2 connection.
pub async fn channels(url: &str, count: usize) -> anyhow::Result<Vec<tonic::transport::Channel>> {
    let mut channels = Vec::with_capacity(count);
    for _ in 0..count {
        channels.push(
            tonic::transport::Channel::from_shared(url.to_owned())?
                .tcp_nodelay(true)
                .connect()
                .await?,
        );
    }
    Ok(channels)
}

/// A cheap pseudo-random index below `len` for call number `seed` (xorshift).
pub fn pick(seed: u64, len: usize) -> usize {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    usize::try_from(x % (len.max(1) as u64)).unwrap_or(0)
}

/// The load a benchmark drives, as `phoenix bench` flags: `--clients` concurrent clients (each
/// on its own connection), `--duration` per measured phase, `--warmup` of unmeasured calls.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct LoadArgs {
    /// Concurrent clients, each on its own connection.
    #[arg(long, default_value_t = 32)]
    pub clients: usize,
    /// Length of each measured phase.
    #[arg(long, default_value = "10s", value_parser = crate::config::positive_duration)]
    pub duration: Duration,
    /// Unmeasured calls before the first phase (connections open, statements prepared).
    #[arg(long, default_value = "3s", value_parser = crate::config::positive_duration)]
    pub warmup: Duration,
}
