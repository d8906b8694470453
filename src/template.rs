//! Rendering a test run folder (SPEC §7): scripts, scenarios, `dns.txt` and `3pcc.txt` are
//! Jinja2 templates (minijinja) over the run's keywords; imports and includes come from the run
//! folder, then the template folder.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex, PoisonError};
use std::time::Duration;

use base64::Engine as _;
use minijinja::{AutoEscape, Environment, Error, ErrorKind, UndefinedBehavior};
use serde_json::{Map, Value};
use sipplauncher_actors::core::plan::{Render, RenderContext};

use crate::scenario::is_scenario_file;

/// Renders run folders; one per run, shared by all test runs (and threads).
#[derive(Debug, Clone)]
pub struct Renderer {
    /// `--template-folder` (or `<suite>/TEMPLATES`): where imports and includes are looked up
    /// after the run folder.
    template_folder: Option<PathBuf>,
    /// `--keyword-replacement-values`: merged over the built-in keywords at the top level.
    extra: Map<String, Value>,
}

/// Why a run folder could not be rendered. Displayed as one line naming the file.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("list {}: {source}", folder.display())]
    List {
        folder: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{file}: cannot read: {source}")]
    Read {
        file: String,
        #[source]
        source: io::Error,
    },
    /// The template engine's error, already turned into words.
    #[error("{file}{at}: {problem}")]
    Template {
        file: String,
        /// ` line N`, or `: <imported template> line N` when the error is in another template.
        at: String,
        problem: String,
    },
    #[error(
        "{file}: the file is not utf-8, so it was read as latin-1, and the rendered text has \
         characters latin-1 cannot hold"
    )]
    NotLatin1 { file: String },
    #[error("{file}: cannot write: {source}")]
    Write {
        file: String,
        #[source]
        source: io::Error,
    },
    #[error("interrupted while rendering the templates")]
    Interrupted,
    #[error("cannot start a thread to render the templates: {source}")]
    Thread {
        #[source]
        source: io::Error,
    },
    #[error("the rendering of the templates panicked")]
    Panicked,
}

/// How many steps of the template engine one file may take: a few thousand render a scenario;
/// five million take about half a second in a release build. A file that needs more is
/// refused as one that would render for ever.
pub const FUEL: u64 = 5_000_000;

/// How often a rendering under way asks whether it is still wanted.
const CANCEL_POLL: Duration = Duration::from_millis(20);

impl Renderer {
    pub fn new(template_folder: Option<PathBuf>, extra: Map<String, Value>) -> Renderer {
        Renderer {
            template_folder,
            extra,
        }
    }

    /// The keywords templates see: the run's own, then `extra` on top (it may override any).
    pub fn context(&self, ctx: &RenderContext) -> Map<String, Value> {
        let host = |h: String| Value::Object(Map::from_iter([("host".to_string(), h.into())]));
        let mut keywords = Map::new();
        keywords.insert("dut".into(), host(ctx.dut.to_string()));
        keywords.insert(
            "test".into(),
            Value::Object(Map::from_iter([
                ("name".to_string(), Value::from(ctx.test_name.0.clone())),
                ("run_id".to_string(), Value::from(ctx.run_id.0.clone())),
                (
                    "run_id_number".to_string(),
                    Value::from(ctx.run_id_number.clone()),
                ),
            ])),
        );
        for (ua, ip) in &ctx.ua_hosts {
            keywords.insert(ua.0.clone(), host(ip.to_string()));
        }
        // The original defined it (its example suite calls `options.send(custom_transport)`).
        keywords.insert("custom_transport".into(), Value::from(""));
        for (k, v) in &self.extra {
            keywords.insert(k.clone(), v.clone());
        }
        keywords
    }

    /// Renders the templated files at the top of `run_folder` in place (see [`templated`]).
    /// Every file is rendered before any is written, so includes always see the originals and a
    /// failure leaves the folder as it was. A file is rewritten only when its bytes changed.
    ///
    /// The rendering runs on a thread of its own and `cancelled` is asked meanwhile: once it
    /// says so, the rendering is left to run out (it writes nothing, and its [`FUEL`] bounds
    /// what it burns) and this returns at once, so that an interrupt never waits for a template.
    pub fn render_folder(
        &self,
        run_folder: &Path,
        ctx: &RenderContext,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<(), RenderError> {
        let files = templated(run_folder)?;
        if files.is_empty() {
            return Ok(());
        }
        let (tx, rx) = mpsc::channel();
        let (me, folder, ctx) = (self.clone(), run_folder.to_path_buf(), ctx.clone());
        std::thread::Builder::new()
            .name("render".into())
            .spawn(move || {
                // The receiver is gone when the rendering was given up: nothing to tell.
                let _ = tx.send(me.render_all(&folder, &ctx, files));
            })
            .map_err(|source| RenderError::Thread { source })?;
        let changed = loop {
            match rx.recv_timeout(CANCEL_POLL) {
                Ok(rendered) => break rendered?,
                Err(mpsc::RecvTimeoutError::Timeout) if cancelled() => {
                    return Err(RenderError::Interrupted)
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => return Err(RenderError::Panicked),
            }
        };
        for (file, path, out) in changed {
            replace(&path, &out).map_err(|source| RenderError::Write { file, source })?;
        }
        Ok(())
    }

    /// Every file of `files` rendered in memory: those whose bytes change, with their path and
    /// new content.
    fn render_all(
        &self,
        run_folder: &Path,
        ctx: &RenderContext,
        files: Vec<String>,
    ) -> Result<Vec<(String, PathBuf, Vec<u8>)>, RenderError> {
        let keywords = Value::Object(self.context(ctx));
        let loads = Arc::new(Mutex::new(Loads::default()));
        let env = self.environment(run_folder, Arc::clone(&loads));
        let searched = match &self.template_folder {
            Some(t) => format!("{} or {}", run_folder.display(), t.display()),
            None => run_folder.display().to_string(),
        };
        let mut changed = Vec::new();
        for file in files {
            let path = run_folder.join(&file);
            let bytes = fs::read(&path).map_err(|source| RenderError::Read {
                file: file.clone(),
                source,
            })?;
            let (source, latin1) = decode(&bytes);
            let rendered = env
                .render_named_str(&file, &source, &keywords)
                .map_err(|e| describe(&file, &e, &lock(&loads), &searched))?;
            let out = if latin1 {
                encode_latin1(&rendered)
                    .ok_or_else(|| RenderError::NotLatin1 { file: file.clone() })?
            } else {
                rendered.into_bytes()
            };
            if out != bytes {
                changed.push((file, path, out));
            }
        }
        Ok(changed)
    }

    fn environment(&self, run_folder: &Path, loads: Arc<Mutex<Loads>>) -> Environment<'static> {
        let mut env = Environment::new();
        env.set_debug(true); // for Error::range and Error::template_source
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        // Suites written for Jinja2 call Python's methods on strings, dicts and lists.
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.set_auto_escape_callback(|_| AutoEscape::None);
        env.set_keep_trailing_newline(true);
        // A template that would render for ever (nested loops over big ranges) fails instead,
        // naming its file.
        env.set_fuel(Some(FUEL));
        env.add_filter("b64encode", b64encode);
        env.add_filter("b64decode", b64decode);
        let folders: Vec<PathBuf> = std::iter::once(run_folder.to_path_buf())
            .chain(self.template_folder.clone())
            .collect();
        env.set_loader(move |name| load(&folders, name, &loads));
        env
    }
}

impl Render for Renderer {
    fn render(
        &self,
        run_folder: &Path,
        ctx: &RenderContext,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<(), String> {
        self.render_folder(run_folder, ctx, cancelled)
            .map_err(|e| e.to_string())
    }
}

/// The files of `run_folder` (top level only) that are templates: `*.sh`, scenarios,
/// `dns.txt`, `3pcc.txt`; sorted, so that the first error reported does not depend on the
/// order of the directory.
pub fn templated(run_folder: &Path) -> Result<Vec<String>, RenderError> {
    let list_err = |source| RenderError::List {
        folder: run_folder.to_path_buf(),
        source,
    };
    let mut files = Vec::new();
    for entry in fs::read_dir(run_folder).map_err(list_err)? {
        let entry = entry.map_err(list_err)?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let wanted = name.ends_with(".sh")
            || is_scenario_file(&name)
            || name == "dns.txt"
            || name == "3pcc.txt";
        if wanted && fs::metadata(entry.path()).is_ok_and(|m| m.is_file()) {
            files.push(name);
        }
    }
    files.sort();
    Ok(files)
}

/// What the loader saw during one render call, to word its errors.
#[derive(Debug, Default)]
struct Loads {
    /// Template name -> how to show it: the name when it came from the run folder, else the
    /// path it was read from.
    found: HashMap<String, String>,
    /// The last name that was looked up and not found.
    missing: Option<String>,
}

fn lock(loads: &Mutex<Loads>) -> std::sync::MutexGuard<'_, Loads> {
    // The data is only a record for error messages: a panic elsewhere does not spoil it.
    loads.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The loader behind `{% import %}`, `{% include %}`, `{% extends %}`: the first folder that
/// has the file wins; names that could leave the folders are refused.
fn load(folders: &[PathBuf], name: &str, loads: &Mutex<Loads>) -> Result<Option<String>, Error> {
    let rel = Path::new(name);
    if name.is_empty()
        || rel.is_absolute()
        || rel
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("template '{name}' refused: absolute names and '..' are not allowed"),
        ));
    }
    for (i, folder) in folders.iter().enumerate() {
        let path = folder.join(rel);
        if !fs::metadata(&path).is_ok_and(|m| m.is_file()) {
            continue;
        }
        let bytes = fs::read(&path).map_err(|e| {
            Error::new(
                ErrorKind::InvalidOperation,
                format!("cannot read template '{}': {e}", path.display()),
            )
        })?;
        let shown = if i == 0 {
            name.to_string()
        } else {
            path.display().to_string()
        };
        lock(loads).found.insert(name.to_string(), shown);
        return Ok(Some(decode(&bytes).0.into_owned()));
    }
    lock(loads).missing = Some(name.to_string());
    Ok(None)
}

/// Text of a file: UTF-8, or else Latin-1 (SIPp scenarios often declare ISO-8859-1), which maps
/// every byte to one char so that untouched text round-trips byte for byte. The flag says
/// Latin-1 was used.
fn decode(bytes: &[u8]) -> (Cow<'_, str>, bool) {
    match std::str::from_utf8(bytes) {
        Ok(s) => (Cow::Borrowed(s), false),
        Err(_) => (
            Cow::Owned(bytes.iter().map(|&b| char::from(b)).collect()),
            true,
        ),
    }
}

fn encode_latin1(text: &str) -> Option<Vec<u8>> {
    text.chars().map(|c| u8::try_from(c).ok()).collect()
}

/// Replaces the file's content. A regular file (what the run folder's copy made) is rewritten
/// in place: the run folder is this run's own (0700, made by it), and a new inode per rendered
/// file was the largest part of pre-run's CPU on ext4. Anything else (a symlink) is replaced by
/// a file written next to it and renamed over it, never written through. The permission bits
/// stay; nothing is synced (a run folder does not outlive a crash).
fn replace(path: &Path, content: &[u8]) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match fs::OpenOptions::new()
        .write(true)
        .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
        .open(path)
    {
        Ok(mut f) => {
            // Written over, then cut to its new length, not emptied first: ext4 writes back at
            // close a file that was truncated to nothing (auto_da_alloc), a disk write per
            // rendered file.
            f.write_all(content)?;
            let len = content.len() as u64;
            if f.metadata()?.len() > len {
                f.set_len(len)?;
            }
            return Ok(());
        }
        Err(e) if e.raw_os_error() == Some(nix::libc::ELOOP) => {}
        Err(e) => return Err(e),
    }
    let perms = fs::metadata(path)?.permissions();
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(format!(".render-{}", std::process::id()));
    let tmp = PathBuf::from(tmp_name);
    let write = || -> io::Result<()> {
        // create_new: never reuse (or write through) something already there.
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        f.write_all(content)?;
        f.set_permissions(perms)?;
        fs::rename(&tmp, path)
    };
    write().inspect_err(|_| {
        let _ = fs::remove_file(&tmp);
    })
}

/// `string | b64encode`: standard base64 of the string's UTF-8 bytes.
fn b64encode(value: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(value)
}

/// `string | b64decode`: the UTF-8 text that standard base64 encodes.
fn b64decode(value: &str) -> Result<String, Error> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .map_err(|e| Error::new(ErrorKind::InvalidOperation, format!("b64decode: {e}")))?;
    String::from_utf8(bytes).map_err(|_| {
        Error::new(
            ErrorKind::InvalidOperation,
            "b64decode: the decoded bytes are not utf-8 text",
        )
    })
}

/// Turns a minijinja error met while rendering `file` into one line.
/// `searched` names the folders the loader looks in.
fn describe(file: &str, err: &Error, loads: &Loads, searched: &str) -> RenderError {
    let line = err.line().map(|l| format!(" line {l}")).unwrap_or_default();
    let at = match err.name() {
        Some(name) if name != file => {
            let shown = loads.found.get(name).map_or(name, String::as_str);
            format!(": {shown}{line}")
        }
        _ => line,
    };
    let problem = match err.kind() {
        ErrorKind::UndefinedError => match undefined_expression(err) {
            Some(expr) if is_keyword_path(&expr) => format!("unknown keyword '{expr}'"),
            Some(expr) => format!("unknown keyword in '{expr}'"),
            None => "unknown keyword".to_string(),
        },
        ErrorKind::SyntaxError => match err.detail() {
            Some(d) => format!("syntax error: {d}"),
            None => "syntax error".to_string(),
        },
        ErrorKind::TemplateNotFound => {
            let name = loads
                .missing
                .clone()
                .or_else(|| quoted(err.detail()?))
                .unwrap_or_default();
            format!("template '{name}' not found in {searched}")
        }
        ErrorKind::InvalidOperation => err.detail().unwrap_or("invalid operation").to_string(),
        ErrorKind::OutOfFuel => format!(
            "the template takes too long to render (more than {FUEL} steps: a loop that does \
             not end?)"
        ),
        kind => match err.detail() {
            Some(d) => format!("{kind}: {d}"),
            None => kind.to_string(),
        },
    };
    RenderError::Template {
        file: file.to_string(),
        at,
        problem,
    }
}

/// The source text of the expression that was undefined, as minijinja points at it. For
/// `{{ dut.host.x.y }}` it points at `.x.y`: the path is then extended back to its start.
fn undefined_expression(err: &Error) -> Option<String> {
    let source = err.template_source()?;
    let range = err.range()?;
    let mut start = range.start;
    let text = source.get(range.clone())?;
    if text.starts_with('.') || text.starts_with('[') {
        let before = source.get(..start)?;
        let back = before
            .bytes()
            .rev()
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'.')
            .count();
        start -= back;
    }
    Some(source.get(start..range.end)?.trim().to_string())
}

/// `a`, `a.b`, `a['b']`, `a[0].b`: a keyword, not a bigger expression.
fn is_keyword_path(expr: &str) -> bool {
    let mut rest = expr;
    let ident_len = |s: &str| {
        let n = s
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
            .count();
        if s.as_bytes().first().is_some_and(|b| b.is_ascii_digit()) {
            0
        } else {
            n
        }
    };
    let n = ident_len(rest);
    if n == 0 {
        return false;
    }
    rest = &rest[n..];
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let n = ident_len(r);
            if n == 0 {
                return false;
            }
            rest = &r[n..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let Some(end) = r.find(']') else {
                return false;
            };
            let inner = &r[..end];
            let quoted = inner.len() >= 2
                && ((inner.starts_with('\'') && inner.ends_with('\''))
                    || (inner.starts_with('"') && inner.ends_with('"')));
            let index = !inner.is_empty() && inner.bytes().all(|b| b.is_ascii_digit());
            if !quoted && !index {
                return false;
            }
            rest = &r[end + 1..];
        } else {
            return false;
        }
    }
    true
}

/// The text between the first pair of double quotes (minijinja's `template "x" does not exist`).
fn quoted(detail: &str) -> Option<String> {
    let start = detail.find('"')? + 1;
    let len = detail[start..].find('"')?;
    Some(detail[start..start + len].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sipplauncher_actors::core::plan::{RunId, TestName, UaName};
    use std::collections::BTreeMap;
    use std::net::Ipv4Addr;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    const ORIGINAL: &str = "/work/shared/compat/original-tmp-testsuite";

    const OPTIONS_MACRO: &str = r#"{% macro send(transport) -%}
    <send start_rtd="true">
      <![CDATA[

OPTIONS sip:[remote_ip]:{{transport}} SIP/2.0
Max-Forwards: 70
Content-Length: [len]

]]>
    </send>
{%- endmacro %}
"#;

    fn ctx() -> RenderContext {
        RenderContext {
            test_name: TestName("normal-0000".into()),
            run_id: RunId("kqzvxa".into()),
            run_id_number: "012345678901".into(),
            dut: Ipv4Addr::new(10, 22, 22, 24),
            ua_hosts: BTreeMap::from([
                (UaName("ua0".into()), Ipv4Addr::new(10, 22, 22, 100)),
                (UaName("ua1".into()), Ipv4Addr::new(10, 22, 22, 101)),
            ]),
        }
    }

    struct Fixture {
        _dir: tempfile::TempDir,
        run: PathBuf,
        templates: PathBuf,
    }

    fn fixture(run_files: &[(&str, &str)], template_files: &[(&str, &str)]) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        let templates = dir.path().join("TEMPLATES");
        fs::create_dir(&run).unwrap();
        fs::create_dir(&templates).unwrap();
        for (name, text) in run_files {
            fs::write(run.join(name), text).unwrap();
        }
        for (name, text) in template_files {
            fs::write(templates.join(name), text).unwrap();
        }
        Fixture {
            _dir: dir,
            run,
            templates,
        }
    }

    fn extra(json: &str) -> Map<String, Value> {
        serde_json::from_str(json).unwrap()
    }

    fn render(f: &Fixture, extra: Map<String, Value>) -> Result<(), String> {
        Renderer::new(Some(f.templates.clone()), extra).render(&f.run, &ctx(), &|| false)
    }

    /// A template that would render for ever (10^10 loop turns) fails on its fuel, naming the
    /// file and the line; the folder is left as it was.
    #[test]
    fn a_template_that_renders_for_ever_runs_out_of_fuel() {
        let forever = "<scenario>\n{% for i in range(100000) %}{% for j in range(100000) %}\
                       {{ i }}{% endfor %}{% endfor %}</scenario>\n";
        let f = fixture(&[("uac_ua0.xml", forever)], &[]);
        let err = render(&f, Map::new()).unwrap_err();
        assert_eq!(
            err,
            format!(
                "uac_ua0.xml line 2: the template takes too long to render (more than {FUEL} \
                 steps: a loop that does not end?)"
            )
        );
        assert_eq!(read(&f, "uac_ua0.xml"), forever);
    }

    /// An interrupt does not wait for a rendering under way: it is given up at once and
    /// nothing is written.
    #[test]
    fn a_cancelled_rendering_returns_at_once() {
        let forever = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}\
                       {% endfor %}{{ dut.host }}";
        let f = fixture(&[("uac_ua0.xml", forever)], &[]);
        let asked = std::sync::atomic::AtomicU32::new(0);
        let cancelled = || asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst) >= 2;
        let started = std::time::Instant::now();
        let err = Renderer::new(None, Map::new())
            .render_folder(&f.run, &ctx(), &cancelled)
            .unwrap_err();
        assert!(matches!(err, RenderError::Interrupted), "{err}");
        // Asked every 20 ms: far less than the fuel's seconds (a debug build).
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(read(&f, "uac_ua0.xml"), forever);
    }

    fn read(f: &Fixture, name: &str) -> String {
        fs::read_to_string(f.run.join(name)).unwrap()
    }

    #[test]
    fn renderer_is_send_and_sync() {
        fn check<T: Send + Sync + 'static>() {}
        check::<Renderer>();
        let _: Box<dyn Render> = Box::new(Renderer::new(None, Map::new()));
    }

    #[test]
    fn keywords_are_substituted_in_the_templated_files_only() {
        let all = "{{ dut.host }} {{ test.name }} {{ test.run_id }} {{ test.run_id_number }} \
                   {{ ua0.host }} {{ ua1.host }} [{{ custom_transport }}]\n";
        let want = "10.22.22.24 normal-0000 kqzvxa 012345678901 10.22.22.100 10.22.22.101 []\n";
        let f = fixture(
            &[
                ("before.sh", all),
                ("helper.sh", "echo {{ua0.host}}"),
                ("uas_ua0.xml", all),
                ("part1_uac_ua1.xml", all),
                ("dns.txt", "ep1.example.com  A  {{ ua1.host }}\n"),
                ("3pcc.txt", "m;{{ua0.host}}:8880\nua1;{{ua1.host}}:8881\n"),
                ("notes.txt", all),
                ("users.csv", all),
                ("uac_ua0.xml.orig", all),
            ],
            &[],
        );
        render(&f, Map::new()).unwrap();
        for name in ["before.sh", "uas_ua0.xml", "part1_uac_ua1.xml"] {
            assert_eq!(read(&f, name), want, "{name}");
        }
        assert_eq!(read(&f, "helper.sh"), "echo 10.22.22.100");
        assert_eq!(read(&f, "dns.txt"), "ep1.example.com  A  10.22.22.101\n");
        assert_eq!(
            read(&f, "3pcc.txt"),
            "m;10.22.22.100:8880\nua1;10.22.22.101:8881\n"
        );
        for name in ["notes.txt", "users.csv", "uac_ua0.xml.orig"] {
            assert_eq!(read(&f, name), all, "{name}");
        }
    }

    /// Python's methods, as suites written for Jinja2 use them.
    #[test]
    fn python_methods_work_as_in_jinja2() {
        let f = fixture(
            &[(
                "uac_ua0.xml",
                "{{ ua0.host.split('.')[3] }} {{ test.name.upper() }} \
                 {{ test.name.replace('-', '_') }} {{ dut.host.startswith('10.') }} \
                 {% for k, v in dut.items() %}{{ k }}={{ v }}{% endfor %}\n",
            )],
            &[],
        );
        render(&f, Map::new()).unwrap();
        assert_eq!(
            read(&f, "uac_ua0.xml"),
            "100 NORMAL-0000 normal_0000 True host=10.22.22.24\n"
        );
    }

    #[test]
    fn keyword_replacement_values_override_and_add() {
        let f = fixture(
            &[(
                "uac_ua0.xml",
                "{{ dut.host }} {{ ua0.host }} {{ ua1_username }} {{ n + 1 }} {{ test.name }}",
            )],
            &[],
        );
        let extra = extra(
            r#"{"dut": {"host": "192.0.2.1"}, "ua1_username": "test1", "n": 41,
                "test": {"name": "renamed"}}"#,
        );
        render(&f, extra).unwrap();
        assert_eq!(
            read(&f, "uac_ua0.xml"),
            "192.0.2.1 10.22.22.100 test1 42 renamed"
        );
    }

    #[test]
    fn no_html_escaping_in_xml_or_any_file() {
        let body = "<a>{{ v }}</a>\n";
        let f = fixture(
            &[("uac_ua0.xml", body), ("x.sh", body), ("dns.txt", body)],
            &[],
        );
        render(&f, extra(r#"{"v": "<&\"'>"}"#)).unwrap();
        for name in ["uac_ua0.xml", "x.sh", "dns.txt"] {
            assert_eq!(read(&f, name), "<a><&\"'></a>\n", "{name}");
        }
    }

    #[test]
    fn macro_imported_from_the_template_folder() {
        let scenario = "<scenario name=\"\">\n\n{% import 'options.jinja2' as options %}\n\
                        {{ options.send(custom_transport) }}\n\n</scenario>\n";
        let f = fixture(
            &[("uac_ua0.xml", scenario)],
            &[("options.jinja2", OPTIONS_MACRO)],
        );
        render(&f, Map::new()).unwrap();
        assert_eq!(
            read(&f, "uac_ua0.xml"),
            // `-%}` after the macro's signature eats the indentation, as in Jinja2
            "<scenario name=\"\">\n\n\n<send start_rtd=\"true\">\n      <![CDATA[\n\n\
             OPTIONS sip:[remote_ip]: SIP/2.0\nMax-Forwards: 70\nContent-Length: [len]\n\n\
             ]]>\n    </send>\n\n</scenario>\n"
        );
        // the template folder is only read
        assert_eq!(
            fs::read_to_string(f.templates.join("options.jinja2")).unwrap(),
            OPTIONS_MACRO
        );
    }

    #[test]
    fn run_folder_wins_over_the_template_folder() {
        let f = fixture(
            &[
                (
                    "uac_ua0.xml",
                    "[{% include 'part.inc' %}][{% include 'only-shared.inc' %}]",
                ),
                ("part.inc", "local {{ ua0.host }}"),
            ],
            &[
                ("part.inc", "shared"),
                ("only-shared.inc", "shared {{ dut.host }}"),
            ],
        );
        render(&f, Map::new()).unwrap();
        assert_eq!(
            read(&f, "uac_ua0.xml"),
            "[local 10.22.22.100][shared 10.22.22.24]"
        );
        // an include file is not itself rendered in place
        assert_eq!(read(&f, "part.inc"), "local {{ ua0.host }}");
    }

    #[test]
    fn includes_see_the_files_as_copied() {
        // uac_ua0.xml includes uas_ua0.xml, which is rendered too: the include gets the original.
        let f = fixture(
            &[
                ("uac_ua0.xml", "{% raw %}{{ x }}{% endraw %}"),
                ("uas_ua0.xml", "{% include 'uac_ua0.xml' %}"),
            ],
            &[],
        );
        render(&f, Map::new()).unwrap();
        assert_eq!(read(&f, "uac_ua0.xml"), "{{ x }}");
        assert_eq!(read(&f, "uas_ua0.xml"), "{{ x }}");
    }

    #[test]
    fn unknown_keyword_names_file_line_and_keyword() {
        let cases: &[(&str, &str)] = &[
            (
                "a\nb\n{{ ua9.host }}\n",
                "uas_ua0.xml line 3: unknown keyword 'ua9.host'",
            ),
            (
                "{{ dut.port }}",
                "uas_ua0.xml line 1: unknown keyword 'dut.port'",
            ),
            (
                "\n{{ nothing }}",
                "uas_ua0.xml line 2: unknown keyword 'nothing'",
            ),
            (
                "{{ ua9.host | upper }}",
                "uas_ua0.xml line 1: unknown keyword 'ua9.host'",
            ),
            (
                "{% if ua9.host %}{% endif %}",
                "uas_ua0.xml line 1: unknown keyword 'ua9.host'",
            ),
            (
                "{{ dut.host.x.y }}",
                "uas_ua0.xml line 1: unknown keyword 'dut.host.x.y'",
            ),
            (
                "{{ dut['port'] }}",
                "uas_ua0.xml line 1: unknown keyword 'dut['port']'",
            ),
            (
                "{{ dut.host ~ ua9 }}",
                "uas_ua0.xml line 1: unknown keyword in 'dut.host ~ ua9'",
            ),
        ];
        for (text, want) in cases {
            let f = fixture(
                &[("uas_ua0.xml", text), ("uac_ua1.xml", "{{ dut.host }}")],
                &[],
            );
            let err = render(&f, Map::new()).unwrap_err();
            assert_eq!(&err, want, "{text:?}");
            // nothing was written: the failing test is NOT READY anyway
            assert_eq!(read(&f, "uac_ua1.xml"), "{{ dut.host }}");
        }
        // `is defined` still works under strict undefined
        let f = fixture(
            &[(
                "uac_ua0.xml",
                "{% if ua9 is defined %}x{% else %}y{% endif %}",
            )],
            &[],
        );
        render(&f, Map::new()).unwrap();
        assert_eq!(read(&f, "uac_ua0.xml"), "y");
    }

    #[test]
    fn unknown_keyword_inside_an_imported_macro_names_that_template() {
        let f = fixture(
            &[
                (
                    "uac_ua0.xml",
                    "x\n{% import 'm.jinja2' as m %}\n{{ m.send() }}\n",
                ),
                (
                    "local.jinja2",
                    "{% macro f() %}\n{{ ua7.host }}{% endmacro %}",
                ),
                ("uas_ua1.xml", "{% import 'local.jinja2' as l %}{{ l.f() }}"),
            ],
            &[(
                "m.jinja2",
                "{% macro send() -%}\n\n  {{ ua9.host }}\n{%- endmacro %}\n",
            )],
        );
        let err = render(&f, Map::new()).unwrap_err();
        assert_eq!(
            err,
            format!(
                "uac_ua0.xml: {} line 3: unknown keyword 'ua9.host'",
                f.templates.join("m.jinja2").display()
            )
        );
        fs::write(f.run.join("uac_ua0.xml"), "").unwrap();
        let err = render(&f, Map::new()).unwrap_err();
        assert_eq!(
            err,
            "uas_ua1.xml: local.jinja2 line 2: unknown keyword 'ua7.host'"
        );
    }

    #[test]
    fn syntax_errors() {
        let f = fixture(&[("uac_ua0.xml", "1\n2\n{{ x + }}\n")], &[]);
        assert_eq!(
            render(&f, Map::new()).unwrap_err(),
            "uac_ua0.xml line 3: syntax error: unexpected end of variable block"
        );
        let f = fixture(
            &[("before.sh", "{% include 'bad.inc' %}")],
            &[("bad.inc", "\n{% if %}")],
        );
        let err = render(&f, Map::new()).unwrap_err();
        let want = format!(
            "before.sh: {} line 2: syntax error: ",
            f.templates.join("bad.inc").display()
        );
        assert!(err.starts_with(&want), "{err}");
    }

    #[test]
    fn missing_template() {
        let f = fixture(
            &[("uac_ua0.xml", "1\n2\n3\n{% import 'x.jinja2' as x %}\n")],
            &[],
        );
        assert_eq!(
            render(&f, Map::new()).unwrap_err(),
            format!(
                "uac_ua0.xml line 4: template 'x.jinja2' not found in {} or {}",
                f.run.display(),
                f.templates.display()
            )
        );
        let err = Renderer::new(None, Map::new())
            .render(&f.run, &ctx(), &|| false)
            .unwrap_err();
        assert_eq!(
            err,
            format!(
                "uac_ua0.xml line 4: template 'x.jinja2' not found in {}",
                f.run.display()
            )
        );
        for tag in ["include", "extends"] {
            fs::write(f.run.join("uac_ua0.xml"), format!("{{% {tag} 'y' %}}")).unwrap();
            let err = render(&f, Map::new()).unwrap_err();
            assert!(
                err.starts_with("uac_ua0.xml line 1: template 'y' not found in "),
                "{err}"
            );
        }
    }

    #[test]
    fn names_that_leave_the_folders_are_refused() {
        let f = fixture(&[], &[]);
        // a file outside both folders that `..` would reach
        fs::write(f.run.parent().unwrap().join("secret"), "s").unwrap();
        let cases = [
            ("{% include '../secret' %}", "'../secret'"),
            ("{% include 'a/../../secret' %}", "'a/../../secret'"),
            ("{% import '/etc/hostname' as h %}", "'/etc/hostname'"),
        ];
        for (text, name) in cases {
            fs::write(f.run.join("uac_ua0.xml"), text).unwrap();
            let err = render(&f, Map::new()).unwrap_err();
            assert_eq!(
                err,
                format!(
                    "uac_ua0.xml line 1: template {name} refused: absolute names and '..' are \
                     not allowed"
                )
            );
        }
        // a plain subfolder is fine
        fs::create_dir(f.run.join("sub")).unwrap();
        fs::write(f.run.join("sub/x"), "sub").unwrap();
        fs::write(
            f.run.join("uac_ua0.xml"),
            "{% include 'sub/x' %}{% include './sub/x' %}",
        )
        .unwrap();
        render(&f, Map::new()).unwrap();
        assert_eq!(read(&f, "uac_ua0.xml"), "subsub");
    }

    #[test]
    fn base64_filters() {
        let f = fixture(
            &[(
                "uac_ua0.xml",
                "{{ 'user:pässword' | b64encode }}|{{ 'user:pässword' | b64encode | b64decode }}|\
                 {{ 'aGVsbG8=' | b64decode }}",
            )],
            &[],
        );
        render(&f, Map::new()).unwrap();
        assert_eq!(
            read(&f, "uac_ua0.xml"),
            "dXNlcjpww6Rzc3dvcmQ=|user:pässword|hello"
        );
        let f = fixture(&[("uac_ua0.xml", "\n{{ 'not base64!' | b64decode }}")], &[]);
        let err = render(&f, Map::new()).unwrap_err();
        assert!(err.starts_with("uac_ua0.xml line 2: b64decode: "), "{err}");
        let f = fixture(&[("uac_ua0.xml", "{{ '/w==' | b64decode }}")], &[]);
        let err = render(&f, Map::new()).unwrap_err();
        assert_eq!(
            err,
            "uac_ua0.xml line 1: b64decode: the decoded bytes are not utf-8 text"
        );
    }

    #[test]
    fn unchanged_files_are_not_rewritten_and_changed_ones_keep_their_mode() {
        let plain = "#!/bin/sh\necho plain\n\n";
        let f = fixture(
            &[
                ("plain.sh", plain),
                ("uac_ua0.xml", "<x/>\n"),
                ("before.sh", "echo {{ dut.host }}\n"),
            ],
            &[],
        );
        fs::set_permissions(f.run.join("before.sh"), fs::Permissions::from_mode(0o750)).unwrap();
        let rendered_ino = fs::metadata(f.run.join("before.sh")).unwrap().ino();
        let old = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
        for name in ["plain.sh", "uac_ua0.xml", "before.sh"] {
            fs::File::options()
                .write(true)
                .open(f.run.join(name))
                .unwrap()
                .set_modified(old)
                .unwrap();
        }
        let before: Vec<_> = ["plain.sh", "uac_ua0.xml"]
            .map(|n| fs::metadata(f.run.join(n)).unwrap())
            .into_iter()
            .map(|m| (m.ino(), m.mtime()))
            .collect();
        render(&f, Map::new()).unwrap();
        let after: Vec<_> = ["plain.sh", "uac_ua0.xml"]
            .map(|n| fs::metadata(f.run.join(n)).unwrap())
            .into_iter()
            .map(|m| (m.ino(), m.mtime()))
            .collect();
        assert_eq!(before, after);
        assert_eq!(read(&f, "plain.sh"), plain); // trailing newlines kept
        let m = fs::metadata(f.run.join("before.sh")).unwrap();
        assert_eq!(read(&f, "before.sh"), "echo 10.22.22.24\n");
        assert_eq!(m.permissions().mode() & 0o7777, 0o750);
        assert_ne!(m.mtime(), 1_000_000);
        assert_eq!(m.ino(), rendered_ino, "rewritten in place, no new file");
        // no temporary file left behind
        let mut names: Vec<_> = fs::read_dir(&f.run)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["before.sh", "plain.sh", "uac_ua0.xml"]);
    }

    #[test]
    fn a_symlink_in_the_run_folder_is_replaced_not_written_through() {
        let f = fixture(&[], &[("target.xml", "{{ dut.host }}")]);
        std::os::unix::fs::symlink(f.templates.join("target.xml"), f.run.join("uac_ua0.xml"))
            .unwrap();
        render(&f, Map::new()).unwrap();
        assert_eq!(read(&f, "uac_ua0.xml"), "10.22.22.24");
        assert_eq!(
            fs::read_to_string(f.templates.join("target.xml")).unwrap(),
            "{{ dut.host }}"
        );
    }

    #[test]
    fn a_file_rendered_shorter_or_longer_is_exactly_its_rendering() {
        let dir = tempfile::tempdir().unwrap();
        let long = format!(
            "{{{{ dut.host }}}}{}",
            "{# a comment that goes #}".repeat(40)
        );
        fs::write(dir.path().join("uac_ua0.xml"), &long).unwrap();
        fs::write(dir.path().join("uas_ua1.xml"), "<{{ dut.host }}>").unwrap();
        fs::write(dir.path().join("uas_ua2.xml"), "{% if false %}x{% endif %}").unwrap();
        Renderer::new(None, Map::new())
            .render(dir.path(), &ctx(), &|| false)
            .unwrap();
        let read = |n: &str| fs::read_to_string(dir.path().join(n)).unwrap();
        assert_eq!(read("uac_ua0.xml"), "10.22.22.24");
        assert_eq!(read("uas_ua1.xml"), "<10.22.22.24>");
        assert_eq!(read("uas_ua2.xml"), "");
    }

    #[test]
    fn latin1_files_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        // "é" in ISO-8859-1 is the single byte 0xE9: not UTF-8
        let mut text =
            b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\" ?>\n<!-- caf\xe9 -->\n".to_vec();
        fs::write(dir.path().join("uac_ua1.xml"), &text).unwrap();
        text.extend_from_slice(b"{{ dut.host }}\n");
        fs::write(dir.path().join("uac_ua0.xml"), &text).unwrap();
        let r = Renderer::new(None, Map::new());
        r.render(dir.path(), &ctx(), &|| false).unwrap();
        let mut want = text[..text.len() - 15].to_vec();
        assert_eq!(fs::read(dir.path().join("uac_ua1.xml")).unwrap(), want);
        want.extend_from_slice(b"10.22.22.24\n");
        assert_eq!(fs::read(dir.path().join("uac_ua0.xml")).unwrap(), want);
        // a value latin-1 cannot hold
        fs::write(dir.path().join("uac_ua0.xml"), b"\xe9{{ v }}").unwrap();
        let err = Renderer::new(None, extra(r#"{"v": "€"}"#))
            .render(dir.path(), &ctx(), &|| false)
            .unwrap_err();
        assert!(
            err.starts_with("uac_ua0.xml: the file is not utf-8"),
            "{err}"
        );
    }

    #[test]
    fn concurrent_renders_of_different_folders() {
        let r = Arc::new(Renderer::new(None, Map::new()));
        let folders: Vec<_> = (0..8)
            .map(|i| {
                let f = fixture(
                    &[
                        ("uac_ua0.xml", "{% include 'me.inc' %} {{ test.run_id }}"),
                        ("me.inc", &format!("folder {i}")),
                    ],
                    &[],
                );
                f
            })
            .collect();
        std::thread::scope(|s| {
            for f in &folders {
                let r = Arc::clone(&r);
                s.spawn(move || r.render(&f.run, &ctx(), &|| false).unwrap());
            }
        });
        for (i, f) in folders.iter().enumerate() {
            assert_eq!(read(f, "uac_ua0.xml"), format!("folder {i} kqzvxa"));
        }
    }

    #[test]
    fn bad_run_folder() {
        let err = Renderer::new(None, Map::new())
            .render(Path::new("/nonexistent/run"), &ctx(), &|| false)
            .unwrap_err();
        assert!(err.starts_with("list /nonexistent/run: "), "{err}");
    }

    #[test]
    fn keyword_path_table() {
        let cases = [
            ("ua9.host", true),
            ("nothing", true),
            ("_x1.y_2", true),
            ("dut['port']", true),
            ("a[0].b", true),
            ("a[\"b\"]", true),
            ("dut.host ~ ua9", false),
            ("a + b", false),
            ("f(x)", false),
            ("9a", false),
            ("a.", false),
            ("a[b]", false),
            ("a['b'", false),
            ("", false),
        ];
        for (expr, want) in cases {
            assert_eq!(is_keyword_path(expr), want, "{expr}");
        }
    }

    /// The original's example suite renders as a whole (its pseudo-symlinks, plain files that
    /// hold the target's name, are resolved while copying, as the run-folder copy does).
    #[test]
    fn the_original_example_suite_renders() {
        let root = Path::new(ORIGINAL);
        // Part of the project's layout (../shared beside the repository): a test that cannot
        // run fails rather than pass without doing anything.
        assert!(root.is_dir(), "{ORIGINAL} not present");
        let r = Renderer::new(Some(root.join("TEMPLATES")), Map::new());
        for test in [
            "normal-0000",
            "normal-0001",
            "normal-dns-0000",
            "options-0000",
            "options-0001",
        ] {
            let dir = tempfile::tempdir().unwrap();
            for entry in fs::read_dir(root.join(test)).unwrap() {
                let entry = entry.unwrap();
                let mut bytes = fs::read(entry.path()).unwrap();
                if bytes.len() < 64
                    && root
                        .join(test)
                        .join(String::from_utf8_lossy(&bytes).as_ref())
                        .is_file()
                {
                    bytes = fs::read(
                        root.join(test)
                            .join(String::from_utf8_lossy(&bytes).as_ref()),
                    )
                    .unwrap();
                }
                fs::write(dir.path().join(entry.file_name()), bytes).unwrap();
            }
            r.render(dir.path(), &ctx(), &|| false)
                .unwrap_or_else(|e| panic!("{test}: {e}"));
            for entry in fs::read_dir(dir.path()).unwrap() {
                let text = fs::read_to_string(entry.unwrap().path()).unwrap();
                assert!(
                    !text.contains("{{") && !text.contains("{%"),
                    "{test}: {text}"
                );
            }
            if test.starts_with("options") || test == "normal-0000" {
                let x = fs::read_to_string(dir.path().join("uac_ua0.xml"))
                    .or_else(|_| fs::read_to_string(dir.path().join("uas_ua0.xml")))
                    .unwrap();
                assert!(x.contains("<send start_rtd=\"true\">"), "{x}");
                assert!(x.contains("OPTIONS sip:[remote_ip]: SIP/2.0"), "{x}");
            }
        }
    }
}
