//! Phoenix gRPC contracts, generated at build time from the files under `proto/`.
//!
//! One module per package (`phoenix.<context>.v1`), plus [`FILE_DESCRIPTOR_SET`], the encoded
//! descriptors of every Phoenix contract, which the runtime hands to server reflection.

#![allow(clippy::all, clippy::pedantic, missing_docs)]

/// Encoded `FileDescriptorSet` of every file under `proto/`, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/phoenix_descriptor.bin"));

/// `phoenix.events.v1`: the event envelope shared by every context.
pub mod events {
    pub mod v1 {
        tonic::include_proto!("phoenix.events.v1");
    }
}

/// `phoenix.directory.v1`: users (and later courses) that other contexts reference by id.
pub mod directory {
    pub mod v1 {
        tonic::include_proto!("phoenix.directory.v1");
    }
}

/// `phoenix.goals.v1`.
pub mod goals {
    pub mod v1 {
        tonic::include_proto!("phoenix.goals.v1");
    }
}

/// `phoenix.missions.v1`.
pub mod missions {
    pub mod v1 {
        tonic::include_proto!("phoenix.missions.v1");
    }
}

/// `phoenix.ledger.v1`.
pub mod ledger {
    pub mod v1 {
        tonic::include_proto!("phoenix.ledger.v1");
    }
}

/// `phoenix.coordinator.v1`.
pub mod coordinator {
    pub mod v1 {
        tonic::include_proto!("phoenix.coordinator.v1");
    }
}

/// `phoenix.conversations.v1`.
pub mod conversations {
    pub mod v1 {
        tonic::include_proto!("phoenix.conversations.v1");
    }
}

/// `phoenix.narrative.v1`: fragments, decisions, experiences, reactions and each user's progress.
pub mod narrative {
    pub mod v1 {
        tonic::include_proto!("phoenix.narrative.v1");
    }
}
