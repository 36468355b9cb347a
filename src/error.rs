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
    /// The plan file is invalid.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Plan(#[from] crate::plan::PlanInvalid),
    /// A source manifest is invalid.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Manifest(#[from] crate::inventory::ManifestError),
    /// The plan asks for something this version cannot do.
    #[error("{0}")]
    Unsupported(String),
}
