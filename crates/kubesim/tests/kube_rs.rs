//! kube-rs 5 against kubesim: typed and dynamic APIs, discovery, patches, watchers.

mod common;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::discovery::{self, Discovery, Scope};
use kube::runtime::wait::{await_condition, conditions};
use kube::runtime::watcher;
use serde_json::{Value, json};

fn deployment(name: &str, replicas: i32, image: &str) -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": image}]}}}
    }))
    .expect("deployment literal")
}

fn api_error(e: kube::Error) -> kube::core::Status {
    match e {
        kube::Error::Api(s) => *s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn typed_api_crud_metadata_and_errors() {
    let server = kubesim::Server::builder().start().await.unwrap();
    let api: Api<Deployment> = Api::namespaced(common::client(&server), "default");

    let created = api
        .create(&PostParams::default(), &deployment("web", 2, "nginx:1.25"))
        .await
        .unwrap();
    let meta = &created.metadata;
    assert!(meta.uid.as_deref().is_some_and(|u| u.len() == 36));
    assert!(meta.creation_timestamp.is_some());
    assert_eq!(meta.generation, Some(1));
    let rv1: u64 = meta.resource_version.as_deref().unwrap().parse().unwrap();
    // Defaults a real apiserver fills in.
    let spec = created.spec.as_ref().unwrap();
    assert_eq!(spec.revision_history_limit, Some(10));
    assert_eq!(spec.progress_deadline_seconds, Some(600));
    let c = &spec.template.spec.as_ref().unwrap().containers[0];
    assert_eq!(c.image_pull_policy.as_deref(), Some("IfNotPresent"));

    let err = api_error(
        api.create(&PostParams::default(), &deployment("web", 1, "x"))
            .await
            .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (409, "AlreadyExists"));
    assert_eq!(err.message, "deployments.apps \"web\" already exists");

    assert!(api.get_opt("nope").await.unwrap().is_none());
    let err = api_error(api.get("nope").await.unwrap_err());
    assert_eq!(
        (err.code, err.reason.as_str(), err.message.as_str()),
        (404, "NotFound", "deployments.apps \"nope\" not found")
    );

    // A label change keeps the generation; a spec change bumps it.
    let labeled = api
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"tier": "fe"}}})),
        )
        .await
        .unwrap();
    assert_eq!(labeled.metadata.generation, Some(1));
    let rv2: u64 = labeled
        .metadata
        .resource_version
        .as_deref()
        .unwrap()
        .parse()
        .unwrap();
    assert!(rv2 > rv1);
    let scaled = api
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 3}})),
        )
        .await
        .unwrap();
    assert_eq!(scaled.metadata.generation, Some(2));

    // Optimistic locking on replace.
    let mut stale = created.clone();
    stale.spec.as_mut().unwrap().replicas = Some(7);
    let err = api_error(
        api.replace("web", &PostParams::default(), &stale)
            .await
            .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        err.message,
        "Operation cannot be fulfilled on deployments.apps \"web\": the object has been modified; please apply your changes to the latest version and try again"
    );

    let listed = api
        .list(&ListParams::default().labels("app in (web,api),tier"))
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);
    assert!(listed.metadata.resource_version.is_some());
    assert!(
        api.list(&ListParams::default().labels("!tier"))
            .await
            .unwrap()
            .items
            .is_empty()
    );

    let deleted = api.delete("web", &DeleteParams::default()).await.unwrap();
    let status = deleted
        .right()
        .expect("immediate deletion returns a Status");
    assert_eq!(status.details.as_ref().unwrap().kind, "deployments");
    assert!(api.get_opt("web").await.unwrap().is_none());
}

#[tokio::test]
async fn dry_run_and_preconditions_leave_state_alone() {
    let server = kubesim::Server::builder().start().await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(common::client(&server), "default");
    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "c"}, "data": {"k": "v"}})).unwrap();
    let pp = PostParams {
        dry_run: true,
        ..Default::default()
    };
    let would = api.create(&pp, &cm).await.unwrap();
    assert_eq!(would.data.unwrap()["k"], "v");
    assert!(api.get_opt("c").await.unwrap().is_none());

    let real = api.create(&PostParams::default(), &cm).await.unwrap();
    let rv = server.store().resource_version();
    api.delete("c", &DeleteParams::default().dry_run())
        .await
        .unwrap();
    api.patch(
        "c",
        &PatchParams::default().dry_run(),
        &Patch::Merge(json!({"data": {"k": "w"}})),
    )
    .await
    .unwrap();
    assert_eq!(server.store().resource_version(), rv);
    assert_eq!(api.get("c").await.unwrap().data.unwrap()["k"], "v");

    let dp = DeleteParams {
        preconditions: Some(kube::api::Preconditions {
            uid: Some("wrong".into()),
            resource_version: None,
        }),
        ..Default::default()
    };
    let err = api_error(api.delete("c", &dp).await.unwrap_err());
    assert_eq!(err.code, 409);
    assert_eq!(real.metadata.name.as_deref(), Some("c"));
    assert!(api.get_opt("c").await.unwrap().is_some());
}

#[tokio::test]
async fn server_side_apply_conflicts_force_and_release() {
    let server = kubesim::Server::builder().start().await.unwrap();
    let api: Api<Deployment> = Api::namespaced(common::client(&server), "default");

    let first = api
        .patch(
            "web",
            &PatchParams::apply("a"),
            &Patch::Apply(deployment("web", 3, "nginx")),
        )
        .await
        .unwrap();
    assert_eq!(first.spec.unwrap().replicas, Some(3));

    // Same value from another manager: shared, no conflict.
    api.patch("web", &PatchParams::apply("b"), &Patch::Apply(json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 3}})))
        .await
        .unwrap();

    let err = api_error(
        api.patch("web", &PatchParams::apply("c"), &Patch::Apply(json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 5}})))
            .await
            .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (409, "Conflict"));
    assert!(
        err.message
            .starts_with("Apply failed with 2 conflicts: conflicts with \"a\":\n- .spec.replicas"),
        "{}",
        err.message
    );
    let causes = &err.details.as_ref().unwrap().causes;
    assert!(
        causes
            .iter()
            .all(|c| c.field == ".spec.replicas" && c.reason == "FieldManagerConflict")
    );

    let forced = api
        .patch("web", &PatchParams::apply("c").force(), &Patch::Apply(json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 5}})))
        .await
        .unwrap();
    assert_eq!(forced.spec.as_ref().unwrap().replicas, Some(5));
    let managed = forced.metadata.managed_fields.unwrap();
    let owns_replicas = |m: &str| {
        managed
            .iter()
            .find(|e| e.manager.as_deref() == Some(m))
            .is_some_and(|e| {
                e.fields_v1
                    .as_ref()
                    .is_some_and(|f| f.0["f:spec"].get("f:replicas").is_some())
            })
    };
    assert!(!owns_replicas("a") && !owns_replicas("b") && owns_replicas("c"));
    assert!(
        managed
            .iter()
            .all(|e| e.operation.as_deref() == Some("Apply"))
    );

    // Labels a manager stops applying are removed unless someone else owns them.
    let labels = |l: Value| json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "labels": l}});
    api.patch(
        "web",
        &PatchParams::apply("l"),
        &Patch::Apply(labels(json!({"x": "1", "y": "2", "z": "3"}))),
    )
    .await
    .unwrap();
    api.patch(
        "web",
        &PatchParams::apply("m"),
        &Patch::Apply(labels(json!({"z": "3"}))),
    )
    .await
    .unwrap();
    let after = api
        .patch(
            "web",
            &PatchParams::apply("l"),
            &Patch::Apply(labels(json!({"x": "1"}))),
        )
        .await
        .unwrap();
    let l = after.metadata.labels.unwrap();
    assert!(
        l.contains_key("x") && !l.contains_key("y") && l.contains_key("z"),
        "{l:?}"
    );
}

#[tokio::test]
async fn apply_without_field_manager_is_invalid_and_creates_with_201() {
    let server = kubesim::Server::builder().start().await.unwrap();
    let client = common::client(&server);
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}});
    let err = api_error(
        api.patch("c", &PatchParams::default(), &Patch::Apply(cm.clone()))
            .await
            .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (422, "Invalid"));
    assert!(
        err.message.contains("fieldManager: Required value"),
        "{}",
        err.message
    );

    let req = http::Request::patch(format!(
        "{}/api/v1/namespaces/default/configmaps/c?fieldManager=m",
        server.url()
    ))
    .header("content-type", "application/apply-patch+yaml")
    .body(cm.to_string().into_bytes())
    .unwrap();
    let resp = client
        .send(req.map(kube::client::Body::from))
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
}

#[tokio::test]
async fn patch_types_json_strategic_and_415_for_custom_resources() {
    let server = common::server_with_crds().await;
    let client = common::client(&server);
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let mut d = deployment("web", 1, "nginx:1.25");
    d.spec
        .as_mut()
        .unwrap()
        .template
        .spec
        .as_mut()
        .unwrap()
        .containers
        .push(serde_json::from_value(json!({"name": "side", "image": "busybox"})).unwrap());
    deploys.create(&PostParams::default(), &d).await.unwrap();

    let smp = json!({"spec": {"template": {"spec": {"$setElementOrder/containers": [{"name": "app"}, {"name": "side"}],
        "containers": [{"name": "app", "image": "nginx:1.26"}]}}}});
    let patched = deploys
        .patch("web", &PatchParams::default(), &Patch::Strategic(smp))
        .await
        .unwrap();
    let cs = patched.spec.unwrap().template.spec.unwrap().containers;
    assert_eq!(
        cs.iter()
            .map(|c| (c.name.as_str(), c.image.as_deref().unwrap()))
            .collect::<Vec<_>>(),
        [("app", "nginx:1.26"), ("side", "busybox")]
    );

    let ops: json_patch::Patch =
        serde_json::from_value(json!([{"op": "test", "path": "/spec/replicas", "value": 9}]))
            .unwrap();
    let err = api_error(
        deploys
            .patch("web", &PatchParams::default(), &Patch::Json::<()>(ops))
            .await
            .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (422, "Invalid"));
    let ops: json_patch::Patch =
        serde_json::from_value(json!([{"op": "replace", "path": "/spec/replicas", "value": 4}]))
            .unwrap();
    let ok = deploys
        .patch("web", &PatchParams::default(), &Patch::Json::<()>(ops))
        .await
        .unwrap();
    assert_eq!(ok.spec.unwrap().replicas, Some(4));

    let gvk = GroupVersionKind::gvk("appmesh.k8s.aws", "v1beta2", "Mesh");
    let ar = ApiResource::from_gvk_with_plural(&gvk, "meshes");
    let meshes: Api<DynamicObject> = Api::all_with(client, &ar);
    let mesh: DynamicObject = serde_json::from_value(json!({"apiVersion": "appmesh.k8s.aws/v1beta2", "kind": "Mesh", "metadata": {"name": "m"}, "spec": {}})).unwrap();
    meshes.create(&PostParams::default(), &mesh).await.unwrap();
    let err = api_error(
        meshes
            .patch(
                "m",
                &PatchParams::default(),
                &Patch::Strategic(json!({"spec": {}})),
            )
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (err.code, err.reason.as_str()),
        (415, "UnsupportedMediaType")
    );

    // Custom resources refuse unconditional updates.
    let mut current = meshes.get("m").await.unwrap();
    current.metadata.resource_version = None;
    let err = api_error(
        meshes
            .replace("m", &PostParams::default(), &current)
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code, 422);
    assert!(
        err.message.ends_with(
            "metadata.resourceVersion: Invalid value: 0: must be specified for an update"
        ),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn crds_created_through_the_api_are_discovered_and_served() {
    let server = kubesim::Server::builder().start().await.unwrap();
    let client = common::client(&server);
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for f in common::appmesh_crd_files() {
        let text = std::fs::read_to_string(&f).unwrap();
        let crd: CustomResourceDefinition = serde_saphyr::from_str(&text).unwrap();
        crds.create(&PostParams::default(), &crd).await.unwrap();
    }
    let established = await_condition(
        crds.clone(),
        "virtualnodes.appmesh.k8s.aws",
        conditions::is_crd_established(),
    );
    established.await.unwrap();

    let disc = Discovery::new(client.clone())
        .run_aggregated()
        .await
        .unwrap();
    let gvk = GroupVersionKind::gvk("appmesh.k8s.aws", "v1beta2", "VirtualNode");
    let (ar, caps) = disc
        .resolve_gvk(&gvk)
        .expect("VirtualNode discovered (aggregated)");
    assert_eq!(ar.plural, "virtualnodes");
    assert_eq!(caps.scope, Scope::Namespaced);
    assert!(
        caps.subresources
            .iter()
            .any(|(sub, _)| sub.plural == "virtualnodes/status" || sub.plural == "status")
    );

    let legacy = Discovery::new(client.clone()).run().await.unwrap();
    let (dar, _) = legacy
        .resolve_gvk(&GroupVersionKind::gvk("apps", "v1", "Deployment"))
        .expect("legacy discovery");
    assert_eq!(dar.plural, "deployments");
    let (mar, mcaps) = discovery::pinned_kind(
        &client,
        &GroupVersionKind::gvk("appmesh.k8s.aws", "v1beta2", "Mesh"),
    )
    .await
    .unwrap();
    assert_eq!(
        (mar.plural.as_str(), mcaps.scope),
        ("meshes", Scope::Cluster)
    );

    let vns: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &ar);
    let vn: DynamicObject = serde_json::from_value(
        json!({"apiVersion": "appmesh.k8s.aws/v1beta2", "kind": "VirtualNode",
        "metadata": {"name": "red"}, "spec": {"podSelector": {"matchLabels": {"app": "red"}},
        "listeners": [{"portMapping": {"port": 8080, "protocol": "http"}}]}}),
    )
    .unwrap();
    let created = vns.create(&PostParams::default(), &vn).await.unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    assert_eq!(
        vns.get("red").await.unwrap().data["spec"]["listeners"][0]["portMapping"]["port"],
        8080
    );

    // Schema validation: wrong type and enum.
    let bad: DynamicObject = serde_json::from_value(json!({"apiVersion": "appmesh.k8s.aws/v1beta2", "kind": "VirtualNode",
        "metadata": {"name": "bad"}, "spec": {"listeners": [{"portMapping": {"port": "x", "protocol": "carrier-pigeon"}}]}})).unwrap();
    let err = api_error(vns.create(&PostParams::default(), &bad).await.unwrap_err());
    assert_eq!((err.code, err.reason.as_str()), (422, "Invalid"));
    let fields: Vec<String> = err
        .details
        .unwrap()
        .causes
        .into_iter()
        .map(|c| c.field)
        .collect();
    assert!(
        fields.contains(&"spec.listeners[0].portMapping.port".to_string()),
        "{fields:?}"
    );
    assert!(
        fields.contains(&"spec.listeners[0].portMapping.protocol".to_string()),
        "{fields:?}"
    );
}

#[tokio::test]
async fn watcher_sees_added_modified_deleted_in_order() {
    let server = kubesim::Server::builder().start().await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(common::client(&server), "default");
    let pre: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "pre", "labels": {"w": "yes"}}}))
            .unwrap();
    api.create(&PostParams::default(), &pre).await.unwrap();

    let mut events = watcher(api.clone(), watcher::Config::default().labels("w=yes")).boxed();
    // Initial listing: Init, InitApply(pre), InitDone.
    let mut initial = Vec::new();
    loop {
        match events.try_next().await.unwrap().unwrap() {
            watcher::Event::Init => {}
            watcher::Event::InitApply(o) => initial.push(o.metadata.name.unwrap()),
            watcher::Event::InitDone => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(initial, ["pre"]);

    let cm: ConfigMap = serde_json::from_value(
        json!({"metadata": {"name": "live", "labels": {"w": "yes"}}, "data": {"a": "1"}}),
    )
    .unwrap();
    api.create(&PostParams::default(), &cm).await.unwrap();
    api.patch(
        "live",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"a": "2"}})),
    )
    .await
    .unwrap();
    api.delete("live", &DeleteParams::default()).await.unwrap();
    let mut seen = Vec::new();
    while seen.len() < 3 {
        match events.try_next().await.unwrap().unwrap() {
            watcher::Event::Apply(o) => seen.push(format!(
                "apply:{}",
                o.data
                    .unwrap_or_default()
                    .get("a")
                    .cloned()
                    .unwrap_or_default()
            )),
            watcher::Event::Delete(o) => seen.push(format!("delete:{}", o.metadata.name.unwrap())),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(seen, ["apply:1", "apply:2", "delete:live"]);
}

#[tokio::test]
async fn streaming_list_watcher_gets_initial_events_end_bookmark() {
    let server = kubesim::Server::builder().start().await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(common::client(&server), "default");
    for n in ["a", "b"] {
        let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": n}})).unwrap();
        api.create(&PostParams::default(), &cm).await.unwrap();
    }
    let mut events = watcher(api, watcher::Config::default().streaming_lists()).boxed();
    let mut names = Vec::new();
    loop {
        match events.try_next().await.unwrap().unwrap() {
            watcher::Event::Init => {}
            watcher::Event::InitApply(o) => names.push(o.metadata.name.unwrap()),
            watcher::Event::InitDone => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(names, ["a", "b"]);
}

#[tokio::test]
async fn expired_resource_version_is_a_410_error_event() {
    let server = kubesim::Server::builder().start().await.unwrap();
    let client = common::client(&server);
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "x"}})).unwrap();
    api.create(&PostParams::default(), &cm).await.unwrap();
    let old = server.store().resource_version() - 1;
    server.store().compact();
    let stream = api
        .watch(&kube::api::WatchParams::default(), &old.to_string())
        .await
        .unwrap();
    let first = stream.boxed().try_next().await.unwrap().unwrap();
    match first {
        kube::api::WatchEvent::Error(e) => {
            assert_eq!((e.code, e.reason.as_str()), (410, "Expired"))
        }
        other => panic!("expected an ERROR event, got {other:?}"),
    }
}

#[tokio::test]
async fn finalizers_hold_deletion_and_namespaces_delete_their_contents() {
    let server = kubesim::Server::builder().start().await.unwrap();
    let client = common::client(&server);
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "doomed"}})).unwrap();
    let ns = namespaces
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    assert_eq!(
        ns.metadata.labels.unwrap()["kubernetes.io/metadata.name"],
        "doomed"
    );
    assert_eq!(ns.status.unwrap().phase.as_deref(), Some("Active"));

    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "doomed");
    let held: ConfigMap = serde_json::from_value(
        json!({"metadata": {"name": "held", "finalizers": ["example.com/hold"]}}),
    )
    .unwrap();
    cms.create(&PostParams::default(), &held).await.unwrap();
    let plain: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "plain"}})).unwrap();
    cms.create(&PostParams::default(), &plain).await.unwrap();

    let pending = cms
        .delete("held", &DeleteParams::default())
        .await
        .unwrap()
        .left()
        .expect("object while finalizers pend");
    assert!(pending.metadata.deletion_timestamp.is_some());
    let err = api_error(
        cms.patch(
            "held",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": ["example.com/hold", "new"]}})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(err.code, 422);

    let uid = ns.metadata.uid.clone().unwrap();
    namespaces
        .delete("doomed", &DeleteParams::default())
        .await
        .unwrap();
    let late: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "late"}})).unwrap();
    let err = api_error(cms.create(&PostParams::default(), &late).await.unwrap_err());
    assert_eq!((err.code, err.reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        err.message,
        "configmaps \"late\" is forbidden: unable to create new content in namespace doomed because it is being terminated"
    );

    // The plain object goes; the held one waits for its finalizer.
    await_condition(cms.clone(), "plain", conditions::is_deleted(""))
        .await
        .unwrap();
    assert!(namespaces.get_opt("doomed").await.unwrap().is_some());
    cms.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    await_condition(namespaces.clone(), "doomed", conditions::is_deleted(&uid))
        .await
        .unwrap();
    assert!(cms.get_opt("held").await.unwrap().is_none());
}

#[tokio::test]
async fn owner_deletion_cascades_in_background() {
    let server = kubesim::Server::builder().start().await.unwrap();
    let client = common::client(&server);
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let owner = cms
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "owner"}})).unwrap(),
        )
        .await
        .unwrap();
    let uid = owner.metadata.uid.unwrap();
    for n in ["d1", "d2"] {
        let dep: ConfigMap = serde_json::from_value(json!({"metadata": {"name": n,
            "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": uid}]}})).unwrap();
        cms.create(&PostParams::default(), &dep).await.unwrap();
    }
    let orphan: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "kept",
        "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "other", "uid": "u-other"}]}})).unwrap();
    cms.create(&PostParams::default(), &orphan).await.unwrap();
    cms.delete("owner", &DeleteParams::background())
        .await
        .unwrap();
    await_condition(cms.clone(), "d1", conditions::is_deleted(""))
        .await
        .unwrap();
    await_condition(cms.clone(), "d2", conditions::is_deleted(""))
        .await
        .unwrap();
    assert!(cms.get_opt("kept").await.unwrap().is_some());
}

#[tokio::test]
async fn orphan_propagation_strips_owner_references() {
    let server = kubesim::Server::builder().start().await.unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(common::client(&server), "default");
    let owner = cms
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "owner"}})).unwrap(),
        )
        .await
        .unwrap();
    let dep: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "dep",
        "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.metadata.uid.unwrap()}]}})).unwrap();
    cms.create(&PostParams::default(), &dep).await.unwrap();
    cms.delete("owner", &DeleteParams::orphan()).await.unwrap();
    let kept = cms.get("dep").await.unwrap();
    assert!(kept.metadata.owner_references.is_none());
}

#[tokio::test]
async fn injected_faults_surface_and_requests_are_counted() {
    let server = kubesim::Server::builder().start().await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(common::client_without_retry(&server), "default");
    server.faults().add(kubesim::Rule {
        verb: Some("get".into()),
        resource: Some("configmaps".into()),
        nth: Some(1),
        action: Some(kubesim::Action::Status {
            code: 503,
            retry_after: None,
        }),
        ..Default::default()
    });
    let err = api_error(api.get("x").await.unwrap_err());
    assert_eq!((err.code, err.reason.as_str()), (503, "ServiceUnavailable"));
    let err = api_error(api.get("x").await.unwrap_err());
    assert_eq!(err.code, 404);
    assert_eq!(server.faults().count("get", "configmaps"), 2);

    // kube-rs' default client retries a bounded number of 429s and then succeeds.
    let retrying: Api<ConfigMap> = Api::namespaced(common::client(&server), "default");
    server.faults().add(kubesim::Rule {
        verb: Some("list".into()),
        times: Some(2),
        action: Some(kubesim::Action::Status {
            code: 429,
            retry_after: None,
        }),
        ..Default::default()
    });
    assert!(
        retrying
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert_eq!(server.faults().count("list", "configmaps"), 3);
}

#[tokio::test]
async fn bearer_token_is_enforced() {
    let server = kubesim::Server::builder()
        .token("s3cret")
        .start()
        .await
        .unwrap();
    let api: Api<ConfigMap> = Api::namespaced(common::client_without_retry(&server), "default");
    let err = api_error(api.list(&ListParams::default()).await.unwrap_err());
    assert_eq!((err.code, err.reason.as_str()), (401, "Unauthorized"));

    let kubeconfig: kube::config::Kubeconfig =
        serde_saphyr::from_str(&server.kubeconfig_yaml()).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    let api: Api<ConfigMap> = Api::namespaced(kube::Client::try_from(config).unwrap(), "default");
    assert!(
        api.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

#[tokio::test]
async fn manifests_load_crds_first_and_list_pages_follow_continue() {
    let server = common::server_with_crds().await;
    let text = std::fs::read_to_string(common::example("howto-k8s-http2/manifest.yaml")).unwrap();
    let n = server.load_yaml("manifest.yaml", &text).unwrap();
    assert!(n > 10);
    let client = common::client(&server);
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), "howto-k8s-http2");
    let all = deploys.list(&ListParams::default()).await.unwrap();
    let page = deploys.list(&ListParams::default().limit(2)).await.unwrap();
    assert_eq!(page.items.len(), 2);
    let token = page.metadata.continue_.clone().expect("continue token");
    let rest = deploys
        .list(&ListParams::default().limit(100).continue_token(&token))
        .await
        .unwrap();
    assert_eq!(page.items.len() + rest.items.len(), all.items.len());
    assert!(
        rest.metadata
            .continue_
            .as_deref()
            .unwrap_or_default()
            .is_empty()
    );

    let by_name = deploys
        .list(&ListParams::default().fields("metadata.name=red"))
        .await
        .unwrap();
    assert_eq!(by_name.items.len(), 1);
    let err = api_error(
        deploys
            .list(&ListParams::default().fields("spec.foo=x"))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (err.code, err.message.as_str()),
        (400, "field label not supported: spec.foo")
    );
}

#[tokio::test]
async fn await_condition_sees_a_completed_deployment_and_controllers_can_be_switched_off() {
    let server = kubesim::Server::builder()
        .rollout_delay(std::time::Duration::from_millis(10))
        .start()
        .await
        .unwrap();
    let api: Api<Deployment> = Api::namespaced(common::client(&server), "default");
    api.create(&PostParams::default(), &deployment("web", 3, "nginx:1.25"))
        .await
        .unwrap();
    let done = await_condition(api.clone(), "web", conditions::is_deployment_completed())
        .await
        .unwrap()
        .unwrap();
    let status = done.status.unwrap();
    assert_eq!(
        (
            status.replicas,
            status.updated_replicas,
            status.available_replicas
        ),
        (Some(3), Some(3), Some(3))
    );
    assert_eq!(status.observed_generation, done.metadata.generation);
    // The ReplicaSet was created at its count, as the real controller creates one: its spec was
    // never written again (a spec write would have made its generation 2).
    let sets: Api<k8s_openapi::api::apps::v1::ReplicaSet> =
        Api::namespaced(common::client(&server), "default");
    let sets = sets.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(sets.len(), 1);
    assert_eq!(sets[0].spec.as_ref().and_then(|s| s.replicas), Some(3));
    assert_eq!(sets[0].metadata.generation, Some(1));
    assert_eq!(
        sets[0].status.as_ref().and_then(|s| s.observed_generation),
        Some(1)
    );

    let off = kubesim::Server::builder()
        .deployment_controller(false)
        .start()
        .await
        .unwrap();
    let api: Api<Deployment> = Api::namespaced(common::client(&off), "default");
    let created = api
        .create(&PostParams::default(), &deployment("web", 1, "nginx"))
        .await
        .unwrap();
    let pods: Api<k8s_openapi::api::core::v1::Pod> =
        Api::namespaced(common::client(&off), "default");
    assert!(
        pods.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(created.status.unwrap().observed_generation.is_none());
}

fn widget_crd(status_subresource: bool, deprecated: bool) -> CustomResourceDefinition {
    let mut v = json!({"name": "v1", "served": true, "storage": true,
        "schema": {"openAPIV3Schema": {"type": "object", "properties": {
            "spec": {"type": "object", "properties": {"size": {"type": "integer"}}},
            "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}}}}}});
    if status_subresource {
        v["subresources"] = json!({"status": {}});
    }
    if deprecated {
        v["deprecated"] = json!(true);
        v["deprecationWarning"] = json!("example.com/v1 Widget is going away");
    }
    serde_json::from_value(json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "versions": [v]}}))
    .unwrap()
}

async fn widgets(server: &kubesim::RunningServer, status_subresource: bool) -> Api<DynamicObject> {
    let client = common::client(server);
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.create(
        &PostParams::default(),
        &widget_crd(status_subresource, false),
    )
    .await
    .unwrap();
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("example.com", "v1", "Widget"),
        "widgets",
    );
    Api::namespaced_with(client, "default", &ar)
}

fn widget(size: i64) -> DynamicObject {
    serde_json::from_value(json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": size}})).unwrap()
}

#[tokio::test]
async fn status_subresource_separates_spec_and_status_writes() {
    let server = kubesim::Server::builder().start().await.unwrap();
    let api = widgets(&server, true).await;
    let mut w = widget(1);
    w.data["status"] = json!({"ready": true});
    let created = api.create(&PostParams::default(), &w).await.unwrap();
    assert!(
        created.data.get("status").is_none(),
        "status is dropped on create"
    );

    let s = api
        .patch_status(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"ready": true}, "spec": {"size": 9}})),
        )
        .await
        .unwrap();
    assert_eq!(
        (
            s.data["status"]["ready"].clone(),
            s.data["spec"]["size"].clone()
        ),
        (json!(true), json!(1))
    );
    assert_eq!(s.metadata.generation, Some(1));

    let m = api
        .patch(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"ready": false}, "spec": {"size": 2}})),
        )
        .await
        .unwrap();
    assert_eq!(
        (
            m.data["status"]["ready"].clone(),
            m.data["spec"]["size"].clone()
        ),
        (json!(true), json!(2))
    );
    assert_eq!(m.metadata.generation, Some(2));

    // Apply of a field the schema does not declare fails like structured-merge-diff does.
    let err = api_error(
        api.patch(
            "w",
            &PatchParams::apply("m"),
            &Patch::Apply(json!({"apiVersion": "example.com/v1", "kind": "Widget",
            "metadata": {"name": "w"}, "spec": {"colour": "red"}})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(err.code, 500);
    assert!(
        err.message
            .ends_with(".spec.colour: field not declared in schema"),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn without_status_subresource_status_changes_bump_generation() {
    let server = kubesim::Server::builder().start().await.unwrap();
    let api = widgets(&server, false).await;
    api.create(&PostParams::default(), &widget(1))
        .await
        .unwrap();
    let m = api
        .patch(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"ready": true}})),
        )
        .await
        .unwrap();
    assert_eq!(m.data["status"]["ready"], true);
    assert_eq!(m.metadata.generation, Some(2));
    let l = api
        .patch(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"a": "b"}}})),
        )
        .await
        .unwrap();
    assert_eq!(l.metadata.generation, Some(2));
}

#[tokio::test]
async fn metadata_only_and_scale_views() {
    let server = kubesim::Server::builder()
        .deployment_controller(false)
        .start()
        .await
        .unwrap();
    let api: Api<Deployment> = Api::namespaced(common::client(&server), "default");
    api.create(&PostParams::default(), &deployment("web", 2, "nginx"))
        .await
        .unwrap();
    let meta = api.get_metadata("web").await.unwrap();
    assert_eq!(meta.metadata.labels.unwrap()["app"], "web");
    let list = api.list_metadata(&ListParams::default()).await.unwrap();
    assert_eq!(list.items.len(), 1);

    let scale = api.get_scale("web").await.unwrap();
    assert_eq!(scale.spec.unwrap().replicas, Some(2));
    let scaled = api
        .patch_scale(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 4}})),
        )
        .await
        .unwrap();
    assert_eq!(scaled.spec.unwrap().replicas, Some(4));
    assert_eq!(
        api.get("web").await.unwrap().spec.unwrap().replicas,
        Some(4)
    );
}

#[tokio::test]
async fn foreground_deletion_waits_for_dependents() {
    let server = kubesim::Server::builder().start().await.unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(common::client(&server), "default");
    let owner = cms
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "owner"}})).unwrap(),
        )
        .await
        .unwrap();
    let uid = owner.metadata.uid.clone().unwrap();
    let dep: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "dep", "finalizers": ["example.com/hold"],
        "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": uid, "blockOwnerDeletion": true}]}})).unwrap();
    cms.create(&PostParams::default(), &dep).await.unwrap();
    let pending = cms
        .delete("owner", &DeleteParams::foreground())
        .await
        .unwrap()
        .left()
        .expect("owner waits");
    assert!(
        pending
            .metadata
            .finalizers
            .unwrap()
            .contains(&"foregroundDeletion".to_string())
    );
    // The dependent is being deleted but held by its own finalizer; the owner stays.
    let dep_now = await_condition(cms.clone(), "dep", |o: Option<&ConfigMap>| {
        o.is_some_and(|o| o.metadata.deletion_timestamp.is_some())
    })
    .await
    .unwrap();
    assert!(dep_now.is_some());
    assert!(cms.get_opt("owner").await.unwrap().is_some());
    cms.patch(
        "dep",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    await_condition(cms.clone(), "owner", conditions::is_deleted(&uid))
        .await
        .unwrap();
}

#[tokio::test]
async fn shutdown_ends_open_watches() {
    let server = kubesim::Server::builder().start().await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(common::client(&server), "default");
    let mut stream = api
        .watch(&kube::api::WatchParams::default(), "0")
        .await
        .unwrap()
        .boxed();
    server.shutdown().await;
    while let Ok(Some(_)) = stream.try_next().await {}
}

#[tokio::test]
async fn throttling_latency_and_dropped_connections() {
    let server = kubesim::Server::builder().start().await.unwrap();
    let plain: Api<ConfigMap> = Api::namespaced(common::client_without_retry(&server), "default");
    server.faults().add(kubesim::Rule {
        verb: Some("list".into()),
        times: Some(1),
        action: Some(kubesim::Action::Throttle { retry_after: 1 }),
        ..Default::default()
    });
    // The priority-and-fairness form is plain text, which kube-rs reports as an unparsed 429.
    let err = api_error(plain.list(&ListParams::default()).await.unwrap_err());
    assert_eq!(err.code, 429);
    assert!(
        err.message
            .starts_with("Too many requests, please try again later."),
        "{}",
        err.message
    );

    server.faults().add(kubesim::Rule {
        verb: Some("get".into()),
        name: Some("slow".into()),
        action: Some(kubesim::Action::Latency { millis: 5 }),
        ..Default::default()
    });
    assert!(plain.get_opt("slow").await.unwrap().is_none());

    server.faults().add(kubesim::Rule {
        verb: Some("get".into()),
        name: Some("drop".into()),
        action: Some(kubesim::Action::Drop),
        ..Default::default()
    });
    match plain.get("drop").await.unwrap_err() {
        kube::Error::Api(s) => panic!("expected a transport error, got a Status {s:?}"),
        _other => {}
    }
    server.faults().clear();
    assert!(plain.get_opt("drop").await.unwrap().is_none());
}

#[tokio::test]
async fn bare_pods_start_and_get_sidecars_in_injected_namespaces() {
    let server = kubesim::Server::builder()
        .rollout_delay(std::time::Duration::from_millis(5))
        .start()
        .await
        .unwrap();
    let client = common::client(&server);
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(
        json!({"metadata": {"name": "mesh", "labels": {"istio.io/rev": "default"}}}),
    )
    .unwrap();
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(client, "mesh");
    let pod = serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "app", "image": "nginx"}]}})).unwrap();
    let created = pods.create(&PostParams::default(), &pod).await.unwrap();
    assert_eq!(created.status.unwrap().phase.as_deref(), Some("Pending"));
    let names: Vec<String> = created
        .spec
        .unwrap()
        .containers
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(names, ["app", "istio-proxy"]);
    let running = await_condition(
        pods.clone(),
        "p",
        |p: Option<&k8s_openapi::api::core::v1::Pod>| {
            p.and_then(|p| p.status.as_ref()?.phase.as_deref()) == Some("Running")
        },
    )
    .await
    .unwrap()
    .unwrap();
    assert!(running.status.unwrap().pod_ip.is_some());

    let off = kubesim::Server::builder()
        .sidecar_injection(false)
        .start()
        .await
        .unwrap();
    let namespaces: Api<Namespace> = Api::all(common::client(&off));
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(common::client(&off), "mesh");
    let created = pods.create(&PostParams::default(), &pod).await.unwrap();
    assert_eq!(created.spec.unwrap().containers.len(), 1);
}

#[tokio::test]
async fn other_builtin_kinds_are_served_with_their_rules() {
    use k8s_openapi::api::batch::v1::{CronJob, Job};
    use k8s_openapi::api::coordination::v1::Lease;
    use k8s_openapi::api::core::v1::{Event, Secret, Service};
    let server = kubesim::Server::builder().start().await.unwrap();
    let client = common::client(&server);

    let leases: Api<Lease> = Api::namespaced(client.clone(), "default");
    let lease = leases
        .create(
            &PostParams::default(),
            &serde_json::from_value(
                json!({"metadata": {"name": "lock"}, "spec": {"holderIdentity": "a"}}),
            )
            .unwrap(),
        )
        .await
        .unwrap();
    let mut unconditional = lease.clone();
    unconditional.metadata.resource_version = None;
    assert_eq!(
        api_error(
            leases
                .replace("lock", &PostParams::default(), &unconditional)
                .await
                .unwrap_err()
        )
        .code,
        422
    );
    let mut next = lease;
    next.spec.as_mut().unwrap().holder_identity = Some("b".into());
    assert_eq!(
        leases
            .replace("lock", &PostParams::default(), &next)
            .await
            .unwrap()
            .spec
            .unwrap()
            .holder_identity
            .as_deref(),
        Some("b")
    );

    let pod_template = json!({"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}});
    let jobs: Api<Job> = Api::namespaced(client.clone(), "default");
    let job = jobs
        .create(
            &PostParams::default(),
            &serde_json::from_value(
                json!({"metadata": {"name": "j"}, "spec": {"template": pod_template}}),
            )
            .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(job.metadata.generation, Some(1));
    let cronjobs: Api<CronJob> = Api::namespaced(client.clone(), "default");
    cronjobs
        .create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "cj"}, "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": pod_template}}}})).unwrap())
        .await
        .unwrap();

    let events: Api<Event> = Api::namespaced(client.clone(), "default");
    events
        .create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "e"}, "involvedObject": {"kind": "Job", "name": "j"}, "reason": "Tested"})).unwrap())
        .await
        .unwrap();
    assert_eq!(
        events
            .list(&ListParams::default().fields("reason=Tested"))
            .await
            .unwrap()
            .items
            .len(),
        1
    );

    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    let s = secrets
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "s"}, "stringData": {"k": "v"}}))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(s.data.unwrap()["k"].0, b"v");
    assert!(s.string_data.is_none());
    assert_eq!(s.type_.as_deref(), Some("Opaque"));

    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    let svc = services.create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "web"}, "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}})).unwrap()).await.unwrap();
    let spec = svc.spec.unwrap();
    assert_eq!(spec.type_.as_deref(), Some("ClusterIP"));
    assert!(spec.cluster_ip.unwrap().starts_with("10."));
    let port = &spec.ports.unwrap()[0];
    assert_eq!(
        (port.protocol.as_deref(), port.target_port.clone()),
        (
            Some("TCP"),
            Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(80))
        )
    );

    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    for (n, tier) in [("a", "x"), ("b", "x"), ("c", "y")] {
        cms.create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": n, "labels": {"tier": tier}}}))
                .unwrap(),
        )
        .await
        .unwrap();
    }
    cms.delete_collection(
        &DeleteParams::default(),
        &ListParams::default().labels("tier=x"),
    )
    .await
    .unwrap();
    let left: Vec<String> = cms
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|c| c.metadata.name.unwrap())
        .collect();
    assert_eq!(left, ["c"]);
}

#[tokio::test]
async fn watches_that_allow_bookmarks_receive_them_with_the_latest_resource_version() {
    let server = kubesim::Server::builder()
        .bookmark_interval(std::time::Duration::from_millis(20))
        .start()
        .await
        .unwrap();
    let api: Api<ConfigMap> = Api::namespaced(common::client(&server), "default");
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "x"}})).unwrap();
    let rv = server.store().resource_version().to_string();
    let mut stream = api
        .watch(&kube::api::WatchParams::default(), &rv)
        .await
        .unwrap()
        .boxed();
    api.create(&PostParams::default(), &cm).await.unwrap();
    let now = server.store().resource_version().to_string();
    let mut saw_added = false;
    loop {
        match stream.try_next().await.unwrap().unwrap() {
            kube::api::WatchEvent::Added(o) => saw_added = o.metadata.name.as_deref() == Some("x"),
            kube::api::WatchEvent::Bookmark(b) if saw_added => {
                assert_eq!(b.metadata.resource_version, now);
                break;
            }
            kube::api::WatchEvent::Bookmark(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    // Without allowWatchBookmarks no bookmark is sent: the next event is the deletion.
    let mut plain = api
        .watch(&kube::api::WatchParams::default().disable_bookmarks(), &now)
        .await
        .unwrap()
        .boxed();
    api.delete("x", &DeleteParams::default()).await.unwrap();
    assert!(matches!(
        plain.try_next().await.unwrap().unwrap(),
        kube::api::WatchEvent::Deleted(_)
    ));
}

#[tokio::test]
async fn cel_validation_rules_of_crds_are_enforced() {
    let server = common::server_with_crds().await;
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("security.istio.io", "v1", "AuthorizationPolicy"),
        "authorizationpolicies",
    );
    let api: Api<DynamicObject> = Api::namespaced_with(common::client(&server), "default", &ar);
    let policy = |app: &str| -> DynamicObject {
        serde_json::from_value(json!({"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
            "metadata": {"name": "ap"}, "spec": {"action": "ALLOW", "selector": {"matchLabels": {"app": app}}}}))
        .unwrap()
    };
    let err = api_error(
        api.create(&PostParams::default(), &policy("*"))
            .await
            .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (422, "Invalid"));
    assert_eq!(
        err.message,
        "AuthorizationPolicy.security.istio.io \"ap\" is invalid: spec.selector.matchLabels.app: Invalid value: \"string\": wildcard not allowed in label value match"
    );
    assert_eq!(
        err.details.unwrap().causes[0].field,
        "spec.selector.matchLabels.app"
    );
    api.create(&PostParams::default(), &policy("web"))
        .await
        .unwrap();
}
