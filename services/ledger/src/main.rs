fn main() -> anyhow::Result<()> {
    phoenix_runtime::run_service_binary(phoenix_ledger::spec())
}
