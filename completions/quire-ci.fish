complete --keep-order --exclusive --command quire-ci --arguments "(COMPLETE=fish quire-ci -- (commandline --current-process --tokenize --cut-at-cursor) (commandline --current-token))"
