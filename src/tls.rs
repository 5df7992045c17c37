//! HTTPS: certificate files given by the operator, or a self-signed
//! certificate for `localhost`, `127.0.0.1` and `::1` created in the data
//! folder (for clients such as MSAL that insist on an HTTPS authority).

use std::path::{Path, PathBuf};

/// Where the certificate and its private key are (PEM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot write the self-signed certificate to {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot create a self-signed certificate: {0}")]
    Generate(String),
    #[error("cannot load the certificate {cert} and key {key}: {source}")]
    Load {
        cert: PathBuf,
        key: PathBuf,
        source: std::io::Error,
    },
}

/// The self-signed certificate of `data_dir`, created on first use.
pub fn self_signed(data_dir: &Path) -> Result<TlsFiles, TlsError> {
    let dir = data_dir.join("tls");
    let files = TlsFiles {
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    };
    if files.cert.exists() && files.key.exists() {
        return Ok(files);
    }
    let names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    let generated =
        rcgen::generate_simple_self_signed(names).map_err(|e| TlsError::Generate(e.to_string()))?;
    let write = |path: &Path, text: String| {
        crate::files::create_private_dir(&dir)
            .and_then(|()| crate::files::write_private(path, text.as_bytes()))
            .map_err(|source| TlsError::Write {
                path: path.to_owned(),
                source,
            })
    };
    write(&files.key, generated.signing_key.serialize_pem())?;
    write(&files.cert, generated.cert.pem())?;
    Ok(files)
}

/// Makes ring rustls's process-wide cryptography (once; later calls are no-ops).
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The TLS acceptor for `files` (HTTP/1.1 only, as the server speaks).
pub fn load(files: &TlsFiles) -> Result<tokio_rustls::TlsAcceptor, TlsError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    install_crypto();
    let failed = |source: std::io::Error| TlsError::Load {
        cert: files.cert.clone(),
        key: files.key.clone(),
        source,
    };
    let invalid = |e: &dyn std::fmt::Display| {
        failed(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            e.to_string(),
        ))
    };
    let certs = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| invalid(&e))?;
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| invalid(&e))?;
    let mut config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| invalid(&e))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config)))
}
