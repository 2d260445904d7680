//! What an operator runs beside the service: the benchmark and the demo story.

pub mod bench;
pub mod seed;
