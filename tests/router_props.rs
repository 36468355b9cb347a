//! Property tests of the router translation: weights, targets, order, determinism, no panics.

mod common;

use std::collections::BTreeMap;
use std::sync::LazyLock;

use common::{CrdSchemas, crds_dir};

use meshplan::inventory::{Inventory, Origin};
use meshplan::translate::{self, Options, Translation};
use proptest::prelude::*;
use serde_json::{Value, json};

const NODES: usize = 4;

static ISTIO: LazyLock<CrdSchemas> = LazyLock::new(|| CrdSchemas::load(&crds_dir().join("istio")));

/// Every emitted Istio object must pass the Istio CRD schemas, whatever the input.
fn assert_valid_istio(translation: &Translation) -> Result<(), TestCaseError> {
    for object in &translation.objects {
        if object["apiVersion"]
            .as_str()
            .unwrap_or_default()
            .contains("istio.io")
        {
            let result = ISTIO.validate(object);
            prop_assert!(result.is_ok(), "{object}\n{result:?}");
        }
    }
    Ok(())
}

/// A route: name, optional priority, prefix, and a weight per target node (None: not a target).
type RouteSpec = (Option<i64>, String, Vec<Option<u8>>);

fn route_strategy() -> impl Strategy<Value = RouteSpec> {
    (
        proptest::option::of(0i64..=1000),
        "/[a-z]{0,6}",
        proptest::collection::vec(proptest::option::of(0u8..=100), NODES),
    )
}

/// Valid App Mesh durations, zero included.
fn duration() -> impl Strategy<Value = Value> {
    (prop_oneof![Just("s"), Just("ms")], 0i64..100_000)
        .prop_map(|(unit, value)| json!({"unit": unit, "value": value}))
}

/// Everything else a route may carry: header matchers, retries, timeouts, a method.
fn decorations() -> impl Strategy<Value = Value> {
    let header = (
        "[A-Za-z-]{1,8}",
        prop_oneof![
            "[ -~]{1,10}".prop_map(|v| json!({"exact": v})),
            "[ -~]{1,10}".prop_map(|v| json!({"prefix": v})),
            "[ -~]{1,10}".prop_map(|v| json!({"suffix": v})),
            (any::<i64>(), any::<i64>())
                .prop_map(|(a, b)| json!({"range": {"start": a.min(b), "end": a.max(b)}})),
            Just(Value::Null),
        ],
        any::<bool>(),
    )
        .prop_map(|(name, m, invert)| {
            let mut h = json!({"name": name, "invert": invert});
            if !m.is_null() {
                h["match"] = m;
            }
            h
        });
    let events = proptest::sample::subsequence(
        vec![
            "server-error",
            "gateway-error",
            "client-error",
            "stream-error",
        ],
        0..=4,
    );
    let retry = (0i64..5, duration(), events, any::<bool>()).prop_map(|(n, per, events, tcp)| {
        let mut r = json!({"maxRetries": n, "perRetryTimeout": per, "httpRetryEvents": events});
        if tcp {
            r["tcpRetryEvents"] = json!(["connection-error"]);
        }
        r
    });
    (
        proptest::collection::vec(header, 0..4),
        proptest::option::of(retry),
        proptest::option::of((
            proptest::option::of(duration()),
            proptest::option::of(duration()),
        )),
        proptest::option::of(prop_oneof![Just("GET"), Just("POST")]),
    )
        .prop_map(|(headers, retry, timeout, method)| {
            let mut d = json!({"headers": headers});
            if let Some(r) = retry {
                d["retryPolicy"] = r;
            }
            if let Some((per, idle)) = timeout {
                let mut t = json!({});
                if let Some(p) = per {
                    t["perRequest"] = p;
                }
                if let Some(i) = idle {
                    t["idle"] = i;
                }
                d["timeout"] = t;
            }
            if let Some(m) = method {
                d["method"] = json!(m);
            }
            d
        })
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
        assert_valid_istio(&translation)?;
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
    fn any_valid_route_translates_to_valid_istio(
        routes in proptest::collection::vec((route_strategy(), decorations()), 1..4)
    ) {
        let specs: Vec<RouteSpec> = routes.iter().map(|(r, _)| r.clone()).collect();
        let mut inventory = inventory(&specs);
        // Decorate the generated router's routes in place.
        let router = inventory.virtual_routers.pop().unwrap();
        let mut raw = serde_json::Value::clone(&router.raw);
        for (i, (_, d)) in routes.iter().enumerate() {
            let route = &mut raw["spec"]["routes"][i]["httpRoute"];
            if !d["headers"].as_array().unwrap().is_empty() {
                route["match"]["headers"] = d["headers"].clone();
            }
            if let Some(m) = d.get("method") { route["match"]["method"] = m.clone(); }
            if let Some(r) = d.get("retryPolicy") { route["retryPolicy"] = r.clone(); }
            if let Some(t) = d.get("timeout") { route["timeout"] = t.clone(); }
        }
        inventory.add(raw, router.origin.clone(), 0).unwrap();
        let translation = translate::translate(&inventory, &Options::default());
        assert_valid_istio(&translation)?;
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
        let translation = translate::translate(&inventory, &Options::default());
        assert_valid_istio(&translation)?;
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
