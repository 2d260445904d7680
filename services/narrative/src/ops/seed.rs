//! `phoenix seed narrative`: the demo story, through the API, with fixed ids so a second run
//! replaces what the first wrote (nothing doubles).
//!
//! The story: an encounter (`ENCUENTRO`) whose decisions lead to the garden (`JARDIN`, which
//! completes level 1) or to the VIP salon (`SALON_VIP`, VIP only); a three-part experience
//! (`TRES_PASOS`: the encounter, a mission, the garden); and a letter (`CARTA`) behind
//! composite requirements (VIP, level 3, a golden key, an achievement, the garden unlocked
//! and the experience completed). A heart on the encounter pays 5 besitos.

use phoenix_proto::narrative::v1 as pb;
use phoenix_proto::narrative::v1::narrative_service_client::NarrativeServiceClient;
use tonic::transport::Channel;
use uuid::Uuid;

pub const ENCUENTRO: Uuid = Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0001);
pub const JARDIN: Uuid = Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0002);
pub const SALON_VIP: Uuid = Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0003);
pub const CARTA: Uuid = Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0004);
pub const TRES_PASOS: Uuid = Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0100);
const SEGUIR: Uuid = Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0201);
const ENTRAR: Uuid = Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0202);
const LEER: Uuid = Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0203);

/// What a run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seeded {
    /// Written for the first time.
    Created,
    /// The story was there; it was written again as it is.
    Replaced,
}

fn fragment(id: Uuid, title: &str, content: &str, preview: &str) -> pb::Fragment {
    pb::Fragment {
        id: id.to_string(),
        title: title.into(),
        content: content.into(),
        preview: preview.into(),
        ..Default::default()
    }
}

fn decision(
    id: Uuid,
    fragment: Uuid,
    label: &str,
    next: Uuid,
    rewards: pb::Rewards,
) -> pb::Decision {
    pb::Decision {
        id: id.to_string(),
        fragment_id: fragment.to_string(),
        label: label.into(),
        next_fragment_id: next.to_string(),
        rewards: Some(rewards),
        position: 0,
    }
}

/// Writes the demo story through the narrative served on `channel`.
pub async fn run(channel: Channel) -> anyhow::Result<Seeded> {
    let mut client = NarrativeServiceClient::new(channel);
    let mut created = false;
    let upsert = async |client: &mut NarrativeServiceClient<Channel>, f: pb::Fragment| {
        client
            .upsert_fragment(pb::UpsertFragmentRequest { fragment: Some(f) })
            .await
            .map(|r| r.into_inner().created)
    };
    let mut jardin = fragment(
        JARDIN,
        "El jardín",
        "Diana te espera entre los rosales.",
        "Un jardín en penumbra…",
    );
    jardin.completes_level = 1;
    created |= upsert(&mut client, jardin).await?;
    let mut salon = fragment(
        SALON_VIP,
        "El salón VIP",
        "Las cortinas de terciopelo se abren solo para ti.",
        "Tras la puerta dorada…",
    );
    salon.vip_exclusive = true;
    created |= upsert(&mut client, salon).await?;
    created |= upsert(
        &mut client,
        fragment(
            ENCUENTRO,
            "El encuentro",
            "Una mirada cruza el salón.",
            "Una mirada…",
        ),
    )
    .await?;
    client
        .upsert_experience(pb::UpsertExperienceRequest {
            experience: Some(pb::Experience {
                id: TRES_PASOS.to_string(),
                title: "Tres pasos".into(),
                description: "El encuentro, la misión de bienvenida y el jardín.".into(),
                components: [
                    pb::experience_component::Target::FragmentId(ENCUENTRO.to_string()),
                    pb::experience_component::Target::MissionId("mision-bienvenida".into()),
                    pb::experience_component::Target::FragmentId(JARDIN.to_string()),
                ]
                .into_iter()
                .map(|target| pb::ExperienceComponent {
                    sequence: 0,
                    target: Some(target),
                })
                .collect(),
                rewards: Some(pb::Rewards {
                    besitos: 100,
                    achievement_ids: vec!["tres-pasos".into()],
                    ..Default::default()
                }),
                ..Default::default()
            }),
        })
        .await?;
    let mut carta = fragment(
        CARTA,
        "La carta",
        "«Te esperaba», dice la carta.",
        "Un sobre lacrado…",
    );
    carta.requirements = Some(pb::Requirements {
        vip_required: true,
        min_level: 3,
        required_items: vec![pb::ItemAmount {
            item_id: "llave-dorada".into(),
            quantity: 1,
        }],
        required_achievement_ids: vec!["primer-beso".into()],
        required_experience_ids: vec![TRES_PASOS.to_string()],
        required_fragment_ids: vec![JARDIN.to_string()],
    });
    created |= upsert(&mut client, carta).await?;
    for d in [
        decision(
            SEGUIR,
            ENCUENTRO,
            "Seguir a Diana al jardín",
            JARDIN,
            pb::Rewards {
                besitos: 10,
                unlock_fragment_ids: vec![JARDIN.to_string()],
                ..Default::default()
            },
        ),
        decision(
            ENTRAR,
            ENCUENTRO,
            "Entrar al salón VIP",
            SALON_VIP,
            pb::Rewards {
                besitos: 20,
                unlock_fragment_ids: vec![SALON_VIP.to_string()],
                ..Default::default()
            },
        ),
        decision(
            LEER,
            SALON_VIP,
            "Leer la carta",
            CARTA,
            pb::Rewards {
                besitos: 50,
                items: vec![pb::ItemAmount {
                    item_id: "gema".into(),
                    quantity: 1,
                }],
                achievement_ids: vec!["valiente".into()],
                ..Default::default()
            },
        ),
    ] {
        client
            .upsert_decision(pb::UpsertDecisionRequest { decision: Some(d) })
            .await?;
    }
    client
        .upsert_reaction_reward(pb::UpsertReactionRewardRequest {
            reward: Some(pb::ReactionReward {
                content: Some(pb::ContentRef {
                    kind: pb::ContentKind::Fragment.into(),
                    content_id: ENCUENTRO.to_string(),
                }),
                reaction: "❤️".into(),
                besitos: 5,
                active: true,
            }),
        })
        .await?;
    Ok(if created {
        Seeded::Created
    } else {
        Seeded::Replaced
    })
}
