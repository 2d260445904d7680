//! What an operator runs beside the service.
