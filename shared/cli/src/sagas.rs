//! `phoenix sagas list|show|retry|cancel`: the coordinator's sagas from the command line,
//! through its `SagaService` (a running coordinator with `--target`, or one started here on the
//! embedded database or DATABASE_URL).

use phoenix_proto::coordinator::v1 as pb;
use phoenix_proto::coordinator::v1::saga_service_client::SagaServiceClient;
use phoenix_runtime::RuntimeConfig;

use crate::reached::Reached;

#[derive(Debug, clap::Args)]
pub struct SagasArgs {
    #[command(subcommand)]
    action: SagasAction,
}

/// Where the coordinator is and who calls it.
#[derive(Debug, clap::Args)]
struct Reach {
    /// A running coordinator, e.g. http://127.0.0.1:50057, instead of one started here.
    #[arg(long)]
    target: Option<String>,
    /// Bearer token sent with each call (a `coordinator-admin`'s) when authentication is on.
    #[arg(long, env = "PHOENIX_TOKEN", hide_env_values = true)]
    token: Option<String>,
    #[command(flatten)]
    runtime: RuntimeConfig,
}

#[derive(Debug, clap::Subcommand)]
enum SagasAction {
    /// Lists sagas, newest first.
    List {
        /// Only sagas in this state.
        #[arg(long, value_parser = ["running", "compensating", "completed", "compensated", "stuck"])]
        state: Option<String>,
        /// Only sagas of this type (purchase, take_decision, …).
        #[arg(long = "type")]
        saga_type: Option<String>,
        /// Only sagas of this user.
        #[arg(long)]
        user: Option<String>,
        /// Only sagas created at or after this RFC 3339 time.
        #[arg(long)]
        since: Option<String>,
        /// Only sagas created before this RFC 3339 time.
        #[arg(long)]
        until: Option<String>,
        /// Sagas per page (at most 500).
        #[arg(long, default_value_t = 50)]
        limit: i32,
        /// The page after the one that printed this token.
        #[arg(long)]
        page_token: Option<String>,
        #[command(flatten)]
        reach: Reach,
    },
    /// Shows one saga: input, state, every step with attempts, timings and last error, its log.
    Show {
        saga_id: String,
        #[command(flatten)]
        reach: Reach,
    },
    /// Resumes a STUCK saga's compensation (or, after a pivot, its forward steps).
    Retry {
        saga_id: String,
        #[command(flatten)]
        reach: Reach,
    },
    /// Compensates a running saga now.
    Cancel {
        saga_id: String,
        #[command(flatten)]
        reach: Reach,
    },
}

pub async fn run(args: SagasArgs) -> anyhow::Result<()> {
    let reach = match &args.action {
        SagasAction::List { reach, .. }
        | SagasAction::Show { reach, .. }
        | SagasAction::Retry { reach, .. }
        | SagasAction::Cancel { reach, .. } => reach,
    };
    let reached = Reached::start(
        phoenix_coordinator::spec(),
        reach.target.clone(),
        reach.runtime.clone(),
    )
    .await?;
    let client = SagaServiceClient::new(reached.channel.clone());
    let result = act(client, reach.token.clone(), args.action).await;
    reached.close().await;
    result
}

fn request<T>(message: T, token: Option<&str>) -> anyhow::Result<tonic::Request<T>> {
    let mut request = tonic::Request::new(message);
    if let Some(token) = token {
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {token}")
                .parse()
                .map_err(|_| anyhow::anyhow!("--token: not a valid header value"))?,
        );
    }
    Ok(request)
}

fn time(flag: &str, value: Option<&str>) -> anyhow::Result<Option<prost_types::Timestamp>> {
    value
        .map(|text| {
            chrono::DateTime::parse_from_rfc3339(text)
                .map(|t| phoenix_runtime::convert::timestamp(t.with_timezone(&chrono::Utc)))
                .map_err(|e| anyhow::anyhow!("{flag} {text:?}: not an RFC 3339 time: {e}"))
        })
        .transpose()
}

fn failed(status: tonic::Status) -> anyhow::Error {
    let error = phoenix_runtime::RemoteError::from_status(&status);
    anyhow::anyhow!(
        "{:?} {}: {}",
        error.code,
        if error.reason.is_empty() {
            "-"
        } else {
            &error.reason
        },
        error.message
    )
}

async fn act(
    mut client: SagaServiceClient<tonic::transport::Channel>,
    token: Option<String>,
    action: SagasAction,
) -> anyhow::Result<()> {
    let token = token.as_deref();
    match action {
        SagasAction::List {
            state,
            saga_type,
            user,
            since,
            until,
            limit,
            page_token,
            ..
        } => {
            let state = match state.as_deref() {
                Some("running") => pb::SagaState::Running,
                Some("compensating") => pb::SagaState::Compensating,
                Some("completed") => pb::SagaState::Completed,
                Some("compensated") => pb::SagaState::Compensated,
                Some("stuck") => pb::SagaState::Stuck,
                _ => pb::SagaState::Unspecified,
            };
            let page = client
                .list_sagas(request(
                    pb::ListSagasRequest {
                        state: state.into(),
                        saga_type: saga_type.unwrap_or_default(),
                        user_id: user.unwrap_or_default(),
                        start_time: time("--since", since.as_deref())?,
                        end_time: time("--until", until.as_deref())?,
                        page_size: limit,
                        page_token: page_token.unwrap_or_default(),
                    },
                    token,
                )?)
                .await
                .map_err(failed)?
                .into_inner();
            for saga in &page.sagas {
                println!("{}", summary_line(saga));
            }
            println!("{} sagas", page.sagas.len());
            if !page.next_page_token.is_empty() {
                println!("next page: --page-token {}", page.next_page_token);
            }
            Ok(())
        }
        SagasAction::Show { saga_id, .. } => {
            let answer = client
                .get_saga(request(pb::GetSagaRequest { saga_id }, token)?)
                .await
                .map_err(failed)?
                .into_inner();
            let saga = answer.saga.unwrap_or_default();
            print_saga(&saga);
            println!("log:");
            for record in &answer.log {
                let error = record
                    .error
                    .as_ref()
                    .map(|e| format!(" {} {}: {}", e.code, e.reason, e.message))
                    .unwrap_or_default();
                println!(
                    "  {:>3} {} {} attempt={} generation={} at={}{error}",
                    record.seq,
                    record.kind,
                    if record.step.is_empty() {
                        "-"
                    } else {
                        &record.step
                    },
                    record.attempt,
                    record.generation,
                    when(record.record_time.as_ref()),
                );
            }
            Ok(())
        }
        SagasAction::Retry { saga_id, .. } => {
            let answer = client
                .retry_saga(request(pb::RetrySagaRequest { saga_id }, token)?)
                .await;
            let saga = answer.map_err(failed)?.into_inner().saga;
            let saga = print_after(saga);
            anyhow::ensure!(
                saga.state() != pb::SagaState::Stuck,
                "the saga is STUCK again: see `phoenix sagas show {}`",
                saga.saga_id
            );
            Ok(())
        }
        SagasAction::Cancel { saga_id, .. } => {
            let answer = client
                .cancel_saga(request(pb::CancelSagaRequest { saga_id }, token)?)
                .await;
            print_after(answer.map_err(failed)?.into_inner().saga);
            Ok(())
        }
    }
}

/// Prints the saga an operator's call answered with.
fn print_after(saga: Option<pb::Saga>) -> pb::Saga {
    let saga = saga.unwrap_or_default();
    println!("{}", summary_line(&saga));
    saga
}

fn state_name(state: pb::SagaState) -> &'static str {
    state
        .as_str_name()
        .strip_prefix("SAGA_STATE_")
        .unwrap_or("UNSPECIFIED")
}

fn when(time: Option<&prost_types::Timestamp>) -> String {
    time.and_then(phoenix_runtime::convert::time_from_proto)
        .map_or_else(|| "-".to_owned(), |t| t.to_rfc3339())
}

fn summary_line(saga: &pb::Saga) -> String {
    let failure = saga
        .failure
        .as_ref()
        .map(|f| format!(" failed={}:{}:{}", saga.failed_step, f.code, f.reason))
        .unwrap_or_default();
    format!(
        "{} {} v{} {} user={} created={}{failure}",
        saga.saga_id,
        saga.saga_type,
        saga.definition_version,
        state_name(saga.state()),
        if saga.user_id.is_empty() {
            "-"
        } else {
            &saga.user_id
        },
        when(saga.create_time.as_ref()),
    )
}

fn print_saga(saga: &pb::Saga) {
    println!("{}", summary_line(saga));
    println!(
        "  key={} owner={} generation={}",
        saga.idempotency_key, saga.owner_id, saga.lease_generation
    );
    println!(
        "  deadline={} finished={} traceparent={}",
        when(saga.deadline_time.as_ref()),
        when(saga.finish_time.as_ref()),
        saga.traceparent
    );
    println!("  input={}", saga.input_json);
    println!("steps:");
    for step in &saga.steps {
        let state = step
            .state()
            .as_str_name()
            .strip_prefix("STEP_STATE_")
            .unwrap_or("UNSPECIFIED");
        let error = step
            .last_error
            .as_ref()
            .map(|e| format!(" last_error={} {}: {}", e.code, e.reason, e.message))
            .unwrap_or_default();
        println!(
            "  {} {}{} {state} attempts={} compensation_attempts={} start={} end={}{error}",
            step.index,
            step.name,
            if step.pivot { " (pivot)" } else { "" },
            step.attempts,
            step.compensation_attempts,
            when(step.start_time.as_ref()),
            when(step.end_time.as_ref()),
        );
        if !step.output_json.is_empty() {
            println!("      output={}", step.output_json);
        }
    }
}
