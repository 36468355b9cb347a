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
    ($($variant:ident = $code:literal, $severity:ident, $summary:literal;)*) => {
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
        }
    };
}

codes! {
    UnknownKind = "MP001", Info, "An object of a kind meshplan does not migrate; it is left as it is.";
    AppMeshV1beta1 = "MP002", Error, "An App Mesh object in the old v1beta1 API; only v1beta2 is translated.";
    KindNotTranslated = "MP003", Error, "An App Mesh kind this version of meshplan does not translate yet.";
    OutOfScope = "MP004", Info, "An object outside the plan's namespaces or mesh; it is left untouched.";
    FieldNotTranslated = "MP005", Warning, "An App Mesh field this version of meshplan does not translate yet.";
    NamespaceMissing = "MP006", Error, "A namespace in scope is not in the source.";
    MeshMissing = "MP007", Error, "The plan's mesh is not in the source.";
    DefaultTimeout = "MP201", Info, "App Mesh's default 15 s request timeout is made explicit.";
    DefaultRetries = "MP202", Warning, "A route without a retry policy: App Mesh and Istio default retries differ.";
    WeightsNormalised = "MP203", Info, "Relative App Mesh weights were normalised to percentages.";
    WeightsOverridden = "MP204", Info, "The plan overrides the router's weights.";
    TargetMissing = "MP205", Error, "A weighted target names a virtual node that does not exist.";
    SubsetLabels = "MP206", Error, "Weighted targets cannot be told apart by pod labels.";
    HostServiceMissing = "MP207", Error, "No Kubernetes Service carries the virtual service's host name.";
    RouterMissing = "MP208", Error, "A virtual service names a router that does not exist.";
    ProviderMissing = "MP209", Error, "A virtual service has no provider, so App Mesh cannot route it.";
    AllWeightsZero = "MP210", Error, "Every target of a route has weight 0.";
    HostExpanded = "MP211", Warning, "A short host name was expanded to a cluster FQDN.";
    SelectorAdded = "MP212", Info, "A selector-less Service gets the labels its target pods share.";
    CloudMapReplaced = "MP301", Info, "Cloud Map discovery is replaced by the Kubernetes Service.";
    EgressOpen = "MP302", Warning, "Declared backends are not enforced: Istio allows all egress by default.";
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
    findings.sort_by(|a, b| {
        let key = |f: &Finding| {
            (
                f.object.namespace.clone().unwrap_or_default(),
                f.object.kind.clone(),
                f.object.name.clone(),
                f.field.clone(),
                f.code,
            )
        };
        key(a).cmp(&key(b)).then_with(|| a.message.cmp(&b.message))
    });
}

/// The highest severity among the findings.
pub fn worst(findings: &[Finding]) -> Option<Severity> {
    findings.iter().map(|f| f.severity).max()
}
