use clap::{CommandFactory, FromArgMatches};

use quire_ci::cli::{Cli, Command};
use quire_ci::commands::{self, exit, ColorPolicy, Context};

/// Parses the command line with clap's help and errors coloured by the
/// same decision as everything else (`ColorPolicy`).
fn parse() -> (Cli, clap::ArgMatches) {
    let flag = ColorPolicy::flag_in_args(std::env::args_os());
    let policy = ColorPolicy::decide(flag, &|k| std::env::var_os(k));
    let mut cmd = Cli::command().color(policy.for_clap());
    let matches = cmd.get_matches_mut();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.format(&mut cmd).exit());
    (cli, matches)
}

fn main() {
    // A detached remover (src/executor/remover.rs) started by a run that
    // has ended: it removes containers and exits, without a word.
    if let Some(code) = quire_ci::executor::remover::main_if_asked() {
        std::process::exit(code);
    }
    // A shell asking for completions (COMPLETE=bash quire-ci -- ...) is
    // answered and exits here.
    quire_ci::complete::complete_if_asked();
    let (cli, matches) = parse();
    let ctx = match Context::new(cli.directory.clone(), cli.color, cli.quiet, cli.verbose) {
        // The subcommand's matches: which layer gave each setting (settings/).
        Ok(c) => c.with_matches(matches.subcommand().map(|(_, m)| m.clone()).unwrap_or_default()),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(exit::BAD_INPUT);
        }
    };
    // Commands that only print may die quietly when their reader goes away
    // (`quire-ci list | head`), as Unix tools do. Commands that own a
    // container keep Rust's default (SIGPIPE ignored, writes fail) so a
    // closed stdout can never skip the teardown.
    if matches!(
        cli.command,
        Command::Validate(_) | Command::List(_) | Command::Completions { .. } | Command::Man(_) | Command::Config(_)
    ) {
        // SAFETY: setting a signal disposition before any thread exists.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    let code = match &cli.command {
        Command::Run(a) => commands::run::run(&ctx, a),
        Command::Validate(a) => commands::validate::run(&ctx, a),
        Command::List(a) => commands::list::run(&ctx, a),
        Command::Watch(a) => commands::watch::run(&ctx, a),
        Command::Hook(h) => commands::hook::run(&ctx, h),
        Command::Logs(a) => commands::logs::run(&ctx, a),
        Command::Runs(a) => commands::runs::run(&ctx, a),
        Command::Init => commands::init::run(&ctx),
        Command::Doctor(a) => commands::doctor::run(&ctx, a),
        Command::Config(a) => commands::config::run(&ctx, a),
        Command::Completions { shell } => match quire_ci::complete::registration(*shell, &mut std::io::stdout()) {
            Ok(()) => exit::OK,
            Err(e) => {
                eprintln!("error: {e}");
                exit::INFRA
            }
        },
        Command::Man(a) => man(a),
    };
    std::process::exit(code);
}

fn man(args: &quire_ci::cli::ManArgs) -> i32 {
    use std::io::Write;
    if let Some(dir) = &args.out_dir {
        return match quire_ci::man::write_all(dir) {
            Ok(paths) => {
                for p in paths {
                    println!("{}", p.display());
                }
                exit::OK
            }
            Err(e) => {
                eprintln!("quire-ci: cannot write the manual pages into {}: {e}", dir.display());
                exit::INFRA
            }
        };
    }
    match quire_ci::man::page_for(&args.command) {
        Ok(Some(page)) => match std::io::stdout().write_all(&page.roff) {
            Ok(()) => exit::OK,
            Err(e) => {
                eprintln!("quire-ci: {e}");
                exit::INFRA
            }
        },
        Ok(None) => {
            eprintln!(
                "quire-ci: no manual page for `quire-ci {}`; `quire-ci --help` lists the commands",
                args.command.join(" ")
            );
            exit::BAD_INPUT
        }
        Err(e) => {
            eprintln!("quire-ci: {e}");
            exit::INFRA
        }
    }
}
