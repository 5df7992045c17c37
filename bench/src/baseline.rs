//! The ceiling: the same HTTP stack as Agentry (axum 0.8 on hyper and a
//! multi-threaded tokio runtime) answering every request with a fixed 1 KB
//! JSON body: no storage, no token check, no logging.

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use std::io::Write;

/// A JSON object of exactly `len` bytes.
pub fn fixed_body(len: usize) -> String {
    let head = r#"{"id":"baseline","displayName":"A fixed answer","padding":""#;
    let tail = r#""}"#;
    let pad = len.saturating_sub(head.len() + tail.len());
    format!("{head}{}{tail}", "x".repeat(pad))
}

pub fn serve(listen: &str) -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let body: &'static str = Box::leak(fixed_body(1024).into_boxed_str());
        let answer = move || async move {
            ([(header::CONTENT_TYPE, "application/json")], body).into_response()
        };
        let app = Router::new().fallback(answer);
        let listener = tokio::net::TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let mut out = std::io::stdout().lock();
        writeln!(out, "baseline listening on http://{addr}")?;
        out.flush()?;
        drop(out);
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fixed_body_is_one_kilobyte_of_json() {
        let body = fixed_body(1024);
        assert_eq!(body.len(), 1024);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["id"], "baseline");
    }
}
