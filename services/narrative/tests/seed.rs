//! `phoenix seed narrative`'s demo story, written twice through a real server.

mod common;

use common::{Client, apply, id};
use phoenix_narrative::ops::seed::{self, CARTA, ENCUENTRO, Seeded, TRES_PASOS};
use phoenix_proto::narrative::v1 as pb;
use phoenix_testkit::spawn;

#[tokio::test]
async fn the_demo_story_loads_twice_and_plays() {
    let service = spawn(phoenix_narrative::spec()).await;
    assert_eq!(
        seed::run(service.channel.clone()).await.expect("seeded"),
        Seeded::Created
    );
    assert_eq!(
        seed::run(service.channel.clone()).await.expect("again"),
        Seeded::Replaced
    );
    assert_eq!(common::count(&service.pool, "fragments").await, 4);
    assert_eq!(common::count(&service.pool, "decisions").await, 3);
    let mut client = Client::new(service.channel.clone());
    let opening = client
        .get_fragment(pb::GetFragmentRequest {
            fragment_id: ENCUENTRO.to_string(),
            ..Default::default()
        })
        .await
        .expect("the opening")
        .into_inner()
        .fragment
        .expect("fragment");
    assert_eq!(opening.decisions.len(), 2, "the garden or the VIP salon");
    let experience = client
        .get_experience(pb::GetExperienceRequest {
            experience_id: TRES_PASOS.to_string(),
        })
        .await
        .expect("experience")
        .into_inner()
        .experience
        .expect("experience");
    assert_eq!(experience.components.len(), 3);
    let user = id();
    let check = client
        .check_fragment_requirements(pb::CheckFragmentRequirementsRequest {
            user_id: user.clone(),
            fragment_id: CARTA.to_string(),
        })
        .await
        .expect("checked")
        .into_inner()
        .check
        .expect("check");
    assert_eq!(check.status(), pb::RequirementStatus::NotMet);
    assert_eq!(
        check.external_facts.len(),
        4,
        "VIP, level, key, achievement"
    );
    let taken = client
        .apply_decision(apply(
            &user,
            &ENCUENTRO.to_string(),
            &opening.decisions[0].id,
            "k",
        ))
        .await
        .expect("decided")
        .into_inner();
    assert!(taken.rewards.expect("rewards").besitos > 0);
}
