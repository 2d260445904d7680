//! What an operator runs beside the service: the auditor, the Parquet export of the event log
//! and the benchmark.

pub mod audit;
pub mod bench;
pub mod export;
