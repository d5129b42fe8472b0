//! A client of etcd v3's JSON gateway: the lease and election calls the
//! cluster needs, over every configured member, each call within a
//! deadline.
//!
//! etcd serves its gRPC API as JSON on the client port (the grpc-gateway,
//! under `/v3/`, since etcd 3.4): a call is `POST /v3/lease/grant` with the
//! request message as JSON, and the answer is the response message as
//! JSON, or `{"error", "message", "code"}` with a gRPC status code. 64-bit
//! integers travel as strings, keys and values as base64. See etcd's
//! `Documentation/dev-guide/api_grpc_gateway.md` and the messages of
//! `etcdserverpb` (lease) and `v3electionpb` (election).
//!
//! Each call opens a fresh connection (HTTP/1.1, `Connection: close`) to
//! one member, so that no pooled connection can be silently dead. A call
//! goes first to the member that answered last, and on a failure of
//! transport, a timeout, or an answer that says the member cannot serve
//! it now (gRPC `UNAVAILABLE`, `DEADLINE_EXCEEDED`, … — a member without
//! quorum says so), to the next one, round and round until the caller's
//! deadline. An answer that is an etcd verdict (a lease not found) is
//! final. This is how etcd's own Go client fails over between endpoints.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::body::Bytes;
use hyper::header::{CONNECTION, CONTENT_TYPE, HOST, USER_AGENT};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::checks::{tcp, tls};
use crate::model::{EtcdEndpoint, EtcdTls, host_port};

/// Largest answer read, in bytes: the calls used here answer in a few
/// hundred.
const ANSWER_CAP: usize = 64 * 1024;

/// The pause before going round the members again once each has failed.
const ROUND_PAUSE: Duration = Duration::from_millis(100);

const AGENT: &str = concat!("heartbeat/", env!("CARGO_PKG_VERSION"));

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EtcdError {
    /// No member answered in time: the last failure of each member tried,
    /// `http://10.0.0.1:2379: connection refused`.
    Unreachable(String),
    /// A member answered with an error that is etcd's verdict on the
    /// request (gRPC status `code`), not on its own availability.
    Refused {
        /// The gRPC status code (`5` is `NOT_FOUND`).
        code: i64,
        /// etcd's message: `etcdserver: requested lease not found`.
        message: String,
    },
}

impl std::fmt::Display for EtcdError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EtcdError::Unreachable(why) => write!(f, "etcd unreachable: {why}"),
            EtcdError::Refused { message, .. } => write!(f, "etcd refused: {message}"),
        }
    }
}

/// gRPC status codes after which another member may do better
/// (grpc's `codes`): CANCELLED, UNKNOWN (a member shutting down), DEADLINE_EXCEEDED,
/// RESOURCE_EXHAUSTED, ABORTED, INTERNAL, UNAVAILABLE.
const RETRY_ELSEWHERE: [i64; 7] = [1, 2, 4, 8, 10, 13, 14];

/// etcd's answer to `Leader` for an election without a candidate
/// (`concurrency.ErrElectionNoLeader`, with code UNKNOWN); not to be
/// confused with `etcdserver: no leader`, a member without quorum.
const NO_CANDIDATE: &str = "election: no leader";

/// gRPC's `NOT_FOUND`.
const NOT_FOUND: i64 = 5;

/// A lease as etcd granted it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Granted {
    /// The lease id.
    pub id: i64,
    /// Its TTL as granted: etcd raises a TTL below its minimum (1.5 ×
    /// its election timeout, rounded up to a second).
    pub ttl: Duration,
}

/// The leader of an election, as etcd's `Leader` call tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leader {
    /// The value of its key: the leading node's name, as it wrote it.
    pub value: String,
    /// The lease its key is bound to.
    pub lease: i64,
}

/// A client of the etcd members of `[cluster]`.
pub struct Etcd {
    endpoints: Vec<EtcdEndpoint>,
    tls: Option<Arc<tokio_native_tls::TlsConnector>>,
    /// The member to ask first: the last one that answered.
    preferred: AtomicUsize,
}

impl std::fmt::Debug for Etcd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Etcd")
            .field("endpoints", &self.endpoints)
            .finish_non_exhaustive()
    }
}

impl Etcd {
    /// A client of `endpoints` (at least one), with TLS from `tls` for the
    /// `https://` ones.
    ///
    /// # Errors
    /// A message naming the file when `ca_file`, `cert_file` or `key_file`
    /// cannot be read or is not what it should be, or when the TLS library
    /// refuses to build a context.
    pub fn new(endpoints: Vec<EtcdEndpoint>, tls: &EtcdTls) -> Result<Etcd, String> {
        let tls = if endpoints.iter().any(|e| e.https) {
            Some(Arc::new(connector(tls)?))
        } else {
            None
        };
        Ok(Etcd {
            endpoints,
            tls,
            preferred: AtomicUsize::new(0),
        })
    }

    /// Grants a lease of `ttl` (whole seconds), trying members until
    /// `until`, each for at most `attempt`.
    ///
    /// # Errors
    /// [`EtcdError`]; `Refused` when etcd refuses the TTL.
    pub async fn grant(
        &self,
        ttl: Duration,
        attempt: Duration,
        until: Instant,
    ) -> Result<Granted, EtcdError> {
        let body = json!({ "TTL": ttl.as_secs() });
        let answer = self.call("/v3/lease/grant", &body, attempt, until).await?;
        let id = int(&answer["ID"]).ok_or_else(|| malformed("lease/grant", &answer))?;
        let granted = int(&answer["TTL"]).unwrap_or(0);
        if granted <= 0 {
            return Err(malformed("lease/grant", &answer));
        }
        Ok(Granted {
            id,
            ttl: Duration::from_secs(granted.unsigned_abs()),
        })
    }

    /// Renews lease `id` once (etcd's `LeaseKeepAlive`, one message):
    /// its TTL as etcd now counts it, or `None` when etcd no longer has
    /// the lease (it expired or was revoked).
    ///
    /// # Errors
    /// [`EtcdError::Unreachable`] when no member renewed it by `until`.
    pub async fn keep_alive(
        &self,
        id: i64,
        attempt: Duration,
        until: Instant,
    ) -> Result<Option<Duration>, EtcdError> {
        let body = json!({ "ID": id.to_string() });
        let answer = match self
            .call("/v3/lease/keepalive", &body, attempt, until)
            .await
        {
            Err(EtcdError::Refused {
                code: NOT_FOUND, ..
            }) => return Ok(None),
            other => other?,
        };
        // A stream's message comes wrapped: {"result": {...}}.
        let message = answer.get("result").unwrap_or(&answer);
        Ok(int(&message["TTL"])
            .filter(|&ttl| ttl > 0)
            .map(|ttl| Duration::from_secs(ttl.unsigned_abs())))
    }

    /// Revokes lease `id`, deleting the keys bound to it. A lease etcd no
    /// longer has counts as revoked.
    ///
    /// # Errors
    /// [`EtcdError`].
    pub async fn revoke(
        &self,
        id: i64,
        attempt: Duration,
        until: Instant,
    ) -> Result<(), EtcdError> {
        let body = json!({ "ID": id.to_string() });
        match self.call("/v3/lease/revoke", &body, attempt, until).await {
            Ok(_)
            | Err(EtcdError::Refused {
                code: NOT_FOUND, ..
            }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Campaigns in election `name` with lease `id`, writing `value`:
    /// returns once this candidate leads (etcd's `Campaign`: a key
    /// `name/<lease in hex>` bound to the lease, elected once every key of
    /// the election created before it is gone). One member only, the
    /// preferred one: the call waits as long as another candidate leads,
    /// up to `timeout`. The lease id of the key etcd says leads.
    ///
    /// When the call is dropped or fails, etcd deletes the candidate's key
    /// (its `Campaign` resigns when its request is cancelled): the caller
    /// does not use the lease for another campaign.
    ///
    /// # Errors
    /// [`EtcdError`].
    pub async fn campaign(
        &self,
        name: &str,
        id: i64,
        value: &str,
        timeout: Duration,
    ) -> Result<i64, EtcdError> {
        let body = json!({
            "name": BASE64.encode(name),
            "lease": id.to_string(),
            "value": BASE64.encode(value),
        });
        let until = Instant::now() + timeout;
        let answer = self
            .call_once("/v3/election/campaign", &body, until)
            .await?;
        int(&answer["leader"]["lease"]).ok_or_else(|| malformed("election/campaign", &answer))
    }

    /// Who leads election `name` (etcd's `Leader`: the key of the election
    /// created first), or `None` when no candidate has a key.
    ///
    /// # Errors
    /// [`EtcdError`].
    pub async fn leader(
        &self,
        name: &str,
        attempt: Duration,
        until: Instant,
    ) -> Result<Option<Leader>, EtcdError> {
        let body = json!({ "name": BASE64.encode(name) });
        let answer = match self
            .call("/v3/election/leader", &body, attempt, until)
            .await
        {
            Err(EtcdError::Refused { message, .. }) if message == NO_CANDIDATE => {
                return Ok(None);
            }
            other => other?,
        };
        let kv = &answer["kv"];
        let value = kv["value"]
            .as_str()
            .and_then(|v| BASE64.decode(v).ok())
            .map(|v| String::from_utf8_lossy(&v).into_owned())
            .unwrap_or_default();
        let lease = int(&kv["lease"]).unwrap_or(0);
        Ok(Some(Leader { value, lease }))
    }

    /// Calls `path` with `body`, member after member, each for at most
    /// `attempt`, until one answers or `until` passes. A failure to reach
    /// any member returns at `until`, not before.
    async fn call(
        &self,
        path: &str,
        body: &Value,
        attempt: Duration,
        until: Instant,
    ) -> Result<Value, EtcdError> {
        let n = self.endpoints.len();
        let mut failures: Vec<String> = Vec::new();
        loop {
            let first = self.preferred.load(Ordering::Relaxed);
            for k in 0..n {
                let now = Instant::now();
                if now >= until {
                    return Err(unreachable(failures));
                }
                let i = (first + k) % n;
                let deadline = until.min(now + attempt);
                match self.exchange(i, path, body, deadline).await {
                    Ok(answer) => {
                        self.preferred.store(i, Ordering::Relaxed);
                        return Ok(answer);
                    }
                    Err(Failure::Verdict(e)) => {
                        self.preferred.store(i, Ordering::Relaxed);
                        return Err(e);
                    }
                    Err(Failure::Member(why)) => {
                        let line = format!("{}: {why}", self.endpoints[i]);
                        failures.retain(|f| !f.starts_with(&format!("{}:", self.endpoints[i])));
                        failures.push(line);
                    }
                }
            }
            // Every member failed: again after a pause, or, when the
            // deadline comes first, at the deadline (the caller counts on
            // a failure meaning that the deadline has passed).
            let pause = (Instant::now() + ROUND_PAUSE).min(until);
            tokio::time::sleep_until(pause.into()).await;
            if pause >= until {
                return Err(unreachable(failures));
            }
        }
    }

    /// Calls `path` on the preferred member only, until `until`; a
    /// failure of that member moves the preference to the next one.
    async fn call_once(
        &self,
        path: &str,
        body: &Value,
        until: Instant,
    ) -> Result<Value, EtcdError> {
        let n = self.endpoints.len();
        let i = self.preferred.load(Ordering::Relaxed) % n;
        match self.exchange(i, path, body, until).await {
            Ok(answer) => Ok(answer),
            Err(Failure::Verdict(e)) => Err(e),
            Err(Failure::Member(why)) => {
                let _ = self.preferred.compare_exchange(
                    i,
                    (i + 1) % n,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
                Err(EtcdError::Unreachable(format!(
                    "{}: {why}",
                    self.endpoints[i]
                )))
            }
        }
    }

    /// One request to member `i`, within `deadline`.
    async fn exchange(
        &self,
        i: usize,
        path: &str,
        body: &Value,
        deadline: Instant,
    ) -> Result<Value, Failure> {
        let endpoint = &self.endpoints[i];
        let start = Instant::now();
        let timeout = deadline.saturating_duration_since(start);
        let work = async {
            let stream = tcp::open(&endpoint.host, endpoint.port, start, timeout)
                .await
                .map_err(Failure::Member)?;
            let _ = stream.set_nodelay(true);
            let host = host_port(&endpoint.host, endpoint.port);
            let body = body.to_string();
            let (status, text) = match &self.tls {
                Some(tls) if endpoint.https => {
                    let stream = tls
                        .connect(&endpoint.host, stream)
                        .await
                        .map_err(|e| Failure::Member(tls::describe(&e)))?;
                    post(stream, &host, path, body).await?
                }
                _ => post(stream, &host, path, body).await?,
            };
            judge(status, &text)
        };
        match tokio::time::timeout_at(deadline.into(), work).await {
            Ok(result) => result,
            Err(_) => Err(Failure::Member(format!(
                "no answer within {}",
                crate::model::short_duration(timeout)
            ))),
        }
    }
}

/// Why one request failed.
#[derive(Debug)]
enum Failure {
    /// The member could not serve it: try another.
    Member(String),
    /// etcd's answer: final.
    Verdict(EtcdError),
}

/// The message of an answer, or what its error says.
fn judge(status: u16, text: &[u8]) -> Result<Value, Failure> {
    let value: Value = serde_json::from_slice(text).map_err(|_| {
        Failure::Member(format!(
            "HTTP {status} without a JSON answer (is this an etcd client URL?)"
        ))
    })?;
    // A stream's error comes wrapped too: {"error": {...}}.
    let error = match value.get("error") {
        Some(Value::Object(inner)) => Some(Value::Object(inner.clone())),
        Some(Value::String(_)) => Some(value.clone()),
        _ => None,
    };
    if let Some(error) = error {
        let code = int(&error["code"]).unwrap_or(2);
        let message = error["message"]
            .as_str()
            .or_else(|| error["error"].as_str())
            .unwrap_or("no message")
            .to_owned();
        if RETRY_ELSEWHERE.contains(&code) && message != NO_CANDIDATE {
            return Err(Failure::Member(message));
        }
        return Err(Failure::Verdict(EtcdError::Refused { code, message }));
    }
    if !(200..300).contains(&status) {
        return Err(Failure::Member(format!("HTTP {status}")));
    }
    Ok(value)
}

/// Sends `POST path` with the JSON `body` over `io`; the status and up to
/// [`ANSWER_CAP`] bytes of the answer.
async fn post<T>(io: T, host: &str, path: &str, body: String) -> Result<(u16, Vec<u8>), Failure>
where
    T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let member = |e: hyper::Error| Failure::Member(describe(&e));
    let (mut sender, conn) = hyper::client::conn::http1::Builder::new()
        .handshake::<_, Full<Bytes>>(TokioIo::new(io))
        .await
        .map_err(member)?;
    let request = Request::post(path)
        .header(HOST, host)
        .header(USER_AGENT, AGENT)
        .header(CONTENT_TYPE, "application/json")
        .header(CONNECTION, "close")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| Failure::Member(format!("invalid request: {e}")))?;
    let exchange = async move {
        let response = sender.send_request(request).await.map_err(member)?;
        let status = response.status().as_u16();
        let mut body = response.into_body();
        let mut kept = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(member)?;
            if let Ok(data) = frame.into_data() {
                if kept.len() + data.len() > ANSWER_CAP {
                    return Err(Failure::Member(format!(
                        "answer longer than {ANSWER_CAP} bytes"
                    )));
                }
                kept.extend_from_slice(&data);
            }
        }
        Ok((status, kept))
    };
    // The connection is driven beside the exchange: dropping the call
    // closes the socket.
    let mut exchange = std::pin::pin!(exchange);
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        biased;
        answer = &mut exchange => answer,
        _ = &mut conn => exchange.await,
    }
}

/// A short reason for a failed HTTP exchange.
fn describe(e: &hyper::Error) -> String {
    if e.is_incomplete_message() || e.is_canceled() {
        return "connection closed before an answer".into();
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        text = format!("{text}: {inner}");
        source = inner.source();
    }
    text
}

/// A 64-bit integer of a gateway answer: a string (`"123"`) or a number.
fn int(value: &Value) -> Option<i64> {
    match value {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

fn malformed(call: &str, answer: &Value) -> EtcdError {
    let mut text = answer.to_string();
    text.truncate(200);
    EtcdError::Unreachable(format!("unexpected answer to {call}: {text}"))
}

fn unreachable(failures: Vec<String>) -> EtcdError {
    if failures.is_empty() {
        return EtcdError::Unreachable("no member tried before the deadline".into());
    }
    EtcdError::Unreachable(failures.join("; "))
}

/// The TLS connector of `https://` members: the system roots plus
/// `ca_file`, and the client certificate for mutual TLS.
fn connector(tls: &EtcdTls) -> Result<tokio_native_tls::TlsConnector, String> {
    let mut builder = native_tls::TlsConnector::builder();
    if let Some(path) = &tls.ca_file {
        for cert in tls::read_ca_file(path)? {
            builder.add_root_certificate(cert);
        }
    }
    if let Some((cert, key)) = &tls.identity {
        let read = |key: &str, path: &std::path::Path| {
            std::fs::read(path).map_err(|e| {
                format!(
                    "[cluster] {key} {}: cannot read it: {}",
                    path.display(),
                    tcp::strip_os_error(&e.to_string())
                )
            })
        };
        let identity = native_tls::Identity::from_pkcs8(&read("cert_file", cert)?, &read("key_file", key)?)
            .map_err(|e| {
                format!(
                    "[cluster] cert_file {} and key_file {}: not a PEM certificate and its PKCS#8 PEM key: {e}",
                    cert.display(),
                    key.display()
                )
            })?;
        builder.identity(identity);
    }
    let inner = builder
        .build()
        .map_err(|e| format!("[cluster]: cannot set up TLS: {e}"))?;
    Ok(tokio_native_tls::TlsConnector::from(inner))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_judged_as_etcd_means_them() {
        let ok = judge(200, br#"{"header":{},"ID":"7","TTL":"5"}"#).unwrap();
        assert_eq!(int(&ok["ID"]), Some(7));
        // A member without quorum, or shutting down: ask another.
        let e = judge(
            503,
            br#"{"error":"etcdserver: no leader","message":"etcdserver: no leader","code":14}"#,
        );
        assert!(matches!(e, Err(Failure::Member(m)) if m == "etcdserver: no leader"));
        // An election without a candidate is an answer, not a failure.
        let e = judge(
            500,
            br#"{"error":"election: no leader","message":"election: no leader","code":2}"#,
        );
        assert!(matches!(
            e,
            Err(Failure::Verdict(EtcdError::Refused { code: 2, .. }))
        ));
        let e = judge(
            404,
            br#"{"error":{"code":5,"message":"etcdserver: requested lease not found"}}"#,
        );
        assert!(matches!(
            e,
            Err(Failure::Verdict(EtcdError::Refused { code: 5, .. }))
        ));
        assert!(matches!(judge(502, b"<html>"), Err(Failure::Member(_))));
        assert!(matches!(judge(502, b"{}"), Err(Failure::Member(_))));
    }

    #[test]
    fn integers_come_as_strings_or_numbers() {
        assert_eq!(
            int(&json!("4111120377913221383")),
            Some(4_111_120_377_913_221_383)
        );
        assert_eq!(int(&json!(5)), Some(5));
        assert_eq!(int(&json!(null)), None);
    }
}
