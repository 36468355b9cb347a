//! `BackendGroup`: a named set of virtual services, expanded into the Sidecar hosts of the nodes
//! that use it.

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

pub(super) fn translate(ctx: &mut Ctx<'_>) {
    for group in &ctx.inv.backend_groups {
        ctx.admit("BackendGroup", group);
    }
}
