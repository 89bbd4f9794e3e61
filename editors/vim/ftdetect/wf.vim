" wfc workflow files.
autocmd BufRead,BufNewFile *.wf setfiletype wf
