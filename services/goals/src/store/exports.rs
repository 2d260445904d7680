//! The `event_exports` table: which Parquet file each event went to.
