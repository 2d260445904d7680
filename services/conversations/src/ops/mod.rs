//! What an operator runs beside the service: the legacy files' import, export and compare,
//! and the benchmark.
pub mod audit;
pub mod bench;
pub mod legacy;
