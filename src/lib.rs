//! meshplan: plans and executes the migration of EKS workloads from AWS App Mesh to Istio.

mod error;
pub mod plan;

pub use error::Error;
pub mod appmesh;
pub mod cluster;
pub mod cronjob;
pub mod diff;
pub mod docs;
pub mod eks;
pub mod engine;
pub mod entry;
pub mod findings;
pub mod gates;
pub mod http;
pub mod inventory;
pub mod istio;
pub mod object;
pub mod pipeline;
pub mod ramp;
pub mod rehearse;
pub mod render;
pub mod report;
pub mod saved;
pub mod scope;
pub mod state;
pub mod steps;
pub mod strategy;
pub mod tight;
pub mod translate;
pub mod verify;
