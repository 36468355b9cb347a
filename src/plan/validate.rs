//! Semantic checks of a parsed plan: what the types alone cannot say.

use super::model::*;
use super::{Seg, Target};

/// A semantic problem at a path in the plan.
pub(super) struct Problem<'a> {
    pub path: Vec<Seg<'a>>,
    pub target: Target,
    pub message: String,
    pub help: Option<String>,
}

struct Problems<'a>(Vec<Problem<'a>>);

impl<'a> Problems<'a> {
    fn value(&mut self, path: &[Seg<'a>], message: String, help: &str) {
        self.push(path, Target::Value, message, help);
    }

    fn key(&mut self, path: &[Seg<'a>], message: String, help: &str) {
        self.push(path, Target::Key, message, help);
    }

    fn push(&mut self, path: &[Seg<'a>], target: Target, message: String, help: &str) {
        self.0.push(Problem {
            path: path.to_vec(),
            target,
            message,
            help: (!help.is_empty()).then(|| help.to_owned()),
        });
    }
}

use Seg::{Index, Key};

/// Every semantic problem of the plan, in document order of the sections.
pub(super) fn check(spec: &PlanSpec) -> Vec<Problem<'_>> {
    let mut p = Problems(Vec::new());
    check_source(&spec.source, &mut p);
    check_istio(&spec.istio, &mut p);
    check_strategy(spec, &mut p);
    if let Some(ramp) = &spec.ramp {
        check_ramp(ramp, spec.strategy.kind, &mut p);
    }
    for (service, routing) in &spec.routing {
        check_routing(service, routing, spec, &mut p);
    }
    check_cleanup_and_state(spec, &mut p);
    if let Some(verify) = &spec.verify {
        check_verify(verify, &mut p);
    }
    p.0
}

fn check_verify<'a>(verify: &'a Verify, p: &mut Problems<'a>) {
    match (&verify.backend_header, &verify.backend_regex) {
        (Some(_), Some(_)) => p.key(
            &[Key("verify"), Key("backend_regex")],
            "`verify.backend_header` and `verify.backend_regex` cannot both be set".to_owned(),
            "name the backend either by a response header or by a pattern on the body",
        ),
        (None, None) => p.key(
            &[Key("verify")],
            "`[verify]` needs `backend_header` or `backend_regex`".to_owned(),
            "e.g. backend_header = \"x-backend\"",
        ),
        (None, Some(pattern)) => match regex::Regex::new(pattern) {
            Err(e) => p.value(
                &[Key("verify"), Key("backend_regex")],
                format!("`verify.backend_regex` is not a valid regular expression: {e}"),
                "",
            ),
            Ok(re) if re.captures_len() < 2 => p.value(
                &[Key("verify"), Key("backend_regex")],
                "`verify.backend_regex` has no capture group".to_owned(),
                "put the backend name in parentheses, e.g. \"color: (\\\\w+)\"",
            ),
            Ok(_) => {}
        },
        (Some(_), None) => {}
    }
    if !(1..=100_000).contains(&verify.requests) {
        p.value(
            &[Key("verify"), Key("requests")],
            format!("`verify.requests` is {}", verify.requests),
            "send between 1 and 100000 requests",
        );
    }
    if !(verify.significance > 0.0 && verify.significance < 1.0) {
        p.value(
            &[Key("verify"), Key("significance")],
            format!("`verify.significance` is {}", verify.significance),
            "a probability strictly between 0 and 1, e.g. 0.01",
        );
    }
}

fn check_source<'a>(source: &'a Source, p: &mut Problems<'a>) {
    if !source.manifests.is_empty() {
        for (key, set) in [
            ("context", source.context.is_some()),
            ("kubeconfig", source.kubeconfig.is_some()),
            ("eks", source.eks.is_some()),
        ] {
            if set {
                p.key(
                    &[Key("source"), Key(key)],
                    format!("`source.{key}` cannot be combined with `source.manifests`"),
                    "read from manifests (offline) or from a cluster, not both",
                );
            }
        }
    }
    if source.eks.is_some() && source.context.is_some() {
        p.key(
            &[Key("source"), Key("context")],
            "`source.context` cannot be combined with `source.eks`".to_owned(),
            "`eks` connects to the cluster directly; remove one of them",
        );
    }
    if let Some(eks) = &source.eks {
        if eks.name.trim().is_empty() {
            p.value(
                &[Key("source"), Key("eks"), Key("name")],
                "the EKS cluster name is empty".to_owned(),
                "",
            );
        }
        if !is_aws_region(&eks.region) {
            p.value(
                &[Key("source"), Key("eks"), Key("region")],
                format!("`{}` is not an AWS region", eks.region),
                "write a region code such as `us-west-2` or `eu-central-1`",
            );
        }
    }
    if source.mesh.trim().is_empty() {
        p.value(
            &[Key("source"), Key("mesh")],
            "`source.mesh` is empty".to_owned(),
            "name the App Mesh `Mesh` being migrated",
        );
    }
    if source.namespaces.is_empty() {
        p.value(
            &[Key("source"), Key("namespaces")],
            "`source.namespaces` is empty: nothing would be migrated".to_owned(),
            "list the namespaces in scope, e.g. `namespaces = [\"howto-k8s-http2\"]`",
        );
    }
    for (i, ns) in source.namespaces.iter().enumerate() {
        if source.namespaces[..i].contains(ns) {
            p.value(
                &[Key("source"), Key("namespaces"), Index(i)],
                format!("namespace `{ns}` is listed twice"),
                "",
            );
        }
    }
}

fn is_aws_region(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    parts.len() >= 3
        && parts.iter().all(|s| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
        && parts
            .last()
            .is_some_and(|s| s.bytes().all(|b| b.is_ascii_digit()))
}

fn check_istio<'a>(istio: &'a Istio, p: &mut Problems<'a>) {
    if istio.install != Install::EksAddon {
        for (key, set) in [
            ("addon_name", istio.addon_name.is_some()),
            ("addon_version", istio.addon_version.is_some()),
            ("configuration_values", istio.configuration_values.is_some()),
            ("resolve_conflicts", istio.resolve_conflicts.is_some()),
        ] {
            if set {
                p.key(
                    &[Key("istio"), Key(key)],
                    format!("`istio.{key}` is only used with `install = \"eks-addon\"`"),
                    "set `install = \"eks-addon\"` or remove the key",
                );
            }
        }
    }
    if let Some(values) = &istio.configuration_values
        && let Err(err) = check_configuration_values(values)
    {
        p.value(
            &[Key("istio"), Key("configuration_values")],
            format!("`istio.configuration_values` is neither a JSON nor a YAML mapping: {err}"),
            "write the add-on values as a JSON object or a YAML mapping",
        );
    }
}

/// Add-on configuration values must be a JSON object or a YAML mapping.
fn check_configuration_values(text: &str) -> Result<(), String> {
    let value: serde_json::Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(json_err) => serde_saphyr::from_str(text)
            .map_err(|yaml_err| format!("as JSON: {json_err}; as YAML: {yaml_err}"))?,
    };
    if value.is_object() {
        Ok(())
    } else {
        Err("the document is not a mapping".to_owned())
    }
}

fn check_strategy<'a>(spec: &'a PlanSpec, p: &mut Problems<'a>) {
    let strategy = &spec.strategy;
    match strategy.kind {
        StrategyKind::InPlace => {
            for (key, set) in [
                ("target_namespace", strategy.target_namespace.is_some()),
                ("entry", strategy.entry.is_some()),
                ("clone_secrets", strategy.clone_secrets),
            ] {
                if set {
                    p.key(
                        &[Key("strategy"), Key(key)],
                        format!(
                            "`strategy.{key}` is only used with `kind = \"parallel-namespace\"`"
                        ),
                        "set `kind = \"parallel-namespace\"` or remove the key",
                    );
                }
            }
        }
        StrategyKind::ParallelNamespace => {
            match &strategy.target_namespace {
                None => p.key(
                    &[Key("strategy"), Key("kind")],
                    "`kind = \"parallel-namespace\"` needs `strategy.target_namespace`".to_owned(),
                    "name the Istio-injected namespace to clone into, e.g. `target_namespace = \"color-istio\"`",
                ),
                Some(target) if spec.source.namespaces.contains(target) => p.value(
                    &[Key("strategy"), Key("target_namespace")],
                    format!("the target namespace `{target}` is also a source namespace"),
                    "clone into a new namespace that App Mesh does not use",
                ),
                Some(_) => {}
            }
            if spec.source.namespaces.len() > 1 {
                p.value(
                    &[Key("source"), Key("namespaces")],
                    "a parallel-namespace migration moves one source namespace".to_owned(),
                    "write one plan per namespace",
                );
            }
            match &strategy.entry {
                None => p.key(
                    &[Key("strategy"), Key("kind")],
                    "`kind = \"parallel-namespace\"` needs `strategy.entry`".to_owned(),
                    "add `entry = { kind = \"istio-gateway\", service = \"color\", gateway = \"istio-system/ingressgateway\" }`",
                ),
                Some(entry) => {
                    if !is_namespaced_name(&entry.gateway) {
                        p.value(
                            &[Key("strategy"), Key("entry"), Key("gateway")],
                            format!("`{}` is not of the form `namespace/name`", entry.gateway),
                            "name the gateway as `namespace/name`, e.g. `istio-system/ingressgateway`",
                        );
                    }
                    if entry.service.trim().is_empty() {
                        p.value(
                            &[Key("strategy"), Key("entry"), Key("service")],
                            "`strategy.entry.service` is empty".to_owned(),
                            "name the App Mesh virtual service whose traffic is split",
                        );
                    }
                }
            }
        }
    }
    if strategy.rollout_timeout.0.is_zero() {
        p.value(
            &[Key("strategy"), Key("rollout_timeout")],
            "`strategy.rollout_timeout` must be longer than 0s".to_owned(),
            "e.g. `rollout_timeout = \"5m\"`",
        );
    }
}

fn is_namespaced_name(text: &str) -> bool {
    matches!(text.split_once('/'), Some((ns, name))
        if super::check_dns1123_label(ns).is_ok() && !name.is_empty() && !name.contains('/'))
}

fn check_ramp<'a>(ramp: &'a Ramp, kind: StrategyKind, p: &mut Problems<'a>) {
    if kind != StrategyKind::ParallelNamespace {
        p.key(
            &[Key("ramp")],
            "`[ramp]` is only used with `strategy.kind = \"parallel-namespace\"`".to_owned(),
            "an in-place migration moves all traffic at once; remove `[ramp]` or switch strategy",
        );
    }
    let steps: Vec<u8> = ramp.steps.iter().map(|s| s.get()).collect();
    if steps.is_empty() {
        p.value(
            &[Key("ramp"), Key("steps")],
            "`ramp.steps` is empty".to_owned(),
            "e.g. `steps = [5, 25, 50, 100]`",
        );
    } else {
        for (i, pair) in steps.windows(2).enumerate() {
            if pair[1] <= pair[0] {
                p.value(
                    &[Key("ramp"), Key("steps"), Index(i + 1)],
                    format!(
                        "ramp steps must strictly increase, but {} follows {}",
                        pair[1], pair[0]
                    ),
                    "e.g. `steps = [5, 25, 50, 100]`",
                );
            }
        }
        if steps[0] == 0 {
            p.value(
                &[Key("ramp"), Key("steps"), Index(0)],
                "the first ramp step must move some traffic (more than 0)".to_owned(),
                "the ramp starts at 0 % by itself",
            );
        }
        if steps.last() != Some(&100) {
            p.value(
                &[Key("ramp"), Key("steps")],
                format!(
                    "ramp steps must end at 100, but the last is {}",
                    steps.last().copied().unwrap_or_default()
                ),
                "add 100 as the last step",
            );
        }
    }
    if ramp.interval.0.is_zero() {
        p.value(
            &[Key("ramp"), Key("interval")],
            "`ramp.interval` must be longer than 0s".to_owned(),
            "e.g. `interval = \"5m\"`",
        );
    }
    if ramp.max_failed_checks == 0 {
        p.value(
            &[Key("ramp"), Key("max_failed_checks")],
            "`ramp.max_failed_checks` must be at least 1".to_owned(),
            "",
        );
    }
    if !ramp.gates.is_empty() && ramp.prometheus.is_none() {
        p.key(
            &[Key("ramp"), Key("gates")],
            "gates need a Prometheus to query".to_owned(),
            "add `prometheus = { url = \"http://prometheus.istio-system:9090\" }` to `[ramp]`",
        );
    }
    for (i, gate) in ramp.gates.iter().enumerate() {
        check_gate(i, gate, ramp, p);
    }
}

fn check_gate<'a>(i: usize, gate: &'a Gate, ramp: &'a Ramp, p: &mut Problems<'a>) {
    let at = |key: &'a str| vec![Key("ramp"), Key("gates"), Index(i), Key(key)];
    let name = &gate.name;
    if ramp.gates[..i].iter().any(|g| g.name == *name) {
        p.value(
            &at("name"),
            format!("gate name `{name}` is used twice"),
            "give every gate its own name: status and reports tell gates apart by name",
        );
    }
    let kind = serde_json::to_value(gate.kind).expect("gate kinds serialise");
    let kind = kind.as_str().unwrap_or_default();
    let forbids: &[&str] = match gate.kind {
        GateKind::SuccessRate | GateKind::LatencyP99 => &["query", "tolerance"],
        GateKind::Query => &["tolerance"],
        GateKind::Comparative => &["min", "max"],
    };
    let set = |key: &str| match key {
        "query" => gate.query.is_some(),
        "min" => gate.min.is_some(),
        "max" => gate.max.is_some(),
        _ => gate.tolerance.is_some(),
    };
    for key in forbids.iter().copied().filter(|k| set(k)) {
        p.key(
            &at(key),
            format!("`{key}` is not used by a gate of kind `{kind}`"),
            match gate.kind {
                GateKind::Comparative => {
                    "a comparative gate passes when Istio's success rate >= App Mesh's - `tolerance`; remove the key"
                }
                _ => "remove the key, or change the gate's kind",
            },
        );
    }
    match gate.kind {
        GateKind::SuccessRate => {}
        GateKind::LatencyP99 => {
            if gate.max.is_none() {
                p.key(
                    &at("kind"),
                    format!("gate `{name}` of kind `latency-p99` needs `max`"),
                    "set the highest passing 99th percentile latency in milliseconds, e.g. `max = 250`",
                );
            }
        }
        GateKind::Query => {
            if gate.query.is_none() {
                p.key(
                    &at("kind"),
                    format!("gate `{name}` of kind `query` needs `query`"),
                    "write the PromQL, e.g. `query = 'sum(rate(http_requests_total{namespace=\"{{namespace}}\"}[{{window}}]))'`",
                );
            }
            if gate.min.is_none() && gate.max.is_none() {
                p.key(
                    &at("kind"),
                    format!("gate `{name}` of kind `query` needs a threshold: `min`, `max` or both"),
                    "the gate passes when min <= value <= max; set at least one of them",
                );
            }
        }
        GateKind::Comparative => match gate.tolerance {
            None => p.key(
                &at("kind"),
                format!("gate `{name}` of kind `comparative` needs `tolerance`"),
                "set how far below App Mesh's success rate Istio's may be, e.g. `tolerance = 0.01`",
            ),
            Some(t) if !(0.0..=1.0).contains(&t) => p.value(
                &at("tolerance"),
                format!("gate `{name}` has tolerance {t}, outside 0..=1"),
                "the tolerance is a difference of success rates (shares of 1), e.g. `tolerance = 0.01`",
            ),
            Some(_) => {}
        },
    }
    for (key, bound) in [("min", gate.min), ("max", gate.max)] {
        if let Some(value) = bound.filter(|v| !v.is_finite()) {
            // TOML allows `nan` and `inf`; no measured value compares as passing against them.
            p.value(
                &at(key),
                format!("gate `{name}` has {key} {value}, not a finite number"),
                "write the threshold as a number, e.g. `min = 0.99`",
            );
        }
    }
    if let (Some(min), Some(max)) = (gate.min, gate.max)
        && min > max
    {
        p.value(
            &at("min"),
            format!("gate `{name}` has min {min} above max {max}"),
            "no value could pass: swap them or lower `min`",
        );
    }
    if let Some(query) = &gate.query
        && let Err(err) = crate::gates::queries::check(query)
    {
        p.value(
            &at("query"),
            format!("gate `{name}`: {err}"),
            &format!("a query may use {}", crate::gates::queries::valid_list()),
        );
    }
    if gate.window.0.is_zero() {
        p.value(
            &at("window"),
            format!("gate `{name}` has a window of 0s"),
            "the window is the range the query looks back over, e.g. `window = \"1m\"`",
        );
    }
}

fn check_routing<'a>(
    service: &'a str,
    routing: &'a RoutingOverride,
    spec: &'a PlanSpec,
    p: &mut Problems<'a>,
) {
    let at = [Key("routing"), Key(service)];
    let parts: Vec<&str> = service.split('/').collect();
    if parts.len() > 2 || parts.iter().any(|part| part.is_empty()) {
        p.key(
            &at,
            format!("`routing.\"{service}\"` is not a virtual service name"),
            "name the App Mesh virtual service as `name` or `\"namespace/name\"`",
        );
    } else if let Some((ns, _)) = service.split_once('/')
        && !spec.source.namespaces.iter().any(|n| n.as_str() == ns)
    {
        p.key(
            &at,
            format!("`routing.\"{service}\"` names namespace `{ns}`, which is not in `source.namespaces`"),
            "meshplan only changes namespaces in scope",
        );
    }
    if routing.weights.is_empty() {
        return;
    }
    let sum: u32 = routing.weights.values().map(|w| u32::from(w.get())).sum();
    if sum != 100 {
        p.value(
            &[Key("routing"), Key(service), Key("weights")],
            format!("weights for `{service}` sum to {sum}, not 100"),
            "weights are percentages of the traffic: make them add up to exactly 100",
        );
    }
}

fn check_cleanup_and_state<'a>(spec: &'a PlanSpec, p: &mut Problems<'a>) {
    if spec.cleanup.delete_source_namespace && spec.strategy.kind != StrategyKind::ParallelNamespace
    {
        p.key(
            &[Key("cleanup"), Key("delete_source_namespace")],
            "`cleanup.delete_source_namespace` is only used with `strategy.kind = \"parallel-namespace\"`".to_owned(),
            "an in-place migration keeps its namespaces",
        );
    }
    match spec.state.backend {
        StateBackend::File if spec.state.namespace.is_some() => p.key(
            &[Key("state"), Key("namespace")],
            "`state.namespace` is only used with `backend = \"configmap\"`".to_owned(),
            "",
        ),
        StateBackend::Configmap if spec.state.path.is_some() => p.key(
            &[Key("state"), Key("path")],
            "`state.path` is only used with `backend = \"file\"`".to_owned(),
            "",
        ),
        _ => {}
    }
    // The journal and lock would go with the namespace they live in.
    if spec.state.backend == StateBackend::Configmap && spec.cleanup.delete_source_namespace {
        let state_namespace = spec.state_namespace();
        if state_namespace.is_some_and(|n| spec.source.namespaces.contains(n)) {
            p.key(
                &[Key("cleanup"), Key("delete_source_namespace")],
                "`cleanup.delete_source_namespace` would delete the namespace that holds the plan's state (ConfigMap and Lease)".to_owned(),
                "keep the state elsewhere, e.g. `[state] namespace = \"default\"`",
            );
        }
    }
}
