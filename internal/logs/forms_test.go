package logs

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// A secret inside a longer base64 stream is masked whatever its offset in
// the stream (0, 1 or 2 mod 3), whatever follows it, with or without
// padding, in the standard and the URL alphabets: every character that
// depends on the secret alone is hidden.
func TestMaskBase64Alignments(t *testing.T) {
	const secret = "p4ss?w0rd>>user~x" // ? and > give + and / in base64
	m := NewMasker()
	m.Add(secret)
	encs := map[string]*base64.Encoding{"std": base64.StdEncoding, "url": base64.URLEncoding,
		"raw-std": base64.RawStdEncoding, "raw-url": base64.RawURLEncoding}
	for prefix := 0; prefix < 6; prefix++ {
		for _, suffix := range []string{"", "x", "xy", "xyz", ":more data\n"} {
			for name, enc := range encs {
				stream := strings.Repeat("u", prefix) + secret + suffix
				in := enc.EncodeToString([]byte(stream))
				got := m.Apply("Authorization: Basic " + in)
				if strings.Count(got, Mask) != 1 {
					t.Errorf("%s prefix %d suffix %q: %q not masked once: %q", name, prefix, suffix, in, got)
					continue
				}
				hidden := len(in) - (len(got) - len("Authorization: Basic ") - len(Mask))
				if want := (len(secret) - 2) * 4 / 3; hidden < want {
					t.Errorf("%s prefix %d suffix %q: %d characters hidden, want at least %d: %q", name, prefix, suffix, hidden, want, got)
				}
			}
		}
	}
}

// Secrets too short for their base64 forms to be told apart from noise are
// masked as themselves only.
func TestMaskBase64Minimum(t *testing.T) {
	m := NewMasker()
	m.Add("abcd") // base64 "YWJjZA": its stable part "YWJj" is under MinEncoded
	blob := base64.StdEncoding.EncodeToString([]byte("xabcd and abcde"))
	if got := m.Apply(blob); got != blob {
		t.Errorf("short secret masked noise in base64: %q", got)
	}
	if got := m.Apply("abcd"); got != Mask {
		t.Errorf("Apply(abcd) = %q", got)
	}
	m.Add("abcdefg") // 7 bytes: every alignment has 6 stable characters
	for skip := 0; skip < 3; skip++ {
		in := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("-", skip) + "abcdefg"))
		if got := m.Apply(in); !strings.Contains(got, Mask) {
			t.Errorf("offset %d: %q not masked", skip, in)
		}
	}
}

// URL-, JSON-, XML-, expression- and shell-escaped forms of a secret are
// masked, as the usual tools print them.
func TestMaskEscapedForms(t *testing.T) {
	const secret = `it's a "p@ss/w:rd" & <tag> $HOME ü%`
	m := NewMasker()
	m.Add(secret)
	jsonGo, _ := json.Marshal(secret)
	var html strings.Builder
	enc := json.NewEncoder(&html)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(secret)
	cases := map[string]string{
		"query escape":        url.QueryEscape(secret),
		"path escape":         url.PathEscape(secret),
		"query lowercase hex": hexLower(url.QueryEscape(secret)),
		"data escape (%20)":   strings.ReplaceAll(url.QueryEscape(secret), "+", "%20"),
		"json (Go)":           string(jsonGo),
		"json (no HTML)":      strings.TrimSpace(html.String()),
		"json (ASCII)":        `"it's a \"p@ss/w:rd\" & <tag> $HOME \u00fc%"`,
		"xml entities":        `it&apos;s a &quot;p@ss/w:rd&quot; &amp; &lt;tag&gt; $HOME ü%`,
		"html numeric":        `it&#39;s a &#34;p@ss/w:rd&#34; &amp; &lt;tag&gt; $HOME ü%`,
		"expression":          `'it''s a "p@ss/w:rd" & <tag> $HOME ü%'`,
		"shell '\\''":         `'it'\''s a "p@ss/w:rd" & <tag> $HOME ü%'`,
		"shlex.quote":         `'it'"'"'s a "p@ss/w:rd" & <tag> $HOME ü%'`,
		"double quotes":       `"it's a \"p@ss/w:rd\" & <tag> \$HOME ü%"`,
		"backslashes":         `it\'s\ a\ \"p@ss/w:rd\"\ \&\ \<tag\>\ \$HOME\ ü%`,
	}
	for name, form := range cases {
		line := "value=" + form + " end"
		got := m.Apply(line)
		if strings.Contains(got, "p@ss") || !strings.Contains(got, Mask) {
			t.Errorf("%s: %q printed as %q", name, form, got)
		}
	}
	// Lowercase hex of the query escape is among the registered forms.
	if got := m.Apply(hexLower(url.QueryEscape(secret))); got != Mask {
		t.Errorf("lowercase query escape: %q", got)
	}
}

func hexLower(s string) string {
	return regexp.MustCompile(`%[0-9A-F]{2}`).ReplaceAllStringFunc(s, strings.ToLower)
}

// Overlapping occurrences of different secrets become one mask; secrets
// side by side stay two.
func TestMaskOverlaps(t *testing.T) {
	m := NewMasker()
	m.Add("abcdef")
	m.Add("defghi")
	m.Add("zz")
	for in, want := range map[string]string{
		"x abcdefghi y": "x *** y",
		"abcdefabcdef":  "******",
		"zzz":           "***",
		"zz abcdef zz":  "*** *** ***",
	} {
		if got := m.Apply(in); got != want {
			t.Errorf("Apply(%q) = %q, want %q", in, got, want)
		}
	}
}

// With many secrets, each is found (the filter's buckets and the
// few-keys path agree with a plain search).
func TestMaskManySecrets(t *testing.T) {
	for _, n := range []int{1, 3, 50, 2000} {
		m := NewMasker()
		secrets := benchSecrets(n)
		for _, s := range secrets {
			m.Add(s)
		}
		for i := 0; i < n; i += 1 + n/17 {
			in := fmt.Sprintf("a %s b %s", secrets[i], base64.StdEncoding.EncodeToString([]byte(secrets[i])))
			// The last base64 character mixes in what follows the secret
			// (here padding), so it shows.
			if got := m.Apply(in); !strings.HasPrefix(got, "a *** b ***") || len(got) > len("a *** b ***")+3 {
				t.Errorf("%d secrets: Apply(%q) = %q", n, in, got)
			}
		}
		if got := m.Apply(benchLine); got != benchLine {
			t.Errorf("%d secrets: clean line changed: %q", n, got)
		}
	}
}
