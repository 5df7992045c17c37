//! Just enough of W3C WebDriver to drive Debian's headless Chromium through
//! chromedriver: a session, navigation, elements found by CSS selector,
//! clicks, typing, scripts and screenshots, spoken as JSON over HTTP.
//!
//! Chromium and chromedriver come from Debian's `chromium` and
//! `chromium-driver` packages, which `tests/run.sh` installs; without them
//! the browser tests fail, saying so.

use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The key of an element reference in WebDriver's JSON.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// How long a condition is waited for.
const PATIENCE: Duration = Duration::from_secs(15);

/// A chromedriver process and one browser session.
pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    client: reqwest::Client,
    _profile: tempfile::TempDir,
}

/// The first of `names` on `PATH` (or an absolute path that exists).
fn program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    names.iter().find_map(|name| {
        let direct = PathBuf::from(name);
        if direct.is_absolute() {
            return direct.is_file().then_some(direct);
        }
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

fn missing(what: &str) -> ! {
    panic!(
        "the console's browser test needs {what}: run tests/run.sh, which installs Debian's \
         chromium and chromium-driver packages, or `apt-get install chromium chromium-driver`"
    )
}

impl Browser {
    /// Starts chromedriver on a free port and a headless Chromium with a
    /// fresh profile, its window `width` × `height`.
    pub async fn start(width: u32, height: u32) -> Browser {
        let chromedriver = program(&["chromedriver", "/usr/lib/chromium/chromedriver"])
            .unwrap_or_else(|| missing("chromedriver"));
        // Debian's /usr/bin/chromium is a shell wrapper; the browser itself is beside the driver.
        let chromium = program(&["/usr/lib/chromium/chromium", "chromium", "chromium-browser"])
            .unwrap_or_else(|| missing("chromium"));
        // chromedriver takes no port 0: take a free one and hand it over.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let driver = {
            use std::os::unix::process::CommandExt;
            Command::new(&chromedriver)
                .arg(format!("--port={port}"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                // Its own process group, so that the browser goes with it.
                .process_group(0)
                .spawn()
                .expect("chromedriver starts")
        };
        let profile = tempfile::tempdir().expect("a profile folder");
        let client = crate::support::client();
        let base = format!("http://127.0.0.1:{port}");
        let mut browser = Browser {
            driver,
            base,
            session: String::new(),
            client,
            _profile: profile,
        };
        let started = Instant::now();
        loop {
            let ready = browser
                .client
                .get(format!("{}/status", browser.base))
                .send()
                .await
                .ok();
            if let Some(r) = ready
                && let Ok(body) = r.json::<Value>().await
                && body["value"]["ready"] == true
            {
                break;
            }
            assert!(
                started.elapsed() < PATIENCE,
                "chromedriver did not become ready"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let args = [
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            format!("--window-size={width},{height}"),
            format!("--user-data-dir={}", browser._profile.path().display()),
        ];
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium, "args": args},
        }}});
        let created = browser.command("POST", "/session", capabilities).await;
        browser.session = created["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {created}"))
            .to_owned();
        browser
    }

    /// One WebDriver command; its `value`. A WebDriver error fails the test.
    async fn command(&self, method: &str, path: &str, body: Value) -> Value {
        let (status, value) = self.try_command(method, path, body).await;
        assert!(status < 400, "WebDriver {method} {path}: {status} {value}");
        value
    }

    async fn try_command(&self, method: &str, path: &str, body: Value) -> (u16, Value) {
        let url = format!("{}{path}", self.base);
        let request = match method {
            "GET" => self.client.get(url),
            "DELETE" => self.client.delete(url),
            _ => self.client.post(url).json(&body),
        };
        let r = request.send().await.expect("chromedriver answers");
        let status = r.status().as_u16();
        let body: Value = r.json().await.expect("WebDriver JSON");
        (status, body["value"].clone())
    }

    fn at(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    pub async fn open(&self, url: &str) {
        self.command("POST", &self.at("/url"), json!({"url": url}))
            .await;
    }

    /// Runs `script` in the page (`arguments` are `args`) and answers its result.
    pub async fn script(&self, script: &str, args: Value) -> Value {
        self.command(
            "POST",
            &self.at("/execute/sync"),
            json!({"script": script, "args": args}),
        )
        .await
    }

    /// The text of the first element matching `css`, if there is one.
    pub async fn text(&self, css: &str) -> Option<String> {
        let v = self
            .script(
                "const e = document.querySelector(arguments[0]); return e ? e.innerText : null;",
                json!([css]),
            )
            .await;
        v.as_str().map(str::to_owned)
    }

    /// Waits until the text of `css` satisfies `test`; answers it.
    pub async fn wait_text(&self, css: &str, test: impl Fn(&str) -> bool) -> String {
        let started = Instant::now();
        loop {
            let text = self.text(css).await;
            if let Some(t) = &text
                && test(t)
            {
                return t.clone();
            }
            if started.elapsed() > PATIENCE {
                let page = self.text("main").await.unwrap_or_default();
                panic!("waited in vain for {css} (its text: {text:?}); the page says:\n{page}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until an element matches `css` and answers its reference.
    pub async fn find(&self, css: &str) -> String {
        let started = Instant::now();
        loop {
            let (status, value) = self
                .try_command(
                    "POST",
                    &self.at("/element"),
                    json!({"using": "css selector", "value": css}),
                )
                .await;
            if status < 400
                && let Some(id) = value[ELEMENT].as_str()
            {
                return id.to_owned();
            }
            if started.elapsed() > PATIENCE {
                let page = self.text("main").await.unwrap_or_default();
                panic!("no element {css}; the page says:\n{page}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Clicks the element `css` (as a person would: it must be visible and enabled).
    pub async fn click(&self, css: &str) {
        let id = self.find(css).await;
        self.command("POST", &self.at(&format!("/element/{id}/click")), json!({}))
            .await;
    }

    /// Clears the field `css` and types `text` into it.
    pub async fn type_into(&self, css: &str, text: &str) {
        let id = self.find(css).await;
        self.command("POST", &self.at(&format!("/element/{id}/clear")), json!({}))
            .await;
        self.command(
            "POST",
            &self.at(&format!("/element/{id}/value")),
            json!({"text": text}),
        )
        .await;
    }

    /// Chromium at 1280 × 900 on the console of the server at `origin`,
    /// signed in with the loopback switch (`--console-dev-signin`), once
    /// the agents view shows its count.
    pub async fn signed_in(origin: &str) -> Browser {
        let browser = Browser::start(1280, 900).await;
        browser.open(&format!("{origin}/")).await;
        browser.wait_text("h1", |t| t.contains("Sign in")).await;
        browser.click("#dev-signin").await;
        browser.wait_text("#agent-count", |_| true).await;
        browser
    }

    /// Lays the page out as on a screen `width` pixels wide (`None`: the window's own).
    pub async fn emulate_width(&self, width: Option<u32>) {
        let (cmd, params) = match width {
            Some(w) => (
                "Emulation.setDeviceMetricsOverride",
                json!({"width": w, "height": 844, "deviceScaleFactor": 1, "mobile": true}),
            ),
            None => ("Emulation.clearDeviceMetricsOverride", json!({})),
        };
        self.command(
            "POST",
            &self.at("/goog/cdp/execute"),
            json!({"cmd": cmd, "params": params}),
        )
        .await;
    }

    /// A PNG of the viewport.
    pub async fn screenshot(&self) -> Vec<u8> {
        use base64::Engine;
        let value = self
            .command("GET", &self.at("/screenshot"), json!({}))
            .await;
        base64::engine::general_purpose::STANDARD
            .decode(value.as_str().expect("base64 PNG"))
            .expect("a PNG")
    }

    /// Ends the session and stops the browser and its driver.
    pub async fn quit(mut self) {
        let _ = self.try_command("DELETE", &self.at(""), json!({})).await;
        self.stop();
    }

    fn stop(&mut self) {
        use rustix::process::{Pid, Signal, kill_process_group};
        let _ = kill_process_group(Pid::from_child(&self.driver), Signal::KILL);
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Ok(None) = self.driver.try_wait() {
            self.stop();
        }
    }
}
