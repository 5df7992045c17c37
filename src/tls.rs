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
        std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::write(path, text))
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

/// The rustls server configuration for `files`.
pub async fn load(files: &TlsFiles) -> Result<axum_server::tls_rustls::RustlsConfig, TlsError> {
    install_crypto();
    axum_server::tls_rustls::RustlsConfig::from_pem_file(&files.cert, &files.key)
        .await
        .map_err(|source| TlsError::Load {
            cert: files.cert.clone(),
            key: files.key.clone(),
            source,
        })
}
