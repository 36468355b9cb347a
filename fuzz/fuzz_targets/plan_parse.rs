//! Bytes as a plan file: parsing and validation return a plan or errors, never panic.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use meshplan::plan::PlanFile;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match PlanFile::parse(Path::new("fuzz/plan.toml"), text.to_owned()) {
        // What the offline pipeline derives from a valid plan must not panic either.
        Ok(plan) => drop(meshplan::pipeline::options(&plan)),
        // Rendering the errors walks their spans over the text.
        Err(invalid) => drop(meshplan::report::diagnostic(&invalid, false)),
    }
});
