//! Certificate expiry of TLS checks (`https`, TCP with `tls = yes`,
//! `grpcs`): when the server's leaf certificate stops being valid, and
//! whether that is sooner than the check's `tls_min_validity` allows, as
//! monit's `certificate valid > N days` and Nagios' `check_http -C` warn
//! before a certificate expires rather than once it has.
//!
//! The expiry is read from the certificate the handshake received (its
//! `notAfter`, RFC 5280 §4.1.2.5) with OpenSSL, the library native-tls
//! runs on here. Every TLS check reports it in its result, so that
//! `heartbeat_check_certificate_expiry_timestamp_seconds` is exported
//! whether or not `tls_min_validity` is set.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncRead, AsyncWrite};

/// When the leaf certificate of `stream` expires; `None` when the peer sent
/// none or it cannot be read.
pub(crate) fn leaf_expiry<S>(stream: &tokio_native_tls::TlsStream<S>) -> Option<SystemTime>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let cert = stream.get_ref().peer_certificate().ok()??;
    not_after(&cert.to_der().ok()?)
}

/// The `notAfter` of the DER certificate `der` as a [`SystemTime`].
fn not_after(der: &[u8]) -> Option<SystemTime> {
    let cert = openssl::x509::X509::from_der(der).ok()?;
    let epoch = openssl::asn1::Asn1Time::from_unix(0).ok()?;
    let diff = epoch.diff(cert.not_after()).ok()?;
    let secs = i64::from(diff.days) * 86_400 + i64::from(diff.secs);
    let magnitude = Duration::from_secs(secs.unsigned_abs());
    if secs >= 0 {
        UNIX_EPOCH.checked_add(magnitude)
    } else {
        UNIX_EPOCH.checked_sub(magnitude)
    }
}

/// The failure reason when a certificate expiring at `expiry` is valid for
/// less than `min` after `now`: `certificate expires in 5 days
/// (2026-12-06)`, `certificate expires in 3 hours (2026-12-06)`, or
/// `certificate expired 2 days ago (2026-12-01)` (a check with `tls_verify
/// = no` gets that far). Days and hours are whole ones, rounded down; the
/// date is UTC. `None` when it is valid long enough.
pub(crate) fn too_soon(expiry: SystemTime, min: Duration, now: SystemTime) -> Option<String> {
    let date = chrono::DateTime::<chrono::Utc>::from(expiry).format("%Y-%m-%d");
    match expiry.duration_since(now) {
        Ok(left) if left >= min => None,
        Ok(left) => Some(format!("certificate expires in {} ({date})", span(left))),
        Err(past) => Some(format!(
            "certificate expired {} ago ({date})",
            span(past.duration())
        )),
    }
}

/// Whether a certificate expiring at `expiry` is valid for at least `min`
/// from now (see [`too_soon`]); without `min`, any certificate is.
///
/// # Errors
/// The reason of [`too_soon`], or `cannot read the certificate's expiry`
/// when `min` is set and the expiry is unknown.
pub(crate) fn require(min: Option<Duration>, expiry: Option<SystemTime>) -> Result<(), String> {
    match (min, expiry) {
        (None, _) => Ok(()),
        (Some(_), None) => Err("cannot read the certificate's expiry".to_owned()),
        (Some(min), Some(at)) => too_soon(at, min, SystemTime::now()).map_or(Ok(()), Err),
    }
}

/// `5 days`, `1 day`, `3 hours`, `12 minutes`, `less than a minute`.
fn span(d: Duration) -> String {
    let secs = d.as_secs();
    let (n, unit) = match secs {
        s if s >= 86_400 => (s / 86_400, "day"),
        s if s >= 3_600 => (s / 3_600, "hour"),
        s if s >= 60 => (s / 60, "minute"),
        _ => return "less than a minute".to_owned(),
    };
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);

    #[test]
    fn validity_is_told_in_whole_days_and_a_utc_date() {
        // 2026-12-01 00:00:00 UTC.
        let now = UNIX_EPOCH + Duration::from_secs(1_796_083_200);
        let in_five = now + 5 * DAY + Duration::from_secs(3600);
        assert_eq!(
            too_soon(in_five, 14 * DAY, now).as_deref(),
            Some("certificate expires in 5 days (2026-12-06)")
        );
        assert_eq!(too_soon(in_five, 2 * DAY, now), None);
        assert_eq!(too_soon(in_five, 5 * DAY, now), None);
        assert_eq!(
            too_soon(now + Duration::from_secs(3 * 3600 + 59), DAY, now).as_deref(),
            Some("certificate expires in 3 hours (2026-12-01)")
        );
        assert_eq!(
            too_soon(now + DAY + Duration::from_secs(5), 2 * DAY, now).as_deref(),
            Some("certificate expires in 1 day (2026-12-02)")
        );
        assert_eq!(
            too_soon(now - 2 * DAY - Duration::from_secs(1), DAY, now).as_deref(),
            Some("certificate expired 2 days ago (2026-11-28)")
        );
        assert_eq!(span(Duration::from_secs(59)), "less than a minute");
        assert_eq!(span(Duration::from_secs(120)), "2 minutes");
    }

    #[test]
    fn the_expiry_is_read_from_the_certificate() {
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params.not_after = rcgen::date_time_ymd(2031, 7, 14);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let expiry = not_after(cert.der()).expect("notAfter");
        // 2031-07-14 00:00:00 UTC.
        assert_eq!(expiry, UNIX_EPOCH + Duration::from_secs(1_941_753_600));
        assert_eq!(not_after(b"not a certificate"), None);
    }
}
