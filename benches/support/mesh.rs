//! A realistic generated App Mesh state of any size (shared by `examples/gen-mesh.rs` and the
//! benches): namespaces joined to one mesh; per service a selector-less Service, a VirtualService
//! and a VirtualRouter (a weighted route over every version plus matched routes, retries on a
//! third of them); per version a Deployment, a Service and a VirtualNode (backends chained to the
//! next service, client TLS on a fifth of them); per namespace an ingress VirtualGateway with a
//! GatewayRoute per service (each gateway selects its own namespace). Deterministic: the same sizes give the same bytes.

use std::fmt::Write as _;

/// How big a mesh to generate.
pub struct Size {
    /// Services in all.
    pub services: usize,
    /// Versions (Deployments and virtual nodes) per service.
    pub versions: usize,
    /// Routes per router (one weighted, the rest matched).
    pub routes: usize,
    /// Services per namespace.
    pub per_namespace: usize,
}

/// A generated mesh: its YAML, object count and namespaces.
pub struct Mesh {
    /// Multi-document YAML.
    pub yaml: String,
    /// Number of objects.
    pub objects: usize,
    /// Number of namespaces (`team-000`, `team-001`, …).
    pub namespaces: usize,
}

/// Generates a mesh.
pub fn generate(args: &Size) -> Mesh {
    let mut out = String::new();
    let mut objects = 0usize;
    let namespaces = args.services.div_ceil(args.per_namespace);
    let _ = write!(
        out,
        "apiVersion: appmesh.k8s.aws/v1beta2\nkind: Mesh\nmetadata:\n  name: bench\nspec:\n  egressFilter:\n    type: ALLOW_ALL\n  namespaceSelector:\n    matchLabels:\n      mesh: bench\n"
    );
    objects += 1;
    for n in 0..namespaces {
        let ns = format!("team-{n:03}");
        let _ = write!(
            out,
            "---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n  labels:\n    mesh: bench\n    gateway: ingress-{ns}\n    appmesh.k8s.aws/sidecarInjectorWebhook: enabled\n\
             ---\napiVersion: appmesh.k8s.aws/v1beta2\nkind: VirtualGateway\nmetadata:\n  name: ingress\n  namespace: {ns}\nspec:\n  namespaceSelector:\n    matchLabels:\n      gateway: ingress-{ns}\n  podSelector:\n    matchLabels:\n      app: ingress\n  listeners:\n    - portMapping:\n        port: 8080\n        protocol: http\n\
             ---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: ingress\n  namespace: {ns}\nspec:\n  replicas: 2\n  selector:\n    matchLabels:\n      app: ingress\n  template:\n    metadata:\n      labels:\n        app: ingress\n    spec:\n      containers:\n        - name: envoy\n          image: public.ecr.aws/appmesh/aws-appmesh-envoy:v1.29.12.0-prod\n          ports:\n            - containerPort: 8080\n"
        );
        objects += 3;
        let first = n * args.per_namespace;
        let last = ((n + 1) * args.per_namespace).min(args.services);
        for s in first..last {
            objects += service(&mut out, &ns, s, first, last, args);
        }
    }
    Mesh {
        yaml: out,
        objects,
        namespaces,
    }
}

/// One service with its versions; returns the number of objects written.
fn service(out: &mut String, ns: &str, s: usize, first: usize, last: usize, args: &Size) -> usize {
    let name = format!("svc-{s:05}");
    // Each service calls the next one in its namespace, so backends reference real services.
    let next = if s + 1 < last { s + 1 } else { first };
    let backend = format!("svc-{next:05}");
    let mut objects = 0;
    let _ = write!(
        out,
        "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n  ports:\n    - name: http\n      port: 8080\n\
         ---\napiVersion: appmesh.k8s.aws/v1beta2\nkind: VirtualService\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n  awsName: {name}.{ns}.svc.cluster.local\n  provider:\n    virtualRouter:\n      virtualRouterRef:\n        name: {name}\n\
         ---\napiVersion: appmesh.k8s.aws/v1beta2\nkind: GatewayRoute\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n  httpRoute:\n    match:\n      prefix: /{name}/\n    action:\n      target:\n        virtualService:\n          virtualServiceRef:\n            name: {name}\n"
    );
    objects += 3;
    // The router: a weighted default route over every version, and matched routes to one each.
    let _ = write!(
        out,
        "---\napiVersion: appmesh.k8s.aws/v1beta2\nkind: VirtualRouter\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n  listeners:\n    - portMapping:\n        port: 8080\n        protocol: http\n  routes:\n"
    );
    for r in 1..args.routes {
        let version = r % args.versions;
        let _ = write!(
            out,
            "    - name: match-{r}\n      priority: {r}\n      httpRoute:\n        match:\n          prefix: /api/v{r}\n          headers:\n            - name: x-canary\n              match:\n                exact: \"{r}\"\n        action:\n          weightedTargets:\n            - virtualNodeRef:\n                name: {name}-v{version}\n              weight: 1\n"
        );
        if (s + r).is_multiple_of(3) {
            let _ = write!(
                out,
                "        retryPolicy:\n          maxRetries: 2\n          perRetryTimeout:\n            unit: ms\n            value: 1000\n          httpRetryEvents:\n            - gateway-error\n"
            );
        }
    }
    let _ = write!(
        out,
        "    - name: default\n      priority: {}\n      httpRoute:\n        match:\n          prefix: /\n        action:\n          weightedTargets:\n",
        args.routes
    );
    for v in 0..args.versions {
        let weight = if v == 0 {
            100 - 10 * (args.versions - 1).min(9)
        } else {
            10
        };
        let _ = write!(
            out,
            "            - virtualNodeRef:\n                name: {name}-v{v}\n              weight: {weight}\n"
        );
    }
    objects += 1;
    for v in 0..args.versions {
        let node = format!("{name}-v{v}");
        let tls = if s.is_multiple_of(5) {
            "  backendDefaults:\n    clientPolicy:\n      tls:\n        enforce: true\n        validation:\n          trust:\n            file:\n              certificateChain: /certs/ca.pem\n"
        } else {
            ""
        };
        let _ = write!(
            out,
            "---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {node}\n  namespace: {ns}\nspec:\n  replicas: 2\n  selector:\n    matchLabels:\n      app: {name}\n      version: v{v}\n  template:\n    metadata:\n      labels:\n        app: {name}\n        version: v{v}\n    spec:\n      containers:\n        - name: app\n          image: registry.example.com/{name}:{v}\n          ports:\n            - containerPort: 8080\n          readinessProbe:\n            httpGet:\n              path: /ping\n              port: 8080\n\
             ---\napiVersion: v1\nkind: Service\nmetadata:\n  name: {node}\n  namespace: {ns}\nspec:\n  selector:\n    app: {name}\n    version: v{v}\n  ports:\n    - name: http\n      port: 8080\n\
             ---\napiVersion: appmesh.k8s.aws/v1beta2\nkind: VirtualNode\nmetadata:\n  name: {node}\n  namespace: {ns}\nspec:\n  podSelector:\n    matchLabels:\n      app: {name}\n      version: v{v}\n  listeners:\n    - portMapping:\n        port: 8080\n        protocol: http\n      healthCheck:\n        port: 8080\n        protocol: http\n        path: /ping\n        healthyThreshold: 2\n        unhealthyThreshold: 3\n        timeoutMillis: 2000\n        intervalMillis: 5000\n  backends:\n    - virtualService:\n        virtualServiceRef:\n          name: {backend}\n{tls}  serviceDiscovery:\n    dns:\n      hostname: {node}.{ns}.svc.cluster.local\n"
        );
        objects += 3;
    }
    objects
}
