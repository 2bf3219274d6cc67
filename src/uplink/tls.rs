//! TLS to the broker with rustls and the ring provider (no aws-lc, no OpenSSL): the broker is
//! authenticated by the configured CA; the station optionally by a client certificate (mutual
//! TLS). Files are read once at start; problems name the file and what is wrong with it.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};

/// PEM files for a TLS connection.
#[derive(Debug, Clone)]
pub struct TlsFiles<'a> {
    pub ca: &'a Path,
    pub client: Option<(&'a Path, &'a Path)>,
}

fn certs(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{what} {}: {e}", path.display()))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{what} {}: not a PEM certificate file: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{what} {}: no certificate found (expected PEM `BEGIN CERTIFICATE`)",
            path.display()
        ));
    }
    Ok(certs)
}

/// Builds the rustls client configuration.
pub fn client_config(files: &TlsFiles<'_>) -> Result<Arc<ClientConfig>, String> {
    let mut roots = RootCertStore::empty();
    for cert in certs(files.ca, "mqtt.tls.ca_file")? {
        roots
            .add(cert)
            .map_err(|e| format!("mqtt.tls.ca_file {}: {e}", files.ca.display()))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_root_certificates(roots);
    let config = match files.client {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let chain = certs(cert, "mqtt.tls.client_cert_file")?;
            // A secret file: no symbolic link, owner and mode checked on the opened file.
            let bytes = crate::secret_file::read(key)
                .map_err(|e| format!("mqtt.tls.client_key_file: {e}"))?;
            let key_der = PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| {
                format!(
                    "mqtt.tls.client_key_file {}: no PKCS#8, SEC1 or PKCS#1 private key: {e}",
                    key.display()
                )
            })?;
            builder
                .with_client_auth_cert(chain, key_der)
                .map_err(|e| format!("mqtt.tls.client_key_file {}: {e}", key.display()))?
        }
    };
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "not a certificate").unwrap();
        let e = client_config(&TlsFiles {
            ca: &ca,
            client: None,
        })
        .unwrap_err();
        assert!(
            e.contains("mqtt.tls.ca_file") && e.contains("ca.pem"),
            "{e}"
        );
        let missing = dir.path().join("missing.pem");
        let e = client_config(&TlsFiles {
            ca: &missing,
            client: None,
        })
        .unwrap_err();
        assert!(e.contains("missing.pem"), "{e}");
    }
}
