//! Saved plans: `plan --out FILE` records the exact step graph and a fingerprint of every object
//! it read; `apply FILE` executes exactly that graph, or refuses when the cluster has changed.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::diff::normalise;
use crate::inventory::Inventory;
use crate::object::ObjectRef;
use crate::steps::StepGraph;

/// Marks a saved plan file.
const FORMAT: &str = "meshplan-saved-plan/v1";

/// A plan as it was shown, to be applied exactly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedPlan {
    /// Always [`FORMAT`].
    pub format: String,
    /// The plan file's path when it was planned.
    pub plan_path: String,
    /// The plan file's text.
    pub plan_text: String,
    /// The steps.
    pub graph: StepGraph,
    /// Fingerprint of every object read, by `Kind namespace/name`.
    pub objects: BTreeMap<String, String>,
}

/// Errors reading a saved plan.
#[derive(Debug, thiserror::Error)]
pub enum SavedError {
    /// The file is not a saved plan.
    #[error(
        "{path} is not a saved plan ({message}); write one with `meshplan plan PLAN --out FILE`"
    )]
    NotSaved {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The cluster changed since the plan was saved.
    #[error("saved plan is stale: the cluster changed since it was planned: {0}; plan again")]
    Stale(String),
}

/// Fingerprints of the objects of an inventory: what `apply` compares against.
pub fn fingerprints(inventory: &Inventory) -> BTreeMap<String, String> {
    let mut raws: Vec<&Value> = Vec::new();
    raws.extend(inventory.namespaces.iter().map(|i| &*i.raw));
    raws.extend(inventory.services.iter().map(|i| &*i.raw));
    raws.extend(inventory.deployments.iter().map(|i| &*i.raw));
    raws.extend(inventory.meshes.iter().map(|i| &*i.raw));
    raws.extend(inventory.virtual_nodes.iter().map(|i| &*i.raw));
    raws.extend(inventory.virtual_services.iter().map(|i| &*i.raw));
    raws.extend(inventory.virtual_routers.iter().map(|i| &*i.raw));
    raws.extend(inventory.virtual_gateways.iter().map(|i| &*i.raw));
    raws.extend(inventory.gateway_routes.iter().map(|i| &*i.raw));
    raws.extend(inventory.backend_groups.iter().map(|i| &*i.raw));
    raws.into_iter()
        .map(|raw| {
            let text = serde_json::to_string(&normalise(raw)).expect("objects serialise");
            (
                ObjectRef::of(raw).to_string(),
                crate::state::fingerprint(&text),
            )
        })
        .collect()
}

impl SavedPlan {
    /// A saved plan of `graph`, read from `inventory`.
    pub fn new(
        plan_path: &Path,
        plan_text: &str,
        graph: &StepGraph,
        inventory: &Inventory,
    ) -> Self {
        SavedPlan {
            format: FORMAT.to_owned(),
            plan_path: plan_path.display().to_string(),
            plan_text: plan_text.to_owned(),
            graph: graph.clone(),
            objects: fingerprints(inventory),
        }
    }

    /// Reads a saved plan; `None` when the file is a plan file (TOML) rather than a saved plan.
    pub fn read(path: &Path, text: &str) -> Result<Option<SavedPlan>, SavedError> {
        if !text.trim_start().starts_with('{') {
            return Ok(None);
        }
        let saved: SavedPlan = serde_json::from_str(text).map_err(|e| SavedError::NotSaved {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        if saved.format != FORMAT {
            return Err(SavedError::NotSaved {
                path: path.display().to_string(),
                message: format!("format `{}`, expected `{FORMAT}`", saved.format),
            });
        }
        Ok(Some(saved))
    }

    /// Refuses when the objects read now differ from those the plan was made from.
    pub fn check_fresh(&self, inventory: &Inventory) -> Result<(), SavedError> {
        let now = fingerprints(inventory);
        let mut changes = Vec::new();
        for (object, print) in &self.objects {
            match now.get(object) {
                None => changes.push(format!("{object} was deleted")),
                Some(p) if p != print => changes.push(format!("{object} changed")),
                Some(_) => {}
            }
        }
        for object in now.keys().filter(|o| !self.objects.contains_key(*o)) {
            changes.push(format!("{object} was created"));
        }
        if changes.is_empty() {
            Ok(())
        } else {
            Err(SavedError::Stale(changes.join(", ")))
        }
    }
}
