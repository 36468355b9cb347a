//! Every invalid plan under `tests/fixtures/plans/invalid/` fails with a message that points at
//! the offending line; the rendered messages are pinned as snapshots.

use std::path::Path;

use meshplan::pipeline;
use meshplan::plan::PlanFile;
use meshplan::report;

fn rendered_error(path: &Path) -> String {
    let relative = path.strip_prefix(env!("CARGO_MANIFEST_DIR")).unwrap();
    let error = match PlanFile::load(relative) {
        Err(error) => error,
        Ok(plan) => match pipeline::plan_offline(plan, None) {
            Err(error) => error,
            Ok(_) => panic!("{} was accepted", relative.display()),
        },
    };
    report::diagnostic(&error, false)
}

#[test]
fn invalid_plans_are_rejected_with_their_location() {
    insta::glob!("fixtures/plans/invalid/*.toml", |path| {
        let rendered = rendered_error(path);
        let name = path.file_name().unwrap().to_string_lossy();
        // Every message names the file and a line:column inside it.
        assert!(
            rendered.contains(&format!("{name}:")),
            "{name}: no location in\n{rendered}"
        );
        insta::assert_snapshot!(rendered);
    });
}
