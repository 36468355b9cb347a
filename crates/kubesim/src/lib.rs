//! kubesim: an in-memory Kubernetes API server over HTTP.
