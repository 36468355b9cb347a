//! The HTTP server: builder, lifecycle, kubeconfig, and request dispatch.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, Response, StatusCode, header};
use tokio::sync::oneshot;

use crate::api;
use crate::controllers::{self, ControllerConfig};
use crate::discovery;
use crate::error::ApiError;
use crate::faults::{Faults, Outcome};
use crate::load;
use crate::openapi;
use crate::route::{self, Route};
use crate::store::Store;
use crate::telemetry::{self, Traffic};
use axum::serve::ListenerExt;

/// Errors starting or loading a server.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Binding the listen address failed.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// Reading a manifest failed.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A manifest could not be parsed.
    #[error("cannot parse {path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// Parser message.
        message: String,
    },
    /// An object in a manifest was rejected.
    #[error("{path}: {kind} {name:?}: {error}")]
    Rejected {
        /// The file.
        path: String,
        /// The object's kind.
        kind: String,
        /// The object's name.
        name: String,
        /// The API error.
        error: Box<ApiError>,
    },
}

/// Shared state of a running server.
pub struct App {
    /// The object store.
    pub store: Arc<Store>,
    /// Bearer token required on every request, if set.
    pub token: Option<String>,
    /// Whether aggregated discovery is offered.
    pub aggregated_discovery: bool,
    /// Fault injection rules and request counters.
    pub faults: Arc<Faults>,
    /// Permissions taken away (everything else is allowed).
    pub authz: Arc<crate::authz::Authz>,
    /// Set to true at shutdown so that open watch streams end.
    pub closing: tokio::sync::watch::Sender<bool>,
    /// How often watches that allow bookmarks get one.
    pub bookmark_interval: std::time::Duration,
    /// The simulated mesh traffic behind `/metrics`.
    pub traffic: Arc<Traffic>,
}

/// Configures and starts a kubesim server.
#[derive(Debug, Clone)]
pub struct ServerBuilder {
    listen: SocketAddr,
    token: Option<String>,
    aggregated_discovery: bool,
    controllers: ControllerConfig,
    bookmark_interval: std::time::Duration,
}

/// The kubesim server entry point.
pub struct Server;

impl Server {
    /// A builder with defaults: `127.0.0.1:0`, no auth, aggregated discovery, all controllers on.
    pub fn builder() -> ServerBuilder {
        ServerBuilder {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            token: None,
            aggregated_discovery: true,
            controllers: ControllerConfig::default(),
            bookmark_interval: std::time::Duration::from_secs(60),
        }
    }
}

impl ServerBuilder {
    /// The address to listen on.
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// Requires `Authorization: Bearer <token>` on every request.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Turns aggregated discovery off (clients then use the legacy documents).
    pub fn aggregated_discovery(mut self, on: bool) -> Self {
        self.aggregated_discovery = on;
        self
    }

    /// The delay between the steps of a simulated Deployment rollout.
    pub fn rollout_delay(mut self, d: std::time::Duration) -> Self {
        self.controllers.rollout_delay = d;
        self
    }

    /// Switches the Deployment controller (Deployments → ReplicaSets → Pods, status) on or off.
    pub fn deployment_controller(mut self, on: bool) -> Self {
        self.controllers.deployments = on;
        self
    }

    /// Switches sidecar injection (istio-proxy, App Mesh envoy) at pod creation on or off.
    pub fn sidecar_injection(mut self, on: bool) -> Self {
        self.controllers.injection = on;
        self
    }

    /// How often watches with `allowWatchBookmarks=true` receive a BOOKMARK (default one minute,
    /// like a real apiserver).
    pub fn bookmark_interval(mut self, d: std::time::Duration) -> Self {
        self.bookmark_interval = d;
        self
    }

    /// How long a terminating namespace waits before its contents are deleted.
    pub fn namespace_deletion_delay(mut self, d: std::time::Duration) -> Self {
        self.controllers.namespace_delay = d;
        self
    }

    /// Switches the namespace controller (deleting namespace contents) on or off.
    pub fn namespace_controller(mut self, on: bool) -> Self {
        self.controllers.namespaces = on;
        self
    }

    /// Switches the garbage collector (ownerReferences) on or off.
    pub fn garbage_collector(mut self, on: bool) -> Self {
        self.controllers.garbage_collector = on;
        self
    }

    /// Binds, starts the controllers and serves in the background.
    pub async fn start(self) -> Result<RunningServer, ServerError> {
        let listener = tokio::net::TcpListener::bind(self.listen)
            .await
            .map_err(|source| ServerError::Bind {
                addr: self.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| ServerError::Bind {
            addr: self.listen,
            source,
        })?;
        let store = Arc::new(Store::new());
        store.set_injection(self.controllers.injection);
        // A fresh cluster has these namespaces.
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            load::ensure_namespace(&store, ns).expect("built-in namespaces are valid");
        }
        let app = Arc::new(App {
            store: store.clone(),
            token: self.token.clone(),
            aggregated_discovery: self.aggregated_discovery,
            faults: Arc::new(Faults::default()),
            authz: Arc::default(),
            closing: tokio::sync::watch::channel(false).0,
            bookmark_interval: self.bookmark_interval,
            traffic: Arc::default(),
        });
        let (tx, rx) = oneshot::channel::<()>();
        let controllers = controllers::spawn(store.clone(), self.controllers.clone());
        let router = axum::Router::new().fallback(handle).with_state(app.clone());
        // As the API server (Go sets TCP_NODELAY on every connection): otherwise each watch
        // event, a small write after the headers, waits for the client's delayed ACK (40 ms).
        let listener = listener.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::warn!("kubesim: setting TCP_NODELAY: {e}");
            }
        });
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, router).with_graceful_shutdown(async move {
                // A dropped sender also means shutdown.
                let _ = rx.await;
            });
            if let Err(e) = serve.await {
                tracing::error!("kubesim server stopped: {e}");
            }
        });
        Ok(RunningServer {
            addr,
            token: self.token,
            app,
            shutdown: Some(tx),
            task: Some(task),
            controllers,
        })
    }
}

/// A server serving in the background; dropping it stops it.
pub struct RunningServer {
    addr: SocketAddr,
    token: Option<String>,
    app: Arc<App>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    controllers: Vec<tokio::task::JoinHandle<()>>,
}

impl RunningServer {
    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The object store (for direct inspection in tests).
    pub fn store(&self) -> &Arc<Store> {
        &self.app.store
    }

    /// Fault injection rules and request counters.
    pub fn faults(&self) -> &Arc<Faults> {
        &self.app.faults
    }

    /// The deny rules: requests they match get 403, as from RBAC.
    pub fn authz(&self) -> &Arc<crate::authz::Authz> {
        &self.app.authz
    }

    /// The simulated mesh traffic served at `/metrics`: per-namespace request rate, error rate
    /// and latency.
    pub fn traffic(&self) -> &Arc<Traffic> {
        &self.app.traffic
    }

    /// A kubeconfig pointing at this server (context `kubesim`, namespace `default`).
    pub fn kubeconfig_yaml(&self) -> String {
        let user_block = match &self.token {
            Some(t) => format!(
                "  user:\n    token: {}\n",
                serde_json::Value::String(t.clone())
            ),
            None => "  user: {}\n".to_string(),
        };
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: kubesim\n  cluster:\n    server: {}\ncontexts:\n- name: kubesim\n  context:\n    cluster: kubesim\n    user: kubesim\n    namespace: default\ncurrent-context: kubesim\nusers:\n- name: kubesim\n{user_block}preferences: {{}}\n",
            self.url()
        )
    }

    /// Loads YAML manifests (multi-document) into the store: CRDs first, then namespaces, then the rest.
    pub fn load_yaml(&self, path_label: &str, text: &str) -> Result<usize, ServerError> {
        load::load_yaml(&self.app.store, path_label, text)
    }

    /// Stops serving and waits for the server task to end.
    pub async fn shutdown(mut self) {
        self.stop();
        if let Some(t) = self.task.take() {
            // A panicked server task has nothing left to clean up.
            let _ = t.await;
        }
    }

    fn stop(&mut self) {
        self.app.closing.send_replace(true);
        if let Some(tx) = self.shutdown.take() {
            // The server may already be gone.
            let _ = tx.send(());
        }
        for c in self.controllers.drain(..) {
            c.abort();
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.stop();
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

/// A JSON response.
pub fn json_response<T: serde::Serialize + ?Sized>(code: u16, body: &T) -> Response<Body> {
    json_response_typed(code, body, "application/json")
}

/// A JSON response with an explicit content type.
pub fn json_response_typed<T: serde::Serialize + ?Sized>(
    code: u16,
    body: &T,
    content_type: &str,
) -> Response<Body> {
    let body = serde_json::to_vec(body).expect("JSON values serialise");
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = HeaderValue::from_str(content_type) {
        r.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    r
}

/// The response for an API error.
pub fn error_response(e: &ApiError) -> Response<Body> {
    let mut r = json_response(e.code, &e.to_status());
    if let Some(s) = e.retry_after
        && let Ok(v) = HeaderValue::from_str(&s.to_string())
    {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

fn header_str(h: &HeaderMap, name: header::HeaderName) -> &str {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

async fn handle(State(app): State<Arc<App>>, req: Request) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let query = route::query(parts.uri.query());
    let route = route::parse(&path);
    // Prometheus scrapes without the API's bearer token, as from a sidecar's own port.
    if path == "/metrics" {
        return if parts.method == Method::GET {
            telemetry::metrics(&app.traffic, &app.store)
        } else {
            error_response(&ApiError::method_not_allowed())
        };
    }
    // The admin endpoints belong to the test harness, not the API, so they bypass auth.
    if path.starts_with("/kubesim/") {
        let bytes = axum::body::to_bytes(body, 1024 * 1024)
            .await
            .unwrap_or_default();
        if path == "/kubesim/deny" && matches!(parts.method, Method::POST | Method::DELETE) {
            return crate::authz::admin(&app.authz, parts.method == Method::DELETE, &bytes);
        }
        if path == "/kubesim/traffic" {
            return telemetry::admin(&app.traffic, &parts.method, &bytes);
        }
        if let Some(resp) = crate::faults::admin(&app, &parts.method, &path, &bytes) {
            return resp;
        }
        return error_response(&ApiError::unknown_path());
    }
    if let Some(t) = &app.token {
        let auth = header_str(&parts.headers, header::AUTHORIZATION);
        if auth.strip_prefix("Bearer ") != Some(t.as_str()) {
            return error_response(&ApiError::new(401, "Unauthorized", "Unauthorized"));
        }
    }
    let verb = api::verb_of(&parts.method, &route, &query);
    let resource = match &route {
        Route::Resource(r) => r.plural.clone(),
        _ => String::new(),
    };
    let (ns, name) = match &route {
        Route::Resource(r) => (
            r.namespace.clone().unwrap_or_default(),
            r.name.clone().unwrap_or_default(),
        ),
        _ => (String::new(), String::new()),
    };
    if let Route::Resource(r) = &route {
        if r.group == "authorization.k8s.io" && r.plural == "selfsubjectaccessreviews" {
            if parts.method != Method::POST {
                return error_response(&ApiError::method_not_allowed());
            }
            let bytes = axum::body::to_bytes(body, 1024 * 1024)
                .await
                .unwrap_or_default();
            // kubectl sends its reviews as protobuf.
            if header_str(&parts.headers, header::CONTENT_TYPE).contains("protobuf") {
                return match crate::protobuf::decode(&bytes) {
                    Ok(review) => crate::authz::review(&app.authz, review.to_string().as_bytes()),
                    Err(e) => error_response(&e),
                };
            }
            return crate::authz::review(&app.authz, &bytes);
        }
        let request = crate::authz::Request {
            verb: &verb,
            group: &r.group,
            resource: &resource,
            namespace: &ns,
        };
        if let Err(e) = app.authz.check(&request, &name) {
            return error_response(&e);
        }
    }
    if query.get("dryRun").is_some_and(|d| d == "All") {
        app.faults.count_dry_run(&verb, &resource);
    }
    let mut lost = false;
    match app.faults.check(&verb, &resource, &ns, &name) {
        Outcome::Pass => {}
        Outcome::Delay(d) => crate::delay::sleep(d).await,
        Outcome::Respond(r) => return r,
        Outcome::DelayThenRespond(d, r) => {
            crate::delay::sleep(d).await;
            return r;
        }
        Outcome::ServeThenDrop => lost = true,
    }
    let response = serve_route(&app, route, &parts, &query, body).await;
    if lost {
        return crate::faults::dropped();
    }
    response
}

/// Serves a request that passed authorization and fault injection.
async fn serve_route(
    app: &Arc<App>,
    route: Route,
    parts: &axum::http::request::Parts,
    query: &std::collections::HashMap<String, String>,
    body: Body,
) -> Response<Body> {
    let accept = header_str(&parts.headers, header::ACCEPT).to_string();
    let reg = || app.store.registry();
    match route {
        Route::Version => json_response(200, &discovery::version()),
        Route::Health => {
            let mut r = Response::new(Body::from("ok"));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            r
        }
        Route::ApiRoot => {
            if app.aggregated_discovery && discovery::wants_aggregated(&accept) {
                json_response_typed(
                    200,
                    &discovery::aggregated(&reg(), true),
                    discovery::AGGREGATED_CONTENT_TYPE,
                )
            } else {
                json_response(200, &discovery::api_versions())
            }
        }
        Route::ApisRoot => {
            if app.aggregated_discovery && discovery::wants_aggregated(&accept) {
                json_response_typed(
                    200,
                    &discovery::aggregated(&reg(), false),
                    discovery::AGGREGATED_CONTENT_TYPE,
                )
            } else {
                json_response(200, &discovery::api_group_list(&reg()))
            }
        }
        Route::Group(g) => match discovery::api_group(&reg(), &g) {
            Some(v) => json_response(200, &v),
            None => error_response(&ApiError::unknown_path()),
        },
        Route::GroupVersion(g, v) => match (
            g.is_empty() && v != "v1",
            discovery::resource_list(&reg(), &g, &v),
        ) {
            (false, Some(doc)) => json_response(200, &doc),
            _ => error_response(&ApiError::unknown_path()),
        },
        Route::OpenApiRoot => json_response(200, &openapi::root(&reg())),
        Route::OpenApiDoc(g, v) => match openapi::group_version_doc(&reg(), &g, &v) {
            Some(doc) => json_response(200, &doc),
            None => error_response(&ApiError::unknown_path()),
        },
        Route::OpenApiV2 => {
            // An empty OpenAPI v2 protobuf document: kubectl then validates nothing client-side.
            let mut r = Response::new(Body::empty());
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(
                    "application/com.github.proto-openapi.spec.v2.v1.0+protobuf",
                ),
            );
            r
        }
        Route::Unknown => error_response(&ApiError::unknown_path()),
        Route::Resource(rp) => {
            let bytes = match axum::body::to_bytes(body, 64 * 1024 * 1024).await {
                Ok(b) => b,
                Err(e) => {
                    return error_response(&ApiError::bad_request(format!(
                        "cannot read request body: {e}"
                    )));
                }
            };
            api::serve(app, &parts.method, &parts.headers, rp, query, &bytes).await
        }
    }
}
