//! What a TLS socket tells the guest (Node's `tls.TLSSocket`: `getProtocol()`,
//! `getCipher()`, `servername`, `alpnProtocol`, `getPeerCertificate()`), and rustls's
//! errors in words a log line or an `error` event can carry.

use rustls::{CertificateError, Error};
use rustls_pki_types::CertificateDer;

/// A TLS connection's negotiated parameters, once its handshake is done.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsInfo {
    /// `TLSv1.2` or `TLSv1.3`, as Node's `getProtocol()`.
    pub protocol: String,
    /// The cipher suite's IANA name (`TLS_AES_128_GCM_SHA256`), as Node's
    /// `getCipher().standardName`.
    pub cipher: String,
    /// The server name the client sent (SNI); for a client socket, the one it sent.
    pub servername: Option<String>,
    /// The protocol agreed by ALPN.
    pub alpn: Option<String>,
    /// The peer's certificate, when it presented one that was verified (a server's, for
    /// a client socket; a client's under `--tls-client-ca`).
    pub peer: Option<PeerCertificate>,
}

/// A verified peer certificate, as Node's `getPeerCertificate()` summarises it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerCertificate {
    /// The subject's distinguished name, RFC 4514 style (`CN=client,O=Example`).
    pub subject: String,
    /// Its subject alternative names, as Node writes them (`DNS:a.example`,
    /// `URI:spiffe://...`).
    pub alt_names: Vec<String>,
}

impl TlsInfo {
    /// The parameters of `conn`, whose handshake is done.
    pub fn of(conn: &rustls::Connection, servername: Option<String>) -> TlsInfo {
        let protocol = match conn.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".to_string(),
            Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".to_string(),
            Some(other) => format!("{other:?}"),
            None => String::new(),
        };
        let cipher = conn
            .negotiated_cipher_suite()
            .map(|s| standard_name(s.suite()))
            .unwrap_or_default();
        let alpn = conn
            .alpn_protocol()
            .map(|p| String::from_utf8_lossy(p).into_owned());
        let peer = conn
            .peer_certificates()
            .and_then(|chain| chain.first())
            .map(peer_certificate);
        TlsInfo {
            protocol,
            cipher,
            servername,
            alpn,
            peer,
        }
    }
}

/// A cipher suite's IANA name: rustls writes TLS 1.3's as `TLS13_...`.
fn standard_name(suite: rustls::CipherSuite) -> String {
    let name = suite
        .as_str()
        .map_or_else(|| format!("{suite:?}"), str::to_string);
    match name.strip_prefix("TLS13_") {
        Some(rest) => format!("TLS_{rest}"),
        None => name,
    }
}

fn peer_certificate(cert: &CertificateDer<'_>) -> PeerCertificate {
    let Ok(parsed) = webpki::EndEntityCert::try_from(cert) else {
        return PeerCertificate::default();
    };
    let alt_names = parsed
        .valid_dns_names()
        .map(|n| format!("DNS:{n}"))
        .chain(parsed.valid_uri_names().map(|n| format!("URI:{n}")))
        .collect();
    // `EndEntityCert` derefs to the parsed certificate, whose subject is raw DER.
    let subject = distinguished_name(parsed.subject());
    PeerCertificate { subject, alt_names }
}

/// One DER element: its tag and contents, and what follows it.
fn element(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = der.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// The short name of an attribute type (X.520), or its dotted OID.
fn attribute_name(oid: &[u8]) -> String {
    match oid {
        [0x55, 0x04, 0x03] => "CN".into(),
        [0x55, 0x04, 0x06] => "C".into(),
        [0x55, 0x04, 0x07] => "L".into(),
        [0x55, 0x04, 0x08] => "ST".into(),
        [0x55, 0x04, 0x0a] => "O".into(),
        [0x55, 0x04, 0x0b] => "OU".into(),
        [0x55, 0x04, 0x05] => "serialNumber".into(),
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x19] => "DC".into(),
        [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01] => "emailAddress".into(),
        _ => {
            let mut arcs = Vec::new();
            if let Some((&first, rest)) = oid.split_first() {
                arcs.push(u64::from(first / 40));
                arcs.push(u64::from(first % 40));
                let mut acc = 0u64;
                for b in rest {
                    acc = (acc << 7) | u64::from(b & 0x7f);
                    if b & 0x80 == 0 {
                        arcs.push(acc);
                        acc = 0;
                    }
                }
            }
            arcs.iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(".")
        }
    }
}

/// A distinguished name's contents (a SEQUENCE OF SET OF attribute, without the outer
/// SEQUENCE) as `CN=...,O=...`, most specific first as RFC 4514 writes it. What cannot
/// be read is left out.
pub fn distinguished_name(mut der: &[u8]) -> String {
    let mut parts = Vec::new();
    while let Some((0x31, set, rest)) = element(der) {
        der = rest;
        let mut set = set;
        while let Some((0x30, attribute, rest)) = element(set) {
            set = rest;
            let Some((0x06, oid, value)) = element(attribute) else {
                continue;
            };
            let Some((_, value, _)) = element(value) else {
                continue;
            };
            let value = String::from_utf8_lossy(value);
            parts.push(format!("{}={}", attribute_name(oid), value));
        }
    }
    parts.reverse();
    parts.join(",")
}

/// A rustls error in words: what an `error` event or a log line says of a failed
/// handshake.
pub fn describe(e: &Error) -> String {
    match e {
        Error::InvalidCertificate(cert) => match cert {
            CertificateError::UnknownIssuer => {
                "certificate verify failed: unknown issuer (not signed by a trusted CA)".into()
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                format!("certificate verify failed: expired ({cert})")
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                format!("certificate verify failed: not valid yet ({cert})")
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                format!("certificate verify failed: name mismatch: {cert}")
            }
            CertificateError::BadSignature => "certificate verify failed: bad signature".into(),
            CertificateError::Revoked => "certificate verify failed: revoked".into(),
            other => format!("certificate verify failed: {other:?}"),
        },
        Error::NoCertificatesPresented => "the peer presented no certificate".into(),
        Error::InvalidMessage(_) | Error::InappropriateMessage { .. } => {
            format!("not a TLS handshake ({e})")
        }
        Error::AlertReceived(alert) => {
            format!("the peer refused the handshake: {alert:?} alert")
        }
        Error::NoApplicationProtocol => "no ALPN protocol in common with the peer".into(),
        Error::PeerIncompatible(why) => format!("the peer is incompatible: {why:?}"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_read_as_rfc_4514() {
        let mut params = rcgen::CertificateParams::new(vec!["a.test".to_string()]).unwrap();
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(rcgen::DnType::OrganizationName, "Example Org");
        dn.push(rcgen::DnType::CommonName, "client one");
        params.distinguished_name = dn;
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let peer = peer_certificate(cert.der());
        assert_eq!(peer.subject, "CN=client one,O=Example Org");
        assert_eq!(peer.alt_names, ["DNS:a.test"]);
        // Truncated input: no panic, what could be read.
        assert_eq!(distinguished_name(&[0x31, 0x80]), "");
        assert_eq!(distinguished_name(&[]), "");
    }

    #[test]
    fn oids_without_a_short_name_are_dotted() {
        assert_eq!(attribute_name(&[0x2a, 0x03, 0x04]), "1.2.3.4");
        assert_eq!(attribute_name(&[0x55, 0x04, 0x03]), "CN");
    }
}
