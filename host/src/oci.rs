//! Components from OCI registries: `oci://HOST[:PORT]/REPO:TAG` (or `@sha256:DIGEST`) as a
//! manifest's `component` and `netlet run`'s COMPONENT, `netlet push` and `netlet pull`.
//!
//! The artifact is the layout wasm tools share (`wkg`, `oci-wasm`): an OCI image manifest
//! whose config has the media type `application/vnd.wasm.config.v0+json` and whose one
//! layer, `application/wasm`, is the component. The registry client is `oci-client`
//! (reqwest on rustls with *ring*, netlet's TLS). A pulled layer is checked against the
//! manifest's size and digest before anything uses it, and kept in a content-addressed
//! cache (`CACHE_DIR/oci/blobs/sha256/HEX`, and what each reference last resolved to in
//! `CACHE_DIR/oci/refs/`), so a restart works while the registry is down. A download
//! that fails, is cut, is too big or does not match its digest leaves no file behind.
//!
//! The registry settings are the process's (flags of `netlet run`, `up`, `push`,
//! `pull`): [`configure`] sets them once, before any reference is read.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::manifest::{OciDescriptor, OciImageManifest};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use sha2::{Digest, Sha256};

/// The config media type of a wasm component artifact.
pub const WASM_CONFIG: &str = "application/vnd.wasm.config.v0+json";
/// The media type of its one layer, the component.
pub const WASM_LAYER: &str = "application/wasm";
/// The largest component netlet pulls: a layer above it is refused before its download.
pub const MAX_COMPONENT: u64 = 256 << 20;
/// How long connecting to a registry may take, and the longest silence while reading.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The process's registry settings.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// Registries (`HOST[:PORT]`) reached over plain HTTP.
    pub insecure: Vec<String>,
    /// CA certificates (PEM) trusted for registries, besides the platform's.
    pub ca: Vec<PathBuf>,
    /// Basic-auth credentials for every registry, overriding the Docker config.
    pub username: Option<String>,
    pub password: Option<String>,
    /// The Docker config file (`$DOCKER_CONFIG/config.json`, else
    /// `~/.docker/config.json`) when none is given.
    pub docker_config: Option<PathBuf>,
    /// Where pulled components are kept (`None`: in memory only).
    pub cache: Option<PathBuf>,
}

static SETTINGS: OnceLock<Settings> = OnceLock::new();

/// Sets the process's registry settings (the first call wins).
pub fn configure(settings: Settings) {
    let _ = SETTINGS.set(settings);
}

fn settings() -> Settings {
    SETTINGS.get().cloned().unwrap_or_default()
}

/// A reference as written (`oci://HOST/REPO:TAG`), parsed.
#[derive(Clone)]
pub struct OciRef {
    text: String,
    reference: Reference,
}

impl PartialEq for OciRef {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl std::fmt::Display for OciRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::fmt::Debug for OciRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// Whether `text` names a component in a registry (`oci://...`).
pub fn is_reference(text: &str) -> bool {
    text.starts_with("oci://")
}

impl OciRef {
    /// Parses `oci://HOST[:PORT]/REPO[:TAG][@sha256:DIGEST]` (no tag: `latest`).
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = |why: &str| {
            format!(
                "{text}: {why}: expected oci://HOST[:PORT]/REPOSITORY:TAG or oci://HOST[:PORT]/REPOSITORY@sha256:DIGEST"
            )
        };
        let rest = text
            .strip_prefix("oci://")
            .ok_or_else(|| bad("not an oci:// reference"))?;
        let (host, path) = rest.split_once('/').ok_or_else(|| bad("no repository"))?;
        if host.is_empty() || path.is_empty() {
            return Err(bad("no registry host or repository"));
        }
        let reference: Reference = rest.parse().map_err(|e| bad(&format!("{e}")))?;
        if reference.registry() != host {
            return Err(bad("the registry host must be given"));
        }
        if let Some(d) = reference.digest()
            && !d.strip_prefix("sha256:").is_some_and(is_hex_sha256)
        {
            return Err(bad("the digest must be sha256: and 64 hex digits"));
        }
        Ok(OciRef {
            text: text.to_string(),
            reference,
        })
    }

    /// The last part of the repository (`echo` for `oci://h/netlet/echo:1`): what logs
    /// call the handler.
    pub fn name(&self) -> String {
        self.reference
            .repository()
            .rsplit('/')
            .next()
            .unwrap_or("guest")
            .to_string()
    }

    /// The registry (`HOST[:PORT]`).
    pub fn registry(&self) -> &str {
        self.reference.registry()
    }

    /// This repository's reference pinned to manifest `digest`
    /// (`oci://HOST/REPO@sha256:...`).
    pub fn pinned(&self, digest: &str) -> String {
        format!(
            "oci://{}/{}@{digest}",
            self.reference.registry(),
            self.reference.repository()
        )
    }

    /// Whether it names a tag (which a reload re-resolves) rather than a digest.
    pub fn is_tag(&self) -> bool {
        self.reference.digest().is_none()
    }
}

fn is_hex_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// What went wrong with a registry, in one line after the reference.
#[derive(Debug, thiserror::Error)]
#[error("{reference}: {message}")]
pub struct OciError {
    pub reference: String,
    pub message: String,
}

/// A pulled component.
pub struct Pulled {
    pub bytes: Vec<u8>,
    /// The manifest's digest (`sha256:...`).
    pub manifest: String,
    /// The layer's digest: the SHA-256 of `bytes`.
    pub layer: String,
    /// Where it came from: the registry, or the cache while the registry is down (with
    /// why).
    pub offline: Option<String>,
}

/// The client for `reference`'s registry, with the process's settings.
fn client(settings: &Settings) -> Result<Client, String> {
    let mut extra = Vec::new();
    for path in &settings.ca {
        let pem =
            std::fs::read(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
        extra.push(oci_client::client::Certificate {
            encoding: oci_client::client::CertificateEncoding::Pem,
            data: pem,
        });
    }
    // reqwest's rustls has no provider of its own: netlet's is ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = ClientConfig {
        protocol: ClientProtocol::HttpsExcept(settings.insecure.clone()),
        extra_root_certificates: extra,
        connect_timeout: Some(CONNECT_TIMEOUT),
        read_timeout: Some(READ_TIMEOUT),
        platform_resolver: None,
        user_agent: concat!("netlet/", env!("CARGO_PKG_VERSION")),
        ..ClientConfig::default()
    };
    Client::try_from(config).map_err(|e| format!("cannot make a registry client: {e}"))
}

/// The credentials for `registry`: the flags', else the Docker config's, else none.
fn auth(settings: &Settings, registry: &str) -> Result<RegistryAuth, String> {
    if let Some(user) = &settings.username {
        return Ok(RegistryAuth::Basic(
            user.clone(),
            settings.password.clone().unwrap_or_default(),
        ));
    }
    let path = settings.docker_config.clone().or_else(|| {
        std::env::var_os("DOCKER_CONFIG")
            .map(|d| PathBuf::from(d).join("config.json"))
            .or_else(|| {
                std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker/config.json"))
            })
    });
    let Some(path) = path else {
        return Ok(RegistryAuth::Anonymous);
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(RegistryAuth::Anonymous),
        Err(e) => return Err(format!("{}: cannot read: {e}", path.display())),
    };
    docker_auth(&text, registry).map_err(|e| format!("{}: {e}", path.display()))
}

/// The credentials a Docker config file (`{"auths": {"HOST": {"auth": "BASE64"}}}`)
/// holds for `registry`.
fn docker_auth(text: &str, registry: &str) -> Result<RegistryAuth, String> {
    use base64::Engine as _;
    let config: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("not a Docker config file: {e}"))?;
    let Some(auths) = config.get("auths").and_then(|a| a.as_object()) else {
        return Ok(RegistryAuth::Anonymous);
    };
    let entry = auths.iter().find(|(key, _)| {
        let host = key
            .trim_start_matches("https://")
            .trim_start_matches("http://");
        host.split('/').next() == Some(registry)
    });
    let Some((_, entry)) = entry else {
        return Ok(RegistryAuth::Anonymous);
    };
    if let Some(encoded) = entry.get("auth").and_then(|a| a.as_str()) {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map_err(|_| format!("auths.{registry}.auth is not base64"))?;
        let decoded = String::from_utf8(decoded)
            .map_err(|_| format!("auths.{registry}.auth is not USER:PASSWORD"))?;
        let (user, password) = decoded
            .split_once(':')
            .ok_or_else(|| format!("auths.{registry}.auth is not USER:PASSWORD"))?;
        return Ok(RegistryAuth::Basic(user.to_string(), password.to_string()));
    }
    match (
        entry.get("username").and_then(|u| u.as_str()),
        entry.get("password").and_then(|p| p.as_str()),
    ) {
        (Some(user), Some(password)) => Ok(RegistryAuth::Basic(user.into(), password.into())),
        _ => Ok(RegistryAuth::Anonymous),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the registry client's runtime: {e}"))
}

/// One line for a registry client error.
fn explain(e: &oci_client::errors::OciDistributionError) -> String {
    use oci_client::errors::OciDistributionError as E;
    match e {
        E::RequestError(r) if r.is_connect() => {
            format!("cannot reach the registry: {}", error_chain(r))
        }
        E::RequestError(r) if r.is_timeout() => {
            format!("the registry did not answer in time: {}", error_chain(r))
        }
        E::RequestError(r) => format!("the request failed: {}", error_chain(r)),
        E::ImageManifestNotFoundError(_) => "the registry has no such tag or digest".to_string(),
        E::RegistryError { envelope, .. } => {
            let codes: Vec<String> = envelope
                .errors
                .iter()
                .map(|e| format!("{:?}: {}", e.code, e.message))
                .collect();
            if codes.iter().any(|c| c.starts_with("ManifestUnknown")) {
                "the registry has no such tag or digest (manifest unknown)".to_string()
            } else if codes.iter().any(|c| c.starts_with("Unauthorized") || c.starts_with("Denied")) {
                format!(
                    "the registry refused the credentials ({}): give --registry-user and \
                     --registry-password-file, or log in with a Docker config file",
                    codes.join("; ")
                )
            } else {
                format!("the registry answered: {}", codes.join("; "))
            }
        }
        E::AuthenticationFailure(why) => format!(
            "the registry refused the credentials ({why}): give --registry-user and \
             --registry-password-file, or log in with a Docker config file"
        ),
        E::UnauthorizedError { .. } => "the registry refused the credentials: give --registry-user and --registry-password-file, or log in with a Docker config file".to_string(),
        other => other.to_string(),
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}

/// Whether an error means the registry could not be reached at all (so a cached copy
/// may stand in), rather than that it answered no.
fn unreachable(e: &oci_client::errors::OciDistributionError) -> bool {
    matches!(e, oci_client::errors::OciDistributionError::RequestError(r) if r.is_connect() || r.is_timeout())
        || matches!(e, oci_client::errors::OciDistributionError::ServerError { code, .. } if *code >= 500)
}

/// The content-addressed cache of pulled components.
struct Cache {
    dir: PathBuf,
}

impl Cache {
    fn open(settings: &Settings) -> Option<Cache> {
        let dir = settings.cache.as_ref()?.join("oci");
        std::fs::create_dir_all(dir.join("blobs/sha256")).ok()?;
        std::fs::create_dir_all(dir.join("refs")).ok()?;
        Some(Cache { dir })
    }

    fn blob_path(&self, digest: &str) -> Option<PathBuf> {
        let hex = digest
            .strip_prefix("sha256:")
            .filter(|h| is_hex_sha256(h))?;
        Some(self.dir.join("blobs/sha256").join(hex))
    }

    /// The blob with `digest`, if it is there and still has that digest (a damaged one
    /// is removed).
    fn blob(&self, digest: &str) -> Option<Vec<u8>> {
        let path = self.blob_path(digest)?;
        let bytes = std::fs::read(&path).ok()?;
        if sha256_digest(&bytes) == digest {
            Some(bytes)
        } else {
            let _ = std::fs::remove_file(&path);
            None
        }
    }

    /// Stores a verified blob: written aside, then renamed, so no reader sees part of it.
    fn store(&self, digest: &str, bytes: &[u8]) {
        let Some(path) = self.blob_path(digest) else {
            return;
        };
        let tmp = path.with_extension(format!("part{}", std::process::id()));
        if std::fs::write(&tmp, bytes).is_ok() {
            if std::fs::rename(&tmp, &path).is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
        } else {
            let _ = std::fs::remove_file(&tmp);
        }
    }

    fn ref_path(&self, reference: &str) -> PathBuf {
        self.dir
            .join("refs")
            .join(crate::cache::sha256_hex(reference.as_bytes()))
    }

    /// What `reference` last resolved to: (manifest digest, layer digest).
    fn resolved(&self, reference: &str) -> Option<(String, String)> {
        let text = std::fs::read_to_string(self.ref_path(reference)).ok()?;
        let mut lines = text.lines();
        (lines.next()? == reference).then_some(())?;
        Some((lines.next()?.to_string(), lines.next()?.to_string()))
    }

    fn remember(&self, reference: &str, manifest: &str, layer: &str) {
        let path = self.ref_path(reference);
        let tmp = path.with_extension(format!("part{}", std::process::id()));
        if std::fs::write(&tmp, format!("{reference}\n{manifest}\n{layer}\n")).is_ok() {
            let _ = std::fs::rename(&tmp, &path);
        }
    }
}

fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", crate::cache::sha256_hex(bytes))
}

/// The component `reference` names: resolved at the registry (a tag to its current
/// manifest), its layer taken from the cache when there, else downloaded and checked.
/// While the registry cannot be reached, what the reference last resolved to (or, for a
/// digest, the cached manifest's layer) stands in.
pub fn fetch(reference: &OciRef) -> Result<Pulled, OciError> {
    let settings = settings();
    let fail = |message: String| OciError {
        reference: reference.text.clone(),
        message,
    };
    let cache = Cache::open(&settings);
    // A digest names its content for good: a cached copy needs no registry at all.
    if !reference.is_tag()
        && let Some(cache) = &cache
        && let Some((manifest, layer)) = cache.resolved(&reference.text)
        && let Some(bytes) = cache.blob(&layer)
    {
        return Ok(Pulled {
            bytes,
            manifest,
            layer,
            offline: None,
        });
    }
    let client = client(&settings).map_err(fail)?;
    let auth = auth(&settings, reference.registry()).map_err(fail)?;
    let rt = runtime().map_err(fail)?;
    let manifest = rt.block_on(client.pull_image_manifest(&reference.reference, &auth));
    let (manifest, manifest_digest) = match manifest {
        Ok(m) => m,
        Err(e) if unreachable(&e) => {
            let why = explain(&e);
            if let Some(cache) = &cache
                && let Some((manifest, layer)) = cache.resolved(&reference.text)
                && let Some(bytes) = cache.blob(&layer)
            {
                return Ok(Pulled {
                    bytes,
                    manifest,
                    layer,
                    offline: Some(why),
                });
            }
            return Err(fail(format!("{why}; no cached copy to use instead")));
        }
        Err(e) => return Err(fail(explain(&e))),
    };
    if let Some(pinned) = reference.reference.digest()
        && pinned != manifest_digest
    {
        return Err(fail(format!(
            "the registry's manifest has digest {manifest_digest}, not the {pinned} asked for"
        )));
    }
    let layer = wasm_layer(&manifest).map_err(fail)?;
    let bytes = match cache.as_ref().and_then(|c| c.blob(&layer.digest)) {
        Some(bytes) => bytes,
        None => {
            let bytes = rt
                .block_on(download(&client, &reference.reference, layer))
                .map_err(fail)?;
            if let Some(cache) = &cache {
                cache.store(&layer.digest, &bytes);
            }
            bytes
        }
    };
    if let Some(cache) = &cache {
        cache.remember(&reference.text, &manifest_digest, &layer.digest);
        // The same content by its digest: a later `@sha256:` reference needs no registry.
        cache.remember(
            &reference.pinned(&manifest_digest),
            &manifest_digest,
            &layer.digest,
        );
    }
    Ok(Pulled {
        bytes,
        manifest: manifest_digest,
        layer: layer.digest.clone(),
        offline: None,
    })
}

/// The layer digest `reference` names at the registry now (for a tag, its current
/// version), without downloading the layer: what `--watch` compares with what runs.
pub fn resolve(reference: &OciRef) -> Result<String, OciError> {
    let settings = settings();
    let fail = |message: String| OciError {
        reference: reference.text.clone(),
        message,
    };
    let client = client(&settings).map_err(fail)?;
    let auth = auth(&settings, reference.registry()).map_err(fail)?;
    let rt = runtime().map_err(fail)?;
    let (manifest, _) = rt
        .block_on(client.pull_image_manifest(&reference.reference, &auth))
        .map_err(|e| fail(explain(&e)))?;
    Ok(wasm_layer(&manifest).map_err(fail)?.digest.clone())
}

/// The one `application/wasm` layer of a wasm component artifact.
fn wasm_layer(manifest: &OciImageManifest) -> Result<&OciDescriptor, String> {
    if manifest.config.media_type != WASM_CONFIG {
        let layers: Vec<&str> = manifest
            .layers
            .iter()
            .map(|l| l.media_type.as_str())
            .collect();
        return Err(format!(
            "not a wasm component artifact: its config is {} (layers: {}), not {WASM_CONFIG} \
             with one {WASM_LAYER} layer; push components with `netlet push` or `wkg oci push`",
            manifest.config.media_type,
            layers.join(", ")
        ));
    }
    match manifest.layers.as_slice() {
        [layer] if layer.media_type == WASM_LAYER => {
            if layer.size < 0 || layer.size as u64 > MAX_COMPONENT {
                return Err(format!(
                    "its layer is {} bytes, more than netlet pulls ({} MiB)",
                    layer.size,
                    MAX_COMPONENT >> 20
                ));
            }
            if !layer
                .digest
                .strip_prefix("sha256:")
                .is_some_and(is_hex_sha256)
            {
                return Err(format!(
                    "its layer's digest {} is not a sha256 digest",
                    layer.digest
                ));
            }
            Ok(layer)
        }
        layers => {
            let types: Vec<&str> = layers.iter().map(|l| l.media_type.as_str()).collect();
            Err(format!(
                "not a wasm component artifact: expected one {WASM_LAYER} layer, found [{}]",
                types.join(", ")
            ))
        }
    }
}

/// Downloads `layer`, checking its size as it comes and its digest at the end.
async fn download(
    client: &Client,
    reference: &Reference,
    layer: &OciDescriptor,
) -> Result<Vec<u8>, String> {
    use futures_util::StreamExt as _;
    let expected = layer.size as u64;
    let mut stream = client
        .pull_blob_stream(reference, layer)
        .await
        .map_err(|e| format!("cannot download layer {}: {}", layer.digest, explain(&e)))?;
    let mut bytes = Vec::with_capacity(expected as usize);
    let mut hash = Sha256::new();
    let mismatch = |got: String| {
        format!(
            "layer {} does not match its digest: its content has {got}; nothing was kept",
            layer.digest
        )
    };
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            // The client checks the digest as the last bytes come: all of them came.
            Err(_) if bytes.len() as u64 == expected => {
                return Err(mismatch(format!("sha256:{}", hex(&hash.finalize()))));
            }
            Err(e) => {
                return Err(format!(
                    "the download of layer {} stopped after {} of {expected} bytes: {}",
                    layer.digest,
                    bytes.len(),
                    error_chain(&e)
                ));
            }
        };
        if bytes.len() as u64 + chunk.len() as u64 > expected {
            return Err(format!(
                "layer {} is larger than the {expected} bytes its manifest says",
                layer.digest
            ));
        }
        hash.update(&chunk);
        bytes.extend_from_slice(&chunk);
    }
    if (bytes.len() as u64) < expected {
        return Err(format!(
            "the download of layer {} stopped after {} of {expected} bytes",
            layer.digest,
            bytes.len()
        ));
    }
    let got = format!("sha256:{}", hex(&hash.finalize()));
    if got != layer.digest {
        return Err(mismatch(got));
    }
    Ok(bytes)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What `netlet push` reports.
pub struct Pushed {
    pub manifest: String,
    pub layer: String,
}

/// Pushes `bytes` (a component) as a wasm component artifact to `reference`.
pub fn push(reference: &OciRef, bytes: Vec<u8>) -> Result<Pushed, OciError> {
    let settings = settings();
    let fail = |message: String| OciError {
        reference: reference.text.clone(),
        message,
    };
    if !reference.is_tag() {
        return Err(fail(
            "push to a tag (oci://HOST/REPO:TAG), not a digest".into(),
        ));
    }
    let layer_digest = sha256_digest(&bytes);
    // The config the wasm OCI layout describes: what the component is, and its layer.
    let config = serde_json::json!({
        "architecture": "wasm",
        "os": "wasip2",
        "layerDigests": [layer_digest],
    });
    let config = oci_client::client::Config::new(
        serde_json::to_vec(&config).expect("a JSON value serialises"),
        WASM_CONFIG.to_string(),
        None,
    );
    let layers = [oci_client::client::ImageLayer::new(
        bytes,
        WASM_LAYER.to_string(),
        None,
    )];
    let manifest = OciImageManifest::build(&layers, &config, None);
    let client = client(&settings).map_err(fail)?;
    let auth = auth(&settings, reference.registry()).map_err(fail)?;
    let rt = runtime().map_err(fail)?;
    rt.block_on(client.push(
        &reference.reference,
        &layers,
        config,
        &auth,
        Some(manifest.clone()),
    ))
    .map_err(|e| fail(explain(&e)))?;
    // The manifest's digest, as the registry computed it.
    let (_, digest) = rt
        .block_on(client.pull_image_manifest(&reference.reference, &auth))
        .map_err(|e| {
            fail(format!(
                "pushed, but cannot read the manifest back: {}",
                explain(&e)
            ))
        })?;
    Ok(Pushed {
        manifest: digest,
        layer: layer_digest,
    })
}

/// Where `netlet pull` writes by default: the repository's last part, `.wasm`.
pub fn default_output(reference: &OciRef) -> PathBuf {
    Path::new(&format!("{}.wasm", reference.name())).to_path_buf()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse_or_say_what_is_expected() {
        let r = OciRef::parse("oci://127.0.0.1:5000/netlet/echo:v1").unwrap();
        assert_eq!(
            (r.registry(), r.name(), r.is_tag()),
            ("127.0.0.1:5000", "echo".to_string(), true)
        );
        let d = format!("oci://reg.example/echo@sha256:{}", "a".repeat(64));
        let r = OciRef::parse(&d).unwrap();
        assert!(!r.is_tag());
        assert_eq!(r.to_string(), d);
        for bad in [
            "oci://",
            "oci://host",
            "oci:///repo:1",
            "echo.wasm",
            "oci://host/repo@sha256:abc",
        ] {
            let e = OciRef::parse(bad).unwrap_err();
            assert!(e.contains("expected oci://HOST"), "{bad}: {e}");
        }
    }

    #[test]
    fn docker_config_credentials_are_found_by_registry() {
        use base64::Engine as _;
        let auth = base64::engine::general_purpose::STANDARD.encode("alice:s3cret");
        let text = format!(
            r#"{{"auths": {{"https://other:5000": {{"auth": "eA=="}}, "reg:5000": {{"auth": "{auth}"}}, "plain": {{"username": "bob", "password": "pw"}}}}}}"#
        );
        let basic = |a: RegistryAuth| match a {
            RegistryAuth::Basic(u, p) => format!("{u}:{p}"),
            other => format!("{other:?}"),
        };
        assert_eq!(
            basic(docker_auth(&text, "reg:5000").unwrap()),
            "alice:s3cret"
        );
        assert_eq!(basic(docker_auth(&text, "plain").unwrap()), "bob:pw");
        assert_eq!(basic(docker_auth(&text, "nowhere").unwrap()), "Anonymous");
        assert!(
            docker_auth(&text, "other:5000")
                .unwrap_err()
                .contains("USER:PASSWORD")
        );
        assert!(
            docker_auth("nope", "reg")
                .unwrap_err()
                .contains("not a Docker config")
        );
    }
}
