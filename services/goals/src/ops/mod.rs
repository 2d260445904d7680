//! What an operator runs beside the service: the Parquet export of the event log and the
//! benchmark.

pub mod bench;
pub mod export;
