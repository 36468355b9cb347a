//! Reference documents generated from the code: the coverage table and the findings catalogue.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::findings::Code;
use crate::translate::coverage;

/// `docs/coverage.md`: what happens to every App Mesh field.
pub fn coverage() -> String {
    let table = coverage::table();
    let mut out = String::from(
        "# App Mesh v1beta2 → Istio: field coverage\n\n\
         Generated from `src/translate/*/coverage()` by `MESHPLAN_BLESS=1 cargo test --test coverage`; \
         a test fails when this file is stale, and another fails when a field of the App Mesh CRDs \
         has no line here.\n\n\
         - **exact**: carried over with the same behaviour.\n\
         - **approximated**: carried over; the finding explains the difference.\n\
         - **unsupported**: not carried over; the finding (severity error) says what to do.\n\
         - **dropped (bookkeeping)**: App Mesh bookkeeping with no meaning in Istio.\n\n\
         `[]` stands for every item of a list. Fields not listed are not App Mesh fields: meshplan \
         reports them as `MP005`.\n",
    );
    let mut totals: BTreeMap<&str, usize> = BTreeMap::new();
    for kind in &table {
        let _ = write!(
            out,
            "\n## {}\n\n| field | disposition | in Istio | finding |\n| --- | --- | --- | --- |\n",
            kind.kind
        );
        for field in &kind.fields {
            *totals.entry(field.disposition.label()).or_default() += 1;
            let code = field
                .disposition
                .code()
                .map_or(String::new(), |c| c.as_str().to_owned());
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | {code} |",
                field.path,
                field.disposition.label(),
                field.istio.replace('|', "\\|")
            );
        }
    }
    let _ = writeln!(out, "\n## Totals\n");
    for (label, count) in totals {
        let _ = writeln!(out, "- {label}: {count}");
    }
    out
}

/// One code's section: meaning, severity, what to do, and where it is shown.
pub fn finding(code: Code, examples: &[String]) -> String {
    let mut out = format!(
        "## {code}: {}\n\nSeverity: **{}**.\n\n",
        code.summary(),
        code.severity()
    );
    let fields: Vec<String> = coverage::table()
        .iter()
        .flat_map(|k| {
            k.fields
                .iter()
                .filter(|f| f.disposition.code() == Some(code))
                .map(move |f| format!("`{}` {}", k.kind, f.path))
        })
        .collect();
    if !fields.is_empty() {
        let shown = if fields.len() > 6 {
            format!("{} and {} more", fields[..6].join(", "), fields.len() - 6)
        } else {
            fields.join(", ")
        };
        let kind = match fields.len() {
            1 => "field",
            _ => "fields",
        };
        let _ = write!(out, "Raised by the {kind} {shown}.\n\n");
    }
    let _ = writeln!(out, "What to do: {}", code.action());
    if !examples.is_empty() {
        let _ = write!(
            out,
            "\nExample: {}.\n",
            examples
                .iter()
                .map(|e| format!("`tests/fixtures/translate/{e}/`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    out
}

/// `docs/findings.md`: every code, with the golden cases that show it.
pub fn findings_with(examples: &BTreeMap<Code, Vec<String>>) -> String {
    let mut out = String::from(
        "# Findings\n\n\
         Every finding meshplan reports has a stable code. `meshplan explain MPnnn` prints the \
         section of one code. Generated from `src/findings.rs` by `MESHPLAN_BLESS=1 cargo test \
         --test coverage`.\n\n\
         | area | codes |\n| --- | --- |\n\
         | input and scope | MP0xx |\n| mesh and egress | MP1xx |\n\
         | virtual services, routers, routes | MP2xx |\n| virtual nodes | MP3xx |\n\
         | virtual gateways and gateway routes | MP4xx |\n| backend groups | MP5xx |\n",
    );
    for code in Code::ALL {
        let _ = write!(
            out,
            "\n{}",
            finding(*code, examples.get(code).map_or(&[][..], Vec::as_slice))
        );
    }
    out
}
