//! Reading the inventory from a live API server (kubesim over HTTP) gives what the manifests give,
//! with one LIST per kind per namespace.

mod common;

use common::{crds_dir, root};
use meshplan::inventory::Inventory;
use meshplan::translate::{self, Options};

async fn color_cluster() -> kubesim::RunningServer {
    let server = kubesim::Server::builder().start().await.unwrap();
    for entry in std::fs::read_dir(crds_dir().join("appmesh")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let text = std::fs::read_to_string(&path).unwrap();
            server
                .load_yaml(&path.display().to_string(), &text)
                .unwrap();
        }
    }
    // One stream, so that kubesim creates the Namespace before the objects in it.
    let mut files: Vec<_> = std::fs::read_dir(root().join("examples/howto-k8s-http2"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let text: Vec<String> = files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    server
        .load_yaml("examples/howto-k8s-http2", &text.join("\n---\n"))
        .unwrap();
    server
}

#[tokio::test]
async fn the_live_inventory_translates_like_the_manifests() {
    let server = color_cluster().await;
    let client = meshplan::cluster::connect_yaml(&server.kubeconfig_yaml())
        .await
        .unwrap();
    let namespaces = vec!["howto-k8s-http2".to_owned()];
    let live = meshplan::cluster::inventory(&client, &namespaces)
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
