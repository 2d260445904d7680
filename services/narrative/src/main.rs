fn main() -> std::process::ExitCode {
    phoenix_runtime::run_service_binary(phoenix_narrative::spec())
}
