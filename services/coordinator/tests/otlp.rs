//! What a collector receives: the services export over OTLP/gRPC to a receiver in this test
//! (the process's telemetry, installed before any service, points at it), and one purchase
//! saga is read back as a span tree: the coordinator's server span, its client calls to the
//! ledger, the ledger's server spans under them, and their SQL statements, each span with its
//! own service's `service.name`. A NOT_FOUND call is an error for the client only; an INTERNAL
//! one (the ledger's table gone) for both sides, and for the statement that failed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use phoenix_coordinator::purchase::fixture::ShopFixture;
use phoenix_proto::coordinator::v1 as pb;
use phoenix_proto::coordinator::v1::coordinator_service_client::CoordinatorServiceClient;
use phoenix_proto::ledger::v1 as ledger;
use phoenix_proto::ledger::v1::ledger_service_client::LedgerServiceClient;
use phoenix_runtime::RuntimeConfig;
use phoenix_runtime::client::ClientBuilder;
use phoenix_runtime::telemetry::{self, TelemetryGuard};
use phoenix_testkit::{spawn, spawn_with};
use tonic::Code;
use uuid::Uuid;

const PURCHASE: &str = "phoenix.coordinator.v1.CoordinatorService/Purchase";
const GET_ACCOUNT: &str = "phoenix.ledger.v1.LedgerService/GetAccount";

/// A span as the receiver got it, with the `service.name` of its resource.
#[derive(Debug, Clone)]
struct Received {
    service: String,
    span: opentelemetry_proto::tonic::trace::v1::Span,
}

impl Received {
    fn attribute(&self, key: &str) -> Option<&Value> {
        attribute(&self.span.attributes, key)
    }

    fn string(&self, key: &str) -> Option<&str> {
        match self.attribute(key) {
            Some(Value::StringValue(value)) => Some(value),
            _ => None,
        }
    }

    fn int(&self, key: &str) -> Option<i64> {
        match self.attribute(key) {
            Some(Value::IntValue(value)) => Some(*value),
            _ => None,
        }
    }

    fn kind(&self) -> SpanKind {
        SpanKind::try_from(self.span.kind).unwrap_or(SpanKind::Unspecified)
    }

    fn status(&self) -> (StatusCode, String) {
        let status = self.span.status.clone().unwrap_or_default();
        (
            StatusCode::try_from(status.code).unwrap_or(StatusCode::Unset),
            status.message,
        )
    }
}

fn attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a Value> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|value| value.value.as_ref())
}

/// The OTLP/gRPC trace receiver: keeps every span exported to it.
#[derive(Debug, Clone, Default)]
struct Receiver(Arc<Mutex<Vec<Received>>>);

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut received = self.0.lock().expect("lock");
        for resource_spans in request.into_inner().resource_spans {
            let service = resource_spans
                .resource
                .as_ref()
                .and_then(|r| match attribute(&r.attributes, "service.name") {
                    Some(Value::StringValue(name)) => Some(name.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            for scope in resource_spans.scope_spans {
                received.extend(scope.spans.into_iter().map(|span| Received {
                    service: service.clone(),
                    span,
                }));
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

impl Receiver {
    async fn start() -> (Self, String) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let endpoint = format!("http://{}", listener.local_addr().expect("address"));
        let receiver = Self::default();
        let server = tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(receiver.clone()))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener));
        tokio::spawn(server);
        (receiver, endpoint)
    }

    /// Flushes the exporters until `found` finds what it looks for in what arrived.
    async fn wait_for<T>(
        &self,
        telemetry: &Arc<TelemetryGuard>,
        what: &str,
        found: impl Fn(&[Received]) -> Option<T>,
    ) -> T {
        let until = Instant::now() + Duration::from_secs(15);
        loop {
            let flushing = telemetry.clone();
            tokio::task::spawn_blocking(move || flushing.flush())
                .await
                .expect("flush task")
                .expect("flush");
            if let Some(found) = found(&self.0.lock().expect("lock")) {
                return found;
            }
            assert!(Instant::now() < until, "never received {what}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The spans of one trace, by span id.
fn trace_of(spans: &[Received], trace_id: &[u8]) -> HashMap<Vec<u8>, Received> {
    spans
        .iter()
        .filter(|s| s.span.trace_id == trace_id)
        .map(|s| (s.span.span_id.clone(), s.clone()))
        .collect()
}

/// Whether `ancestor` is `span`'s parent, or its parent's, and so on.
fn descends_from(trace: &HashMap<Vec<u8>, Received>, span: &Received, ancestor: &Received) -> bool {
    let mut parent = span.span.parent_span_id.clone();
    while let Some(up) = trace.get(&parent) {
        if up.span.span_id == ancestor.span.span_id {
            return true;
        }
        parent = up.span.parent_span_id.clone();
    }
    false
}

fn is_rpc(span: &Received, kind: SpanKind, name: &str) -> bool {
    span.kind() == kind && span.span.name == name
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purchase_arrives_as_one_tree_from_the_coordinator_to_the_ledger_s_sql() {
    let (receiver, endpoint) = Receiver::start().await;
    let mut settings = RuntimeConfig::defaults().telemetry;
    settings.log_filter = std::env::var("PHOENIX_TEST_LOG").unwrap_or_else(|_| "off".into());
    settings.otlp_endpoint = Some(endpoint);
    let services = ["directory", "ledger", "narrative", "coordinator"];
    let telemetry = Arc::new(
        telemetry::init_for_services(&settings, "phoenix-test", &services)
            .expect("telemetry exporting to the receiver"),
    );

    let (directory, ledger, narrative) = tokio::join!(
        spawn(phoenix_directory::spec()),
        spawn(phoenix_ledger::spec()),
        spawn(phoenix_narrative::spec()),
    );
    let peers = [
        ("directory", directory.url()),
        ("ledger", ledger.url()),
        ("narrative", narrative.url()),
    ];
    let coordinator = spawn_with(phoenix_coordinator::spec(), move |config| {
        for (name, url) in peers {
            config.peers.set_url(name, url);
        }
    })
    .await;
    let mut shop = ShopFixture::open(ledger.channel.clone(), directory.channel.clone(), "shop")
        .await
        .expect("shop");
    shop.offer_plain("gem", "SKU-gem", 5, 30)
        .await
        .expect("offer");
    let user = shop.user("traced@example.com").await.expect("user");
    shop.fund(&user, 100).await.expect("wallet");

    let answer = CoordinatorServiceClient::new(coordinator.channel.clone())
        .purchase(pb::PurchaseRequest {
            tenant_id: shop.tenant_id.clone(),
            user_id: user,
            shop_item_id: "gem".into(),
            quantity: 1,
            idempotency_key: Uuid::new_v4().to_string(),
        })
        .await
        .expect("the purchase answers")
        .into_inner();
    assert!(answer.success, "{answer:?}");

    // The coordinator's server span, the root of the saga's trace.
    let root = receiver
        .wait_for(&telemetry, "the Purchase server span", |spans| {
            spans
                .iter()
                .find(|s| is_rpc(s, SpanKind::Server, PURCHASE))
                .cloned()
        })
        .await;
    assert_eq!(root.service, "phoenix-coordinator");
    assert_eq!(root.string("rpc.system"), Some("grpc"));
    assert_eq!(
        root.string("rpc.service"),
        Some("phoenix.coordinator.v1.CoordinatorService")
    );
    assert_eq!(root.string("rpc.method"), Some("Purchase"));
    assert_eq!(root.int("rpc.grpc.status_code"), Some(0));
    assert_eq!(root.status().0, StatusCode::Unset);

    // Its calls to the ledger, each answered by a ledger server span under it, with the
    // ledger's statements under that. The spans of a call end a little after its answer, so
    // wait until the whole tree is in.
    let trace_id = root.span.trace_id.clone();
    let (trace, calls) = receiver
        .wait_for(&telemetry, "the ledger's side of the saga", |spans| {
            let trace = trace_of(spans, &trace_id);
            let calls: Vec<(Received, Received, Vec<Received>)> = trace
                .values()
                .filter(|s| {
                    s.kind() == SpanKind::Client && s.span.name.starts_with("phoenix.ledger.v1.")
                })
                .filter_map(|client| {
                    let server = trace.values().find(|s| {
                        s.kind() == SpanKind::Server && s.span.parent_span_id == client.span.span_id
                    })?;
                    let statements: Vec<Received> = trace
                        .values()
                        .filter(|s| {
                            s.string("db.system").is_some() && descends_from(&trace, s, server)
                        })
                        .cloned()
                        .collect();
                    (!statements.is_empty()).then(|| (client.clone(), server.clone(), statements))
                })
                .collect();
            (calls.len() >= 2).then_some((trace, calls))
        })
        .await;
    for (client, server, statements) in &calls {
        assert!(
            descends_from(&trace, client, &root),
            "{client:?} under the purchase"
        );
        assert_eq!(client.service, "phoenix-coordinator", "{client:?}");
        assert_eq!(client.string("rpc.system"), Some("grpc"));
        assert_eq!(
            Some(client.span.name.as_str()),
            client
                .string("rpc.service")
                .zip(client.string("rpc.method"))
                .map(|(service, method)| format!("{service}/{method}"))
                .as_deref()
        );
        assert_eq!(client.int("rpc.grpc.status_code"), Some(0));
        assert_eq!(client.status().0, StatusCode::Unset);

        assert_eq!(server.service, "phoenix-ledger", "{server:?}");
        assert_eq!(server.span.name, client.span.name);
        assert_eq!(server.int("rpc.grpc.status_code"), Some(0));

        for statement in statements {
            assert_eq!(statement.service, "phoenix-ledger", "{statement:?}");
            assert_eq!(statement.kind(), SpanKind::Client);
            assert_eq!(statement.string("db.system"), Some("postgresql"));
            let operation = statement.string("db.operation").expect("db.operation");
            let text = statement.string("db.statement").expect("db.statement");
            assert!(
                text.to_ascii_uppercase().contains(operation),
                "{operation} in {text}"
            );
            assert!(statement.span.start_time_unix_nano <= statement.span.end_time_unix_nano);
            assert!(
                statement.span.start_time_unix_nano >= server.span.start_time_unix_nano,
                "the statement ran within its call"
            );
        }
    }
    assert!(
        trace.values().any(|s| s.service == "phoenix-coordinator"
            && s.string("db.system") == Some("postgresql")
            && descends_from(&trace, s, &root)),
        "the coordinator's own statements are in the trace"
    );

    // A NOT_FOUND: the server answered as it should; the client did not get what it asked.
    let mut accounts = LedgerServiceClient::new(
        ClientBuilder::new(ledger.url())
            .connect_lazy()
            .expect("channel"),
    );
    let (client, server) = failed_call(
        &receiver,
        &telemetry,
        &mut accounts,
        &shop.tenant_id,
        Code::NotFound,
    )
    .await;
    assert!(!client.status().1.is_empty(), "the client span says why");
    assert_eq!(server.status().0, StatusCode::Unset, "{server:?}");
    assert_eq!(server.service, "phoenix-ledger");

    // An INTERNAL: the ledger's accounts table is gone. An error on both sides, and for the
    // statement that failed.
    sqlx::query("ALTER TABLE accounts RENAME TO accounts_gone")
        .execute(&ledger.pool)
        .await
        .expect("rename");
    let (_, server) = failed_call(
        &receiver,
        &telemetry,
        &mut accounts,
        &shop.tenant_id,
        Code::Internal,
    )
    .await;
    assert_eq!(server.status().0, StatusCode::Error, "{server:?}");
    let failed_statement = receiver
        .wait_for(&telemetry, "the failed statement", |spans| {
            let trace = trace_of(spans, &server.span.trace_id);
            trace
                .values()
                .find(|s| descends_from(&trace, s, &server) && s.status().0 == StatusCode::Error)
                .cloned()
        })
        .await;
    assert_eq!(failed_statement.string("db.system"), Some("postgresql"));
    assert!(
        failed_statement.status().1.contains("42P01"),
        "{:?}",
        failed_statement.status()
    );
}

/// Asks the ledger for an account that does not exist, expecting `code`, and returns the
/// call's client span (status error, whatever the code) and the ledger's server span under it.
async fn failed_call(
    receiver: &Receiver,
    telemetry: &Arc<TelemetryGuard>,
    accounts: &mut LedgerServiceClient<phoenix_runtime::client::PeerChannel>,
    tenant_id: &str,
    code: Code,
) -> (Received, Received) {
    let error = accounts
        .get_account(ledger::GetAccountRequest {
            tenant_id: tenant_id.to_owned(),
            account_id: Uuid::new_v4().to_string(),
        })
        .await
        .expect_err("the call fails");
    assert_eq!(error.code(), code, "{error:?}");
    let (client, server) = receiver
        .wait_for(telemetry, &format!("the {code:?} call"), |spans| {
            call_with_code(spans, GET_ACCOUNT, code as i64)
        })
        .await;
    assert_eq!(client.status().0, StatusCode::Error, "{client:?}");
    (client, server)
}

/// The client span of a call to `method` that ended with `code`, and the server span under it.
fn call_with_code(spans: &[Received], method: &str, code: i64) -> Option<(Received, Received)> {
    let client = spans.iter().find(|s| {
        is_rpc(s, SpanKind::Client, method) && s.int("rpc.grpc.status_code") == Some(code)
    })?;
    let server = spans.iter().find(|s| {
        is_rpc(s, SpanKind::Server, method) && s.span.parent_span_id == client.span.span_id
    })?;
    assert_eq!(server.int("rpc.grpc.status_code"), Some(code));
    Some((client.clone(), server.clone()))
}
