//! Findings: what the translation could not carry over exactly, with stable codes.

use std::fmt;

use serde::Serialize;

use crate::object::ObjectRef;

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Informational: a value was made explicit or normalised.
    Info,
    /// Carried over approximately: behaviour may differ.
    Warning,
    /// Cannot be carried over: the plan must not be applied as is.
    Error,
}

impl Severity {
    /// The name used in output.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

macro_rules! codes {
    ($($variant:ident = $code:literal, $severity:ident, $summary:literal, $action:literal;)*) => {
        /// Every finding code meshplan emits.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Code {
            $(#[doc = $summary] $variant,)*
        }

        impl Code {
            /// Every code, in order.
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];

            /// The stable code, e.g. `MP201`.
            pub fn as_str(self) -> &'static str {
                match self { $(Code::$variant => $code,)* }
            }

            /// The severity findings of this code have.
            pub fn severity(self) -> Severity {
                match self { $(Code::$variant => Severity::$severity,)* }
            }

            /// One line saying what the code means.
            pub fn summary(self) -> &'static str {
                match self { $(Code::$variant => $summary,)* }
            }

            /// What the user should do about it.
            pub fn action(self) -> &'static str {
                match self { $(Code::$variant => $action,)* }
            }
        }
    };
}

impl Code {
    /// The code written as `MPnnn` (case-insensitive), if it exists.
    pub fn parse(text: &str) -> Option<Code> {
        Code::ALL
            .iter()
            .copied()
            .find(|c| c.as_str().eq_ignore_ascii_case(text.trim()))
    }
}

codes! {
    // MP0xx: input and scope.
    UnknownKind = "MP001", Info, "An object of a kind meshplan does not migrate; it is left as it is.",
        "Nothing to do, unless the object depends on App Mesh (then migrate it by hand).";
    AppMeshV1beta1 = "MP002", Error, "An App Mesh object in the old v1beta1 API; only v1beta2 is translated.",
        "Upgrade the App Mesh controller, convert the object to appmesh.k8s.aws/v1beta2 and plan again.";
    UnknownAppMeshKind = "MP003", Error, "An appmesh.k8s.aws kind or version meshplan does not know.",
        "Check the apiVersion and kind; App Mesh v1beta2 has Mesh, VirtualNode, VirtualService, VirtualRouter, VirtualGateway, GatewayRoute and BackendGroup.";
    OutOfScope = "MP004", Info, "An object outside the plan's namespaces or mesh; it is left untouched.",
        "Add the namespace to `source.namespaces` (or fix `source.mesh`) if it should be migrated.";
    UnknownField = "MP005", Warning, "A field that is not part of App Mesh v1beta2; App Mesh ignores it, and so does meshplan.",
        "Fix the spelling (field names are case-sensitive, e.g. `certificateARN`) or remove the field.";
    NamespaceMissing = "MP006", Error, "A namespace in scope is not in the source.",
        "Add its Namespace object to the manifests, or remove it from `source.namespaces`.";
    MeshMissing = "MP007", Error, "The plan's mesh is not in the source.",
        "Check `source.mesh` and that the manifests include the Mesh object.";
    InvalidObject = "MP008", Error, "An object whose fields do not fit its App Mesh or Kubernetes schema; it is not translated.",
        "Fix the field named in the message (type, allowed values or range) so that the API server would accept it.";
    ArnResolved = "MP009", Warning, "A reference by ARN was resolved to an object of the same name in the source.",
        "Check that the ARN names this cluster's object; references to other clusters or accounts cannot be carried over.";
    ArnUnresolved = "MP010", Error, "A reference by ARN names an object that is not in the source (another cluster or account).",
        "Bring the referenced workload into the migration, or model it as an Istio ServiceEntry by hand.";

    // MP1xx: Mesh and egress.
    EgressDropAll = "MP101", Warning, "Egress DROP_ALL (App Mesh's default) becomes Istio REGISTRY_ONLY plus a ServiceEntry for AWS APIs.",
        "Check that every external host the workloads call is registered (ServiceEntry); exclude IMDS (169.254.169.254/32) from interception.";
    EgressAllowAll = "MP102", Warning, "Egress ALLOW_ALL maps to Istio's default ALLOW_ANY; nodes that declare backends were still restricted in App Mesh.",
        "Nothing for nodes without backends; nodes with backends get a Sidecar that restricts them (MP302).";
    IpPreference = "MP103", Error, "`meshServiceDiscovery.ipPreference` has no Istio equivalent.",
        "Istio follows the cluster's IP families; remove the setting once the cluster's families match what you need.";
    SharedMesh = "MP104", Error, "A mesh shared from another AWS account cannot be carried over.",
        "Migrate the owning account's workloads too, or connect the clusters with Istio multi-cluster by hand.";
    MeshMembership = "MP105", Info, "Mesh membership by namespace labels becomes Istio sidecar injection on those namespaces.",
        "Nothing to do: the namespace relabel step sets the injection label.";

    // MP2xx: virtual services, routers and routes.
    DefaultTimeout = "MP201", Info, "App Mesh's default 15 s request timeout is made explicit.",
        "Nothing to do; set a route timeout in App Mesh (or edit the Istio route) if 15 s was not intended.";
    DefaultRetries = "MP202", Warning, "A route without a retry policy: App Mesh and Istio default retries differ.",
        "Decide which behaviour you want; add `retries: {attempts: 0}` for accounts whose App Mesh never retried.";
    WeightsNormalised = "MP203", Info, "Relative App Mesh weights were normalised to percentages.",
        "Nothing to do; override with `[routing.<service>] weights` if you want other numbers.";
    WeightsOverridden = "MP204", Info, "The plan overrides the router's weights.",
        "Nothing to do.";
    TargetMissing = "MP205", Error, "A weighted target names a virtual node that does not exist.",
        "Add the virtual node to the source or remove the target.";
    SubsetLabels = "MP206", Error, "Weighted targets cannot be told apart by pod labels.",
        "Give each target virtual node a pod label of its own (e.g. `version`) in `podSelector.matchLabels`.";
    HostServiceMissing = "MP207", Error, "No Kubernetes Service carries the virtual service's host name.",
        "Create the Service (it may have no selector) or a ServiceEntry for the host.";
    RouterMissing = "MP208", Error, "A virtual service names a router that does not exist.",
        "Add the router to the source or fix the reference.";
    ProviderMissing = "MP209", Error, "A virtual service has no provider, so App Mesh cannot route it.",
        "Give it a virtual router or node, or leave it out of the migration.";
    AllWeightsZero = "MP210", Error, "Every target of a route has weight 0.",
        "Give a target a weight, or override the weights in the plan.";
    HostExpanded = "MP211", Warning, "A short host name was expanded to a cluster FQDN.",
        "Nothing to do for clients that resolve the short name through Kubernetes DNS search paths.";
    SelectorAdded = "MP212", Info, "A selector-less Service gets the labels its target pods share.",
        "Nothing to do; check that no other pods carry those labels.";
    RouteOrder = "MP213", Warning, "Routes without priority were ordered by specificity, as App Mesh builds them.",
        "Confirm the order against the App Mesh Envoy config_dump, or set explicit priorities in App Mesh first.";
    SchemeMatch = "MP214", Warning, "A `scheme` match: inside the mesh Envoy usually sees `http`.",
        "Check that requests still match; remove the scheme condition if it only guarded HTTP/2 routes.";
    PortMatch = "MP215", Warning, "A listener port was mapped to the Service port Istio matches on.",
        "Check the Service's ports if it maps port to a different targetPort.";
    HeaderRange = "MP216", Warning, "A header range match became a generated regular expression.",
        "Exact for canonical decimal values; values such as `+15` or `015` no longer match.";
    HeaderConflict = "MP217", Error, "A header condition Istio cannot express (several methods, or one header twice).",
        "Rewrite the match as one condition per header, e.g. a single regex.";
    ServerErrorRetry = "MP218", Warning, "`server-error` retries became Envoy `5xx`, which also retries 509 and connection failures.",
        "Nothing to do unless the backend must never see a retried request after a 509.";
    ZeroDuration = "MP219", Warning, "A zero duration Istio does not accept was left out or raised to the minimum.",
        "Check the message for what was emitted instead.";
    RouteIdleTimeout = "MP220", Warning, "A non-default route idle timeout has no per-route Istio field.",
        "Use the DestinationRule connection-pool idle timeout or an EnvoyFilter if the value matters.";
    TcpIdleTimeout = "MP221", Warning, "TCP idle timeouts move to the destination's DestinationRule (App Mesh default 300 s vs Istio 1 h).",
        "Nothing to do; the App Mesh value is emitted on the destination rule.";
    TargetPort = "MP222", Warning, "A weighted target's listener port was mapped to a Service port.",
        "Check the Service's ports.";
    NodeProvider = "MP223", Warning, "A virtual service served directly by a node becomes a route to the node's Service with App Mesh's defaults.",
        "Nothing to do, unless the node's listener timeout differs from 15 s.";
    ProtocolDeclared = "MP224", Info, "The Service port declares its protocol so Istio does not have to sniff it.",
        "Nothing to do.";
    RouteKindMissing = "MP225", Error, "A route with no route kind (httpRoute, http2Route, grpcRoute or tcpRoute) routes nothing.",
        "Give the route exactly one route kind.";

    // MP3xx: virtual nodes.
    CloudMapReplaced = "MP301", Info, "Cloud Map discovery is replaced by the Kubernetes Service.",
        "Remove the Cloud Map service after the migration; remove the readiness gate `conditions.appmesh.k8s.aws/aws-cloudmap-healthy` from pod templates.";
    EgressOpen = "MP302", Warning, "Declared backends become a Sidecar with REGISTRY_ONLY: Istio hides other hosts but this is not a security boundary.",
        "Add AuthorizationPolicies if callers must be enforced, not just hidden.";
    HealthCheck = "MP303", Warning, "Envoy health checks have no Istio equivalent; the Kubernetes readiness probe is the signal.",
        "Add the readiness probe given in the message to the workload's container if it has none.";
    OutlierDetection = "MP304", Info, "Outlier detection moved to the node's DestinationRule, applied by clients as in App Mesh.",
        "Nothing to do.";
    ConnectionPool = "MP305", Info, "The listener connection pool became the Sidecar's inbound connection pool (Istio 1.20+).",
        "Nothing to do on Istio 1.20 or later.";
    ListenerTimeout = "MP306", Warning, "A listener per-request timeout has no server-side Istio field.",
        "Clients' route timeouts were lowered where they reach this node; check callers outside the mesh.";
    ListenerIdleTimeout = "MP307", Warning, "A listener idle timeout became the Sidecar's inbound connection-pool idle timeout (connection, not stream, idle).",
        "Nothing to do unless long-lived streams depended on it.";
    TlsStrict = "MP308", Warning, "Listener TLS STRICT becomes Istio mTLS STRICT, which rejects callers without an Istio identity.",
        "Apply it only after every caller runs an Istio sidecar; keep PERMISSIVE during the migration.";
    AcmCertificate = "MP309", Error, "ACM certificates cannot be loaded by Istio sidecars.",
        "Use Istio's own CA, or plug AWS Private CA in as Istio's CA (cert-manager + istio-csr).";
    CustomCertificate = "MP310", Warning, "File or SDS certificates are replaced by Istio-issued identities.",
        "Update anything that pinned the old certificates or SPIFFE IDs.";
    SanAllowList = "MP311", Warning, "A SAN allow-list needs an AuthorizationPolicy keyed by service-account identities.",
        "Write an AuthorizationPolicy with the callers' `cluster.local/ns/<ns>/sa/<sa>` principals.";
    ClientTls = "MP312", Info, "Client TLS policy toward in-mesh backends is replaced by Istio's automatic mTLS.",
        "Nothing to do for in-mesh backends.";
    ExternalDns = "MP313", Info, "DNS discovery of a host outside the cluster becomes a ServiceEntry.",
        "Check the ServiceEntry's ports and resolution.";
    CloudMapAttributes = "MP314", Warning, "Cloud Map attribute filters only survive when they are pod labels.",
        "Make the attributes pod labels, or split the workload into its own Deployment and Service.";
    AccessLog = "MP315", Warning, "Access logging became a Telemetry resource; Istio's log line format differs from App Mesh's.",
        "Configure a MeshConfig extension provider if the file path or format matters.";
    SelectorExpressions = "MP316", Error, "`matchExpressions` cannot select Istio workloads or subsets (equality labels only).",
        "Rewrite the selector with `matchLabels`.";
    NoPods = "MP317", Info, "A node without `podSelector` selects no pods; nothing is emitted for it.",
        "Nothing to do, unless the node was meant to select pods.";
    LoadBalancing = "MP318", Info, "Istio balances per request across pod endpoints instead of per connection through a ClusterIP.",
        "Nothing to do; long-lived HTTP/2 and gRPC connections are now spread across pods.";
    BackendMissing = "MP319", Error, "A backend names a virtual service that does not exist in the source.",
        "Add the virtual service to the source or remove the backend; until then the Sidecar does not list it.";
    InboundPoolUnavailable = "MP321", Warning, "The target Istio release (before 1.20) has no Sidecar inbound connection pool: listener limits and idle timeouts are not carried over.",
        "Upgrade the target to Istio 1.20 or later, or protect the application by other means.";
    WorkloadOverlap = "MP322", Error, "Pods match more than one virtual node: Istio applies one Sidecar per pod and picks arbitrarily between overlapping ones.",
        "Give each virtual node's pods a label of their own so that every pod matches one node (App Mesh's injector refused such pods too).";
    NodeServiceMissing = "MP320", Warning, "A node's DNS host name is a cluster name, but no such Service is in the source.",
        "Add the Service to the manifests (App Mesh needed the name to resolve, so it exists in the cluster).";

    WorkloadAnnotation = "MP330", Info, "An App Mesh pod-template annotation was rewritten as its Istio equivalent.",
        "Nothing to do; the Deployment's pods get the setting when they restart into Istio.";
    WorkloadAnnotationApprox = "MP331", Warning, "An App Mesh pod-template annotation has only an approximate Istio equivalent; it is removed.",
        "Add the Istio annotation given in the message to the pod template if the setting still matters.";
    WorkloadLeftover = "MP332", Warning, "A pod template carries App Mesh's sidecar, init container or readiness gate by hand.",
        "Remove it from the template (the message names it); App Mesh added these at admission, Istio does not need them.";
    UnknownAnnotation = "MP333", Warning, "An `appmesh.k8s.aws/` annotation App Mesh does not define; it is removed with the others.",
        "Check the spelling; nothing in Istio reads it.";

    // MP4xx: virtual gateways and gateway routes.
    GatewayDeployment = "MP401", Warning, "The App Mesh gateway Deployment must be replaced by an Istio gateway Deployment.",
        "Deploy Istio's gateway (Helm chart `gateway`) with the labels the Gateway selects, and keep the load balancer Service.";
    GatewayTlsPermissive = "MP402", Error, "A gateway listener in TLS PERMISSIVE mode cannot be expressed: an Istio server port is plain or TLS.",
        "Split plain and TLS traffic onto two ports, or choose one mode.";
    GatewayAcm = "MP403", Error, "ACM certificates cannot be served by an Istio gateway.",
        "Terminate TLS on the AWS load balancer with ACM and send plain HTTP to the gateway, or use a Kubernetes TLS Secret.";
    GatewayHealthCheck = "MP404", Info, "Gateway listener health checks are dropped: Istio gateways report readiness on port 15021.",
        "Point the load balancer's health check at port 15021, path /healthz/ready.";
    TwoStageRouting = "MP405", Warning, "Gateway routes were flattened with the target's router routes, because Istio gateways do not apply mesh routes.",
        "Check the combined matches; conflicting header conditions are reported separately.";
    RewriteExplicit = "MP406", Info, "App Mesh's default path and host rewrites of a gateway route are written explicitly.",
        "Nothing to do.";
    HostnameSuffix = "MP407", Warning, "A hostname suffix match that is not label-aligned became an authority regex.",
        "Nothing to do, unless clients send ports or unusual host forms.";
    RouteSelection = "MP408", Warning, "Gateway route selectors were evaluated at translation time; Istio binds routes by name.",
        "Re-run the translation when gateway routes or their labels change.";
    GatewayTargetMissing = "MP409", Error, "A gateway route targets a virtual service that does not exist, or a gateway that does not exist.",
        "Fix the reference or add the object to the source.";
    GatewayConnectionPool = "MP410", Warning, "A gateway listener connection pool became a DestinationRule pool for the gateway's upstreams.",
        "Check the limits per upstream host.";
    GatewayPriority = "MP411", Warning, "Gateway routes for one host were merged into one VirtualService by priority, then prefix length.",
        "Check the order of the merged routes.";
    FlattenUnsupported = "MP412", Error, "A router route's path condition cannot be combined with a gateway route's path in one Istio match.",
        "Write the combined route by hand, or simplify the router's path regex to start with the path the gateway forwards.";

    // MP5xx: backend groups.
    BackendGroupMissing = "MP501", Error, "A virtual node names a backend group that does not exist.",
        "Add the backend group to the source or fix the reference.";
    BackendGroupExpanded = "MP502", Info, "A backend group was expanded into the Sidecar hosts of the nodes that use it.",
        "Nothing to do.";
    BackendGroupMemberMissing = "MP503", Error, "A backend group names a virtual service that does not exist in the source.",
        "Add the virtual service to the source or remove it from the group.";
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// One finding about one source object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Stable code.
    pub code: Code,
    /// Severity.
    pub severity: Severity,
    /// The source object.
    pub object: ObjectRef,
    /// Field path inside the object (empty for the whole object).
    pub field: String,
    /// What happened and what to do.
    pub message: String,
}

impl Finding {
    /// A finding with its code's severity.
    pub fn new(
        code: Code,
        object: ObjectRef,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Finding {
            code,
            severity: code.severity(),
            object,
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Sorts findings per object, then field, then code, so output is stable.
pub fn sort(findings: &mut [Finding]) {
    // Keys borrowed: a large mesh has tens of thousands of findings to order.
    fn key(f: &Finding) -> (&str, &str, &str, &str, Code) {
        (
            f.object.namespace.as_deref().unwrap_or_default(),
            &f.object.kind,
            &f.object.name,
            &f.field,
            f.code,
        )
    }
    findings.sort_by(|a, b| key(a).cmp(&key(b)).then_with(|| a.message.cmp(&b.message)));
}

/// The highest severity among the findings.
pub fn worst(findings: &[Finding]) -> Option<Severity> {
    findings.iter().map(|f| f.severity).max()
}
