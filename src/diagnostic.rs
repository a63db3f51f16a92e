//! Problems in a ci.fnl (or a module it requires), as the user reads them:
//! a code, a one-line message naming the thing, a label on the source span
//! and a `help:` line. Rendered through miette.
//!
//! Owns: the `Problem` type and turning it into a miette report. Must not
//! know about: Docker, how problems were found.

use std::collections::BTreeMap;
use std::fmt;

use miette::{Diagnostic, LabeledSpan, NamedSource, SourceSpan};

/// Where a problem points: a file (as named to the user, e.g. `.quire/ci.fnl`)
/// and a 1-based line, optionally a 0-based character column span.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Location {
    pub file: String,
    pub line: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub columns: Option<(usize, usize)>,
}

/// The stable code of a problem, shown as `quire_ci::<name>` (in miette's
/// output and in `validate --json`); control flow matches on these, never on
/// the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    /// Fennel refused a form (unknown identifier, bad binding).
    Compile,
    /// Jobs that need themselves, directly or through others.
    Cycle,
    /// Two `ci.job` calls with one id.
    DuplicateJob,
    /// A job with `[]` as its inputs.
    EmptyInputs,
    /// ci.fnl's top level raised an error.
    Eval,
    /// The Fennel compiler itself could not be loaded or set up.
    Fennel,
    /// `ci.image` called more than once.
    ImageTwice,
    /// `ci.image` given something other than one name.
    ImageType,
    /// A job's inputs are not a sequence of names.
    InputsType,
    /// A job id that is empty or contains `/`.
    JobId,
    /// A job id that is not a string or keyword.
    JobIdType,
    /// An evaluation limit (time, memory, instructions) tripped.
    Limit,
    /// The repository has no `.quire/ci.fnl`.
    NoCiFnl,
    /// The directory is not inside a git repository.
    NoRepo,
    /// A repository git can read but quire-ci cannot (SHA-256 object names).
    RepoFormat,
    /// A source file that is not UTF-8.
    NotUtf8,
    /// Fennel could not read the text (unclosed or mismatched delimiters).
    Parse,
    /// A source file could not be read.
    Read,
    /// A settings file (quire-ci.toml, config.toml) that is not valid TOML.
    Settings,
    /// A key no setting has, in a settings file.
    SettingsKey,
    /// A setting's value of the wrong type or out of range (file or environment).
    SettingsValue,
    /// A run-fn raised an error.
    RunFn,
    /// A job's run-fn is not a function.
    RunType,
    /// The sandbox VM could not be set up.
    Sandbox,
    /// More `ci.job` calls than quire-ci allows.
    TooManyJobs,
    /// An input that is neither a job id nor a source.
    UnknownInput,
    /// A job that nothing starting at `:quire/push` triggers.
    Unreachable,
    /// `runtime.X` for an X that is not sh, jobs or secret.
    RuntimeKey,
    /// Warning: a quire.stdlib helper the server's empty module lacks.
    ServerStdlib,
    /// Warning: a Luau-only name the server's Lua 5.4 lacks.
    ServerLuauOnly,
    /// Warning: a `:quire/push` key the server does not send.
    ServerPushKey,
    /// Warning: a repo-local (macro) module the server cannot load.
    ServerModule,
    /// Warning: an `sh` option the server refuses.
    ServerShOption,
    /// Warning: a number in an `sh` argv, which the server refuses.
    ServerShArgv,
    /// Warning: a non-string `sh` `:env` value, which the server refuses.
    ServerShEnv,
    /// Warning: reading a job's outputs, which the server does not pass on.
    ServerJobOutputs,
}

impl Code {
    /// A warning (the file is still valid) rather than an error: what the
    /// forge's server would refuse (server_compat.rs).
    pub fn is_warning(self) -> bool {
        matches!(
            self,
            Code::ServerLuauOnly
                | Code::ServerPushKey
                | Code::ServerModule
                | Code::ServerShOption
                | Code::ServerShArgv
                | Code::ServerShEnv
                | Code::ServerJobOutputs
                | Code::ServerStdlib
        )
    }

    /// The code as the user reads it, e.g. `quire_ci::cycle`.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Compile => "quire_ci::compile",
            Code::Cycle => "quire_ci::cycle",
            Code::DuplicateJob => "quire_ci::duplicate_job",
            Code::EmptyInputs => "quire_ci::empty_inputs",
            Code::Eval => "quire_ci::eval",
            Code::Fennel => "quire_ci::fennel",
            Code::ImageTwice => "quire_ci::image_twice",
            Code::ImageType => "quire_ci::image_type",
            Code::InputsType => "quire_ci::inputs_type",
            Code::JobId => "quire_ci::job_id",
            Code::JobIdType => "quire_ci::job_id_type",
            Code::Limit => "quire_ci::limit",
            Code::NoCiFnl => "quire_ci::no_ci_fnl",
            Code::NoRepo => "quire_ci::no_repo",
            Code::RepoFormat => "quire_ci::repo_format",
            Code::NotUtf8 => "quire_ci::not_utf8",
            Code::Parse => "quire_ci::parse",
            Code::Read => "quire_ci::read",
            Code::Settings => "quire_ci::settings",
            Code::SettingsKey => "quire_ci::settings_key",
            Code::SettingsValue => "quire_ci::settings_value",
            Code::RunFn => "quire_ci::run_fn",
            Code::RunType => "quire_ci::run_type",
            Code::Sandbox => "quire_ci::sandbox",
            Code::TooManyJobs => "quire_ci::too_many_jobs",
            Code::UnknownInput => "quire_ci::unknown_input",
            Code::Unreachable => "quire_ci::unreachable",
            Code::RuntimeKey => "quire_ci::runtime_key",
            Code::ServerStdlib => "quire_ci::server_stdlib",
            Code::ServerLuauOnly => "quire_ci::server_luau_only",
            Code::ServerPushKey => "quire_ci::server_push_key",
            Code::ServerModule => "quire_ci::server_module",
            Code::ServerShOption => "quire_ci::server_sh_option",
            Code::ServerShArgv => "quire_ci::server_sh_argv",
            Code::ServerShEnv => "quire_ci::server_sh_env",
            Code::ServerJobOutputs => "quire_ci::server_job_outputs",
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    pub code: Code,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    /// The text of the label on the source span.
    pub label: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
}

impl Problem {
    pub fn new(code: Code, message: impl Into<String>) -> Problem {
        Problem { code, message: message.into(), location: None, label: String::new(), help: None }
    }
    pub fn at(mut self, file: &str, line: usize) -> Problem {
        self.location = Some(Location { file: file.to_string(), line, columns: None });
        self
    }
    pub fn columns(mut self, columns: Option<(usize, usize)>) -> Problem {
        if let Some(loc) = self.location.as_mut() {
            loc.columns = columns;
        }
        self
    }
    pub fn label(mut self, label: impl Into<String>) -> Problem {
        self.label = label.into();
        self
    }
    pub fn help(mut self, help: impl Into<String>) -> Problem {
        self.help = Some(help.into());
        self
    }
    pub fn line(&self) -> Option<usize> {
        self.location.as_ref().map(|l| l.line)
    }
}

/// The text of every file problems may point into, by the name used in
/// `Location::file`.
#[derive(Debug, Clone, Default)]
pub struct Sources(BTreeMap<String, String>);

impl Sources {
    pub fn insert(&mut self, file: &str, text: &str) {
        self.0.insert(file.to_string(), text.to_string());
    }
    pub fn get(&self, file: &str) -> Option<&str> {
        self.0.get(file).map(String::as_str)
    }
}

/// A problem with its source attached, ready for miette's renderer.
#[derive(Debug)]
pub struct Rendered {
    problem: Problem,
    source: Option<NamedSource<String>>,
    span: Option<SourceSpan>,
}

impl fmt::Display for Rendered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.problem.message)
    }
}

impl std::error::Error for Rendered {}

impl Diagnostic for Rendered {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.problem.code.as_str()))
    }
    fn severity(&self) -> Option<miette::Severity> {
        self.problem.code.is_warning().then_some(miette::Severity::Warning)
    }
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.problem.help.as_ref().map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.source.as_ref().map(|s| s as &dyn miette::SourceCode)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let span = self.span?;
        let label = (!self.problem.label.is_empty()).then(|| self.problem.label.clone());
        Some(Box::new(std::iter::once(LabeledSpan::new_with_span(label, span))))
    }
}

impl Problem {
    /// Attaches the source the problem points into.
    pub fn render(&self, sources: &Sources) -> Rendered {
        let mut rendered = Rendered { problem: self.clone(), source: None, span: None };
        if let Some(loc) = &self.location {
            if let Some(text) = sources.get(&loc.file) {
                rendered.span = span_of(text, loc);
                rendered.source = Some(NamedSource::new(&loc.file, text.to_string()));
            }
        }
        rendered
    }
}

/// The byte span of a location: the given columns, or the line from its
/// first non-blank character to its end.
fn span_of(text: &str, loc: &Location) -> Option<SourceSpan> {
    let mut offset = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        if i + 1 == loc.line {
            let body = line.trim_end_matches(['\n', '\r']);
            let (start, end) = match loc.columns {
                Some((a, b)) => (char_to_byte(body, a), char_to_byte(body, b.max(a + 1))),
                None => {
                    let start = body.len() - body.trim_start().len();
                    (start, body.len().max(start))
                }
            };
            let len = end.saturating_sub(start).max(usize::from(body.is_empty()));
            return Some(SourceSpan::new((offset + start).into(), len));
        }
        offset += line.len();
    }
    // Past the last line (e.g. "expected closing delimiter" at end of file):
    // point at the end of the text.
    (!text.is_empty()).then(|| SourceSpan::new(text.trim_end().len().into(), 0))
}

fn char_to_byte(s: &str, chars: usize) -> usize {
    s.char_indices().nth(chars).map(|(b, _)| b).unwrap_or(s.len())
}

/// Renders problems as miette does for a terminal (or plain text when
/// `color` is false), every problem in order.
pub fn render_all(problems: &[Problem], sources: &Sources, color: bool) -> String {
    let handler = if color {
        miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode())
    } else {
        miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
    }
    .with_width(100);
    let mut out = String::new();
    for p in problems {
        let r = p.render(sources);
        if handler.render_report(&mut out, &r).is_err() {
            out.push_str(&p.message);
        }
        out.push('\n');
    }
    out
}

/// Renders any diagnostic (an engine or record error, a run's error) as
/// miette does: its code, message and help line.
pub fn render_diagnostic(d: &dyn Diagnostic, color: bool) -> String {
    let theme = if color { miette::GraphicalTheme::unicode() } else { miette::GraphicalTheme::unicode_nocolor() };
    let handler = miette::GraphicalReportHandler::new_themed(theme).with_width(100);
    let mut out = String::new();
    if handler.render_report(&mut out, d).is_err() {
        out = format!("{d}\n");
    }
    out
}
