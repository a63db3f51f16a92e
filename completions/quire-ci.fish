# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_quire_ci_global_optspecs
    string join \n C= color= q/quiet v/verbose h/help V/version
end

function __fish_quire_ci_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_quire_ci_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_quire_ci_using_subcommand
    set -l cmd (__fish_quire_ci_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c quire-ci -n "__fish_quire_ci_needs_command" -s C -d 'Run as if started in DIR' -r -F
complete -c quire-ci -n "__fish_quire_ci_needs_command" -l color -d 'When to use colour' -r -f -a "auto\t''
always\t''
never\t''"
complete -c quire-ci -n "__fish_quire_ci_needs_command" -s q -l quiet -d 'Print less: only problems (and, for runs, failing jobs and the summary)'
complete -c quire-ci -n "__fish_quire_ci_needs_command" -s v -l verbose -d 'Print more detail'
complete -c quire-ci -n "__fish_quire_ci_needs_command" -s h -l help -d 'Print help'
complete -c quire-ci -n "__fish_quire_ci_needs_command" -s V -l version -d 'Print version'
complete -c quire-ci -n "__fish_quire_ci_needs_command" -f -a "run" -d 'Run the pipeline on the working tree, now, in one container'
complete -c quire-ci -n "__fish_quire_ci_needs_command" -f -a "validate" -d 'Compile and check .quire/ci.fnl without starting a container'
complete -c quire-ci -n "__fish_quire_ci_needs_command" -f -a "list" -d 'Show the jobs, their inputs, their order and the image'
complete -c quire-ci -n "__fish_quire_ci_needs_command" -f -a "watch" -d 'Run, then run again after every change to the working tree; a change supersedes a running run'
complete -c quire-ci -n "__fish_quire_ci_needs_command" -f -a "hook" -d 'Install or remove the pre-push hook that runs CI on what `git push` sends'
complete -c quire-ci -n "__fish_quire_ci_needs_command" -f -a "logs" -d 'Replay a recorded run (default: the latest) through the live view\'s renderer'
complete -c quire-ci -n "__fish_quire_ci_needs_command" -f -a "runs" -d 'List recent runs: id, start, ref, dirty, status, duration'
complete -c quire-ci -n "__fish_quire_ci_needs_command" -f -a "init" -d 'Write a starter .quire/ci.fnl for what this repository holds'
complete -c quire-ci -n "__fish_quire_ci_needs_command" -f -a "doctor" -d 'Check the engine, Fennel, ci.fnl, the image and the pre-push hook'
complete -c quire-ci -n "__fish_quire_ci_needs_command" -f -a "completions" -d 'Print a shell completion script'
complete -c quire-ci -n "__fish_quire_ci_needs_command" -f -a "man" -d 'Print the manual page (roff)'
complete -c quire-ci -n "__fish_quire_ci_needs_command" -f -a "config" -d 'Print the effective settings and where each comes from (flag, environment, file, default)'
complete -c quire-ci -n "__fish_quire_ci_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand run" -l skip -d 'Never run job JOB here (repeatable, or comma-separated in QUIRE_CI_SKIP_JOBS): it is recorded as skipped, and so are the jobs that need it' -r
complete -c quire-ci -n "__fish_quire_ci_using_subcommand run" -l ref -d 'Rehearse a push to REF (e.g. refs/heads/main, refs/tags/v1.2.0)' -r
complete -c quire-ci -n "__fish_quire_ci_using_subcommand run" -l event -d 'JSON object whose keys override the :quire/push table' -r -F
complete -c quire-ci -n "__fish_quire_ci_using_subcommand run" -l image -d 'Image to run in when ci.fnl declares none and there is no .quire/Dockerfile' -r
complete -c quire-ci -n "__fish_quire_ci_using_subcommand run" -l image-map -d 'Use image TO wherever ci.image or a .quire/Dockerfile FROM names FROM (repeatable; env QUIRE_CI_IMAGE_MAP=a=b,c=d)' -r
complete -c quire-ci -n "__fish_quire_ci_using_subcommand run" -l pull -d 'When to pull the image' -r -f -a "missing\t'Pull only images that are not present'
always\t'Always pull (refresh moving tags)'
never\t'Never pull; a missing image is an error'"
complete -c quire-ci -n "__fish_quire_ci_using_subcommand run" -l out -d 'Where run records go (default: <git-dir>/quire-ci/runs)' -r -F
complete -c quire-ci -n "__fish_quire_ci_using_subcommand run" -l secret -d 'Provide secret NAME from the environment variable NAME (repeatable; env QUIRE_CI_SECRETS=A,B)' -r
complete -c quire-ci -n "__fish_quire_ci_using_subcommand run" -l secrets-file -d 'Read secrets from a dotenv file (KEY=value lines; quotes, comments, multi-line values, `export`)' -r -F
complete -c quire-ci -n "__fish_quire_ci_using_subcommand run" -l excerpt-lines -d 'How many last lines of a failing job or image build to show (0: none; the record has all)' -r
complete -c quire-ci -n "__fish_quire_ci_using_subcommand run" -l artifact -d 'Copy PATH (in /work) out after the run, into the run record (repeatable; env QUIRE_CI_ARTIFACTS=a,b)' -r
complete -c quire-ci -n "__fish_quire_ci_using_subcommand run" -l artifacts-dir -d 'Put artifacts (--artifact and the jobs\' :artifacts) in DIR instead of <run record>/artifacts' -r -F
complete -c quire-ci -n "__fish_quire_ci_using_subcommand run" -l memory -d 'Memory limit of the run\'s container, e.g. 512m or 2g (no swap beyond it)' -r
complete -c quire-ci -n "__fish_quire_ci_using_subcommand run" -l network -d 'The run container\'s network: bridge (the default), none, host, or a network\'s name' -r
complete -c quire-ci -n "__fish_quire_ci_using_subcommand run" -s j -l jobs -d 'Run up to N jobs at once, each as its own execs in the run\'s one container (0: one per CPU; 1: one after another, in run order)' -r
complete -c quire-ci -n "__fish_quire_ci_using_subcommand run" -l lua-memory -d 'Memory cap for each Luau VM, in MiB' -r
complete -c quire-ci -n "__fish_quire_ci_using_subcommand run" -l eval-timeout -d 'Wall-clock deadline for compiling and evaluating ci.fnl\'s top level, in seconds' -r
complete -c quire-ci -n "__fish_quire_ci_using_subcommand run" -l job-lua-timeout -d 'Lua time each run-fn may spend, in seconds, not counting time blocked in `sh`' -r
complete -c quire-ci -n "__fish_quire_ci_using_subcommand run" -s C -d 'Run as if started in DIR' -r -F
complete -c quire-ci -n "__fish_quire_ci_using_subcommand run" -l color -d 'When to use colour' -r -f -a "auto\t''
always\t''
never\t''"
complete -c quire-ci -n "__fish_quire_ci_using_subcommand run" -l keep -d 'Keep the container after the run and print how to enter it'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand run" -l json -d 'Print the run\'s events as JSON lines on stdout instead of the live view'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand run" -l no-cache -d 'Run even if a run with the same tree, ci.fnl, image, jobs and ref already passed'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand run" -l shell-on-failure -d 'When a job fails, open a shell in the run\'s container at /work (needs a terminal)'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand run" -l cache-volume -d 'Mount this repository\'s cache volume at /cache; what jobs put there is kept for the next run'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand run" -l with-git -d 'Give /work a minimal .git holding the snapshot\'s commit (for setuptools-scm, git describe, …)'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand run" -l fail-fast -d 'When a job fails, cancel the jobs still running and start no more (default: only the failed job\'s dependents are skipped)'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand run" -s q -l quiet -d 'Print less: only problems (and, for runs, failing jobs and the summary)'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand run" -s v -l verbose -d 'Print more detail'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand run" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand run" -s V -l version -d 'Print version'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand validate" -l file -d 'Check this file instead of .quire/ci.fnl (modules still resolve in .quire/)' -r -F
complete -c quire-ci -n "__fish_quire_ci_using_subcommand validate" -l lua-memory -d 'Memory cap for each Luau VM, in MiB' -r
complete -c quire-ci -n "__fish_quire_ci_using_subcommand validate" -l eval-timeout -d 'Wall-clock deadline for compiling and evaluating ci.fnl\'s top level, in seconds' -r
complete -c quire-ci -n "__fish_quire_ci_using_subcommand validate" -l job-lua-timeout -d 'Lua time each run-fn may spend, in seconds, not counting time blocked in `sh`' -r
complete -c quire-ci -n "__fish_quire_ci_using_subcommand validate" -s C -d 'Run as if started in DIR' -r -F
complete -c quire-ci -n "__fish_quire_ci_using_subcommand validate" -l color -d 'When to use colour' -r -f -a "auto\t''
always\t''
never\t''"
complete -c quire-ci -n "__fish_quire_ci_using_subcommand validate" -l json -d 'Print one JSON document (validity, every problem with its code and place, the jobs) instead of text'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand validate" -s q -l quiet -d 'Print less: only problems (and, for runs, failing jobs and the summary)'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand validate" -s v -l verbose -d 'Print more detail'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand validate" -s h -l help -d 'Print help'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand validate" -s V -l version -d 'Print version'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand list" -l lua-memory -d 'Memory cap for each Luau VM, in MiB' -r
complete -c quire-ci -n "__fish_quire_ci_using_subcommand list" -l eval-timeout -d 'Wall-clock deadline for compiling and evaluating ci.fnl\'s top level, in seconds' -r
complete -c quire-ci -n "__fish_quire_ci_using_subcommand list" -l job-lua-timeout -d 'Lua time each run-fn may spend, in seconds, not counting time blocked in `sh`' -r
complete -c quire-ci -n "__fish_quire_ci_using_subcommand list" -s C -d 'Run as if started in DIR' -r -F
complete -c quire-ci -n "__fish_quire_ci_using_subcommand list" -l color -d 'When to use colour' -r -f -a "auto\t''
always\t''
never\t''"
complete -c quire-ci -n "__fish_quire_ci_using_subcommand list" -l json -d 'Print JSON for scripts'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand list" -l dot -d 'Print a Graphviz digraph of the jobs'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand list" -s q -l quiet -d 'Print less: only problems (and, for runs, failing jobs and the summary)'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand list" -s v -l verbose -d 'Print more detail'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand list" -s h -l help -d 'Print help'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand list" -s V -l version -d 'Print version'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand watch" -l debounce -d 'Quiet period after the last change before a run starts, in milliseconds (a steady stream of changes still starts a run after 2 s, or 10× this if longer)' -r
complete -c quire-ci -n "__fish_quire_ci_using_subcommand watch" -l skip -d 'Never run job JOB here (repeatable, or comma-separated in QUIRE_CI_SKIP_JOBS): it is recorded as skipped, and so are the jobs that need it' -r
complete -c quire-ci -n "__fish_quire_ci_using_subcommand watch" -l ref -d 'Rehearse a push to REF (e.g. refs/heads/main, refs/tags/v1.2.0)' -r
complete -c quire-ci -n "__fish_quire_ci_using_subcommand watch" -l event -d 'JSON object whose keys override the :quire/push table' -r -F
complete -c quire-ci -n "__fish_quire_ci_using_subcommand watch" -l image -d 'Image to run in when ci.fnl declares none and there is no .quire/Dockerfile' -r
complete -c quire-ci -n "__fish_quire_ci_using_subcommand watch" -l image-map -d 'Use image TO wherever ci.image or a .quire/Dockerfile FROM names FROM (repeatable; env QUIRE_CI_IMAGE_MAP=a=b,c=d)' -r
complete -c quire-ci -n "__fish_quire_ci_using_subcommand watch" -l pull -d 'When to pull the image' -r -f -a "missing\t'Pull only images that are not present'
always\t'Always pull (refresh moving tags)'
never\t'Never pull; a missing image is an error'"
complete -c quire-ci -n "__fish_quire_ci_using_subcommand watch" -l out -d 'Where run records go (default: <git-dir>/quire-ci/runs)' -r -F
complete -c quire-ci -n "__fish_quire_ci_using_subcommand watch" -l secret -d 'Provide secret NAME from the environment variable NAME (repeatable; env QUIRE_CI_SECRETS=A,B)' -r
complete -c quire-ci -n "__fish_quire_ci_using_subcommand watch" -l secrets-file -d 'Read secrets from a dotenv file (KEY=value lines; quotes, comments, multi-line values, `export`)' -r -F
complete -c quire-ci -n "__fish_quire_ci_using_subcommand watch" -l excerpt-lines -d 'How many last lines of a failing job or image build to show (0: none; the record has all)' -r
complete -c quire-ci -n "__fish_quire_ci_using_subcommand watch" -l artifact -d 'Copy PATH (in /work) out after the run, into the run record (repeatable; env QUIRE_CI_ARTIFACTS=a,b)' -r
complete -c quire-ci -n "__fish_quire_ci_using_subcommand watch" -l artifacts-dir -d 'Put artifacts (--artifact and the jobs\' :artifacts) in DIR instead of <run record>/artifacts' -r -F
complete -c quire-ci -n "__fish_quire_ci_using_subcommand watch" -l memory -d 'Memory limit of the run\'s container, e.g. 512m or 2g (no swap beyond it)' -r
complete -c quire-ci -n "__fish_quire_ci_using_subcommand watch" -l network -d 'The run container\'s network: bridge (the default), none, host, or a network\'s name' -r
complete -c quire-ci -n "__fish_quire_ci_using_subcommand watch" -s j -l jobs -d 'Run up to N jobs at once, each as its own execs in the run\'s one container (0: one per CPU; 1: one after another, in run order)' -r
complete -c quire-ci -n "__fish_quire_ci_using_subcommand watch" -l lua-memory -d 'Memory cap for each Luau VM, in MiB' -r
complete -c quire-ci -n "__fish_quire_ci_using_subcommand watch" -l eval-timeout -d 'Wall-clock deadline for compiling and evaluating ci.fnl\'s top level, in seconds' -r
complete -c quire-ci -n "__fish_quire_ci_using_subcommand watch" -l job-lua-timeout -d 'Lua time each run-fn may spend, in seconds, not counting time blocked in `sh`' -r
complete -c quire-ci -n "__fish_quire_ci_using_subcommand watch" -s C -d 'Run as if started in DIR' -r -F
complete -c quire-ci -n "__fish_quire_ci_using_subcommand watch" -l color -d 'When to use colour' -r -f -a "auto\t''
always\t''
never\t''"
complete -c quire-ci -n "__fish_quire_ci_using_subcommand watch" -l clear -d 'Clear the screen before each run'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand watch" -l keep -d 'Keep the container after the run and print how to enter it'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand watch" -l json -d 'Print the run\'s events as JSON lines on stdout instead of the live view'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand watch" -l no-cache -d 'Run even if a run with the same tree, ci.fnl, image, jobs and ref already passed'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand watch" -l shell-on-failure -d 'When a job fails, open a shell in the run\'s container at /work (needs a terminal)'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand watch" -l cache-volume -d 'Mount this repository\'s cache volume at /cache; what jobs put there is kept for the next run'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand watch" -l with-git -d 'Give /work a minimal .git holding the snapshot\'s commit (for setuptools-scm, git describe, …)'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand watch" -l fail-fast -d 'When a job fails, cancel the jobs still running and start no more (default: only the failed job\'s dependents are skipped)'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand watch" -s q -l quiet -d 'Print less: only problems (and, for runs, failing jobs and the summary)'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand watch" -s v -l verbose -d 'Print more detail'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand watch" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand watch" -s V -l version -d 'Print version'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand hook; and not __fish_seen_subcommand_from install uninstall pre-push help" -s C -d 'Run as if started in DIR' -r -F
complete -c quire-ci -n "__fish_quire_ci_using_subcommand hook; and not __fish_seen_subcommand_from install uninstall pre-push help" -l color -d 'When to use colour' -r -f -a "auto\t''
always\t''
never\t''"
complete -c quire-ci -n "__fish_quire_ci_using_subcommand hook; and not __fish_seen_subcommand_from install uninstall pre-push help" -s q -l quiet -d 'Print less: only problems (and, for runs, failing jobs and the summary)'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand hook; and not __fish_seen_subcommand_from install uninstall pre-push help" -s v -l verbose -d 'Print more detail'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand hook; and not __fish_seen_subcommand_from install uninstall pre-push help" -s h -l help -d 'Print help'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand hook; and not __fish_seen_subcommand_from install uninstall pre-push help" -s V -l version -d 'Print version'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand hook; and not __fish_seen_subcommand_from install uninstall pre-push help" -f -a "install" -d 'Write a pre-push hook into the hooks directory git uses (honours core.hooksPath)'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand hook; and not __fish_seen_subcommand_from install uninstall pre-push help" -f -a "uninstall" -d 'Remove the pre-push hook quire-ci installed (restoring a chained one)'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand hook; and not __fish_seen_subcommand_from install uninstall pre-push help" -f -a "pre-push" -d 'What the hook runs: reads git\'s pre-push lines on stdin, one run per updated ref'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand hook; and not __fish_seen_subcommand_from install uninstall pre-push help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand hook; and __fish_seen_subcommand_from install" -s C -d 'Run as if started in DIR' -r -F
complete -c quire-ci -n "__fish_quire_ci_using_subcommand hook; and __fish_seen_subcommand_from install" -l color -d 'When to use colour' -r -f -a "auto\t''
always\t''
never\t''"
complete -c quire-ci -n "__fish_quire_ci_using_subcommand hook; and __fish_seen_subcommand_from install" -l force -d 'Keep an existing foreign pre-push hook (renamed to pre-push.local) and run it first'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand hook; and __fish_seen_subcommand_from install" -s q -l quiet -d 'Print less: only problems (and, for runs, failing jobs and the summary)'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand hook; and __fish_seen_subcommand_from install" -s v -l verbose -d 'Print more detail'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand hook; and __fish_seen_subcommand_from install" -s h -l help -d 'Print help'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand hook; and __fish_seen_subcommand_from install" -s V -l version -d 'Print version'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand hook; and __fish_seen_subcommand_from uninstall" -s C -d 'Run as if started in DIR' -r -F
complete -c quire-ci -n "__fish_quire_ci_using_subcommand hook; and __fish_seen_subcommand_from uninstall" -l color -d 'When to use colour' -r -f -a "auto\t''
always\t''
never\t''"
complete -c quire-ci -n "__fish_quire_ci_using_subcommand hook; and __fish_seen_subcommand_from uninstall" -s q -l quiet -d 'Print less: only problems (and, for runs, failing jobs and the summary)'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand hook; and __fish_seen_subcommand_from uninstall" -s v -l verbose -d 'Print more detail'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand hook; and __fish_seen_subcommand_from uninstall" -s h -l help -d 'Print help'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand hook; and __fish_seen_subcommand_from uninstall" -s V -l version -d 'Print version'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand hook; and __fish_seen_subcommand_from pre-push" -s C -d 'Run as if started in DIR' -r -F
complete -c quire-ci -n "__fish_quire_ci_using_subcommand hook; and __fish_seen_subcommand_from pre-push" -l color -d 'When to use colour' -r -f -a "auto\t''
always\t''
never\t''"
complete -c quire-ci -n "__fish_quire_ci_using_subcommand hook; and __fish_seen_subcommand_from pre-push" -s q -l quiet -d 'Print less: only problems (and, for runs, failing jobs and the summary)'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand hook; and __fish_seen_subcommand_from pre-push" -s v -l verbose -d 'Print more detail'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand hook; and __fish_seen_subcommand_from pre-push" -s h -l help -d 'Print help'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand hook; and __fish_seen_subcommand_from pre-push" -s V -l version -d 'Print version'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand hook; and __fish_seen_subcommand_from help" -f -a "install" -d 'Write a pre-push hook into the hooks directory git uses (honours core.hooksPath)'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand hook; and __fish_seen_subcommand_from help" -f -a "uninstall" -d 'Remove the pre-push hook quire-ci installed (restoring a chained one)'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand hook; and __fish_seen_subcommand_from help" -f -a "pre-push" -d 'What the hook runs: reads git\'s pre-push lines on stdin, one run per updated ref'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand hook; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand logs" -l job -d 'Show only this job\'s output (the summary still covers the run)' -r
complete -c quire-ci -n "__fish_quire_ci_using_subcommand logs" -l excerpt-lines -d 'How many last lines of a failing command the summary repeats' -r
complete -c quire-ci -n "__fish_quire_ci_using_subcommand logs" -l out -d 'Where run records are (default: <git-dir>/quire-ci/runs)' -r -F
complete -c quire-ci -n "__fish_quire_ci_using_subcommand logs" -s C -d 'Run as if started in DIR' -r -F
complete -c quire-ci -n "__fish_quire_ci_using_subcommand logs" -l color -d 'When to use colour' -r -f -a "auto\t''
always\t''
never\t''"
complete -c quire-ci -n "__fish_quire_ci_using_subcommand logs" -l json -d 'Print the recorded events as JSON lines instead'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand logs" -s q -l quiet -d 'Print less: only problems (and, for runs, failing jobs and the summary)'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand logs" -s v -l verbose -d 'Print more detail'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand logs" -s h -l help -d 'Print help'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand logs" -s V -l version -d 'Print version'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand runs" -l out -d 'Where run records are (default: <git-dir>/quire-ci/runs)' -r -F
complete -c quire-ci -n "__fish_quire_ci_using_subcommand runs" -s C -d 'Run as if started in DIR' -r -F
complete -c quire-ci -n "__fish_quire_ci_using_subcommand runs" -l color -d 'When to use colour' -r -f -a "auto\t''
always\t''
never\t''"
complete -c quire-ci -n "__fish_quire_ci_using_subcommand runs" -l json -d 'Print JSON lines for scripts'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand runs" -s q -l quiet -d 'Print less: only problems (and, for runs, failing jobs and the summary)'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand runs" -s v -l verbose -d 'Print more detail'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand runs" -s h -l help -d 'Print help'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand runs" -s V -l version -d 'Print version'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand init" -s C -d 'Run as if started in DIR' -r -F
complete -c quire-ci -n "__fish_quire_ci_using_subcommand init" -l color -d 'When to use colour' -r -f -a "auto\t''
always\t''
never\t''"
complete -c quire-ci -n "__fish_quire_ci_using_subcommand init" -s q -l quiet -d 'Print less: only problems (and, for runs, failing jobs and the summary)'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand init" -s v -l verbose -d 'Print more detail'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand init" -s h -l help -d 'Print help'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand init" -s V -l version -d 'Print version'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand doctor" -l image -d 'The image to check when ci.fnl names none and there is no .quire/Dockerfile' -r
complete -c quire-ci -n "__fish_quire_ci_using_subcommand doctor" -s C -d 'Run as if started in DIR' -r -F
complete -c quire-ci -n "__fish_quire_ci_using_subcommand doctor" -l color -d 'When to use colour' -r -f -a "auto\t''
always\t''
never\t''"
complete -c quire-ci -n "__fish_quire_ci_using_subcommand doctor" -l json -d 'Print one JSON document (every check with its status, detail and fix) instead of lines'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand doctor" -s q -l quiet -d 'Print less: only problems (and, for runs, failing jobs and the summary)'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand doctor" -s v -l verbose -d 'Print more detail'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand doctor" -s h -l help -d 'Print help'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand doctor" -s V -l version -d 'Print version'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand completions" -s C -d 'Run as if started in DIR' -r -F
complete -c quire-ci -n "__fish_quire_ci_using_subcommand completions" -l color -d 'When to use colour' -r -f -a "auto\t''
always\t''
never\t''"
complete -c quire-ci -n "__fish_quire_ci_using_subcommand completions" -s q -l quiet -d 'Print less: only problems (and, for runs, failing jobs and the summary)'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand completions" -s v -l verbose -d 'Print more detail'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand completions" -s h -l help -d 'Print help'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand completions" -s V -l version -d 'Print version'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand man" -s C -d 'Run as if started in DIR' -r -F
complete -c quire-ci -n "__fish_quire_ci_using_subcommand man" -l color -d 'When to use colour' -r -f -a "auto\t''
always\t''
never\t''"
complete -c quire-ci -n "__fish_quire_ci_using_subcommand man" -s q -l quiet -d 'Print less: only problems (and, for runs, failing jobs and the summary)'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand man" -s v -l verbose -d 'Print more detail'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand man" -s h -l help -d 'Print help'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand man" -s V -l version -d 'Print version'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand config" -s C -d 'Run as if started in DIR' -r -F
complete -c quire-ci -n "__fish_quire_ci_using_subcommand config" -l color -d 'When to use colour' -r -f -a "auto\t''
always\t''
never\t''"
complete -c quire-ci -n "__fish_quire_ci_using_subcommand config" -l json -d 'Print JSON for scripts'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand config" -s q -l quiet -d 'Print less: only problems (and, for runs, failing jobs and the summary)'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand config" -s v -l verbose -d 'Print more detail'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand config" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand config" -s V -l version -d 'Print version'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand help; and not __fish_seen_subcommand_from run validate list watch hook logs runs init doctor completions man config help" -f -a "run" -d 'Run the pipeline on the working tree, now, in one container'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand help; and not __fish_seen_subcommand_from run validate list watch hook logs runs init doctor completions man config help" -f -a "validate" -d 'Compile and check .quire/ci.fnl without starting a container'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand help; and not __fish_seen_subcommand_from run validate list watch hook logs runs init doctor completions man config help" -f -a "list" -d 'Show the jobs, their inputs, their order and the image'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand help; and not __fish_seen_subcommand_from run validate list watch hook logs runs init doctor completions man config help" -f -a "watch" -d 'Run, then run again after every change to the working tree; a change supersedes a running run'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand help; and not __fish_seen_subcommand_from run validate list watch hook logs runs init doctor completions man config help" -f -a "hook" -d 'Install or remove the pre-push hook that runs CI on what `git push` sends'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand help; and not __fish_seen_subcommand_from run validate list watch hook logs runs init doctor completions man config help" -f -a "logs" -d 'Replay a recorded run (default: the latest) through the live view\'s renderer'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand help; and not __fish_seen_subcommand_from run validate list watch hook logs runs init doctor completions man config help" -f -a "runs" -d 'List recent runs: id, start, ref, dirty, status, duration'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand help; and not __fish_seen_subcommand_from run validate list watch hook logs runs init doctor completions man config help" -f -a "init" -d 'Write a starter .quire/ci.fnl for what this repository holds'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand help; and not __fish_seen_subcommand_from run validate list watch hook logs runs init doctor completions man config help" -f -a "doctor" -d 'Check the engine, Fennel, ci.fnl, the image and the pre-push hook'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand help; and not __fish_seen_subcommand_from run validate list watch hook logs runs init doctor completions man config help" -f -a "completions" -d 'Print a shell completion script'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand help; and not __fish_seen_subcommand_from run validate list watch hook logs runs init doctor completions man config help" -f -a "man" -d 'Print the manual page (roff)'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand help; and not __fish_seen_subcommand_from run validate list watch hook logs runs init doctor completions man config help" -f -a "config" -d 'Print the effective settings and where each comes from (flag, environment, file, default)'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand help; and not __fish_seen_subcommand_from run validate list watch hook logs runs init doctor completions man config help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand help; and __fish_seen_subcommand_from hook" -f -a "install" -d 'Write a pre-push hook into the hooks directory git uses (honours core.hooksPath)'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand help; and __fish_seen_subcommand_from hook" -f -a "uninstall" -d 'Remove the pre-push hook quire-ci installed (restoring a chained one)'
complete -c quire-ci -n "__fish_quire_ci_using_subcommand help; and __fish_seen_subcommand_from hook" -f -a "pre-push" -d 'What the hook runs: reads git\'s pre-push lines on stdin, one run per updated ref'
