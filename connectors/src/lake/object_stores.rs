//! Where a lake source's files live: the object store, registered in the
//! session's runtime under the URL's scheme and host, and the root path.

use std::sync::Arc;

use datafusion::execution::runtime_env::RuntimeEnv;
use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use quipu_catalog::{SourceDef, secret};
use url::Url;

use crate::connector::MemoryStores;
use crate::error::{ConnectorError, Result};

/// A lake source's root: its store and the path of the root in that store.
#[derive(Debug, Clone)]
pub struct LakeRoot {
    /// The root as a URL ending in `/`, e.g. `file:///data/lake/`.
    pub url: Url,
    pub store: Arc<dyn ObjectStore>,
    /// The root as a path inside `store`.
    pub prefix: ObjectPath,
}

impl LakeRoot {
    /// URL of a location relative to the root (or the location itself if it
    /// is already a URL). The error says what is wrong with the location;
    /// callers add the table it belongs to.
    pub fn join(&self, location: &str) -> std::result::Result<Url, String> {
        let joined = if location.contains("://") {
            Url::parse(location)
        } else {
            self.url.join(location.trim_start_matches('/'))
        };
        joined.map_err(|e| format!("invalid location `{location}`: {e}"))
    }
}

/// Normalises a lake URL as an admin may type it: a bare path (absolute or
/// relative) becomes a `file://` URL; the result always ends with `/`.
pub fn normalize_lake_url(source: &str, raw: &str) -> Result<Url> {
    let bad = |reason: String| ConnectorError::Source {
        source_name: source.to_string(),
        reason,
    };
    let mut url = if raw.contains("://") {
        Url::parse(raw).map_err(|e| bad(format!("invalid url `{raw}`: {e}")))?
    } else {
        let abs =
            std::path::absolute(raw).map_err(|e| bad(format!("invalid path `{raw}`: {e}")))?;
        Url::from_directory_path(&abs).map_err(|_| bad(format!("invalid path `{raw}`")))?
    };
    if url.password().is_some() || !url.username().is_empty() {
        return Err(bad(
            "credentials do not belong in the url; use the options access_key_id and secret_access_key=env:NAME".into(),
        ));
    }
    if !url.path().ends_with('/') {
        let p = format!("{}/", url.path());
        url.set_path(&p);
    }
    Ok(url)
}

/// Opens (and registers in `runtime`) the store behind a lake source.
/// Secrets are resolved here, at connection time, and go nowhere else.
pub fn lake_root(
    source: &SourceDef,
    runtime: &RuntimeEnv,
    memory: &MemoryStores,
) -> Result<LakeRoot> {
    let name = source.name.as_str();
    let bad = |reason: String| ConnectorError::Source {
        source_name: name.to_string(),
        reason,
    };
    let raw = source
        .options
        .get("url")
        .ok_or_else(|| bad("missing option `url`".into()))?;
    let url = normalize_lake_url(name, raw)?;
    let store: Arc<dyn ObjectStore> = match url.scheme() {
        "file" => {
            let path = url
                .to_file_path()
                .map_err(|_| bad(format!("`{url}` is not a local path")))?;
            if !path.is_dir() {
                return Err(bad(format!(
                    "lake path {} does not exist or is not a directory",
                    path.display()
                )));
            }
            Arc::new(LocalFileSystem::new())
        }
        "memory" => memory.get(url.host_str().unwrap_or("")),
        "s3" | "s3a" => {
            let bucket = url
                .host_str()
                .ok_or_else(|| bad(format!("`{url}` names no bucket")))?;
            let mut b = AmazonS3Builder::from_env().with_bucket_name(bucket);
            let opt = |k: &str| source.options.get(k);
            if let Some(v) = opt("region") {
                b = b.with_region(v);
            }
            if let Some(v) = opt("endpoint") {
                b = b.with_endpoint(v);
            }
            if let Some(v) = opt("access_key_id") {
                let v = if secret::is_reference(v) {
                    secret::resolve(v)?
                } else {
                    v.clone()
                };
                b = b.with_access_key_id(v);
            }
            if let Some(v) = opt("secret_access_key") {
                b = b.with_secret_access_key(secret::resolve(v)?);
            }
            if let Some(v) = opt("session_token") {
                b = b.with_token(secret::resolve(v)?);
            }
            b = b.with_allow_http(source.bool_option("allow_http", false));
            // The builder's error names options, not their values.
            Arc::new(
                b.build()
                    .map_err(|e| bad(format!("cannot configure S3 bucket `{bucket}`: {e}")))?,
            )
        }
        other => {
            return Err(bad(format!(
                "unsupported URL scheme `{other}`; expected file://, s3:// or memory://"
            )));
        }
    };
    let prefix = match url.scheme() {
        "file" => ObjectPath::from_filesystem_path(url.to_file_path().unwrap_or_default())
            .map_err(|e| bad(format!("invalid path: {e}")))?,
        _ => {
            ObjectPath::from_url_path(url.path()).map_err(|e| bad(format!("invalid path: {e}")))?
        }
    };
    let store_url = Url::parse(&format!(
        "{}://{}",
        url.scheme(),
        url.host_str().unwrap_or("")
    ))
    .map_err(|e| bad(e.to_string()))?;
    if url.scheme() != "file" {
        runtime.register_object_store(&store_url, store.clone());
    }
    Ok(LakeRoot { url, store, prefix })
}
