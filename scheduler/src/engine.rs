//! The process-wide engine: the catalog's session template and the
//! Ballista cluster (embedded and started on first use, or a running
//! `quipu scheduler`). Clients run statements through a
//! [`ClientSession`](crate::session::ClientSession) each; where a statement
//! runs is decided by [`crate::placement`], and its results come back as
//! the streams of [`crate::streams`].

use std::sync::Arc;

use ballista_core::extension::SessionStateExt;
use datafusion::execution::SessionStateBuilder;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionContext;
use quipu_connectors::{Access, QuipuSession};
use tokio::sync::OnceCell;

use crate::cluster::{self, Cluster};
use crate::error::Result;
// The paths other crates name (`quipu_scheduler::engine::...`) from
// before the session and the streams had files of their own.
pub use crate::session::{ClientSession, Planned, Work};
pub use crate::streams::{ExecutedOn, QueryOutput, one};

/// The process-wide engine: catalog, session template, embedded cluster.
pub struct Engine {
    session: QuipuSession,
    cluster: OnceCell<Cluster>,
    vcores: usize,
    /// The materialized views, prepared for the rewrite, per catalog
    /// generation (`crate::cache::rewrite`).
    cache_memo: crate::cache::rewrite::Memo,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("session", &self.session)
            .finish()
    }
}

impl Engine {
    pub(crate) fn cache_memo(&self) -> &crate::cache::rewrite::Memo {
        &self.cache_memo
    }

    /// How many times this engine prepared the materialized views for
    /// the rewrite (once per catalog generation; for tests and
    /// measurements).
    #[doc(hidden)]
    pub fn cache_preparations(&self) -> u64 {
        self.cache_memo.preparations()
    }

    /// Forgets the prepared materialized views, so the next statement
    /// prepares them again (to measure what preparing once saves).
    #[doc(hidden)]
    pub fn forget_prepared_caches(&self) {
        self.cache_memo.clear()
    }

    pub fn new(session: QuipuSession) -> Arc<Self> {
        let vcores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        Arc::new(Engine {
            session,
            cluster: OnceCell::new(),
            vcores,
            cache_memo: Default::default(),
        })
    }

    /// An engine whose cluster is already running (a `quipu scheduler`
    /// process and its executors): cluster queries go there.
    pub fn with_cluster(session: QuipuSession, cluster: Cluster) -> Arc<Self> {
        let engine = Engine::new(session);
        // A fresh cell: set cannot fail.
        let _ = engine.cluster.set(cluster);
        engine
    }

    /// An engine that submits cluster queries to the scheduler at
    /// `scheduler_url` (`http://host:port`) instead of starting its own.
    pub fn remote(session: QuipuSession, scheduler_url: &str) -> Arc<Self> {
        Self::with_cluster(session, Cluster::at(scheduler_url.trim_end_matches('/')))
    }

    /// Opens the catalog in `data_dir`.
    pub fn open(data_dir: impl AsRef<std::path::Path>) -> Result<Arc<Self>> {
        Ok(Self::new(QuipuSession::open(data_dir)?))
    }

    pub fn session(&self) -> &QuipuSession {
        &self.session
    }

    /// A new client session with its own settings.
    pub fn client(self: &Arc<Self>) -> ClientSession {
        ClientSession::new(self.clone(), self.session.state(), Access::all())
    }

    /// A client session that sees and reads only what `access` grants
    /// (front-door users).
    pub fn client_for(self: &Arc<Self>, access: Access) -> ClientSession {
        ClientSession::new(self.clone(), self.session.state_for(access.clone()), access)
    }

    /// The embedded cluster, started on first use.
    pub async fn cluster(&self) -> Result<&Cluster> {
        self.cluster
            .get_or_try_init(|| cluster::start(&self.session, self.vcores))
            .await
    }

    /// Plans `plan` with `session`'s state for the Ballista cluster: the
    /// context that runs it, its physical plan and the scheduler's address.
    pub(crate) async fn cluster_physical(
        &self,
        session: &SessionContext,
        plan: LogicalPlan,
    ) -> Result<(SessionContext, Arc<dyn ExecutionPlan>, String)> {
        let cluster = self.cluster().await?;
        if let Some(probe) = &cluster.executors {
            probe.wait_for_one(&cluster.scheduler_url).await?;
        }
        // The client side encodes the plan with Quipu's codecs too.
        let state = session.state();
        let config = crate::cluster::with_codecs(
            quipu_executor::static_planner(state.config().clone()),
            self.session(),
        );
        let cluster_state = SessionStateBuilder::new_from_existing(state)
            .with_config(config)
            .build()
            .upgrade_for_ballista(cluster.scheduler_url.clone())?;
        let ctx = SessionContext::new_with_state(cluster_state);
        let physical = ctx
            .execute_logical_plan(plan)
            .await?
            .create_physical_plan()
            .await?;
        Ok((ctx, physical, cluster.scheduler_url.clone()))
    }
}
