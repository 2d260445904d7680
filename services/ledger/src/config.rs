//! The ledger's own settings, read from arguments and the environment next to the runtime's.

use std::time::Duration;

use clap::Parser;
use phoenix_runtime::config::positive_duration;

#[derive(Debug, Clone, Parser)]
#[command(no_binary_name = true)]
pub struct LedgerSettings {
    /// How long an idempotency key is remembered; a retry after that is a new request.
    #[arg(long, env = "PHOENIX_LEDGER_IDEMPOTENCY_TTL", default_value = "24h", value_parser = positive_duration)]
    pub idempotency_ttl: Duration,
    /// How often expired pending transfers, reservations and idempotency keys are swept.
    #[arg(long, env = "PHOENIX_LEDGER_SWEEP_INTERVAL", default_value = "1s", value_parser = positive_duration)]
    pub sweep_interval: Duration,
    /// A running import batch that took no call for this long is failed as stale (its client
    /// stopped); a rerun of the import then finds what it imported as duplicates.
    #[arg(long, env = "PHOENIX_LEDGER_IMPORT_STALE_AFTER", default_value = "1h", value_parser = positive_duration)]
    pub import_stale_after: Duration,
    /// An account's state is snapshotted every this many events of its stream.
    #[arg(long, env = "PHOENIX_LEDGER_SNAPSHOT_EVERY", default_value_t = 100, value_parser = clap::value_parser!(i64).range(1..))]
    pub snapshot_every: i64,
    /// How long a posting writer waits for more single-operation calls (CreateTransfer,
    /// PostPendingTransfer, VoidPendingTransfer, ReverseTransfer) to write in the same
    /// transaction as the first, while other calls are in flight; a lone call never waits.
    /// `0` turns coalescing off: each call is its own transaction.
    #[arg(long, env = "PHOENIX_LEDGER_COALESCE_WINDOW", default_value = "1ms", value_parser = coalesce_window)]
    pub coalesce_window: Duration,
    /// How many posting writers take turns writing coalesced groups (each keeps a pooled
    /// connection while calls keep coming, when the pool has more connections than writers).
    #[arg(long, env = "PHOENIX_LEDGER_COALESCE_WRITERS", default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub coalesce_writers: u16,
    /// Most calls written in one coalesced transaction.
    #[arg(long, env = "PHOENIX_LEDGER_COALESCE_MAX_CALLS", default_value_t = 256, value_parser = clap::value_parser!(u16).range(1..=4096))]
    pub coalesce_max_calls: u16,
}

/// A coalescing window: 0 (off) up to 100 ms, beyond which a lone call's wait would show.
fn coalesce_window(value: &str) -> Result<Duration, String> {
    phoenix_runtime::config::duration(value).and_then(|d| {
        if d <= Duration::from_millis(100) {
            Ok(d)
        } else {
            Err("must be at most 100ms (0 turns coalescing off)".to_owned())
        }
    })
}

impl LedgerSettings {
    /// The settings from `args` (`--name=value`, what tests and embedding programs pass), then
    /// `PHOENIX_LEDGER_*`, then the defaults.
    pub fn parse(args: &[String]) -> anyhow::Result<Self> {
        Self::try_parse_from(args).map_err(|e| anyhow::anyhow!("ledger settings: {e}"))
    }
}
