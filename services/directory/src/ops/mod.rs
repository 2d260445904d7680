//! What an operator runs beside the directory: the auditor, the legacy users import and the
//! benchmark.

pub mod audit;
pub mod bench;
pub mod import;
