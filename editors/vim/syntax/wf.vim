" Vim syntax file
" Language:    wf, the workflow language of wfc
" Filenames:   *.wf
" Strings hold MiniJinja templates: {{ expressions }}, {% statements %} and
" {# comments #} are highlighted inside them.

if exists('b:current_syntax')
  finish
endif

let s:cpo_save = &cpo
set cpo&vim

syn case match
" A triple-quoted template can be long; parse from the top of the file.
syn sync fromstart

" Comments. `///` (not `////`) is a doc comment on the declaration below.
syn keyword wfTodo contained TODO FIXME XXX NOTE
syn match wfComment '//.*$' contains=wfTodo,@Spell
syn match wfDocComment '///\%(/\)\@!.*$' contains=wfTodo,@Spell

" Declarations.
syn keyword wfImport import
syn keyword wfAgentKeyword agent schema corpus nextgroup=wfAgentName skipwhite
syn match wfAgentName '\h\w*' contained
syn keyword wfWorkflowKeyword workflow nextgroup=wfWorkflowName skipwhite
syn match wfWorkflowName '\h\w*' contained
syn keyword wfTaskKeyword task retrieve nextgroup=wfTaskName skipwhite
syn match wfTaskName '\h\w*' contained nextgroup=wfArrow,wfFrom,wfTaskState skipwhite
syn match wfArrow '->' contained nextgroup=wfAgentRef skipwhite
syn keyword wfFrom from contained nextgroup=wfAgentRef skipwhite
syn match wfAgentRef '\h\w*' contained
syn keyword wfInputKeyword input nextgroup=wfInputName skipwhite
syn match wfInputName '\h\w*' contained nextgroup=wfTypeColon skipwhite
syn match wfTypeColon ':' contained nextgroup=wfType skipwhite
syn keyword wfOutputKeyword output
syn keyword wfTestKeyword test

" Types of inputs.
syn keyword wfType text number bool date list one_of
syn match wfOptional '?'

" Tests and quality checks.
syn keyword wfMock mock nextgroup=wfTaskRef skipwhite
syn match wfTaskRef '\h\w*' contained nextgroup=wfFails skipwhite
syn keyword wfFails fails contained
syn keyword wfExpect expect
syn match wfCheck '\<\%(contains\|matches\|heading\|min_length\|json\|cites\)\>'
syn keyword wfOrder order before nextgroup=wfTaskRef skipwhite
syn keyword wfTaskState contained ok failed skipped

" `key = value`
syn match wfProperty '\<\h\w*\ze\s*=\%(=\)\@!'

" Values.
syn keyword wfBoolean true false
syn match wfNumber '\%(\w\)\@1<!-\=\d\+\%(\.\d\+\)\=\>'
syn match wfDuration '\<\d\+\%(ms\|s\|m\|h\)\>'

" One-line strings: escapes, and templates that end with the string.
syn match wfEscapeError '\\.' contained
syn match wfEscape '\\\%(["\\ntr]\|u{\x\{1,6}}\)' contained
syn region wfString start=+"+ skip=+\\\\\|\\"+ end=+"+ end=+$+ keepend
      \ contains=wfEscape,wfEscapeError,wfJinjaComment,wfJinjaStmt,wfJinjaExpr,@Spell

" Triple-quoted strings: raw text holding a template. Defined after wfString
" so that `"""` opens one.
syn region wfTripleString matchgroup=wfTripleQuote start=+"""+ end=+"""+ keepend
      \ contains=wfJinjaComment,wfJinjaStmtT,wfJinjaExprT,@Spell

" MiniJinja. The ...T variants sit in triple-quoted strings, where a
" template's own strings use plain double quotes.
syn region wfJinjaComment start='{#' end='#}' contained contains=wfTodo
syn region wfJinjaExpr matchgroup=wfJinjaDelim start='{{-\=' end='-\=}}' contained
      \ contains=@wfJinja,wfEscape
syn region wfJinjaStmt matchgroup=wfJinjaDelim start='{%-\=' end='-\=%}' contained
      \ contains=wfJinjaStatement,@wfJinja,wfEscape
syn region wfJinjaExprT matchgroup=wfJinjaDelim start='{{-\=' end='-\=}}' contained
      \ contains=@wfJinja,wfJinjaDString
syn region wfJinjaStmtT matchgroup=wfJinjaDelim start='{%-\=' end='-\=%}' contained
      \ contains=wfJinjaStatement,@wfJinja,wfJinjaDString
syn cluster wfJinja contains=wfJinjaOperator,wfJinjaConstant,wfJinjaNumber,wfJinjaSString,wfJinjaFilter,wfJinjaTest,wfJinjaLoop

syn keyword wfJinjaStatement contained if elif else endif for endfor set endset
      \ with endwith filter endfilter macro endmacro call endcall block endblock
      \ raw endraw autoescape endautoescape do break continue recursive as
syn keyword wfJinjaOperator contained and or not in is
syn keyword wfJinjaConstant contained true false none True False None
syn keyword wfJinjaLoop contained loop
syn match wfJinjaNumber '\<\d\+\%(\.\d\+\)\=\>' contained
syn region wfJinjaSString start=+'+ skip=+\\.+ end=+'+ contained
syn region wfJinjaDString start=+"+ skip=+\\.+ end=+"+ contained
syn match wfJinjaFilter '|\s*\h\w*' contained contains=wfJinjaPipe
syn match wfJinjaPipe '|' contained
syn match wfJinjaTest '\<is\s\+\%(not\s\+\)\=\h\w*' contained contains=wfJinjaOperator

hi def link wfTodo            Todo
hi def link wfComment         Comment
hi def link wfDocComment      SpecialComment
hi def link wfImport          Include
hi def link wfAgentKeyword    Structure
hi def link wfWorkflowKeyword Structure
hi def link wfTaskKeyword     Keyword
hi def link wfInputKeyword    Keyword
hi def link wfOutputKeyword   Keyword
hi def link wfTestKeyword     Keyword
hi def link wfAgentName       Type
hi def link wfAgentRef        Type
hi def link wfWorkflowName    Function
hi def link wfTaskName        Function
hi def link wfTaskRef         Identifier
hi def link wfInputName       Identifier
hi def link wfArrow           Operator
hi def link wfFrom            Keyword
hi def link wfTypeColon       Delimiter
hi def link wfType            Type
hi def link wfOptional        Operator
hi def link wfMock            Statement
hi def link wfFails           Statement
hi def link wfExpect          Statement
hi def link wfCheck           Keyword
hi def link wfOrder           Keyword
hi def link wfTaskState       Constant
hi def link wfProperty        Identifier
hi def link wfBoolean         Boolean
hi def link wfNumber          Number
hi def link wfDuration        Number
hi def link wfString          String
hi def link wfTripleString    String
hi def link wfTripleQuote     String
hi def link wfEscape          SpecialChar
hi def link wfEscapeError     Error
hi def link wfJinjaComment    Comment
hi def link wfJinjaDelim      PreProc
hi def link wfJinjaExpr       Identifier
hi def link wfJinjaExprT      Identifier
hi def link wfJinjaStmt       Identifier
hi def link wfJinjaStmtT      Identifier
hi def link wfJinjaStatement  Conditional
hi def link wfJinjaOperator   Operator
hi def link wfJinjaConstant   Constant
hi def link wfJinjaLoop       Special
hi def link wfJinjaNumber     Number
hi def link wfJinjaSString    String
hi def link wfJinjaDString    String
hi def link wfJinjaFilter     Function
hi def link wfJinjaPipe       Operator
hi def link wfJinjaTest       Function

let b:current_syntax = 'wf'

let &cpo = s:cpo_save
unlet s:cpo_save
