#!/usr/bin/env python3
"""Runs one job of a CI file locally, with the very commands the file holds.

    ci_run.py FILE JOB --workdir DIR --bin IAM_WARDEN [--context NAME=VALUE]... [options]

FILE is a GitHub Actions workflow, a .gitlab-ci.yml or a pre-commit hooks file (--kind, or
guessed from its content); JOB a job's name (a hook's id). The job's shell runs in DIR (a
checkout the caller laid out), with PATH starting with a directory that holds IAM_WARDEN as
`iam-warden` (and the fakes below). The exit code is the job's; 125 is the runner's own error
(a file it cannot run as written, a value missing from the context).

What runs, and what does not:

- GitHub Actions: the `run:` of each step in order, each script a file run by the step's shell
  (`bash -e {0}` unless `shell:` or `defaults.run.shell` says otherwise, `bash` being
  `bash --noprofile --norc -eo pipefail {0}`), with `if:` among success(), always(),
  failure() and !cancelled() honoured, and `continue-on-error`. Skipped: every `uses:` step
  (an action: checkout, configure-aws-credentials, upload-sarif; the caller provides their
  effect: the checkout is DIR, the credentials come from the environment) and the step named
  `Install iam-warden` (it copies the binary out of the image; the binary under test is on
  PATH instead). The env is the caller's, then GitHub's own (CI, GITHUB_WORKSPACE, GITHUB_ENV,
  GITHUB_OUTPUT, GITHUB_PATH, GITHUB_STEP_SUMMARY, RUNNER_TEMP), then the workflow's, the
  job's, what earlier steps wrote to GITHUB_ENV, and the step's `env:`. A `${{ NAME }}` there
  takes its value from --context or CI_RUN_CONTEXT (`${{ env.X }}` from the env so far); any other expression
  is refused, and so is a `${{` inside a `run:` script (values reach scripts through `env:`).
  Job-level `if:` and `needs:` are not evaluated: the caller picks the job.
- GitLab CI: the job (with its `extends:` merged) runs `before_script` (the job's, else
  `default:`'s) and `script` in one `bash` with `set -eo pipefail`, then `after_script` in
  another (its exit code ignored), as GitLab's runner does. Skipped: a `before_script` item
  whose first line is a comment starting with `# Install iam-warden` (it installs tools into
  the job's image). `variables:` (the file's, then the job's) expand `$NAME`/`${NAME}`
  against GitLab's predefined variables (CI, GITLAB_CI, CI_PROJECT_DIR, CI_JOB_NAME, ...) and
  --context, which plays the project's CI/CD variables and wins over the file's, as in GitLab.
  Each `id_tokens:` entry is set to a fake token.
- pre-commit hooks: the hook's `entry` and `args` (language: system, pass_filenames: false).

Fakes, only where the job talks to a forge:

- `gh` (GitHub): `gh api` on a pull request's comments (list, with --paginate and --jq, which
  it evaluates with the system's jq; create; edit). The comments live in the JSON list
  --gh-comments FILE (read, and written back after a change: the caller seeds it and reads
  it); each call is appended to --gh-log FILE as a JSON line (argv, method, endpoint, fields
  with `@file` values read, the GH_TOKEN it saw, HTTP status). Without GH_TOKEN it fails as gh
  does in Actions.
- GitLab's notes API: with --gitlab-notes FILE a local HTTP server plays
  /api/v4/projects/:id/merge_requests/:iid/notes (list with pages, create, edit) and the job
  gets CI_API_V4_URL pointing at it; notes live in FILE as above, each request goes to
  --gitlab-log FILE (method, path, query, PRIVATE-TOKEN, form fields, status).
- `python3` is this interpreter (the images' python3).

--report FILE writes what ran: each step or script, skipped or run, with its exit code.
"""

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import yaml

RUNNER_ERROR = 125
INSTALL_STEP = "Install iam-warden"
INSTALL_MARKER = "# Install iam-warden"
PLAIN_REF = re.compile(r"[A-Za-z_][\w-]*(\.[\w-]+)*")
EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}", re.S)


class RunnerError(Exception):
    pass


def say(message):
    print(f"ci_run: {message}", file=sys.stderr, flush=True)


def as_env_value(value):
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# ---------------------------------------------------------------------------------------------
# GitHub Actions


def github_resolve(value, context, env, where):
    """`${{ NAME }}` from the context, `${{ env.X }}` from the env so far."""

    def one(match):
        expr = match.group(1).strip()
        if not PLAIN_REF.fullmatch(expr):
            raise RunnerError(f"{where}: unsupported expression ${{{{ {expr} }}}}")
        if expr.startswith("env."):
            name = expr[len("env."):]
            if name in env:
                return env[name]
        if expr in context:
            return context[expr]
        raise RunnerError(f"{where}: no value for ${{{{ {expr} }}}}: pass --context {expr}=VALUE")

    return EXPRESSION.sub(one, as_env_value(value))


def github_env_block(block, context, env, where):
    out = dict(env)
    for name, value in (block or {}).items():
        out[str(name)] = github_resolve(value, context, out, f"{where} env {name}")
    return out


def github_condition(cond, failed, where):
    """Whether a step with `if: cond` runs after (failed) earlier steps."""
    if cond is None:
        return not failed
    text = str(cond).strip()
    whole = re.fullmatch(r"\$\{\{(.*)\}\}", text, re.S)
    if whole:
        text = whole.group(1).strip()
    table = {
        "success()": not failed,
        "always()": True,
        "failure()": failed,
        "!cancelled()": True,
        "cancelled()": False,
    }
    if text not in table:
        raise RunnerError(f"{where}: unsupported if: {cond!r}")
    return table[text]


def github_shell(shell, script):
    if shell is None:
        return ["bash", "-e", script]
    if shell == "bash":
        return ["bash", "--noprofile", "--norc", "-eo", "pipefail", script]
    if shell == "sh":
        return ["sh", "-e", script]
    if "{0}" in shell:
        return [script if part == "{0}" else part for part in shlex.split(shell)]
    raise RunnerError(f"unsupported shell: {shell!r}")


def read_github_env_file(path):
    """NAME=value lines and NAME<<DELIMITER ... DELIMITER blocks."""
    out = {}
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line.strip():
            continue
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            value = []
            while i < len(lines) and lines[i] != delimiter:
                value.append(lines[i])
                i += 1
            i += 1
            out[name] = "\n".join(value)
        elif "=" in line:
            name, value = line.split("=", 1)
            out[name] = value
        else:
            raise RunnerError(f"invalid line in {path}: {line!r}")
    return out


def run_github(doc, job_name, args, base_env, report):
    jobs = doc.get("jobs") or {}
    if job_name not in jobs:
        raise RunnerError(f"no job {job_name!r} (jobs: {', '.join(jobs)})")
    job = jobs[job_name]
    context = dict(args.context)
    context.setdefault("github.workspace", args.workdir)
    context.setdefault("github.job", job_name)
    if job.get("if") is not None:
        say(f"job {job_name}: its if: ({job['if']}) is not evaluated")
    runner_temp = tempfile.mkdtemp(prefix="runner-temp-", dir=args.scratch)
    summary = os.path.join(args.scratch, "step-summary.md")
    open(summary, "a").close()
    env = dict(base_env)
    env.update(
        {
            "CI": "true",
            "GITHUB_ACTIONS": "true",
            "GITHUB_WORKSPACE": args.workdir,
            "GITHUB_JOB": job_name,
            "GITHUB_STEP_SUMMARY": summary,
            "RUNNER_TEMP": runner_temp,
            "RUNNER_OS": "Linux",
        }
    )
    for name, ref in [
        ("GITHUB_REPOSITORY", "github.repository"),
        ("GITHUB_EVENT_NAME", "github.event_name"),
        ("GITHUB_REF", "github.ref"),
        ("GITHUB_SHA", "github.sha"),
    ]:
        if ref in context:
            env[name] = context[ref]
    env = github_env_block(doc.get("env"), context, env, "workflow")
    env = github_env_block(job.get("env"), context, env, f"job {job_name}")
    defaults = {**((doc.get("defaults") or {}).get("run") or {}), **((job.get("defaults") or {}).get("run") or {})}
    exported = {}
    paths = []
    failed = False
    exit_code = 0
    for n, step in enumerate(job.get("steps") or [], start=1):
        name = step.get("name") or step.get("uses") or f"step {n}"
        where = f"job {job_name} step {name!r}"
        entry = {"name": name, "if": step.get("if")}
        report["steps"].append(entry)
        if "uses" in step:
            would = github_condition(step.get("if"), failed, where)
            entry.update(kind="uses", status="skipped", would_run=would)
            say(f"skip {name!r}: uses {step['uses']} (an action; it would {'run' if would else 'not run'} here)")
            continue
        if name == INSTALL_STEP:
            entry.update(kind="install", status="skipped")
            say(f"skip {name!r}: the binary under test is on PATH")
            continue
        script = step.get("run")
        if script is None:
            raise RunnerError(f"{where}: neither run: nor uses:")
        if "${{" in script:
            raise RunnerError(f"{where}: an expression inside run: (pass it through env:)")
        entry["kind"] = "run"
        if not github_condition(step.get("if"), failed, where):
            entry["status"] = "skipped"
            say(f"skip {name!r}: if: {step.get('if')!r}")
            continue
        step_env = dict(env)
        step_env.update(exported)
        step_env = github_env_block(step.get("env"), context, step_env, where)
        if paths:
            step_env["PATH"] = os.pathsep.join(reversed(paths)) + os.pathsep + step_env["PATH"]
        files = {}
        for var in ("GITHUB_ENV", "GITHUB_OUTPUT", "GITHUB_PATH"):
            fd, files[var] = tempfile.mkstemp(prefix=var.lower() + "-", dir=args.scratch)
            os.close(fd)
            step_env[var] = files[var]
        fd, script_path = tempfile.mkstemp(prefix="step-", suffix=".sh", dir=args.scratch)
        with os.fdopen(fd, "w") as f:
            f.write(script)
        shell = step.get("shell", defaults.get("shell"))
        cwd = os.path.join(args.workdir, step.get("working-directory", defaults.get("working-directory", ".")))
        command = github_shell(shell, script_path)
        say(f"run {name!r}: {' '.join(command[:-1])} (in {cwd})")
        code = run_process(command, cwd, step_env, args.timeout)
        entry.update(status="ran", exit=code)
        exported.update(read_github_env_file(files["GITHUB_ENV"]))
        with open(files["GITHUB_PATH"], encoding="utf-8") as f:
            paths.extend(line.strip() for line in f if line.strip())
        if code != 0:
            say(f"step {name!r} failed with exit code {code}")
            if step.get("continue-on-error") is True:
                continue
            if not failed:
                exit_code = code
            failed = True
    return exit_code


# ---------------------------------------------------------------------------------------------
# GitLab CI


def deep_merge(base, over):
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def gitlab_job(doc, name, seen=()):
    job = doc.get(name)
    if not isinstance(job, dict):
        jobs = [k for k, v in doc.items() if isinstance(v, dict) and "script" in v]
        raise RunnerError(f"no job {name!r} (jobs: {', '.join(jobs)})")
    if name in seen:
        raise RunnerError(f"extends loop at {name!r}")
    parents = job.get("extends") or []
    if isinstance(parents, str):
        parents = [parents]
    merged = {}
    for parent in parents:
        merged = deep_merge(merged, gitlab_job(doc, parent, seen + (name,)))
    return deep_merge(merged, {k: v for k, v in job.items() if k != "extends"})


def flatten(items):
    if items is None:
        return []
    if isinstance(items, str):
        return [items]
    out = []
    for item in items:
        out.extend(flatten(item))
    return out


def gitlab_expand(value, env, where):
    def one(match):
        if match.group(0) == "$$":
            return "$"
        name = match.group(1) or match.group(2)
        if name not in env:
            raise RunnerError(f"{where}: no value for ${name}: pass --context {name}=VALUE")
        return env[name]

    return re.sub(r"\$\$|\$\{(\w+)\}|\$(\w+)", one, value)


def gitlab_variables(block, env, where):
    out = dict(env)
    for name, value in (block or {}).items():
        expand = True
        if isinstance(value, dict):
            expand = value.get("expand", True)
            value = value.get("value")
        value = as_env_value(value)
        out[str(name)] = gitlab_expand(value, out, f"{where} {name}") if expand else value
    return out


def run_gitlab(doc, job_name, args, base_env, report, api_url):
    job = gitlab_job(doc, job_name)
    if "script" not in job:
        raise RunnerError(f"job {job_name!r} has no script")
    default = doc.get("default") or {}
    if "before_script" in job:
        before = flatten(job["before_script"])
    else:
        before = flatten(default.get("before_script", doc.get("before_script")))
    after = flatten(job.get("after_script", default.get("after_script", doc.get("after_script"))))
    context = dict(args.context)
    predefined = {
        "CI": "true",
        "GITLAB_CI": "true",
        "CI_PROJECT_DIR": args.workdir,
        "CI_BUILDS_DIR": os.path.dirname(args.workdir),
        "CI_JOB_NAME": job_name,
        "CI_JOB_STAGE": as_env_value(job.get("stage", "test")),
        "CI_PIPELINE_ID": "1",
        "CI_JOB_ID": "1",
    }
    env = dict(base_env)
    env.update(predefined)
    env.update(context)
    if api_url:
        env["CI_API_V4_URL"] = api_url
        env["CI_SERVER_URL"] = api_url[: -len("/api/v4")]
    env = gitlab_variables(doc.get("variables"), env, "variables")
    env = gitlab_variables(job.get("variables"), env, f"job {job_name} variables")
    # The project's CI/CD variables (the context) win over the file's.
    env.update(context)
    if api_url:
        env["CI_API_V4_URL"] = api_url
    for name, spec in (job.get("id_tokens") or {}).items():
        aud = (spec or {}).get("aud", "")
        env[name] = f"ci-run-fake-id-token.aud={aud}"
    lines = ["set -eo pipefail", "set +o noclobber"]
    for item in before:
        first = item.lstrip().split("\n", 1)[0].strip()
        entry = {"part": "before_script", "first_line": first}
        report["steps"].append(entry)
        if first.startswith(INSTALL_MARKER):
            entry["status"] = "skipped"
            say(f"skip before_script item {first!r}: the binary under test is on PATH")
            continue
        entry["status"] = "ran"
        lines.append(item)
    for item in flatten(job["script"]):
        report["steps"].append({"part": "script", "first_line": item.strip().split("\n", 1)[0], "status": "ran"})
        lines.append(item)
    fd, script_path = tempfile.mkstemp(prefix="gitlab-job-", suffix=".sh", dir=args.scratch)
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(lines) + "\n")
    say(f"run job {job_name}: before_script and script in one bash -eo pipefail (in {args.workdir})")
    code = run_process(["bash", "--noprofile", "--norc", script_path], args.workdir, env, args.timeout)
    report["steps"].append({"part": "before_script+script", "status": "ran", "exit": code})
    if after:
        fd, after_path = tempfile.mkstemp(prefix="gitlab-after-", suffix=".sh", dir=args.scratch)
        with os.fdopen(fd, "w") as f:
            f.write("\n".join(["set -eo pipefail"] + after) + "\n")
        env["CI_JOB_STATUS"] = "success" if code == 0 else "failed"
        after_code = run_process(["bash", "--noprofile", "--norc", after_path], args.workdir, env, args.timeout)
        report["steps"].append({"part": "after_script", "status": "ran", "exit": after_code})
    return code


class NotesApi:
    """GitLab's merge request notes, kept in a JSON file."""

    ROUTE = re.compile(r"^/api/v4/projects/([^/]+)/merge_requests/(\d+)/notes(?:/(\d+))?$")
    BOT = {"id": 77, "username": "project_bot", "bot": True}

    def __init__(self, state, log, token):
        self.state, self.log, self.token = state, log, token
        self.lock = threading.Lock()

    def load(self):
        if not os.path.exists(self.state) or os.path.getsize(self.state) == 0:
            return []
        with open(self.state, encoding="utf-8") as f:
            return json.load(f)

    def save(self, notes):
        with open(self.state, "w", encoding="utf-8") as f:
            json.dump(notes, f, indent=1)

    def handle(self, method, raw_path, headers, body):
        """(status, extra headers, JSON answer, record)"""
        url = urllib.parse.urlsplit(raw_path)
        query = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query, keep_blank_values=True).items()}
        form = {}
        ctype = headers.get("Content-Type", "")
        if body:
            if ctype.startswith("application/json"):
                form = json.loads(body)
            else:
                form = {k: v[-1] for k, v in urllib.parse.parse_qs(body.decode("utf-8"), keep_blank_values=True).items()}
        record = {
            "method": method,
            "path": url.path,
            "query": query,
            "private_token": headers.get("PRIVATE-TOKEN"),
            "content_type": ctype,
            "form": form,
        }
        route = self.ROUTE.match(url.path)
        token = headers.get("PRIVATE-TOKEN")
        if token is None or (self.token is not None and token != self.token):
            return 401, {}, {"message": "401 Unauthorized"}, record
        if method == "GET" and url.path == "/api/v4/user":
            # The token's own user: the project's bot.
            return 200, {}, self.BOT, record
        if not route:
            return 404, {}, {"error": "404 Not Found"}, record
        project = urllib.parse.unquote(route.group(1))
        iid = int(route.group(2))
        note_id = int(route.group(3)) if route.group(3) else None
        with self.lock:
            notes = self.load()
            mine = [
                n for n in notes if str(n.get("project_id")) == project and n.get("noteable_iid") == iid
            ]
            if method == "GET" and note_id is None:
                mine.sort(key=lambda n: n["id"], reverse=query.get("sort", "desc") == "desc")
                per_page = min(int(query.get("per_page", 20)), 100)
                page = int(query.get("page", 1))
                pages = max(1, -(-len(mine) // per_page))
                chunk = mine[(page - 1) * per_page: page * per_page]
                extra = {
                    "X-Page": str(page),
                    "X-Per-Page": str(per_page),
                    "X-Next-Page": str(page + 1) if page < pages else "",
                    "X-Total": str(len(mine)),
                    "X-Total-Pages": str(pages),
                }
                return 200, extra, chunk, record
            if method == "POST" and note_id is None:
                if not form.get("body"):
                    return 400, {}, {"error": "body is missing"}, record
                note = {
                    "id": max([n["id"] for n in notes] + [5000]) + 1,
                    "body": form["body"],
                    "project_id": int(project) if project.isdigit() else project,
                    "noteable_iid": iid,
                    "noteable_type": "MergeRequest",
                    "system": False,
                    "author": self.BOT,
                }
                notes.append(note)
                self.save(notes)
                return 201, {}, note, record
            found = [n for n in mine if n["id"] == note_id]
            if note_id is None or not found:
                return 404, {}, {"message": "404 Not found"}, record
            if method == "GET":
                return 200, {}, found[0], record
            if method == "PUT":
                if "body" in form:
                    found[0]["body"] = form["body"]
                self.save(notes)
                return 200, {}, found[0], record
            return 405, {}, {"error": "405 Method Not Allowed"}, record

    def serve(self):
        api = self

        class Handler(BaseHTTPRequestHandler):
            def respond(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                try:
                    status, extra, answer, record = api.handle(self.command, self.path, self.headers, body)
                except Exception as e:  # the job sees a 500, the log says why
                    status, extra, answer = 500, {}, {"message": repr(e)}
                    record = {"method": self.command, "path": self.path, "error": repr(e)}
                record["status"] = status
                with api.lock, open(api.log, "a", encoding="utf-8") as f:
                    f.write(json.dumps(record) + "\n")
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in extra.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = respond

            def log_message(self, *a):
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server, f"http://127.0.0.1:{server.server_address[1]}/api/v4"


# ---------------------------------------------------------------------------------------------
# pre-commit hooks


def run_pre_commit_hook(doc, hook_id, args, base_env, report):
    hooks = {h.get("id"): h for h in doc}
    if hook_id not in hooks:
        raise RunnerError(f"no hook {hook_id!r} (hooks: {', '.join(map(str, hooks))})")
    hook = hooks[hook_id]
    if hook.get("language") != "system" or hook.get("pass_filenames", True):
        raise RunnerError("only language: system hooks with pass_filenames: false run here")
    command = shlex.split(hook["entry"]) + [str(a) for a in hook.get("args", [])]
    say(f"run hook {hook_id}: {shlex.join(command)}")
    code = run_process(command, args.workdir, base_env, args.timeout)
    report["steps"].append({"name": hook_id, "status": "ran", "exit": code})
    return code


# ---------------------------------------------------------------------------------------------
# The fake gh


def fake_gh(argv):
    opts = argparse.ArgumentParser(prog="fake-gh")
    opts.add_argument("--state", required=True)
    opts.add_argument("--log", required=True)
    opts.add_argument("rest", nargs=argparse.REMAINDER)
    ns = opts.parse_args(argv)
    args = ns.rest[1:] if ns.rest[:1] == ["--"] else ns.rest
    record = {"argv": args, "cwd": os.getcwd(), "gh_token": os.environ.get("GH_TOKEN")}

    def done(status, code, message=None):
        record["status"] = status
        with open(ns.log, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        if message:
            print(message, file=sys.stderr)
        return code

    if not (os.environ.get("GH_TOKEN") or os.environ.get("GITHUB_TOKEN")):
        return done(
            None,
            4,
            "gh: To use GitHub CLI in a GitHub Actions workflow, set the GH_TOKEN environment variable. Example:\n"
            "  env:\n    GH_TOKEN: ${{ github.token }}",
        )
    if args[:1] != ["api"]:
        return done(None, 1, f"fake gh: only `gh api` is played, not {args[:1]}")
    method, paginate, jq, fields, endpoint = None, False, None, {}, None
    i = 1
    while i < len(args):
        a = args[i]
        value = args[i + 1] if i + 1 < len(args) else None
        if a in ("-X", "--method"):
            method, i = value.upper(), i + 2
        elif a.startswith("--method="):
            method, i = a.split("=", 1)[1].upper(), i + 1
        elif a == "--paginate":
            paginate, i = True, i + 1
        elif a in ("-q", "--jq"):
            jq, i = value, i + 2
        elif a in ("-F", "--field", "-f", "--raw-field"):
            key, _, v = value.partition("=")
            if a in ("-F", "--field"):
                if v.startswith("@"):
                    name = v[1:]
                    try:
                        with (sys.stdin if name == "-" else open(name, encoding="utf-8")) as f:
                            v = f.read()
                    except OSError as e:
                        return done(None, 1, f"open {name}: {e.strerror.lower()}")
                elif v in ("true", "false", "null"):
                    v = json.loads(v)
                elif re.fullmatch(r"-?\d+", v):
                    v = int(v)
            fields[key] = v
            i += 2
        elif a in ("-H", "--header"):
            i += 2
        elif a == "--silent":
            i += 1
        elif a.startswith("-"):
            return done(None, 1, f"fake gh: unsupported flag {a}")
        else:
            if endpoint is not None:
                return done(None, 1, f"fake gh: two endpoints: {endpoint} {a}")
            endpoint, i = a, i + 1
    if endpoint is None:
        return done(None, 1, "fake gh: no endpoint")
    method = method or ("POST" if fields else "GET")
    url = urllib.parse.urlsplit(endpoint.lstrip("/"))
    path, query = url.path, dict(urllib.parse.parse_qsl(url.query))
    record.update(method=method, endpoint=path, fields=fields, paginate=paginate, jq=jq)
    comments = []
    if os.path.exists(ns.state) and os.path.getsize(ns.state) > 0:
        with open(ns.state, encoding="utf-8") as f:
            comments = json.load(f)

    def save():
        with open(ns.state, "w", encoding="utf-8") as f:
            json.dump(comments, f, indent=1)

    def not_found():
        return done(404, 1, "gh: Not Found (HTTP 404)")

    listing = re.fullmatch(r"repos/([^/]+/[^/]+)/issues/(\d+)/comments", path)
    single = re.fullmatch(r"repos/([^/]+/[^/]+)/issues/comments/(\d+)", path)
    if listing and method == "GET":
        issue_url = f"https://api.github.com/repos/{listing.group(1)}/issues/{listing.group(2)}"
        mine = sorted((c for c in comments if c.get("issue_url") == issue_url), key=lambda c: c["id"])
        per_page = int(query.get("per_page", 30))
        pages = [mine[k: k + per_page] for k in range(0, len(mine), per_page)] or [[]]
        if not paginate:
            pages = pages[:1]
        out = []
        for page in pages:
            if jq is None:
                out.append(json.dumps(page))
                continue
            if shutil.which("jq") is None:
                return done(None, 1, "fake gh: --jq needs jq, which is not installed (apt-get install jq)")
            result = subprocess.run(["jq", "-r", jq], input=json.dumps(page), capture_output=True, text=True)
            if result.returncode != 0:
                return done(None, 1, f"fake gh: jq: {result.stderr.strip()}")
            out.append(result.stdout)
        sys.stdout.write("".join(s if s.endswith("\n") or not s else s + "\n" for s in out))
        return done(200, 0)
    if listing and method == "POST":
        if "body" not in fields:
            return done(422, 1, "gh: Invalid request. body wasn't supplied. (HTTP 422)")
        comment = {
            "id": max([c["id"] for c in comments] + [1000]) + 1,
            "issue_url": f"https://api.github.com/repos/{listing.group(1)}/issues/{listing.group(2)}",
            "user": {"login": "github-actions[bot]", "type": "Bot"},
            "body": str(fields["body"]),
        }
        comments.append(comment)
        save()
        print(json.dumps(comment))
        return done(201, 0)
    if single and method in ("GET", "PATCH"):
        repo_prefix = f"https://api.github.com/repos/{single.group(1)}/issues/"
        found = [c for c in comments if c["id"] == int(single.group(2)) and c.get("issue_url", "").startswith(repo_prefix)]
        if not found:
            return not_found()
        if method == "PATCH":
            if "body" not in fields:
                return done(422, 1, "gh: Invalid request. body wasn't supplied. (HTTP 422)")
            found[0]["body"] = str(fields["body"])
            save()
        print(json.dumps(found[0]))
        return done(200, 0)
    return not_found()


# ---------------------------------------------------------------------------------------------


def run_process(command, cwd, env, timeout):
    try:
        return subprocess.run(command, cwd=cwd, env=env, timeout=timeout).returncode
    except subprocess.TimeoutExpired:
        say(f"timed out after {timeout} s: {command}")
        return 124


def guess_kind(doc):
    if isinstance(doc, list):
        return "pre-commit"
    if isinstance(doc, dict) and "jobs" in doc and ("on" in doc or True in doc):
        return "github"
    if isinstance(doc, dict):
        return "gitlab"
    raise RunnerError("cannot tell which CI file this is (--kind)")


def write_shim(path, lines):
    with open(path, "w") as f:
        f.write("#!/bin/sh\n" + "\n".join(lines) + "\n")
    os.chmod(path, 0o755)


def main(argv):
    if argv[:1] == ["fake-gh"]:
        return fake_gh(argv[1:])
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("file")
    p.add_argument("job")
    p.add_argument("--workdir", required=True, help="the checkout the job runs in")
    p.add_argument("--bin", required=True, help="the iam-warden binary under test")
    p.add_argument("--kind", choices=["github", "gitlab", "pre-commit"])
    p.add_argument("--context", action="append", default=[], metavar="NAME=VALUE",
                   help="a value for ${{ NAME }} (GitHub) or a CI/CD variable (GitLab); also one "
                   "NAME=VALUE a line in the environment variable CI_RUN_CONTEXT")
    p.add_argument("--gh-comments", help="JSON list of the pull request comments the fake gh serves")
    p.add_argument("--gh-log", help="JSON lines: every fake gh call")
    p.add_argument("--gitlab-notes", help="JSON list of the notes the fake notes API serves")
    p.add_argument("--gitlab-log", help="JSON lines: every request to the fake notes API")
    p.add_argument("--gitlab-token", help="the PRIVATE-TOKEN the fake notes API accepts (default: any)")
    p.add_argument("--report", help="write what ran as JSON here")
    p.add_argument("--timeout", type=float, default=120, help="seconds a script may take")
    args = p.parse_args(argv)
    scratch = tempfile.mkdtemp(prefix="ci_run-")
    server = None
    report = {"file": args.file, "job": args.job, "steps": []}
    try:
        args.workdir = os.path.abspath(args.workdir)
        args.scratch = scratch
        context = {}
        from_env = [line for line in os.environ.get("CI_RUN_CONTEXT", "").splitlines() if line.strip()]
        for item in from_env + args.context:
            name, sep, value = item.partition("=")
            if not sep:
                raise RunnerError(f"--context {item!r}: expected NAME=VALUE")
            context[name] = value
        args.context = context
        if not os.path.isdir(args.workdir):
            raise RunnerError(f"no directory {args.workdir}")
        binary = os.path.abspath(args.bin)
        if not os.access(binary, os.X_OK):
            raise RunnerError(f"{binary} is not an executable")
        with open(args.file, encoding="utf-8") as f:
            doc = yaml.safe_load(f)
        kind = args.kind or guess_kind(doc)
        report["kind"] = kind
        bindir = os.path.join(scratch, "bin")
        os.mkdir(bindir)
        os.symlink(binary, os.path.join(bindir, "iam-warden"))
        write_shim(os.path.join(bindir, "python3"), [f'exec {shlex.quote(sys.executable)} "$@"'])
        env = dict(os.environ)
        env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
        if kind == "github":
            state = os.path.abspath(args.gh_comments or os.path.join(scratch, "comments.json"))
            log = os.path.abspath(args.gh_log or os.path.join(scratch, "gh.log"))
            me = os.path.abspath(__file__)
            write_shim(
                os.path.join(bindir, "gh"),
                [f'exec {shlex.quote(sys.executable)} {shlex.quote(me)} fake-gh '
                 f'--state {shlex.quote(state)} --log {shlex.quote(log)} -- "$@"'],
            )
            code = run_github(doc, args.job, args, env, report)
        elif kind == "gitlab":
            api_url = None
            if args.gitlab_notes:
                log = os.path.abspath(args.gitlab_log or os.path.join(scratch, "notes.log"))
                api = NotesApi(os.path.abspath(args.gitlab_notes), log, args.gitlab_token)
                server, api_url = api.serve()
            code = run_gitlab(doc, args.job, args, env, report, api_url)
        else:
            code = run_pre_commit_hook(doc, args.job, args, env, report)
    except RunnerError as e:
        say(f"error: {e}")
        code = RUNNER_ERROR
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()
        shutil.rmtree(scratch, ignore_errors=True)
    report["exit"] = code
    if args.report:
        with open(args.report, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=1)
    say(f"job {args.job} exited {code}")
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
