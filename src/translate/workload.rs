//! Workloads: App Mesh's pod-template annotations become Istio's, and what App Mesh's injector
//! added by hand to a template is reported.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::findings::Code;

use super::Ctx;

/// The App Mesh annotation prefix.
const PREFIX: &str = "appmesh.k8s.aws/";

/// How an App Mesh annotation carries over.
enum Rule {
    /// The same value under an Istio annotation.
    Annotation(&'static str),
    /// A comma list of IPs becomes CIDRs under an Istio annotation.
    Cidrs(&'static str),
    /// `enabled`/`disabled` becomes the pod label `sidecar.istio.io/inject`.
    InjectLabel,
    /// Only approximately: removed, with what to write instead.
    Approx(&'static str),
    /// No meaning in Istio: removed silently.
    Drop,
}

fn rule(key: &str) -> Option<Rule> {
    Some(match key {
        "sidecarInjectorWebhook" => Rule::InjectLabel,
        "cpuRequest" => Rule::Annotation("sidecar.istio.io/proxyCPU"),
        "memoryRequest" => Rule::Annotation("sidecar.istio.io/proxyMemory"),
        "cpuLimit" => Rule::Annotation("sidecar.istio.io/proxyCPULimit"),
        "memoryLimit" => Rule::Annotation("sidecar.istio.io/proxyMemoryLimit"),
        "egressIgnoredIPs" => Rule::Cidrs("traffic.sidecar.istio.io/excludeOutboundIPRanges"),
        "egressIgnoredPorts" => Rule::Annotation("traffic.sidecar.istio.io/excludeOutboundPorts"),
        "ports" => Rule::Annotation("traffic.sidecar.istio.io/includeInboundPorts"),
        "secretMounts" => Rule::Approx(
            "mount the secrets into istio-proxy with `sidecar.istio.io/userVolume` and `sidecar.istio.io/userVolumeMount` (JSON)",
        ),
        "volumeMounts" => Rule::Approx(
            "mount the volumes into istio-proxy with `sidecar.istio.io/userVolumeMount` (JSON)",
        ),
        "sidecarEnv" | "sidecarEnvJson" => Rule::Approx(
            "set the proxy's environment with `proxy.istio.io/config: {\"proxyMetadata\": {…}}`",
        ),
        "appmeshCNI" => Rule::Approx(
            "install the Istio CNI plugin cluster-wide; Istio has no per-pod CNI switch",
        ),
        "proxyEgressPort"
        | "proxyIngressPort"
        | "ignoredUID"
        | "ignoredGID"
        | "ipv6"
        | "preview"
        | "sds"
        | "xrayAgentConfigMount"
        | "virtualGatewaySkipImageOverride" => Rule::Drop,
        _ => return None,
    })
}

/// `a,b` → `a/32,b/32` (`/128` for IPv6); values that are already CIDRs stay.
fn cidrs(ips: &str) -> String {
    ips.split(',')
        .map(str::trim)
        .filter(|ip| !ip.is_empty())
        .map(|ip| {
            if ip.contains('/') {
                ip.to_owned()
            } else if ip.contains(':') {
                format!("{ip}/128")
            } else {
                format!("{ip}/32")
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

pub(super) fn translate(ctx: &mut Ctx<'_>) {
    for deployment in &ctx.inv.deployments {
        if !ctx.in_scope(deployment.namespace()) {
            continue;
        }
        let object = deployment.object_ref();
        let mut after = Value::clone(&deployment.raw);
        let template = &mut after["spec"]["template"];
        let annotations: BTreeMap<String, Value> = template["metadata"]["annotations"]
            .as_object()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        let mut findings = Vec::new();
        for (key, value) in &annotations {
            let Some(name) = key.strip_prefix(PREFIX) else {
                continue;
            };
            let field = format!("spec.template.metadata.annotations[\"{key}\"]");
            let text = value.as_str().unwrap_or_default().to_owned();
            template["metadata"]["annotations"]
                .as_object_mut()
                .expect("annotations are a map")
                .remove(key);
            match rule(name) {
                Some(Rule::Annotation(istio)) => {
                    template["metadata"]["annotations"][istio] = Value::String(text.clone());
                    findings.push((
                        Code::WorkloadAnnotation,
                        field,
                        format!("`{key}: {text}` became `{istio}: {text}`"),
                    ));
                }
                Some(Rule::Cidrs(istio)) => {
                    let ranges = cidrs(&text);
                    template["metadata"]["annotations"][istio] = Value::String(ranges.clone());
                    findings.push((
                        Code::WorkloadAnnotation,
                        field,
                        format!("`{key}: {text}` became `{istio}: {ranges}`"),
                    ));
                }
                Some(Rule::InjectLabel) => {
                    let inject = if text == "disabled" { "false" } else { "true" };
                    template["metadata"]["labels"]["sidecar.istio.io/inject"] =
                        Value::String(inject.to_owned());
                    findings.push((
                        Code::WorkloadAnnotation,
                        field,
                        format!("`{key}: {text}` became the pod label `sidecar.istio.io/inject: \"{inject}\"`"),
                    ));
                }
                Some(Rule::Approx(what)) => {
                    findings.push((
                        Code::WorkloadAnnotationApprox,
                        field,
                        format!("`{key}` is removed: {what}"),
                    ));
                }
                Some(Rule::Drop) => {}
                None => findings.push((
                    Code::UnknownAnnotation,
                    field,
                    format!("`{key}` is not an App Mesh injector annotation; it is removed"),
                )),
            }
        }
        if template["metadata"]["annotations"]
            .as_object()
            .is_some_and(|m| m.is_empty())
        {
            template["metadata"]
                .as_object_mut()
                .expect("metadata is a map")
                .remove("annotations");
        }
        // What App Mesh's injector adds at admission, copied into a template by hand.
        for (list, names) in [
            ("containers", &["envoy", "xray-daemon"][..]),
            ("initContainers", &["proxyinit"][..]),
        ] {
            for (i, container) in template["spec"][list]
                .as_array()
                .into_iter()
                .flatten()
                .enumerate()
            {
                let name = container["name"].as_str().unwrap_or_default();
                if names.contains(&name) {
                    findings.push((
                        Code::WorkloadLeftover,
                        format!("spec.template.spec.{list}[{i}]"),
                        format!("the template runs App Mesh's `{name}`; remove it before the restart, or the pods run two proxies"),
                    ));
                }
            }
        }
        // `get_mut`, not indexing: a mutable index would insert a `null` where there is nothing.
        if let Some(gates) = template
            .get_mut("spec")
            .and_then(|s| s.get_mut("readinessGates"))
            .and_then(Value::as_array_mut)
        {
            let before = gates.len();
            gates.retain(|g| {
                g["conditionType"] != "conditions.appmesh.k8s.aws/aws-cloudmap-healthy"
            });
            if gates.len() != before {
                findings.push((
                    Code::WorkloadAnnotation,
                    "spec.template.spec.readinessGates".to_owned(),
                    "the Cloud Map readiness gate is removed: nothing sets it once App Mesh is gone, so pods would never be ready".to_owned(),
                ));
            }
            if gates.is_empty() {
                template["spec"]
                    .as_object_mut()
                    .expect("spec is a map")
                    .remove("readinessGates");
            }
        }
        for (code, field, message) in findings {
            ctx.finding(code, &object, &field, message);
        }
        if after != *deployment.raw {
            ctx.out.workloads.push(super::ObjectChange {
                before: std::sync::Arc::clone(&deployment.raw),
                after,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::cidrs;

    #[test]
    fn ips_become_ranges() {
        assert_eq!(
            cidrs("169.254.169.254, 10.0.0.0/8,fd00::1"),
            "169.254.169.254/32,10.0.0.0/8,fd00::1/128"
        );
    }
}
