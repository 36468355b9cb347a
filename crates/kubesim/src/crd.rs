//! CustomResourceDefinitions: registration checks and status, and the custom resource pipeline
//! (pruning, defaulting and `openAPIV3Schema` validation).

use serde_json::{Map, Value, json};

use crate::error::{ApiError, ApiResult, Cause};
use crate::meta;
use crate::resources::{Registry, ResourceInfo};
use crate::validate::FieldValidation;

/// Validates a CRD and fills in the status a real apiserver publishes (names accepted, established).
pub fn prepare(registry: &Registry, crd: &mut Value) -> ApiResult<()> {
    let name = meta::meta_str(crd, "name").to_string();
    let spec = &crd["spec"];
    let group = spec["group"].as_str().unwrap_or_default();
    let plural = spec["names"]["plural"].as_str().unwrap_or_default();
    let kind = spec["names"]["kind"].as_str().unwrap_or_default();
    let mut causes = Vec::new();
    if name != format!("{plural}.{group}") {
        causes.push(Cause::new(
            "FieldValueInvalid",
            format!("Invalid value: \"{name}\": must be spec.names.plural+\".\"+spec.group"),
            "metadata.name",
        ));
    }
    let versions = spec["versions"].as_array().cloned().unwrap_or_default();
    let storage: Vec<&Value> = versions
        .iter()
        .filter(|v| v["storage"].as_bool() == Some(true))
        .collect();
    if storage.len() != 1 {
        causes.push(Cause::new(
            "FieldValueInvalid",
            format!(
                "Invalid value: {:?}: must have exactly one version marked as storage version",
                versions
                    .iter()
                    .filter_map(|v| v["name"].as_str())
                    .collect::<Vec<_>>()
            ),
            "spec.versions",
        ));
    }
    if !versions.iter().any(|v| v["served"].as_bool() == Some(true)) {
        causes.push(Cause::new(
            "FieldValueInvalid",
            "Invalid value: must have at least one served version",
            "spec.versions",
        ));
    }
    for (i, v) in versions.iter().enumerate() {
        if v["schema"]["openAPIV3Schema"].is_null() {
            causes.push(Cause::new(
                "FieldValueRequired",
                "Required value: schemas are required",
                format!("spec.versions[{i}].schema.openAPIV3Schema"),
            ));
        }
    }
    if registry.plural_taken(&name, group, plural) {
        causes.push(Cause::new(
            "FieldValueInvalid",
            format!("Invalid value: \"{plural}\": is already in use"),
            "spec.names.plural",
        ));
    }
    if !causes.is_empty() {
        return Err(ApiError::invalid(
            "CustomResourceDefinition",
            "apiextensions.k8s.io",
            &name,
            causes,
        ));
    }
    let names = &crd["spec"]["names"];
    let mut accepted = json!({
        "kind": kind, "listKind": names["listKind"].as_str().map(str::to_string).unwrap_or_else(|| format!("{kind}List")),
        "plural": plural, "singular": names["singular"].as_str().map(str::to_string).unwrap_or_else(|| kind.to_lowercase()),
    });
    for extra in ["shortNames", "categories"] {
        if let Some(v) = names.get(extra).filter(|v| !v.is_null()) {
            accepted[extra] = v.clone();
        }
    }
    let stored = storage
        .first()
        .and_then(|v| v["name"].as_str())
        .unwrap_or_default()
        .to_string();
    let mut stored_versions: Vec<Value> = crd["status"]["storedVersions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if !stored_versions.contains(&json!(stored)) {
        stored_versions.push(json!(stored));
    }
    let since = crd["status"]["conditions"]
        .as_array()
        .and_then(|c| c.first())
        .and_then(|c| c["lastTransitionTime"].as_str())
        .map(str::to_string)
        .unwrap_or_else(meta::now);
    let deleting = !crd["metadata"]["deletionTimestamp"].is_null();
    let mut conditions = vec![
        json!({"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found", "lastTransitionTime": since}),
        json!({"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted", "lastTransitionTime": since}),
    ];
    if deleting {
        conditions.push(json!({"type": "Terminating", "status": "True", "reason": "InstanceDeletionInProgress", "message": "CustomResource deletion is in progress", "lastTransitionTime": meta::now()}));
    }
    crd["status"] = json!({"acceptedNames": accepted, "conditions": conditions, "storedVersions": stored_versions});
    Ok(())
}

/// Prunes, defaults and validates a custom resource against its version's schema.
pub fn validate_custom(
    res: &ResourceInfo,
    obj: &mut Value,
    old: Option<&Value>,
    mode: FieldValidation,
    warnings: &mut Vec<String>,
) -> ApiResult<()> {
    let Some(schema) = &res.schema else {
        return Ok(());
    };
    let mut unknown = Vec::new();
    let Some(root) = obj.as_object_mut() else {
        return Ok(());
    };
    for (k, v) in root.iter_mut() {
        if matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
            continue;
        }
        if let Some(sub) = schema["properties"].get(k) {
            prune(v, sub, k, &mut unknown);
        }
    }
    let top_unknown: Vec<String> = root
        .keys()
        .filter(|k| !matches!(k.as_str(), "apiVersion" | "kind" | "metadata"))
        .filter(|k| schema["properties"].get(k.as_str()).is_none() && !preserves(schema))
        .cloned()
        .collect();
    for k in top_unknown {
        root.remove(&k);
        unknown.push(k);
    }
    if mode == FieldValidation::Strict && !unknown.is_empty() {
        let list: Vec<String> = unknown
            .iter()
            .map(|u| format!("unknown field \"{u}\""))
            .collect();
        return Err(ApiError::bad_request(format!(
            "{} in version \"{}\" cannot be handled as a {}: strict decoding error: {}",
            res.kind,
            res.version,
            res.kind,
            list.join(", ")
        )));
    }
    if mode == FieldValidation::Warn {
        warnings.extend(unknown.iter().map(|u| format!("unknown field \"{u}\"")));
    }
    for (k, sub) in schema["properties"].as_object().into_iter().flatten() {
        if matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
            continue;
        }
        if root.get(k).is_none()
            && let Some(d) = sub.get("default")
        {
            root.insert(k.clone(), d.clone());
        }
        if let Some(v) = root.get_mut(k) {
            apply_defaults(v, sub);
        }
    }
    let mut causes = Vec::new();
    for (k, sub) in schema["properties"].as_object().into_iter().flatten() {
        if matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
            continue;
        }
        match root.get(k) {
            Some(v) => check(v, sub, k, &mut causes),
            None if required(schema).contains(&k.as_str()) => {
                causes.push(Cause::new(
                    "FieldValueRequired",
                    "Required value",
                    k.clone(),
                ));
            }
            None => {}
        }
    }
    // CEL rules (x-kubernetes-validations) only run on objects that pass the structural checks,
    // as in the apiserver.
    if causes.is_empty()
        && let Err(errors) = kube_cel::validate(schema, obj, old)
    {
        // Rules kube-cel cannot compile or evaluate are gaps in this simulation, not errors in the
        // object (the apiserver accepted the CRD), so only failed and erroring rules reject.
        let failed = errors.into_vec().into_iter().filter(|e| {
            let real = matches!(
                e.kind,
                kube_cel::ErrorKind::ValidationFailure
                    | kube_cel::ErrorKind::EvaluationError
                    | kube_cel::ErrorKind::InvalidResult
            );
            if !real {
                tracing::debug!(rule = %e.rule, "CEL rule not evaluated: {}", e.message);
            }
            real
        });
        causes.extend(failed.map(|e| {
            let value_type = e
                .field_path
                .split('.')
                .filter(|s| !s.is_empty())
                .try_fold(&*obj, |v, seg| v.get(seg))
                .map_or("object", type_name);
            Cause::new(
                e.reason.as_deref().unwrap_or("FieldValueInvalid"),
                format!("Invalid value: \"{value_type}\": {}", e.message),
                e.field_path,
            )
        }));
    }
    if !causes.is_empty() {
        return Err(ApiError::invalid(
            &res.kind,
            &res.group,
            meta::meta_str(obj, "name"),
            causes,
        ));
    }
    Ok(())
}

/// Fields of `obj` that its version's schema does not declare (paths without a leading dot).
pub fn unknown_fields(res: &ResourceInfo, obj: &Value) -> Vec<String> {
    let Some(schema) = &res.schema else {
        return vec![];
    };
    let mut probe = obj.clone();
    let mut unknown = Vec::new();
    let Some(root) = probe.as_object_mut() else {
        return vec![];
    };
    for (k, v) in root.iter_mut() {
        if matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
            continue;
        }
        match schema["properties"].get(k) {
            Some(sub) => prune(v, sub, k, &mut unknown),
            None if !preserves(schema) => unknown.push(k.clone()),
            None => {}
        }
    }
    unknown
}

fn preserves(schema: &Value) -> bool {
    schema["x-kubernetes-preserve-unknown-fields"].as_bool() == Some(true)
}

fn required(schema: &Value) -> Vec<&str> {
    schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect()
}

/// Drops fields the schema does not declare, unless it preserves unknown fields.
fn prune(v: &mut Value, schema: &Value, path: &str, unknown: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            let props = schema["properties"].as_object();
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            let keep_all = preserves(schema)
                || schema["additionalProperties"].as_bool() == Some(true)
                || schema["x-kubernetes-embedded-resource"].as_bool() == Some(true);
            let mut drop = Vec::new();
            for (k, child) in m.iter_mut() {
                let p = format!("{path}.{k}");
                match (props.and_then(|p| p.get(k)), additional) {
                    (Some(s), _) => prune(child, s, &p, unknown),
                    (None, Some(a)) => prune(child, a, &p, unknown),
                    (None, None) if keep_all => {}
                    (None, None) => {
                        unknown.push(p);
                        drop.push(k.clone());
                    }
                }
            }
            for k in drop {
                m.remove(&k);
            }
        }
        Value::Array(items) => {
            if let Some(s) = schema.get("items") {
                for (i, it) in items.iter_mut().enumerate() {
                    prune(it, s, &format!("{path}[{i}]"), unknown);
                }
            }
        }
        _ => {}
    }
}

fn apply_defaults(v: &mut Value, schema: &Value) {
    match v {
        Value::Object(m) => {
            for (k, s) in schema["properties"].as_object().into_iter().flatten() {
                if m.get(k).is_none()
                    && let Some(d) = s.get("default")
                {
                    m.insert(k.clone(), d.clone());
                }
                if let Some(child) = m.get_mut(k) {
                    apply_defaults(child, s);
                }
            }
            if let Some(a) = schema.get("additionalProperties").filter(|a| a.is_object()) {
                for child in m.values_mut() {
                    apply_defaults(child, a);
                }
            }
        }
        Value::Array(items) => {
            if let Some(s) = schema.get("items") {
                items.iter_mut().for_each(|it| apply_defaults(it, s));
            }
        }
        _ => {}
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn render(v: &Value) -> String {
    match v {
        Value::String(s) => format!("\"{s}\""),
        other => other.to_string(),
    }
}

/// Validates a value against a structural schema node.
fn check(v: &Value, schema: &Value, path: &str, causes: &mut Vec<Cause>) {
    if v.is_null() {
        if schema["nullable"].as_bool() != Some(true) && schema.get("type").is_some() {
            causes.push(Cause::new(
                "FieldValueTypeInvalid",
                format!(
                    "Invalid value: \"null\": {path} in body must be of type {}: \"null\"",
                    schema["type"].as_str().unwrap_or_default()
                ),
                path,
            ));
        }
        return;
    }
    let got = type_name(v);
    if schema["x-kubernetes-int-or-string"].as_bool() == Some(true) {
        if !matches!(got, "integer" | "string") {
            causes.push(Cause::new("FieldValueTypeInvalid", format!("Invalid value: \"{got}\": {path} in body must be of type integer,string: \"{got}\""), path));
        }
        return;
    }
    if let Some(want) = schema["type"].as_str() {
        let ok = want == got || (want == "number" && got == "integer");
        if !ok {
            causes.push(Cause::new(
                "FieldValueTypeInvalid",
                format!(
                    "Invalid value: \"{got}\": {path} in body must be of type {want}: \"{got}\""
                ),
                path,
            ));
            return;
        }
    }
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(v)
    {
        let list: Vec<String> = allowed.iter().map(render).collect();
        causes.push(Cause::new(
            "FieldValueNotSupported",
            format!(
                "Unsupported value: {}: supported values: {}",
                render(v),
                list.join(", ")
            ),
            path,
        ));
    }
    match v {
        Value::Number(n) => {
            let x = n.as_f64().unwrap_or_default();
            if let Some(min) = schema["minimum"].as_f64() {
                let excl = schema["exclusiveMinimum"].as_bool() == Some(true);
                if x < min || (excl && x == min) {
                    let op = if excl {
                        "greater than"
                    } else {
                        "greater than or equal to"
                    };
                    causes.push(Cause::new(
                        "FieldValueInvalid",
                        format!(
                            "Invalid value: {v}: {path} in body should be {op} {}",
                            schema["minimum"]
                        ),
                        path,
                    ));
                }
            }
            if let Some(max) = schema["maximum"].as_f64() {
                let excl = schema["exclusiveMaximum"].as_bool() == Some(true);
                if x > max || (excl && x == max) {
                    let op = if excl {
                        "less than"
                    } else {
                        "less than or equal to"
                    };
                    causes.push(Cause::new(
                        "FieldValueInvalid",
                        format!(
                            "Invalid value: {v}: {path} in body should be {op} {}",
                            schema["maximum"]
                        ),
                        path,
                    ));
                }
            }
        }
        Value::String(s) => {
            let len = s.chars().count() as u64;
            if let Some(max) = schema["maxLength"].as_u64()
                && len > max
            {
                causes.push(Cause::new(
                    "FieldValueTooLong",
                    format!("Too long: may not be more than {max} bytes"),
                    path,
                ));
            }
            if let Some(min) = schema["minLength"].as_u64()
                && len < min
            {
                causes.push(Cause::new(
                    "FieldValueInvalid",
                    format!(
                        "Invalid value: \"{s}\": {path} in body should be at least {min} chars long"
                    ),
                    path,
                ));
            }
            if let Some(p) = schema["pattern"].as_str()
                && let Ok(re) = regex::Regex::new(p)
                && !re.is_match(s)
            {
                causes.push(Cause::new(
                    "FieldValueInvalid",
                    format!("Invalid value: \"{s}\": {path} in body should match '{p}'"),
                    path,
                ));
            }
        }
        Value::Array(items) => {
            if let Some(max) = schema["maxItems"].as_u64()
                && items.len() as u64 > max
            {
                causes.push(Cause::new(
                    "FieldValueTooMany",
                    format!("Too many: {}: must have at most {max} items", items.len()),
                    path,
                ));
            }
            if let Some(min) = schema["minItems"].as_u64()
                && (items.len() as u64) < min
            {
                causes.push(Cause::new(
                    "FieldValueInvalid",
                    format!(
                        "Invalid value: {}: {path} in body should have at least {min} items",
                        items.len()
                    ),
                    path,
                ));
            }
            if let Some(s) = schema.get("items") {
                for (i, it) in items.iter().enumerate() {
                    check(it, s, &format!("{path}[{i}]"), causes);
                }
            }
        }
        Value::Object(m) => check_object(m, schema, path, causes),
        _ => {}
    }
}

fn check_object(m: &Map<String, Value>, schema: &Value, path: &str, causes: &mut Vec<Cause>) {
    for r in required(schema) {
        if m.get(r).is_none() {
            causes.push(Cause::new(
                "FieldValueRequired",
                "Required value",
                format!("{path}.{r}"),
            ));
        }
    }
    if let Some(max) = schema["maxProperties"].as_u64()
        && m.len() as u64 > max
    {
        causes.push(Cause::new(
            "FieldValueTooMany",
            format!("Too many: {}: must have at most {max} items", m.len()),
            path,
        ));
    }
    let props = schema["properties"].as_object();
    let additional = schema.get("additionalProperties").filter(|a| a.is_object());
    for (k, child) in m {
        let p = format!("{path}.{k}");
        if let Some(s) = props.and_then(|p| p.get(k)) {
            check(child, s, &p, causes);
        } else if let Some(a) = additional {
            check(child, a, &p, causes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(schema: Value) -> ResourceInfo {
        let mut r = crate::resources::builtins().remove(0);
        r.kind = "Widget".into();
        r.group = "example.com".into();
        r.crd = Some("widgets.example.com".into());
        r.schema = Some(std::sync::Arc::new(schema));
        r
    }

    #[test]
    fn prunes_defaults_and_validates() {
        let r = res(
            json!({"type": "object", "properties": {"spec": {"type": "object", "required": ["size"],
            "properties": {"size": {"type": "integer", "minimum": 1}, "mode": {"type": "string", "enum": ["a", "b"], "default": "a"},
              "port": {"x-kubernetes-int-or-string": true},
              "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}}),
        );
        let mut ok = json!({"metadata": {"name": "w"}, "spec": {"size": 2, "junk": 1, "port": "http", "free": {"x": 1}}});
        let mut warnings = vec![];
        validate_custom(&r, &mut ok, None, FieldValidation::Warn, &mut warnings).unwrap();
        assert_eq!(
            ok["spec"],
            json!({"size": 2, "port": "http", "free": {"x": 1}, "mode": "a"})
        );
        assert_eq!(warnings, ["unknown field \"spec.junk\""]);

        let mut bad =
            json!({"metadata": {"name": "w"}, "spec": {"size": 0, "mode": "c", "port": true}});
        let err =
            validate_custom(&r, &mut bad, None, FieldValidation::Ignore, &mut vec![]).unwrap_err();
        assert_eq!(err.code, 422);
        let fields: Vec<&str> = err.details.as_ref().unwrap()["causes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["field"].as_str().unwrap())
            .collect();
        assert_eq!(fields, ["spec.size", "spec.mode", "spec.port"]);

        let mut missing = json!({"metadata": {"name": "w"}, "spec": {}});
        let err = validate_custom(&r, &mut missing, None, FieldValidation::Ignore, &mut vec![])
            .unwrap_err();
        assert_eq!(
            err.message,
            "Widget.example.com \"w\" is invalid: spec.size: Required value"
        );
    }
}
