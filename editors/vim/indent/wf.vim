" Vim indent file for wfc workflow files (.wf): one level per open `{`, `[`,
" `(` or `"""`; template text inside `"""` keeps the indentation it has.

if exists('b:did_indent')
  finish
endif
let b:did_indent = 1

setlocal autoindent
setlocal indentexpr=WfIndent(v:lnum)
setlocal indentkeys=0{,0},0],0),!^F,o,O,e
let b:undo_indent = 'setlocal autoindent< indentexpr< indentkeys<'

if exists('*WfIndent')
  finish
endif

" Whether the end of line LNUM lies inside a triple-quoted string's text.
function! s:InTemplate(lnum) abort
  let col = col([a:lnum, '$']) - 1
  if col < 1
    return 0
  endif
  for id in synstack(a:lnum, col)
    if synIDattr(id, 'name') ==# 'wfTripleString'
      " The opening or closing quotes themselves belong to wfTripleQuote.
      return synIDattr(synID(a:lnum, col, 1), 'name') !=# 'wfTripleQuote'
    endif
  endfor
  return 0
endfunction

" Whether line LNUM leaves more brackets open than it closes, counting only
" the brackets outside strings and comments, after its leading closers.
function! s:Opens(lnum) abort
  let text = getline(a:lnum)
  let depth = 0
  let start = match(text, '^\s*[}\])]*\zs')
  for col in range(start + 1, len(text))
    let ch = text[col - 1]
    if ch !~# '[{}()[\]]'
      continue
    endif
    if synIDattr(synID(a:lnum, col, 1), 'name') =~# 'String\|Comment\|Jinja\|Quote'
      continue
    endif
    let depth += ch =~# '[{([]' ? 1 : -1
  endfor
  return depth > 0
endfunction

function! WfIndent(lnum) abort
  let prev = prevnonblank(a:lnum - 1)
  if prev == 0
    return 0
  endif
  let line = getline(a:lnum)
  let closes = line =~# '^\s*\%([}\])]\|"""\)'
  if s:InTemplate(prev)
    if line !~# '^\s*"""'
      return -1
    endif
    " The closing quotes line up with the line that opened the string.
    let open = prev
    while open > 1 && s:InTemplate(open)
      let open = prevnonblank(open - 1)
    endwhile
    return indent(open)
  endif
  let ind = indent(prev)
  if s:Opens(prev) || getline(prev) =~# '\S.*"""\s*$'
    let ind += shiftwidth()
  endif
  if closes
    let ind -= shiftwidth()
  endif
  return ind < 0 ? 0 : ind
endfunction
