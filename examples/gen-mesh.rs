//! Writes a realistic App Mesh state of any size, for benchmarks (see `benches/support/mesh.rs`
//! for what it contains).
//!
//! ```sh
//! cargo run --release --example gen-mesh -- --services 830 --versions 3 --routes 3 --out /tmp/mesh-10k
//! cargo run --release -- plan /tmp/mesh-10k/plan.toml
//! ```
//! `--out DIR` writes `DIR/mesh.yaml` and a plan `DIR/plan.toml` migrating every namespace of it;
//! without it the YAML goes to stdout. Prints the number of objects on stderr. Deterministic: the
//! same flags give the same bytes.

use std::io::Write as _;

#[path = "../benches/support/mesh.rs"]
mod mesh;

struct Args {
    out: Option<std::path::PathBuf>,
    size: mesh::Size,
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        out: None,
        size: mesh::Size {
            services: 100,
            versions: 3,
            routes: 2,
            per_namespace: 50,
        },
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        if flag == "--out" {
            args.out = Some(value.into());
            continue;
        }
        let value = value.parse::<usize>().map_err(|e| format!("{flag}: {e}"))?;
        match flag.as_str() {
            "--services" => args.size.services = value,
            "--versions" => args.size.versions = value.max(1),
            "--routes" => args.size.routes = value.max(1),
            "--per-namespace" => args.size.per_namespace = value.max(1),
            other => {
                return Err(format!(
                    "unknown flag {other}; use --services N --versions K --routes R [--per-namespace M] [--out DIR]"
                ));
            }
        }
    }
    Ok(args)
}

fn main() {
    let args = match parse() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("gen-mesh: {e}");
            std::process::exit(2);
        }
    };
    let mesh = mesh::generate(&args.size);
    let written = match &args.out {
        Some(dir) => {
            let names: Vec<String> = (0..mesh.namespaces)
                .map(|n| format!("\"team-{n:03}\""))
                .collect();
            let plan = format!(
                "# A generated mesh of {} objects (examples/gen-mesh.rs).\n[source]\nmanifests = [\"mesh.yaml\"]\nmesh = \"bench\"\nnamespaces = [{}]\n\n[istio]\ninstall = \"existing\"\nversion = \"1.27\"\n",
                mesh.objects,
                names.join(", ")
            );
            std::fs::create_dir_all(dir)
                .and_then(|()| std::fs::write(dir.join("mesh.yaml"), &mesh.yaml))
                .and_then(|()| std::fs::write(dir.join("plan.toml"), plan))
        }
        None => std::io::stdout().lock().write_all(mesh.yaml.as_bytes()),
    };
    if let Err(e) = written {
        eprintln!("gen-mesh: {e}");
        std::process::exit(1);
    }
    eprintln!(
        "gen-mesh: {} objects in {} namespace(s), {} bytes",
        mesh.objects,
        mesh.namespaces,
        mesh.yaml.len()
    );
}
