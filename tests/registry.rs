//! The one service registry against what is written elsewhere: the Kubernetes manifests and
//! the README. Adding a service to the registry without them fails here.

use std::path::{Path, PathBuf};

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the repository")
        .to_path_buf()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn every_registered_service_has_its_deployment_service_and_peer_url() {
    let base = repository().join("deploy/kustomize/base");
    let kustomization = read(&base.join("kustomization.yaml"));
    let config = read(&base.join("config.yaml"));
    for name in phoenix_registry::names() {
        assert!(
            kustomization.contains(&format!("- {name}.yaml")),
            "kustomization.yaml does not list {name}.yaml"
        );
        let manifest = read(&base.join(format!("{name}.yaml")));
        for needle in [
            "kind: Deployment".to_owned(),
            "kind: Service".to_owned(),
            format!("name: {name}\n"),
            format!("args: [\"serve\", \"{name}\"]"),
        ] {
            assert!(manifest.contains(&needle), "{name}.yaml lacks {needle:?}");
        }
        let url = format!(
            "PHOENIX_{}_URL: \"http://{name}:50051\"",
            name.to_uppercase()
        );
        assert!(config.contains(&url), "config.yaml lacks {url}");
    }
}

#[test]
fn no_manifest_deploys_a_service_the_registry_does_not_know() {
    let base = repository().join("deploy/kustomize/base");
    let names = phoenix_registry::names();
    for entry in std::fs::read_dir(&base).expect("deploy/kustomize/base") {
        let path = entry.expect("entry").path();
        let manifest = read(&path);
        if let Some(start) = manifest.find("args: [\"serve\", \"") {
            let rest = &manifest[start + "args: [\"serve\", \"".len()..];
            let served = rest.split('"').next().unwrap_or_default();
            assert!(
                names.contains(&served),
                "{} serves {served:?}, which is not registered",
                path.display()
            );
        }
    }
}

#[test]
fn the_readme_lists_every_service_with_its_port() {
    let readme = read(&repository().join("README.md"));
    for (index, name) in phoenix_registry::names().into_iter().enumerate() {
        let port = phoenix_registry::port(50051, index).expect("port");
        assert!(
            readme.contains(&format!("| {name} |")),
            "the README's service table lacks {name}"
        );
        assert!(
            readme.contains(&format!("{name:<14} localhost:{port}")),
            "the README's `up` output lacks {name} on {port}"
        );
    }
}
