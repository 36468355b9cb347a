//! Reading the inventory from a live API server (kubesim over HTTP) gives what the manifests give,
//! with one LIST per kind per namespace.

mod common;

use common::root;
use meshplan::inventory::Inventory;
use meshplan::translate::{self, Options};

async fn color_cluster() -> kubesim::RunningServer {
    common::color_cluster(std::time::Duration::from_millis(20)).await
}

#[tokio::test]
async fn the_live_inventory_translates_like_the_manifests() {
    let server = color_cluster().await;
    let client = meshplan::cluster::connect_yaml(&server.kubeconfig_yaml())
        .await
        .unwrap();
    let namespaces = vec!["howto-k8s-http2".to_owned()];
    let live = meshplan::cluster::inventory(&client, &namespaces, false)
        .await
        .unwrap();
    let files = Inventory::from_paths(&[root().join("examples/howto-k8s-http2")]).unwrap();
    assert_eq!(live.virtual_nodes.len(), 4);
    assert_eq!(live.virtual_services.len(), 1);
    assert_eq!(live.virtual_routers.len(), 1);
    assert_eq!(live.meshes.len(), 1);
    assert_eq!(live.namespaces.len(), 1);
    assert_eq!(live.services.len(), files.services.len());
    assert_eq!(live.deployments.len(), files.deployments.len());

    let options = Options {
        namespaces: Some(namespaces),
        ..Options::default()
    };
    let from_cluster = translate::translate(&live, &options);
    let from_files = translate::translate(&files, &options);
    assert_eq!(from_cluster.objects, from_files.objects);

    // One LIST per kind per namespace, and never a GET per object.
    let counters = server.faults().counters();
    for ((verb, resource), count) in &counters {
        assert_ne!(verb, "get", "GET {resource} x{count}");
        if verb == "list" {
            assert_eq!(*count, 1, "LIST {resource} x{count}");
        }
    }
    assert_eq!(server.faults().count("list", "virtualnodes"), 1);
    server.shutdown().await;
}
