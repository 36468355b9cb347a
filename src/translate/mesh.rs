//! `Mesh`: membership becomes injection labels, the egress filter becomes registry-only egress.

use crate::appmesh::{self, EgressFilterType};
use crate::findings::Code;
use crate::inventory::Item;
use crate::istio;
use crate::object::ObjectRef;
use crate::translate::common::metadata;

use super::Ctx;
use super::coverage::{Disposition, Field, field};

/// Host pattern of the AWS APIs App Mesh's DROP_ALL still lets through.
pub const AWS_APIS_HOST: &str = "*.amazonaws.com";
/// Name of the ServiceEntry that registers them.
pub const AWS_APIS_ENTRY: &str = "aws-apis";

pub(super) fn coverage() -> Vec<Field> {
    let mut fields = vec![
        field("spec.awsName", Disposition::Drop, "none"),
        field(
            "spec.egressFilter.type",
            Disposition::Exact,
            "DROP_ALL: Sidecar `outboundTrafficPolicy: REGISTRY_ONLY` + ServiceEntry `*.amazonaws.com`; ALLOW_ALL: Istio's default ALLOW_ANY",
        ),
        field(
            "spec.meshOwner",
            Disposition::Unsupported(Code::SharedMesh),
            "none: cross-account meshes need Istio multi-cluster",
        ),
        field(
            "spec.meshServiceDiscovery.ipPreference",
            Disposition::Unsupported(Code::IpPreference),
            "none: Istio follows the cluster's IP families",
        ),
        field(
            "spec.namespaceSelector.matchLabels",
            Disposition::Approx(Code::MeshMembership),
            "namespace label `istio-injection=enabled` (or `istio.io/rev`) on the selected namespaces",
        ),
    ];
    for leaf in ["key", "operator", "values[]"] {
        fields.push(field(
            format!("spec.namespaceSelector.matchExpressions[].{leaf}"),
            Disposition::Approx(Code::MeshMembership),
            "namespace label `istio-injection=enabled` on the namespaces in the plan's scope",
        ));
    }
    fields
}

pub(super) fn translate(ctx: &mut Ctx<'_>) {
    let wanted = ctx.opts.mesh.clone();
    let mut found = false;
    for mesh in &ctx.inv.meshes {
        if wanted.as_deref().is_some_and(|w| w != mesh.name()) {
            ctx.finding(
                Code::OutOfScope,
                &mesh.object_ref(),
                "",
                format!(
                    "mesh `{}` is not the plan's mesh `{}`; it is left untouched",
                    mesh.name(),
                    wanted.as_deref().unwrap_or_default()
                ),
            );
            continue;
        }
        found = true;
        ctx.check_fields("Mesh", mesh);
        unsupported(ctx, mesh);
        if let Some(labels) = mesh
            .value
            .spec
            .namespace_selector
            .as_ref()
            .and_then(|s| s.match_labels.clone())
        {
            ctx.out.mesh_labels.extend(labels);
        }
        let egress = mesh
            .value
            .spec
            .egress_filter
            .as_ref()
            .map_or(EgressFilterType::DropAll, |f| f.type_);
        ctx.egress = Some(egress);
        match egress {
            EgressFilterType::DropAll => drop_all(
                ctx,
                &mesh.object_ref(),
                mesh.value.spec.egress_filter.is_none(),
            ),
            EgressFilterType::AllowAll => ctx.finding(
                Code::EgressAllowAll,
                &mesh.object_ref(),
                "spec.egressFilter.type",
                "ALLOW_ALL is Istio's default (ALLOW_ANY); App Mesh still restricted nodes that \
                 declare backends, and so do their translated Sidecars",
            ),
        }
    }
    missing_namespaces(ctx);
    if let (Some(name), false) = (wanted, found) {
        ctx.finding(
            Code::MeshMissing,
            &ObjectRef::new(appmesh::API_VERSION, "Mesh", None, &name),
            "",
            format!(
                "the plan's mesh `{name}` is not in the source; check `source.mesh` and that the \
                 manifests include the Mesh object"
            ),
        );
    }
}

/// Namespaces of the plan's scope that the source does not hold: nothing in them can be migrated,
/// and the relabel step would have no namespace to label.
fn missing_namespaces(ctx: &mut Ctx<'_>) {
    let Some(scope) = ctx.opts.namespaces.clone() else {
        return;
    };
    for namespace in scope {
        if !ctx.inv.namespaces.iter().any(|n| n.name() == namespace) {
            ctx.finding(
                Code::NamespaceMissing,
                &ObjectRef::new("v1", "Namespace", None, &namespace),
                "",
                format!(
                    "namespace `{namespace}` is in `source.namespaces` but not in the source: add \
                     its Namespace object to the manifests, or remove it from `source.namespaces`"
                ),
            );
        }
    }
}

/// Says what `meshOwner` and `ipPreference` mean for this mesh (both block the plan).
fn unsupported(ctx: &mut Ctx<'_>, mesh: &Item<appmesh::Mesh>) {
    let object = mesh.object_ref();
    let spec = &mesh.value.spec;
    if let Some(owner) = &spec.mesh_owner {
        ctx.finding(
            Code::SharedMesh,
            &object,
            "spec.meshOwner",
            format!(
                "the mesh belongs to AWS account `{owner}` and is shared with this one through \
                 AWS RAM: its other members run outside this cluster, and Istio has no \
                 cross-account mesh; migrate the owner's workloads too, or connect the clusters \
                 with Istio multi-cluster"
            ),
        );
    }
    if let Some(preference) = spec
        .mesh_service_discovery
        .as_ref()
        .and_then(|d| d.ip_preference.as_ref())
    {
        ctx.finding(
            Code::IpPreference,
            &object,
            "spec.meshServiceDiscovery.ipPreference",
            format!(
                "`{preference}`: Istio has no per-mesh IP family preference and follows the \
                 cluster's IP families (and Istio's dual-stack settings); check that the \
                 cluster's Services use the family the workloads need, then remove the setting"
            ),
        );
    }
}

/// The namespaces that get the AWS-API ServiceEntry under DROP_ALL: every namespace in scope.
fn aws_apis_namespaces(ctx: &Ctx<'_>) -> Vec<String> {
    ctx.inv
        .namespaces
        .iter()
        .map(|n| n.name().to_owned())
        .filter(|n| ctx.in_scope(n))
        .collect()
}

/// The namespace whose AWS-API ServiceEntry a Sidecar in `namespace` imports: its own when it
/// has one, else the first that has one (ServiceEntries are exported to every namespace).
pub(super) fn aws_apis_namespace(ctx: &Ctx<'_>, namespace: &str) -> String {
    let namespaces = aws_apis_namespaces(ctx);
    if namespaces.iter().any(|n| n == namespace) {
        namespace.to_owned()
    } else {
        namespaces
            .into_iter()
            .next()
            .unwrap_or_else(|| namespace.to_owned())
    }
}

/// DROP_ALL: registry-only egress needs the AWS APIs registered, in every namespace in scope.
fn drop_all(ctx: &mut Ctx<'_>, mesh: &ObjectRef, defaulted: bool) {
    let namespaces = aws_apis_namespaces(ctx);
    for namespace in &namespaces {
        let entry = istio::Resource {
            api_version: ctx.api.networking,
            kind: "ServiceEntry",
            metadata: metadata(AWS_APIS_ENTRY, namespace, mesh),
            spec: istio::ServiceEntrySpec {
                hosts: vec![AWS_APIS_HOST.to_owned()],
                ports: vec![istio::ServicePort {
                    number: 443,
                    protocol: "TLS",
                    name: "tls".to_owned(),
                }],
                location: "MESH_EXTERNAL",
                resolution: "NONE",
            },
        };
        ctx.emit(entry.to_value());
    }
    ctx.finding(
        Code::EgressDropAll,
        mesh,
        "spec.egressFilter",
        format!(
            "{} App Mesh let only mesh backends and AWS APIs through; the translated Sidecars use \
             REGISTRY_ONLY and a ServiceEntry `{AWS_APIS_ENTRY}` registers `{AWS_APIS_HOST}` on \
             port 443. Pods that call IMDS or EKS Pod Identity need the pod annotation \
             `traffic.sidecar.istio.io/excludeOutboundIPRanges: 169.254.169.254/32,169.254.170.23/32`",
            if defaulted {
                "No egress filter is App Mesh's default, DROP_ALL."
            } else {
                "Egress DROP_ALL:"
            }
        ),
    );
}
