//! `phoenix up` (every service, one process, consecutive ports) and `phoenix serve` (one).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use phoenix_runtime::{RuntimeConfig, ServiceSpec};

#[derive(Debug, clap::Args)]
pub struct UpArgs {
    /// Port of the first service; the others follow in the order printed.
    #[arg(long, env = "PHOENIX_BASE_PORT", default_value_t = 50051)]
    base_port: u16,
    /// Address the services listen on.
    #[arg(long, env = "PHOENIX_LISTEN_IP", default_value = "127.0.0.1")]
    listen_ip: IpAddr,
    #[command(flatten)]
    runtime: RuntimeConfig,
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The service to run.
    #[arg(value_parser = crate::service_names(&[]))]
    service: String,
    /// Address of the gRPC listener.
    #[arg(long, env = "PHOENIX_GRPC_ADDR", default_value = "0.0.0.0:50051")]
    grpc_addr: SocketAddr,
    #[command(flatten)]
    runtime: RuntimeConfig,
}

pub async fn up(args: UpArgs) -> anyhow::Result<()> {
    let UpArgs {
        base_port,
        listen_ip,
        runtime: mut config,
    } = args;
    // One process, but each service's spans carry its own `service.name` (`phoenix-ledger`).
    let names: Vec<&'static str> = phoenix_registry::specs().iter().map(|s| s.name).collect();
    let _telemetry =
        phoenix_runtime::telemetry::init_for_services(&config.telemetry, "phoenix", &names)?;
    let specs = phoenix_registry::specs()
        .into_iter()
        .enumerate()
        .map(|(index, spec)| {
            let port = phoenix_registry::port(base_port, index)?;
            Ok((spec, SocketAddr::new(listen_ip, port)))
        })
        .collect::<anyhow::Result<Vec<(ServiceSpec, SocketAddr)>>>()?;
    for (spec, addr) in &specs {
        let host = if addr.ip().is_unspecified() {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else {
            addr.ip()
        };
        config.peers.set_url(
            spec.name,
            format!("http://{}", SocketAddr::new(host, addr.port())),
        );
    }
    phoenix_runtime::run_services(&specs, config, print_addresses).await
}

pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let spec = (phoenix_registry::find(&args.service)?.spec)();
    let _telemetry = phoenix_runtime::telemetry::init(
        &args.runtime.telemetry,
        &format!("phoenix-{}", args.service),
    )?;
    phoenix_runtime::run_services(&[(spec, args.grpc_addr)], args.runtime, |_| {}).await
}

fn print_addresses(running: &[phoenix_runtime::RunningService]) {
    println!("\nPhoenix is up. Ctrl-C stops everything.\n");
    for service in running {
        let port = service.addr.port();
        println!(
            "  {:<14} localhost:{port:<6} grpcurl -plaintext localhost:{port} list",
            service.name
        );
    }
    if let Some(first) = running.first() {
        println!(
            "\n  health:        grpcurl -plaintext localhost:{} grpc.health.v1.Health/Check",
            first.addr.port()
        );
    }
    println!();
}
