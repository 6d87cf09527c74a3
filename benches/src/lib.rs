//! Workloads and baselines for the cavra benchmarks.
//!
//! The decision-loop workload models the routing step of the release
//! governance service: for each request `(owner, provider, now)` decide
//! whether the provider is on the owner's route at all (else the request is
//! skipped), then whether a maintenance window or an owner's calendar absence
//! suppresses the notification, or whether it is delivered. Everything is
//! generated deterministically from a seed with a tiny built-in PRNG (no
//! `rand`), so that benchmark runs and tests see exactly the same data.
//!
//! Three implementations decide the same requests:
//! - cavra: `packs/decision_loop.cavra`, compiled and bound to the policy
//!   (the compiler turns both scans into interval indexes);
//! - [`plain_decide`]: hand-written Rust over plain structs with plain loops,
//!   the baseline a team would write without a rule engine;
//! - [`SegmentTable`]: hand-written per-(owner, provider) tables of disjoint
//!   time segments, one hash and one binary search per decision, the
//!   practical limit for this decision.

use cavra_engine::{Inputs, Outcome, Program, Value};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value as Json};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// The decision pack measured by the decision-loop benchmark.
pub const DECISION_LOOP_PACK: &str = include_str!("../packs/decision_loop.cavra");
/// A realistic large pack, for the parse + check + compile benchmark.
pub const LARGE_PACK: &str = include_str!("../packs/large.cavra");

/// Number of owners in the workload.
pub const OWNERS: usize = 200;
/// Number of requests per workload.
pub const REQUESTS: usize = 100_000;
/// The notification providers.
pub const PROVIDERS: [&str; 5] = ["slack", "email", "pagerduty", "opsgenie", "sms"];

const SECOND: i64 = 1_000_000;
const MINUTE: i64 = 60 * SECOND;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;
/// The workload spans 30 days starting at 2026-05-01T00:00:00Z.
pub const SPAN_START: i64 = 1_777_593_600 * SECOND;
pub const SPAN: i64 = 30 * DAY;

// ---- PRNG ---------------------------------------------------------------------

/// SplitMix64 (Steele, Lea & Flood): tiny, fast and good enough for workloads.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`), by multiply-shift (bias negligible here).
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1) as u64) as i64
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p && p > 0.0
    }

    /// `k` distinct values of `0..n`, in the order drawn.
    pub fn distinct(&mut self, k: usize, n: usize) -> Vec<usize> {
        let mut out = Vec::with_capacity(k);
        while out.len() < k.min(n) {
            let v = self.below(n as u64) as usize;
            if !out.contains(&v) {
                out.push(v);
            }
        }
        out
    }
}

// ---- workload -------------------------------------------------------------------

/// The shape of a generated policy. The mix of scopes keeps the share of
/// suppressed requests among the routed ones (those whose provider is on the
/// owner's route) between 20% and 40% at both sizes: there are a fixed
/// number of global and provider-wide windows (freezes are rare), and the rest
/// are scoped to 1–4 owners, and then also to 1–2 providers with probability
/// `owner_and_provider_share` (larger policies are more finely scoped).
#[derive(Clone, Debug)]
pub struct WorkloadConfig {
    pub seed: u64,
    pub windows: usize,
    /// Windows with empty `owners` and `providers` (apply to everyone).
    pub global_windows: usize,
    /// Windows scoped to 1–2 providers only.
    pub provider_windows: usize,
    /// Share of the owner-scoped windows that are also scoped to providers.
    pub owner_and_provider_share: f64,
    pub requests: usize,
}

impl WorkloadConfig {
    /// The benchmark configuration for `windows` maintenance windows
    /// (tuned for 500 and 5,000).
    pub fn for_windows(windows: usize) -> Self {
        WorkloadConfig {
            seed: 0xCA7_0A11 ^ windows as u64,
            windows,
            global_windows: 16.min(windows),
            provider_windows: 20.min(windows.saturating_sub(16)),
            owner_and_provider_share: if windows <= 1_000 { 0.3 } else { 1.0 },
            requests: REQUESTS,
        }
    }
}

/// One decision request: indexes into [`Workload::owners`] and [`PROVIDERS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    pub owner: u32,
    pub provider: u32,
    pub now: i64,
}

#[derive(Clone, Debug)]
pub struct Workload {
    pub config: WorkloadConfig,
    pub owners: Vec<String>,
    /// The providers (indexes into [`PROVIDERS`]) each owner is routed to (1–3),
    /// also in the policy as `owner_routes`.
    pub owner_routes: Vec<Vec<u32>>,
    /// `{"owner_routes": {owner: {"providers": [...]}}, "maintenance_windows": [...], "owner_calendars": {...}}`,
    /// the domain shape.
    pub policy: Json,
    pub requests: Vec<Request>,
}

impl Workload {
    pub fn owner(&self, r: &Request) -> &str {
        &self.owners[r.owner as usize]
    }
    pub fn provider(&self, r: &Request) -> &'static str {
        PROVIDERS[r.provider as usize]
    }
}

/// RFC 3339 with `Z`, whole seconds.
pub fn rfc3339(micros: i64) -> String {
    DateTime::<Utc>::from_timestamp_micros(micros).expect("time in range").to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn parse_rfc3339(text: &str) -> i64 {
    DateTime::parse_from_rfc3339(text).expect("an RFC 3339 timestamp").with_timezone(&Utc).timestamp_micros()
}

const WINDOW_REASONS: [&str; 6] =
    ["database migration", "provider maintenance", "change freeze", "datacenter failover drill", "network upgrade", "release train cut-over"];
const ABSENCE_REASONS: [&str; 4] = ["vacation", "public holiday", "on leave", "offsite"];

/// Generates the workload for a configuration. Deterministic.
pub fn generate(config: &WorkloadConfig) -> Workload {
    let mut rng = SplitMix64::new(config.seed);
    let owners: Vec<String> = (0..OWNERS).map(|i| format!("team-{i:03}")).collect();
    let owner_routes: Vec<Vec<u32>> = (0..OWNERS)
        .map(|_| {
            let k = rng.range(1, 3) as usize;
            let mut routes: Vec<u32> = rng.distinct(k, PROVIDERS.len()).into_iter().map(|p| p as u32).collect();
            routes.sort_unstable();
            routes
        })
        .collect();

    // Scope kinds, shuffled so that global windows sit anywhere in policy order.
    #[derive(Clone, Copy)]
    enum Scope {
        Global,
        Providers,
        Owners,
    }
    let mut scopes: Vec<Scope> = Vec::with_capacity(config.windows);
    scopes.resize(config.global_windows, Scope::Global);
    scopes.resize(config.global_windows + config.provider_windows, Scope::Providers);
    scopes.resize(config.windows, Scope::Owners);
    for i in (1..scopes.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        scopes.swap(i, j);
    }

    let pick_providers = |rng: &mut SplitMix64| -> Vec<Json> {
        let k = rng.range(1, 2) as usize;
        rng.distinct(k, PROVIDERS.len()).into_iter().map(|p| json!(PROVIDERS[p])).collect()
    };
    let mut windows = Vec::with_capacity(config.windows);
    for (i, scope) in scopes.iter().enumerate() {
        let duration = rng.range(30, 8 * 60) * MINUTE;
        let start = SPAN_START + rng.range(0, (SPAN - duration) / SECOND) * SECOND;
        let (window_owners, window_providers): (Vec<Json>, Vec<Json>) = match scope {
            Scope::Global => (vec![], vec![]),
            Scope::Providers => (vec![], pick_providers(&mut rng)),
            Scope::Owners => {
                let k = rng.range(1, 4) as usize;
                let o = rng.distinct(k, OWNERS).into_iter().map(|o| json!(owners[o])).collect();
                let p = if rng.chance(config.owner_and_provider_share) { pick_providers(&mut rng) } else { vec![] };
                (o, p)
            }
        };
        let reason = WINDOW_REASONS[rng.below(WINDOW_REASONS.len() as u64) as usize];
        windows.push(json!({
            "window_id": format!("mw-{i:05}"),
            "start_at": rfc3339(start),
            "end_at": rfc3339(start + duration),
            "owners": window_owners,
            "providers": window_providers,
            "reason": reason,
        }));
    }

    let mut calendars = Map::new();
    for owner in &owners {
        let n = rng.range(0, 5);
        if n == 0 {
            continue; // no calendar entry at all: the lookup misses
        }
        let absences: Vec<Json> = (0..n)
            .map(|_| {
                let duration = rng.range(60, 3 * 24 * 60) * MINUTE;
                let start = SPAN_START + rng.range(0, (SPAN - duration) / SECOND) * SECOND;
                let reason = ABSENCE_REASONS[rng.below(ABSENCE_REASONS.len() as u64) as usize];
                json!({"start_at": rfc3339(start), "end_at": rfc3339(start + duration), "reason": reason})
            })
            .collect();
        calendars.insert(owner.clone(), json!({ "unavailable_windows": absences }));
    }

    // Every owner has a route entry (1–3 providers); requests draw the provider
    // from all five, so those whose provider is off the route are skipped
    // (about 60%: an owner is routed to 2 of 5 providers on average).
    let routes: Map<String, Json> = owners
        .iter()
        .zip(&owner_routes)
        .map(|(owner, route)| (owner.clone(), json!({ "providers": route.iter().map(|&p| PROVIDERS[p as usize]).collect::<Vec<_>>() })))
        .collect();

    let requests = (0..config.requests)
        .map(|_| {
            let owner = rng.below(OWNERS as u64) as u32;
            let provider = rng.below(PROVIDERS.len() as u64) as u32;
            let now = SPAN_START + rng.range(0, SPAN / SECOND - 1) * SECOND;
            Request { owner, provider, now }
        })
        .collect();

    let policy = json!({ "owner_routes": routes, "maintenance_windows": windows, "owner_calendars": calendars });
    Workload { config: config.clone(), owners, owner_routes, policy, requests }
}

// ---- the plain-loop baseline ------------------------------------------------------

#[derive(Clone, Debug)]
pub struct PlainWindow {
    pub window_id: String,
    pub start_at: i64,
    pub end_at: i64,
    pub owners: Vec<String>,
    pub providers: Vec<String>,
    pub reason: String,
}

#[derive(Clone, Debug)]
pub struct PlainAbsence {
    pub start_at: i64,
    pub end_at: i64,
    pub reason: String,
}

/// The policy as plain structs, times in microseconds since the epoch.
#[derive(Clone, Debug, Default)]
pub struct PlainPolicy {
    /// Each owner's route: the providers its notifications go to.
    pub owner_routes: HashMap<String, Vec<String>>,
    pub maintenance_windows: Vec<PlainWindow>,
    pub owner_calendars: HashMap<String, Vec<PlainAbsence>>,
}

fn texts(json: &Json) -> Vec<String> {
    json.as_array().map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect()).unwrap_or_default()
}

impl PlainPolicy {
    /// Parses the domain JSON once (the same document cavra binds).
    pub fn from_json(policy: &Json) -> PlainPolicy {
        let owner_routes = policy["owner_routes"]
            .as_object()
            .map(|routes| routes.iter().map(|(owner, route)| (owner.clone(), texts(&route["providers"]))).collect())
            .unwrap_or_default();
        let maintenance_windows = policy["maintenance_windows"]
            .as_array()
            .map(|ws| {
                ws.iter()
                    .map(|w| PlainWindow {
                        window_id: w["window_id"].as_str().unwrap_or_default().to_string(),
                        start_at: parse_rfc3339(w["start_at"].as_str().expect("start_at")),
                        end_at: parse_rfc3339(w["end_at"].as_str().expect("end_at")),
                        owners: texts(&w["owners"]),
                        providers: texts(&w["providers"]),
                        reason: w["reason"].as_str().unwrap_or("maintenance window").to_string(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let owner_calendars = policy["owner_calendars"]
            .as_object()
            .map(|cals| {
                cals.iter()
                    .map(|(owner, cal)| {
                        let absences = cal["unavailable_windows"]
                            .as_array()
                            .map(|us| {
                                us.iter()
                                    .map(|u| PlainAbsence {
                                        start_at: parse_rfc3339(u["start_at"].as_str().expect("start_at")),
                                        end_at: parse_rfc3339(u["end_at"].as_str().expect("end_at")),
                                        reason: u["reason"].as_str().unwrap_or("owner unavailable").to_string(),
                                    })
                                    .collect()
                            })
                            .unwrap_or_default();
                        (owner.clone(), absences)
                    })
                    .collect()
            })
            .unwrap_or_default();
        PlainPolicy { owner_routes, maintenance_windows, owner_calendars }
    }
}

/// The reason of a skip, as `packs/decision_loop.cavra` gives it.
pub const NOT_ON_ROUTE_REASON: &str = "the provider is not on the owner's route";
/// The reason of a delivery, as `packs/decision_loop.cavra` gives it.
pub const DELIVER_REASON: &str = "no maintenance window or absence applies";

/// A routing decision of the baselines, borrowing from the policy.
/// `NotOnRoute`: the provider is not on the owner's route (or the owner has no route).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision<'p> {
    NotOnRoute,
    Deliver,
    MaintenanceWindow { window_id: &'p str, reason: &'p str },
    OwnerCalendar { reason: &'p str },
}

impl<'p> Decision<'p> {
    pub fn action(&self) -> &'static str {
        match self {
            Decision::NotOnRoute => "skip",
            Decision::Deliver => "deliver",
            Decision::MaintenanceWindow { .. } | Decision::OwnerCalendar { .. } => "suppress",
        }
    }
    pub fn category(&self) -> &'static str {
        match self {
            Decision::NotOnRoute => "not_on_route",
            Decision::Deliver => "deliver",
            Decision::MaintenanceWindow { .. } => "maintenance_window",
            Decision::OwnerCalendar { .. } => "owner_calendar",
        }
    }
    pub fn reason(&self) -> &'p str {
        match self {
            Decision::NotOnRoute => NOT_ON_ROUTE_REASON,
            Decision::Deliver => DELIVER_REASON,
            Decision::MaintenanceWindow { reason, .. } | Decision::OwnerCalendar { reason } => reason,
        }
    }
    /// The outcome fields the pack gives this decision (`with { ... }`), in order.
    pub fn fields(&self) -> Vec<(&'static str, &'p str)> {
        match self {
            Decision::MaintenanceWindow { window_id, .. } => vec![("maintenance_window_id", window_id)],
            Decision::OwnerCalendar { .. } => vec![("owner_availability", "unavailable")],
            Decision::NotOnRoute | Decision::Deliver => vec![],
        }
    }
    pub fn is_suppressed(&self) -> bool {
        matches!(self, Decision::MaintenanceWindow { .. } | Decision::OwnerCalendar { .. })
    }
    /// Everything the decision says, in the form [`said_by_cavra`] gives for an outcome.
    pub fn said(&self) -> Said<'p> {
        Said { action: self.action(), category: self.category(), reason: self.reason(), fields: self.fields() }
    }
}

/// Everything a decision says (action, category, reason and every outcome
/// field as text), so that the implementations can be compared field by field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Said<'a> {
    pub action: &'a str,
    pub category: &'a str,
    pub reason: &'a str,
    pub fields: Vec<(&'a str, &'a str)>,
}

/// What a cavra outcome says. A field that is not text shows as `<not text>`,
/// so that it differs from any baseline's field.
pub fn said_by_cavra<'o>(outcome: &'o Outcome<'_>) -> Said<'o> {
    Said {
        action: outcome.action,
        category: outcome.category,
        reason: reason_text(outcome),
        fields: outcome.fields().map(|(k, v)| (k, v.as_text().unwrap_or("<not text>"))).collect(),
    }
}

/// The hand-written baseline: the owner's route first (looked up in a
/// `HashMap`; a missing route has no providers), then plain loops, first
/// match in policy order.
pub fn plain_decide<'p>(policy: &'p PlainPolicy, owner: &str, provider: &str, now: i64) -> Decision<'p> {
    match policy.owner_routes.get(owner) {
        Some(providers) if providers.iter().any(|p| p == provider) => {}
        _ => return Decision::NotOnRoute,
    }
    for w in &policy.maintenance_windows {
        if w.start_at <= now
            && now < w.end_at
            && (w.owners.is_empty() || w.owners.iter().any(|o| o == owner))
            && (w.providers.is_empty() || w.providers.iter().any(|p| p == provider))
        {
            return Decision::MaintenanceWindow { window_id: &w.window_id, reason: &w.reason };
        }
    }
    if let Some(absences) = policy.owner_calendars.get(owner) {
        for u in absences {
            if u.start_at <= now && now < u.end_at {
                return Decision::OwnerCalendar { reason: &u.reason };
            }
        }
    }
    Decision::Deliver
}

// ---- the segment-table baseline ---------------------------------------------------

/// FxHash, the rustc hasher: one rotate, xor and multiply per 8 bytes. Not
/// resistant to chosen keys, which is fine for a policy's own owner and
/// provider names; written out here (a few lines) so that the baseline hashes
/// as cheaply as the engine's `rustc-hash` maps without another dependency.
#[derive(Clone, Copy, Debug, Default)]
pub struct FxHasher(u64);

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            let mut buf = [0u8; 8];
            buf.copy_from_slice(word);
            self.add(u64::from_le_bytes(buf));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut buf = [0u8; 8];
            buf[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(buf));
        }
    }
    #[inline]
    fn write_u8(&mut self, byte: u8) {
        self.add(u64::from(byte));
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

type FxBuildHasher = BuildHasherDefault<FxHasher>;

/// The practical limit for this decision, written by hand: for every
/// (owner, provider) pair on a route, the time line cut into disjoint
/// segments at the bounds of every window that applies to the pair and of
/// every absence of the owner, each labelled with the decision that holds in
/// it (adjacent equal segments merged). A decision is one hash of the pair
/// and one binary search; a pair that is not on a route (so is skipped at
/// every instant) is not in the table and gives [`Decision::NotOnRoute`].
///
/// Built so that it is obviously [`plain_decide`]: between two consecutive
/// bounds no window or absence that matters for the pair starts or ends, so
/// `plain_decide` gives the same decision at every instant of a segment; the
/// table stores what it gives at the segment's start.
pub struct SegmentTable<'p> {
    /// Each routed pair's segments: the range of `starts` and `decisions` that is its own.
    pairs: HashMap<(&'p str, &'p str), (u32, u32), FxBuildHasher>,
    /// The start of each segment, ascending per pair; a pair's first segment
    /// starts at `i64::MIN`, so some segment always contains the instant.
    starts: Vec<i64>,
    /// The decision of the segment at the same position in `starts`.
    decisions: Vec<Decision<'p>>,
}

impl<'p> SegmentTable<'p> {
    /// Builds the table once from the plain policy (not timed by the benchmark).
    pub fn new(policy: &'p PlainPolicy) -> SegmentTable<'p> {
        let mut table = SegmentTable { pairs: HashMap::default(), starts: Vec::new(), decisions: Vec::new() };
        for (owner, providers) in &policy.owner_routes {
            let absences = policy.owner_calendars.get(owner).map(Vec::as_slice).unwrap_or_default();
            for provider in providers {
                if table.pairs.contains_key(&(owner.as_str(), provider.as_str())) {
                    continue; // a provider listed twice in the route
                }
                let applies =
                    |w: &&PlainWindow| (w.owners.is_empty() || w.owners.contains(owner)) && (w.providers.is_empty() || w.providers.contains(provider));
                let mut bounds: Vec<i64> = policy.maintenance_windows.iter().filter(applies).flat_map(|w| [w.start_at, w.end_at]).collect();
                bounds.extend(absences.iter().flat_map(|u| [u.start_at, u.end_at]));
                bounds.sort_unstable();
                bounds.dedup();
                let first = table.starts.len();
                table.starts.push(i64::MIN);
                table.decisions.push(plain_decide(policy, owner, provider, i64::MIN));
                for start in bounds {
                    let decision = plain_decide(policy, owner, provider, start);
                    if table.decisions.last() != Some(&decision) {
                        table.starts.push(start);
                        table.decisions.push(decision);
                    }
                }
                let end = u32::try_from(table.starts.len()).expect("fewer than 2^32 segments");
                table.pairs.insert((owner, provider), (first as u32, end));
            }
        }
        table
    }

    /// The decision for one request: the same as [`plain_decide`] on the policy the table was built from.
    #[inline]
    pub fn decide(&self, owner: &str, provider: &str, now: i64) -> Decision<'p> {
        let Some(&(first, end)) = lookup(&self.pairs, owner, provider) else {
            return Decision::NotOnRoute;
        };
        let starts = &self.starts[first as usize..end as usize];
        // `starts[0]` is `i64::MIN <= now`, so the count is at least 1.
        self.decisions[first as usize + starts.partition_point(|&s| s <= now) - 1]
    }

    /// The number of segments over all routed pairs (for reports and tests).
    pub fn segments(&self) -> usize {
        self.starts.len()
    }

    /// The number of routed (owner, provider) pairs.
    pub fn routed_pairs(&self) -> usize {
        self.pairs.len()
    }
}

/// Looks a pair up with keys that live shorter than the table's: the map is
/// covariant in its key, so it can be read as a map of shorter-lived keys
/// (the value, two indexes, borrows nothing).
#[inline]
fn lookup<'m, 'a>(pairs: &'m HashMap<(&'a str, &'a str), (u32, u32), FxBuildHasher>, owner: &'a str, provider: &'a str) -> Option<&'m (u32, u32)> {
    pairs.get(&(owner, provider))
}

// ---- cavra ---------------------------------------------------------------------------

/// Compiles `packs/decision_loop.cavra` (panics with the rendered diagnostics on error).
pub fn decision_loop_pack() -> cavra_engine::Pack {
    cavra_engine::compile("decision_loop.cavra", DECISION_LOOP_PACK).unwrap_or_else(|d| panic!("{}", d.render(false)))
}

/// Compiles the decision pack and binds it to `policy` (building the indexes).
pub fn cavra_program(policy: &Json) -> Program {
    bind_policy(&decision_loop_pack(), policy)
}

pub fn bind_policy(pack: &cavra_engine::Pack, policy: &Json) -> Program {
    pack.bind(&HashMap::from([("policy".to_string(), policy.clone())])).unwrap_or_else(|e| panic!("binding the policy: {e}"))
}

/// The dynamic inputs of every request, built up front so that a timed loop
/// only calls `decide`. Owner and provider texts are shared (`Arc`).
pub fn build_inputs(program: &Program, workload: &Workload) -> Vec<Inputs> {
    let slot = |name: &str| program.input_slot(name).unwrap_or_else(|| panic!("the pack has no input `{name}`"));
    let (now, owner, provider) = (slot("now"), slot("owner"), slot("provider"));
    let owners: Vec<Value> = workload.owners.iter().map(|o| Value::text(o)).collect();
    let providers: Vec<Value> = PROVIDERS.iter().map(|p| Value::text(p)).collect();
    let template = program.inputs();
    workload
        .requests
        .iter()
        .map(|r| {
            let mut inputs = template.clone();
            inputs.set(now, Value::Time(r.now));
            inputs.set(owner, owners[r.owner as usize].clone());
            inputs.set(provider, providers[r.provider as usize].clone());
            inputs
        })
        .collect()
}

/// The keys of every (owner, provider) pair resolved once for the `route`
/// decision ([`cavra_engine::Decider::keys`]), by `owner * PROVIDERS.len() + provider`:
/// the cheap calls of a caller that decides the same pairs many times.
pub fn build_keys(program: &Program, workload: &Workload) -> Vec<cavra_engine::Keys> {
    let decider = program.decider("route").expect("the pack has a `route` decision");
    let slot = |name: &str| program.input_slot(name).unwrap_or_else(|| panic!("the pack has no input `{name}`"));
    let (owner, provider) = (slot("owner"), slot("provider"));
    let mut keys = Vec::with_capacity(workload.owners.len() * PROVIDERS.len());
    for o in &workload.owners {
        for p in PROVIDERS {
            let mut inputs = program.inputs();
            inputs.set(owner, Value::text(o));
            inputs.set(provider, Value::text(p));
            keys.push(decider.keys(&inputs));
        }
    }
    keys
}

/// The index of a request's pair in [`build_keys`].
#[inline]
pub fn pair(r: &Request) -> usize {
    r.owner as usize * PROVIDERS.len() + r.provider as usize
}

/// Runs the `route` decision for one request.
#[inline]
pub fn cavra_decide<'p>(program: &'p Program, inputs: &Inputs) -> Outcome<'p> {
    program.decide("route", inputs).expect("the route decision evaluates")
}

/// The text of an outcome's reason (empty when absent or not text).
pub fn reason_text<'o>(outcome: &'o Outcome<'_>) -> &'o str {
    outcome.reason().and_then(Value::as_text).unwrap_or("")
}

/// How many requests each decision took, for checking that the
/// implementations agree before timing them and for the workload's shares.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub not_on_route: usize,
    pub maintenance_window: usize,
    pub owner_calendar: usize,
    pub deliver: usize,
}

impl Tally {
    /// Counts one decision by its category.
    pub fn add(&mut self, category: &str) {
        match category {
            "not_on_route" => self.not_on_route += 1,
            "maintenance_window" => self.maintenance_window += 1,
            "owner_calendar" => self.owner_calendar += 1,
            "deliver" => self.deliver += 1,
            other => panic!("unknown category {other}"),
        }
    }
    pub fn total(&self) -> usize {
        self.not_on_route + self.maintenance_window + self.owner_calendar + self.deliver
    }
    pub fn suppressed(&self) -> usize {
        self.maintenance_window + self.owner_calendar
    }
    /// The requests whose provider is on the owner's route.
    pub fn routed(&self) -> usize {
        self.total() - self.not_on_route
    }
}

/// A workload with everything the benchmark needs, prepared once.
pub struct Prepared {
    pub workload: Workload,
    pub plain: PlainPolicy,
    pub program: Program,
    pub inputs: Vec<Inputs>,
    /// Per (owner, provider) pair ([`pair`]): its keys, resolved once.
    pub keys: Vec<cavra_engine::Keys>,
}

impl Prepared {
    pub fn new(windows: usize) -> Prepared {
        let workload = generate(&WorkloadConfig::for_windows(windows));
        let plain = PlainPolicy::from_json(&workload.policy);
        let program = cavra_program(&workload.policy);
        let inputs = build_inputs(&program, &workload);
        let keys = build_keys(&program, &workload);
        Prepared { workload, plain, program, inputs, keys }
    }

    /// The segment table of the plain policy (it borrows the policy's texts).
    pub fn segment_table(&self) -> SegmentTable<'_> {
        SegmentTable::new(&self.plain)
    }

    /// One pass of the plain-loop baseline over all requests.
    pub fn run_plain(&self) -> Tally {
        let mut tally = Tally::default();
        for r in &self.workload.requests {
            tally.add(plain_decide(&self.plain, self.workload.owner(r), self.workload.provider(r), r.now).category());
        }
        tally
    }

    /// One pass of the segment-table baseline over all requests.
    pub fn run_segments(&self, table: &SegmentTable<'_>) -> Tally {
        let mut tally = Tally::default();
        for r in &self.workload.requests {
            tally.add(table.decide(self.workload.owner(r), self.workload.provider(r), r.now).category());
        }
        tally
    }

    /// One pass of cavra with each pair's keys resolved ahead
    /// (`Decider::decide_at_with`), the outcome read in place.
    pub fn run_cavra_keys(&self) -> Tally {
        let decider = self.program.decider("route").expect("a route decision");
        let mut tally = Tally::default();
        for r in &self.workload.requests {
            let category = decider.decide_at_with(&self.keys[pair(r)], r.now, |o| o.category()).expect("the route decision evaluates");
            tally.add(category);
        }
        tally
    }

    /// One pass of cavra through a [`cavra_engine::Decider`] looked up once:
    /// the text keys hashed per request as the segment tables do, the
    /// outcome read in place (`Decider::decide_with`).
    pub fn run_cavra_decider(&self) -> Tally {
        let decider = self.program.decider("route").expect("a route decision");
        let mut tally = Tally::default();
        for inputs in &self.inputs {
            tally.add(decider.decide_with(inputs, |o| o.category()).expect("the route decision evaluates"));
        }
        tally
    }

    /// One pass of cavra over all requests.
    pub fn run_cavra(&self) -> Tally {
        let mut tally = Tally::default();
        for inputs in &self.inputs {
            tally.add(cavra_decide(&self.program, inputs).category);
        }
        tally
    }
}

// ---- plan assembly ---------------------------------------------------------------

/// The bundled routing pack, as the CLI and the API run it.
pub const ROUTING_PACK: &str = include_str!("../../rules/routing.cavra");

/// Schedules in the plan-assembly workload.
pub const PLAN_SCHEDULES: usize = 10_000;

/// The plan-assembly workload: the 500-window policy of the decision loop
/// (plus owner routes and schedule-scoped windows) and 10,000 schedules of 3
/// owners x 3 providers each, planned at one instant.
pub struct PlanWorkload {
    pub pack: cavra_engine::Pack,
    /// The policy document, as the plan command binds it.
    pub documents: HashMap<String, Json>,
    /// The program bound to the policy with the clock pinned to `now`.
    pub program: Program,
    pub schedules: Vec<cavra_app::routing::ScheduleRoutes>,
    pub now: i64,
}

impl PlanWorkload {
    pub fn new() -> PlanWorkload {
        let workload = generate(&WorkloadConfig::for_windows(500));
        let mut rng = SplitMix64::new(0x91A7);
        let mut policy = workload.policy.clone();
        // Every 10th window is scoped to a few schedules, as change freezes for one service are.
        for (i, window) in policy["maintenance_windows"].as_array_mut().expect("windows").iter_mut().enumerate() {
            if i % 10 == 0 {
                let ids: Vec<Json> = (0..3).map(|_| json!(schedule_id(rng.below(PLAN_SCHEDULES as u64) as usize))).collect();
                window["schedule_ids"] = Json::Array(ids);
            }
        }
        let routes: Map<String, Json> = workload
            .owners
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 3 == 0)
            .map(|(i, o)| (o.clone(), json!({"acknowledgement_minutes": 15 + (i % 4) * 15, "escalation_owner": format!("lead-{:02}", i % 20)})))
            .collect();
        policy["owner_routes"] = Json::Object(routes);
        policy["acknowledgement_minutes"] = json!(45);

        let pack = cavra_engine::compile_with("rules/routing.cavra", ROUTING_PACK, &cavra_app::modules::RuleFiles::bundled())
            .unwrap_or_else(|d| panic!("{}", d.render(false)));
        let now = SPAN_START + 12 * DAY + 14 * HOUR;
        let documents = HashMap::from([("policy".to_string(), policy)]);
        let program = pack.bind_with(&documents, cavra_engine::BindOptions::at(now)).unwrap_or_else(|e| panic!("binding: {e}"));

        let providers: Vec<std::sync::Arc<str>> = PROVIDERS.iter().map(|p| std::sync::Arc::from(*p)).collect();
        let owners: Vec<std::sync::Arc<str>> = workload.owners.iter().map(|o| std::sync::Arc::from(o.as_str())).collect();
        let schedules = (0..PLAN_SCHEDULES)
            .map(|s| {
                let routed: Vec<std::sync::Arc<str>> = rng.distinct(3, PROVIDERS.len()).into_iter().map(|p| providers[p].clone()).collect();
                let owners = rng
                    .distinct(3, OWNERS)
                    .into_iter()
                    .map(|o| cavra_app::routing::OwnerProviders { owner: owners[o].clone(), configured: routed.clone(), providers: routed.clone() })
                    .collect();
                let status = if s % 10 == 0 {
                    "healthy"
                } else if s % 3 == 0 {
                    "needs_attention"
                } else {
                    "due_soon"
                };
                cavra_app::routing::ScheduleRoutes { schedule_id: std::sync::Arc::from(schedule_id(s).as_str()), status: std::sync::Arc::from(status), owners }
            })
            .collect();
        PlanWorkload { pack, documents, program, schedules, now }
    }

    /// The plan records (with content-hash ids) of routed schedules, in parallel.
    pub fn documents(&self, planned: &cavra_app::routing::PlanBatch) -> Vec<cavra_app::records::Plan> {
        let generated_at = rfc3339(self.now);
        let pairs: Vec<_> = self.schedules.iter().zip(planned.iter().map(|p| p.expect("decides"))).collect();
        cavra_app::parallel::parallel_map(&pairs, |(s, p)| {
            let status = cavra_app::records::ReadinessStatus::parse(&s.status);
            let header = cavra_app::routing::PlanHeader {
                generated_at: &generated_at,
                generated_by: "bench",
                mode: "promoted",
                status: &status,
                reason: "benchmark",
                episode: Some("2026-06-01T00:00:00Z"),
                policy_sources: &[],
                policy_id: "pol_bench",
            };
            cavra_app::routing::plan_document(&header, s, *p)
        })
    }
}

impl Default for PlanWorkload {
    fn default() -> Self {
        Self::new()
    }
}

fn schedule_id(i: usize) -> String {
    format!("drill-{i:05}")
}
pub mod plan_store;
