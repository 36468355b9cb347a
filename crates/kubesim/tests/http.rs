//! Raw HTTP requests: Status bodies, codes and headers for the error paths clients depend on.

mod common;

use serde_json::{Value, json};

struct Reply {
    status: u16,
    headers: http::HeaderMap,
    body: Value,
}

async fn send(
    server: &kubesim::RunningServer,
    method: &str,
    path: &str,
    content_type: &str,
    body: &str,
) -> Reply {
    let client = common::client_without_retry(server);
    let req = http::Request::builder()
        .method(method)
        .uri(format!("{}{path}", server.url()))
        .header("content-type", content_type)
        .body(kube::client::Body::from(body.as_bytes().to_vec()))
        .unwrap();
    let resp = client.send(req).await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .unwrap()
        .to_bytes();
    Reply {
        status,
        headers,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

const CM: &str =
    r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"},"data":{"a":"b"}}"#;

#[tokio::test]
async fn error_statuses_have_the_apiserver_shape() {
    let server = kubesim::Server::builder().start().await.unwrap();
    let cms = "/api/v1/namespaces/default/configmaps";

    let r = send(
        &server,
        "GET",
        "/apis/nope.example.com/v1/things",
        "application/json",
        "",
    )
    .await;
    assert_eq!(
        (r.status, r.body["reason"].as_str()),
        (404, Some("NotFound"))
    );
    assert_eq!(
        r.body["message"],
        "the server could not find the requested resource"
    );
    assert_eq!(r.headers["content-type"], "application/json");

    let r = send(
        &server,
        "POST",
        "/api/v1/namespaces/nowhere/configmaps",
        "application/json",
        CM,
    )
    .await;
    assert_eq!(
        (r.status, r.body["message"].as_str()),
        (404, Some("namespaces \"nowhere\" not found"))
    );

    let r = send(&server, "POST", cms, "application/json", CM).await;
    assert_eq!(r.status, 201);
    assert_eq!(
        r.body["metadata"]["managedFields"][0]["operation"],
        "Update"
    );

    let r = send(
        &server,
        "PUT",
        &format!("{cms}/other"),
        "application/json",
        CM,
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body["message"],
        "the name of the object (c) does not match the name on the URL (other)"
    );

    let r = send(&server, "POST", &format!("{cms}/c"), "application/json", CM).await;
    assert_eq!(
        (r.status, r.body["reason"].as_str()),
        (405, Some("MethodNotAllowed"))
    );

    let r = send(&server, "PATCH", &format!("{cms}/c"), "text/plain", "{}").await;
    assert_eq!(
        (r.status, r.body["reason"].as_str()),
        (415, Some("UnsupportedMediaType"))
    );

    let ops: Vec<Value> = (0..10001)
        .map(|_| json!({"op": "test", "path": "/kind", "value": "ConfigMap"}))
        .collect();
    let r = send(
        &server,
        "PATCH",
        &format!("{cms}/c"),
        "application/json-patch+json",
        &Value::Array(ops).to_string(),
    )
    .await;
    assert_eq!(
        (r.status, r.body["reason"].as_str()),
        (413, Some("RequestEntityTooLarge"))
    );

    let r = send(
        &server,
        "POST",
        &format!("{cms}?dryRun=Some"),
        "application/json",
        CM,
    )
    .await;
    assert_eq!(
        (r.status, r.body["reason"].as_str()),
        (422, Some("Invalid"))
    );
    assert_eq!(r.body["details"]["causes"][0]["field"], "dryRun");

    let r = send(
        &server,
        "PATCH",
        &format!("{cms}/c?force=true"),
        "application/merge-patch+json",
        "{}",
    )
    .await;
    assert_eq!(r.status, 422);
    assert_eq!(
        r.body["message"],
        "PatchOptions.meta.k8s.io \"\" is invalid: force: Forbidden: may not be specified for non-apply patch"
    );

    let r = send(
        &server,
        "POST",
        cms,
        "application/json",
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{}}"#,
    )
    .await;
    assert_eq!(r.status, 422);
    assert_eq!(
        r.body["message"],
        "ConfigMap \"\" is invalid: metadata.name: Required value: name or generateName is required"
    );
    assert_eq!(r.body["details"]["kind"], "ConfigMap");

    let r = send(
        &server,
        "POST",
        cms,
        "application/json",
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"generateName":"gen-"}}"#,
    )
    .await;
    assert_eq!(r.status, 201);
    let name = r.body["metadata"]["name"].as_str().unwrap();
    assert!(name.starts_with("gen-") && name.len() == 9, "{name}");

    let r = send(
        &server,
        "POST",
        cms,
        "application/json",
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"Bad_Name"}}"#,
    )
    .await;
    assert_eq!(r.status, 422);
    assert!(r.body["message"].as_str().unwrap().starts_with("ConfigMap \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain"));

    let r = send(
        &server,
        "POST",
        &format!("{cms}?fieldValidation=Warn"),
        "application/json",
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"w"},"bogus":1}"#,
    )
    .await;
    assert_eq!(r.status, 201);
    assert_eq!(
        r.headers["warning"],
        "299 - \"unknown field \\\"bogus\\\"\""
    );
    assert!(r.body.get("bogus").is_none());

    // A merge patch carrying a stale resourceVersion is an optimistic-lock precondition.
    let r = send(
        &server,
        "PATCH",
        &format!("{cms}/c"),
        "application/merge-patch+json",
        r#"{"metadata":{"resourceVersion":"1"},"data":{"a":"x"}}"#,
    )
    .await;
    assert_eq!(
        (r.status, r.body["reason"].as_str()),
        (409, Some("Conflict"))
    );

    // A write that changes nothing keeps the resourceVersion.
    let before = send(&server, "GET", &format!("{cms}/c"), "application/json", "")
        .await
        .body["metadata"]["resourceVersion"]
        .clone();
    let r = send(
        &server,
        "PATCH",
        &format!("{cms}/c"),
        "application/merge-patch+json",
        r#"{"data":{"a":"b"}}"#,
    )
    .await;
    assert_eq!(r.body["metadata"]["resourceVersion"], before);

    let r = send(
        &server,
        "GET",
        &format!("{cms}?labelSelector=a+in+(x"),
        "application/json",
        "",
    )
    .await;
    assert_eq!(
        (r.status, r.body["reason"].as_str()),
        (400, Some("BadRequest"))
    );
    let r = send(
        &server,
        "GET",
        &format!("{cms}?resourceVersionMatch=Exact"),
        "application/json",
        "",
    )
    .await;
    assert_eq!(r.status, 422);
}

#[tokio::test]
async fn discovery_documents_follow_the_accept_header() {
    let server = common::server_with_crds().await;
    let client = common::client(&server);
    let aggregated =
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json";
    let req = http::Request::get(format!("{}/apis", server.url()))
        .header("accept", aggregated)
        .body(kube::client::Body::empty())
        .unwrap();
    let resp = client.send(req).await.unwrap();
    assert_eq!(
        resp.headers()["content-type"],
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    );
    let bytes = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .unwrap()
        .to_bytes();
    let doc: Value = serde_json::from_slice(&bytes).unwrap();
    let istio = doc["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["metadata"]["name"] == "networking.istio.io")
        .unwrap();
    let versions: Vec<&str> = istio["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_str().unwrap())
        .collect();
    assert_eq!(versions[0], "v1", "preferred version first: {versions:?}");

    let legacy = send(&server, "GET", "/apis", "application/json", "").await;
    assert_eq!(legacy.body["kind"], "APIGroupList");
    let group = send(
        &server,
        "GET",
        "/apis/networking.istio.io",
        "application/json",
        "",
    )
    .await;
    assert_eq!(group.body["preferredVersion"]["version"], "v1");
    let openapi = send(&server, "GET", "/openapi/v3", "application/json", "").await;
    let url = openapi.body["paths"]["apis/appmesh.k8s.aws/v1beta2"]["serverRelativeURL"]
        .as_str()
        .unwrap()
        .to_string();
    let doc = send(&server, "GET", &url, "application/json", "").await;
    let patch = &doc.body["paths"]["/apis/appmesh.k8s.aws/v1beta2/namespaces/{namespace}/virtualnodes/{name}"]
        ["patch"];
    assert_eq!(
        patch["x-kubernetes-group-version-kind"]["kind"],
        "VirtualNode"
    );
    let version = send(&server, "GET", "/version", "application/json", "").await;
    assert_eq!(version.body["minor"], "32");
}

#[tokio::test]
async fn annotations_are_limited_to_256_kib() {
    let server = kubesim::Server::builder().start().await.unwrap();
    let big = "x".repeat(262_144);
    let body = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "big", "annotations": {"a": big}}});
    let r = send(
        &server,
        "POST",
        "/api/v1/namespaces/default/configmaps",
        "application/json",
        &body.to_string(),
    )
    .await;
    assert_eq!(
        (r.status, r.body["reason"].as_str()),
        (422, Some("Invalid"))
    );
    assert_eq!(
        r.body["details"]["causes"][0]["field"],
        "metadata.annotations"
    );
    let fits = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "big", "annotations": {"a": "x".repeat(262_143)}}});
    let r = send(
        &server,
        "POST",
        "/api/v1/namespaces/default/configmaps",
        "application/json",
        &fits.to_string(),
    )
    .await;
    assert_eq!(r.status, 201);
}

#[tokio::test]
async fn watches_follow_objects_in_and_out_of_a_label_selector() {
    let server = kubesim::Server::builder().start().await.unwrap();
    let client = common::client(&server);
    let api: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
        kube::Api::namespaced(client, "default");
    let rv = server.store().resource_version().to_string();
    let params = kube::api::WatchParams::default()
        .labels("sel=yes")
        .disable_bookmarks();
    let mut events = futures::StreamExt::boxed(api.watch(&params, &rv).await.unwrap());
    let cm: k8s_openapi::api::core::v1::ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "c", "labels": {"sel": "yes"}}}))
            .unwrap();
    api.create(&Default::default(), &cm).await.unwrap();
    let relabel = |v: &str| kube::api::Patch::Merge(json!({"metadata": {"labels": {"sel": v}}}));
    api.patch("c", &Default::default(), &relabel("no"))
        .await
        .unwrap();
    api.patch("c", &Default::default(), &relabel("no-still"))
        .await
        .unwrap();
    api.patch("c", &Default::default(), &relabel("yes"))
        .await
        .unwrap();
    let mut kinds = Vec::new();
    while kinds.len() < 3 {
        let ev = futures::TryStreamExt::try_next(&mut events)
            .await
            .unwrap()
            .unwrap();
        kinds.push(match ev {
            kube::api::WatchEvent::Added(_) => "ADDED",
            kube::api::WatchEvent::Modified(_) => "MODIFIED",
            kube::api::WatchEvent::Deleted(_) => "DELETED",
            other => panic!("unexpected {other:?}"),
        });
    }
    assert_eq!(kinds, ["ADDED", "DELETED", "ADDED"]);
}

#[tokio::test]
async fn apply_patches_are_read_as_json_or_yaml() {
    let server = kubesim::Server::builder().start().await.unwrap();
    let at = |name: &str| format!("/api/v1/namespaces/default/configmaps/{name}?fieldManager=m");
    let yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-yaml\ndata:\n  a: \"1\"\n  b: two\n";
    let json = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"from-json"},"data":{"a":"1"}}"#;
    for (name, body) in [("from-yaml", yaml), ("from-json", json)] {
        let r = send(
            &server,
            "PATCH",
            &at(name),
            "application/apply-patch+yaml",
            body,
        )
        .await;
        assert_eq!(r.status, 201, "{name}: {}", r.body);
        assert_eq!(r.body["data"]["a"], "1", "{name}");
        assert_eq!(r.body["metadata"]["managedFields"][0]["operation"], "Apply");
    }
    // Neither JSON nor YAML: the YAML parser's error, as the API server reports it.
    let r = send(
        &server,
        "PATCH",
        &at("x"),
        "application/apply-patch+yaml",
        "{a: [",
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    let message = r.body["message"].as_str().unwrap_or_default();
    assert!(message.starts_with("error decoding YAML: "), "{message}");
}
