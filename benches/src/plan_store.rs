//! The plan-assembly workload's batch as the plan command stores it
//! (`cavra_app::plan::store_plans`: the lifecycle's pending and failed
//! counts from the schedules' history, then the plans, their routes and the
//! policy in one transaction), for the `store_10000_plans` benchmark groups
//! and the `plan_store` example.

use crate::PlanWorkload;
use cavra_app::records::{Plan, PolicyRecord};
use cavra_app::store::{SaveOutcome, SqliteStore, Store};
use cavra_app::PackSource;
use std::path::{Path, PathBuf};

/// What the batch is stored with: the workload's policy under the id its
/// plans name (`pol_bench`), and the bundled packs (the escalation pack
/// decides the lifecycle).
pub struct PlanStore {
    pub policy: PolicyRecord,
    pub packs: PackSource,
}

impl PlanStore {
    pub fn new(workload: &PlanWorkload) -> PlanStore {
        let policy = workload.documents.get("policy").map(|p| p.to_string()).unwrap_or_default();
        PlanStore { policy: PolicyRecord { policy_id: "pol_bench".to_string(), document: policy }, packs: PackSource::Bundled }
    }

    /// The plan command's save path for the whole batch: counts, then one transaction.
    pub fn save_path(&self, store: &dyn Store, plans: &mut [Plan]) -> Vec<SaveOutcome> {
        cavra_app::plan::store_plans(&self.packs, store, plans, std::slice::from_ref(&self.policy)).expect("the batch is stored")
    }

    /// The lifecycle part alone: each plan's pending and failed counts.
    pub fn lifecycle_counts(&self, store: &dyn Store, plans: &mut [Plan]) {
        cavra_app::plan::count_open_all(&self.packs, store, plans).expect("the lifecycle is derived")
    }

    /// The plans as the save path writes them (counts and `stored` set), to
    /// time their rows alone with `Store::save_plans`.
    pub fn as_written(&self, plans: &[Plan], scratch: &Path) -> Vec<Plan> {
        let mut plans = plans.to_vec();
        let store = SqliteStore::open(scratch).expect("a scratch store");
        self.save_path(&store, &mut plans);
        drop(store);
        remove_store(scratch);
        plans
    }
}

/// A fresh SQLite store file `store-N.db` in `dir`: the previous one is removed first (each holds the whole batch).
pub fn fresh_sqlite(dir: &Path, run: &mut usize) -> SqliteStore {
    remove_store(&dir.join(format!("store-{run}.db")));
    *run += 1;
    let path = dir.join(format!("store-{run}.db"));
    remove_store(&path);
    SqliteStore::open(&path).expect("a fresh store")
}

/// Removes a SQLite store file with its WAL and shared-memory files.
pub fn remove_store(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut file = PathBuf::from(path);
        file.as_mut_os_string().push(suffix);
        let _ = std::fs::remove_file(file);
    }
}
