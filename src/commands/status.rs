//! `iam-warden status [KIND/NAME]`: a client of a running daemon's /status, as a table (or the
//! JSON itself), once or `--watch`ed. Exit 0 all in sync, 2 drift or pending, 1 errors or
//! conflicts, or the daemon cannot be reached.

use std::io::{IsTerminal, Write};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;

use super::{EXIT_FAILED, EXIT_OK};
use crate::cli::{StatusArgs, StatusFormat};
use crate::view::{Status, table};

/// How long one look at /status may take: a daemon answers at once or is in trouble.
const TIMEOUT: Duration = Duration::from_secs(10);

/// A /status larger than this is not the daemon's.
const MAX_BODY: usize = 64 * 1024 * 1024;

pub async fn run(args: &StatusArgs) -> anyhow::Result<u8> {
    if !args.watch {
        return once(args).await;
    }
    let terminal = std::io::stdout().is_terminal();
    loop {
        if terminal {
            // Home and clear: the table is redrawn in place, as `watch` does.
            print!("\x1b[H\x1b[2J");
        }
        match once(args).await {
            Ok(_) => {}
            Err(e) => println!("iam-warden: {e:#}"),
        }
        if !terminal {
            println!();
        }
        let _ = std::io::stdout().flush();
        tokio::select! {
            () = tokio::time::sleep(args.interval) => {}
            _ = tokio::signal::ctrl_c() => return Ok(EXIT_OK),
        }
    }
}

/// One look: print it, and the exit code it calls for.
async fn once(args: &StatusArgs) -> anyhow::Result<u8> {
    let body = fetch(&args.listen, "/status")
        .await
        .with_context(|| format!("cannot read the daemon's /status at {}", args.listen))?;
    let value: serde_json::Value = serde_json::from_slice(&body)
        .with_context(|| format!("http://{}/status did not answer JSON", args.listen))?;
    let status = Status::from_json(value.clone())
        .with_context(|| format!("http://{}/status", args.listen))?;
    let now = SystemTime::now();
    let Some(wanted) = &args.resource else {
        match args.output {
            StatusFormat::Text => print!("{}", table::overview(&status, now)),
            StatusFormat::Json => println!("{}", serde_json::to_string_pretty(&value)?),
        }
        return Ok(status.exit_code());
    };
    let positions = status.positions_of(wanted);
    let found: Vec<&crate::view::Resource> =
        positions.iter().map(|i| &status.resources[*i]).collect();
    if found.is_empty() {
        let names: Vec<String> = status
            .resources
            .iter()
            .map(|r| format!("{}/{}", r.kind, r.name))
            .collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let hint = crate::suggest::closest(wanted, &names)
            .map(|c| format!("; did you mean `{c}`?"))
            .unwrap_or_default();
        let unknown: Vec<&str> = status
            .accounts
            .iter()
            .filter(|a| a.unreachable.is_some())
            .filter_map(|a| a.name.as_deref())
            .collect();
        let unknown = match unknown.is_empty() {
            true => String::new(),
            false => format!(
                "; the resources of account {} are not known while it cannot be reached",
                unknown.join(", ")
            ),
        };
        let form = if status.many() {
            "ACCOUNT/KIND/NAME or KIND/NAME, e.g. prod/Role/app"
        } else {
            "KIND/NAME, e.g. Role/app"
        };
        eprintln!(
            "iam-warden: the daemon declares no `{}` ({form}){hint}{unknown}",
            crate::view::printable(wanted)
        );
        return Ok(EXIT_FAILED);
    }
    match args.output {
        StatusFormat::Text => {
            for r in &found {
                print!("{}", table::detail(r, now));
            }
        }
        StatusFormat::Json => {
            let raw: Vec<&serde_json::Value> = positions
                .iter()
                .filter_map(|i| value["resources"].get(*i))
                .collect();
            println!("{}", serde_json::to_string_pretty(&raw)?);
        }
    }
    Ok(crate::view::exit_code_of(found, true, Vec::new()))
}

/// GET `path` from the daemon: its body, when it answers 200.
async fn fetch(addr: &str, path: &str) -> anyhow::Result<Vec<u8>> {
    tokio::time::timeout(TIMEOUT, async {
        // HOST:PORT, a name resolved as any client does.
        let stream = tokio::net::TcpStream::connect(addr).await?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        let request = hyper::Request::get(path)
            .header(hyper::header::HOST, addr)
            .body(Empty::<Bytes>::new())?;
        let response = sender.send_request(request).await?;
        let code = response.status();
        let body = http_body_util::Limited::new(response.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .to_bytes();
        if !code.is_success() {
            // Another server's page, cut short and made printable.
            let text = String::from_utf8_lossy(&body);
            anyhow::bail!("answered {code}: {}", crate::view::clip(&text, 200));
        }
        Ok(body.to_vec())
    })
    .await
    .map_err(|_| anyhow::anyhow!("no answer within {}s", TIMEOUT.as_secs()))?
}
