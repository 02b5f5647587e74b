//! A counting, fault-injecting HTTP proxy between the SDK and moto.
//!
//! It records the `Action` of every IAM/STS request (so a test can count write calls) and can
//! answer chosen actions with an error, or forward a request and then drop the answer: what
//! AWS's eventual consistency, throttling and lossy networks produce, and moto never does.

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone, Debug)]
enum Fault {
    Error {
        status: u16,
        code: String,
        message: String,
    },
    /// Forward the request, then close the connection without answering.
    LoseAnswer,
    /// Forward the request after a pause: a slow IAM.
    Delay(Duration),
}

#[derive(Default)]
struct State {
    actions: Vec<String>,
    faults: Vec<(String, usize, Fault)>,
    /// Faults that apply only to requests whose decoded parameters contain a text.
    matching: Vec<Matching>,
    quota: Option<Quota>,
    /// Roles created through the proxy (lowercased names).
    created_roles: HashSet<String>,
    /// Added to every answer: IAM as seen from a pod.
    latency: Duration,
    /// The account's rate limit: a token bucket of `(per second, tokens, counted at)`.
    limit: Option<(f64, f64, std::time::Instant)>,
    throttled: usize,
    /// Every action but these is held without an answer: an IAM that is black-holed while
    /// STS still answers.
    hold_all_but: Option<Vec<String>>,
    /// Many accounts, told apart by the access key of each request: the account of each
    /// access key an AssumeRole answered with.
    key_accounts: HashMap<String, String>,
    /// AssumeRole of these role ARNs must carry this ExternalId (moto does not check it).
    external_ids: HashMap<String, String>,
    /// AssumeRole of these role ARNs is refused: a spoke role that does not trust the hub.
    denied_roles: HashSet<String>,
    /// Per-account rate limits, like `limit`: IAM throttles each account on its own.
    account_limits: HashMap<String, (f64, f64, std::time::Instant)>,
    /// Accounts whose requests are held without an answer: a black-holed account.
    held_accounts: HashSet<String>,
    /// Every request's account (where known) and action.
    account_actions: Vec<(Option<String>, String)>,
    throttled_accounts: HashMap<String, usize>,
}

/// `action` requests whose decoded body contains `needle` are answered with `fault`, unless
/// a role named `unless_created` has been created through the proxy by then.
struct Matching {
    action: String,
    needle: String,
    unless_created: Option<String>,
    fault: Fault,
}

/// IAM's per-role quotas, played the way IAM enforces them: managed policies attached, and the
/// size of all inline policies together (whitespace not counted). Tracks what passes through.
#[derive(Default)]
struct Quota {
    max_attached: usize,
    max_inline: usize,
    attached: HashMap<String, HashSet<String>>,
    inline: HashMap<String, HashMap<String, usize>>,
}

pub struct Proxy {
    pub endpoint: String,
    state: Arc<Mutex<State>>,
    upstream: Arc<Mutex<String>>,
}

/// Actions that only read.
pub fn is_read(action: &str) -> bool {
    action.starts_with("Get") || action.starts_with("List")
}

impl Proxy {
    /// Starts a proxy in front of `upstream` (`http://127.0.0.1:PORT`).
    pub fn start(upstream: &str) -> Proxy {
        let upstream = Arc::new(Mutex::new(
            upstream.trim_start_matches("http://").to_string(),
        ));
        let target = upstream.clone();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let endpoint = format!("http://{}", listener.local_addr().expect("proxy address"));
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let state = shared.clone();
                let upstream = target.clone();
                std::thread::spawn(move || serve(conn, &upstream, &state));
            }
        });
        Proxy {
            endpoint,
            state,
            upstream,
        }
    }

    /// Sends what follows to another server (`http://127.0.0.1:PORT`): an IAM that went away
    /// and came back, say.
    pub fn set_upstream(&self, upstream: &str) {
        *self.upstream.lock().unwrap() = upstream.trim_start_matches("http://").to_string();
    }

    /// AssumeRole of `role_arn` succeeds only with this ExternalId; otherwise AccessDenied, as
    /// AWS answers when the role's trust policy's sts:ExternalId condition fails.
    pub fn require_external_id(&self, role_arn: &str, external_id: &str) {
        self.state
            .lock()
            .unwrap()
            .external_ids
            .insert(role_arn.into(), external_id.into());
    }

    /// AssumeRole of `role_arn` is refused with AccessDenied.
    pub fn deny_assume(&self, role_arn: &str) {
        self.state
            .lock()
            .unwrap()
            .denied_roles
            .insert(role_arn.into());
    }

    /// AssumeRole of `role_arn` is answered again.
    pub fn allow_assume(&self, role_arn: &str) {
        self.state.lock().unwrap().denied_roles.remove(role_arn);
    }

    /// Account `id`'s requests (those signed with keys an AssumeRole into it returned) are
    /// throttled beyond `per_second`.
    pub fn limit_account_rate(&self, id: &str, per_second: u32) {
        let rate = f64::from(per_second);
        self.state
            .lock()
            .unwrap()
            .account_limits
            .insert(id.into(), (rate, rate, std::time::Instant::now()));
    }

    /// Account `id`'s requests are never answered (or answered again after `release_account`).
    pub fn hold_account(&self, id: &str) {
        self.state.lock().unwrap().held_accounts.insert(id.into());
    }

    pub fn release_account(&self, id: &str) {
        self.state.lock().unwrap().held_accounts.remove(id);
    }

    /// The actions requested in account `id`, in order.
    pub fn account_actions(&self, id: &str) -> Vec<String> {
        let s = self.state.lock().unwrap();
        s.account_actions
            .iter()
            .filter(|(a, _)| a.as_deref() == Some(id))
            .map(|(_, action)| action.clone())
            .collect()
    }

    /// Requests of account `id` refused as over its rate limit.
    pub fn throttled_in(&self, id: &str) -> usize {
        let s = self.state.lock().unwrap();
        s.throttled_accounts.get(id).copied().unwrap_or(0)
    }

    /// Drops every fault not yet used up.
    pub fn clear_faults(&self) {
        self.state.lock().unwrap().faults.clear();
    }

    /// Every action seen so far, in order.
    pub fn actions(&self) -> Vec<String> {
        self.state.lock().unwrap().actions.clone()
    }

    /// How many requests for `action` were seen so far.
    pub fn count(&self, action: &str) -> usize {
        self.actions().iter().filter(|a| *a == action).count()
    }

    /// Every action seen so far that writes.
    pub fn writes(&self) -> Vec<String> {
        self.actions().into_iter().filter(|a| !is_read(a)).collect()
    }

    pub fn reset_counts(&self) {
        let mut s = self.state.lock().unwrap();
        s.actions.clear();
        s.account_actions.clear();
    }

    /// Answers the next `times` requests for `action` with an IAM error.
    pub fn fail(&self, action: &str, times: usize, status: u16, code: &str, message: &str) {
        let fault = Fault::Error {
            status,
            code: code.into(),
            message: message.into(),
        };
        self.state
            .lock()
            .unwrap()
            .faults
            .push((action.into(), times, fault));
    }

    /// Holds the next `times` requests for `action` for `delay` before forwarding them.
    pub fn delay(&self, action: &str, times: usize, delay: Duration) {
        self.state
            .lock()
            .unwrap()
            .faults
            .push((action.into(), times, Fault::Delay(delay)));
    }

    /// Answers every `action` request whose decoded parameters contain `needle` with an IAM
    /// error, until a role named `unless_created` is created through this proxy.
    pub fn fail_matching(
        &self,
        action: &str,
        needle: &str,
        unless_created: Option<&str>,
        code: &str,
        message: &str,
    ) {
        self.state.lock().unwrap().matching.push(Matching {
            action: action.into(),
            needle: needle.into(),
            unless_created: unless_created.map(str::to_lowercase),
            fault: Fault::Error {
                status: 400,
                code: code.into(),
                message: message.into(),
            },
        });
    }

    /// Plays IAM's quotas from now on: at most `max_attached` managed policies per role, and
    /// `max_inline` characters of inline policies per role. Only what passes through counts.
    pub fn enforce_quotas(&self, max_attached: usize, max_inline: usize) {
        let mut s = self.state.lock().unwrap();
        let quota = s.quota.get_or_insert_with(Quota::default);
        quota.max_attached = max_attached;
        quota.max_inline = max_inline;
    }

    /// Delays every answer by `latency` from now on, as IAM's are from a pod.
    pub fn set_latency(&self, latency: Duration) {
        self.state.lock().unwrap().latency = latency;
    }

    /// Accepts `per_second` requests a second (bursts of as many) and answers the rest with
    /// Throttling, as an account's IAM rate limit does.
    pub fn limit_rate(&self, per_second: u32) {
        let rate = f64::from(per_second);
        self.state.lock().unwrap().limit = Some((rate, rate, std::time::Instant::now()));
    }

    /// Holds every request but those for `answered` without ever answering, until
    /// [`Proxy::release`].
    pub fn hold_all_but(&self, answered: &[&str]) {
        self.state.lock().unwrap().hold_all_but =
            Some(answered.iter().map(|a| a.to_string()).collect());
    }

    /// Answers every action again.
    pub fn release(&self) {
        self.state.lock().unwrap().hold_all_but = None;
    }

    /// Requests answered with Throttling by the rate limit so far.
    pub fn throttled(&self) -> usize {
        self.state.lock().unwrap().throttled
    }

    /// Forwards the next request for `action` but never answers it.
    pub fn lose_answer(&self, action: &str) {
        self.state
            .lock()
            .unwrap()
            .faults
            .push((action.into(), 1, Fault::LoseAnswer));
    }
}

/// An address where nothing listens: an IAM that is down.
pub fn dead_endpoint() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    drop(listener);
    format!("http://{addr}")
}

fn serve(mut client: TcpStream, upstream: &Mutex<String>, state: &Mutex<State>) {
    let _ = client.set_read_timeout(Some(Duration::from_secs(30)));
    while let Some(request) = read_request(&mut client) {
        let upstream = upstream.lock().unwrap().clone();
        let upstream = upstream.as_str();
        let action = action_of(&request);
        let params = params_of(&request);
        let account = {
            let s = state.lock().unwrap();
            access_key_of(&request).and_then(|k| s.key_accounts.get(&k).cloned())
        };
        let held = {
            let s = state.lock().unwrap();
            s.hold_all_but
                .as_ref()
                .is_some_and(|keep| !keep.contains(&action))
                || account
                    .as_ref()
                    .is_some_and(|a| s.held_accounts.contains(a))
        };
        if held {
            // Never answered: the client times out and closes; the thread then ends.
            let mut sink = [0u8; 1024];
            while matches!(client.read(&mut sink), Ok(n) if n > 0) {}
            return;
        }
        let (fault, latency) = {
            let mut s = state.lock().unwrap();
            s.actions.push(action.clone());
            s.account_actions.push((account.clone(), action.clone()));
            let over_limit = s.over_limit() || s.over_account_limit(account.as_deref());
            let hit = s.faults.iter_mut().find(|(a, n, _)| *a == action && *n > 0);
            let counted = hit.map(|(_, n, f)| {
                *n -= 1;
                f.clone()
            });
            let fault = counted
                .or_else(|| over_limit.then(throttling))
                .or_else(|| assume_refused(&s, &action, &params))
                .or_else(|| matching_fault(&s, &action, &params))
                .or_else(|| s.quota.as_ref().and_then(|q| q.refuses(&action, &params)));
            (fault, s.latency)
        };
        if !latency.is_zero() {
            std::thread::sleep(latency);
        }
        if fault.is_none() {
            let mut s = state.lock().unwrap();
            if action == "CreateRole" {
                if let Some(name) = params.get("RoleName") {
                    s.created_roles.insert(name.to_lowercase());
                }
            }
            if let Some(q) = s.quota.as_mut() {
                q.record(&action, &params);
            }
        }
        match fault {
            Some(Fault::Error {
                status,
                code,
                message,
            }) => {
                let body = format!(
                    "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>proxy</RequestId></ErrorResponse>"
                );
                let head = format!(
                    "HTTP/1.1 {status} Error\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                );
                if client
                    .write_all(head.as_bytes())
                    .and_then(|_| client.write_all(body.as_bytes()))
                    .is_err()
                {
                    return;
                }
            }
            Some(Fault::LoseAnswer) => {
                let _ = forward(&request, upstream);
                return;
            }
            Some(Fault::Delay(pause)) => {
                std::thread::sleep(pause);
                match forward(&request, upstream) {
                    Some(response) if client.write_all(&response).is_ok() => {}
                    _ => return,
                }
            }
            None => match forward(&request, upstream) {
                Some(response) => {
                    if action == "AssumeRole" {
                        learn_assumed_key(state, &params, &response);
                    }
                    // A response delimited by closing must be delimited the same way here.
                    let head = String::from_utf8_lossy(&response).to_ascii_lowercase();
                    let delimited = head.contains("content-length:");
                    if client.write_all(&response).is_err() || !delimited {
                        return;
                    }
                }
                None => return,
            },
        }
    }
}

fn throttling() -> Fault {
    Fault::Error {
        status: 400,
        code: "Throttling".into(),
        message: "Rate exceeded".into(),
    }
}

/// AccessDenied for an AssumeRole whose role is denied or whose ExternalId does not match.
fn assume_refused(s: &State, action: &str, params: &HashMap<String, String>) -> Option<Fault> {
    if action != "AssumeRole" {
        return None;
    }
    let role = params.get("RoleArn")?;
    let wanted = s.external_ids.get(role);
    let refused = s.denied_roles.contains(role)
        || wanted.is_some_and(|w| params.get("ExternalId") != Some(w));
    refused.then(|| Fault::Error {
        status: 403,
        code: "AccessDenied".into(),
        message: format!("User is not authorized to perform: sts:AssumeRole on resource: {role}"),
    })
}

/// Remembers the account of the access key an AssumeRole answered with.
fn learn_assumed_key(state: &Mutex<State>, params: &HashMap<String, String>, response: &[u8]) {
    let text = String::from_utf8_lossy(response);
    let key = text
        .split("<AccessKeyId>")
        .nth(1)
        .and_then(|rest| rest.split("</AccessKeyId>").next());
    let account = params
        .get("RoleArn")
        .and_then(|arn| arn.split(':').nth(4))
        .map(str::to_string);
    if let (Some(key), Some(account)) = (key, account) {
        state
            .lock()
            .unwrap()
            .key_accounts
            .insert(key.to_string(), account);
    }
}

/// The access key that signed a request (`Credential=KEY/…` of its Authorization header).
fn access_key_of(request: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(request);
    let head = text.split("\r\n\r\n").next()?;
    let auth = head
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("authorization:"))?;
    let rest = auth.split("Credential=").nth(1)?;
    Some(rest.split('/').next()?.to_string())
}

impl State {
    /// Whether account `account`'s own rate limit refuses a request now.
    fn over_account_limit(&mut self, account: Option<&str>) -> bool {
        let Some(id) = account else {
            return false;
        };
        let Some(bucket) = self.account_limits.get_mut(id) else {
            return false;
        };
        if take_token(bucket) {
            return false;
        }
        *self.throttled_accounts.entry(id.to_string()).or_default() += 1;
        true
    }

    /// Whether the account's rate limit refuses a request now (taking a token if not).
    fn over_limit(&mut self) -> bool {
        let Some(bucket) = self.limit.as_mut() else {
            return false;
        };
        if take_token(bucket) {
            return false;
        }
        self.throttled += 1;
        true
    }
}

/// Takes a token from a bucket of `(per second, tokens, counted at)`, if it holds one.
fn take_token((rate, tokens, at): &mut (f64, f64, std::time::Instant)) -> bool {
    let now = std::time::Instant::now();
    *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * *rate).min(*rate);
    *at = now;
    if *tokens >= 1.0 {
        *tokens -= 1.0;
        return true;
    }
    false
}

/// A message head (up to the blank line) and its Content-Length, if any.
fn read_head(stream: &mut TcpStream) -> Option<(Vec<u8>, Option<usize>)> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => buf.push(byte[0]),
            _ => return None,
        }
    }
    let head = String::from_utf8_lossy(&buf).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok());
    Some((buf, length))
}

/// One whole request (head and body), or `None` at end of stream.
fn read_request(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let (mut buf, length) = read_head(stream)?;
    let mut body = vec![0u8; length.unwrap_or(0)];
    stream.read_exact(&mut body).ok()?;
    buf.extend(body);
    Some(buf)
}

fn matching_fault(s: &State, action: &str, params: &HashMap<String, String>) -> Option<Fault> {
    s.matching
        .iter()
        .find(|m| {
            m.action == action
                && params.values().any(|v| v.contains(&m.needle))
                && !m
                    .unless_created
                    .as_ref()
                    .is_some_and(|r| s.created_roles.contains(r))
        })
        .map(|m| m.fault.clone())
}

impl Quota {
    fn refuses(&self, action: &str, params: &HashMap<String, String>) -> Option<Fault> {
        let role = params.get("RoleName")?.to_lowercase();
        let limit = |message: String| Fault::Error {
            status: 409,
            code: "LimitExceeded".into(),
            message,
        };
        match action {
            "AttachRolePolicy" => {
                let arn = params.get("PolicyArn")?;
                let attached = self.attached.get(&role);
                let others = attached.map_or(0, |a| a.iter().filter(|x| *x != arn).count());
                (others >= self.max_attached).then(|| {
                    limit(format!(
                        "Cannot exceed quota for PoliciesPerRole: {}",
                        self.max_attached
                    ))
                })
            }
            "PutRolePolicy" => {
                let name = params.get("PolicyName")?;
                let size = non_space(params.get("PolicyDocument")?);
                let others: usize = self.inline.get(&role).map_or(0, |m| {
                    m.iter().filter(|(n, _)| *n != name).map(|(_, s)| s).sum()
                });
                (others + size > self.max_inline).then(|| {
                    limit(format!(
                        "Maximum policy size of {} bytes exceeded for role {role}",
                        self.max_inline
                    ))
                })
            }
            _ => None,
        }
    }

    fn record(&mut self, action: &str, params: &HashMap<String, String>) {
        let Some(role) = params.get("RoleName").map(|r| r.to_lowercase()) else {
            return;
        };
        match (action, params.get("PolicyArn"), params.get("PolicyName")) {
            ("AttachRolePolicy", Some(arn), _) => {
                self.attached.entry(role).or_default().insert(arn.clone());
            }
            ("DetachRolePolicy", Some(arn), _) => {
                self.attached.entry(role).or_default().remove(arn);
            }
            ("PutRolePolicy", _, Some(name)) => {
                let size = params.get("PolicyDocument").map_or(0, |d| non_space(d));
                self.inline
                    .entry(role)
                    .or_default()
                    .insert(name.clone(), size);
            }
            ("DeleteRolePolicy", _, Some(name)) => {
                self.inline.entry(role).or_default().remove(name);
            }
            _ => {}
        }
    }
}

fn non_space(text: &str) -> usize {
    text.chars().filter(|c| !c.is_whitespace()).count()
}

/// The form parameters of a request, decoded.
fn params_of(request: &[u8]) -> HashMap<String, String> {
    let text = String::from_utf8_lossy(request);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
    body.split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

fn decode(text: &str) -> String {
    let plus = text.replace('+', " ");
    percent_encoding::percent_decode_str(&plus)
        .decode_utf8_lossy()
        .into_owned()
}

fn action_of(request: &[u8]) -> String {
    let text = String::from_utf8_lossy(request);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
    body.split('&')
        .find_map(|kv| kv.strip_prefix("Action="))
        .unwrap_or("?")
        .to_string()
}

/// Sends the request upstream on a fresh connection and returns the whole response.
fn forward(request: &[u8], upstream: &str) -> Option<Vec<u8>> {
    let mut conn = TcpStream::connect(upstream).ok()?;
    conn.write_all(request).ok()?;
    read_response(&mut conn)
}

fn read_response(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let (mut buf, length) = read_head(stream)?;
    match length {
        Some(length) => {
            let mut body = vec![0u8; length];
            stream.read_exact(&mut body).ok()?;
            buf.extend(body);
        }
        None => {
            stream.read_to_end(&mut buf).ok()?;
        }
    }
    Some(buf)
}
