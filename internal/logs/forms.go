package logs

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"net/url"
	"strings"
	"unicode/utf8"
)

// MinEncoded is the shortest base64 form of a secret that is masked. A
// base64 fragment is only letters and digits, so a shorter one would hide
// noise in every base64 blob of a log (4 characters match one position in
// 16 million); 6 characters carry 36 bits. So base64 forms hide secrets of
// 7 bytes or more at every alignment, of 5 and 6 bytes at some, and never
// shorter ones. Escaped forms (URL, JSON, XML, shell) contain the escape
// itself, are never shorter than the secret and have no such minimum.
const MinEncoded = 6

// forms returns the ways v is commonly printed besides itself: its base64
// at the three alignments, and its URL-, JSON-, XML-, expression- and
// shell-escaped forms. Duplicates and v itself may be included; the caller
// de-duplicates.
func forms(v string) []string {
	out := base64Forms(v)
	out = append(out, urlForms(v)...)
	out = append(out, jsonForms(v)...)
	out = append(out, html.EscapeString(v), xmlEscape(v))
	out = append(out, strings.ReplaceAll(v, "'", "''")) // ${{ }} string literal
	out = append(out, shellForms(v)...)
	return out
}

// base64Forms returns, for each of the three alignments a secret can have
// inside a longer base64 stream, the characters that depend on the secret
// alone, in the standard and the URL alphabets.
//
// A secret starting at a byte offset of 3k+1 shares its first base64
// group with the byte before it; skipping its first 2 bytes realigns it,
// and likewise 1 byte for 3k+2. At the end, only the characters whose 6
// bits all come from the secret are kept: the next one mixes in whatever
// follows (or padding).
func base64Forms(v string) []string {
	var out []string
	for skip := 0; skip < 3 && skip < len(v); skip++ {
		b := []byte(v[skip:])
		stable := len(b) * 8 / 6
		if stable < MinEncoded {
			continue
		}
		enc := base64.StdEncoding.EncodeToString(b)[:stable]
		out = append(out, enc, strings.NewReplacer("+", "-", "/", "_").Replace(enc))
	}
	return out
}

// urlForms returns v as url.QueryEscape (space as +) and url.PathEscape
// produce it, as RFC 3986 data escaping does (everything but unreserved
// characters escaped, like .NET's Uri.EscapeDataString), as JavaScript's
// encodeURIComponent does, and each with lowercase hex digits.
func urlForms(v string) []string {
	out := []string{url.QueryEscape(v), url.PathEscape(v),
		percentEscape(v, "-._~"), percentEscape(v, "-._~!'()*")}
	for _, f := range out[:4] {
		if l := lowerHex(f); l != f {
			out = append(out, l)
		}
	}
	return out
}

// percentEscape escapes every byte of v but ASCII letters, digits and keep.
func percentEscape(v, keep string) string {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < 0x80 && (isAlnum(c) || strings.IndexByte(keep, c) >= 0) {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

// lowerHex lowercases the two hex digits after every % of s.
func lowerHex(s string) string {
	b := []byte(s)
	for i := 0; i+2 < len(b); i++ {
		if b[i] == '%' {
			b[i+1], b[i+2] = lowerASCII(b[i+1]), lowerASCII(b[i+2])
			i += 2
		}
	}
	return string(b)
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// jsonForms returns the inside of v's JSON string as Go (with and without
// HTML escaping), JavaScript and Python (non-ASCII as \uXXXX) write it.
func jsonForms(v string) []string {
	var out []string
	for _, escHTML := range []bool{false, true} {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(escHTML)
		if enc.Encode(v) == nil {
			s := strings.TrimSuffix(buf.String(), "\n")
			out = append(out, s[1:len(s)-1])
		}
	}
	if len(out) == 0 {
		return nil
	}
	return append(out, asciiJSON(out[0]))
}

// asciiJSON writes the non-ASCII runes of a JSON string's inside as
// \uXXXX escapes (surrogate pairs beyond the BMP), as Python's json does.
func asciiJSON(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r < utf8.RuneSelf:
			b.WriteRune(r)
		case r > 0xFFFF:
			r -= 0x10000
			fmt.Fprintf(&b, `\u%04x\u%04x`, 0xD800+(r>>10), 0xDC00+(r&0x3FF))
		default:
			fmt.Fprintf(&b, `\u%04x`, r)
		}
	}
	return b.String()
}

// xmlEscape escapes the five XML special characters with named entities.
func xmlEscape(v string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&apos;").Replace(v)
}

// shellForms returns the inside of v quoted for a POSIX shell: single
// quotes closed and reopened around a quote ('\” as most tools write it,
// '"'"' as Python's shlex.quote does), double quotes (\ " $ ` escaped),
// and bash's printf %q style, a backslash before every special character.
func shellForms(v string) []string {
	return []string{
		strings.ReplaceAll(v, "'", `'\''`),
		strings.ReplaceAll(v, "'", `'"'"'`),
		strings.NewReplacer(`\`, `\\`, `"`, `\"`, "$", `\$`, "`", "\\`").Replace(v),
		backslashEscape(v),
	}
}

// backslashEscape puts a backslash before every byte of v that a shell
// would otherwise interpret.
func backslashEscape(v string) string {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < 0x80 && !isAlnum(c) && strings.IndexByte("_-./,:=@%+^", c) < 0 {
			b.WriteByte('\\')
		}
		b.WriteByte(c)
	}
	return b.String()
}
