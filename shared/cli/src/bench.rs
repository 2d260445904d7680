//! `phoenix bench <service>`: a service's benchmark, ending with one machine-readable line.

use clap::Subcommand;
use phoenix_runtime::RuntimeConfig;

use crate::reached::Reached;

#[derive(Debug, Subcommand)]
pub enum BenchTarget {
    /// GetUser and BatchGetUsers(100) latency over many users, and the reference client's
    /// cached resolve.
    Directory {
        #[command(flatten)]
        args: phoenix_directory::ops::bench::BenchArgs,
        #[command(flatten)]
        runtime: RuntimeConfig,
    },
    /// SearchSimilar over gRPC vs the same search through SQL, the HNSW build, and recall@10
    /// against exact search, unfiltered and filtered by user.
    Goals {
        #[command(flatten)]
        args: phoenix_goals::ops::bench::BenchArgs,
        #[command(flatten)]
        runtime: RuntimeConfig,
    },
    /// Single transfers over gRPC vs the same write straight through SQL, and batches.
    Ledger {
        #[command(flatten)]
        args: phoenix_ledger::bench::BenchArgs,
        #[command(flatten)]
        runtime: RuntimeConfig,
    },
    /// A mix of AppendMessage, GetContext, SetContext and TakeReadyBuffer/AckBuffer over gRPC
    /// vs the same statements straight through SQL.
    Conversations {
        #[command(flatten)]
        args: phoenix_conversations::ops::bench::BenchArgs,
        #[command(flatten)]
        runtime: RuntimeConfig,
    },
    /// Heartbeats over gRPC vs the same rows through SQL, GetBoard latency, and the day close
    /// of every board.
    Missions {
        #[command(flatten)]
        args: phoenix_missions::ops::bench::BenchArgs,
        #[command(flatten)]
        runtime: RuntimeConfig,
    },
    /// GetFragment personalised for a user and ApplyDecision over gRPC, vs the same decision
    /// rows written straight through SQL.
    Narrative {
        #[command(flatten)]
        args: phoenix_narrative::ops::bench::BenchArgs,
        #[command(flatten)]
        runtime: RuntimeConfig,
    },
    /// Purchase sagas through the coordinator (directory, ledger, narrative and coordinator in
    /// this process), vs the same participant calls made directly without the saga log.
    Sagas {
        #[command(flatten)]
        args: phoenix_coordinator::purchase::bench::BenchArgs,
        #[command(flatten)]
        runtime: RuntimeConfig,
    },
    /// The coordinator's bus end to end (Publish -> delivered to a subscriber -> acknowledged)
    /// on PostgreSQL and on NATS JetStream (nats-server from PATH, started here): events/s and
    /// delivery latency, one line per backend.
    Bus {
        #[command(flatten)]
        args: phoenix_coordinator::bus::bench::BusBenchArgs,
        #[command(flatten)]
        runtime: RuntimeConfig,
    },
}

pub async fn run(target: BenchTarget) -> anyhow::Result<()> {
    match target {
        BenchTarget::Bus { args, runtime } => {
            crate::bench_bus::run(args, runtime).await?;
            Ok(())
        }
        BenchTarget::Sagas { args, runtime } => {
            println!("{}", crate::bench_sagas::run(args, runtime).await?.line());
            Ok(())
        }
        BenchTarget::Directory { args, runtime } => {
            let reached =
                Reached::start(phoenix_directory::spec(), args.target.clone(), runtime).await?;
            let result = match reached.pool.clone() {
                Some(pool) => phoenix_directory::ops::bench::run(&reached.url, pool, &args).await,
                None => Err(anyhow::anyhow!(
                    "loading the users needs the database: set DATABASE_URL (or the service's PHOENIX_<SERVICE>_DATABASE_URL) with --target"
                )),
            };
            reached.close().await;
            println!("{}", result?.line());
            Ok(())
        }
        BenchTarget::Goals { args, runtime } => {
            let reached =
                Reached::start(phoenix_goals::spec(), args.target.clone(), runtime).await?;
            let result = match reached.pool.clone() {
                Some(pool) => phoenix_goals::ops::bench::run(&reached.url, pool, &args).await,
                None => Err(anyhow::anyhow!(
                    "loading the vectors needs the database: set DATABASE_URL (or the service's PHOENIX_<SERVICE>_DATABASE_URL) with --target"
                )),
            };
            reached.close().await;
            println!("{}", result?.line());
            Ok(())
        }
        BenchTarget::Ledger { args, runtime } => {
            let reached =
                Reached::start(phoenix_ledger::spec(), args.target.clone(), runtime).await?;
            let result =
                phoenix_ledger::bench::run(reached.channel.clone(), reached.pool.clone(), &args)
                    .await;
            reached.close().await;
            println!("{}", result?.line());
            Ok(())
        }
        BenchTarget::Conversations { args, runtime } => {
            let reached =
                Reached::start(phoenix_conversations::spec(), args.target.clone(), runtime).await?;
            let result = match reached.pool.clone() {
                Some(pool) => {
                    phoenix_conversations::ops::bench::run(&reached.url, pool, &args).await
                }
                None => Err(anyhow::anyhow!(
                    "loading the contacts needs the database: set DATABASE_URL (or the service's PHOENIX_<SERVICE>_DATABASE_URL) with --target"
                )),
            };
            reached.close().await;
            println!("{}", result?.line());
            Ok(())
        }
        BenchTarget::Missions { args, mut runtime } => {
            // The day close is measured by moving the service's clock on, and by the one call
            // the benchmark times: the schedule is pushed out of the way.
            runtime.service_args.extend([
                "--clock=manual".to_owned(),
                "--day-close-interval=24h".to_owned(),
            ]);
            let reached =
                Reached::start(phoenix_missions::spec(), args.target.clone(), runtime).await?;
            let result = match reached.pool.clone() {
                Some(pool) => phoenix_missions::ops::bench::run(&reached.url, pool, &args).await,
                None => Err(anyhow::anyhow!(
                    "loading the boards needs the database: set DATABASE_URL (or the service's PHOENIX_<SERVICE>_DATABASE_URL) with --target"
                )),
            };
            reached.close().await;
            println!("{}", result?.line());
            Ok(())
        }
        BenchTarget::Narrative { args, runtime } => {
            let reached =
                Reached::start(phoenix_narrative::spec(), args.target.clone(), runtime).await?;
            let result = match reached.pool.clone() {
                Some(pool) => phoenix_narrative::ops::bench::run(&reached.url, pool, &args).await,
                None => Err(anyhow::anyhow!(
                    "loading the story needs the database: set DATABASE_URL (or the service's PHOENIX_<SERVICE>_DATABASE_URL) with --target"
                )),
            };
            reached.close().await;
            println!("{}", result?.line());
            Ok(())
        }
    }
}
