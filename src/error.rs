//! The library's one error type.

use std::path::PathBuf;

use miette::Diagnostic;
use thiserror::Error;

/// Everything that can go wrong in meshplan's library.
#[derive(Debug, Error, Diagnostic)]
pub enum Error {
    /// A file could not be read or written.
    #[error("cannot read {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A plan file far larger than any plan.
    #[error("{path}: {size} bytes is too large for a plan file (at most {} KiB)", crate::plan::MAX_PLAN_BYTES >> 10)]
    #[diagnostic(help("a plan names its manifests in `source.manifests`; it does not hold them"))]
    PlanTooLarge {
        /// The file.
        path: PathBuf,
        /// Its size in bytes.
        size: u64,
    },
    /// The plan file is invalid.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Plan(#[from] crate::plan::PlanInvalid),
    /// A source manifest is invalid.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Manifest(#[from] crate::inventory::ManifestError),
    /// Talking to the cluster failed.
    #[error(transparent)]
    Cluster(#[from] crate::cluster::ClusterError),
    /// The EKS add-on or EKS cluster discovery failed.
    #[error(transparent)]
    Eks(#[from] crate::eks::EksError),
    /// A run failed or was refused.
    #[error(transparent)]
    Engine(#[from] crate::engine::EngineError),
    /// The journal could not be read or written.
    #[error(transparent)]
    State(#[from] crate::state::StateError),
    /// The lock could not be taken or cleared.
    #[error(transparent)]
    Lock(#[from] crate::state::LockError),
    /// A health gate could not be evaluated.
    #[error(transparent)]
    Gate(#[from] crate::gates::GateError),
    /// A ramp tick could not be carried out.
    #[error(transparent)]
    Ramp(#[from] crate::ramp::tick::RampError),
    /// A saved plan could not be used.
    #[error(transparent)]
    Saved(#[from] crate::saved::SavedError),
    /// Rendered manifests could not be written.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Render(#[from] crate::render::RenderError),
    /// The traffic split could not be checked.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Verify(#[from] crate::verify::VerifyError),
    /// The rehearsal cluster could not be set up.
    #[error("rehearsal: {0}")]
    Rehearsal(String),
    /// The run needs a confirmation it could not get.
    #[error("{0}")]
    NotConfirmed(String),
    /// The plan asks for something this version cannot do.
    #[error("{0}")]
    Unsupported(String),
}
