package exec

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseCommand(t *testing.T) {
	tests := []struct {
		line string
		ok   bool
		want command
	}{
		{"::set-output name=zoo::zar", true, command{"set-output", map[string]string{"name": "zoo"}, "zar"}},
		{"  ::add-mask::secret%0Aline", true, command{"add-mask", nil, "secret\nline"}},
		{"::error file=app.js,line=10,title=a%2Cb::bad %25", true, command{"error", map[string]string{"file": "app.js", "line": "10", "title": "a,b"}, "bad %"}},
		{"::endgroup::", true, command{"endgroup", nil, ""}},
		{"plain text", false, command{}},
		{"::no-end", false, command{}},
		{"::::x", false, command{}},
	}
	for _, tc := range tests {
		got, ok := parseCommand(tc.line)
		if ok != tc.ok || (ok && !reflect.DeepEqual(got, tc.want)) {
			t.Errorf("parseCommand(%q) = %+v,%v want %+v,%v", tc.line, got, ok, tc.want, tc.ok)
		}
	}
}

func TestParseEnvFile(t *testing.T) {
	in := "A=1\r\nB=x=y\n\nMULTI<<EOF\nl1\nl2\nEOF\nC<<ghadelim_1\n\nghadelim_1\n"
	got, err := parseEnvFile(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []kvPair{{"A", "1"}, {"B", "x=y"}, {"MULTI", "l1\nl2"}, {"C", ""}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q want %q", got, want)
	}
	for _, bad := range []string{"NOEQUALS", "X<<EOF\nunterminated", "=v", "<<EOF\nEOF"} {
		if _, err := parseEnvFile(strings.NewReader(bad)); err == nil {
			t.Errorf("parseEnvFile(%q): want error", bad)
		}
	}
}

func FuzzParseEnvFile(f *testing.F) {
	f.Add("A=1\nB<<E\nx\nE\n")
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = parseEnvFile(strings.NewReader(s))
		_, _ = parseCommand(s)
	})
}
