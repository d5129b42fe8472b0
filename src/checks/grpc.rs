//! gRPC health checks: `grpc.health.v1.Health/Check`, the standard health
//! protocol (gRPC's `doc/health-checking.md`) that Kubernetes' gRPC probes,
//! Consul and `grpc_health_probe` speak.
//!
//! A check asks about its `service` (empty: the whole server) and is
//! healthy iff the answer is `SERVING`, within the whole-check deadline.
//! The other answers are its reasons: `NOT_SERVING`, `SERVICE_UNKNOWN`
//! (the server does not know the service: gRPC status `NOT_FOUND`),
//! `UNIMPLEMENTED` (the server has no health service), any other gRPC
//! status by its name, and the reasons of TCP and TLS for a connection that
//! does not get that far.
//!
//! The stack is tonic's gRPC client with the generated health client of
//! `tonic-health`, over hyper's HTTP/2 client. The connection is heartbeat's
//! own, as for the other network checks: the name goes through
//! [`super::resolve`], the connection through the TCP check's connect and TLS
//! through native-tls with `h2` offered by ALPN. Each run opens a fresh
//! connection and drives it beside the call, inside the check's future,
//! so that a check that gives up closes everything it opened; the request
//! carries the time left as its `grpc-timeout`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite};
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use super::{
    Check, CheckFuture, CheckResult, block_on, certificate, deadline, http, tcp, timed_out,
    within_deadline,
};
use crate::model::{GrpcProbe, host_port, quote};

/// Largest health response accepted, in bytes (a `HealthCheckResponse` is
/// two bytes).
const MAX_RESPONSE: usize = 64 * 1024;

/// Most characters of a gRPC status message quoted in a reason.
const MESSAGE_CHARS: usize = 100;

/// A gRPC health check.
#[derive(Debug)]
pub struct GrpcCheck {
    host: String,
    port: u16,
    service: String,
    /// `:authority`, and with TLS the name the certificate must carry.
    authority: String,
    tls: Option<Arc<tokio_native_tls::TlsConnector>>,
    min_validity: Option<Duration>,
    timeout: Duration,
    origin: hyper::Uri,
}

impl GrpcCheck {
    /// A check of `probe` with a whole-check deadline of `timeout`; `tls`
    /// is the connector (offering `h2`) for its TLS setting, required when
    /// `probe.tls` is set.
    ///
    /// # Errors
    /// When the authority does not make a valid URI authority.
    pub(crate) fn new(
        probe: &GrpcProbe,
        timeout: Duration,
        tls: Option<Arc<tokio_native_tls::TlsConnector>>,
    ) -> Result<GrpcCheck, String> {
        let authority = probe
            .authority
            .clone()
            .unwrap_or_else(|| host_port(&probe.host, probe.port));
        let scheme = if tls.is_some() { "https" } else { "http" };
        let origin = format!("{scheme}://{authority}")
            .parse()
            .map_err(|_| format!("invalid authority {authority:?}"))?;
        Ok(GrpcCheck {
            host: probe.host.clone(),
            port: probe.port,
            service: probe.service.clone(),
            authority,
            tls,
            min_validity: probe.tls.as_ref().and_then(|t| t.min_validity),
            timeout,
            origin,
        })
    }

    async fn check(&self) -> CheckResult {
        let start = Instant::now();
        let mut expiry = None;
        let outcome = within_deadline(start, self.timeout, self.ask(start, &mut expiry)).await;
        CheckResult::of_probe(outcome, start, expiry)
    }

    /// Connects, opens TLS if asked (noting the certificate's expiry), and
    /// calls the health service: the success or the failure reason.
    async fn ask(&self, start: Instant, expiry: &mut Option<SystemTime>) -> Result<String, String> {
        let stream = tcp::open(&self.host, self.port, start, self.timeout).await?;
        let _ = stream.set_nodelay(true);
        let Some(tls) = &self.tls else {
            return self.call(stream, start).await;
        };
        let stream = tls
            .connect(authority_host(&self.authority), stream)
            .await
            .map_err(|e| http::tls_reason(&e))?;
        *expiry = certificate::leaf_expiry(&stream);
        certificate::require(self.min_validity, *expiry)?;
        self.call(stream, start).await
    }

    /// `Health/Check` over HTTP/2 on `io`.
    async fn call<S>(&self, io: S, start: Instant) -> Result<String, String>
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let (sender, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
            .max_header_list_size(64 * 1024)
            .handshake::<_, tonic::body::Body>(TokioIo::new(io))
            .await
            .map_err(|e| transport_reason(&e))?;
        let mut client = HealthClient::with_origin(Http2(sender), self.origin.clone())
            .max_decoding_message_size(MAX_RESPONSE);
        let mut request = tonic::Request::new(HealthCheckRequest {
            service: self.service.clone(),
        });
        let left = deadline(start, self.timeout).saturating_duration_since(Instant::now());
        request.set_timeout(left.max(Duration::from_millis(1)));
        let call = client.check(request);
        // The connection is driven here, beside the call, as in
        // `http::request`: when the check ends, both are dropped.
        let mut call = std::pin::pin!(call);
        let mut conn = std::pin::pin!(conn);
        let answer = tokio::select! {
            biased;
            answer = &mut call => answer,
            _ = &mut conn => call.await,
        };
        match answer {
            Ok(response) => match response.into_inner().status() {
                ServingStatus::Serving => Ok("SERVING".to_owned()),
                ServingStatus::NotServing => Err("NOT_SERVING".to_owned()),
                ServingStatus::ServiceUnknown => Err(self.service_unknown()),
                ServingStatus::Unknown => Err("UNKNOWN: the server does not know".to_owned()),
            },
            Err(status) => Err(self.status_reason(&status)),
        }
    }

    fn service_unknown(&self) -> String {
        if self.service.is_empty() {
            "SERVICE_UNKNOWN".to_owned()
        } else {
            format!(
                "SERVICE_UNKNOWN: the server does not know {:?}",
                self.service
            )
        }
    }

    /// The reason for a call that ended with a gRPC status other than OK.
    fn status_reason(&self, status: &tonic::Status) -> String {
        if let Some(io) = io_source(status) {
            return tcp::describe(io);
        }
        match status.code() {
            Code::NotFound => self.service_unknown(),
            Code::Unimplemented => "UNIMPLEMENTED: the server has no health service".to_owned(),
            Code::DeadlineExceeded => timed_out(self.timeout),
            code => {
                let message = status.message().trim();
                if message.is_empty() {
                    code_name(code).to_owned()
                } else {
                    let quoted = quote(message.as_bytes(), MESSAGE_CHARS);
                    format!("{}: {quoted}", code_name(code))
                }
            }
        }
    }
}

impl Check for GrpcCheck {
    fn run(&self) -> CheckResult {
        let this = Arc::new(GrpcCheck {
            host: self.host.clone(),
            port: self.port,
            service: self.service.clone(),
            authority: self.authority.clone(),
            tls: self.tls.clone(),
            min_validity: self.min_validity,
            timeout: self.timeout,
            origin: self.origin.clone(),
        });
        block_on(Box::pin(async move { this.check().await }))
    }

    fn probe(self: Arc<Self>) -> Option<CheckFuture> {
        Some(Box::pin(async move { self.check().await }))
    }
}

/// hyper's HTTP/2 sender as the service tonic's client calls.
struct Http2(hyper::client::conn::http2::SendRequest<tonic::body::Body>);

type ResponseFuture =
    Pin<Box<dyn Future<Output = Result<hyper::Response<Incoming>, hyper::Error>> + Send>>;

impl tonic::codegen::Service<hyper::Request<tonic::body::Body>> for Http2 {
    type Response = hyper::Response<Incoming>;
    type Error = hyper::Error;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), hyper::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: hyper::Request<tonic::body::Body>) -> ResponseFuture {
        Box::pin(self.0.send_request(request))
    }
}

/// The I/O error under a status, if the call failed on the transport.
fn io_source(status: &tonic::Status) -> Option<&std::io::Error> {
    use std::error::Error as _;
    let mut source = status.source();
    while let Some(inner) = source {
        if let Some(io) = inner.downcast_ref::<std::io::Error>() {
            return Some(io);
        }
        source = inner.source();
    }
    None
}

/// A short reason for an HTTP/2 connection that failed before any call.
fn transport_reason(e: &hyper::Error) -> String {
    use std::error::Error as _;
    let mut source = e.source();
    while let Some(inner) = source {
        if let Some(io) = inner.downcast_ref::<std::io::Error>() {
            return tcp::describe(io);
        }
        source = inner.source();
    }
    format!("HTTP/2 failed: {e}")
}

/// The host part of an authority (`api.example:443` → `api.example`,
/// `[::1]:50051` → `::1`): the name TLS verifies the certificate against
/// and sends as SNI.
fn authority_host(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host,
        _ => authority,
    }
}

/// The name gRPC gives a status code (`UNAVAILABLE`), as in
/// `grpc/status.proto`.
fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tls_name_is_the_host_of_the_authority() {
        assert_eq!(authority_host("api.example:443"), "api.example");
        assert_eq!(authority_host("api.example"), "api.example");
        assert_eq!(authority_host("[::1]:50051"), "::1");
        assert_eq!(authority_host("10.0.0.1:50051"), "10.0.0.1");
    }

    #[test]
    fn statuses_read_as_grpc_names_them() {
        let check = GrpcCheck::new(
            &GrpcProbe {
                host: "127.0.0.1".into(),
                port: 50051,
                service: "shop.Cart".into(),
                authority: None,
                tls: None,
            },
            Duration::from_secs(2),
            None,
        )
        .unwrap();
        assert_eq!(check.authority, "127.0.0.1:50051");
        let reason = |s: tonic::Status| check.status_reason(&s);
        assert_eq!(
            reason(tonic::Status::not_found("unknown service")),
            r#"SERVICE_UNKNOWN: the server does not know "shop.Cart""#
        );
        assert_eq!(
            reason(tonic::Status::unimplemented("")),
            "UNIMPLEMENTED: the server has no health service"
        );
        assert_eq!(
            reason(tonic::Status::deadline_exceeded("")),
            "timed out after 2s"
        );
        assert_eq!(
            reason(tonic::Status::unavailable("draining\n")),
            r#"UNAVAILABLE: "draining""#
        );
        assert_eq!(
            reason(tonic::Status::permission_denied("")),
            "PERMISSION_DENIED"
        );
    }
}
