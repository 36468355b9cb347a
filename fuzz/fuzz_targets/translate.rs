//! Bytes as manifests, loaded and translated: findings, never a panic.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use meshplan::inventory::Inventory;
use meshplan::translate::{self, Options};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut inventory = Inventory::default();
    if inventory.add_yaml(Path::new("fuzz.yaml"), text).is_err() {
        return;
    }
    let options = Options {
        cluster_domain: "cluster.local".to_owned(),
        ..Options::default()
    };
    let translation = translate::translate(&inventory, &options);
    for object in &translation.objects {
        drop(meshplan::diff::to_yaml(object));
    }
});
