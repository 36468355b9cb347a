//! `meshplan render`: the migration as manifests to commit for Argo CD or Flux, one folder per
//! stage in execution order.
//!
//! Pure: [`render`] turns a planned migration into file contents; [`write`] puts them on disk.
//! What manifests cannot express (deletions, restarts, Secret data) goes to the README as exact
//! `kubectl` commands or notes.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::diff;
use crate::object::ObjectRef;
use crate::pipeline::Planned;
use crate::plan::StrategyKind;
use crate::steps::{ChangeAction, StepGraph};

/// The file that marks a folder as written by `meshplan render` (and so safe to replace).
pub const MARKER: &str = ".meshplan-render";

/// The field manager `meshplan ramp` writes weights with.
const FIELD_MANAGER: &str = "meshplan";

/// Flavour of the rendered manifests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RenderFormat {
    /// Plain manifests and kustomizations.
    Plain,
    /// Adds `argocd.argoproj.io/sync-wave` per stage and an Application snippet.
    Argocd,
    /// Adds one Flux `Kustomization` per stage, each depending on the previous.
    Flux,
}

/// The rendered output: file paths relative to the output folder, and their contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// Relative path → content, sorted so output is stable.
    pub files: BTreeMap<String, String>,
    /// Stage folders in the order to merge them.
    pub stages: Vec<String>,
}

/// Why rendering could not be written.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum RenderError {
    /// The output folder holds files meshplan did not render.
    #[error("{0} is not empty and was not written by `meshplan render` (no {MARKER} file)")]
    #[diagnostic(help("choose an empty or new folder; render replaces only its own output"))]
    Foreign(PathBuf),
    /// A file could not be written or removed.
    #[error("cannot write {path}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// Which stage an object belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Slot {
    IstioConfig,
    Namespace,
    Workloads,
    Routing,
    Entry,
}

/// One stage folder.
struct Stage {
    dir: String,
    wave: u32,
    description: String,
    objects: Vec<(ChangeAction, Value)>,
}

/// A stage folder and the objects it holds: how each changes, which, and in which file.
type Listing = (String, Vec<(ChangeAction, ObjectRef, String)>);

/// Mesh-wide Istio configuration, applied first because routing relies on it.
const ISTIO_CONFIG_KINDS: &[&str] = &[
    "Telemetry",
    "PeerAuthentication",
    "ServiceEntry",
    "AuthorizationPolicy",
    "RequestAuthentication",
];

fn slot(
    created: &BTreeSet<String>,
    step_id: &str,
    action: ChangeAction,
    object: &ObjectRef,
) -> Slot {
    let in_created = object
        .namespace
        .as_ref()
        .is_some_and(|ns| created.contains(ns));
    match object.kind.as_str() {
        _ if step_id == "entry" => Slot::Entry,
        "Namespace" => Slot::Namespace,
        // Config in a namespace the migration creates must come after that namespace.
        kind if ISTIO_CONFIG_KINDS.contains(&kind) && !in_created => Slot::IstioConfig,
        "Deployment" if action == ChangeAction::Update => Slot::Namespace,
        _ if action == ChangeAction::Create && matches!(object.group(), "" | "apps") => {
            Slot::Workloads
        }
        _ => Slot::Routing,
    }
}

fn slot_stage(strategy: StrategyKind, slot: Slot) -> (&'static str, &'static str) {
    match (strategy, slot) {
        (StrategyKind::InPlace, Slot::IstioConfig) => (
            "00-istio-config",
            "Mesh-wide Istio configuration: telemetry, mTLS, external services.",
        ),
        (StrategyKind::InPlace, Slot::Routing | Slot::Workloads | Slot::Entry) => (
            "10-routing",
            "Istio routing (DestinationRules, VirtualServices, Sidecars) and the Services with the selectors Istio needs.",
        ),
        (StrategyKind::InPlace, Slot::Namespace) => (
            "20-namespace",
            "The namespaces relabelled for Istio injection, and the Deployments whose pod templates drop App Mesh settings.",
        ),
        (StrategyKind::ParallelNamespace, Slot::IstioConfig) => (
            "00-istio-config",
            "Mesh-wide Istio configuration outside the target namespace (telemetry).",
        ),
        (StrategyKind::ParallelNamespace, Slot::Namespace) => (
            "10-namespace",
            "The target namespace, labelled for Istio injection.",
        ),
        (StrategyKind::ParallelNamespace, Slot::Workloads) => (
            "20-workloads",
            "The workloads cloned into the target namespace, without App Mesh settings.",
        ),
        (StrategyKind::ParallelNamespace, Slot::Routing) => (
            "30-routing",
            "Istio routing and configuration in the target namespace.",
        ),
        (StrategyKind::ParallelNamespace, Slot::Entry) => (
            "40-entry",
            "The traffic entry in front of both sides, with 0 % on the new side.",
        ),
    }
}

fn wave_of(dir: &str) -> u32 {
    dir.split('-')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_default()
}

/// The file name of an object: `<kind>-<namespace>-<name>.yaml`, lowercase.
pub fn file_name(object: &ObjectRef) -> String {
    match &object.namespace {
        Some(ns) => format!("{}-{ns}-{}.yaml", object.kind, object.name),
        None => format!("{}-{}.yaml", object.kind, object.name),
    }
    .to_lowercase()
}

/// The resource name `kubectl` accepts for a kind: `<plural>.<group>`.
fn resource(object: &ObjectRef) -> String {
    let kind = object.kind.to_lowercase();
    let plural = if kind.ends_with('s') || kind.ends_with("sh") {
        format!("{kind}es")
    } else if let Some(stem) = kind.strip_suffix('y') {
        format!("{stem}ies")
    } else {
        format!("{kind}s")
    };
    match object.group() {
        "" => plural,
        group => format!("{plural}.{group}"),
    }
}

fn namespace_flag(object: &ObjectRef) -> String {
    object
        .namespace
        .as_ref()
        .map(|ns| format!(" -n {ns}"))
        .unwrap_or_default()
}

fn is_secret(object: &ObjectRef) -> bool {
    object.kind == "Secret" && object.api_version == "v1"
}

fn yaml(value: &Value) -> String {
    let mut text = serde_saphyr::to_string(value).expect("JSON values serialise to YAML");
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text
}

/// The object as committed: normalised, with the stage's sync wave for Argo CD.
fn manifest(object: &Value, format: RenderFormat, wave: u32) -> Value {
    let mut value = diff::normalise(object);
    if format == RenderFormat::Argocd {
        value["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"] =
            Value::String(wave.to_string());
    }
    // Sorted again so the added annotation lands where a re-render puts it.
    diff::normalise(&value)
}

fn kustomization(files: &[String]) -> String {
    yaml(&json!({
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": files,
    }))
}

/// Renders the migration as stage folders, kustomizations and a README.
pub fn render(planned: &Planned, format: RenderFormat) -> Rendered {
    let graph = &planned.graph;
    let strategy = graph.strategy;
    let created = graph.created_namespaces();
    let mut by_slot: BTreeMap<Slot, Vec<(ChangeAction, Value)>> = BTreeMap::new();
    let mut secrets = Vec::new();
    let mut deletions = Vec::new();
    let mut restarts = Vec::new();
    for step in &graph.steps {
        for change in &step.changes {
            match (change.action, &change.after) {
                (ChangeAction::Delete, _) => deletions.push(change.object.clone()),
                (ChangeAction::Restart, _) => restarts.push(change.object.clone()),
                _ if is_secret(&change.object) => secrets.push(change.object.clone()),
                (action, Some(after)) => by_slot
                    .entry(slot(&created, &step.id, action, &change.object))
                    .or_default()
                    .push((action, after.clone())),
                (_, None) => {}
            }
        }
    }
    let mut stages: Vec<Stage> = Vec::new();
    for (slot, objects) in by_slot {
        let (dir, description) = slot_stage(strategy, slot);
        match stages.iter_mut().find(|s| s.dir == dir) {
            Some(stage) => stage.objects.extend(objects),
            None => stages.push(Stage {
                dir: dir.to_owned(),
                wave: wave_of(dir),
                description: description.to_owned(),
                objects,
            }),
        }
    }
    stages.sort_by(|a, b| a.dir.cmp(&b.dir));
    if let Some(entry) = &graph.entry {
        let ramp = planned.plan.spec.ramp.clone().unwrap_or_default();
        for (i, weight) in ramp.steps.iter().enumerate() {
            let weight = weight.get();
            let dir = format!("{}-ramp-{weight:03}", 50 + i);
            stages.push(Stage {
                wave: wave_of(&dir),
                dir,
                description: format!(
                    "The entry {} with {weight} % of traffic on the new side.",
                    entry.object_ref()
                ),
                objects: entry
                    .objects(weight)
                    .into_iter()
                    .map(|o| (ChangeAction::Update, o))
                    .collect(),
            });
        }
    }
    if strategy == StrategyKind::ParallelNamespace && planned.plan.spec.cleanup.delete_appmesh {
        // The parallel graph leaves App Mesh in place until the ramp completes.
        deletions.extend(planned.translation.appmesh.iter().cloned());
    }
    let last = stages.last().map(|s| s.wave).unwrap_or_default();
    let cleanup_wave = (last / 10 + 1) * 10;
    stages.push(Stage {
        dir: format!("{cleanup_wave}-cleanup"),
        wave: cleanup_wave,
        description: "Nothing to apply: what remains is removal, done with the commands below."
            .to_owned(),
        objects: Vec::new(),
    });

    let mut files = BTreeMap::new();
    files.insert(
        MARKER.to_owned(),
        "Written by `meshplan render`; the whole folder is replaced on every render.\n".to_owned(),
    );
    let mut listing: Vec<Listing> = Vec::new();
    for stage in &stages {
        let mut names = BTreeMap::new();
        for (action, object) in &stage.objects {
            let reference = ObjectRef::of(object);
            names.insert(
                file_name(&reference),
                (*action, reference, manifest(object, format, stage.wave)),
            );
        }
        let list: Vec<String> = names.keys().cloned().collect();
        files.insert(
            format!("{}/kustomization.yaml", stage.dir),
            kustomization(&list),
        );
        let mut shown = Vec::new();
        for (name, (action, reference, object)) in names {
            files.insert(format!("{}/{name}", stage.dir), yaml(&object));
            shown.push((action, reference, name));
        }
        listing.push((stage.dir.clone(), shown));
    }
    match format {
        RenderFormat::Plain => {}
        // One Application over the folder then applies every stage, ordered by sync wave; the
        // ramp folders hold the entry too, so they stay out (Git-driven ramps swap them in).
        RenderFormat::Argocd => {
            let base: Vec<String> = stages
                .iter()
                .filter(|s| !s.dir.contains("-ramp-"))
                .map(|s| s.dir.clone())
                .collect();
            files.insert("kustomization.yaml".to_owned(), kustomization(&base));
        }
        RenderFormat::Flux => flux(&mut files, graph, &stages),
    }
    let mut readme = readme(planned, &stages, &listing, format);
    commands(&mut readme, &stages, &deletions, &restarts, &secrets);
    match format {
        RenderFormat::Plain => {}
        RenderFormat::Argocd => argocd_notes(&mut readme, graph),
        RenderFormat::Flux => flux_notes(&mut readme, graph),
    }
    files.insert("README.md".to_owned(), readme);
    Rendered {
        files,
        stages: stages.into_iter().map(|s| s.dir).collect(),
    }
}

fn readme(
    planned: &Planned,
    stages: &[Stage],
    listing: &[Listing],
    format: RenderFormat,
) -> String {
    let graph = &planned.graph;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Migration `{}` ({})\n\nRendered by `meshplan render --format {}` from {}. Do not edit by \
         hand: rendering again replaces this folder.\n",
        graph.plan,
        graph.strategy.as_str(),
        match format {
            RenderFormat::Plain => "plain",
            RenderFormat::Argocd => "argocd",
            RenderFormat::Flux => "flux",
        },
        planned.source
    );
    let _ = writeln!(
        out,
        "## Stages\n\nMerge (or sync) the folders one at a time, in this order, and wait until each \
         is healthy before the next. Each folder builds with `kubectl kustomize <folder>`.\n"
    );
    let _ = writeln!(out, "| Order | Folder | Objects | What it changes |");
    let _ = writeln!(out, "|---|---|---|---|");
    for (i, (stage, (_, objects))) in stages.iter().zip(listing).enumerate() {
        let _ = writeln!(
            out,
            "| {} | `{}/` | {} | {} |",
            i + 1,
            stage.dir,
            objects.len(),
            stage.description
        );
    }
    out.push('\n');
    for (dir, objects) in listing {
        if objects.is_empty() {
            continue;
        }
        let _ = writeln!(out, "### `{dir}/`\n");
        for (action, object, name) in objects {
            let verb = match action {
                ChangeAction::Create => "creates",
                _ => "sets",
            };
            let _ = writeln!(out, "- {verb} {object} (`{name}`)");
        }
        out.push('\n');
    }
    out
}

fn commands(
    out: &mut String,
    stages: &[Stage],
    deletions: &[ObjectRef],
    restarts: &[ObjectRef],
    secrets: &[ObjectRef],
) {
    let cleanup = stages.last().map(|s| s.dir.as_str()).unwrap_or_default();
    if !restarts.is_empty() {
        let after = stages
            .iter()
            .rev()
            .find(|s| s.objects.iter().any(|(_, o)| o["kind"] == "Namespace"))
            .map(|s| s.dir.as_str())
            .unwrap_or(cleanup);
        let _ = writeln!(
            out,
            "## Restarts\n\nManifests cannot restart pods. Once `{after}/` is synced, restart the \
             Deployments so their pods get the Istio sidecar:\n\n```sh"
        );
        for object in restarts {
            let _ = writeln!(
                out,
                "kubectl rollout restart deployment/{}{}",
                object.name,
                namespace_flag(object)
            );
        }
        let _ = writeln!(out, "```\n");
    }
    let _ = writeln!(
        out,
        "## Deletions (`{cleanup}/`)\n\nA manifest cannot delete an object, so `{cleanup}/` applies \
         nothing. When every earlier stage is healthy, remove what App Mesh leaves behind:\n"
    );
    if deletions.is_empty() {
        let _ = writeln!(out, "Nothing to delete.\n");
    } else {
        let _ = writeln!(out, "```sh");
        for object in deletions {
            let _ = writeln!(
                out,
                "kubectl delete {} {}{}",
                resource(object),
                object.name,
                namespace_flag(object)
            );
        }
        let _ = writeln!(out, "```\n");
    }
    if !secrets.is_empty() {
        let _ = writeln!(
            out,
            "## Secrets\n\nSecrets are never rendered: their data does not belong in Git. Copy them \
             into place with your secret manager (or `meshplan apply`, which copies them without \
             showing the data):\n"
        );
        for object in secrets {
            let _ = writeln!(out, "- {object}");
        }
        out.push('\n');
    }
}

fn entry_pointer(graph: &StepGraph) -> Option<(ObjectRef, &'static str)> {
    let entry = graph.entry.as_ref()?;
    let pointer = match entry.kind {
        crate::plan::EntryKind::IstioGateway => "/spec/http/0/route",
        crate::plan::EntryKind::GatewayApi => "/spec/rules/0/backendRefs",
    };
    Some((entry.object_ref(), pointer))
}

fn argocd_notes(out: &mut String, graph: &StepGraph) {
    let _ = writeln!(
        out,
        "## Argo CD\n\nEvery object carries `argocd.argoproj.io/sync-wave` set to its folder's \
         number, and `kustomization.yaml` at the top lists every stage but the ramp folders, so \
         one Application over this folder applies the stages in order, each wave healthy before \
         the next.\n"
    );
    let Some((entry, pointer)) = entry_pointer(graph) else {
        return;
    };
    let group = entry.group().to_owned();
    let application = json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": graph.plan, "namespace": "argocd"},
        "spec": {
            "project": "default",
            "source": {"repoURL": "<your repository>", "path": "<this folder>", "targetRevision": "HEAD"},
            "destination": {"server": "https://kubernetes.default.svc"},
            "ignoreDifferences": [{
                "group": group,
                "kind": entry.kind,
                "name": entry.name,
                "namespace": entry.namespace,
                "jsonPointers": [pointer],
                "managedFieldsManagers": [FIELD_MANAGER],
            }],
            "syncPolicy": {"syncOptions": ["RespectIgnoreDifferences=true"]},
        },
    });
    let _ = writeln!(
        out,
        "### The entry and the ramp\n\n`meshplan ramp` moves the weights of {entry} (`{pointer}`) \
         with field manager `{FIELD_MANAGER}`. Either let Git drive the ramp (in the top \
         `kustomization.yaml`, replace the entry folder by one ramp folder at a time, and do not \
         run `meshplan ramp`), or let `meshplan ramp` drive it: \
         then Argo CD must ignore the weights, or each sync puts them back. Ignore them in the \
         Application (`RespectIgnoreDifferences` keeps a sync from reverting them too):\n\n\
         ```yaml\n{}```\n\n`argocd.argoproj.io/compare-options: IgnoreExtraneous` on the entry does not \
         help here: it is for objects missing from Git, not for changed fields.\n",
        yaml(&application)
    );
}

fn flux_name(graph: &StepGraph, dir: &str) -> String {
    format!("{}-{dir}", graph.plan)
}

fn flux(files: &mut BTreeMap<String, String>, graph: &StepGraph, stages: &[Stage]) {
    let entry = entry_pointer(graph);
    let mut names = Vec::new();
    let mut previous: Option<&str> = None;
    for stage in stages {
        let mut spec = json!({
            "interval": "10m",
            "path": format!("./{}", stage.dir),
            "prune": false,
            "wait": true,
            "sourceRef": {"kind": "GitRepository", "name": graph.plan},
        });
        if let Some(previous) = previous {
            spec["dependsOn"] = json!([{"name": flux_name(graph, previous)}]);
        }
        if let Some((object, _)) = &entry {
            if stage.dir.contains("-ramp-") {
                // Ramp stages are alternatives: resume one at a time when Git drives the ramp.
                spec["suspend"] = json!(true);
            } else if stage.dir.ends_with("-entry") {
                // Created once, then left alone so the weights `meshplan ramp` writes stay.
                spec["patches"] = json!([{
                    "target": {"kind": object.kind, "name": object.name, "namespace": object.namespace},
                    "patch": yaml(&json!({
                        "apiVersion": object.api_version,
                        "kind": object.kind,
                        "metadata": {
                            "name": object.name,
                            "namespace": object.namespace,
                            "annotations": {"kustomize.toolkit.fluxcd.io/ssa": "IfNotPresent"},
                        },
                    })),
                }]);
            }
        }
        let kustomization = json!({
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
            "kind": "Kustomization",
            "metadata": {"name": flux_name(graph, &stage.dir), "namespace": "flux-system"},
            "spec": spec,
        });
        let name = format!("{}.yaml", stage.dir);
        files.insert(format!("flux/{name}"), yaml(&kustomization));
        names.push(name);
        previous = Some(&stage.dir);
    }
    files.insert("flux/kustomization.yaml".to_owned(), kustomization(&names));
}

fn flux_notes(out: &mut String, graph: &StepGraph) {
    let _ = writeln!(
        out,
        "## Flux\n\n`flux/` holds one `Kustomization` (kustomize.toolkit.fluxcd.io/v1) per stage, \
         each `dependsOn` the previous one, reading GitRepository `{}`. Their `spec.path` is \
         relative to the repository root: if this folder is not the root, prefix it. Apply \
         `flux/` once; Flux then applies the stages in order.\n",
        graph.plan
    );
    if let Some((entry, pointer)) = entry_pointer(graph) {
        let _ = writeln!(
            out,
            "### The entry and the ramp\n\nFlux applies with server-side apply and corrects \
             drift on the fields it manages, so it would revert the weights `meshplan ramp` \
             writes to {entry} (`{pointer}`, field manager `{FIELD_MANAGER}`). The entry \
             stage's Kustomization therefore patches the entry with \
             `kustomize.toolkit.fluxcd.io/ssa: IfNotPresent`: Flux creates it at 0 % and never \
             overwrites it, leaving the weights to `meshplan ramp`. The `ramp` stages are \
             suspended: to let Git drive the ramp instead of `meshplan ramp`, resume them one at \
             a time (`flux resume kustomization <name> -n flux-system`) and suspend the previous \
             one.\n"
        );
    }
}

/// Writes the rendered files into `dir`, replacing an earlier render there fully; refuses a
/// non-empty folder it did not render.
pub fn write(rendered: &Rendered, dir: &Path) -> Result<(), RenderError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| RenderError::Io { path, source }
    };
    match std::fs::read_dir(dir) {
        Ok(entries) => {
            let entries: Vec<_> = entries.collect::<Result<_, _>>().map_err(io(dir))?;
            if !entries.is_empty() && !dir.join(MARKER).is_file() {
                return Err(RenderError::Foreign(dir.to_owned()));
            }
            for entry in entries {
                let path = entry.path();
                let removed = if entry.file_type().map_err(io(&path))?.is_dir() {
                    std::fs::remove_dir_all(&path)
                } else {
                    std::fs::remove_file(&path)
                };
                removed.map_err(io(&path))?;
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir).map_err(io(dir))?;
        }
        Err(e) => return Err(io(dir)(e)),
    }
    // The marker first, so an interrupted write still leaves a folder render may replace.
    let mut ordered: Vec<(&String, &String)> = rendered.files.iter().collect();
    ordered.sort_by_key(|(name, _)| name.as_str() != MARKER);
    let mut made = BTreeSet::new();
    for (name, content) in ordered {
        let path = dir.join(name);
        if let Some(parent) = path.parent()
            && made.insert(parent.to_owned())
        {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        std::fs::write(&path, content).map_err(io(&path))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_and_resource_names_follow_kubectl() {
        let node = ObjectRef::new("appmesh.k8s.aws/v1beta2", "VirtualNode", Some("ns"), "Red");
        assert_eq!(file_name(&node), "virtualnode-ns-red.yaml");
        assert_eq!(resource(&node), "virtualnodes.appmesh.k8s.aws");
        let mesh = ObjectRef::new("appmesh.k8s.aws/v1beta2", "Mesh", None, "m");
        assert_eq!(file_name(&mesh), "mesh-m.yaml");
        assert_eq!(resource(&mesh), "meshes.appmesh.k8s.aws");
        let policy = ObjectRef::new("v1", "Policy", None, "p");
        assert_eq!(resource(&policy), "policies");
        assert_eq!(namespace_flag(&node), " -n ns");
    }

    #[test]
    fn waves_come_from_folder_numbers() {
        assert_eq!(wave_of("51-ramp-050"), 51);
        assert_eq!(wave_of("00-istio-config"), 0);
    }
}
