//! Which backend the bus runs on, and the NATS JetStream backend's settings: the `--bus-*`
//! service arguments, then the environment (`PHOENIX_BUS_*`), then the defaults.

use std::time::Duration;

use clap::{Parser, ValueEnum};

/// Where the bus keeps its events and deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// The coordinator's own tables (the default, and what the embedded setup runs).
    Postgres,
    /// A NATS JetStream stream, with the coordinator's tables for groups, outstanding
    /// deliveries, processed ids and dead letters.
    Nats,
}

/// The bus's backend settings.
#[derive(Debug, Clone, Parser)]
#[command(no_binary_name = true)]
pub struct BusSettings {
    /// `postgres` (default) or `nats`.
    #[arg(
        long,
        env = "PHOENIX_BUS_BACKEND",
        value_enum,
        default_value = "postgres"
    )]
    pub bus_backend: Backend,
    /// The NATS server(s) to connect to, e.g. `nats://127.0.0.1:4222` (comma-separated for a
    /// cluster); required with `--bus-backend=nats`.
    #[arg(long, env = "PHOENIX_BUS_NATS_URL")]
    pub bus_nats_url: Option<String>,
    /// The JetStream stream's name; its subjects are `<stream>.>`.
    #[arg(long, env = "PHOENIX_BUS_NATS_STREAM", default_value = "PHOENIX_BUS", value_parser = stream_name)]
    pub bus_nats_stream: String,
    /// Subjects per priority an aggregate's events are spread over by a hash of its key: each is
    /// one durable consumer per group with one delivery in flight, so this many aggregates of a
    /// priority are delivered in parallel. Fixed for the life of a stream.
    #[arg(long, env = "PHOENIX_BUS_NATS_PARTITIONS", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub bus_nats_partitions: u16,
    /// JetStream's duplicate window: a `Nats-Msg-Id` seen within it is dropped by the stream;
    /// past it, each group's processed-ids record drops it.
    #[arg(long, env = "PHOENIX_BUS_NATS_DUPLICATE_WINDOW", default_value = "2m", value_parser = phoenix_runtime::config::positive_duration)]
    pub bus_nats_duplicate_window: Duration,
    /// Copies of the stream a NATS cluster keeps (1 for a single server).
    #[arg(long, env = "PHOENIX_BUS_NATS_REPLICAS", default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=5))]
    pub bus_nats_replicas: u8,
}

impl BusSettings {
    /// From the `--bus-*` service arguments, then the environment, then the defaults; the
    /// other service arguments belong to other settings.
    pub fn parse(service_args: &[String]) -> anyhow::Result<Self> {
        let own = service_args.iter().filter(|a| a.starts_with("--bus-"));
        let settings = <Self as Parser>::try_parse_from(own)
            .map_err(|e| anyhow::anyhow!("the bus settings (PHOENIX_BUS_*): {e}"))?;
        if settings.bus_backend == Backend::Nats && settings.bus_nats_url.is_none() {
            anyhow::bail!("PHOENIX_BUS_BACKEND=nats needs PHOENIX_BUS_NATS_URL (--bus-nats-url)");
        }
        Ok(settings)
    }
}

fn stream_name(value: &str) -> Result<String, String> {
    if !value.is_empty()
        && value.len() <= 64
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        Ok(value.to_owned())
    } else {
        Err(format!(
            "{value:?}: 1 to 64 letters, digits, '_' or '-' (a JetStream stream name that is also a subject token)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_by_default_and_nats_needs_a_url() {
        let parse = |args: &[&str]| {
            BusSettings::parse(&args.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>())
        };
        // The environment of a test run sets none of these.
        assert_eq!(parse(&[]).unwrap().bus_backend, Backend::Postgres);
        let error = parse(&["--bus-backend=nats"]).unwrap_err().to_string();
        assert!(error.contains("PHOENIX_BUS_NATS_URL"), "{error}");
        let nats = parse(&[
            "--bus-backend=nats",
            "--bus-nats-url=nats://127.0.0.1:1",
            "--other=1",
        ])
        .unwrap();
        assert_eq!(
            (nats.bus_nats_stream.as_str(), nats.bus_nats_partitions),
            ("PHOENIX_BUS", 8)
        );
        let error = parse(&["--bus-nats-stream=a.b"]).unwrap_err().to_string();
        assert!(error.contains("stream name"), "{error}");
        assert!(parse(&["--bus-nats-partitions=0"]).is_err());
    }
}
