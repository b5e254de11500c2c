//! A real browser for the web UI tests: Debian's `chromium` driven through `chromedriver`
//! (W3C WebDriver) with fantoccini.
//!
//! Where they are: `TASKSTREAM_CHROMEDRIVER` / `TASKSTREAM_CHROMIUM`, else `/usr/bin/chromedriver`
//! and `/usr/bin/chromium` (`apt-get install chromium chromium-driver`). Without them the browser
//! tests print that they skip and pass, unless `TASKSTREAM_BROWSER_TESTS=1` (set by `.ci/run`)
//! demands them.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use tempfile::TempDir;

fn path_from(var: &str, default: &str) -> PathBuf {
    std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(default))
}

/// The chromedriver and chromium binaries, when both exist.
pub fn browser_binaries() -> Option<(PathBuf, PathBuf)> {
    let driver = path_from("TASKSTREAM_CHROMEDRIVER", "/usr/bin/chromedriver");
    let chromium = path_from("TASKSTREAM_CHROMIUM", "/usr/bin/chromium");
    (driver.exists() && chromium.exists()).then_some((driver, chromium))
}

/// Whether to run browser tests; panics when they are required but the browser is missing.
pub fn browser_available(test: &str) -> bool {
    if browser_binaries().is_some() {
        return true;
    }
    if std::env::var("TASKSTREAM_BROWSER_TESTS").as_deref() == Ok("1") {
        panic!(
            "TASKSTREAM_BROWSER_TESTS=1 but chromium/chromedriver are missing (apt-get install chromium chromium-driver)"
        );
    }
    eprintln!(
        "skipping {test}: chromium and chromedriver are not installed (apt-get install chromium chromium-driver)"
    );
    false
}

/// A headless chromium session, closed (and its driver killed) on drop.
pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: TempDir,
}

impl Browser {
    /// Starts chromedriver on a free port and opens a headless window of `width` × `height`.
    pub async fn start(width: u32, height: u32) -> Browser {
        Self::start_in_zone(width, height, None).await
    }

    /// [`Browser::start`] with the browser's clock in the IANA time zone `zone` (chromium
    /// inherits `TZ` through chromedriver), as a person's machine elsewhere would be.
    pub async fn start_in_zone(width: u32, height: u32, zone: Option<&str>) -> Browser {
        let (driver_path, chromium) = browser_binaries().expect("chromium and chromedriver");
        let port = crate::free_port();
        let mut command = Command::new(&driver_path);
        if let Some(zone) = zone {
            command.env("TZ", zone);
        }
        let driver = command
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let profile = TempDir::new().expect("profile dir");
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--no-first-run",
                    "--disable-extensions",
                    format!("--window-size={width},{height}"),
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!("a JSON object literal")
        };
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(capabilities.clone())
                .connect(&url)
                .await
            {
                Ok(client) => break client,
                Err(error) if Instant::now() < deadline => {
                    let _ = error;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(error) => panic!("could not start a chromium session: {error}"),
            }
        };
        Browser {
            client,
            driver,
            _profile: profile,
        }
    }

    /// Ends the browser session before the driver goes.
    pub async fn close(self) {
        let client = self.client.clone();
        let _ = client.close().await;
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("navigate");
    }

    pub async fn css(&self, selector: &str) -> fantoccini::elements::Element {
        self.client
            .find(Locator::Css(selector))
            .await
            .unwrap_or_else(|error| panic!("no element {selector}: {error}"))
    }

    /// Waits up to 10 s for an element.
    pub async fn wait_css(&self, selector: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(selector))
            .await
            .unwrap_or_else(|error| panic!("{selector} did not appear: {error}"))
    }

    /// Waits up to `seconds` until the page's text contains `text`.
    pub async fn wait_text(&self, text: &str, seconds: u64) {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        loop {
            let body = self.body_text().await;
            if body.contains(text) {
                return;
            }
            if Instant::now() > deadline {
                panic!("'{text}' did not appear within {seconds} s; the page says:\n{body}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn body_text(&self) -> String {
        match self.client.find(Locator::Css("body")).await {
            Ok(body) => body.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    pub async fn path(&self) -> String {
        let url = self.client.current_url().await.expect("url");
        match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        }
    }

    /// Types into the field `selector` after clearing it.
    pub async fn fill(&self, selector: &str, text: &str) {
        let field = self.css(selector).await;
        field.clear().await.expect("clear");
        field.send_keys(text).await.expect("type");
    }

    pub async fn click(&self, selector: &str) {
        self.css(selector).await.click().await.expect("click");
    }

    /// Saves a PNG of the window to `dir/name.png`.
    pub async fn screenshot(&self, dir: &Path, name: &str) -> PathBuf {
        std::fs::create_dir_all(dir).expect("screenshot dir");
        let png = self.client.screenshot().await.expect("screenshot");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write screenshot");
        path
    }

    pub async fn eval(&self, script: &str) -> Value {
        self.client
            .execute(script, Vec::new())
            .await
            .expect("script")
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
