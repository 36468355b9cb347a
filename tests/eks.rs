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
