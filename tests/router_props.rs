//! Property tests of the router translation: weights, targets, order, determinism, no panics.

use std::collections::BTreeMap;

use meshplan::inventory::{Inventory, Origin};
use meshplan::translate::{self, Options, Translation};
use proptest::prelude::*;
use serde_json::{Value, json};

const NODES: usize = 4;

/// A route: name, optional priority, prefix, and a weight per target node (None: not a target).
type RouteSpec = (Option<i64>, String, Vec<Option<u8>>);

fn route_strategy() -> impl Strategy<Value = RouteSpec> {
    (
        proptest::option::of(0i64..=1000),
        "/[a-z]{0,6}",
        proptest::collection::vec(proptest::option::of(0u8..=100), NODES),
    )
}

fn inventory(routes: &[RouteSpec]) -> Inventory {
    let mut docs = vec![
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "p"}}),
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "svc", "namespace": "p"},
               "spec": {"ports": [{"name": "http", "port": 80}]}}),
        json!({"apiVersion": "appmesh.k8s.aws/v1beta2", "kind": "VirtualService",
               "metadata": {"name": "svc", "namespace": "p"},
               "spec": {"awsName": "svc.p.svc.cluster.local",
                        "provider": {"virtualRouter": {"virtualRouterRef": {"name": "r"}}}}}),
    ];
    for n in 0..NODES {
        docs.push(
            json!({"apiVersion": "appmesh.k8s.aws/v1beta2", "kind": "VirtualNode",
            "metadata": {"name": format!("n{n}"), "namespace": "p"},
            "spec": {"podSelector": {"matchLabels": {"app": "svc", "version": format!("v{n}")}},
                     "listeners": [{"portMapping": {"port": 80, "protocol": "http"}}]}}),
        );
    }
    let routes: Vec<Value> = routes
        .iter()
        .enumerate()
        .map(|(i, (priority, prefix, weights))| {
            let targets: Vec<Value> = weights
                .iter()
                .enumerate()
                .filter_map(|(n, w)| w.map(|w| json!({"virtualNodeRef": {"name": format!("n{n}")}, "weight": w})))
                .collect();
            let mut route = json!({"name": format!("route-{i}"),
                "httpRoute": {"match": {"prefix": prefix}, "action": {"weightedTargets": targets}}});
            if let Some(p) = priority {
                route["priority"] = json!(p);
            }
            route
        })
        .collect();
    docs.push(json!({"apiVersion": "appmesh.k8s.aws/v1beta2", "kind": "VirtualRouter",
        "metadata": {"name": "r", "namespace": "p"},
        "spec": {"listeners": [{"portMapping": {"port": 80, "protocol": "http"}}], "routes": routes}}));
    let mut inventory = Inventory::default();
    for (i, doc) in docs.into_iter().enumerate() {
        let origin = Origin {
            file: "generated.yaml".into(),
            line: 0,
        };
        inventory.add(doc, origin, i).unwrap();
    }
    inventory
}

fn http_routes(translation: &Translation) -> Vec<Value> {
    translation
        .objects
        .iter()
        .find(|o| o["kind"] == "VirtualService")
        .map(|vs| vs["spec"]["http"].as_array().cloned().unwrap_or_default())
        .unwrap_or_default()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn weights_sum_to_100_and_every_weighted_target_is_kept(
        routes in proptest::collection::vec(route_strategy(), 1..5)
    ) {
        let translation = translate::translate(&inventory(&routes), &Options::default());
        let by_name: BTreeMap<String, Value> = http_routes(&translation)
            .into_iter()
            .map(|r| (r["name"].as_str().unwrap().to_owned(), r))
            .collect();
        for (i, (_, _, weights)) in routes.iter().enumerate() {
            let total: u32 = weights.iter().flatten().map(|w| u32::from(*w)).sum();
            let name = format!("route-{i}");
            if weights.iter().all(Option::is_none) || total == 0 {
                prop_assert!(!by_name.contains_key(&name), "{name} cannot route");
                continue;
            }
            let route = &by_name[&name];
            let destinations = route["route"].as_array().unwrap();
            let sum: u64 = destinations.iter().map(|d| d["weight"].as_u64().unwrap()).sum();
            prop_assert_eq!(sum, 100);
            for (n, w) in weights.iter().enumerate() {
                let present = destinations.iter().any(|d| d["destination"]["subset"] == format!("n{n}"));
                prop_assert_eq!(present, matches!(w, Some(w) if *w > 0), "n{} weight {:?}", n, w);
            }
        }
    }

    #[test]
    fn prioritised_routes_keep_their_order(
        priorities in proptest::collection::btree_set(0i64..=1000, 1..6)
    ) {
        // Write the routes in reverse priority order; the output must put priority 0 first.
        let routes: Vec<RouteSpec> = priorities
            .iter()
            .rev()
            .map(|p| (Some(*p), "/".to_owned(), vec![Some(1), None, None, None]))
            .collect();
        let translation = translate::translate(&inventory(&routes), &Options::default());
        let names: Vec<String> = http_routes(&translation)
            .iter()
            .map(|r| r["name"].as_str().unwrap().to_owned())
            .collect();
        let expected: Vec<String> = (0..routes.len()).rev().map(|i| format!("route-{i}")).collect();
        prop_assert_eq!(names, expected);
    }

    #[test]
    fn translation_is_deterministic(routes in proptest::collection::vec(route_strategy(), 1..5)) {
        let inventory = inventory(&routes);
        let a = translate::translate(&inventory, &Options::default());
        let b = translate::translate(&inventory, &Options::default());
        prop_assert_eq!(a.objects, b.objects);
        prop_assert_eq!(a.findings, b.findings);
    }

    #[test]
    fn arbitrary_specs_never_panic(spec in arbitrary_json(4), kind in 0usize..7) {
        let kinds = ["Mesh", "VirtualNode", "VirtualService", "VirtualRouter", "VirtualGateway", "GatewayRoute", "BackendGroup"];
        let doc = json!({"apiVersion": "appmesh.k8s.aws/v1beta2", "kind": kinds[kind],
                         "metadata": {"name": "x", "namespace": "p"}, "spec": spec});
        let mut inventory = inventory(&[(None, "/".to_owned(), vec![Some(1), None, None, None])]);
        let _ = inventory.add(doc, Origin { file: "fuzz.yaml".into(), line: 0 }, 0);
        let _ = translate::translate(&inventory, &Options::default());
    }
}

/// JSON values shaped like App Mesh specs: known keys are likely, so decoding gets deep.
fn arbitrary_json(depth: u32) -> impl Strategy<Value = Value> {
    let keys = prop_oneof![
        Just("listeners"),
        Just("portMapping"),
        Just("port"),
        Just("protocol"),
        Just("routes"),
        Just("httpRoute"),
        Just("match"),
        Just("prefix"),
        Just("action"),
        Just("weightedTargets"),
        Just("virtualNodeRef"),
        Just("name"),
        Just("weight"),
        Just("headers"),
        Just("range"),
        Just("start"),
        Just("end"),
        Just("timeout"),
        Just("perRequest"),
        Just("unit"),
        Just("value"),
        Just("podSelector"),
        Just("matchLabels"),
        Just("provider"),
        Just("virtualRouter"),
        Just("virtualRouterRef"),
        Just("backends"),
        Just("tls"),
        Just("mode"),
        Just("x"),
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        prop_oneof![
            Just("http"),
            Just("s"),
            Just("ms"),
            Just("/"),
            Just("STRICT"),
            Just("x")
        ]
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(depth, 64, 6, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(keys.clone().prop_map(str::to_owned), inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}
