//! What an operator runs beside the service: the benchmark (`phoenix bench missions`).

pub mod bench;
