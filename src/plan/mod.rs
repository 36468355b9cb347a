//! The plan file: model, parsing with source spans, semantic validation and JSON Schema.

mod model;
mod types;
mod validate;

use std::ops::Range;
use std::path::{Path, PathBuf};

use miette::{Diagnostic, NamedSource, SourceSpan};
use thiserror::Error;

pub use model::*;
pub use types::{Duration, IstioVersion, NamespaceName, Percent, check_dns1123_label};

/// The largest plan file read, in bytes; plans are a few hundred lines.
pub const MAX_PLAN_BYTES: u64 = 1024 * 1024;

/// One problem in a plan file, pointing at the offending text.
#[derive(Debug, Error, Diagnostic)]
#[error("{message}")]
pub struct PlanError {
    message: String,
    #[source_code]
    source_code: NamedSource<String>,
    #[label("{label}")]
    span: SourceSpan,
    label: String,
    #[help]
    help: Option<String>,
}

impl PlanError {
    /// The one-line message, without location.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// A plan file that could not be accepted, with every problem found.
#[derive(Debug, Error, Diagnostic)]
#[error("{path}: invalid plan ({count} {noun})", count = errors.len(), noun = if errors.len() == 1 { "error" } else { "errors" })]
pub struct PlanInvalid {
    /// The plan file as given on the command line.
    pub path: String,
    /// Each problem, in file order.
    #[related]
    pub errors: Vec<PlanError>,
}

/// A step of a path into the plan document, used to point errors at keys and values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seg<'a> {
    /// A table key.
    Key(&'a str),
    /// An array index.
    Index(usize),
}

/// A loaded, validated plan with the text it came from.
#[derive(Debug, Clone)]
pub struct PlanFile {
    /// Path of the plan file as given.
    pub path: PathBuf,
    /// The plan's name (the `name` key, or the file stem).
    pub name: String,
    /// The parsed plan.
    pub spec: PlanSpec,
    text: String,
}

impl PlanFile {
    /// Reads and validates a plan file.
    pub fn load(path: &Path) -> Result<PlanFile, crate::Error> {
        let io = |source| crate::Error::Io {
            path: path.to_owned(),
            source,
        };
        let size = std::fs::metadata(path).map_err(io)?.len();
        if size > MAX_PLAN_BYTES {
            return Err(crate::Error::PlanTooLarge {
                path: path.to_owned(),
                size,
            });
        }
        let text = std::fs::read_to_string(path).map_err(io)?;
        Ok(PlanFile::parse(path, text)?)
    }

    /// Parses and validates plan text; `path` names it in messages and anchors relative paths.
    pub fn parse(path: &Path, text: String) -> Result<PlanFile, PlanInvalid> {
        let spec: PlanSpec = match toml::from_str(&text) {
            Ok(spec) => spec,
            Err(err) => {
                let span = err.span().unwrap_or(0..0);
                let message = err.message().trim_end().to_owned();
                let help = parse_help(&message);
                let error = plan_error(path, &text, span, message, "here", help);
                return Err(PlanInvalid {
                    path: path.display().to_string(),
                    errors: vec![error],
                });
            }
        };
        let name = spec.name.clone().unwrap_or_else(|| {
            path.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "plan".to_owned())
        });
        let file = PlanFile {
            path: path.to_owned(),
            name,
            spec,
            text,
        };
        let problems = validate::check(&file.spec);
        if problems.is_empty() {
            Ok(file)
        } else {
            let errors = problems
                .into_iter()
                .map(|p| file.error_at(&p.path, p.target, p.message, p.help))
                .collect();
            Err(file.invalid(errors))
        }
    }

    /// The folder relative paths in the plan are resolved against.
    pub fn base_dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }

    /// The namespaces in scope, as strings.
    pub fn namespaces(&self) -> Vec<String> {
        self.spec
            .source
            .namespaces
            .iter()
            .map(|n| n.to_string())
            .collect()
    }

    /// True when the migration clones Secrets, so the source's Secrets must be read.
    pub fn clones_secrets(&self, strategy: StrategyKind) -> bool {
        strategy == StrategyKind::ParallelNamespace && self.spec.strategy.clone_secrets
    }

    /// The exact text of the plan file (its fingerprint is taken over this).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Wraps errors found in this plan.
    pub fn invalid(&self, errors: Vec<PlanError>) -> PlanInvalid {
        PlanInvalid {
            path: self.path.display().to_string(),
            errors,
        }
    }

    /// An error pointing at the key or value at `path` (or the nearest enclosing one that exists).
    pub fn error_at(
        &self,
        path: &[Seg<'_>],
        target: Target,
        message: String,
        help: Option<String>,
    ) -> PlanError {
        let span = locate(&self.text, path, target).unwrap_or(0..0);
        let label = match target {
            Target::Key => "this key",
            Target::Value => "this value",
        };
        plan_error(&self.path, &self.text, span, message, label, help)
    }
}

fn plan_error(
    path: &Path,
    text: &str,
    span: Range<usize>,
    message: String,
    label: &str,
    help: Option<String>,
) -> PlanError {
    PlanError {
        message,
        source_code: NamedSource::new(path.display().to_string(), text.to_owned())
            .with_language("toml"),
        span: span.into(),
        label: label.to_owned(),
        help,
    }
}

/// Whether an error points at a key or at its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The key itself (e.g. an unknown name).
    Key,
    /// The value (e.g. a sum that is off).
    Value,
}

/// Finds the byte range of a key or value in TOML text, falling back to the nearest parent.
fn locate(text: &str, path: &[Seg<'_>], target: Target) -> Option<Range<usize>> {
    let root = toml::de::DeTable::parse(text).ok()?;
    let mut best: Option<Range<usize>> = None;
    let mut table = Some(root.get_ref());
    let mut array: Option<&toml::de::DeArray<'_>> = None;
    for (i, seg) in path.iter().enumerate() {
        let last = i + 1 == path.len();
        let value = match (*seg, table, array) {
            (Seg::Key(key), Some(t), _) => {
                let (k, v) = t.get_key_value(key)?;
                best = Some(if last && target == Target::Key {
                    k.span()
                } else {
                    v.span()
                });
                v
            }
            (Seg::Index(index), _, Some(a)) => {
                let v = a.get(index)?;
                best = Some(v.span());
                v
            }
            _ => break,
        };
        table = value.get_ref().as_table();
        array = value.get_ref().as_array();
    }
    best
}

/// A hint for the parser's own messages, which already say what was expected.
fn parse_help(message: &str) -> Option<String> {
    if message.starts_with("unknown field") {
        Some("unknown keys are errors: check the spelling against `meshplan schema`".to_owned())
    } else if message.starts_with("missing field") {
        Some("add the key; `meshplan schema` lists every key and its type".to_owned())
    } else if message.starts_with("unknown variant") {
        Some("use one of the values listed".to_owned())
    } else {
        None
    }
}

/// The JSON Schema of the plan file, as committed in `schema/meshplan.schema.json`.
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(PlanSpec);
    let mut text = serde_json::to_string_pretty(&schema).expect("a schema serialises");
    text.push('\n');
    text
}
