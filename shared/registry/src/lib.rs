//! The one list of Phoenix services. `phoenix up` starts them in this order on consecutive
//! ports from `PHOENIX_BASE_PORT`; every command that takes a service name checks it here; the
//! platform tests run reflection, health and the migration round trip on each; and a test holds
//! `deploy/` to it. Adding a service is one entry in [`SERVICES`] (and its crate in this
//! crate's `Cargo.toml`).

use phoenix_runtime::ServiceSpec;

/// A registered service.
#[derive(Debug, Clone, Copy)]
pub struct Registered {
    /// The service's spec: name (and schema), migrations, build, audit.
    pub spec: fn() -> ServiceSpec,
    /// The fully qualified gRPC service it must serve (reflection lists it, health reports it).
    pub grpc_service: &'static str,
}

impl Registered {
    pub fn name(&self) -> &'static str {
        (self.spec)().name
    }
}

/// Every service, in port order: the first listens on the base port, the next on base + 1, …
pub const SERVICES: &[Registered] = &[
    Registered {
        spec: phoenix_directory::spec,
        grpc_service: "phoenix.directory.v1.DirectoryService",
    },
    Registered {
        spec: phoenix_goals::spec,
        grpc_service: "phoenix.goals.v1.GoalsService",
    },
    Registered {
        spec: phoenix_missions::spec,
        grpc_service: "phoenix.missions.v1.MissionsService",
    },
    Registered {
        spec: phoenix_ledger::spec,
        grpc_service: "phoenix.ledger.v1.LedgerService",
    },
    Registered {
        spec: phoenix_coordinator::spec,
        grpc_service: "phoenix.coordinator.v1.CoordinatorService",
    },
    Registered {
        spec: phoenix_conversations::spec,
        grpc_service: "phoenix.conversations.v1.ConversationsService",
    },
    Registered {
        spec: phoenix_narrative::spec,
        grpc_service: "phoenix.narrative.v1.NarrativeService",
    },
];

/// Every service's spec, in port order.
pub fn specs() -> Vec<ServiceSpec> {
    SERVICES.iter().map(|s| (s.spec)()).collect()
}

/// Every service's name, in port order.
pub fn names() -> Vec<&'static str> {
    SERVICES.iter().map(Registered::name).collect()
}

/// The service called `name`; an unknown name is an error that lists the known ones.
pub fn find(name: &str) -> anyhow::Result<Registered> {
    SERVICES
        .iter()
        .find(|s| s.name() == name)
        .copied()
        .ok_or_else(|| {
            anyhow::anyhow!(
                "no service named {name:?}; the services are: {}",
                names().join(", ")
            )
        })
}

/// The port of the service at `index` in [`SERVICES`] when the first listens on `base`.
pub fn port(base: u16, index: usize) -> anyhow::Result<u16> {
    u16::try_from(index)
        .ok()
        .and_then(|offset| base.checked_add(offset))
        .ok_or_else(|| {
            anyhow::anyhow!("PHOENIX_BASE_PORT {base} leaves no port for service {index}")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_unknown_ones_list_the_known() {
        let mut names = names();
        let count = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), count, "two services share a name");
        let error = find("ledgr").expect_err("unknown").to_string();
        assert!(
            error.contains("ledger") && error.contains("directory"),
            "{error}"
        );
        assert_eq!(find("missions").expect("known").name(), "missions");
    }

    #[test]
    fn ports_follow_the_list() {
        assert_eq!(port(50051, 3).expect("fits"), 50054);
        assert!(port(65535, 1).is_err());
    }
}
