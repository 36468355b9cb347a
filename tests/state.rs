//! The cluster state backend against kubesim over HTTP: a ConfigMap written with resourceVersion
//! preconditions, and a Lease that names its holder, expires, and is released.

use meshplan::state::{Holder, LEASE_SECONDS, LockError, StateError, Store};

async fn server() -> (kubesim::RunningServer, kube::Client) {
    let server = kubesim::Server::builder().start().await.unwrap();
    server
        .load_yaml(
            "ns",
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n",
        )
        .unwrap();
    let client = meshplan::cluster::connect_yaml(&server.kubeconfig_yaml())
        .await
        .unwrap();
    (server, client)
}

fn other_host(id: &str) -> Holder {
    Holder {
        id: id.to_owned(),
        host: "elsewhere".to_owned(),
        pid: 7,
        since: "2026-11-29T00:00:00Z".to_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configmap_writes_never_overwrite_another_writer() {
    let (server, client) = server().await;
    let mine = Store::cluster(client.clone(), "shop", "color");
    let theirs = Store::cluster(client.clone(), "shop", "color");
    assert_eq!(mine.read("journal").await.unwrap(), None);
    mine.write("journal", "{\"a\": 1}").await.unwrap();
    mine.write("ramp", "{\"b\": 2}").await.unwrap();
    assert_eq!(
        theirs.read("journal").await.unwrap().as_deref(),
        Some("{\"a\": 1}")
    );
    // They write after reading; my next write is based on an older resourceVersion.
    theirs.write("journal", "{\"a\": 2}").await.unwrap();
    match mine.write("journal", "{\"a\": 3}").await {
        Err(StateError::Conflict { location }) => {
            assert_eq!(location, "ConfigMap shop/meshplan-color (key journal.json)")
        }
        other => panic!("{other:?}"),
    }
    // Nothing was overwritten; reading again catches up, and the next write goes through.
    assert_eq!(
        mine.read("journal").await.unwrap().as_deref(),
        Some("{\"a\": 2}")
    );
    mine.write("journal", "{\"a\": 3}").await.unwrap();
    assert_eq!(
        mine.read("ramp").await.unwrap().as_deref(),
        Some("{\"b\": 2}")
    );
    // A state too big for a ConfigMap is refused before the API server sees it.
    let big = "x".repeat(1024 * 1024);
    assert!(matches!(
        mine.write("journal", &big).await,
        Err(StateError::TooLarge { .. })
    ));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lease_names_its_holder_expires_and_is_released() {
    use k8s_openapi::api::coordination::v1::Lease;
    let (server, client) = server().await;
    let store = Store::cluster(client.clone(), "shop", "color");
    assert_eq!(store.holder().await.unwrap(), None);
    let first = store.lock(other_host("first")).await.unwrap();
    assert_eq!(store.holder().await.unwrap().unwrap().id, "first");
    match store.lock(other_host("second")).await {
        Err(e @ LockError::Held { .. }) => {
            let message = e.to_string();
            assert!(
                message.contains("run first (pid 7 on elsewhere"),
                "{message}"
            );
            assert!(message.contains("--force first"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    first.release().await.unwrap();
    assert_eq!(store.holder().await.unwrap(), None);

    // A holder that stopped renewing for longer than the lease lasts has lost it.
    let stale = store.lock(other_host("stale")).await.unwrap();
    drop(stale);
    let api: kube::Api<Lease> = kube::Api::namespaced(client.clone(), "shop");
    let mut lease = api.get("meshplan-color").await.unwrap();
    let spec = lease.spec.as_mut().unwrap();
    let long_ago =
        jiff::Timestamp::now() - jiff::SignedDuration::from_secs(2 * LEASE_SECONDS as i64);
    spec.renew_time = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(
        long_ago,
    ));
    lease.metadata.managed_fields = None;
    api.replace("meshplan-color", &Default::default(), &lease)
        .await
        .unwrap();
    assert_eq!(
        store.holder().await.unwrap(),
        None,
        "an expired lease is free"
    );
    let taker = store.lock(other_host("taker")).await.unwrap();
    assert_eq!(taker.holder().id, "taker");

    // Forced unlock needs the holder's id.
    assert!(matches!(
        store.force_unlock("nope").await,
        Err(LockError::WrongId { .. })
    ));
    assert_eq!(
        store.force_unlock("taker").await.unwrap().map(|h| h.id),
        Some("taker".to_owned())
    );
    assert!(api.get_opt("meshplan-color").await.unwrap().is_none());
    // The old holder's release leaves a lease that is no longer its own alone.
    let next = store.lock(other_host("next")).await.unwrap();
    taker.release().await.unwrap();
    assert_eq!(store.holder().await.unwrap().unwrap().id, "next");
    next.release().await.unwrap();
    server.shutdown().await;
}
