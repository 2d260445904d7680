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
}

impl LedgerSettings {
    /// The settings from `args` (`--name=value`, what tests and embedding programs pass), then
    /// `PHOENIX_LEDGER_*`, then the defaults.
    pub fn parse(args: &[String]) -> anyhow::Result<Self> {
        Self::try_parse_from(args).map_err(|e| anyhow::anyhow!("ledger settings: {e}"))
    }
}
