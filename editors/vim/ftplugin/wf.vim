" Vim filetype plugin for wfc workflow files (.wf).

if exists('b:did_ftplugin')
  finish
endif
let b:did_ftplugin = 1

" `//` comments; `///` doc comments continue when a line is broken.
setlocal commentstring=//\ %s
setlocal comments=:///,://
setlocal formatoptions-=t formatoptions+=croql

" The layout of `wfc fmt`: two spaces per level.
setlocal expandtab shiftwidth=2 softtabstop=2

" `gf` on an import path finds the file.
setlocal suffixesadd=.wf

let b:undo_ftplugin = 'setlocal commentstring< comments< formatoptions< expandtab< shiftwidth< softtabstop< suffixesadd<'
