
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'quire-ci' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'quire-ci'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'quire-ci' {
            [CompletionResult]::new('-C', '-C ', [CompletionResultType]::ParameterName, 'Run as if started in DIR')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less: only problems (and, for runs, failing jobs and the summary)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less: only problems (and, for runs, failing jobs and the summary)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more detail')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more detail')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('run', 'run', [CompletionResultType]::ParameterValue, 'Run the pipeline on the working tree, now, in one container')
            [CompletionResult]::new('validate', 'validate', [CompletionResultType]::ParameterValue, 'Compile and check .quire/ci.fnl without starting a container')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'Show the jobs, their inputs, their order and the image')
            [CompletionResult]::new('watch', 'watch', [CompletionResultType]::ParameterValue, 'Run, then run again after every change to the working tree; a change supersedes a running run')
            [CompletionResult]::new('hook', 'hook', [CompletionResultType]::ParameterValue, 'Install or remove the pre-push hook that runs CI on what `git push` sends')
            [CompletionResult]::new('logs', 'logs', [CompletionResultType]::ParameterValue, 'Replay a recorded run (default: the latest) through the live view''s renderer')
            [CompletionResult]::new('runs', 'runs', [CompletionResultType]::ParameterValue, 'List recent runs: id, start, ref, dirty, status, duration')
            [CompletionResult]::new('init', 'init', [CompletionResultType]::ParameterValue, 'Write a starter .quire/ci.fnl for what this repository holds')
            [CompletionResult]::new('doctor', 'doctor', [CompletionResultType]::ParameterValue, 'Check the engine, Fennel, ci.fnl, the image and the pre-push hook')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script')
            [CompletionResult]::new('man', 'man', [CompletionResultType]::ParameterValue, 'Print the manual page (roff)')
            [CompletionResult]::new('config', 'config', [CompletionResultType]::ParameterValue, 'Print the effective settings and where each comes from (flag, environment, file, default)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'quire-ci;run' {
            [CompletionResult]::new('--skip', '--skip', [CompletionResultType]::ParameterName, 'Never run job JOB here (repeatable, or comma-separated in QUIRE_CI_SKIP_JOBS): it is recorded as skipped, and so are the jobs that need it')
            [CompletionResult]::new('--ref', '--ref', [CompletionResultType]::ParameterName, 'Rehearse a push to REF (e.g. refs/heads/main, refs/tags/v1.2.0)')
            [CompletionResult]::new('--event', '--event', [CompletionResultType]::ParameterName, 'JSON object whose keys override the :quire/push table')
            [CompletionResult]::new('--image', '--image', [CompletionResultType]::ParameterName, 'Image to run in when ci.fnl declares none and there is no .quire/Dockerfile')
            [CompletionResult]::new('--image-map', '--image-map', [CompletionResultType]::ParameterName, 'Use image TO wherever ci.image or a .quire/Dockerfile FROM names FROM (repeatable; env QUIRE_CI_IMAGE_MAP=a=b,c=d)')
            [CompletionResult]::new('--pull', '--pull', [CompletionResultType]::ParameterName, 'When to pull the image')
            [CompletionResult]::new('--out', '--out', [CompletionResultType]::ParameterName, 'Where run records go (default: <git-dir>/quire-ci/runs)')
            [CompletionResult]::new('--secret', '--secret', [CompletionResultType]::ParameterName, 'Provide secret NAME from the environment variable NAME (repeatable; env QUIRE_CI_SECRETS=A,B)')
            [CompletionResult]::new('--secrets-file', '--secrets-file', [CompletionResultType]::ParameterName, 'Read secrets from a dotenv file (KEY=value lines; quotes, comments, multi-line values, `export`)')
            [CompletionResult]::new('--excerpt-lines', '--excerpt-lines', [CompletionResultType]::ParameterName, 'How many last lines of a failing job or image build to show (0: none; the record has all)')
            [CompletionResult]::new('--artifact', '--artifact', [CompletionResultType]::ParameterName, 'Copy PATH (in /work) out after the run, into the run record (repeatable; env QUIRE_CI_ARTIFACTS=a,b)')
            [CompletionResult]::new('--artifacts-dir', '--artifacts-dir', [CompletionResultType]::ParameterName, 'Put artifacts (--artifact and the jobs'' :artifacts) in DIR instead of <run record>/artifacts')
            [CompletionResult]::new('--memory', '--memory', [CompletionResultType]::ParameterName, 'Memory limit of the run''s container, e.g. 512m or 2g (no swap beyond it)')
            [CompletionResult]::new('--network', '--network', [CompletionResultType]::ParameterName, 'The run container''s network: bridge (the default), none, host, or a network''s name')
            [CompletionResult]::new('-j', '-j', [CompletionResultType]::ParameterName, 'Run up to N jobs at once, each as its own execs in the run''s one container (0: one per CPU; 1: one after another, in run order)')
            [CompletionResult]::new('--jobs', '--jobs', [CompletionResultType]::ParameterName, 'Run up to N jobs at once, each as its own execs in the run''s one container (0: one per CPU; 1: one after another, in run order)')
            [CompletionResult]::new('--lua-memory', '--lua-memory', [CompletionResultType]::ParameterName, 'Memory cap for each Luau VM, in MiB')
            [CompletionResult]::new('--eval-timeout', '--eval-timeout', [CompletionResultType]::ParameterName, 'Wall-clock deadline for compiling and evaluating ci.fnl''s top level, in seconds')
            [CompletionResult]::new('--job-lua-timeout', '--job-lua-timeout', [CompletionResultType]::ParameterName, 'Lua time each run-fn may spend, in seconds, not counting time blocked in `sh`')
            [CompletionResult]::new('-C', '-C ', [CompletionResultType]::ParameterName, 'Run as if started in DIR')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour')
            [CompletionResult]::new('--keep', '--keep', [CompletionResultType]::ParameterName, 'Keep the container after the run and print how to enter it')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the run''s events as JSON lines on stdout instead of the live view')
            [CompletionResult]::new('--no-cache', '--no-cache', [CompletionResultType]::ParameterName, 'Run even if a run with the same tree, ci.fnl, image, jobs and ref already passed')
            [CompletionResult]::new('--shell-on-failure', '--shell-on-failure', [CompletionResultType]::ParameterName, 'When a job fails, open a shell in the run''s container at /work (needs a terminal)')
            [CompletionResult]::new('--cache-volume', '--cache-volume', [CompletionResultType]::ParameterName, 'Mount this repository''s cache volume at /cache; what jobs put there is kept for the next run')
            [CompletionResult]::new('--with-git', '--with-git', [CompletionResultType]::ParameterName, 'Give /work a minimal .git holding the snapshot''s commit (for setuptools-scm, git describe, …)')
            [CompletionResult]::new('--fail-fast', '--fail-fast', [CompletionResultType]::ParameterName, 'When a job fails, cancel the jobs still running and start no more (default: only the failed job''s dependents are skipped)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less: only problems (and, for runs, failing jobs and the summary)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less: only problems (and, for runs, failing jobs and the summary)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more detail')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more detail')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'quire-ci;validate' {
            [CompletionResult]::new('--file', '--file', [CompletionResultType]::ParameterName, 'Check this file instead of .quire/ci.fnl (modules still resolve in .quire/)')
            [CompletionResult]::new('--lua-memory', '--lua-memory', [CompletionResultType]::ParameterName, 'Memory cap for each Luau VM, in MiB')
            [CompletionResult]::new('--eval-timeout', '--eval-timeout', [CompletionResultType]::ParameterName, 'Wall-clock deadline for compiling and evaluating ci.fnl''s top level, in seconds')
            [CompletionResult]::new('--job-lua-timeout', '--job-lua-timeout', [CompletionResultType]::ParameterName, 'Lua time each run-fn may spend, in seconds, not counting time blocked in `sh`')
            [CompletionResult]::new('-C', '-C ', [CompletionResultType]::ParameterName, 'Run as if started in DIR')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document (validity, every problem with its code and place, the jobs) instead of text')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less: only problems (and, for runs, failing jobs and the summary)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less: only problems (and, for runs, failing jobs and the summary)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more detail')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more detail')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'quire-ci;list' {
            [CompletionResult]::new('--lua-memory', '--lua-memory', [CompletionResultType]::ParameterName, 'Memory cap for each Luau VM, in MiB')
            [CompletionResult]::new('--eval-timeout', '--eval-timeout', [CompletionResultType]::ParameterName, 'Wall-clock deadline for compiling and evaluating ci.fnl''s top level, in seconds')
            [CompletionResult]::new('--job-lua-timeout', '--job-lua-timeout', [CompletionResultType]::ParameterName, 'Lua time each run-fn may spend, in seconds, not counting time blocked in `sh`')
            [CompletionResult]::new('-C', '-C ', [CompletionResultType]::ParameterName, 'Run as if started in DIR')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print JSON for scripts')
            [CompletionResult]::new('--dot', '--dot', [CompletionResultType]::ParameterName, 'Print a Graphviz digraph of the jobs')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less: only problems (and, for runs, failing jobs and the summary)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less: only problems (and, for runs, failing jobs and the summary)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more detail')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more detail')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'quire-ci;watch' {
            [CompletionResult]::new('--debounce', '--debounce', [CompletionResultType]::ParameterName, 'Quiet period after the last change before a run starts, in milliseconds (a steady stream of changes still starts a run after 2 s, or 10× this if longer)')
            [CompletionResult]::new('--skip', '--skip', [CompletionResultType]::ParameterName, 'Never run job JOB here (repeatable, or comma-separated in QUIRE_CI_SKIP_JOBS): it is recorded as skipped, and so are the jobs that need it')
            [CompletionResult]::new('--ref', '--ref', [CompletionResultType]::ParameterName, 'Rehearse a push to REF (e.g. refs/heads/main, refs/tags/v1.2.0)')
            [CompletionResult]::new('--event', '--event', [CompletionResultType]::ParameterName, 'JSON object whose keys override the :quire/push table')
            [CompletionResult]::new('--image', '--image', [CompletionResultType]::ParameterName, 'Image to run in when ci.fnl declares none and there is no .quire/Dockerfile')
            [CompletionResult]::new('--image-map', '--image-map', [CompletionResultType]::ParameterName, 'Use image TO wherever ci.image or a .quire/Dockerfile FROM names FROM (repeatable; env QUIRE_CI_IMAGE_MAP=a=b,c=d)')
            [CompletionResult]::new('--pull', '--pull', [CompletionResultType]::ParameterName, 'When to pull the image')
            [CompletionResult]::new('--out', '--out', [CompletionResultType]::ParameterName, 'Where run records go (default: <git-dir>/quire-ci/runs)')
            [CompletionResult]::new('--secret', '--secret', [CompletionResultType]::ParameterName, 'Provide secret NAME from the environment variable NAME (repeatable; env QUIRE_CI_SECRETS=A,B)')
            [CompletionResult]::new('--secrets-file', '--secrets-file', [CompletionResultType]::ParameterName, 'Read secrets from a dotenv file (KEY=value lines; quotes, comments, multi-line values, `export`)')
            [CompletionResult]::new('--excerpt-lines', '--excerpt-lines', [CompletionResultType]::ParameterName, 'How many last lines of a failing job or image build to show (0: none; the record has all)')
            [CompletionResult]::new('--artifact', '--artifact', [CompletionResultType]::ParameterName, 'Copy PATH (in /work) out after the run, into the run record (repeatable; env QUIRE_CI_ARTIFACTS=a,b)')
            [CompletionResult]::new('--artifacts-dir', '--artifacts-dir', [CompletionResultType]::ParameterName, 'Put artifacts (--artifact and the jobs'' :artifacts) in DIR instead of <run record>/artifacts')
            [CompletionResult]::new('--memory', '--memory', [CompletionResultType]::ParameterName, 'Memory limit of the run''s container, e.g. 512m or 2g (no swap beyond it)')
            [CompletionResult]::new('--network', '--network', [CompletionResultType]::ParameterName, 'The run container''s network: bridge (the default), none, host, or a network''s name')
            [CompletionResult]::new('-j', '-j', [CompletionResultType]::ParameterName, 'Run up to N jobs at once, each as its own execs in the run''s one container (0: one per CPU; 1: one after another, in run order)')
            [CompletionResult]::new('--jobs', '--jobs', [CompletionResultType]::ParameterName, 'Run up to N jobs at once, each as its own execs in the run''s one container (0: one per CPU; 1: one after another, in run order)')
            [CompletionResult]::new('--lua-memory', '--lua-memory', [CompletionResultType]::ParameterName, 'Memory cap for each Luau VM, in MiB')
            [CompletionResult]::new('--eval-timeout', '--eval-timeout', [CompletionResultType]::ParameterName, 'Wall-clock deadline for compiling and evaluating ci.fnl''s top level, in seconds')
            [CompletionResult]::new('--job-lua-timeout', '--job-lua-timeout', [CompletionResultType]::ParameterName, 'Lua time each run-fn may spend, in seconds, not counting time blocked in `sh`')
            [CompletionResult]::new('-C', '-C ', [CompletionResultType]::ParameterName, 'Run as if started in DIR')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour')
            [CompletionResult]::new('--clear', '--clear', [CompletionResultType]::ParameterName, 'Clear the screen before each run')
            [CompletionResult]::new('--keep', '--keep', [CompletionResultType]::ParameterName, 'Keep the container after the run and print how to enter it')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the run''s events as JSON lines on stdout instead of the live view')
            [CompletionResult]::new('--no-cache', '--no-cache', [CompletionResultType]::ParameterName, 'Run even if a run with the same tree, ci.fnl, image, jobs and ref already passed')
            [CompletionResult]::new('--shell-on-failure', '--shell-on-failure', [CompletionResultType]::ParameterName, 'When a job fails, open a shell in the run''s container at /work (needs a terminal)')
            [CompletionResult]::new('--cache-volume', '--cache-volume', [CompletionResultType]::ParameterName, 'Mount this repository''s cache volume at /cache; what jobs put there is kept for the next run')
            [CompletionResult]::new('--with-git', '--with-git', [CompletionResultType]::ParameterName, 'Give /work a minimal .git holding the snapshot''s commit (for setuptools-scm, git describe, …)')
            [CompletionResult]::new('--fail-fast', '--fail-fast', [CompletionResultType]::ParameterName, 'When a job fails, cancel the jobs still running and start no more (default: only the failed job''s dependents are skipped)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less: only problems (and, for runs, failing jobs and the summary)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less: only problems (and, for runs, failing jobs and the summary)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more detail')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more detail')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'quire-ci;hook' {
            [CompletionResult]::new('-C', '-C ', [CompletionResultType]::ParameterName, 'Run as if started in DIR')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less: only problems (and, for runs, failing jobs and the summary)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less: only problems (and, for runs, failing jobs and the summary)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more detail')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more detail')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('install', 'install', [CompletionResultType]::ParameterValue, 'Write a pre-push hook into the hooks directory git uses (honours core.hooksPath)')
            [CompletionResult]::new('uninstall', 'uninstall', [CompletionResultType]::ParameterValue, 'Remove the pre-push hook quire-ci installed (restoring a chained one)')
            [CompletionResult]::new('pre-push', 'pre-push', [CompletionResultType]::ParameterValue, 'What the hook runs: reads git''s pre-push lines on stdin, one run per updated ref')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'quire-ci;hook;install' {
            [CompletionResult]::new('-C', '-C ', [CompletionResultType]::ParameterName, 'Run as if started in DIR')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'Keep an existing foreign pre-push hook (renamed to pre-push.local) and run it first')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less: only problems (and, for runs, failing jobs and the summary)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less: only problems (and, for runs, failing jobs and the summary)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more detail')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more detail')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'quire-ci;hook;uninstall' {
            [CompletionResult]::new('-C', '-C ', [CompletionResultType]::ParameterName, 'Run as if started in DIR')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less: only problems (and, for runs, failing jobs and the summary)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less: only problems (and, for runs, failing jobs and the summary)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more detail')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more detail')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'quire-ci;hook;pre-push' {
            [CompletionResult]::new('-C', '-C ', [CompletionResultType]::ParameterName, 'Run as if started in DIR')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less: only problems (and, for runs, failing jobs and the summary)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less: only problems (and, for runs, failing jobs and the summary)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more detail')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more detail')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'quire-ci;hook;help' {
            [CompletionResult]::new('install', 'install', [CompletionResultType]::ParameterValue, 'Write a pre-push hook into the hooks directory git uses (honours core.hooksPath)')
            [CompletionResult]::new('uninstall', 'uninstall', [CompletionResultType]::ParameterValue, 'Remove the pre-push hook quire-ci installed (restoring a chained one)')
            [CompletionResult]::new('pre-push', 'pre-push', [CompletionResultType]::ParameterValue, 'What the hook runs: reads git''s pre-push lines on stdin, one run per updated ref')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'quire-ci;hook;help;install' {
            break
        }
        'quire-ci;hook;help;uninstall' {
            break
        }
        'quire-ci;hook;help;pre-push' {
            break
        }
        'quire-ci;hook;help;help' {
            break
        }
        'quire-ci;logs' {
            [CompletionResult]::new('--job', '--job', [CompletionResultType]::ParameterName, 'Show only this job''s output (the summary still covers the run)')
            [CompletionResult]::new('--excerpt-lines', '--excerpt-lines', [CompletionResultType]::ParameterName, 'How many last lines of a failing command the summary repeats')
            [CompletionResult]::new('--out', '--out', [CompletionResultType]::ParameterName, 'Where run records are (default: <git-dir>/quire-ci/runs)')
            [CompletionResult]::new('-C', '-C ', [CompletionResultType]::ParameterName, 'Run as if started in DIR')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the recorded events as JSON lines instead')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less: only problems (and, for runs, failing jobs and the summary)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less: only problems (and, for runs, failing jobs and the summary)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more detail')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more detail')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'quire-ci;runs' {
            [CompletionResult]::new('--out', '--out', [CompletionResultType]::ParameterName, 'Where run records are (default: <git-dir>/quire-ci/runs)')
            [CompletionResult]::new('-C', '-C ', [CompletionResultType]::ParameterName, 'Run as if started in DIR')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print JSON lines for scripts')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less: only problems (and, for runs, failing jobs and the summary)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less: only problems (and, for runs, failing jobs and the summary)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more detail')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more detail')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'quire-ci;init' {
            [CompletionResult]::new('-C', '-C ', [CompletionResultType]::ParameterName, 'Run as if started in DIR')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less: only problems (and, for runs, failing jobs and the summary)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less: only problems (and, for runs, failing jobs and the summary)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more detail')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more detail')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'quire-ci;doctor' {
            [CompletionResult]::new('--image', '--image', [CompletionResultType]::ParameterName, 'The image to check when ci.fnl names none and there is no .quire/Dockerfile')
            [CompletionResult]::new('-C', '-C ', [CompletionResultType]::ParameterName, 'Run as if started in DIR')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document (every check with its status, detail and fix) instead of lines')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less: only problems (and, for runs, failing jobs and the summary)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less: only problems (and, for runs, failing jobs and the summary)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more detail')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more detail')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'quire-ci;completions' {
            [CompletionResult]::new('-C', '-C ', [CompletionResultType]::ParameterName, 'Run as if started in DIR')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less: only problems (and, for runs, failing jobs and the summary)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less: only problems (and, for runs, failing jobs and the summary)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more detail')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more detail')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'quire-ci;man' {
            [CompletionResult]::new('-C', '-C ', [CompletionResultType]::ParameterName, 'Run as if started in DIR')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less: only problems (and, for runs, failing jobs and the summary)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less: only problems (and, for runs, failing jobs and the summary)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more detail')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more detail')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'quire-ci;config' {
            [CompletionResult]::new('-C', '-C ', [CompletionResultType]::ParameterName, 'Run as if started in DIR')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print JSON for scripts')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less: only problems (and, for runs, failing jobs and the summary)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less: only problems (and, for runs, failing jobs and the summary)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more detail')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more detail')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'quire-ci;help' {
            [CompletionResult]::new('run', 'run', [CompletionResultType]::ParameterValue, 'Run the pipeline on the working tree, now, in one container')
            [CompletionResult]::new('validate', 'validate', [CompletionResultType]::ParameterValue, 'Compile and check .quire/ci.fnl without starting a container')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'Show the jobs, their inputs, their order and the image')
            [CompletionResult]::new('watch', 'watch', [CompletionResultType]::ParameterValue, 'Run, then run again after every change to the working tree; a change supersedes a running run')
            [CompletionResult]::new('hook', 'hook', [CompletionResultType]::ParameterValue, 'Install or remove the pre-push hook that runs CI on what `git push` sends')
            [CompletionResult]::new('logs', 'logs', [CompletionResultType]::ParameterValue, 'Replay a recorded run (default: the latest) through the live view''s renderer')
            [CompletionResult]::new('runs', 'runs', [CompletionResultType]::ParameterValue, 'List recent runs: id, start, ref, dirty, status, duration')
            [CompletionResult]::new('init', 'init', [CompletionResultType]::ParameterValue, 'Write a starter .quire/ci.fnl for what this repository holds')
            [CompletionResult]::new('doctor', 'doctor', [CompletionResultType]::ParameterValue, 'Check the engine, Fennel, ci.fnl, the image and the pre-push hook')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script')
            [CompletionResult]::new('man', 'man', [CompletionResultType]::ParameterValue, 'Print the manual page (roff)')
            [CompletionResult]::new('config', 'config', [CompletionResultType]::ParameterValue, 'Print the effective settings and where each comes from (flag, environment, file, default)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'quire-ci;help;run' {
            break
        }
        'quire-ci;help;validate' {
            break
        }
        'quire-ci;help;list' {
            break
        }
        'quire-ci;help;watch' {
            break
        }
        'quire-ci;help;hook' {
            [CompletionResult]::new('install', 'install', [CompletionResultType]::ParameterValue, 'Write a pre-push hook into the hooks directory git uses (honours core.hooksPath)')
            [CompletionResult]::new('uninstall', 'uninstall', [CompletionResultType]::ParameterValue, 'Remove the pre-push hook quire-ci installed (restoring a chained one)')
            [CompletionResult]::new('pre-push', 'pre-push', [CompletionResultType]::ParameterValue, 'What the hook runs: reads git''s pre-push lines on stdin, one run per updated ref')
            break
        }
        'quire-ci;help;hook;install' {
            break
        }
        'quire-ci;help;hook;uninstall' {
            break
        }
        'quire-ci;help;hook;pre-push' {
            break
        }
        'quire-ci;help;logs' {
            break
        }
        'quire-ci;help;runs' {
            break
        }
        'quire-ci;help;init' {
            break
        }
        'quire-ci;help;doctor' {
            break
        }
        'quire-ci;help;completions' {
            break
        }
        'quire-ci;help;man' {
            break
        }
        'quire-ci;help;config' {
            break
        }
        'quire-ci;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
