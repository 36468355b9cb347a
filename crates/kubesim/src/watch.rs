//! Watch streams: newline-delimited JSON events from a resourceVersion, with selectors,
//! bookmarks, initial events and `timeoutSeconds`.

use std::borrow::Cow;
use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, Response, header};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;

use crate::api::{present, presented, selectors};
use crate::error::{ApiError, ApiResult, Cause};
use crate::resources::ResourceInfo;
use crate::selector::{FieldSelector, LabelSelector};
use crate::server::App;
use crate::store::EventType;

/// What a watch sends and filters.
struct Spec {
    res: ResourceInfo,
    ns: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
    bookmarks: bool,
    table: bool,
}

impl Spec {
    fn matches(&self, obj: &Value) -> bool {
        let in_ns = match &self.ns {
            Some(ns) => obj["metadata"]["namespace"].as_str() == Some(ns),
            None => true,
        };
        in_ns && self.labels.matches_object(obj) && self.fields.matches(obj)
    }

    fn line(&self, kind: &str, obj: &Value) -> Bytes {
        /// An event line, serialised from a borrowed object: the stored one when it is already
        /// in the watched version.
        #[derive(serde::Serialize)]
        struct Line<'a> {
            #[serde(rename = "type")]
            kind: &'a str,
            object: &'a Value,
        }
        let object = if self.table && kind != "BOOKMARK" {
            Cow::Owned(crate::table::table(
                &self.res,
                &[present(&self.res, obj.clone())],
                0,
            ))
        } else {
            presented(&self.res, obj)
        };
        let mut s = serde_json::to_vec(&Line {
            kind,
            object: &object,
        })
        .expect("JSON values serialise");
        s.push(b'\n');
        Bytes::from(s)
    }

    fn bookmark(&self, rv: u64, initial_end: bool) -> Bytes {
        let mut meta = json!({"resourceVersion": rv.to_string(), "creationTimestamp": null});
        if initial_end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let mut s = json!({"type": "BOOKMARK", "object": {"kind": self.res.kind, "apiVersion": self.res.api_version(), "metadata": meta}}).to_string();
        s.push('\n');
        Bytes::from(s)
    }
}

fn invalid(detail: &str, field: &str) -> ApiError {
    ApiError::invalid_options(
        "ListOptions",
        Cause::new("FieldValueForbidden", format!("Forbidden: {detail}"), field),
    )
}

/// Starts a watch response.
pub fn serve(
    app: &App,
    res: &ResourceInfo,
    ns: Option<&str>,
    q: &HashMap<String, String>,
    accept: &str,
) -> ApiResult<Response<Body>> {
    let (labels, fields) = selectors(res, q)?;
    let send_initial = q.get("sendInitialEvents").map(|v| v == "true");
    let rv_match = q.get("resourceVersionMatch").filter(|s| !s.is_empty());
    match (send_initial, rv_match) {
        (Some(_), m) if m.map(String::as_str) != Some("NotOlderThan") => {
            return Err(invalid(
                "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
                "sendInitialEvents",
            ));
        }
        (None, Some(_)) => {
            return Err(invalid(
                "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
                "resourceVersionMatch",
            ));
        }
        _ => {}
    }
    let rv_param = q.get("resourceVersion").filter(|s| !s.is_empty());
    let from = match (send_initial, rv_param) {
        (Some(true), _) => None,
        (_, None) => None,
        (_, Some(r)) if r == "0" => None,
        (_, Some(r)) => Some(
            r.parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("invalid resource version: {r}")))?,
        ),
    };
    let spec = Spec {
        res: res.clone(),
        ns: if res.namespaced {
            ns.map(str::to_string)
        } else {
            None
        },
        labels,
        fields,
        bookmarks: q.get("allowWatchBookmarks").is_some_and(|v| v == "true"),
        table: accept.contains("as=Table"),
    };
    let timeout = q
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map(Duration::from_secs);
    let (tx, rx) = mpsc::channel::<Result<Bytes, Infallible>>(256);
    let start = app.store.watch(res, spec.ns.as_deref(), from);
    let initial_end = send_initial == Some(true);
    let mut closing = app.closing.subscribe();
    let bookmark_every = app.bookmark_interval;
    tokio::spawn(async move {
        let run = async {
            let start = match start {
                Ok(s) => s,
                Err((rv, oldest)) => {
                    let status = ApiError::new(
                        410,
                        "Expired",
                        format!("too old resource version: {rv} ({oldest})"),
                    )
                    .to_status();
                    let mut s = json!({"type": "ERROR", "object": status}).to_string();
                    s.push('\n');
                    // The client may already be gone.
                    let _ = tx.send(Ok(Bytes::from(s))).await;
                    return;
                }
            };
            let mut last_rv = start.rv;
            for obj in start.initial.into_iter().filter(|o| spec.matches(o)) {
                if tx.send(Ok(spec.line("ADDED", &obj))).await.is_err() {
                    return;
                }
            }
            if initial_end
                && spec.bookmarks
                && tx.send(Ok(spec.bookmark(start.rv, true))).await.is_err()
            {
                return;
            }
            let mut rx = start.rx;
            for ev in start.backlog {
                if let Some(line) = translate(&spec, &ev)
                    && tx.send(Ok(line)).await.is_err()
                {
                    return;
                }
                last_rv = last_rv.max(ev.rv);
            }
            let mut ticks = tokio::time::interval_at(
                tokio::time::Instant::now() + bookmark_every,
                bookmark_every,
            );
            loop {
                let ev = tokio::select! {
                    ev = rx.recv() => ev,
                    _ = tx.closed() => return,
                    _ = closing.changed() => return,
                    _ = ticks.tick(), if spec.bookmarks => {
                        // Every event up to last_rv has been seen, so resuming from it loses nothing.
                        if tx.send(Ok(spec.bookmark(last_rv, false))).await.is_err() {
                            return;
                        }
                        continue;
                    }
                };
                match ev {
                    Ok(ev) => {
                        // The receiver was subscribed under the store lock, so it only sees
                        // events after the backlog, and only of its resource.
                        last_rv = ev.rv;
                        if let Some(line) = translate(&spec, &ev)
                            && tx.send(Ok(line)).await.is_err()
                        {
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        let status = ApiError::new(
                            410,
                            "Expired",
                            format!("too old resource version: {last_rv} ({last_rv})"),
                        )
                        .to_status();
                        let mut s = json!({"type": "ERROR", "object": status}).to_string();
                        s.push('\n');
                        // The client may already be gone.
                        let _ = tx.send(Ok(Bytes::from(s))).await;
                        return;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        };
        match timeout {
            Some(t) => {
                // Ending the stream at the deadline is the point of timeoutSeconds.
                let _ = tokio::time::timeout(t, run).await;
            }
            None => run.await,
        }
    });
    let mut r = Response::new(Body::from_stream(ReceiverStream::new(rx)));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(r)
}

/// The event line a watcher sees for a stored event, accounting for selector transitions.
fn translate(spec: &Spec, ev: &crate::store::Event) -> Option<Bytes> {
    let now = spec.matches(&ev.object);
    let before = ev.old.as_ref().is_some_and(|o| spec.matches(o));
    let kind = match ev.kind {
        EventType::Added if now => "ADDED",
        EventType::Modified if now && before => "MODIFIED",
        EventType::Modified if now => "ADDED",
        EventType::Modified if before => "DELETED",
        EventType::Deleted if now || before => "DELETED",
        _ => return None,
    };
    Some(spec.line(kind, &ev.object))
}
