//! kubesim: an in-memory Kubernetes API server over HTTP, faithful enough that the real kubectl
//! and kube-rs work against it. Used as the test oracle for meshplan and for `apply --rehearse`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let server = kubesim::Server::builder()
//!     .rollout_delay(std::time::Duration::from_millis(20))
//!     .start()
//!     .await?;
//! server.load_yaml("crds.yaml", &std::fs::read_to_string("crds.yaml")?)?;
//! // Point kube-rs (Config::new(server.url())) or kubectl (server.kubeconfig_yaml()) at it.
//! server.faults().add(kubesim::Rule {
//!     verb: Some("patch".into()),
//!     nth: Some(1),
//!     action: Some(kubesim::Action::Status { code: 409, retry_after: None }),
//!     ..Default::default()
//! });
//! assert_eq!(server.faults().count("patch", "deployments"), 0);
//! server.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! What is simulated: discovery (aggregated and legacy), a minimal OpenAPI v3, the built-in kinds
//! of [`resources::builtins`] plus CRD-registered kinds, every verb with dry-run, the four patch
//! types with managedFields, watches, Status errors, CRD schema validation/pruning/defaulting,
//! Deployment rollouts ([`controllers::deployment`], stall one with the pod-template annotation
//! [`controllers::deployment::STALL_ANNOTATION`]), sidecar injection, namespace deletion and
//! garbage collection. Process-level admin endpoints: `POST /kubesim/faults` (a [`Rule`] as
//! JSON), `DELETE /kubesim/faults`, `GET /kubesim/counters`, `POST /kubesim/compact` (forget the
//! watch history so old resourceVersions get `410 Expired`), `POST`/`DELETE /kubesim/deny`
//! (take permissions away: [`authz`]; `SelfSubjectAccessReview`s answer the same rules).
//!
//! Simulated mesh telemetry ([`telemetry`]): `GET /metrics` serves synthetic Istio
//! (`istio_requests_total`, `istio_request_duration_milliseconds`) and App Mesh Envoy
//! (`envoy_cluster_upstream_rq_xx`, `envoy_cluster_upstream_rq_time`) metrics for the running pods
//! with sidecars, in the Prometheus text format, for a real Prometheus to scrape. Their request
//! rate, error rate and latency are set per namespace with [`RunningServer::traffic`] or
//! `POST /kubesim/traffic` (`{"namespace": "shop", "errorRate": 0.5}`); `GET /kubesim/traffic`
//! lists the settings and `DELETE /kubesim/traffic` restores the defaults. Like the admin
//! endpoints, `/metrics` needs no bearer token.

#![warn(missing_docs)]

pub mod api;
pub mod authz;
pub mod controllers;
pub mod crd;
pub mod defaults;
mod delay;
pub mod discovery;
pub mod equal;
pub mod error;
pub mod faults;
pub mod fieldset;
pub mod load;
pub mod managed;
pub mod meta;
pub mod openapi;
pub mod patch;
pub mod protobuf;
pub mod resources;
pub mod route;
pub mod selector;
pub mod server;
pub mod shape;
pub mod store;
pub mod table;
pub mod telemetry;
pub mod validate;
pub mod watch;

pub use error::{ApiError, Cause};
pub use faults::{Action, Faults, Rule};
pub use server::{RunningServer, Server, ServerBuilder, ServerError};
pub use store::Store;
pub use telemetry::{Traffic, TrafficSettings};
