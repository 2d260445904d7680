-- Missions v2 (seed 000, §2.1–2.5): the catalog, the bridge snapshot and the relational board.
--
-- Every board lives twice, written in one transaction by the SQL repository: as a JSONB snapshot
-- in missions_v2_state (what reads serve) and as rows of the relational tables (what analytics
-- and the audit query). Every field of the Rust `Board` has a column, so a board rebuilt from the
-- rows (missions_v2_board_documents) must equal its snapshot; the weekly audit checks that.
--
-- Users and goal tasks belong to other contexts: they are plain ids here, never foreign keys.
-- Board rows do not reference the catalog either: a board keeps what it was offered even when
-- the catalog is edited, boards imported from the legacy store may name missions the catalog
-- does not have yet, and a foreign key would make every board write share-lock the same few
-- catalog rows.

-- The catalog (§2.2, §2.4).

CREATE TABLE missions_v2_badges (
    badge_id    uuid        PRIMARY KEY,
    code        text        NOT NULL UNIQUE CHECK (char_length(code) BETWEEN 1 AND 100),
    name        text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    description text        NOT NULL,
    artwork_url text,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- An effect whose payload has "protectsDay": true is a streak freeze: a day close consumes it
-- instead of a petal.
CREATE TABLE missions_v2_effect_catalog (
    effect_id     uuid        PRIMARY KEY,
    type          text        NOT NULL CHECK (type IN ('amulet', 'aura')),
    name          text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    description   text        NOT NULL,
    payload       jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(payload) = 'object'),
    -- NULL: active until consumed.
    duration_days integer     CHECK (duration_days > 0),
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE missions_v2_missions (
    mission_id      uuid        PRIMARY KEY,
    slot_key        text        NOT NULL CHECK (slot_key IN ('main', 'hunt', 'skill')),
    name            text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    summary         text        NOT NULL,
    requirements    text        NOT NULL,
    objective       text        NOT NULL,
    difficulty      text        NOT NULL CHECK (difficulty IN ('low', 'medium', 'high', 'epic')),
    duration_days   integer     NOT NULL CHECK (duration_days BETWEEN 1 AND 366),
    progress_target integer     NOT NULL CHECK (progress_target > 0),
    progress_unit   text        NOT NULL CHECK (progress_unit IN ('tasks', 'sessions', 'minutes', 'points')),
    metadata        jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
    -- Retired missions are never offered again; runs of them finish.
    active          boolean     NOT NULL DEFAULT true,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- `position` keeps the order the admin gave, so a mission reads back exactly as it was written.
CREATE TABLE missions_v2_mission_targets (
    target_id  uuid     PRIMARY KEY,
    mission_id uuid     NOT NULL REFERENCES missions_v2_missions (mission_id) ON DELETE CASCADE,
    position   smallint NOT NULL CHECK (position >= 0),
    task_id    uuid     NOT NULL,
    name       text     NOT NULL,
    tag        text     NOT NULL,
    sort_order smallint NOT NULL DEFAULT 0,
    metadata   jsonb    NOT NULL DEFAULT '{}',
    UNIQUE (mission_id, position)
);

CREATE TABLE missions_v2_mission_rewards (
    mission_id   uuid    PRIMARY KEY REFERENCES missions_v2_missions (mission_id) ON DELETE CASCADE,
    xp           integer NOT NULL CHECK (xp >= 0),
    currency     integer NOT NULL DEFAULT 0 CHECK (currency >= 0),
    items        jsonb   NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(items) = 'array'),
    reward_badge uuid    REFERENCES missions_v2_badges (badge_id),
    reward_aura  uuid    REFERENCES missions_v2_effect_catalog (effect_id)
);

CREATE TABLE missions_v2_mission_badges (
    mission_id uuid     NOT NULL REFERENCES missions_v2_missions (mission_id) ON DELETE CASCADE,
    badge_id   uuid     NOT NULL REFERENCES missions_v2_badges (badge_id) ON DELETE CASCADE,
    position   smallint NOT NULL CHECK (position >= 0),
    PRIMARY KEY (mission_id, badge_id),
    UNIQUE (mission_id, position)
);

CREATE TABLE missions_v2_bosses (
    boss_id         uuid        PRIMARY KEY,
    code            text        NOT NULL UNIQUE CHECK (char_length(code) BETWEEN 1 AND 100),
    name            text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    description     text        NOT NULL,
    shield_max      smallint    NOT NULL CHECK (shield_max > 0),
    reward_xp       integer     NOT NULL CHECK (reward_xp >= 0),
    reward_currency integer     NOT NULL DEFAULT 0 CHECK (reward_currency >= 0),
    reward_items    jsonb       NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(reward_items) = 'array'),
    reward_badge    uuid        REFERENCES missions_v2_badges (badge_id),
    reward_aura     uuid        REFERENCES missions_v2_effect_catalog (effect_id),
    metadata        jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- The bridge snapshot (§2.1): one row per board, the serialized `Board`. Reads are served from
-- here; `version` counts the writes; `due_at` (rules::next_due) is when the board next needs a
-- day close, so the batch day close finds due boards through a small index instead of a scan.
CREATE TABLE missions_v2_state (
    user_id    uuid        NOT NULL,
    season_id  text        NOT NULL CHECK (char_length(season_id) BETWEEN 1 AND 100),
    board_id   uuid        NOT NULL UNIQUE,
    state      jsonb       NOT NULL,
    version    bigint      NOT NULL CHECK (version >= 1),
    due_at     timestamptz,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (user_id, season_id),
    -- The document is the board of its row, whatever writes it.
    CHECK (state->>'userId' = user_id::text
           AND state->>'seasonId' = season_id
           AND state->>'boardId' = board_id::text)
);
CREATE INDEX missions_v2_state_due ON missions_v2_state (due_at) WHERE due_at IS NOT NULL;

-- The relational board (§2.3, §2.4). Collections of a board keep their order in `position`
-- (their index in the board's list), so the rebuild is exact.

CREATE TABLE missions_v2_boards (
    board_id            uuid        PRIMARY KEY,
    user_id             uuid        NOT NULL,
    season_id           text        NOT NULL CHECK (char_length(season_id) BETWEEN 1 AND 100),
    -- IANA name; it decides when each of the user's days starts and ends.
    time_zone           text        NOT NULL CHECK (char_length(time_zone) BETWEEN 1 AND 64),
    generated_at        timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL,
    -- Monday of the last local week a weekly summary was written for.
    last_weekly_summary date,
    UNIQUE (user_id, season_id),
    -- Target of the claims' (board_id, user_id) key, so a claim cannot name another user.
    UNIQUE (board_id, user_id)
);

CREATE TABLE missions_v2_slots (
    slot_id          uuid        PRIMARY KEY,
    board_id         uuid        NOT NULL REFERENCES missions_v2_boards (board_id) ON DELETE CASCADE,
    slot_key         text        NOT NULL CHECK (slot_key IN ('main', 'hunt', 'skill')),
    state            text        NOT NULL CHECK (state IN ('idle', 'active', 'succeeded', 'failed', 'cooldown', 'claimed')),
    mission_id       uuid        NOT NULL,
    run_id           uuid,
    petals_total     smallint    NOT NULL CHECK (petals_total > 0),
    petals_remaining smallint    NOT NULL,
    cooldown_until   timestamptz,
    reroll_remaining smallint    NOT NULL CHECK (reroll_remaining >= 0),
    reroll_used_at   timestamptz,
    reroll_reset_at  timestamptz,
    offers           integer     NOT NULL CHECK (offers >= 0),
    UNIQUE (board_id, slot_key),
    CONSTRAINT missions_v2_slots_petals_in_range CHECK (petals_remaining BETWEEN 0 AND petals_total)
);

CREATE TABLE missions_v2_slot_runs (
    run_id         uuid        PRIMARY KEY,
    board_id       uuid        NOT NULL,
    slot_key       text        NOT NULL,
    position       integer     NOT NULL CHECK (position >= 0),
    mission_id     uuid        NOT NULL,
    status         text        NOT NULL CHECK (status IN ('active', 'succeeded', 'failed', 'claimed')),
    selected_at    timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL,
    expires_at     timestamptz NOT NULL,
    cooldown_until timestamptz,
    completion_at  timestamptz,
    failure_at     timestamptz,
    claim_id       uuid        UNIQUE,
    FOREIGN KEY (board_id, slot_key) REFERENCES missions_v2_slots (board_id, slot_key) ON DELETE CASCADE
);
-- A slot runs one mission at a time.
CREATE UNIQUE INDEX missions_v2_one_active_run_per_slot
    ON missions_v2_slot_runs (board_id, slot_key) WHERE status = 'active';
CREATE INDEX missions_v2_slot_runs_board ON missions_v2_slot_runs (board_id, position);

-- Monotonic: the rules refuse progress that goes backwards.
CREATE TABLE missions_v2_mission_progress (
    run_id     uuid        PRIMARY KEY REFERENCES missions_v2_slot_runs (run_id) ON DELETE CASCADE,
    current    integer     NOT NULL CHECK (current >= 0),
    target     integer     NOT NULL CHECK (target > 0),
    unit       text        NOT NULL CHECK (unit IN ('tasks', 'sessions', 'minutes', 'points')),
    updated_at timestamptz NOT NULL
);

-- At most one heartbeat per run and local day: a duplicate is a replay, never counted twice.
CREATE TABLE missions_v2_heartbeat_log (
    heartbeat_id   uuid        PRIMARY KEY,
    run_id         uuid        NOT NULL REFERENCES missions_v2_slot_runs (run_id) ON DELETE CASCADE,
    position       integer     NOT NULL CHECK (position >= 0),
    heartbeat_date date        NOT NULL,
    petals_before  smallint    NOT NULL CHECK (petals_before >= 0),
    petals_after   smallint    NOT NULL CHECK (petals_after >= 0),
    created_at     timestamptz NOT NULL,
    CONSTRAINT missions_v2_heartbeat_once_a_day UNIQUE (run_id, heartbeat_date)
);

-- Each local day of a run closes exactly once, whatever the concurrency, time-zone changes or
-- DST shifts.
CREATE TABLE missions_v2_day_closes (
    run_id             uuid        NOT NULL REFERENCES missions_v2_slot_runs (run_id) ON DELETE CASCADE,
    local_date         date        NOT NULL,
    outcome            text        NOT NULL CHECK (outcome IN ('kept', 'protected', 'petal_lost')),
    -- The protecting effect consumed, for a protected day (and only then).
    effect_instance_id uuid,
    petals_after       smallint    NOT NULL CHECK (petals_after >= 0),
    closed_at          timestamptz NOT NULL,
    CONSTRAINT missions_v2_day_closes_once PRIMARY KEY (run_id, local_date),
    CHECK ((outcome = 'protected') = (effect_instance_id IS NOT NULL))
);

-- A board has at most one boss run.
CREATE TABLE missions_v2_boss_runs (
    boss_run_id         uuid        PRIMARY KEY,
    board_id            uuid        NOT NULL UNIQUE REFERENCES missions_v2_boards (board_id) ON DELETE CASCADE,
    boss_id             uuid        NOT NULL,
    phase               smallint    NOT NULL CHECK (phase IN (1, 2)),
    shield_current      smallint    NOT NULL,
    shield_max          smallint    NOT NULL CHECK (shield_max > 0),
    linked_task_id      uuid,
    linked_at           timestamptz,
    phase2_ready        boolean     NOT NULL DEFAULT false,
    phase2_proof        text,
    phase2_submitted_at timestamptz,
    completed_at        timestamptz,
    claim_id            uuid        UNIQUE,
    CHECK (shield_current BETWEEN 0 AND shield_max)
);

CREATE TABLE missions_v2_effects (
    effect_instance_id uuid        PRIMARY KEY,
    board_id           uuid        NOT NULL REFERENCES missions_v2_boards (board_id) ON DELETE CASCADE,
    position           integer     NOT NULL CHECK (position >= 0),
    effect_id          uuid        NOT NULL,
    active_from        timestamptz NOT NULL,
    active_until       timestamptz,
    consumed_at        timestamptz,
    -- Copied from the catalog when granted: a later catalog edit does not change what was held.
    protects_day       boolean     NOT NULL,
    payload_override   jsonb       NOT NULL DEFAULT '{}'
);
CREATE INDEX missions_v2_effects_board ON missions_v2_effects (board_id, active_until);

-- Exactly one claim per run: `run_id` is a slot run or the boss run (so no foreign key), and a
-- second claim of it fails here whatever the code above did.
CREATE TABLE missions_v2_claims (
    claim_id        uuid        PRIMARY KEY,
    board_id        uuid        NOT NULL,
    user_id         uuid        NOT NULL,
    run_id          uuid        NOT NULL,
    position        integer     NOT NULL CHECK (position >= 0),
    source          text        NOT NULL CHECK (source IN ('mission', 'boss')),
    claimed_at      timestamptz NOT NULL,
    reward_xp       integer     NOT NULL CHECK (reward_xp >= 0),
    reward_currency integer     NOT NULL CHECK (reward_currency >= 0),
    reward_items    jsonb       NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(reward_items) = 'array'),
    reward_badge_id uuid,
    reward_aura_id  uuid,
    CONSTRAINT missions_v2_claims_once_per_run UNIQUE (run_id),
    FOREIGN KEY (board_id, user_id) REFERENCES missions_v2_boards (board_id, user_id) ON DELETE CASCADE
);
CREATE INDEX missions_v2_claims_board ON missions_v2_claims (board_id, position);
CREATE INDEX missions_v2_claims_user ON missions_v2_claims (user_id, claimed_at DESC);

CREATE TABLE missions_v2_communications (
    communication_id uuid        PRIMARY KEY,
    board_id         uuid        NOT NULL REFERENCES missions_v2_boards (board_id) ON DELETE CASCADE,
    position         integer     NOT NULL CHECK (position >= 0),
    type             text        NOT NULL CHECK (type IN ('daily', 'weekly', 'system')),
    message          text        NOT NULL,
    created_at       timestamptz NOT NULL
);
CREATE INDEX missions_v2_communications_board ON missions_v2_communications (board_id, position);

-- What DUAL saw differ between its two stores (and the audit, between snapshot and rows).
CREATE TABLE missions_v2_divergences (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id    uuid        NOT NULL,
    season_id  text        NOT NULL,
    kind       text        NOT NULL CHECK (char_length(kind) BETWEEN 1 AND 100),
    detail     jsonb       NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX missions_v2_divergences_board ON missions_v2_divergences (user_id, season_id, created_at DESC);

-- An instant as the snapshot spells it (chrono's serde format for DateTime<Utc>): seconds, a
-- fraction of 3 or 6 digits only when it is not zero (the database keeps microseconds), then Z.
CREATE FUNCTION missions_v2_json_time(at timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT to_char(utc, 'YYYY-MM-DD"T"HH24:MI:SS')
        || CASE
               WHEN micros = 0 THEN ''
               WHEN micros % 1000 = 0 THEN '.' || lpad((micros / 1000)::text, 3, '0')
               ELSE '.' || lpad(micros::text, 6, '0')
           END
        || 'Z'
    FROM (SELECT at AT TIME ZONE 'UTC' AS utc) t,
         LATERAL (SELECT (extract(microseconds FROM utc)::bigint % 1000000) AS micros) m
$$;

-- Every board rebuilt from the relational rows alone, as the document its snapshot must be.
-- The SQL repository's load_relational reads one row of it; the audit compares all of them
-- with missions_v2_state. Per-board subqueries keep a one-board read on the indexes.
CREATE VIEW missions_v2_board_documents AS
SELECT b.user_id, b.season_id, b.board_id, jsonb_build_object(
    'boardId', b.board_id,
    'userId', b.user_id,
    'seasonId', b.season_id,
    'timeZone', b.time_zone,
    'generatedAt', missions_v2_json_time(b.generated_at),
    'updatedAt', missions_v2_json_time(b.updated_at),
    'slots', coalesce((
        SELECT jsonb_agg(jsonb_build_object(
                   'slotId', s.slot_id,
                   'slotKey', s.slot_key,
                   'state', s.state,
                   'missionId', s.mission_id,
                   'runId', s.run_id,
                   'petalsTotal', s.petals_total,
                   'petalsRemaining', s.petals_remaining,
                   'cooldownUntil', missions_v2_json_time(s.cooldown_until),
                   'rerollRemaining', s.reroll_remaining,
                   'rerollUsedAt', missions_v2_json_time(s.reroll_used_at),
                   'rerollResetAt', missions_v2_json_time(s.reroll_reset_at),
                   'offers', s.offers)
                 ORDER BY array_position(ARRAY['main', 'hunt', 'skill'], s.slot_key))
        FROM missions_v2_slots s WHERE s.board_id = b.board_id), '[]'),
    'runs', coalesce((
        SELECT jsonb_agg(jsonb_build_object(
                   'runId', r.run_id,
                   'slotKey', r.slot_key,
                   'missionId', r.mission_id,
                   'status', r.status,
                   'selectedAt', missions_v2_json_time(r.selected_at),
                   'updatedAt', missions_v2_json_time(r.updated_at),
                   'expiresAt', missions_v2_json_time(r.expires_at),
                   'cooldownUntil', missions_v2_json_time(r.cooldown_until),
                   'completionAt', missions_v2_json_time(r.completion_at),
                   'failureAt', missions_v2_json_time(r.failure_at),
                   'claimId', r.claim_id,
                   'progress', (
                       SELECT jsonb_build_object(
                                  'current', p.current,
                                  'target', p.target,
                                  'unit', p.unit,
                                  'updatedAt', missions_v2_json_time(p.updated_at))
                       FROM missions_v2_mission_progress p WHERE p.run_id = r.run_id),
                   'heartbeats', coalesce((
                       SELECT jsonb_agg(jsonb_build_object(
                                  'heartbeatId', h.heartbeat_id,
                                  'date', h.heartbeat_date,
                                  'petalsBefore', h.petals_before,
                                  'petalsAfter', h.petals_after,
                                  'createdAt', missions_v2_json_time(h.created_at))
                                ORDER BY h.position)
                       FROM missions_v2_heartbeat_log h WHERE h.run_id = r.run_id), '[]'),
                   'days', coalesce((
                       SELECT jsonb_agg(jsonb_build_object(
                                  'date', d.local_date,
                                  'outcome', d.outcome,
                                  'effectInstanceId', d.effect_instance_id,
                                  'petalsAfter', d.petals_after,
                                  'closedAt', missions_v2_json_time(d.closed_at))
                                ORDER BY d.local_date)
                       FROM missions_v2_day_closes d WHERE d.run_id = r.run_id), '[]'))
                 ORDER BY r.position)
        FROM missions_v2_slot_runs r WHERE r.board_id = b.board_id), '[]'),
    'boss', (
        SELECT jsonb_build_object(
                   'bossRunId', x.boss_run_id,
                   'bossId', x.boss_id,
                   'phase', x.phase,
                   'shieldCurrent', x.shield_current,
                   'shieldMax', x.shield_max,
                   'linkedTaskId', x.linked_task_id,
                   'linkedAt', missions_v2_json_time(x.linked_at),
                   'phase2Ready', x.phase2_ready,
                   'phase2Proof', x.phase2_proof,
                   'phase2SubmittedAt', missions_v2_json_time(x.phase2_submitted_at),
                   'completedAt', missions_v2_json_time(x.completed_at),
                   'claimId', x.claim_id)
        FROM missions_v2_boss_runs x WHERE x.board_id = b.board_id),
    'effects', coalesce((
        SELECT jsonb_agg(jsonb_build_object(
                   'effectInstanceId', e.effect_instance_id,
                   'effectId', e.effect_id,
                   'activeFrom', missions_v2_json_time(e.active_from),
                   'activeUntil', missions_v2_json_time(e.active_until),
                   'consumedAt', missions_v2_json_time(e.consumed_at),
                   'protectsDay', e.protects_day,
                   'payloadOverride', e.payload_override)
                 ORDER BY e.position)
        FROM missions_v2_effects e WHERE e.board_id = b.board_id), '[]'),
    'claims', coalesce((
        SELECT jsonb_agg(jsonb_build_object(
                   'claimId', c.claim_id,
                   'runId', c.run_id,
                   'source', c.source,
                   'claimedAt', missions_v2_json_time(c.claimed_at),
                   'reward', jsonb_build_object(
                       'xp', c.reward_xp,
                       'currency', c.reward_currency,
                       'items', c.reward_items,
                       'badgeId', c.reward_badge_id,
                       'auraId', c.reward_aura_id))
                 ORDER BY c.position)
        FROM missions_v2_claims c WHERE c.board_id = b.board_id), '[]'),
    'communications', coalesce((
        SELECT jsonb_agg(jsonb_build_object(
                   'communicationId', m.communication_id,
                   'kind', m.type,
                   'message', m.message,
                   'createdAt', missions_v2_json_time(m.created_at))
                 ORDER BY m.position)
        FROM missions_v2_communications m WHERE m.board_id = b.board_id), '[]'),
    'lastWeeklySummary', b.last_weekly_summary
) AS document
FROM missions_v2_boards b;
