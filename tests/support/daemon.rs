//! `iam-warden run` as a child process: started on a free port, its log captured, its HTTP
//! endpoints read, stopped with SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::warden_on;

pub struct Daemon {
    child: Child,
    pub addr: String,
    log: Arc<Mutex<String>>,
}

impl Daemon {
    /// Starts `run DIR` against `endpoint` and waits until it serves HTTP.
    pub fn start(endpoint: &str, dir: &Path, args: &[&str]) -> Daemon {
        Daemon::start_cmd(warden_on(endpoint), dir, args)
    }

    /// Like [`Daemon::start`], from a prepared command (its environment, its directory).
    pub fn start_cmd(mut cmd: Command, dir: &Path, args: &[&str]) -> Daemon {
        cmd.arg("run")
            .arg(dir)
            .args(["--listen", "127.0.0.1:0"])
            .args(args);
        Daemon::spawn(cmd)
    }

    /// Starts a command that is already `run` with all its arguments (its listen address on
    /// a free port, by flag or env), and waits until it serves HTTP.
    pub fn spawn(mut cmd: Command) -> Daemon {
        let mut child = cmd
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start iam-warden run");
        let stderr = child.stderr.take().expect("piped stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                // Text or JSON logs: the address ends at a space or a quote.
                if let Some(rest) = line.split("on http://").nth(1) {
                    let addr: String = rest
                        .chars()
                        .take_while(|c| !c.is_whitespace() && *c != '"')
                        .collect();
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(addr);
                    }
                }
                let mut l = sink.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| {
                let _ = child.kill();
                panic!("the daemon did not start serving:\n{}", log.lock().unwrap());
            });
        Daemon { child, addr, log }
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// How many log lines contain `needle`.
    pub fn logged(&self, needle: &str) -> usize {
        self.log().lines().filter(|l| l.contains(needle)).count()
    }

    /// The value of one metric line (`NAME{labels}` exactly as printed), if exported.
    pub fn metric(&self, name: &str) -> Option<f64> {
        let (_, text) = self.get("/metrics");
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
    }

    /// GET `path`: (status code, body).
    pub fn get(&self, path: &str) -> (u16, String) {
        let mut conn = TcpStream::connect(&self.addr).expect("connect to the daemon");
        write!(conn, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
        let mut text = String::new();
        conn.read_to_string(&mut text).unwrap();
        let code = text
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = text
            .split("\r\n\r\n")
            .nth(1)
            .unwrap_or_default()
            .to_string();
        (code, body)
    }

    pub fn status(&self) -> serde_json::Value {
        serde_json::from_str(&self.get("/status").1).expect("/status is JSON")
    }

    /// The status entry of one resource.
    pub fn resource(&self, name: &str) -> serde_json::Value {
        self.status()["resources"]
            .as_array()
            .and_then(|rs| rs.iter().find(|r| r["name"] == name).cloned())
            .unwrap_or(serde_json::Value::Null)
    }

    pub fn wait_ready(&self) {
        wait_for("/readyz to answer 200", Duration::from_secs(60), || {
            self.get("/readyz").0 == 200
        });
    }

    pub fn signal(&self, name: &str) {
        let _ = std::process::Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status();
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, no warning and no cleanup (a node lost, an OOM kill), then reaps it.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits for the exit code, at most `limit`.
    pub fn terminate(mut self, limit: Duration) -> Option<i32> {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `check` until it holds; panics naming `what` after `limit`. A generous limit: this
/// waits for an outcome, it does not measure speed.
pub fn wait_for(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out after {limit:?} waiting for {what}");
}

/// Rewrites a file every `every` until dropped: a busy neighbour (a log, an editor's swap file).
pub struct BusyWriter {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl BusyWriter {
    pub fn start(path: PathBuf, content: String, every: Duration) -> BusyWriter {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut n = 0u64;
            while !flag.load(Ordering::SeqCst) {
                n += 1;
                // A manifest keeps its content (a reload that changes nothing); other files grow.
                let text = if content.is_empty() {
                    format!("line {n}\n")
                } else {
                    content.clone()
                };
                let _ = std::fs::write(&path, text);
                std::thread::sleep(every);
            }
        });
        BusyWriter {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for BusyWriter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
