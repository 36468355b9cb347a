//! `meshplan verify` against local HTTP backends started here: plain `std` TCP servers that
//! answer with an `x-backend` header chosen by a seeded generator, so the counts are the same on
//! every run (each request draws exactly once, whatever the interleaving).

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::root;

/// How the test server answers.
#[derive(Clone, Copy)]
enum Behaviour {
    /// 200 with `x-backend` drawn from red/green/blue by these weights.
    Weighted([u64; 3]),
    /// Every `n`th request gets 503, the rest go to green.
    Unavailable(u64),
    /// Reads the request and never answers.
    Silent,
}

/// A xorshift generator: tiny, seeded, and the same everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Starts a server on a free loopback port; it lives as long as the test process.
fn serve(behaviour: Behaviour) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let state = Arc::new(Mutex::new((Rng(0x9e37_79b9_7f4a_7c15), 0u64)));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let state = state.clone();
            std::thread::spawn(move || answer(stream, behaviour, &state));
        }
    });
    format!("http://{address}/")
}

fn answer(mut stream: TcpStream, behaviour: Behaviour, state: &Mutex<(Rng, u64)>) {
    let mut request = Vec::new();
    let mut buffer = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buffer[..n]),
        }
    }
    let (status, backend) = {
        let mut state = state.lock().unwrap();
        state.1 += 1;
        match behaviour {
            Behaviour::Weighted(weights) => {
                let mut draw = state.0.next() % weights.iter().sum::<u64>();
                let mut chosen = "blue";
                for (name, weight) in ["red", "green", "blue"].into_iter().zip(weights) {
                    if draw < weight {
                        chosen = name;
                        break;
                    }
                    draw -= weight;
                }
                ("200 OK", chosen)
            }
            Behaviour::Unavailable(every) if state.1.is_multiple_of(every) => {
                ("503 Service Unavailable", "green")
            }
            Behaviour::Unavailable(_) => ("200 OK", "green"),
            Behaviour::Silent => {
                drop(state);
                std::thread::sleep(Duration::from_secs(30));
                return;
            }
        }
    };
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nx-backend: {backend}\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
    );
}

/// A plan for the color app with a `[verify]` section, in a temp file of its own.
fn plan(name: &str, extra: &str) -> PathBuf {
    let examples = root().join("examples/howto-k8s-http2");
    let text = format!(
        "[source]\nmanifests = [{examples:?}]\nmesh = \"howto-k8s-http2\"\n\
         namespaces = [\"howto-k8s-http2\"]\n\n[routing.color]\n\
         weights = {{ red = 10, green = 40, blue = 50 }}\n\n[verify]\n\
         backend_header = \"x-backend\"\n{extra}"
    );
    let path = std::env::temp_dir().join(format!(
        "meshplan-verify-{}-{name}.toml",
        std::process::id()
    ));
    std::fs::write(&path, text).unwrap();
    path
}

fn verify(plan: &PathBuf, args: &[&str]) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_meshplan"))
        .arg("verify")
        .arg(plan)
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.code().unwrap(), text)
}

#[test]
fn the_planned_split_passes() {
    let url = serve(Behaviour::Weighted([10, 40, 50]));
    let plan = plan("pass", "");
    let (code, out) = verify(&plan, &["--url", &url, "--requests", "2000"]);
    std::fs::remove_file(&plan).unwrap();
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("PASS"), "{out}");
    assert!(out.contains("degrees of freedom = 2"), "{out}");
}

#[test]
fn an_even_split_fails_with_its_p_value() {
    let url = serve(Behaviour::Weighted([34, 33, 33]));
    let plan = plan("even", "significance = 0.01\n");
    let (code, out) = verify(&plan, &["--url", &url, "--requests", "2000"]);
    std::fs::remove_file(&plan).unwrap();
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("p-value = "), "{out}");
    assert!(out.contains("the split differs from the weights"), "{out}");
}

#[test]
fn errors_past_five_percent_fail() {
    // Every 10th answer is a 503: 10 % errors. The backend named is always green, so a
    // one-backend plan keeps the split itself passing.
    let url = serve(Behaviour::Unavailable(10));
    let plan_path = plan("errors", "");
    let text = std::fs::read_to_string(&plan_path).unwrap().replace(
        "weights = { red = 10, green = 40, blue = 50 }",
        "weights = { red = 0, green = 100, blue = 0 }",
    );
    std::fs::write(&plan_path, text).unwrap();
    let (code, out) = verify(&plan_path, &["--url", &url, "--requests", "200"]);
    std::fs::remove_file(&plan_path).unwrap();
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("20 non-2xx"), "{out}");
    assert!(out.contains("20 of 200 requests failed"), "{out}");
}

#[test]
fn silent_backends_time_out_within_a_bound() {
    let url = serve(Behaviour::Silent);
    let plan = plan("silent", "timeout = \"200ms\"\n");
    let started = Instant::now();
    let (code, out) = verify(&plan, &["--url", &url, "--requests", "16"]);
    std::fs::remove_file(&plan).unwrap();
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("16 timeouts"), "{out}");
    // 16 requests, 8 at a time, 200 ms each: two rounds, plus start-up.
    assert!(started.elapsed() < Duration::from_secs(10), "{out}");
}

#[test]
fn without_plan_weights_the_translated_virtual_service_sets_them() {
    let path = std::path::Path::new("plans/color.toml");
    let text = std::fs::read_to_string(root().join(path)).unwrap();
    let start = text.find("[routing.color]").unwrap();
    let end = start + text[start..].find("\n\n").unwrap_or(text.len() - start);
    let text = format!("{}{}", &text[..start], &text[end..]);
    let planned = meshplan::pipeline::plan_offline(
        meshplan::plan::PlanFile::parse(path, text).unwrap(),
        None,
    )
    .unwrap();
    let weights = meshplan::verify::expected_weights(&planned, "color").unwrap();
    assert_eq!(
        weights.keys().map(String::as_str).collect::<Vec<_>>(),
        ["blue", "green", "red"]
    );
    assert_eq!(weights.values().sum::<u32>(), 100);
}

#[test]
fn plans_that_state_weights_need_no_manifests() {
    let url = serve(Behaviour::Weighted([10, 40, 50]));
    let plan = plan("live", "");
    let text = std::fs::read_to_string(&plan).unwrap();
    let start = text.find("manifests").unwrap();
    let end = start + text[start..].find('\n').unwrap() + 1;
    let text = format!("{}context = \"nowhere\"\n{}", &text[..start], &text[end..]);
    std::fs::write(&plan, text).unwrap();
    let (code, out) = verify(&plan, &["--url", &url, "--requests", "500"]);
    std::fs::remove_file(&plan).unwrap();
    assert_eq!(code, 0, "{out}");
}
