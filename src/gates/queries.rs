//! The built-in PromQL templates and the `{{variable}}` templating shared with custom queries.
//!
//! Templating is pure text substitution, so a plan can be checked for unknown variables without a
//! Prometheus, and the exact query a gate sent can be shown in `meshplan status`.

/// Share of non-5xx responses received by the service on the Istio side.
pub const SUCCESS_RATE: &str = concat!(
    r#"sum(rate(istio_requests_total{reporter="destination",destination_workload_namespace="{{namespace}}","#,
    r#"destination_service_name="{{service}}",response_code!~"5.."}[{{window}}]))"#,
    r#" / sum(rate(istio_requests_total{reporter="destination",destination_workload_namespace="{{namespace}}","#,
    r#"destination_service_name="{{service}}"}[{{window}}]))"#,
);

/// 99th percentile of the request duration, in milliseconds, on the Istio side.
pub const LATENCY_P99: &str = concat!(
    r#"histogram_quantile(0.99, sum by (le) (rate(istio_request_duration_milliseconds_bucket{"#,
    r#"reporter="destination",destination_workload_namespace="{{namespace}}","#,
    r#"destination_service_name="{{service}}"}[{{window}}])))"#,
);

/// Share of non-5xx responses seen by the App Mesh Envoys of the source namespace.
///
/// Envoy counts responses per class in `upstream_rq_<N>xx`, which its Prometheus output names
/// `envoy_cluster_upstream_rq_xx{envoy_response_code_class="N"}`. `kubernetes_namespace` is the
/// label the common Prometheus pod scrape configuration adds from the pod's namespace.
pub const APPMESH_SUCCESS_RATE: &str = concat!(
    r#"sum(rate(envoy_cluster_upstream_rq_xx{kubernetes_namespace="{{source_namespace}}",envoy_response_code_class!="5"}[{{window}}]))"#,
    r#" / sum(rate(envoy_cluster_upstream_rq_xx{kubernetes_namespace="{{source_namespace}}"}[{{window}}]))"#,
);

/// The variables a template may use, as written between `{{` and `}}`.
pub const VARIABLES: [&str; 4] = ["namespace", "source_namespace", "service", "window"];

/// The values substituted into a template.
#[derive(Debug, Clone, Copy)]
pub struct Vars<'a> {
    /// The namespace of the new (Istio) side.
    pub namespace: &'a str,
    /// The namespace of the old (App Mesh) side.
    pub source_namespace: &'a str,
    /// The Kubernetes Service name of the workload under test.
    pub service: &'a str,
    /// The lookback window as a Prometheus duration, e.g. `1m` or `1m30s`.
    pub window: &'a str,
}

impl Vars<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        match name {
            "namespace" => Some(self.namespace),
            "source_namespace" => Some(self.source_namespace),
            "service" => Some(self.service),
            "window" => Some(self.window),
            _ => None,
        }
    }
}

/// A template that cannot be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// `{{name}}` is not one of [`VARIABLES`].
    #[error(
        "unknown template variable `{{{{{name}}}}}`; the valid ones are {}",
        valid_list()
    )]
    Unknown {
        /// The name between the braces.
        name: String,
    },
    /// A `{{` without its `}}`.
    #[error("`{{{{` at byte {offset} is not closed with `}}}}`")]
    Unclosed {
        /// Byte offset of the opening braces in the template.
        offset: usize,
    },
}

/// The valid variables, written as they appear in a template.
pub fn valid_list() -> String {
    VARIABLES
        .iter()
        .map(|v| format!("`{{{{{v}}}}}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One piece of a parsed template.
enum Piece<'t> {
    Text(&'t str),
    Var(&'t str),
}

/// Splits a template into text and variable names (trimmed, so `{{ window }}` works too).
fn pieces(template: &str) -> Result<Vec<Piece<'_>>, TemplateError> {
    let mut out = Vec::new();
    let mut rest = template;
    let mut offset = 0;
    while let Some(open) = rest.find("{{") {
        out.push(Piece::Text(&rest[..open]));
        let after = &rest[open + 2..];
        let close = after.find("}}").ok_or(TemplateError::Unclosed {
            offset: offset + open,
        })?;
        out.push(Piece::Var(after[..close].trim()));
        let consumed = open + 2 + close + 2;
        rest = &rest[consumed..];
        offset += consumed;
    }
    out.push(Piece::Text(rest));
    Ok(out)
}

/// Checks that every `{{variable}}` in a template is known, without rendering it.
pub fn check(template: &str) -> Result<(), TemplateError> {
    for piece in pieces(template)? {
        if let Piece::Var(name) = piece
            && !VARIABLES.contains(&name)
        {
            return Err(TemplateError::Unknown {
                name: name.to_owned(),
            });
        }
    }
    Ok(())
}

/// Substitutes the variables of a template.
///
/// Values are escaped for a double-quoted PromQL string, where templates put them, so that no
/// value can end the string and change the query.
pub fn render(template: &str, vars: &Vars<'_>) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(template.len() + 64);
    for piece in pieces(template)? {
        match piece {
            Piece::Text(text) => out.push_str(text),
            Piece::Var(name) => {
                let value = vars.get(name).ok_or_else(|| TemplateError::Unknown {
                    name: name.to_owned(),
                })?;
                for c in value.chars() {
                    if matches!(c, '"' | '\\') {
                        out.push('\\');
                    }
                    out.push(c);
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const VARS: Vars<'static> = Vars {
        namespace: "color-istio",
        source_namespace: "color",
        service: "color",
        window: "1m30s",
    };

    #[test]
    fn built_in_success_rate_renders_to_the_documented_query() {
        assert_eq!(
            render(SUCCESS_RATE, &VARS).unwrap(),
            r#"sum(rate(istio_requests_total{reporter="destination",destination_workload_namespace="color-istio",destination_service_name="color",response_code!~"5.."}[1m30s])) / sum(rate(istio_requests_total{reporter="destination",destination_workload_namespace="color-istio",destination_service_name="color"}[1m30s]))"#
        );
    }

    #[test]
    fn built_in_latency_renders_to_the_documented_query() {
        assert_eq!(
            render(LATENCY_P99, &VARS).unwrap(),
            r#"histogram_quantile(0.99, sum by (le) (rate(istio_request_duration_milliseconds_bucket{reporter="destination",destination_workload_namespace="color-istio",destination_service_name="color"}[1m30s])))"#
        );
    }

    #[test]
    fn built_in_appmesh_success_rate_uses_the_source_namespace() {
        assert_eq!(
            render(APPMESH_SUCCESS_RATE, &VARS).unwrap(),
            r#"sum(rate(envoy_cluster_upstream_rq_xx{kubernetes_namespace="color",envoy_response_code_class!="5"}[1m30s])) / sum(rate(envoy_cluster_upstream_rq_xx{kubernetes_namespace="color"}[1m30s]))"#
        );
    }

    #[test]
    fn every_variable_is_substituted_and_spaces_inside_braces_are_allowed() {
        let rendered = render(
            "{{namespace}} {{ source_namespace }} {{service}}[{{window}}]",
            &VARS,
        )
        .unwrap();
        assert_eq!(rendered, "color-istio color color[1m30s]");
    }

    #[test]
    fn unknown_variable_is_named_with_the_valid_ones() {
        let err = render("up{namespace=\"{{ns}}\"}", &VARS).unwrap_err();
        assert_eq!(
            err,
            TemplateError::Unknown {
                name: "ns".to_owned()
            }
        );
        assert_eq!(
            err.to_string(),
            "unknown template variable `{{ns}}`; the valid ones are `{{namespace}}`, \
             `{{source_namespace}}`, `{{service}}`, `{{window}}`"
        );
        assert_eq!(check("{{ns}}"), Err(err));
    }

    #[test]
    fn unclosed_braces_are_reported_with_their_offset() {
        let err = check("up{a=\"b\"} + {{window").unwrap_err();
        assert_eq!(err, TemplateError::Unclosed { offset: 12 });
        assert_eq!(err.to_string(), "`{{` at byte 12 is not closed with `}}`");
    }

    #[test]
    fn text_without_variables_is_unchanged() {
        let query = r#"sum(rate(up{job="x"}[5m]))"#;
        assert_eq!(render(query, &VARS).unwrap(), query);
        assert_eq!(check(query), Ok(()));
    }

    #[test]
    fn values_cannot_break_out_of_a_promql_string() {
        let vars = Vars {
            service: r#"a"} or vector(1) or up{x="\"#,
            ..VARS
        };
        assert_eq!(
            render(r#"up{s="{{service}}"}"#, &vars).unwrap(),
            r#"up{s="a\"} or vector(1) or up{x=\"\\"}"#
        );
    }
}
