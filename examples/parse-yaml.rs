//! The baseline of the plan's speed target: only parse YAML files, with the parser and options
//! `meshplan plan` reads manifests with, and the same allocator.
//!
//! `cargo run --release --example parse-yaml -- /tmp/mesh-10k/mesh.yaml`

use std::path::PathBuf;
use std::process::ExitCode;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let mut documents = 0;
    for file in std::env::args_os().skip(1).map(PathBuf::from) {
        let text = match std::fs::read_to_string(&file) {
            Ok(text) => text,
            Err(err) => {
                eprintln!("{}: {err}", file.display());
                return ExitCode::FAILURE;
            }
        };
        match meshplan::inventory::parse_documents(&file, &text) {
            Ok(parsed) => {
                documents += parsed.len();
                // As `plan` does: the process ends without freeing each value.
                std::mem::forget(parsed);
            }
            Err(err) => {
                eprintln!("{err}");
                return ExitCode::FAILURE;
            }
        }
    }
    println!("{documents} documents");
    ExitCode::SUCCESS
}
