//! The coordinator's gRPC face: decode and validate, call one use case, encode.

pub mod sagas;
