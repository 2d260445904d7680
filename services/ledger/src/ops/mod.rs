//! What an operator runs beside the service: the auditor (`phoenix audit ledger`), the
//! benchmark (`phoenix bench ledger`), the Firebase import client (`phoenix import ledger`) and
//! the demo seed (`phoenix seed ledger`). They reach the ledger through its use cases or its
//! gRPC API, never through the API's internals.

pub mod audit;
pub mod bench;
pub mod import_client;
pub mod seed;
