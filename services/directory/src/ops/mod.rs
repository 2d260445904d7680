//! What an operator runs beside the directory: the auditor.

pub mod audit;
