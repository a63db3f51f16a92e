
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
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script')
            [CompletionResult]::new('man', 'man', [CompletionResultType]::ParameterValue, 'Print the manual page (roff)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'quire-ci;run' {
            [CompletionResult]::new('--ref', '--ref', [CompletionResultType]::ParameterName, 'Rehearse a push to REF (e.g. refs/heads/main, refs/tags/v1.2.0)')
            [CompletionResult]::new('--event', '--event', [CompletionResultType]::ParameterName, 'JSON object whose keys override the :quire/push table')
            [CompletionResult]::new('--image', '--image', [CompletionResultType]::ParameterName, 'Image to run in when ci.fnl declares none and there is no .quire/Dockerfile')
            [CompletionResult]::new('--pull', '--pull', [CompletionResultType]::ParameterName, 'When to pull the image')
            [CompletionResult]::new('--out', '--out', [CompletionResultType]::ParameterName, 'Where run records go (default: <git-dir>/quire-ci/runs)')
            [CompletionResult]::new('--secret', '--secret', [CompletionResultType]::ParameterName, 'Provide secret NAME from the environment variable NAME (repeatable)')
            [CompletionResult]::new('--secrets-file', '--secrets-file', [CompletionResultType]::ParameterName, 'Read secrets from a dotenv file (KEY=value lines)')
            [CompletionResult]::new('--lua-memory', '--lua-memory', [CompletionResultType]::ParameterName, 'Memory cap for each Luau VM, in MiB')
            [CompletionResult]::new('--eval-timeout', '--eval-timeout', [CompletionResultType]::ParameterName, 'Wall-clock deadline for compiling and evaluating ci.fnl''s top level, in seconds')
            [CompletionResult]::new('--job-lua-timeout', '--job-lua-timeout', [CompletionResultType]::ParameterName, 'Lua time each run-fn may spend, in seconds, not counting time blocked in `sh`')
            [CompletionResult]::new('-C', '-C ', [CompletionResultType]::ParameterName, 'Run as if started in DIR')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour')
            [CompletionResult]::new('--keep', '--keep', [CompletionResultType]::ParameterName, 'Keep the container after the run and print how to enter it')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the run''s events as JSON lines on stdout instead of the live view')
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
        'quire-ci;help' {
            [CompletionResult]::new('run', 'run', [CompletionResultType]::ParameterValue, 'Run the pipeline on the working tree, now, in one container')
            [CompletionResult]::new('validate', 'validate', [CompletionResultType]::ParameterValue, 'Compile and check .quire/ci.fnl without starting a container')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'Show the jobs, their inputs, their order and the image')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script')
            [CompletionResult]::new('man', 'man', [CompletionResultType]::ParameterValue, 'Print the manual page (roff)')
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
        'quire-ci;help;completions' {
            break
        }
        'quire-ci;help;man' {
            break
        }
        'quire-ci;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
