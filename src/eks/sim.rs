//! A simulated EKS add-on API for `apply --rehearse`: an in-process HTTP server speaking the
//! REST-JSON operations the SDK sends (DescribeAddon, CreateAddon, UpdateAddon, DeleteAddon),
//! where an add-on goes CREATING or UPDATING → ACTIVE after a few describes, as EKS does.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Addons, EksError};

/// Describes an add-on answers while it is still CREATING or UPDATING.
const DESCRIBES_IN_PROGRESS: u32 = 2;
/// The version the simulator installs when the plan names none.
const DEFAULT_VERSION: &str = "v1.27.3-eksbuild.1";

#[derive(Debug, Clone)]
struct SimAddon {
    version: String,
    configuration_values: Option<String>,
    status: &'static str,
    describes_left: u32,
}

type SimState = Arc<Mutex<BTreeMap<(String, String), SimAddon>>>;

/// A running simulated EKS endpoint.
pub struct Simulator {
    url: String,
    shutdown: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Simulator {
    /// Starts the simulator on a free loopback port.
    pub async fn start() -> Result<Simulator, EksError> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let state: SimState = Arc::default();
        let app = Router::new()
            .route("/clusters/{cluster}/addons", post(create))
            .route(
                "/clusters/{cluster}/addons/{addon}",
                get(describe).delete(delete),
            )
            .route("/clusters/{cluster}/addons/{addon}/update", post(update))
            .with_state(state);
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(Simulator {
            url,
            shutdown,
            task,
        })
    }

    /// The endpoint's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The add-ons of `cluster` through this endpoint, with static rehearsal credentials.
    pub fn addons(&self, cluster: &str, region: &str) -> Addons {
        let config = aws_sdk_eks::Config::builder()
            .behavior_version(aws_sdk_eks::config::BehaviorVersion::latest())
            .endpoint_url(&self.url)
            .region(aws_sdk_eks::config::Region::new(region.to_owned()))
            .credentials_provider(aws_sdk_eks::config::Credentials::new(
                "rehearsal",
                "rehearsal",
                None,
                None,
                "meshplan-rehearsal",
            ))
            .retry_config(aws_sdk_eks::config::retry::RetryConfig::disabled())
            .build();
        Addons::new(aws_sdk_eks::Client::from_conf(config), cluster)
    }

    /// Stops the server.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(());
        let _ = self.task.await;
    }
}

/// A service error as restJson1 carries it: the type in a header, the message in the body.
fn error(status: StatusCode, kind: &str, message: String) -> Response {
    (
        status,
        [("x-amzn-errortype", kind.to_owned())],
        Json(json!({ "message": message })),
    )
        .into_response()
}

fn not_found(cluster: &str, addon: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "ResourceNotFoundException",
        format!("No addon: {addon} found in cluster: {cluster}"),
    )
}

fn shape(cluster: &str, name: &str, addon: &SimAddon) -> Value {
    let mut out = json!({
        "addonName": name,
        "clusterName": cluster,
        "status": addon.status,
        "addonVersion": addon.version,
        "health": {"issues": []},
        "addonArn": format!("arn:aws:eks:rehearsal:000000000000:addon/{cluster}/{name}/simulated"),
        "createdAt": 0,
        "modifiedAt": 0,
    });
    if let Some(values) = &addon.configuration_values {
        out["configurationValues"] = Value::from(values.as_str());
    }
    out
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateBody {
    addon_name: String,
    addon_version: Option<String>,
    configuration_values: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpdateBody {
    addon_version: Option<String>,
    configuration_values: Option<String>,
}

async fn describe(
    State(state): State<SimState>,
    Path((cluster, name)): Path<(String, String)>,
) -> Response {
    let mut addons = state
        .lock()
        .expect("the simulator's lock is never poisoned");
    let Some(addon) = addons.get_mut(&(cluster.clone(), name.clone())) else {
        return not_found(&cluster, &name);
    };
    if addon.status != "ACTIVE" {
        if addon.describes_left == 0 {
            addon.status = "ACTIVE";
        } else {
            addon.describes_left -= 1;
        }
    }
    Json(json!({ "addon": shape(&cluster, &name, addon) })).into_response()
}

async fn create(
    State(state): State<SimState>,
    Path(cluster): Path<String>,
    Json(body): Json<CreateBody>,
) -> Response {
    let mut addons = state
        .lock()
        .expect("the simulator's lock is never poisoned");
    let key = (cluster.clone(), body.addon_name.clone());
    if addons.contains_key(&key) {
        return error(
            StatusCode::CONFLICT,
            "ResourceInUseException",
            format!("Addon {} already exists", body.addon_name),
        );
    }
    let addon = SimAddon {
        version: body
            .addon_version
            .unwrap_or_else(|| DEFAULT_VERSION.to_owned()),
        configuration_values: body.configuration_values,
        status: "CREATING",
        describes_left: DESCRIBES_IN_PROGRESS,
    };
    let out = shape(&cluster, &body.addon_name, &addon);
    addons.insert(key, addon);
    Json(json!({ "addon": out })).into_response()
}

async fn update(
    State(state): State<SimState>,
    Path((cluster, name)): Path<(String, String)>,
    Json(body): Json<UpdateBody>,
) -> Response {
    let mut addons = state
        .lock()
        .expect("the simulator's lock is never poisoned");
    let Some(addon) = addons.get_mut(&(cluster.clone(), name.clone())) else {
        return not_found(&cluster, &name);
    };
    if let Some(version) = body.addon_version {
        addon.version = version;
    }
    if let Some(values) = body.configuration_values {
        addon.configuration_values = Some(values);
    }
    addon.status = "UPDATING";
    addon.describes_left = DESCRIBES_IN_PROGRESS;
    Json(json!({
        "update": {
            "id": "00000000-0000-0000-0000-000000000001",
            "status": "InProgress",
            "type": "AddonUpdate",
            "params": [],
            "createdAt": 0,
            "errors": []
        }
    }))
    .into_response()
}

async fn delete(
    State(state): State<SimState>,
    Path((cluster, name)): Path<(String, String)>,
) -> Response {
    let mut addons = state
        .lock()
        .expect("the simulator's lock is never poisoned");
    let Some(mut addon) = addons.remove(&(cluster.clone(), name.clone())) else {
        return not_found(&cluster, &name);
    };
    addon.status = "DELETING";
    Json(json!({ "addon": shape(&cluster, &name, &addon) })).into_response()
}
