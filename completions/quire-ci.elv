
use builtin;
use str;

set edit:completion:arg-completer[quire-ci] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'quire-ci'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'quire-ci'= {
            cand -C 'Run as if started in DIR'
            cand --color 'When to use colour'
            cand -q 'Print less: only problems (and, for runs, failing jobs and the summary)'
            cand --quiet 'Print less: only problems (and, for runs, failing jobs and the summary)'
            cand -v 'Print more detail'
            cand --verbose 'Print more detail'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
            cand run 'Run the pipeline on the working tree, now, in one container'
            cand validate 'Compile and check .quire/ci.fnl without starting a container'
            cand list 'Show the jobs, their inputs, their order and the image'
            cand watch 'Run, then run again after every change to the working tree; a change supersedes a running run'
            cand hook 'Install or remove the pre-push hook that runs CI on what `git push` sends'
            cand logs 'Replay a recorded run (default: the latest) through the live view''s renderer'
            cand runs 'List recent runs: id, start, ref, dirty, status, duration'
            cand init 'Write a starter .quire/ci.fnl for what this repository holds'
            cand doctor 'Check the engine, Fennel, ci.fnl, the image and the pre-push hook'
            cand completions 'Print a shell completion script'
            cand man 'Print the manual page (roff)'
            cand config 'Print the effective settings and where each comes from (flag, environment, file, default)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'quire-ci;run'= {
            cand --skip 'Never run job JOB here (repeatable, or comma-separated in QUIRE_CI_SKIP_JOBS): it is recorded as skipped, and so are the jobs that need it'
            cand --ref 'Rehearse a push to REF (e.g. refs/heads/main, refs/tags/v1.2.0)'
            cand --event 'JSON object whose keys override the :quire/push table'
            cand --image 'Image to run in when ci.fnl declares none and there is no .quire/Dockerfile'
            cand --image-map 'Use image TO wherever ci.image or a .quire/Dockerfile FROM names FROM (repeatable; env QUIRE_CI_IMAGE_MAP=a=b,c=d)'
            cand --pull 'When to pull the image'
            cand --out 'Where run records go (default: <git-dir>/quire-ci/runs)'
            cand --secret 'Provide secret NAME from the environment variable NAME (repeatable; env QUIRE_CI_SECRETS=A,B)'
            cand --secrets-file 'Read secrets from a dotenv file (KEY=value lines; quotes, comments, multi-line values, `export`)'
            cand --excerpt-lines 'How many last lines of a failing job or image build to show (0: none; the record has all)'
            cand --artifact 'Copy PATH (in /work) out after the run, into the run record (repeatable; env QUIRE_CI_ARTIFACTS=a,b)'
            cand --artifacts-dir 'Put artifacts (--artifact and the jobs'' :artifacts) in DIR instead of <run record>/artifacts'
            cand --memory 'Memory limit of the run''s container, e.g. 512m or 2g (no swap beyond it)'
            cand --network 'The run container''s network: bridge (the default), none, host, or a network''s name'
            cand -j 'Run up to N jobs at once, each as its own execs in the run''s one container (0: one per CPU; 1: one after another, in run order)'
            cand --jobs 'Run up to N jobs at once, each as its own execs in the run''s one container (0: one per CPU; 1: one after another, in run order)'
            cand --lua-memory 'Memory cap for each Luau VM, in MiB'
            cand --eval-timeout 'Wall-clock deadline for compiling and evaluating ci.fnl''s top level, in seconds'
            cand --job-lua-timeout 'Lua time each run-fn may spend, in seconds, not counting time blocked in `sh`'
            cand -C 'Run as if started in DIR'
            cand --color 'When to use colour'
            cand --keep 'Keep the container after the run and print how to enter it'
            cand --json 'Print the run''s events as JSON lines on stdout instead of the live view'
            cand --no-cache 'Run even if a run with the same tree, ci.fnl, image, jobs and ref already passed'
            cand --shell-on-failure 'When a job fails, open a shell in the run''s container at /work (needs a terminal)'
            cand --cache-volume 'Mount this repository''s cache volume at /cache; what jobs put there is kept for the next run'
            cand --with-git 'Give /work a minimal .git holding the snapshot''s commit (for setuptools-scm, git describe, …)'
            cand --fail-fast 'When a job fails, cancel the jobs still running and start no more (default: only the failed job''s dependents are skipped)'
            cand -q 'Print less: only problems (and, for runs, failing jobs and the summary)'
            cand --quiet 'Print less: only problems (and, for runs, failing jobs and the summary)'
            cand -v 'Print more detail'
            cand --verbose 'Print more detail'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'quire-ci;validate'= {
            cand --file 'Check this file instead of .quire/ci.fnl (modules still resolve in .quire/)'
            cand --lua-memory 'Memory cap for each Luau VM, in MiB'
            cand --eval-timeout 'Wall-clock deadline for compiling and evaluating ci.fnl''s top level, in seconds'
            cand --job-lua-timeout 'Lua time each run-fn may spend, in seconds, not counting time blocked in `sh`'
            cand -C 'Run as if started in DIR'
            cand --color 'When to use colour'
            cand --json 'Print one JSON document (validity, every problem with its code and place, the jobs) instead of text'
            cand -q 'Print less: only problems (and, for runs, failing jobs and the summary)'
            cand --quiet 'Print less: only problems (and, for runs, failing jobs and the summary)'
            cand -v 'Print more detail'
            cand --verbose 'Print more detail'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'quire-ci;list'= {
            cand --lua-memory 'Memory cap for each Luau VM, in MiB'
            cand --eval-timeout 'Wall-clock deadline for compiling and evaluating ci.fnl''s top level, in seconds'
            cand --job-lua-timeout 'Lua time each run-fn may spend, in seconds, not counting time blocked in `sh`'
            cand -C 'Run as if started in DIR'
            cand --color 'When to use colour'
            cand --json 'Print JSON for scripts'
            cand --dot 'Print a Graphviz digraph of the jobs'
            cand -q 'Print less: only problems (and, for runs, failing jobs and the summary)'
            cand --quiet 'Print less: only problems (and, for runs, failing jobs and the summary)'
            cand -v 'Print more detail'
            cand --verbose 'Print more detail'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'quire-ci;watch'= {
            cand --debounce 'Quiet period after the last change before a run starts, in milliseconds (a steady stream of changes still starts a run after 2 s, or 10× this if longer)'
            cand --skip 'Never run job JOB here (repeatable, or comma-separated in QUIRE_CI_SKIP_JOBS): it is recorded as skipped, and so are the jobs that need it'
            cand --ref 'Rehearse a push to REF (e.g. refs/heads/main, refs/tags/v1.2.0)'
            cand --event 'JSON object whose keys override the :quire/push table'
            cand --image 'Image to run in when ci.fnl declares none and there is no .quire/Dockerfile'
            cand --image-map 'Use image TO wherever ci.image or a .quire/Dockerfile FROM names FROM (repeatable; env QUIRE_CI_IMAGE_MAP=a=b,c=d)'
            cand --pull 'When to pull the image'
            cand --out 'Where run records go (default: <git-dir>/quire-ci/runs)'
            cand --secret 'Provide secret NAME from the environment variable NAME (repeatable; env QUIRE_CI_SECRETS=A,B)'
            cand --secrets-file 'Read secrets from a dotenv file (KEY=value lines; quotes, comments, multi-line values, `export`)'
            cand --excerpt-lines 'How many last lines of a failing job or image build to show (0: none; the record has all)'
            cand --artifact 'Copy PATH (in /work) out after the run, into the run record (repeatable; env QUIRE_CI_ARTIFACTS=a,b)'
            cand --artifacts-dir 'Put artifacts (--artifact and the jobs'' :artifacts) in DIR instead of <run record>/artifacts'
            cand --memory 'Memory limit of the run''s container, e.g. 512m or 2g (no swap beyond it)'
            cand --network 'The run container''s network: bridge (the default), none, host, or a network''s name'
            cand -j 'Run up to N jobs at once, each as its own execs in the run''s one container (0: one per CPU; 1: one after another, in run order)'
            cand --jobs 'Run up to N jobs at once, each as its own execs in the run''s one container (0: one per CPU; 1: one after another, in run order)'
            cand --lua-memory 'Memory cap for each Luau VM, in MiB'
            cand --eval-timeout 'Wall-clock deadline for compiling and evaluating ci.fnl''s top level, in seconds'
            cand --job-lua-timeout 'Lua time each run-fn may spend, in seconds, not counting time blocked in `sh`'
            cand -C 'Run as if started in DIR'
            cand --color 'When to use colour'
            cand --clear 'Clear the screen before each run'
            cand --keep 'Keep the container after the run and print how to enter it'
            cand --json 'Print the run''s events as JSON lines on stdout instead of the live view'
            cand --no-cache 'Run even if a run with the same tree, ci.fnl, image, jobs and ref already passed'
            cand --shell-on-failure 'When a job fails, open a shell in the run''s container at /work (needs a terminal)'
            cand --cache-volume 'Mount this repository''s cache volume at /cache; what jobs put there is kept for the next run'
            cand --with-git 'Give /work a minimal .git holding the snapshot''s commit (for setuptools-scm, git describe, …)'
            cand --fail-fast 'When a job fails, cancel the jobs still running and start no more (default: only the failed job''s dependents are skipped)'
            cand -q 'Print less: only problems (and, for runs, failing jobs and the summary)'
            cand --quiet 'Print less: only problems (and, for runs, failing jobs and the summary)'
            cand -v 'Print more detail'
            cand --verbose 'Print more detail'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'quire-ci;hook'= {
            cand -C 'Run as if started in DIR'
            cand --color 'When to use colour'
            cand -q 'Print less: only problems (and, for runs, failing jobs and the summary)'
            cand --quiet 'Print less: only problems (and, for runs, failing jobs and the summary)'
            cand -v 'Print more detail'
            cand --verbose 'Print more detail'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
            cand install 'Write a pre-push hook into the hooks directory git uses (honours core.hooksPath)'
            cand uninstall 'Remove the pre-push hook quire-ci installed (restoring a chained one)'
            cand pre-push 'What the hook runs: reads git''s pre-push lines on stdin, one run per updated ref'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'quire-ci;hook;install'= {
            cand -C 'Run as if started in DIR'
            cand --color 'When to use colour'
            cand --force 'Keep an existing foreign pre-push hook (renamed to pre-push.local) and run it first'
            cand -q 'Print less: only problems (and, for runs, failing jobs and the summary)'
            cand --quiet 'Print less: only problems (and, for runs, failing jobs and the summary)'
            cand -v 'Print more detail'
            cand --verbose 'Print more detail'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'quire-ci;hook;uninstall'= {
            cand -C 'Run as if started in DIR'
            cand --color 'When to use colour'
            cand -q 'Print less: only problems (and, for runs, failing jobs and the summary)'
            cand --quiet 'Print less: only problems (and, for runs, failing jobs and the summary)'
            cand -v 'Print more detail'
            cand --verbose 'Print more detail'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'quire-ci;hook;pre-push'= {
            cand -C 'Run as if started in DIR'
            cand --color 'When to use colour'
            cand -q 'Print less: only problems (and, for runs, failing jobs and the summary)'
            cand --quiet 'Print less: only problems (and, for runs, failing jobs and the summary)'
            cand -v 'Print more detail'
            cand --verbose 'Print more detail'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'quire-ci;hook;help'= {
            cand install 'Write a pre-push hook into the hooks directory git uses (honours core.hooksPath)'
            cand uninstall 'Remove the pre-push hook quire-ci installed (restoring a chained one)'
            cand pre-push 'What the hook runs: reads git''s pre-push lines on stdin, one run per updated ref'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'quire-ci;hook;help;install'= {
        }
        &'quire-ci;hook;help;uninstall'= {
        }
        &'quire-ci;hook;help;pre-push'= {
        }
        &'quire-ci;hook;help;help'= {
        }
        &'quire-ci;logs'= {
            cand --job 'Show only this job''s output (the summary still covers the run)'
            cand --excerpt-lines 'How many last lines of a failing command the summary repeats'
            cand --out 'Where run records are (default: <git-dir>/quire-ci/runs)'
            cand -C 'Run as if started in DIR'
            cand --color 'When to use colour'
            cand --json 'Print the recorded events as JSON lines instead'
            cand -q 'Print less: only problems (and, for runs, failing jobs and the summary)'
            cand --quiet 'Print less: only problems (and, for runs, failing jobs and the summary)'
            cand -v 'Print more detail'
            cand --verbose 'Print more detail'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'quire-ci;runs'= {
            cand --out 'Where run records are (default: <git-dir>/quire-ci/runs)'
            cand -C 'Run as if started in DIR'
            cand --color 'When to use colour'
            cand --json 'Print JSON lines for scripts'
            cand -q 'Print less: only problems (and, for runs, failing jobs and the summary)'
            cand --quiet 'Print less: only problems (and, for runs, failing jobs and the summary)'
            cand -v 'Print more detail'
            cand --verbose 'Print more detail'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'quire-ci;init'= {
            cand -C 'Run as if started in DIR'
            cand --color 'When to use colour'
            cand -q 'Print less: only problems (and, for runs, failing jobs and the summary)'
            cand --quiet 'Print less: only problems (and, for runs, failing jobs and the summary)'
            cand -v 'Print more detail'
            cand --verbose 'Print more detail'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'quire-ci;doctor'= {
            cand --image 'The image to check when ci.fnl names none and there is no .quire/Dockerfile'
            cand -C 'Run as if started in DIR'
            cand --color 'When to use colour'
            cand --json 'Print one JSON document (every check with its status, detail and fix) instead of lines'
            cand -q 'Print less: only problems (and, for runs, failing jobs and the summary)'
            cand --quiet 'Print less: only problems (and, for runs, failing jobs and the summary)'
            cand -v 'Print more detail'
            cand --verbose 'Print more detail'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'quire-ci;completions'= {
            cand -C 'Run as if started in DIR'
            cand --color 'When to use colour'
            cand -q 'Print less: only problems (and, for runs, failing jobs and the summary)'
            cand --quiet 'Print less: only problems (and, for runs, failing jobs and the summary)'
            cand -v 'Print more detail'
            cand --verbose 'Print more detail'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'quire-ci;man'= {
            cand -C 'Run as if started in DIR'
            cand --color 'When to use colour'
            cand -q 'Print less: only problems (and, for runs, failing jobs and the summary)'
            cand --quiet 'Print less: only problems (and, for runs, failing jobs and the summary)'
            cand -v 'Print more detail'
            cand --verbose 'Print more detail'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'quire-ci;config'= {
            cand -C 'Run as if started in DIR'
            cand --color 'When to use colour'
            cand --json 'Print JSON for scripts'
            cand -q 'Print less: only problems (and, for runs, failing jobs and the summary)'
            cand --quiet 'Print less: only problems (and, for runs, failing jobs and the summary)'
            cand -v 'Print more detail'
            cand --verbose 'Print more detail'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'quire-ci;help'= {
            cand run 'Run the pipeline on the working tree, now, in one container'
            cand validate 'Compile and check .quire/ci.fnl without starting a container'
            cand list 'Show the jobs, their inputs, their order and the image'
            cand watch 'Run, then run again after every change to the working tree; a change supersedes a running run'
            cand hook 'Install or remove the pre-push hook that runs CI on what `git push` sends'
            cand logs 'Replay a recorded run (default: the latest) through the live view''s renderer'
            cand runs 'List recent runs: id, start, ref, dirty, status, duration'
            cand init 'Write a starter .quire/ci.fnl for what this repository holds'
            cand doctor 'Check the engine, Fennel, ci.fnl, the image and the pre-push hook'
            cand completions 'Print a shell completion script'
            cand man 'Print the manual page (roff)'
            cand config 'Print the effective settings and where each comes from (flag, environment, file, default)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'quire-ci;help;run'= {
        }
        &'quire-ci;help;validate'= {
        }
        &'quire-ci;help;list'= {
        }
        &'quire-ci;help;watch'= {
        }
        &'quire-ci;help;hook'= {
            cand install 'Write a pre-push hook into the hooks directory git uses (honours core.hooksPath)'
            cand uninstall 'Remove the pre-push hook quire-ci installed (restoring a chained one)'
            cand pre-push 'What the hook runs: reads git''s pre-push lines on stdin, one run per updated ref'
        }
        &'quire-ci;help;hook;install'= {
        }
        &'quire-ci;help;hook;uninstall'= {
        }
        &'quire-ci;help;hook;pre-push'= {
        }
        &'quire-ci;help;logs'= {
        }
        &'quire-ci;help;runs'= {
        }
        &'quire-ci;help;init'= {
        }
        &'quire-ci;help;doctor'= {
        }
        &'quire-ci;help;completions'= {
        }
        &'quire-ci;help;man'= {
        }
        &'quire-ci;help;config'= {
        }
        &'quire-ci;help;help'= {
        }
    ]
    $completions[$command]
}
