//! TLS for PostgreSQL connections, through rustls (ring), with libpq's
//! `sslmode` meanings: `prefer`/`require` encrypt without verifying the
//! server's certificate, `verify-ca` checks it against `sslrootcert`,
//! `verify-full` also checks that it names the host.

use super::postgres_url::{Connection, TlsMode};
use super::Cause;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::sync::Arc;
use tokio_postgres_rustls::MakeRustlsConnect;

/// The connector for `connection`'s TLS mode (unused under `disable`).
pub(crate) fn connector(connection: &Connection) -> Result<MakeRustlsConnect, Cause> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder =
        ClientConfig::builder_with_provider(provider.clone()).with_safe_default_protocol_versions().map_err(|e| Cause(format!("cannot set up TLS: {e}")))?;
    let config = match connection.tls {
        TlsMode::Disable | TlsMode::Prefer | TlsMode::Require => {
            builder.dangerous().with_custom_certificate_verifier(Arc::new(Unverified(provider.signature_verification_algorithms))).with_no_client_auth()
        }
        TlsMode::VerifyCa | TlsMode::VerifyFull => {
            let roots = roots(connection)?;
            let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| Cause(format!("cannot set up TLS verification: {e}")))?;
            let verifier: Arc<dyn ServerCertVerifier> = if connection.tls == TlsMode::VerifyCa { Arc::new(AnyName(verifier)) } else { verifier };
            builder.dangerous().with_custom_certificate_verifier(verifier).with_no_client_auth()
        }
    };
    Ok(MakeRustlsConnect::new(config))
}

/// The certificate authorities of `sslrootcert` (a PEM file).
fn roots(connection: &Connection) -> Result<RootCertStore, Cause> {
    let mode = if connection.tls == TlsMode::VerifyCa { "verify-ca" } else { "verify-full" };
    let Some(path) = connection.root_certificates.as_ref().filter(|p| p.is_file()) else {
        return Err(Cause(format!(
            "sslmode={mode} needs the certificate authority's PEM file: add sslrootcert=FILE to the URL (or put it in ~/.postgresql/root.crt)"
        )));
    };
    let mut roots = RootCertStore::empty();
    let certificates = CertificateDer::pem_file_iter(path).map_err(|e| Cause(format!("cannot read sslrootcert: {e}")))?;
    for certificate in certificates {
        let certificate = certificate.map_err(|e| Cause(format!("cannot read sslrootcert: {e}")))?;
        roots.add(certificate).map_err(|e| Cause(format!("sslrootcert holds a certificate that cannot be used: {e}")))?;
    }
    if roots.is_empty() {
        return Err(Cause("sslrootcert holds no certificate".into()));
    }
    Ok(roots)
}

/// `prefer`/`require`: any certificate, but the handshake's signatures are
/// still checked, so the session is encrypted to whoever holds its key.
#[derive(Debug)]
struct Unverified(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(&self, message: &[u8], cert: &CertificateDer<'_>, dss: &DigitallySignedStruct) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(&self, message: &[u8], cert: &CertificateDer<'_>, dss: &DigitallySignedStruct) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// `verify-ca`: the chain must lead to a trusted authority; the name in
/// the certificate is not compared with the host.
#[derive(Debug)]
struct AnyName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.0.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. })) => {
                Ok(ServerCertVerified::assertion())
            }
            other => other,
        }
    }

    fn verify_tls12_signature(&self, message: &[u8], cert: &CertificateDer<'_>, dss: &DigitallySignedStruct) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(&self, message: &[u8], cert: &CertificateDer<'_>, dss: &DigitallySignedStruct) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}
