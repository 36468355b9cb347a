//! The Istio EKS add-on step against aws-smithy-mocks (every path the EKS API can take), and the
//! add-on as `meshplan plan` shows it and `meshplan apply --rehearse` installs it.

mod common;

use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use aws_sdk_eks::Client;
use aws_sdk_eks::operation::create_addon::CreateAddonOutput;
use aws_sdk_eks::operation::describe_addon::{DescribeAddonError, DescribeAddonOutput};
use aws_sdk_eks::operation::update_addon::UpdateAddonOutput;
use aws_sdk_eks::types::error::ResourceNotFoundException;
use aws_sdk_eks::types::{Addon, AddonHealth, AddonIssue, AddonIssueCode, AddonStatus};
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use common::root;
use meshplan::eks::{AddonSettings, Addons, EksError};

const NAME: &str = "solo-io_istio-distro";
const VERSION: &str = "v1.27.3-eksbuild.1";
const TIMEOUT: Duration = Duration::from_secs(300);
const POLL: Duration = Duration::from_secs(10);

fn settings() -> AddonSettings {
    AddonSettings {
        addon_name: NAME.to_owned(),
        addon_version: Some(VERSION.to_owned()),
        configuration_values: Some("{\"pilot\": {\"replicas\": 2}}".to_owned()),
        resolve_conflicts: Some("OVERWRITE".to_owned()),
    }
}

fn addon(status: AddonStatus) -> Addon {
    Addon::builder()
        .addon_name(NAME)
        .cluster_name("demo")
        .addon_version(VERSION)
        .configuration_values("pilot:\n  replicas: 2\n")
        .status(status)
        .build()
}

fn described(addon: Addon) -> DescribeAddonOutput {
    DescribeAddonOutput::builder().addon(addon).build()
}

fn not_found() -> DescribeAddonError {
    DescribeAddonError::ResourceNotFoundException(
        ResourceNotFoundException::builder()
            .message("No addon: solo-io_istio-distro found in cluster: demo")
            .build(),
    )
}

fn addons(rules: &[&Rule]) -> Addons {
    let client: Client = mock_client!(aws_sdk_eks, RuleMode::MatchAny, rules);
    Addons::new(client, "demo")
}

/// Runs `ensure`, collecting the progress it reports.
async fn ensure(addons: &Addons) -> (Result<(), EksError>, Vec<String>) {
    let seen = Mutex::new(Vec::new());
    let report = |message: String| seen.lock().unwrap().push(message);
    let result = addons.ensure(&settings(), TIMEOUT, POLL, &report).await;
    (result, seen.into_inner().unwrap())
}

#[tokio::test(start_paused = true)]
async fn an_absent_addon_is_created_and_waited_for_until_active() {
    let describe = mock!(Client::describe_addon)
        .sequence()
        .error(not_found)
        .output(|| described(addon(AddonStatus::Creating)))
        .times(2)
        .output(|| described(addon(AddonStatus::Active)))
        .build();
    let create = mock!(Client::create_addon)
        .match_requests(|r| {
            r.cluster_name() == Some("demo")
                && r.addon_name() == Some(NAME)
                && r.addon_version() == Some(VERSION)
                && r.configuration_values() == Some("{\"pilot\": {\"replicas\": 2}}")
                && r.resolve_conflicts().map(|c| c.as_str()) == Some("OVERWRITE")
        })
        .then_output(|| {
            CreateAddonOutput::builder()
                .addon(addon(AddonStatus::Creating))
                .build()
        });
    let addons = addons(&[&describe, &create]);
    let (result, progress) = ensure(&addons).await;
    result.unwrap();
    assert_eq!(create.num_calls(), 1);
    assert_eq!(describe.num_calls(), 4);
    assert_eq!(
        progress,
        [
            format!("creating EKS add-on {NAME}"),
            format!("EKS add-on {NAME}: CREATING"),
            format!("EKS add-on {NAME}: CREATING"),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_different_version_or_configuration_is_updated() {
    for changed in [
        Addon::builder()
            .addon_name(NAME)
            .addon_version("v1.26.0-eksbuild.1")
            .configuration_values("{\"pilot\": {\"replicas\": 2}}")
            .status(AddonStatus::Active)
            .build(),
        Addon::builder()
            .addon_name(NAME)
            .addon_version(VERSION)
            .configuration_values("{\"pilot\": {\"replicas\": 1}}")
            .status(AddonStatus::Active)
            .build(),
    ] {
        let describe = mock!(Client::describe_addon)
            .sequence()
            .output(move || described(changed.clone()))
            .output(|| described(addon(AddonStatus::Updating)))
            .output(|| described(addon(AddonStatus::Active)))
            .build();
        let update = mock!(Client::update_addon)
            .match_requests(|r| {
                r.addon_version() == Some(VERSION)
                    && r.configuration_values() == Some("{\"pilot\": {\"replicas\": 2}}")
            })
            .then_output(|| UpdateAddonOutput::builder().build());
        let create =
            mock!(Client::create_addon).then_output(|| CreateAddonOutput::builder().build());
        let addons = addons(&[&describe, &update, &create]);
        let (result, progress) = ensure(&addons).await;
        result.unwrap();
        assert_eq!((update.num_calls(), create.num_calls()), (1, 0));
        assert_eq!(progress[0], format!("updating EKS add-on {NAME}"));
        assert_eq!(progress[1], format!("EKS add-on {NAME}: UPDATING"));
    }
}

#[tokio::test(start_paused = true)]
async fn an_active_addon_with_the_same_settings_is_left_alone() {
    let describe =
        mock!(Client::describe_addon).then_output(|| described(addon(AddonStatus::Active)));
    let create = mock!(Client::create_addon).then_output(|| CreateAddonOutput::builder().build());
    let update = mock!(Client::update_addon).then_output(|| UpdateAddonOutput::builder().build());
    let addons = addons(&[&describe, &create, &update]);
    let (result, progress) = ensure(&addons).await;
    result.unwrap();
    assert_eq!(
        (describe.num_calls(), create.num_calls(), update.num_calls()),
        (1, 0, 0)
    );
    assert!(progress.is_empty());
}

fn unhealthy(status: AddonStatus) -> Addon {
    Addon::builder()
        .addon_name(NAME)
        .addon_version(VERSION)
        .configuration_values("{\"pilot\": {\"replicas\": 2}}")
        .status(status)
        .health(
            AddonHealth::builder()
                .issues(
                    AddonIssue::builder()
                        .code(AddonIssueCode::InsufficientNumberOfReplicas)
                        .message("The add-on is unhealthy because it doesn't have the desired number of replicas.")
                        .resource_ids("istio-system/istiod")
                        .build(),
                )
                .build(),
        )
        .build()
}

#[tokio::test(start_paused = true)]
async fn a_failed_creation_quotes_the_health_issues() {
    let describe = mock!(Client::describe_addon)
        .sequence()
        .error(not_found)
        .output(|| described(addon(AddonStatus::Creating)))
        .output(|| described(unhealthy(AddonStatus::CreateFailed)))
        .build();
    let create = mock!(Client::create_addon).then_output(|| CreateAddonOutput::builder().build());
    let addons = addons(&[&describe, &create]);
    let error = ensure(&addons).await.0.unwrap_err().to_string();
    assert!(
        error.contains("EKS add-on solo-io_istio-distro on cluster demo is CREATE_FAILED"),
        "{error}"
    );
    assert!(
        error.contains(
            "InsufficientNumberOfReplicas: The add-on is unhealthy because it doesn't have the \
             desired number of replicas. (resources: istio-system/istiod)"
        ),
        "{error}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_degraded_addon_is_an_error() {
    let describe =
        mock!(Client::describe_addon).then_output(|| described(unhealthy(AddonStatus::Degraded)));
    let addons = addons(&[&describe]);
    let error = ensure(&addons).await.0.unwrap_err().to_string();
    assert!(error.contains("is DEGRADED"), "{error}");
    assert!(error.contains("InsufficientNumberOfReplicas"), "{error}");
}

#[tokio::test(start_paused = true)]
async fn an_addon_stuck_creating_times_out() {
    let describe = mock!(Client::describe_addon)
        .sequence()
        .error(not_found)
        .output(|| described(addon(AddonStatus::Creating)))
        .repeatedly()
        .build();
    let create = mock!(Client::create_addon).then_output(|| CreateAddonOutput::builder().build());
    let addons = addons(&[&describe, &create]);
    let started = tokio::time::Instant::now();
    let error = ensure(&addons).await.0.unwrap_err();
    assert!(
        matches!(&error, EksError::Timeout { status, .. } if status == "CREATING"),
        "{error}"
    );
    // Bounded by the timeout, with backoff: far fewer checks than one per poll interval.
    assert!(started.elapsed() >= TIMEOUT && started.elapsed() < TIMEOUT + POLL * 2);
    assert!(
        describe.num_calls() < 30,
        "{} describes",
        describe.num_calls()
    );
}

#[tokio::test(start_paused = true)]
async fn throttling_and_server_errors_are_retried() {
    let describe = mock!(Client::describe_addon)
        .sequence()
        .http_status(429, Some("{\"message\":\"Rate exceeded\"}".to_owned()))
        .http_status(503, None)
        .output(|| described(addon(AddonStatus::Active)))
        .build();
    let addons = addons(&[&describe]);
    let (result, _) = ensure(&addons).await;
    result.unwrap();
    assert_eq!(describe.num_calls(), 3);
}

#[tokio::test(start_paused = true)]
async fn other_errors_are_not_retried() {
    let describe = mock!(Client::describe_addon)
        .sequence()
        .http_status(400, Some("{\"message\":\"bad\"}".to_owned()))
        .build();
    let addons = addons(&[&describe]);
    assert!(ensure(&addons).await.0.is_err());
    assert_eq!(describe.num_calls(), 1);
}

fn meshplan(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_meshplan"))
        .args(args)
        .current_dir(std::env::temp_dir())
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

#[test]
fn the_plan_shows_the_addon_in_the_istio_step() {
    let plan = root().join("plans/color-eks.toml");
    let out = meshplan(&[
        "plan",
        plan.to_str().unwrap(),
        "--eks-cluster",
        "demo",
        "--region",
        "us-west-2",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let istio = stdout
        .split_once(" istio  (after preflight)")
        .expect("an istio step")
        .1
        .split("\nStep ")
        .next()
        .unwrap();
    assert!(
        istio.contains("+ EKS Addon demo/solo-io_istio-distro"),
        "{istio}"
    );
    for field in [
        "addonName: solo-io_istio-distro",
        "addonVersion: v1.27.3-eksbuild.1",
        "configurationValues:",
        "resolveConflicts: OVERWRITE",
    ] {
        assert!(istio.contains(field), "{field} missing from:\n{istio}");
    }
}

#[test]
fn a_rehearsal_installs_the_addon_on_a_simulated_eks() {
    let plan = root().join("plans/color-eks.toml");
    let out = meshplan(&["apply", plan.to_str().unwrap(), "--rehearse"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stderr.contains("simulated EKS add-on API"), "{stderr}");
    assert!(
        stdout.contains("+ EKS Addon rehearsal/solo-io_istio-distro"),
        "{stdout}"
    );
    assert!(
        stderr.contains("EKS add-on solo-io_istio-distro: CREATING"),
        "{stderr}"
    );
}

/// The presigned URL inside a token, checked against SigV4 recomputed here from the spec
/// (canonical request, string to sign, HMAC-SHA256 key chain), not by the signing crate.
#[test]
fn the_token_is_a_presigned_sts_url_with_a_valid_sigv4_signature() {
    use base64::Engine as _;
    use hmac::{KeyInit, Mac};
    use sha2::{Digest, Sha256};

    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let hmac = |key: &[u8], data: &str| {
        let mut mac = hmac::Hmac::<Sha256>::new_from_slice(key).unwrap();
        mac.update(data.as_bytes());
        mac.finalize().into_bytes().to_vec()
    };
    let time = std::time::UNIX_EPOCH + Duration::from_secs(1_767_225_600); // 2026-01-01T00:00:00Z
    for session in [None, Some("FwoGZXIvYXdzEXAMPLE/token+with=chars")] {
        let credentials = aws_credential_types::Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            session.map(str::to_owned),
            None,
            "test",
        );
        let token = meshplan::eks::token::token(&credentials, "eu-west-1", "prod", time).unwrap();
        let encoded = token
            .strip_prefix("k8s-aws-v1.")
            .expect("the k8s-aws-v1. prefix");
        assert!(!encoded.contains('=') && !encoded.contains('+') && !encoded.contains('/'));
        let url = String::from_utf8(
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(encoded)
                .unwrap(),
        )
        .unwrap();
        let (base, query) = url.split_once('?').unwrap();
        assert_eq!(base, "https://sts.eu-west-1.amazonaws.com/");
        let params: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let get = |key: &str| {
            params
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
                .unwrap_or_else(|| panic!("{key} missing from {url}"))
        };
        assert_eq!(get("Action"), "GetCallerIdentity");
        assert_eq!(get("Version"), "2011-06-15");
        assert_eq!(get("X-Amz-Algorithm"), "AWS4-HMAC-SHA256");
        assert_eq!(
            get("X-Amz-Credential"),
            "AKIDEXAMPLE/20260101/eu-west-1/sts/aws4_request"
        );
        assert_eq!(get("X-Amz-Date"), "20260101T000000Z");
        assert_eq!(get("X-Amz-Expires"), "60");
        assert_eq!(get("X-Amz-SignedHeaders"), "host;x-k8s-aws-id");
        if let Some(session) = session {
            assert_eq!(get("X-Amz-Security-Token"), session);
        }

        // The canonical request: every parameter but the signature, sorted, URI-encoded.
        let encode = |s: &str| {
            s.bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                        (b as char).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect::<String>()
        };
        let mut signed: Vec<(String, String)> = params
            .iter()
            .filter(|(k, _)| k != "X-Amz-Signature")
            .map(|(k, v)| (encode(k), encode(v)))
            .collect();
        signed.sort();
        let canonical_query = signed
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        let canonical_request = format!(
            "GET\n/\n{canonical_query}\nhost:sts.eu-west-1.amazonaws.com\nx-k8s-aws-id:prod\n\n\
             host;x-k8s-aws-id\n{}",
            hex(&Sha256::digest(b""))
        );
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256\n20260101T000000Z\n20260101/eu-west-1/sts/aws4_request\n{}",
            hex(&Sha256::digest(canonical_request.as_bytes()))
        );
        let key = ["20260101", "eu-west-1", "sts", "aws4_request"]
            .iter()
            .fold(
                b"AWS4wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".to_vec(),
                |key, part| hmac(&key, part),
            );
        assert_eq!(get("X-Amz-Signature"), hex(&hmac(&key, &string_to_sign)));
    }
}

/// moto's EKS server, on a free loopback port, stopped on drop.
struct Moto {
    child: std::process::Child,
    url: String,
}

impl Moto {
    fn start() -> Moto {
        let binary = std::env::var("MOTO_SERVER").unwrap_or_else(|_| "moto_server".to_owned());
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(&binary)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start moto's server `{binary}` ({e}): install it with \
                     `python3 -m venv /tmp/meshplan-moto && /tmp/meshplan-moto/bin/pip install \
                     'moto[server]'` and set MOTO_SERVER=/tmp/meshplan-moto/bin/moto_server \
                     (.ci/run does both)"
                )
            });
        let moto = Moto {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return moto;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("moto_server did not listen on port {port} within 5 s");
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn describe_cluster_gives_the_endpoint_and_ca_of_a_direct_connection() {
    let moto = Moto::start();
    let config = aws_sdk_eks::Config::builder()
        .behavior_version(aws_sdk_eks::config::BehaviorVersion::latest())
        .endpoint_url(&moto.url)
        .region(aws_sdk_eks::config::Region::new("us-west-2"))
        .credentials_provider(aws_sdk_eks::config::Credentials::new(
            "testing", "testing", None, None, "moto",
        ))
        .build();
    let client = Client::from_conf(config);
    let created = client
        .create_cluster()
        .name("demo")
        .role_arn("arn:aws:iam::123456789012:role/eks")
        .resources_vpc_config(
            aws_sdk_eks::types::VpcConfigRequest::builder()
                .subnet_ids("subnet-1")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let cluster = created.cluster.unwrap();
    let endpoint = meshplan::eks::token::describe_endpoint(&client, "demo")
        .await
        .unwrap();
    assert_eq!(Some(endpoint.url.as_str()), cluster.endpoint());
    assert!(endpoint.url.starts_with("https://"), "{}", endpoint.url);
    assert_eq!(
        Some(endpoint.certificate_authority.as_str()),
        cluster.certificate_authority().and_then(|c| c.data())
    );
    assert!(!endpoint.certificate_authority.is_empty());
    let missing = meshplan::eks::token::describe_endpoint(&client, "absent")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        missing.contains("describing EKS cluster absent"),
        "{missing}"
    );
}

/// Applies `plans/color-eks.toml` to a rehearsal cluster and a simulated EKS, then rolls back;
/// returns the rollback's events and the add-on as EKS has it afterwards.
async fn apply_then_roll_back(
    include_addon: bool,
) -> (Vec<meshplan::engine::Event>, Option<Addon>) {
    use meshplan::engine::{self, Options};
    use meshplan::plan::{EksCluster, PlanFile};
    use meshplan::state::Store;

    let plan = PlanFile::load(&root().join("plans/color-eks.toml")).unwrap();
    let scope = meshplan::scope::Scope::of(&plan.spec);
    let (server, cluster) = meshplan::rehearse::start(&plan).await.unwrap();
    let simulator = meshplan::eks::sim::Simulator::start().await.unwrap();
    let addons = simulator.addons("demo", "us-west-2");
    let cluster = cluster.with_eks(addons.clone());
    let mut planned = meshplan::pipeline::plan_offline(plan, None).unwrap();
    planned.graph.bind_eks(&EksCluster {
        name: "demo".into(),
        region: "us-west-2".into(),
    });
    meshplan::eks::observe(&mut planned.graph, &addons)
        .await
        .unwrap();
    let dir = std::env::temp_dir().join(format!(
        "meshplan-eks-rollback-{include_addon}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let options = Options {
        concurrency: 4,
        rollout_timeout: Duration::from_secs(30),
        poll: Duration::from_millis(20),
        store: Store::files(dir.join("journal.json"), dir.join("lock")),
        stop: Default::default(),
        include_addon,
        scope,
    };
    let journal = engine::apply(&cluster, &planned.graph, "fp", &options, &|_| {})
        .await
        .unwrap();
    // The journal records that meshplan created the add-on: an empty pre-image.
    let image = journal.steps["istio"]
        .pre_images
        .iter()
        .find(|i| i.object.is_eks_addon())
        .expect("a pre-image of the add-on");
    assert_eq!(
        image.object.to_string(),
        "EKS Addon demo/solo-io_istio-distro"
    );
    assert_eq!(image.before, None);
    assert_eq!(
        addons.describe(NAME).await.unwrap().unwrap().status(),
        Some(&AddonStatus::Active)
    );
    let events = Mutex::new(Vec::new());
    engine::rollback(&cluster, "fp", None, &options, &|e| {
        events.lock().unwrap().push(e)
    })
    .await
    .unwrap();
    let left = addons.describe(NAME).await.unwrap();
    simulator.shutdown().await;
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    (events.into_inner().unwrap(), left)
}

#[tokio::test]
async fn rollback_deletes_the_addon_only_with_include_addon() {
    use meshplan::engine::Event;
    let (events, left) = apply_then_roll_back(false).await;
    assert!(left.is_some(), "the add-on stays without --include-addon");
    assert!(
        events.iter().any(|e| matches!(e, Event::Progress(step, message)
            if step == "istio" && message.contains("left EKS Addon demo/solo-io_istio-distro in place")
                && message.contains("--include-addon"))),
        "{events:?}"
    );
    let (events, left) = apply_then_roll_back(true).await;
    assert!(
        left.is_none(),
        "--include-addon deletes the add-on meshplan created"
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Progress(_, message)
            if message.starts_with("deleted EKS Addon demo/solo-io_istio-distro"))),
        "{events:?}"
    );
}

#[test]
fn the_addon_needs_no_kubernetes_permission() {
    use meshplan::plan::PlanFile;
    let plan = PlanFile::load(&root().join("plans/color-eks.toml")).unwrap();
    let planned = meshplan::pipeline::plan_offline(plan, None).unwrap();
    let access = planned.graph.access();
    assert!(
        access
            .iter()
            .all(|a| a.api_version != meshplan::object::EKS_ADDON_API_VERSION),
        "{access:?}"
    );
    assert_eq!(planned.graph.addon_cluster(), Some(None));
}
