package expr

import (
	"fmt"
	"math"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

const (
	maxDepth  = 50
	maxLength = 21000
)

type tokKind int

const (
	tEOF tokKind = iota
	tLParen
	tRParen
	tLBracket
	tRBracket
	tComma
	tDot
	tBang
	tNe
	tEq
	tGt
	tGe
	tLt
	tLe
	tAnd
	tOr
	tStar
	tNumber
	tString
	tIdent
	tTrue
	tFalse
	tNull
)

type token struct {
	kind   tokKind
	lexeme string
	value  any // float64 for numbers, string for strings
	off    int // byte offset in the expression
}

// text is how an error message names the token.
func (t token) text() string {
	switch t.kind {
	case tEOF:
		return "EOF"
	case tString:
		return t.value.(string)
	}
	return t.lexeme
}

// SyntaxError is a lexing or parsing error with its position.
type SyntaxError struct {
	Offset  int    // byte offset of the offending token (in the string given to Check, or in the expression)
	Stage   string // "lexing" or "parsing"
	Message string // GitHub's message, e.g. "Unexpected symbol: ')'. Located at position 5 within expression: 1 < )"
}

func (e *SyntaxError) Error() string { return e.Message }

// position is GitHub's 1-based position: UTF-16 units before off, plus one.
func position(src string, off int) int {
	n := 0
	for _, r := range src[:min(off, len(src))] {
		n += max(utf16.RuneLen(r), 1)
	}
	return n + 1
}

func syntaxError(stage, src string, off int, format string, args ...any) *SyntaxError {
	msg := fmt.Sprintf(format, args...)
	return &SyntaxError{
		Offset:  off,
		Stage:   stage,
		Message: fmt.Sprintf("%s. Located at position %d within expression: %s", msg, position(src, off), src),
	}
}

type lexer struct {
	src    string
	start  int
	pos    int
	tokens []token
}

func lex(src string) ([]token, error) {
	if len(src) > maxLength {
		return nil, &SyntaxError{Stage: "lexing", Message: fmt.Sprintf("Exceeded max expression length %d", maxLength)}
	}
	l := &lexer{src: src}
	for l.pos < len(src) {
		l.start = l.pos
		c := src[l.pos]
		l.pos++
		var err error
		switch c {
		case '(':
			l.add(tLParen, nil)
		case ')':
			l.add(tRParen, nil)
		case '[':
			l.add(tLBracket, nil)
		case ']':
			l.add(tRBracket, nil)
		case ',':
			l.add(tComma, nil)
		case '.':
			switch l.prev() {
			case tIdent, tRBracket, tRParen, tStar:
				l.add(tDot, nil)
			default:
				err = l.number()
			}
		case '-', '+':
			err = l.number()
		case '!':
			l.add2('=', tNe, tBang)
		case '<':
			l.add2('=', tLe, tLt)
		case '>':
			l.add2('=', tGe, tGt)
		case '=':
			err = l.pair('=', tEq)
		case '&':
			err = l.pair('&', tAnd)
		case '|':
			err = l.pair('|', tOr)
		case '*':
			l.add(tStar, nil)
		case ' ', '\r', '\t', '\n':
		case '\'':
			err = l.str()
		default:
			if c >= '0' && c <= '9' {
				err = l.number()
			} else {
				l.pos = l.start
				err = l.ident()
			}
		}
		if err != nil {
			return nil, err
		}
	}
	l.tokens = append(l.tokens, token{kind: tEOF, off: len(src)})
	return l.tokens, nil
}

func (l *lexer) prev() tokKind {
	if len(l.tokens) == 0 {
		return tEOF
	}
	return l.tokens[len(l.tokens)-1].kind
}

func (l *lexer) add(k tokKind, v any) {
	l.tokens = append(l.tokens, token{kind: k, lexeme: l.src[l.start:l.pos], value: v, off: l.start})
}

func (l *lexer) add2(next byte, two, one tokKind) {
	if l.pos < len(l.src) && l.src[l.pos] == next {
		l.pos++
		l.add(two, nil)
		return
	}
	l.add(one, nil)
}

// pair lexes a two-character operator; a lone first character is an error
// naming everything up to the next boundary.
func (l *lexer) pair(next byte, k tokKind) error {
	if l.pos < len(l.src) && l.src[l.pos] == next {
		l.pos++
		l.add(k, nil)
		return nil
	}
	return l.ident()
}

func (l *lexer) errSymbol(lexeme string) error {
	return syntaxError("lexing", l.src, l.start, "Unexpected symbol: '%s'", lexeme)
}

// boundary reports whether the rune at l.pos ends a number or identifier.
func (l *lexer) boundary() bool {
	switch c := l.src[l.pos]; c {
	case '(', '[', ')', ']', ',', '.', '!', '>', '<', '=', '&', '|':
		return true
	}
	r, _ := utf8.DecodeRuneInString(l.src[l.pos:])
	return isJSSpace(r) || unicode.IsSpace(r) && r != 0x85
}

func (l *lexer) number() error {
	for l.pos < len(l.src) && (l.src[l.pos] == '.' || !l.boundary()) {
		l.pos++
	}
	lexeme := l.src[l.start:l.pos]
	f := jsNumber(lexeme)
	if math.IsNaN(f) {
		return l.errSymbol(lexeme)
	}
	l.add(tNumber, f)
	return nil
}

func (l *lexer) str() error {
	var b []byte
	for {
		if l.pos >= len(l.src) {
			return l.errSymbol(l.src[l.start:])
		}
		c := l.src[l.pos]
		if c == '\'' {
			if l.pos+1 < len(l.src) && l.src[l.pos+1] == '\'' {
				b = append(b, '\'')
				l.pos += 2
				continue
			}
			l.pos++
			break
		}
		b = append(b, c)
		l.pos++
	}
	l.add(tString, string(b))
	return nil
}

func (l *lexer) ident() error {
	for l.pos < len(l.src) && !l.boundary() {
		_, n := utf8.DecodeRuneInString(l.src[l.pos:])
		l.pos += n
	}
	if l.pos == l.start { // a lone whitespace rune the main loop does not skip
		_, n := utf8.DecodeRuneInString(l.src[l.pos:])
		l.pos += n
	}
	lexeme := l.src[l.start:l.pos]
	if !legalIdent(lexeme) {
		return l.errSymbol(lexeme)
	}
	k, v := tIdent, any(nil)
	if l.prev() != tDot {
		switch lexeme {
		case "true":
			k = tTrue
		case "false":
			k = tFalse
		case "null":
			k = tNull
		case "NaN":
			k, v = tNumber, math.NaN()
		case "Infinity":
			k, v = tNumber, math.Inf(1)
		}
	}
	l.add(k, v)
	return nil
}

func legalIdent(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_'
		if i == 0 && !letter || i > 0 && !letter && !(c >= '0' && c <= '9') && c != '-' {
			return false
		}
	}
	return true
}
