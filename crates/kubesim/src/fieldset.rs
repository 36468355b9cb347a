//! Field sets as used by managedFields (structured-merge-diff `FieldsV1`): which fields a manager owns.

use serde_json::{Map, Value};

use crate::shape::{ListKind, Shape};

/// A tree of owned fields. Children are keyed by encoded path elements (`f:`, `k:`, `v:`, `i:`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldSet {
    /// Whether this node itself is owned (`".": {}`, or a leaf).
    pub own: bool,
    /// Owned descendants.
    pub children: Children,
}

/// A node's children by encoded path element, in key order. Most nodes have one child or a few:
/// a sorted vector holds them in one allocation the size of what it holds, where a B-tree map
/// allocated room for eleven (a third of a status write's cost went to building, copying and
/// dropping such maps).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Children(Vec<(String, FieldSet)>);

impl Children {
    fn find(&self, key: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(k, _)| k.as_str().cmp(key))
    }

    /// The child at `key`.
    pub fn get(&self, key: &str) -> Option<&FieldSet> {
        self.find(key).ok().map(|i| &self.0[i].1)
    }

    /// The child at `key`, to change.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut FieldSet> {
        self.find(key).ok().map(|i| &mut self.0[i].1)
    }

    /// The child at `key`, added empty if missing.
    pub fn get_or_default(&mut self, key: &str) -> &mut FieldSet {
        let i = match self.find(key) {
            Ok(i) => i,
            Err(i) => {
                self.0.insert(i, (key.to_string(), FieldSet::default()));
                i
            }
        };
        &mut self.0[i].1
    }

    /// Sets the child at `key`.
    pub fn insert(&mut self, key: String, child: FieldSet) {
        match self.find(&key) {
            Ok(i) => self.0[i].1 = child,
            Err(i) => self.0.insert(i, (key, child)),
        }
    }

    /// Removes the child at `key`.
    pub fn remove(&mut self, key: &str) {
        if let Ok(i) = self.find(key) {
            self.0.remove(i);
        }
    }

    /// Keeps the children for which `keep` holds.
    pub fn retain(&mut self, mut keep: impl FnMut(&str, &mut FieldSet) -> bool) {
        self.0.retain_mut(|(k, c)| keep(k, c));
    }

    /// The children in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &FieldSet)> {
        self.0.iter().map(|(k, c)| (k, c))
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Removes them all.
    pub fn clear(&mut self) {
        self.0.clear();
    }
}

impl<'a> IntoIterator for &'a Children {
    type Item = (&'a String, &'a FieldSet);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (String, FieldSet)>,
        fn(&'a (String, FieldSet)) -> (&'a String, &'a FieldSet),
    >;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(k, c)| (k, c))
    }
}

/// One decoded path element.
#[derive(Debug, Clone, PartialEq)]
pub enum Elem {
    /// `f:<name>`: a struct field or map key.
    Field(String),
    /// `k:<json>`: a list-map item identified by its key fields.
    Key(Map<String, Value>),
    /// `v:<json>`: a set member.
    Member(Value),
    /// `i:<n>`: a positional list element.
    Index(usize),
}

impl Elem {
    /// Decodes an encoded path element.
    pub fn decode(s: &str) -> Option<Elem> {
        let (tag, rest) = s.split_at_checked(2)?;
        match tag {
            "f:" => Some(Elem::Field(rest.to_string())),
            "k:" => serde_json::from_str(rest).ok().map(Elem::Key),
            "v:" => serde_json::from_str(rest).ok().map(Elem::Member),
            "i:" => rest.parse().ok().map(Elem::Index),
            _ => None,
        }
    }

    /// Renders the element as in apply conflict messages.
    fn render(&self) -> String {
        match self {
            Elem::Field(f) => format!(".{f}"),
            Elem::Key(k) => {
                let parts: Vec<String> = k.iter().map(|(k, v)| format!("{k}={v}")).collect();
                format!("[{}]", parts.join(","))
            }
            Elem::Member(v) => format!("[={v}]"),
            Elem::Index(i) => format!("[{i}]"),
        }
    }
}

/// Renders a path as `.spec.template.spec.containers[name="web"].image`.
pub fn render_path(path: &[String]) -> String {
    path.iter()
        .filter_map(|e| Elem::decode(e))
        .map(|e| e.render())
        .collect()
}

/// Encodes the key fields of a list-map item as `k:{...}` (keys sorted, compact JSON).
pub fn item_key(item: &Value, keys: &[String]) -> Option<String> {
    let mut sorted: Vec<&String> = keys.iter().collect();
    sorted.sort();
    let mut m = Map::new();
    for k in sorted {
        let v = match item.get(k) {
            Some(v) => v.clone(),
            // Protocol is a defaulted key field in the built-in port lists.
            None if k == "protocol" => Value::String("TCP".into()),
            None => continue,
        };
        m.insert(k.clone(), v);
    }
    if m.is_empty() {
        return None;
    }
    Some(format!("k:{}", Value::Object(m)))
}

/// Whether `old` is the item that [`item_key`] of `new` names (as [`lookup_child`] finds it).
fn same_key(old: &Value, new: &Value, keys: &[String]) -> bool {
    keys.iter().all(|k| match new.get(k) {
        Some(want) => key_field_is(old, k, want),
        // Left out of the key, unless it is the protocol, which [`item_key`] defaults.
        None => k != "protocol" || key_field_is(old, k, &Value::String("TCP".into())),
    })
}

/// Whether a list item's key field `key` is `want`; an absent `protocol` is `TCP`, its default
/// in the built-in port lists.
fn key_field_is(item: &Value, key: &str, want: &Value) -> bool {
    match item.get(key) {
        Some(value) => value == want,
        None => key == "protocol" && want == "TCP",
    }
}

/// Fields that the server manages and that never appear in field sets.
fn excluded(path: &[String], key: &str) -> bool {
    match path {
        [] => matches!(key, "apiVersion" | "kind"),
        [m] if m == "metadata" => !matches!(
            key,
            "labels" | "annotations" | "finalizers" | "ownerReferences"
        ),
        _ => false,
    }
}

impl FieldSet {
    /// An owned leaf.
    pub fn leaf() -> Self {
        Self {
            own: true,
            children: Children::default(),
        }
    }

    /// Whether nothing is owned.
    pub fn is_empty(&self) -> bool {
        !self.own && self.children.is_empty()
    }

    /// Every field present in `value`, given the kind's merge shape.
    pub fn of_value(value: &Value, shape: &Shape<'_>) -> Self {
        let mut s = Self::default();
        collect(value, &mut Vec::new(), shape, &mut s, true);
        s
    }

    /// Fields whose value in `new` is absent from or different in `old`.
    pub fn changed(old: Option<&Value>, new: &Value, shape: &Shape<'_>) -> Self {
        let mut s = Self::default();
        diff(old, new, &mut Vec::new(), shape, &mut s, true);
        s
    }

    /// As [`FieldSet::changed`] where `old` and `new` differ in the top-level `field` only.
    pub fn changed_field(old: Option<&Value>, new: &Value, field: &str, shape: &Shape<'_>) -> Self {
        let mut s = Self::default();
        let Some(value) = new.get(field) else {
            return s;
        };
        let mut names = vec![field.to_string()];
        let mut child = FieldSet::default();
        diff(
            old.and_then(|o| o.get(field)),
            value,
            &mut names,
            shape,
            &mut child,
            false,
        );
        if !child.is_empty() {
            s.children.insert(format!("f:{field}"), child);
        }
        s
    }

    /// Adds every field of `other`.
    pub fn union(&mut self, other: &FieldSet) {
        self.own |= other.own;
        for (k, v) in &other.children {
            self.children.get_or_default(k).union(v);
        }
    }

    /// Removes every field owned in `other` (owned nodes only, not their descendants).
    pub fn subtract(&mut self, other: &FieldSet) {
        if other.own {
            self.own = false;
        }
        for (k, v) in &other.children {
            if let Some(c) = self.children.get_mut(k) {
                c.subtract(v);
                if c.is_empty() {
                    self.children.remove(k);
                }
            }
        }
    }

    /// Every owned node's path.
    pub fn owned_paths(&self) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        walk(self, &mut Vec::new(), &mut out);
        out
    }

    /// Whether the node at `path` is owned.
    pub fn contains(&self, path: &[String]) -> bool {
        let mut cur = self;
        for p in path {
            match cur.children.get(p) {
                Some(c) => cur = c,
                None => return false,
            }
        }
        cur.own
    }

    /// Whether the node at `path` or anything below it is owned.
    pub fn touches(&self, path: &[String]) -> bool {
        let mut cur = self;
        for p in path {
            match cur.children.get(p) {
                Some(c) => cur = c,
                None => return false,
            }
        }
        !cur.is_empty()
    }

    /// Keeps only fields that exist in `value`.
    pub fn retain_existing(&mut self, value: &Value) {
        self.children.retain(|k, c| match lookup_child(value, k) {
            Some(v) => {
                c.retain_existing(v);
                !c.is_empty()
            }
            None => false,
        });
    }

    /// [`FieldSet::retain_existing`] for the top-level `field` only.
    pub fn retain_existing_in(&mut self, value: &Value, field: &str) {
        let key = format!("f:{field}");
        let Some(c) = self.children.get_mut(&key) else {
            return;
        };
        match value.get(field) {
            Some(v) => c.retain_existing(v),
            None => *c = FieldSet::default(),
        }
        if c.is_empty() {
            self.children.remove(&key);
        }
    }

    /// The `FieldsV1` JSON form.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        if self.own && !self.children.is_empty() {
            m.insert(".".into(), Value::Object(Map::new()));
        }
        for (k, v) in &self.children {
            m.insert(k.clone(), v.to_json());
        }
        Value::Object(m)
    }

    /// Parses the `FieldsV1` JSON form.
    pub fn from_json(v: &Value) -> Self {
        let Some(m) = v.as_object() else {
            return Self::default();
        };
        if m.is_empty() {
            return Self::leaf();
        }
        let mut s = Self::default();
        for (k, c) in m {
            if k == "." {
                s.own = true;
            } else {
                s.children.insert(k.clone(), Self::from_json(c));
            }
        }
        s
    }
}

fn walk(s: &FieldSet, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    if s.own {
        out.push(path.clone());
    }
    for (k, c) in &s.children {
        path.push(k.clone());
        walk(c, path, out);
        path.pop();
    }
}

/// The child value named by an encoded path element.
pub fn lookup_child<'a>(value: &'a Value, elem: &str) -> Option<&'a Value> {
    // Most elements are fields: looked up without decoding (allocating) the name.
    if let Some(field) = elem.strip_prefix("f:") {
        return value.as_object()?.get(field);
    }
    match Elem::decode(elem)? {
        Elem::Field(f) => value.as_object()?.get(&f),
        Elem::Key(k) => value
            .as_array()?
            .iter()
            .find(|item| k.iter().all(|(key, want)| key_field_is(item, key, want))),
        Elem::Member(m) => value.as_array()?.iter().find(|v| **v == m),
        Elem::Index(i) => value.as_array()?.get(i),
    }
}

/// The value at an encoded path.
pub fn lookup<'a>(value: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, e| lookup_child(v, e))
}

/// Removes the value at an encoded path; returns whether something was removed.
pub fn remove(value: &mut Value, path: &[String]) -> bool {
    let Some((last, parent_path)) = path.split_last() else {
        return false;
    };
    let mut parent = value;
    for e in parent_path {
        let next = match Elem::decode(e) {
            Some(Elem::Field(f)) => parent.as_object_mut().and_then(|m| m.get_mut(&f)),
            Some(_) => {
                let idx = index_of(parent, e);
                match idx {
                    Some(i) => parent.as_array_mut().and_then(|a| a.get_mut(i)),
                    None => None,
                }
            }
            None => None,
        };
        match next {
            Some(n) => parent = n,
            None => return false,
        }
    }
    match Elem::decode(last) {
        Some(Elem::Field(f)) => parent
            .as_object_mut()
            .is_some_and(|m| m.remove(&f).is_some()),
        Some(_) => match index_of(parent, last) {
            Some(i) => {
                parent.as_array_mut().map(|a| a.remove(i));
                true
            }
            None => false,
        },
        None => false,
    }
}

fn index_of(list: &Value, elem: &str) -> Option<usize> {
    let target = lookup_child(list, elem)? as *const Value;
    list.as_array()?
        .iter()
        .position(|v| std::ptr::eq(v, target))
}

/// Field names of an encoded path (keys and members dropped), for shape lookups.
pub fn field_names(path: &[String]) -> Vec<String> {
    path.iter()
        .filter_map(|e| match Elem::decode(e) {
            Some(Elem::Field(f)) => Some(f),
            _ => None,
        })
        .collect()
}

fn collect(
    value: &Value,
    names: &mut Vec<String>,
    shape: &Shape<'_>,
    out: &mut FieldSet,
    root: bool,
) {
    match value {
        Value::Object(m) if !m.is_empty() && (root || !shape.atomic_map(names)) => {
            let mut any_excluded = false;
            for (k, v) in m {
                if excluded(names, k) {
                    any_excluded = true;
                    continue;
                }
                names.push(k.clone());
                let mut child = FieldSet::default();
                collect(v, names, shape, &mut child, false);
                names.pop();
                if !child.is_empty() {
                    out.children.insert(format!("f:{k}"), child);
                }
            }
            if !root && !any_excluded && out.children.is_empty() {
                out.own = true;
            }
        }
        Value::Array(items) if !items.is_empty() => match shape.list_kind(names) {
            ListKind::Set => {
                for it in items {
                    out.children.insert(format!("v:{it}"), FieldSet::leaf());
                }
            }
            kind @ (ListKind::Map(_) | ListKind::MapOwned(_)) => {
                let keys = kind.keys();
                for it in items {
                    match item_key(it, &keys) {
                        Some(key) => {
                            let mut child = FieldSet::default();
                            collect(it, names, shape, &mut child, false);
                            child.own = true;
                            out.children.insert(key, child);
                        }
                        None => {
                            out.own = true;
                            out.children.clear();
                            return;
                        }
                    }
                }
            }
            ListKind::Atomic => out.own = true,
        },
        _ => out.own = !root,
    }
}

fn diff(
    old: Option<&Value>,
    new: &Value,
    names: &mut Vec<String>,
    shape: &Shape<'_>,
    out: &mut FieldSet,
    root: bool,
) {
    if old.is_some_and(|old| crate::equal::same(old, new)) {
        return;
    }
    match (old, new) {
        (Some(Value::Object(o)), Value::Object(n))
            if !n.is_empty() && (root || !shape.atomic_map(names)) =>
        {
            for (k, v) in n {
                if excluded(names, k) {
                    continue;
                }
                names.push(k.clone());
                let mut child = FieldSet::default();
                diff(o.get(k), v, names, shape, &mut child, false);
                names.pop();
                if !child.is_empty() {
                    out.children.insert(format!("f:{k}"), child);
                }
            }
        }
        (Some(Value::Array(o)), Value::Array(n)) if !n.is_empty() => match shape.list_kind(names) {
            ListKind::Set => {
                for it in n.iter().filter(|it| !o.contains(it)) {
                    out.children.insert(format!("v:{it}"), FieldSet::leaf());
                }
            }
            kind @ (ListKind::Map(_) | ListKind::MapOwned(_)) => {
                let keys = kind.keys();
                for it in n {
                    let Some(key) = item_key(it, &keys) else {
                        out.own = true;
                        return;
                    };
                    let before = o.iter().find(|item| same_key(item, it, &keys));
                    let mut child = FieldSet::default();
                    diff(before, it, names, shape, &mut child, false);
                    if before.is_none() {
                        child.own = true;
                    }
                    if !child.is_empty() {
                        out.children.insert(key, child);
                    }
                }
            }
            ListKind::Atomic => out.own = true,
        },
        _ => collect(new, names, shape, out, root),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn deployment_fields_use_keys_for_containers_and_ports() {
        let d = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
              "template": {"spec": {"containers": [{"name": "web", "image": "nginx", "ports": [{"containerPort": 80}]}]}}}});
        let fs = FieldSet::of_value(&d, &Shape::Builtin);
        let j = fs.to_json();
        assert_eq!(j["f:metadata"], json!({"f:labels": {"f:app": {}}}));
        assert_eq!(j["f:spec"]["f:selector"], json!({}));
        let c = &j["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"web\"}"];
        assert_eq!(c["."], json!({}));
        assert_eq!(
            c["f:ports"]["k:{\"containerPort\":80,\"protocol\":\"TCP\"}"]["f:containerPort"],
            json!({})
        );
        assert_eq!(FieldSet::from_json(&j), fs);
    }

    #[test]
    fn changed_fields_only_list_differences() {
        let old =
            json!({"spec": {"replicas": 1, "paused": false}, "metadata": {"finalizers": ["a"]}});
        let new = json!({"spec": {"replicas": 3, "paused": false}, "metadata": {"finalizers": ["a", "b"]}});
        let fs = FieldSet::changed(Some(&old), &new, &Shape::Builtin);
        assert_eq!(
            fs.to_json(),
            json!({"f:metadata": {"f:finalizers": {"v:\"b\"": {}}}, "f:spec": {"f:replicas": {}}})
        );
    }

    #[test]
    fn a_write_known_to_change_one_field_lists_what_a_whole_comparison_lists() {
        let spec = json!({"replicas": 1});
        let old =
            json!({"spec": spec, "status": {"replicas": 1, "conditions": [{"type": "Available"}]}});
        for new in [
            json!({"spec": spec, "status": {"replicas": 2, "conditions": [{"type": "Available"}, {"type": "Progressing"}]}}),
            json!({"spec": spec, "status": {"replicas": 1, "conditions": [{"type": "Available"}]}}),
            json!({"spec": spec}),
        ] {
            assert_eq!(
                FieldSet::changed_field(Some(&old), &new, "status", &Shape::Builtin),
                FieldSet::changed(Some(&old), &new, &Shape::Builtin),
                "{new}"
            );
        }
        let new = json!({"spec": spec, "status": {"replicas": 2}});
        assert_eq!(
            FieldSet::changed_field(
                Some(&json!({"spec": spec})),
                &new,
                "status",
                &Shape::Builtin
            )
            .to_json(),
            json!({"f:status": {"f:replicas": {}}})
        );
    }

    #[test]
    fn fields_gone_from_one_top_level_field_are_dropped_there_only() {
        let owned =
            json!({"f:spec": {"f:paused": {}}, "f:status": {"f:replicas": {}, "f:ready": {}}});
        let value = json!({"spec": {}, "status": {"replicas": 1}});
        let mut fs = FieldSet::from_json(&owned);
        fs.retain_existing_in(&value, "status");
        assert_eq!(
            fs.to_json(),
            json!({"f:spec": {"f:paused": {}}, "f:status": {"f:replicas": {}}})
        );
        fs.retain_existing_in(&json!({"spec": {}}), "status");
        assert_eq!(fs.to_json(), json!({"f:spec": {"f:paused": {}}}));
    }

    #[test]
    fn list_items_are_matched_by_their_keys_with_the_defaulted_protocol() {
        let ports = |ports: Value| json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "ports": ports}]}}}});
        let old = ports(json!([{"containerPort": 80}, {"containerPort": 90, "protocol": "UDP"}]));
        let new = ports(json!([
            {"containerPort": 80, "protocol": "TCP"},
            {"containerPort": 90, "protocol": "UDP", "name": "dns"},
            {"containerPort": 81}
        ]));
        let fs = FieldSet::changed(Some(&old), &new, &Shape::Builtin).to_json();
        let changed = &fs["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"web\"}"]
            ["f:ports"];
        // Port 80 was there (its protocol defaulted): only the field written out is new.
        assert_eq!(
            changed["k:{\"containerPort\":80,\"protocol\":\"TCP\"}"],
            json!({"f:protocol": {}})
        );
        assert_eq!(
            changed["k:{\"containerPort\":90,\"protocol\":\"UDP\"}"],
            json!({"f:name": {}})
        );
        // Port 81 is a new item: owned whole.
        assert_eq!(
            changed["k:{\"containerPort\":81,\"protocol\":\"TCP\"}"],
            json!({".": {}, "f:containerPort": {}})
        );
        assert_eq!(changed.as_object().map(|m| m.len()), Some(3));
    }

    #[test]
    fn paths_render_and_remove() {
        let mut v = json!({"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b"}]}});
        let path: Vec<String> = vec![
            "f:spec".into(),
            "f:containers".into(),
            "k:{\"name\":\"a\"}".into(),
            "f:image".into(),
        ];
        assert_eq!(render_path(&path), ".spec.containers[name=\"a\"].image");
        assert!(remove(&mut v, &path));
        assert!(remove(&mut v, &path[..3]));
        assert_eq!(v, json!({"spec": {"containers": [{"name": "b"}]}}));
    }
}
