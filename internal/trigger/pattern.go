package trigger

import (
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

// Pattern is one compiled branch, tag or path filter pattern with GitHub's
// semantics (the "filter pattern cheat sheet"):
//
//	pattern  matches
//	*        zero or more characters except /
//	**       zero or more of any character; **/ also matches no directory
//	?        zero or one of the preceding character or [class]
//	+        one or more of the preceding character or [class]
//	[ ]      one character listed or in a range; only a-z, A-Z, 0-9
//	!        first character only: negates the pattern (last match wins)
//	\        makes the next character literal
//
// It is translated to an anchored RE2 expression, so matching is linear in
// the name whatever the pattern. ? and + at the start of a pattern are
// literal; ? after * or another quantifier changes nothing (a lazy
// quantifier in GitHub's regular-expression translation); + there is an
// error, like the nested repetition it would be.
type Pattern struct {
	src    string
	negate bool
	re     *regexp.Regexp
}

// String is the pattern as written.
func (p *Pattern) String() string { return p.src }

// Negated reports whether the pattern starts with !.
func (p *Pattern) Negated() bool { return p.negate }

// Match reports whether name matches the pattern, ignoring negation.
func (p *Pattern) Match(name string) bool { return p.re.MatchString(name) }

// MaxPatternLength bounds one pattern; GitHub's own limit is not documented,
// this one only keeps compiled expressions small.
const MaxPatternLength = 1024

// CompilePattern compiles one filter pattern; errors are errs.Invalid.
func CompilePattern(src string) (*Pattern, error) {
	re, neg, err := translate(src)
	if err != nil {
		return nil, errs.E("trigger.CompilePattern", errs.Invalid, "invalid pattern %q: %v", src, err)
	}
	return &Pattern{src: src, negate: neg, re: re}, nil
}

// translate turns a pattern into an anchored regular expression.
func translate(src string) (*regexp.Regexp, bool, error) {
	if len(src) > MaxPatternLength {
		return nil, false, fmt.Errorf("longer than %d bytes", MaxPatternLength)
	}
	if !utf8.ValidString(src) {
		return nil, false, fmt.Errorf("not valid UTF-8")
	}
	neg := strings.HasPrefix(src, "!")
	p := []rune(strings.TrimPrefix(src, "!"))
	if len(p) == 0 {
		return nil, false, fmt.Errorf("empty pattern")
	}
	var b strings.Builder
	b.WriteString(`(?s)\A`)
	// last says what the previous element was, for ? and +.
	const (
		none = iota
		atom // a character or [class]: may take ? or +
		star // *, ** or a quantified atom: ? is a no-op, + is an error
	)
	last := none
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch c {
		case '*':
			switch {
			case i+2 < len(p) && p[i+1] == '*' && p[i+2] == '/':
				b.WriteString(`(?:.*/)?`)
				i += 2
			case i+1 < len(p) && p[i+1] == '*':
				b.WriteString(`.*`)
				i++
			default:
				b.WriteString(`[^/]*`)
			}
			last = star
		case '?', '+':
			switch last {
			case none:
				b.WriteString(regexp.QuoteMeta(string(c)))
				last = atom
				continue
			case star:
				if c == '+' {
					return nil, false, fmt.Errorf("'+' at %d repeats a repetition", i+1)
				}
				continue
			}
			b.WriteRune(c)
			last = star
		case '[':
			j, class, err := bracket(p, i)
			if err != nil {
				return nil, false, err
			}
			b.WriteString(class)
			i = j
			last = atom
		case '\\':
			if i+1 >= len(p) {
				return nil, false, fmt.Errorf("'\\' at the end escapes nothing")
			}
			i++
			b.WriteString(regexp.QuoteMeta(string(p[i])))
			last = atom
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
			last = atom
		}
	}
	b.WriteString(`\z`)
	re, err := regexp.Compile(b.String())
	return re, neg, err
}

// bracket reads the class that starts at p[i] == '['; it returns the index
// of its ']' and the class as a regular expression.
func bracket(p []rune, i int) (int, string, error) {
	start := i
	var b strings.Builder
	b.WriteByte('[')
	i++
	if i < len(p) && p[i] == ']' {
		return 0, "", fmt.Errorf("empty brackets '[]' at %d", start+1)
	}
	for ; i < len(p) && p[i] != ']'; i++ {
		c := p[i]
		if !alnum(c) {
			return 0, "", fmt.Errorf("'%c' at %d: brackets may only hold a-z, A-Z, 0-9 and ranges of them", c, i+1)
		}
		if i+2 < len(p) && p[i+1] == '-' && p[i+2] != ']' {
			hi := p[i+2]
			if !sameRange(c, hi) || hi < c {
				return 0, "", fmt.Errorf("invalid range %c-%c at %d: ranges can only include a-z, A-Z and 0-9", c, hi, i+1)
			}
			b.WriteRune(c)
			b.WriteByte('-')
			b.WriteRune(hi)
			i += 2
			continue
		}
		b.WriteRune(c)
	}
	if i >= len(p) {
		return 0, "", fmt.Errorf("missing ']' for the '[' at %d", start+1)
	}
	b.WriteByte(']')
	return i, b.String(), nil
}

func alnum(c rune) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// sameRange reports whether a and b are both digits, both lower or both
// upper case letters.
func sameRange(a, b rune) bool {
	class := func(c rune) int {
		switch {
		case c >= '0' && c <= '9':
			return 1
		case c >= 'a' && c <= 'z':
			return 2
		case c >= 'A' && c <= 'Z':
			return 3
		}
		return 0
	}
	return class(a) != 0 && class(a) == class(b)
}

// Patterns is an ordered list of patterns, as in branches: or paths:.
type Patterns []*Pattern

// CompilePatterns compiles every pattern of a list.
func CompilePatterns(list []string) (Patterns, error) {
	out := make(Patterns, 0, len(list))
	for _, s := range list {
		p, err := CompilePattern(s)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// Includes reports whether name is selected by the list: the last pattern
// that matches decides (a positive one includes, a negated one excludes);
// no match excludes.
func (ps Patterns) Includes(name string) bool {
	in := false
	for _, p := range ps {
		if p.Match(name) {
			in = !p.negate
		}
	}
	return in
}

// MatchPattern reports whether name is selected by the single pattern
// (false for a negated pattern, which selects nothing on its own).
func MatchPattern(pattern, name string) (bool, error) {
	p, err := CompilePattern(pattern)
	if err != nil {
		return false, err
	}
	return Patterns{p}.Includes(name), nil
}
