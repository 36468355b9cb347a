//! Bytes as a manifest file: loading into an inventory returns objects or an error, never panics.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use meshplan::inventory::Inventory;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut inventory = Inventory::default();
    if let Err(error) = inventory.add_yaml(Path::new("fuzz.yaml"), text) {
        drop(meshplan::report::diagnostic(&error, false));
    }
});
