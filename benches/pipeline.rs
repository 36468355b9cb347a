//! Parse, translate and diff on generated meshes (`benches/support/mesh.rs`), at two sizes so
//! the growth is visible: `cargo bench --bench pipeline`.

use std::hint::black_box;
use std::path::Path;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use meshplan::inventory::Inventory;
use meshplan::translate::{self, Options};

#[path = "support/mesh.rs"]
mod mesh;

/// The meshes measured, each with its label (objects and namespaces).
fn sizes() -> Vec<(String, usize, mesh::Mesh)> {
    [83, 830]
        .into_iter()
        .map(|services| {
            let mesh = mesh::generate(&mesh::Size {
                services,
                versions: 3,
                routes: 3,
                per_namespace: 50,
            });
            let label = format!("{}-objects-{}-namespaces", mesh.objects, mesh.namespaces);
            (label, mesh.objects, mesh)
        })
        .collect()
}

fn inventory(yaml: &str) -> Inventory {
    let mut inventory = Inventory::default();
    inventory
        .add_yaml(Path::new("mesh.yaml"), yaml)
        .expect("generated meshes parse");
    inventory
}

fn pipeline(c: &mut Criterion) {
    let sizes = sizes();
    let mut group = c.benchmark_group("pipeline");
    group.sample_size(10);
    for (label, objects, mesh) in &sizes {
        group.throughput(Throughput::Elements(*objects as u64));
        group.bench_with_input(BenchmarkId::new("parse", label), &mesh.yaml, |b, yaml| {
            b.iter(|| inventory(black_box(yaml)))
        });
        let parsed = inventory(&mesh.yaml);
        let options = Options::default();
        group.bench_with_input(BenchmarkId::new("translate", label), &parsed, |b, inv| {
            b.iter(|| translate::translate(black_box(inv), &options))
        });
        let translation = translate::translate(&parsed, &options);
        group.bench_with_input(
            BenchmarkId::new("diff", label),
            &translation,
            |b, translation| {
                b.iter(|| {
                    let mut bytes = 0;
                    for change in translation.services.iter().chain(&translation.workloads) {
                        bytes += meshplan::diff::unified(Some(&change.before), Some(&change.after))
                            .len();
                    }
                    for object in &translation.objects {
                        bytes += meshplan::diff::unified(None, Some(object)).len();
                    }
                    black_box(bytes)
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, pipeline);
criterion_main!(benches);
