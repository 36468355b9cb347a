//! `BackendGroup`: a named set of virtual services, expanded into the Sidecar hosts of the nodes
//! that use it.

use crate::findings::Code;

use super::Ctx;
use super::coverage::{Disposition, Field, field, mesh_ref};

pub(super) fn coverage() -> Vec<Field> {
    let mut fields = vec![
        field(
            "spec.virtualservices[].name",
            Disposition::Exact,
            "Sidecar `egress[].hosts` of the nodes that use the group",
        ),
        field(
            "spec.virtualservices[].namespace",
            Disposition::Exact,
            "Sidecar `egress[].hosts` of the nodes that use the group",
        ),
    ];
    fields.extend(mesh_ref());
    fields
}

/// Admits every group and reports members that name no virtual service; the nodes that use a
/// group expand it themselves (node translation runs first and lists only members that exist).
pub(super) fn translate(ctx: &mut Ctx<'_>) {
    for group in &ctx.inv.backend_groups {
        if !ctx.admit("BackendGroup", group) {
            continue;
        }
        for (i, member) in group.value.spec.virtualservices.iter().enumerate() {
            if ctx.virtual_service(member, group.namespace()).is_some() {
                continue;
            }
            let namespace = member.namespace.as_deref().unwrap_or(group.namespace());
            ctx.finding(
                Code::BackendGroupMemberMissing,
                &group.object_ref(),
                &format!("spec.virtualservices[{i}]"),
                format!(
                    "virtual service `{namespace}/{}` is not in the source, so the Sidecars of \
                     the nodes that use this group do not list it; add it to the source or \
                     remove it from the group",
                    member.name
                ),
            );
        }
    }
}
