//! The plan file's model: what `plan.toml` may say, with its defaults.

use std::collections::BTreeMap;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::types::{Duration, IstioVersion, NamespaceName, Percent};

/// A migration plan: where App Mesh is, how Istio should look, and how to get there.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "meshplan plan file")]
pub struct PlanSpec {
    /// Name of the plan; defaults to the file name without `.toml`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Where the current App Mesh state comes from, and what is in scope.
    pub source: Source,
    /// The Istio installation to migrate onto.
    #[serde(default)]
    pub istio: Istio,
    /// How the move is carried out.
    #[serde(default)]
    pub strategy: Strategy,
    /// The gradual traffic shift of a parallel-namespace migration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ramp: Option<Ramp>,
    /// Overrides per App Mesh virtual service, keyed `name` or `namespace/name`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub routing: BTreeMap<String, RoutingOverride>,
    /// What is removed once Istio carries the traffic.
    #[serde(default)]
    pub cleanup: Cleanup,
    /// Where the checkpoint journal and the lock live.
    #[serde(default)]
    pub state: State,
    /// How `meshplan verify` checks the traffic split.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<Verify>,
}

impl PlanSpec {
    /// The namespace of the configmap backend's ConfigMap and Lease: `state.namespace`, by
    /// default the first source namespace.
    pub fn state_namespace(&self) -> Option<&NamespaceName> {
        self.state
            .namespace
            .as_ref()
            .or(self.source.namespaces.first())
    }
}

/// `meshplan verify`: requests sent to a URL, answers counted per backend, and the counts
/// compared with the expected weights by a chi-square test.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Verify {
    /// The URL the GET requests go to (`--url` overrides it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The service whose split is checked: a `[routing.<service>]` key or the name of the
    /// translated VirtualService (default: the only `[routing]` entry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// The response header naming the backend that answered, e.g. `x-backend`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_header: Option<String>,
    /// A regular expression on the response body whose first capture group names the backend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_regex: Option<String>,
    /// Requests sent (1 to 100000).
    #[serde(default = "default_verify_requests")]
    pub requests: u32,
    /// The test fails when its p-value is below this.
    #[serde(default = "default_verify_significance")]
    pub significance: f64,
    /// Time limit of one request.
    #[serde(default = "default_verify_timeout")]
    pub timeout: Duration,
}

fn default_verify_requests() -> u32 {
    200
}

fn default_verify_significance() -> f64 {
    0.01
}

fn default_verify_timeout() -> Duration {
    Duration::from_secs(2)
}

/// The source of the App Mesh state.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// Kubeconfig context to read from (default: the current context).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// Kubeconfig file (default: `$KUBECONFIG` or `~/.kube/config`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubeconfig: Option<PathBuf>,
    /// An EKS cluster to connect to directly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eks: Option<EksCluster>,
    /// Offline source: YAML files or folders, relative to the plan file.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub manifests: Vec<PathBuf>,
    /// Name of the App Mesh `Mesh` being migrated.
    pub mesh: String,
    /// Namespaces in scope; nothing outside them is read or changed.
    pub namespaces: Vec<NamespaceName>,
}

/// An EKS cluster, by name and region.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EksCluster {
    /// Cluster name.
    pub name: String,
    /// AWS region, e.g. `us-west-2`.
    pub region: String,
}

/// The Istio side of the migration.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Istio {
    /// Whether Istio is already installed or installed as an EKS add-on.
    #[serde(default)]
    pub install: Install,
    /// EKS add-on name (only with `install = "eks-addon"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addon_name: Option<String>,
    /// EKS add-on version (only with `install = "eks-addon"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addon_version: Option<String>,
    /// EKS add-on configuration values, JSON or YAML (only with `install = "eks-addon"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configuration_values: Option<String>,
    /// How EKS resolves conflicts with existing resources (only with `install = "eks-addon"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolve_conflicts: Option<ResolveConflicts>,
    /// Istio control-plane revision; sets `istio.io/rev` instead of `istio-injection`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<NamespaceName>,
    /// Mutual TLS mode of the migrated namespaces.
    #[serde(default)]
    pub mtls: Mtls,
    /// Turn on Envoy access logging mesh-wide with a `Telemetry` resource.
    #[serde(default = "default_true")]
    pub access_logging: bool,
    /// Target Istio release; decides which API versions are emitted.
    #[serde(default)]
    pub version: IstioVersion,
}

/// The EKS add-on installed when `addon_name` is not set.
pub const DEFAULT_ADDON_NAME: &str = "solo-io_istio-distro";

impl Istio {
    /// The EKS add-on's name (the default one unless `addon_name` is set).
    pub fn addon_name(&self) -> &str {
        self.addon_name.as_deref().unwrap_or(DEFAULT_ADDON_NAME)
    }
}

impl ResolveConflicts {
    /// The value the EKS API takes.
    pub fn as_str(self) -> &'static str {
        match self {
            ResolveConflicts::None => "NONE",
            ResolveConflicts::Overwrite => "OVERWRITE",
            ResolveConflicts::Preserve => "PRESERVE",
        }
    }
}

impl Default for Istio {
    fn default() -> Self {
        Istio {
            install: Install::default(),
            addon_name: None,
            addon_version: None,
            configuration_values: None,
            resolve_conflicts: None,
            revision: None,
            mtls: Mtls::default(),
            access_logging: true,
            version: IstioVersion::default(),
        }
    }
}

fn default_true() -> bool {
    true
}

/// How Istio gets onto the cluster.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Install {
    /// Istio is installed already; meshplan verifies it.
    #[default]
    Existing,
    /// meshplan installs Istio as an EKS add-on.
    EksAddon,
}

/// EKS add-on conflict resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ResolveConflicts {
    /// Fail on conflicts.
    None,
    /// Overwrite conflicting fields.
    Overwrite,
    /// Keep existing values.
    Preserve,
}

/// Mutual TLS mode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mtls {
    /// Accept plaintext and mTLS: safe while App Mesh callers remain.
    #[default]
    Permissive,
    /// Require mTLS.
    Strict,
}

/// The migration strategy.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Strategy {
    /// In place (restart into Istio) or parallel namespace (clone, then shift traffic).
    #[serde(default)]
    pub kind: StrategyKind,
    /// The Istio-injected namespace the workloads are cloned into (parallel-namespace only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_namespace: Option<NamespaceName>,
    /// The object whose weights move traffic from the old side to the new (parallel-namespace only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry: Option<Entry>,
    /// Clone Secrets into the target namespace too (parallel-namespace only).
    #[serde(default)]
    pub clone_secrets: bool,
    /// How long to wait for a Deployment rollout.
    #[serde(default = "default_rollout_timeout")]
    pub rollout_timeout: Duration,
}

impl Default for Strategy {
    fn default() -> Self {
        Strategy {
            kind: StrategyKind::default(),
            target_namespace: None,
            entry: None,
            clone_secrets: false,
            rollout_timeout: default_rollout_timeout(),
        }
    }
}

fn default_rollout_timeout() -> Duration {
    Duration::from_secs(300)
}

/// The kind of migration.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum StrategyKind {
    /// Relabel the namespaces and restart the workloads into Istio.
    #[default]
    InPlace,
    /// Clone the workloads into a new namespace and shift traffic gradually.
    ParallelNamespace,
}

impl StrategyKind {
    /// The name used in the plan file and in output.
    pub fn as_str(self) -> &'static str {
        match self {
            StrategyKind::InPlace => "in-place",
            StrategyKind::ParallelNamespace => "parallel-namespace",
        }
    }
}

/// The traffic entry of a parallel-namespace migration.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// An Istio Gateway VirtualService or a Gateway API HTTPRoute.
    pub kind: EntryKind,
    /// The App Mesh virtual service whose traffic is split, `name` or `namespace/name`.
    pub service: String,
    /// The gateway the entry binds to, `namespace/name`.
    pub gateway: String,
    /// Host names the entry serves.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
}

/// The kind of traffic entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum EntryKind {
    /// A VirtualService bound to an Istio Gateway.
    IstioGateway,
    /// A Gateway API HTTPRoute.
    GatewayApi,
}

/// The canary ramp.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Ramp {
    /// Percentages of traffic on the new side, strictly increasing, ending at 100.
    #[serde(default = "default_ramp_steps")]
    pub steps: Vec<Percent>,
    /// Bake time at each step before the gates are evaluated.
    #[serde(default = "default_ramp_interval")]
    pub interval: Duration,
    /// Failed evaluations tolerated before the ramp rolls back to 0 %.
    #[serde(default = "default_max_failed_checks")]
    pub max_failed_checks: u32,
    /// What to do when a gate has no data.
    #[serde(default)]
    pub no_data: NoData,
    /// The Prometheus that gates query.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<Prometheus>,
    /// Health gates evaluated at every step.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gates: Vec<Gate>,
}

impl Default for Ramp {
    fn default() -> Self {
        Ramp {
            steps: default_ramp_steps(),
            interval: default_ramp_interval(),
            max_failed_checks: default_max_failed_checks(),
            no_data: NoData::default(),
            prometheus: None,
            gates: Vec::new(),
        }
    }
}

fn default_ramp_steps() -> Vec<Percent> {
    serde_json::from_str("[5, 25, 50, 100]").expect("the default ramp steps are valid")
}

fn default_ramp_interval() -> Duration {
    Duration::from_secs(300)
}

fn default_max_failed_checks() -> u32 {
    3
}

/// What an inconclusive gate does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum NoData {
    /// Pause the ramp and report.
    #[default]
    Pause,
    /// Count a failed check.
    Fail,
}

/// A Prometheus server.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Prometheus {
    /// Base URL, e.g. `http://prometheus.istio-system:9090`.
    pub url: String,
}

/// A health gate.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Gate {
    /// Name shown in status and reports.
    pub name: String,
    /// Built-in or custom check.
    pub kind: GateKind,
    /// PromQL for `kind = "query"`, or the App Mesh side's query for `kind = "comparative"`; may use
    /// `{{namespace}}`, `{{source_namespace}}`, `{{service}}` and `{{window}}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// Lowest passing value (`success-rate` defaults to 0.99 when neither `min` nor `max` is set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// Highest passing value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// How far below the App Mesh side's success rate the Istio side's may be, 0 to 1
    /// (`kind = "comparative"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance: Option<f64>,
    /// Range the query looks back over.
    #[serde(default = "default_gate_window")]
    pub window: Duration,
}

fn default_gate_window() -> Duration {
    Duration::from_secs(60)
}

/// The kinds of health gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum GateKind {
    /// Share of non-5xx responses on the new side.
    SuccessRate,
    /// 99th percentile request latency on the new side, in milliseconds.
    LatencyP99,
    /// A custom PromQL query.
    Query,
    /// The new side's success rate held to the old side's within `tolerance`.
    Comparative,
}

/// Overrides for one App Mesh virtual service.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RoutingOverride {
    /// Weights per target virtual node, summing to 100; replaces the router's weights.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub weights: BTreeMap<String, Percent>,
}

/// Cleanup once Istio carries the traffic.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Cleanup {
    /// Delete the App Mesh objects in scope (virtual nodes, routers, services, gateways).
    #[serde(default = "default_true")]
    pub delete_appmesh: bool,
    /// Also delete the cluster-scoped `Mesh` (other namespaces may still use it).
    #[serde(default)]
    pub delete_mesh: bool,
    /// Delete the source namespace after a parallel-namespace migration (also needs `--allow-delete`).
    #[serde(default)]
    pub delete_source_namespace: bool,
}

impl Default for Cleanup {
    fn default() -> Self {
        Cleanup {
            delete_appmesh: true,
            delete_mesh: false,
            delete_source_namespace: false,
        }
    }
}

/// Where state is kept.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct State {
    /// A local file, or a ConfigMap + Lease in the cluster.
    #[serde(default)]
    pub backend: StateBackend,
    /// Journal file for the file backend (default `.meshplan/<plan>.state.json`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// Namespace of the ConfigMap and Lease for the configmap backend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<NamespaceName>,
}

/// State backends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum StateBackend {
    /// A journal file and a file lock.
    #[default]
    File,
    /// A ConfigMap and a coordination.k8s.io Lease.
    Configmap,
}
