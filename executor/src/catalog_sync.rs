//! The executor's copy of the catalog.
//!
//! The catalog lives with the scheduler. An executor keeps a replica in its
//! work directory: fetched at start over the scheduler's HTTP channel
//! (`GET /catalog`, bearer cluster token), then polled
//! (`GET /catalog/generation`) so a catalog change reaches running
//! executors without a restart. The replica holds source definitions with
//! secret *references*; the executor resolves them from its own environment
//! and files when it connects.

use std::sync::Arc;
use std::time::Duration;

use quipu_catalog::{CatalogSnapshot, CatalogStore};

/// Why the catalog could not be fetched. The token is never part of it.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("cannot reach the scheduler's catalog at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error(
        "the scheduler at {url} refused the cluster token (HTTP {status}): \
         give every process the same QUIPU_CLUSTER_TOKEN"
    )]
    Refused { url: String, status: u16 },
    #[error("the scheduler at {url} answered HTTP {status}: {body}")]
    Bad {
        url: String,
        status: u16,
        body: String,
    },
    #[error("cannot store the catalog replica: {0}")]
    Store(#[from] quipu_catalog::CatalogError),
}

/// A client of the scheduler's catalog channel.
#[derive(Clone)]
pub struct CatalogClient {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl std::fmt::Debug for CatalogClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CatalogClient")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl CatalogClient {
    /// `base` is the scheduler's HTTP address (`http://host:50060`).
    pub fn new(base: &str, token: &str) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap_or_default();
        CatalogClient {
            base: base.trim_end_matches('/').to_string(),
            token: token.to_string(),
            http,
        }
    }

    async fn get(&self, path: &str) -> Result<reqwest::Response, SyncError> {
        let url = format!("{}{path}", self.base);
        let resp = self
            .http
            .get(&url)
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|e| SyncError::Unreachable {
                url: url.clone(),
                reason: reqwest_reason(&e),
            })?;
        let status = resp.status().as_u16();
        match status {
            200 => Ok(resp),
            401 | 403 => Err(SyncError::Refused { url, status }),
            _ => {
                let body = resp.text().await.unwrap_or_default();
                Err(SyncError::Bad {
                    url,
                    status,
                    body: body.chars().take(300).collect(),
                })
            }
        }
    }

    /// The scheduler's catalog generation.
    pub async fn generation(&self) -> Result<u64, SyncError> {
        let resp = self.get("/catalog/generation").await?;
        let url = resp.url().to_string();
        let text = resp.text().await.map_err(|e| SyncError::Unreachable {
            url: url.clone(),
            reason: reqwest_reason(&e),
        })?;
        text.trim().parse().map_err(|_| SyncError::Bad {
            url,
            status: 200,
            body: format!("not a generation number: {:.60}", text.trim()),
        })
    }

    /// The whole catalog.
    pub async fn snapshot(&self) -> Result<CatalogSnapshot, SyncError> {
        let resp = self.get("/catalog").await?;
        let url = resp.url().to_string();
        resp.json().await.map_err(|e| SyncError::Bad {
            url,
            status: 200,
            body: format!("not a catalog snapshot: {e}"),
        })
    }

    /// Brings `store` to the scheduler's generation; true if it changed.
    pub async fn sync(&self, store: &CatalogStore) -> Result<bool, SyncError> {
        let remote = self.generation().await?;
        if remote == store.generation()? {
            return Ok(false);
        }
        let snap = self.snapshot().await?;
        store.replace_with(&snap)?;
        quipu_connectors::metrics::metrics()
            .catalog_generation
            .set(snap.generation as i64);
        tracing::info!(generation = snap.generation, "catalog replica updated");
        Ok(true)
    }

    /// Fetches the catalog, retrying while the scheduler is unreachable
    /// (it may still be starting) for at most `patience`. A refused token
    /// or a bad answer fails at once.
    pub async fn sync_at_start(
        &self,
        store: &CatalogStore,
        patience: Duration,
    ) -> Result<(), SyncError> {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            match self.sync(store).await {
                Ok(_) => return Ok(()),
                Err(SyncError::Unreachable { .. }) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Polls the scheduler every `every` and applies catalog changes.
    pub fn spawn_poller(
        self,
        store: Arc<CatalogStore>,
        every: Duration,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut failing = false;
            loop {
                tokio::time::sleep(every).await;
                match self.sync(&store).await {
                    Ok(_) => {
                        if failing {
                            tracing::info!("catalog channel back");
                        }
                        failing = false;
                    }
                    // Logged once per outage, not once per poll.
                    Err(e) if !failing => {
                        tracing::warn!(error = %e, "catalog replica not updated");
                        failing = true;
                    }
                    Err(_) => {}
                }
            }
        })
    }
}

/// reqwest's message plus its causes (the top level alone says only
/// "error sending request").
fn reqwest_reason(e: &reqwest::Error) -> String {
    let mut out = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

/// What an executor does when a task names a source its replica lacks (a
/// source added in the last poll interval): sync now, blocking the decode
/// that needs it. Decoding is synchronous, so the fetch runs on its own
/// thread and runtime rather than blocking one of the executor's.
pub fn miss_hook(
    base: &str,
    token: &str,
    store: Arc<CatalogStore>,
) -> quipu_connectors::catalog::SourceMissHook {
    let (base, token) = (base.to_string(), token.to_string());
    Box::new(move |name: &str| {
        let (base, token, store) = (base.clone(), token.clone(), store.clone());
        let synced = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(CatalogClient::new(&base, &token).sync(&store))
                .map_err(|e| e.to_string())
        })
        .join();
        match synced {
            Ok(Ok(changed)) => {
                tracing::info!(
                    source = name,
                    changed,
                    "catalog synced for an unknown source"
                )
            }
            Ok(Err(e)) => tracing::warn!(source = name, error = %e, "catalog sync failed"),
            Err(_) => tracing::error!(source = name, "catalog sync thread panicked"),
        }
    })
}
